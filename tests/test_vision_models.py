"""oncolab.vision models and explanations, checked against the libraries they teach.

ResNet vs timm's ResNet, residual blocks vs timm's and torchvision's, ViT vs timm's
VisionTransformer, attention vs nn.MultiheadAttention, patches vs F.unfold, convolution vs
F.conv2d and a sliding-window convolution, Grad-CAM vs the grad-cam package and the class
activation map; plus the input conversion rules, feature extraction and the pointing game.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import timm
import torch
import torch.nn.functional as F
from timm.models.resnet import BasicBlock as TimmBasicBlock
from timm.models.resnet import Bottleneck as TimmBottleneck
from timm.models.vision_transformer import VisionTransformer as TimmViT
from torchvision.models.resnet import BasicBlock as TorchvisionBasicBlock
from torchvision.models.resnet import Bottleneck as TorchvisionBottleneck

from oncolab.env import HubUnavailableError
from oncolab.vision import (
    Attention,
    BasicBlock,
    Bottleneck,
    ResNet,
    SmallCNN,
    VisionTransformer,
    attention_rollout,
    conv2d_by_hand,
    count_parameters,
    extract_features,
    grad_cam,
    grad_cam_package,
    heatmap_iou,
    image_encoder,
    lesion_crops,
    load_timm_weights,
    multi_head_attention,
    patchify,
    pointing_game,
    predict_proba,
    to_model_input,
    train_classifier,
)

SMALL_VIT = dict(img_size=32, patch_size=8, embed_dim=64, depth=2, num_heads=4)


def _randomise_batchnorm(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every BatchNorm non-trivial statistics so that eval-mode outputs test something."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.weight.data = torch.rand(m.num_features, generator=g) + 0.5
            m.bias.data = torch.randn(m.num_features, generator=g) * 0.1
            m.running_mean = torch.randn(m.num_features, generator=g) * 0.1
            m.running_var = torch.rand(m.num_features, generator=g) + 0.5
    return model


# --- convolution ------------------------------------------------------------------------------
@pytest.mark.parametrize("stride,padding", [(1, 0), (1, 1), (2, 1), ((2, 1), (0, 2))])
def test_conv2d_by_hand_equals_torch(stride, padding):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 9, 8, generator=g, dtype=torch.float64)
    w = torch.randn(4, 3, 3, 3, generator=g, dtype=torch.float64)
    b = torch.randn(4, generator=g, dtype=torch.float64)
    ref = F.conv2d(x, w, b, stride=stride, padding=padding).numpy()
    ours = conv2d_by_hand(x.numpy(), w.numpy(), b.numpy(), stride=stride, padding=padding)
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, atol=1e-10)


@pytest.mark.parametrize("stride,padding", [(1, 0), (1, 1), (2, 1), (3, 2)])
def test_conv2d_by_hand_equals_a_sliding_window_convolution(stride, padding):
    # chapter 2 writes the formula the other way round: every K x K window, then one einsum
    rng = np.random.default_rng(3)
    x, w, b = rng.normal(size=(2, 3, 10, 7)), rng.normal(size=(5, 3, 3, 2)), rng.normal(size=5)
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    windows = np.lib.stride_tricks.sliding_window_view(xp, w.shape[2:], axis=(2, 3))[:, :, ::stride, ::stride]
    ref = np.einsum("ncijuv,ocuv->noij", windows, w) + b[None, :, None, None]
    ours = conv2d_by_hand(x, w, b, stride=stride, padding=padding)
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, atol=1e-10)


def test_conv2d_by_hand_rejects_mismatched_channels():
    with pytest.raises(ValueError, match=r"weight must be \(O, C=3"):
        conv2d_by_hand(np.zeros((1, 3, 5, 5)), np.zeros((2, 4, 3, 3)))


# --- ResNet vs timm ---------------------------------------------------------------------------
@pytest.mark.parametrize("ours_cls,timm_cls,in_ch,width,stride", [
    (BasicBlock, TimmBasicBlock, 64, 64, 1), (BasicBlock, TimmBasicBlock, 64, 128, 2),
    (Bottleneck, TimmBottleneck, 256, 128, 2)])
def test_residual_blocks_match_timm(ours_cls, timm_cls, in_ch, width, stride):
    down = None
    if stride != 1 or in_ch != width * ours_cls.expansion:
        out = width * ours_cls.expansion
        down = torch.nn.Sequential(torch.nn.Conv2d(in_ch, out, 1, stride=stride, bias=False),
                                   torch.nn.BatchNorm2d(out))
    ref = timm_cls(in_ch, width, stride=stride, downsample=down)
    ours = ours_cls(in_ch, width, stride=stride)
    assert count_parameters(ours) == count_parameters(ref)
    load_timm_weights(ours, _randomise_batchnorm(ref))
    x = torch.randn(2, in_ch, 16, 16)
    with torch.no_grad():
        np.testing.assert_allclose(ours.eval()(x).numpy(), ref.eval()(x).numpy(), atol=1e-5)


@pytest.mark.parametrize("ours_cls,tv_cls,in_ch,width,stride", [
    (BasicBlock, TorchvisionBasicBlock, 16, 16, 1), (BasicBlock, TorchvisionBasicBlock, 16, 32, 2),
    (Bottleneck, TorchvisionBottleneck, 64, 16, 1), (Bottleneck, TorchvisionBottleneck, 32, 16, 2)])
def test_residual_blocks_match_torchvision(ours_cls, tv_cls, in_ch, width, stride):
    ours = _randomise_batchnorm(ours_cls(in_ch, width, stride=stride), seed=1)
    down = None if ours.downsample is None else torch.nn.Sequential(
        torch.nn.Conv2d(in_ch, width * ours_cls.expansion, 1, stride=stride, bias=False),
        torch.nn.BatchNorm2d(width * ours_cls.expansion))
    ref = tv_cls(in_ch, width, stride=stride, downsample=down)
    ref.load_state_dict(ours.state_dict())  # strict: the same parameters under the same names
    x = torch.randn(3, in_ch, 12, 12, generator=torch.Generator().manual_seed(0))
    for train in (True, False):  # batch statistics, then the (updated) running statistics
        with torch.no_grad():
            a, b = ours.train(train)(x), ref.train(train)(x)
        assert a.shape == (3, width * ours_cls.expansion, 12 // stride, 12 // stride)
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)
    for u, v in zip(ours.state_dict().values(), ref.state_dict().values()):
        assert torch.allclose(u.double(), v.double(), atol=1e-6)  # the same running statistics after


@pytest.mark.parametrize("name,builder", [("resnet18", ResNet.resnet18), ("resnet50", ResNet.resnet50)])
@pytest.mark.parametrize("num_classes", [0, 1000])
def test_resnet_parameter_count_equals_timm(name, builder, num_classes):
    ours = builder(num_classes=num_classes)
    ref = timm.create_model(name, pretrained=False, num_classes=num_classes)
    assert count_parameters(ours) == count_parameters(ref)
    assert ours.num_features == ref.num_features


def test_resnet18_with_timm_weights_gives_timm_outputs_and_shapes():
    ref = _randomise_batchnorm(timm.create_model("resnet18", pretrained=False, num_classes=7))
    ours = load_timm_weights(ResNet.resnet18(num_classes=7), ref)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert ours.eval().forward_features(x).shape == ref.eval().forward_features(x).shape
        np.testing.assert_allclose(ours(x).numpy(), ref(x).numpy(), atol=1e-5)


def test_load_timm_weights_names_the_mismatch():
    with pytest.raises(ValueError, match="differ in parameters"):
        load_timm_weights(ResNet.resnet18(), timm.create_model("resnet50", pretrained=False))
    with pytest.raises(ValueError, match="has shape"):
        load_timm_weights(ResNet.resnet18(num_classes=3), timm.create_model("resnet18", num_classes=5))


@pytest.mark.parametrize("model", [ResNet.small(in_chans=1, num_classes=3), SmallCNN(in_chans=1, num_classes=3)])
def test_small_models_shapes(model):
    x = torch.randn(2, 1, 64, 64)
    assert model(x).shape == (2, 3)
    model.fc = torch.nn.Identity()
    assert model(x).shape == (2, model.num_features)


def test_resnet_rejects_bad_configuration():
    with pytest.raises(ValueError, match="block must be one of"):
        ResNet(block="dense")
    with pytest.raises(ValueError, match="same, non-zero length"):
        ResNet(layers=(2, 2), widths=(64, 128, 256))


# --- attention and ViT vs torch / timm --------------------------------------------------------
def test_multi_head_attention_equals_torch():
    torch.manual_seed(0)
    mha = torch.nn.MultiheadAttention(32, 4, batch_first=True)
    x = torch.randn(3, 10, 32)
    ref_out, ref_w = mha(x, x, x, need_weights=True, average_attn_weights=False)
    out, attn = multi_head_attention(x, mha.in_proj_weight, mha.in_proj_bias, mha.out_proj.weight,
                                     mha.out_proj.bias, num_heads=4)
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(attn, ref_w, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(attn.sum(-1), torch.ones(3, 4, 10))


def test_vit_attention_layer_equals_torch_multihead_attention():
    torch.manual_seed(1)
    mha = torch.nn.MultiheadAttention(32, 4, batch_first=True)
    ours = Attention(32, num_heads=4)
    with torch.no_grad():
        mha.in_proj_bias.normal_(0, 0.1)  # non-zero biases (PyTorch starts them at zero)
        mha.out_proj.bias.normal_(0, 0.1)
        ours.qkv.weight.copy_(mha.in_proj_weight)
        ours.qkv.bias.copy_(mha.in_proj_bias)
        ours.proj.weight.copy_(mha.out_proj.weight)
        ours.proj.bias.copy_(mha.out_proj.bias)
    ours.keep_attention = True
    x = torch.randn(2, 7, 32)
    with torch.no_grad():
        ref_out, ref_w = mha(x, x, x, need_weights=True, average_attn_weights=False)
        out = ours(x)
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours.attention, ref_w, atol=1e-6, rtol=1e-5)
    ours.keep_attention = False
    ours(x)
    assert ours.attention is None


def test_patchify_equals_torch_unfold():
    x = torch.randn(2, 3, 16, 24)
    ref = F.unfold(x, kernel_size=4, stride=4).transpose(1, 2)  # (N, L, C*P*P), channel first
    ours = patchify(x, 4)
    assert ours.shape == (2, 4 * 6, 3 * 16)
    torch.testing.assert_close(ours, ref, atol=0, rtol=0)


def test_patchify_then_linear_equals_patch_embedding_convolution():
    vit = VisionTransformer(**SMALL_VIT)
    x = torch.randn(2, 3, 32, 32)
    w = vit.patch_embed.proj.weight.reshape(64, -1)
    by_hand = patchify(x, 8) @ w.T + vit.patch_embed.proj.bias
    torch.testing.assert_close(by_hand, vit.patch_embed(x), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="not a multiple of the patch size"):
        patchify(torch.zeros(1, 3, 30, 32), 8)


@pytest.mark.parametrize("num_classes", [0, 5])
def test_vit_matches_timm_parameters_and_outputs(num_classes):
    ref = TimmViT(**SMALL_VIT, num_classes=num_classes)
    ours = VisionTransformer(**SMALL_VIT, num_classes=num_classes)
    assert count_parameters(ours) == count_parameters(ref)
    load_timm_weights(ours, ref)
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        a, b = ours.eval()(x), ref.eval()(x)
    assert a.shape == b.shape
    np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5, rtol=0)


def test_vit_tiny_has_timm_parameter_count():
    assert count_parameters(VisionTransformer.from_config("vit_tiny")) == count_parameters(
        timm.create_model("vit_tiny_patch16_224", pretrained=False))


def test_vit_attention_maps_equal_timm_attention():
    ref = TimmViT(**SMALL_VIT).eval()
    ours = load_timm_weights(VisionTransformer(**SMALL_VIT), ref).eval().keep_attention()
    captured = []
    for blk in ref.blocks:
        blk.attn.fused_attn = False
        blk.attn.attn_drop.register_forward_hook(lambda m, i, o: captured.append(o.detach()))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        ref(x)
        ours(x)
    for a, b in zip(ours.attention_maps(), captured):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def test_vit_refuses_the_wrong_size():
    vit = VisionTransformer(**SMALL_VIT)
    with pytest.raises(ValueError, match="takes 32x32 images, got 64x64"):
        vit(torch.zeros(1, 3, 64, 64))


# --- Grad-CAM and rollout ---------------------------------------------------------------------
@pytest.mark.parametrize("builder", [lambda: ResNet.small(in_chans=1, num_classes=3),
                                     lambda: ResNet(layers=(1, 1), widths=(8, 16), in_chans=1, num_classes=4),
                                     lambda: SmallCNN(in_chans=1, num_classes=3, widths=(8, 16))])
@pytest.mark.parametrize("targets", [None, 1])
def test_grad_cam_equals_the_grad_cam_package(builder, targets):
    torch.manual_seed(2)
    model = _randomise_batchnorm(builder()).eval()
    x = torch.randn(4, 1, 32, 32)
    ours = grad_cam(model, model.last_conv_layer, x, targets=targets)
    ref = grad_cam_package(model, model.last_conv_layer, x, targets=targets)
    assert ours.shape == ref.shape == (4, 32, 32)
    assert ours.max() > 0.99  # a non-trivial map, scaled to [0, 1]
    np.testing.assert_allclose(ours, ref, atol=1e-4)


@pytest.mark.parametrize("targets", [None, 2])
def test_grad_cam_of_a_pooled_linear_head_is_the_class_activation_map(targets):
    # after global average pooling and a linear head, d y_c / d A_kij = W_ck / (h w) exactly, so
    # Grad-CAM at the last block is ReLU(sum_k W_ck A_k) / (h w), the class activation map
    torch.manual_seed(4)
    model = _randomise_batchnorm(ResNet(layers=(1, 1), widths=(8, 16), in_chans=1, num_classes=3,
                                        stem="small")).eval()
    x = torch.randn(5, 1, 24, 24)
    ours = grad_cam(model, model.last_conv_layer, x, targets=targets)
    with torch.no_grad():
        A = model.forward_features(x)
        c = model(x).argmax(1) if targets is None else torch.full((5,), targets)
        h, w = A.shape[-2:]
        cam = torch.relu(torch.einsum("nk,nkhw->nhw", model.fc.weight[c], A)) / (h * w)

    def scale(m):
        m = m - m.amin((-2, -1), keepdim=True)
        return m / (1e-7 + m.amax((-2, -1), keepdim=True))

    ref = scale(F.interpolate(scale(cam)[:, None], size=(24, 24), mode="bilinear", align_corners=False)[:, 0])
    assert ours.max() > 0.99
    np.testing.assert_allclose(ours, ref.numpy(), atol=1e-5)


def test_grad_cam_at_an_inner_layer_equals_the_grad_cam_package():
    torch.manual_seed(5)
    model = _randomise_batchnorm(ResNet.small(in_chans=1, num_classes=3, widths=(8, 16, 32, 64))).eval()
    x = torch.randn(3, 1, 32, 32)
    ours = grad_cam(model, model.layer2, x)
    ref = grad_cam_package(model, model.layer2, x)
    np.testing.assert_allclose(ours, ref, atol=1e-4)


def test_grad_cam_rejects_bad_targets_and_restores_mode():
    model = ResNet.small(in_chans=1, num_classes=3).train()
    x = torch.randn(2, 1, 16, 16)
    with pytest.raises(ValueError, match=r"target classes must lie in \[0, 2\]"):
        grad_cam(model, model.last_conv_layer, x, targets=[0, 5])
    grad_cam(model, model.last_conv_layer, x)
    assert model.training


def test_attention_rollout_depth_one_is_the_residual_mixed_attention():
    vit = VisionTransformer(img_size=16, patch_size=8, embed_dim=16, depth=1, num_heads=2).eval()
    x = torch.randn(1, 3, 16, 16)
    maps = attention_rollout(vit, x)
    vit.keep_attention()
    with torch.no_grad():
        vit(x)
    a = vit.attention_maps()[0].mean(1)[0]
    a = (a + torch.eye(5)) / (a + torch.eye(5)).sum(-1, keepdim=True)
    row = a[0, 1:].reshape(1, 2, 2)
    row = (row - row.min()) / (row - row.min()).max()
    expected = F.interpolate(row[:, None], size=(16, 16), mode="bilinear", align_corners=False)[0, 0]
    expected = (expected - expected.min()) / (expected - expected.min()).max()
    np.testing.assert_allclose(maps[0], expected.numpy(), atol=1e-5)
    with pytest.raises(TypeError, match="needs the book's VisionTransformer"):
        attention_rollout(TimmViT(**SMALL_VIT), torch.zeros(1, 3, 32, 32))


# --- pointing game ----------------------------------------------------------------------------
def test_pointing_game_and_iou():
    masks = np.zeros((3, 10, 10), bool)
    masks[:, 2:5, 2:5] = True
    heat = np.zeros((3, 10, 10))
    heat[0, 3, 3] = 1  # on the lesion
    heat[1, 6, 4] = 1  # two pixels off: a hit with tolerance 2 only
    heat[2, 9, 0] = 1  # far off
    res = pointing_game(heat, masks)
    assert res["hits"].tolist() == [True, False, False]
    assert res["random_baseline"] == pytest.approx(9 / 100)
    assert res["center_baseline"] == 0.0
    assert pointing_game(heat, masks, tolerance=2)["hits"].tolist() == [True, True, False]
    np.testing.assert_allclose(heatmap_iou(heat, masks), [1 / 9, 0, 0])
    with pytest.raises(ValueError, match="same shape|one shape"):
        pointing_game(heat, masks[:, :5])


# --- conversion rules and feature extraction ---------------------------------------------------
def test_to_model_input_rules():
    gray = np.full((2, 8, 8), 255, np.uint8)
    x = to_model_input(gray, in_chans=3, mean=(0, 0, 0), std=(1, 1, 1))
    assert x.shape == (2, 3, 8, 8) and torch.all(x == 1)  # repeated, scaled by 1/255
    rgb = np.zeros((1, 4, 4, 3), np.float32)
    rgb[..., 0] = 1.0
    y = to_model_input(rgb, in_chans=1, mean=(0,), std=(1,))
    torch.testing.assert_close(y, torch.full((1, 1, 4, 4), 0.299))  # BT.601 luma
    rgba = np.zeros((1, 4, 4, 4), np.uint8)
    assert to_model_input(rgba, in_chans=3).shape == (1, 3, 4, 4)
    z = to_model_input(torch.full((1, 1, 2, 2), 0.5), in_chans=1, mean=(0.25,), std=(0.5,))
    torch.testing.assert_close(z, torch.full((1, 1, 2, 2), 0.5))
    bad = np.zeros((2, 4, 4), np.float32)
    bad[1, 2, 3] = np.nan
    with pytest.raises(ValueError, match=r"1 NaN or infinite pixel\(s\), the first at .* \(1, 0, 2, 3\)"):
        to_model_input(bad, in_chans=1)
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        to_model_input(np.full((1, 4, 4), 2.0), in_chans=1)
    with pytest.raises(ValueError, match="have 2 channels but the model expects 3"):
        to_model_input(np.zeros((1, 4, 4, 2), np.uint8), in_chans=3)
    with pytest.raises(ValueError, match="share one shape"):
        to_model_input([np.zeros((4, 4), np.uint8), np.zeros((5, 4), np.uint8)], in_chans=1)


def test_extract_features_is_deterministic_batched_and_restores_mode():
    model = image_encoder("small_resnet", in_chans=1, num_classes=0, seed=1).train()
    imgs = np.random.default_rng(0).integers(0, 256, size=(10, 32, 32), dtype=np.uint8)
    a = extract_features(model, imgs, batch_size=4, seed=0, progress=False)
    b = extract_features(model, imgs, batch_size=4, seed=0, progress=False)
    c = extract_features(model, list(imgs), batch_size=10, seed=0, progress=False)
    assert a.shape == (10, model.num_features) and a.dtype == np.float32
    assert a.tobytes() == b.tobytes()
    np.testing.assert_allclose(a, c, atol=1e-5)
    assert model.training
    rgb = np.repeat(imgs[..., None], 3, axis=-1)  # RGB into a 1-channel model: luma of gray = gray
    np.testing.assert_allclose(extract_features(model, rgb, progress=False), a, atol=1e-5)
    with pytest.raises(ValueError, match="no images"):
        extract_features(model, imgs[:0], progress=False)


def test_extract_features_refuses_the_wrong_size_for_a_vit():
    vit = image_encoder("small_vit", in_chans=3)
    with pytest.raises(ValueError, match="takes 64x64 images, got 32x32"):
        extract_features(vit, np.zeros((2, 32, 32), np.uint8), progress=False)
    assert extract_features(vit, np.zeros((2, 64, 64), np.uint8), progress=False).shape == (2, 64)


def test_image_encoder_names_seeds_and_offline_pretrained():
    a = image_encoder("small_cnn", in_chans=1, num_classes=3, seed=5)
    b = image_encoder("small_cnn", in_chans=1, num_classes=3, seed=5)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    r = image_encoder("resnet18", in_chans=1)
    assert r.num_features == 512 and r.conv1.in_channels == 1
    assert count_parameters(image_encoder("oncolab_resnet18")) == count_parameters(image_encoder("resnet18"))
    with pytest.raises(ValueError, match="unknown encoder 'vgg16'"):
        image_encoder("vgg16")
    with pytest.raises(ValueError, match="no pretrained weights"):
        image_encoder("small_vit", pretrained=True)
    t0 = time.perf_counter()
    with pytest.raises(HubUnavailableError, match="offline"):
        image_encoder("resnet18", pretrained=True)
    assert time.perf_counter() - t0 < 5


def test_train_classifier_learns_a_separable_task_and_is_seeded():
    rng = np.random.default_rng(0)
    y = np.arange(60) % 2
    imgs = rng.integers(0, 120, size=(60, 16, 16)).astype(np.uint8)
    imgs[y == 1, 4:12, 4:12] += 120  # class 1 has a bright square
    def run():
        m = image_encoder("small_cnn", in_chans=1, num_classes=2, seed=0, widths=(8, 16))
        hist = train_classifier(m, imgs[:40], y[:40], imgs[40:], y[40:], epochs=10, lr=1e-2, batch_size=8, seed=0)
        return m, hist
    m1, h1 = run()
    m2, h2 = run()
    assert h1["val_loss"] == h2["val_loss"]
    p = predict_proba(m1, imgs[40:])
    assert p.shape == (20, 2)
    np.testing.assert_allclose(p.sum(1), 1, atol=1e-5)
    assert (p.argmax(1) == y[40:]).mean() >= 0.9
    # the weights kept are those of the epoch with the lowest validation loss
    best = h1["best_epoch"]
    assert len(h1["train_loss"]) == len(h1["val_accuracy"]) == 10 and h1["val_loss"][best] == min(h1["val_loss"])
    assert -np.log(p[np.arange(20), y[40:]]).mean() == pytest.approx(h1["val_loss"][best], rel=1e-4)
    assert h1["val_accuracy"][best] == (p.argmax(1) == y[40:]).mean()


def test_lesion_crops_keep_the_lesion_in_the_centre(small_cohort):
    crops, masks = lesion_crops(small_cohort, [0, 1, 2], size=32, window=0.5)
    assert crops.shape == masks.shape == (3, 32, 32) and crops.dtype == np.uint8
    assert masks[:, 14:18, 14:18].any(axis=(1, 2)).all()
    full = small_cohort.lesion_mask(0).mean()
    assert masks[0].mean() == pytest.approx(full * 4, rel=0.25)  # a window of half the side
