"""Image encoders by name, image-to-tensor conversion, feature extraction, small-scale training.

Taught in chapters 2 ("Images, CNNs and ResNet") and 4 ("Vision transformers"); used by
every later chapter that turns images into embeddings (5, 10, 12).

:func:`image_encoder` builds timm's models (``"resnet18"``, ``"resnet50"``, ``"vit_tiny"``,
``"vit_small"``) or the book's own (``"oncolab_resnet18"``, ``"small_resnet"``,
``"small_vit"``, ...; see :data:`ENCODERS`). ``pretrained=True`` loads ImageNet weights from
the Hugging Face hub, which needs a network: offline it fails at once
(:func:`oncolab.env.require_hub`) with advice, instead of retrying for a minute.

Conversion rules (:func:`to_model_input`), stated once and applied everywhere:

* layout: NumPy arrays and lists of arrays are channels-last, as images are read from files:
  a batch is (N, H, W) (grayscale) or (N, H, W, C); a list holds (H, W) or (H, W, C) images of
  one size. Torch tensors are channels-first: (N, C, H, W), or (N, H, W) for grayscale;
* values: ``uint8`` is divided by 255; floating-point images must already lie in [0, 1];
  any NaN or infinite pixel is an error (naming how many and where the first is);
* channels: grayscale into a 3-channel model is repeated three times (what ImageNet-trained
  encoders expect of a radiograph); RGB into a 1-channel model becomes its luma
  ``0.299 R + 0.587 G + 0.114 B`` (ITU-R BT.601); RGBA drops alpha; anything else is an error;
* size: a fixed-size model (a ViT, whose position embeddings are learned for one grid of
  patches) refuses another size with an error saying what it expects: resize first. CNNs
  take any size;
* normalisation: ``(x - mean) / std`` per channel, with the model's ``pretrained_cfg`` mean
  and std (ImageNet's for timm and the book's models; their average for 1-channel models).
"""

from __future__ import annotations

import contextlib
import numbers
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..env import require_hub
from ..training import fit
from .resnet import ResNet, SmallCNN
from .vit import VisionTransformer, load_timm_weights

__all__ = ["ENCODERS", "IMAGENET_MEAN", "IMAGENET_STD", "classifier_head", "extract_features", "fixed_input_size",
           "image_classifier", "image_encoder", "lesion_crops", "predict_proba", "to_model_input", "train_classifier"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_LUMA = (0.299, 0.587, 0.114)

# name -> (kind, timm model name or our builder's configuration)
_TIMM = {"resnet18": "resnet18", "resnet50": "resnet50",
         "vit_tiny": "vit_tiny_patch16_224", "vit_small": "vit_small_patch16_224"}
_OWN = {"oncolab_resnet18": "resnet18", "oncolab_resnet50": "resnet50",
        "oncolab_vit_tiny": "vit_tiny_patch16_224", "oncolab_vit_small": "vit_small_patch16_224",
        "small_cnn": None, "small_resnet": None, "small_vit": None}
ENCODERS: tuple[str, ...] = (*_TIMM, *_OWN)


@contextlib.contextmanager
def _seeded(seed: int):
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        yield


def _build_own(name: str, in_chans: int, num_classes: int, **kwargs) -> nn.Module:
    if name == "oncolab_resnet18":
        return ResNet.resnet18(in_chans=in_chans, num_classes=num_classes, **kwargs)
    if name == "oncolab_resnet50":
        return ResNet.resnet50(in_chans=in_chans, num_classes=num_classes, **kwargs)
    if name in ("oncolab_vit_tiny", "oncolab_vit_small"):
        return VisionTransformer.from_config(name.removeprefix("oncolab_"), in_chans=in_chans,
                                             num_classes=num_classes, **kwargs)
    if name == "small_cnn":
        return SmallCNN(in_chans=in_chans, num_classes=num_classes, **kwargs)
    if name == "small_resnet":
        return ResNet.small(in_chans=in_chans, num_classes=num_classes, **kwargs)
    # small_vit: 64-pixel images, 8-pixel patches (64 tokens), 4 blocks of width 64
    cfg = dict(img_size=64, patch_size=8, embed_dim=64, depth=4, num_heads=4, mlp_ratio=2.0)
    return VisionTransformer(**{**cfg, **kwargs}, in_chans=in_chans, num_classes=num_classes)


def image_encoder(name: str, pretrained: bool = False, in_chans: int = 3, num_classes: int = 0,
                  seed: int = 0, **kwargs) -> nn.Module:
    """An image encoder by name; chapters 2 and 4.

    Parameters
    ----------
    name:
        One of :data:`ENCODERS`: timm's ``"resnet18"``, ``"resnet50"``, ``"vit_tiny"``,
        ``"vit_small"``; the book's from-scratch ``"oncolab_resnet18"``, ``"oncolab_resnet50"``,
        ``"oncolab_vit_tiny"``, ``"oncolab_vit_small"`` (same configurations as timm's),
        ``"small_cnn"``, ``"small_resnet"`` (for 32-96 pixel crops) and ``"small_vit"``
        (64-pixel images).
    pretrained:
        Load ImageNet weights from the hub (needs a network; offline this raises
        :class:`oncolab.env.HubUnavailableError` at once). For the book's ResNet/ViT the timm
        weights are copied in. The ``small_*`` models have no pretrained weights.
    in_chans, num_classes:
        Input channels (1 for radiographs, 3 for RGB); classes of the head, ``0`` for none:
        the model then returns its embedding (``model.num_features`` values per image).
    seed:
        Seeds the random initialisation: same seed, same weights.
    kwargs:
        Passed to the model's constructor (e.g. ``img_size=64`` for a ViT).
    """
    if name not in ENCODERS:
        raise ValueError(f"unknown encoder {name!r}; expected one of {list(ENCODERS)}")
    if isinstance(in_chans, bool) or not isinstance(in_chans, numbers.Integral) or in_chans < 1:
        raise ValueError(f"in_chans must be a positive integer, got {in_chans!r}")
    if pretrained and name.startswith("small_"):
        raise ValueError(f"{name!r} has no pretrained weights; use pretrained=False and train it "
                         f"(pretrained encoders: {[n for n in ENCODERS if not n.startswith('small_')]})")
    if pretrained:  # before importing timm: offline, fail at once
        require_hub(f"timm/{_TIMM.get(name, _OWN.get(name))}", local_hint="pretrained=False")
    import timm

    with _seeded(seed):
        if name in _TIMM:
            model = timm.create_model(_TIMM[name], pretrained=pretrained, in_chans=in_chans,
                                      num_classes=num_classes, **kwargs)
        else:
            model = _build_own(name, in_chans, num_classes, **kwargs)
            if pretrained:
                ref = timm.create_model(_OWN[name], pretrained=True, in_chans=in_chans,
                                        num_classes=num_classes, **kwargs)
                load_timm_weights(model, ref)
            model.pretrained_cfg = {"mean": IMAGENET_MEAN, "std": IMAGENET_STD}
    return model


def image_classifier(family: str, pretrained: bool, in_chans: int, num_classes: int, size: int, seed: int,
                     download: bool = True):
    """An image classifier of a family: the book's small network from scratch, or timm's with ImageNet weights.

    Taught in chapters 2 and 4; the deep stages of the complete system (chapter 12) build their
    fold models with it.

    Parameters
    ----------
    family : {"resnet", "vit"}
        Which network.
    pretrained : bool
        timm's ``resnet18`` / ``vit_tiny`` with ImageNet weights (needs the hub), else the
        book's ``small_resnet`` / ``small_vit`` (its patches cut the image into an 8 x 8 grid)
        from scratch.
    in_chans, num_classes : int
        Input channels and classes.
    size : int
        Input side in pixels (a ViT is built for one size: a multiple of 8, or of 16 when
        pretrained).
    seed : int
        Seeds the initialisation.
    download : bool
        With ``pretrained``: fetch the ImageNet weights (needs the hub). ``False`` builds the
        same timm architecture without weights, for a saved model whose own weights are then
        loaded into it (no hub needed).

    Returns
    -------
    torch.nn.Module
    """
    fetch = pretrained and download
    if family == "resnet":
        return image_encoder("resnet18" if pretrained else "small_resnet", pretrained=fetch, in_chans=in_chans,
                             num_classes=num_classes, seed=seed)
    if family != "vit":
        raise ValueError(f"family must be 'resnet' or 'vit', got {family!r}")
    patch = 16 if pretrained else 8
    if size % patch:
        raise ValueError(f"a {'pretrained ' if pretrained else ''}ViT needs an input side that is a multiple of "
                         f"{patch}, got {size}")
    if pretrained:
        return image_encoder("vit_tiny", pretrained=fetch, in_chans=in_chans, num_classes=num_classes, seed=seed,
                             img_size=size)
    return image_encoder("small_vit", in_chans=in_chans, num_classes=num_classes, seed=seed, img_size=size,
                         patch_size=size // 8)


def fixed_input_size(model: nn.Module) -> tuple[int, int] | None:
    """The (H, W) a model insists on (a ViT), or None when it takes any size (a CNN)."""
    pe = getattr(model, "patch_embed", None)
    if pe is None or getattr(model, "dynamic_img_size", False):
        return None
    if isinstance(model, VisionTransformer) or getattr(pe, "strict_img_size", False):
        size = getattr(pe, "img_size", None)
        return tuple(int(s) for s in size) if size is not None else None
    return None


def _model_in_chans(model: nn.Module) -> int:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            return m.in_channels
    raise ValueError("cannot tell the model's input channels (no Conv2d layer); pass in_chans")


def _stats(model: nn.Module | None, c: int, mean, std) -> tuple[np.ndarray, np.ndarray]:
    cfg = getattr(model, "pretrained_cfg", None) or {}
    mean = np.asarray(mean if mean is not None else cfg.get("mean", IMAGENET_MEAN), dtype=np.float32)
    std = np.asarray(std if std is not None else cfg.get("std", IMAGENET_STD), dtype=np.float32)
    out = []
    for v in (mean, std):
        v = v.reshape(-1)
        if len(v) != c:
            v = np.full(c, v.mean(), dtype=np.float32)
        out.append(v)
    if (out[1] <= 0).any():
        raise ValueError(f"std must be positive, got {out[1].tolist()}")
    return out[0], out[1]


def _as_nchw(images) -> torch.Tensor:
    """Apply the layout rules of the module docstring; returns (N, C, H, W) in the input dtype."""
    if isinstance(images, torch.Tensor):
        x = images.detach().cpu()
        if x.ndim == 3:
            x = x[:, None]
        if x.ndim != 4:
            raise ValueError(f"a tensor of images must be (N, C, H, W) or (N, H, W), got shape {tuple(x.shape)}")
        return x
    if isinstance(images, list | tuple):
        if not images:
            raise ValueError("no images given (an empty list)")
        arrs = [np.asarray(a) for a in images]
        shapes = {a.shape for a in arrs}
        if len(shapes) > 1:
            raise ValueError(f"images in a list must share one shape, got {sorted(shapes)[:3]}; crop or resize them first")
        if arrs[0].ndim not in (2, 3):
            raise ValueError(f"each image must be (H, W) or (H, W, C), got shape {arrs[0].shape}")
        images = np.stack(arrs)
    arr = np.asarray(images)
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.ndim != 4:
        raise ValueError(f"an array of images must be (N, H, W) or (N, H, W, C), got shape {arr.shape}")
    if arr.shape[-1] == 4:  # RGBA: drop alpha
        arr = arr[..., :3]
    if arr.dtype == np.uint16 or arr.dtype.kind == "b":
        raise ValueError(f"images must be uint8 or floating point in [0, 1], got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr)
    if not arr.flags.writeable:  # e.g. a view of a PIL image; torch wants memory it may write
        arr = arr.copy()
    return torch.from_numpy(arr).permute(0, 3, 1, 2)


def to_model_input(images, model: nn.Module | None = None, in_chans: int | None = None,
                   mean: Sequence[float] | None = None, std: Sequence[float] | None = None) -> torch.Tensor:
    """Images -> a normalised float32 (N, C, H, W) tensor for ``model``; chapter 2.

    Follows the conversion rules of this module's docstring (layout, values, channels, size,
    normalisation). ``in_chans`` defaults to the model's; ``mean``/``std`` to its
    ``pretrained_cfg``.
    """
    x = _as_nchw(images)
    if x.shape[0] == 0:
        raise ValueError("no images given (a batch of size 0)")
    if x.dtype == torch.uint8:
        x = x.float() / 255.0
    elif x.is_floating_point():
        x = x.float()
        bad = ~torch.isfinite(x)
        if bad.any():
            first = tuple(int(i) for i in bad.nonzero()[0])
            raise ValueError(f"images contain {int(bad.sum())} NaN or infinite pixel(s), the first at "
                             f"(image, channel, row, col) = {first}; fill or drop them before encoding")
        lo, hi = float(x.min()), float(x.max())
        if lo < 0 or hi > 1:
            raise ValueError(f"floating-point images must lie in [0, 1], got values in [{lo:.3g}, {hi:.3g}]; "
                             "pass uint8 images or scale them first")
    else:
        raise ValueError(f"images must be uint8 or floating point in [0, 1], got dtype {x.dtype}")
    target = in_chans if in_chans is not None else (_model_in_chans(model) if model is not None else x.shape[1])
    c = x.shape[1]
    if c != target:
        if c == 1 and target == 3:
            x = x.expand(-1, 3, -1, -1)
        elif c == 3 and target == 1:
            x = (x * torch.tensor(_LUMA).view(1, 3, 1, 1)).sum(1, keepdim=True)
        else:
            raise ValueError(f"images have {c} channels but the model expects {target}; only grayscale<->RGB "
                             "(and RGBA->RGB) are converted")
    if model is not None:
        size = fixed_input_size(model)
        if size is not None and tuple(x.shape[-2:]) != size:
            raise ValueError(f"this model takes {size[0]}x{size[1]} images, got {x.shape[-2]}x{x.shape[-1]}; "
                             "resize the images first")
    m, s = _stats(model, target, mean, std)
    return ((x - torch.from_numpy(m).view(1, -1, 1, 1)) / torch.from_numpy(s).view(1, -1, 1, 1)).contiguous()


def _batches(n: int, batch_size: int):
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    return [(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]


def _n_images(images) -> int:
    if isinstance(images, list | tuple):
        return len(images)
    return int(images.shape[0])


def classifier_head(model: nn.Module) -> nn.Module:
    """The classification head of an image encoder (the last layer, mapping the embedding to logits).

    Taught in chapter 2. timm models name it through ``get_classifier()``; the book's ResNet
    and CNN call it ``fc``, its ViT ``head``. A model built with ``num_classes=0`` has an
    identity there.

    Parameters
    ----------
    model : torch.nn.Module
        An encoder from :func:`image_encoder` (or any timm model).

    Returns
    -------
    torch.nn.Module
        The head module.
    """
    if hasattr(model, "get_classifier"):
        return model.get_classifier()
    for name in ("fc", "head"):
        head = getattr(model, name, None)
        if isinstance(head, nn.Module):
            return head
    raise ValueError(f"cannot find the classification head of {type(model).__name__}: expected a timm model or one "
                     "with an 'fc' or 'head' layer")


@torch.no_grad()
def extract_features(model: nn.Module, images, batch_size: int = 64, seed: int = 0,
                     progress: bool = True, device: str | None = None,
                     mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                     pre_logits: bool = False) -> np.ndarray:
    """Images -> embeddings (N, D) float32 with ``model`` in eval mode, in batches; chapters 2, 4.

    Each batch is converted by :func:`to_model_input` (so a million crops never sit in memory
    as floats) and run under ``torch.no_grad()``. A model built with ``num_classes=0`` returns
    its embedding; one with a head returns logits, or with ``pre_logits=True`` what enters its
    head (:func:`classifier_head`): the embedding a trained classifier has learnt, its
    penultimate layer. ``seed`` fixes any randomness left in the model (none in eval mode for
    the book's encoders): same seed, same bytes. ``progress`` shows a progress bar. The model's
    train/eval mode is restored afterwards.

    Parameters
    ----------
    model : torch.nn.Module
        The encoder.
    images : array-like or torch.Tensor
        Images, following :func:`to_model_input`'s rules.
    batch_size, seed, progress, device, mean, std
        Images per batch; seed; progress bar; where to run (default: where the model is);
        normalisation (default: the model's ``pretrained_cfg``).
    pre_logits : bool
        Return the input of the classification head instead of the model's output.

    Returns
    -------
    ndarray
        ``(N, D)`` float32.
    """
    from tqdm import tqdm

    n = _n_images(images)
    if n == 0:
        raise ValueError("no images given (an empty batch)")
    dev = torch.device(device) if device else next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    seen: list[torch.Tensor] = []
    hook = (classifier_head(model).register_forward_hook(lambda m, inp, o: seen.append(inp[0].flatten(1)))
            if pre_logits else None)
    try:
        with _seeded(seed):
            for a, b in tqdm(_batches(n, batch_size), disable=not progress, desc="features", unit="batch"):
                x = to_model_input(images[a:b], model, mean=mean, std=std).to(dev)
                y = model(x)
                out.append((seen.pop() if pre_logits else y).float().cpu())
    finally:
        model.train(was_training)
        if hook is not None:
            hook.remove()
    feats = torch.cat(out)
    if feats.ndim != 2:
        raise ValueError(f"the model returned outputs of shape {tuple(feats.shape[1:])} per image; "
                         "build it with num_classes=0 (pooled embedding) or a head")
    return feats.numpy()


def predict_proba(model: nn.Module, images, batch_size: int = 256, **kwargs) -> np.ndarray:
    """Class probabilities (N, K) of a classifier (softmax of its logits); chapters 2, 4."""
    logits = extract_features(model, images, batch_size=batch_size, progress=False, **kwargs)
    return torch.from_numpy(logits).softmax(1).numpy()


def train_classifier(model: nn.Module, images, y, val_images=None, val_y=None, epochs: int = 10,
                     lr: float = 1e-3, batch_size: int = 64, weight_decay: float = 1e-4,
                     augment: bool = True, seed: int = 0, device: str | None = None) -> dict:
    """Train an image classifier with cross-entropy and AdamW; chapters 2 and 4.

    Shuffled mini-batches, a one-cycle learning-rate schedule, and with ``augment`` each
    training image flipped left-right and up-down at random (lesions and tissue have no
    preferred orientation). With a validation set the weights of the epoch with the lowest
    validation loss are kept. The loop is :func:`oncolab.training.fit`.

    Parameters
    ----------
    model : torch.nn.Module
        A classifier returning logits (e.g. from :func:`image_encoder` with ``num_classes``).
    images : array-like or torch.Tensor
        Training images, following :func:`to_model_input`'s rules.
    y : array-like of int
        Classes, in ``0 .. n_classes - 1``.
    val_images, val_y : optional
        Validation images and classes.
    epochs, lr, batch_size, weight_decay : int, float, int, float
        Epochs, peak learning rate, images per mini-batch, AdamW's weight decay.
    augment : bool
        Random flips of the training images.
    seed : int
        Seeds the mini-batch order, the flips and dropout: same seed, same weights (on the CPU).
    device : str or None
        Where to train; None: where the model is.

    Returns
    -------
    dict
        ``train_loss`` per epoch, and with a validation set ``val_loss``, ``val_accuracy`` per
        epoch and ``best_epoch`` (from 0), the epoch whose weights are kept.
    """
    y_t = torch.as_tensor(np.asarray(y), dtype=torch.long)
    x = to_model_input(images, model)
    if len(y_t) != len(x):
        raise ValueError(f"{len(x)} images but {len(y_t)} labels")
    val = None
    if val_images is not None:
        xv = to_model_input(val_images, model)
        yv = torch.as_tensor(np.asarray(val_y), dtype=torch.long)
        if len(yv) != len(xv):
            raise ValueError(f"{len(xv)} validation images but {len(yv)} labels")
        val = (xv, yv)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    flips = torch.Generator().manual_seed(int(seed))

    def loss_fn(m, batch):
        xb, yb = batch
        if augment and m.training:
            flip = (torch.rand(len(xb), 2, generator=flips) < 0.5).to(xb.device)
            xb = torch.where(flip[:, 0].view(-1, 1, 1, 1), xb.flip(-1), xb)
            xb = torch.where(flip[:, 1].view(-1, 1, 1, 1), xb.flip(-2), xb)
        logits = m(xb)
        if int(yb.max()) >= logits.shape[1] or int(yb.min()) < 0:
            raise ValueError(f"labels must lie in [0, {logits.shape[1] - 1}] (the model's outputs), "
                             f"got [{int(yb.min())}, {int(yb.max())}]")
        loss = F.cross_entropy(logits, yb)
        return loss, {"accuracy": float((logits.argmax(1) == yb).float().mean())}

    def one_cycle(opt, total_steps):
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(1, total_steps))

    res = fit(model, loss_fn, (x, y_t), val=val, epochs=epochs, lr=lr, weight_decay=weight_decay,
              optimizer="adamw", batch_size=batch_size, val_batch_size=256, schedule=one_cycle, seed=int(seed),
              device=device)
    hist: dict = {"train_loss": res.curve("train_loss"), "val_loss": [], "val_accuracy": []}
    if val is not None:
        hist["val_loss"], hist["val_accuracy"] = res.curve("val_loss"), res.curve("val_accuracy")
        hist["best_epoch"] = res.best_epoch
    return hist


def lesion_crops(cohort, indices=None, size: int = 64, window: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Radiograph crops centred on each lesion's box, and the lesion masks cut the same way; chapter 2.

    The window is a fixed square, ``window`` times the image side, centred on the true box
    (:func:`oncolab.detection.roi_crop` cuts it: zero padding outside the image, bilinear
    resize to ``size``). A fixed window keeps the lesion's true size visible; a window fitted
    to the box (what a detector's crop does) makes every lesion look the same size. Returns
    ``(crops uint8 (N, size, size), masks bool (N, size, size))``.
    """
    from ..detection.crops import centred_window, roi_crop

    if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 8:
        raise ValueError(f"size must be an integer >= 8, got {size!r}")
    if not 0 < window <= 1:
        raise ValueError(f"window must lie in (0, 1], got {window!r}")
    idx = np.arange(len(cohort)) if indices is None else np.asarray(indices)
    crops = np.empty((len(idx), size, size), np.uint8)
    masks = np.empty((len(idx), size, size), bool)
    for k, i in enumerate(idx):
        img, mask = cohort.radiograph(int(i)), cohort.lesion_mask(int(i))
        square = centred_window(cohort.boxes.iloc[int(i)][["x0", "y0", "x1", "y1"]].to_numpy(float), img.shape, window)
        crops[k] = roi_crop(img, square, size=size, margin=0.0)
        masks[k] = roi_crop(mask.astype(np.uint8) * 255, square, size=size, margin=0.0) > 127
    return crops, masks
