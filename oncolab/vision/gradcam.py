"""Where does an image model look? Grad-CAM, attention rollout, overlays and the pointing game.

Grad-CAM is taught in chapter 2 ("Images, CNNs and ResNet"), attention rollout in chapter 4
("Vision transformers"); chapter 11 compares them with other explanations.

* :func:`grad_cam` (Selvaraju et al. 2017) from first principles: the class score's gradient
  with respect to a convolutional layer's activations, averaged over space, weights each
  channel; ``relu`` of the weighted sum is the map. It follows the ``grad-cam`` package's
  steps (per-image min-max scaling, bilinear resize to the input, scaling again), so the two
  agree to float precision; :func:`grad_cam_package` calls the package.
* :func:`attention_rollout` (Abnar & Zuidema 2020): average the heads, add the identity for
  the residual path, renormalise rows, multiply through the layers; the class token's row
  says how much each patch flows into the embedding.
* :func:`pointing_game` (Zhang et al. 2018) scores a map against the true lesion mask: a hit
  when the map's maximum falls on the lesion. :func:`heatmap_iou` thresholds the map instead.
* :func:`overlay` draws a map over its image.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import nn

from .vit import VisionTransformer

__all__ = ["attention_rollout", "grad_cam", "grad_cam_package", "heatmap_iou", "overlay",
           "pointing_game"]


def _targets(targets, logits: torch.Tensor) -> torch.Tensor:
    n = logits.shape[0]
    if targets is None:
        return logits.argmax(1)
    if isinstance(targets, numbers.Integral):
        t = torch.full((n,), int(targets), dtype=torch.long)
    else:
        t = torch.as_tensor(np.asarray(targets), dtype=torch.long).reshape(-1)
        if len(t) != n:
            raise ValueError(f"{len(t)} targets for {n} images")
    if (t < 0).any() or (t >= logits.shape[1]).any():
        raise ValueError(f"target classes must lie in [0, {logits.shape[1] - 1}], got {t.tolist()}")
    return t


def _minmax(cam: torch.Tensor) -> torch.Tensor:
    flat = cam.flatten(1)
    lo = flat.min(1).values.view(-1, 1, 1)
    cam = cam - lo
    hi = cam.flatten(1).max(1).values.view(-1, 1, 1)
    return cam / (1e-7 + hi)


def _check_batch(x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise ValueError("x must be a model-input tensor (N, C, H, W); convert images with "
                         f"oncolab.vision.to_model_input, got {type(x).__name__} "
                         f"{tuple(getattr(x, 'shape', ()))}")


def grad_cam(model: nn.Module, target_layer: nn.Module, x: torch.Tensor,
             targets: int | Sequence[int] | None = None) -> np.ndarray:
    """Grad-CAM maps (N, H, W) in [0, 1] for a batch of model inputs; chapter 2.

    ``target_layer`` is a module whose output is a (N, K, h, w) feature map (for a ResNet,
    its last block: ``model.last_conv_layer``); ``targets`` the class explained for each
    image (default: the predicted class). Steps: ``A`` = the layer's activations,
    ``alpha_k = mean_{ij} d y_c / d A_kij``, ``cam = relu(sum_k alpha_k A_k)``, scaled to
    [0, 1] per image, resized bilinearly to (H, W) and scaled again.
    """
    _check_batch(x)
    store: dict[str, torch.Tensor] = {}

    def hook(_m, _inp, out):
        store["A"] = out

    handle = target_layer.register_forward_hook(hook)
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            xin = x.detach().clone().requires_grad_(True)
            logits = model(xin)
            if "A" not in store:
                raise ValueError("the target layer was not used in the forward pass")
            acts = store["A"]
            if acts.ndim != 4:
                raise ValueError(f"the target layer's output must be (N, K, h, w), got {tuple(acts.shape)}")
            t = _targets(targets, logits)
            score = logits.gather(1, t.view(-1, 1).to(logits.device)).sum()
            (grads,) = torch.autograd.grad(score, acts)
    finally:
        handle.remove()
        model.train(was_training)
    weights = grads.mean(dim=(2, 3), keepdim=True)
    cam = torch.relu((weights * acts).sum(1)).detach().float().cpu()
    cam = _minmax(cam)
    cam = F.interpolate(cam[:, None], size=tuple(x.shape[-2:]), mode="bilinear", align_corners=False)[:, 0]
    return _minmax(cam).numpy().astype(np.float32)


def grad_cam_package(model: nn.Module, target_layer: nn.Module, x: torch.Tensor,
                     targets: int | Sequence[int] | None = None) -> np.ndarray:
    """The same maps through the ``grad-cam`` package (``pytorch_grad_cam.GradCAM``); chapter 2."""
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    _check_batch(x)
    was_training = model.training
    tgt = None
    if targets is not None:
        with torch.no_grad():
            model.eval()
            t = _targets(targets, model(x))
        tgt = [ClassifierOutputTarget(int(c)) for c in t]
    try:
        with GradCAM(model=model, target_layers=[target_layer]) as cam:
            out = cam(input_tensor=x, targets=tgt)
    finally:
        model.train(was_training)
    return np.asarray(out, dtype=np.float32)


def attention_rollout(model: VisionTransformer, x: torch.Tensor, head_fusion: str = "mean") -> np.ndarray:
    """Attention rollout maps (N, H, W) in [0, 1] for a batch of model inputs; chapter 4.

    For each block, the heads' attention is fused (``"mean"``, ``"max"`` or ``"min"``),
    the identity is added (the residual connection carries half of the flow) and rows are
    renormalised: ``A' = (A + I) / rowsum``; the rollout is ``A'_L ... A'_2 A'_1``. The class
    token's row over the patch tokens, on the patch grid, scaled to [0, 1] and resized
    bilinearly to the image, is the map.
    """
    if not isinstance(model, VisionTransformer):
        raise TypeError("attention_rollout needs the book's VisionTransformer (it keeps its attention "
                        f"weights); got {type(model).__name__}. Copy timm weights in with load_timm_weights")
    if head_fusion not in ("mean", "max", "min"):
        raise ValueError(f"head_fusion must be 'mean', 'max' or 'min', got {head_fusion!r}")
    _check_batch(x)
    was_training = model.training
    model.eval().keep_attention(True)
    try:
        with torch.no_grad():
            model(x)
            maps = model.attention_maps()
    finally:
        model.keep_attention(False)
        model.train(was_training)
    n, _, t, _ = maps[0].shape
    eye = torch.eye(t).expand(n, t, t)
    rollout = eye.clone()
    for a in maps:
        a = getattr(a, head_fusion)(dim=1)
        a = a.values if not isinstance(a, torch.Tensor) else a
        a = a + eye
        a = a / a.sum(-1, keepdim=True)
        rollout = a @ rollout
    g = model.patch_embed.grid_size
    cls = rollout[:, 0, 1:].reshape(n, *g)
    cls = _minmax(cls)
    out = F.interpolate(cls[:, None], size=tuple(x.shape[-2:]), mode="bilinear", align_corners=False)[:, 0]
    return _minmax(out).numpy().astype(np.float32)


def _disk(radius: int) -> np.ndarray:
    r = int(radius)
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    return xx**2 + yy**2 <= r * r


def _check_maps(heatmaps, masks) -> tuple[np.ndarray, np.ndarray]:
    h = np.asarray(heatmaps, dtype=np.float64)
    m = np.asarray(masks).astype(bool)
    if h.ndim == 2:
        h, m = h[None], m[None] if m.ndim == 2 else m
    if h.ndim != 3 or h.shape != m.shape:
        raise ValueError(f"heatmaps and masks must both be (N, H, W) of one shape, got {h.shape} and {m.shape}")
    if not np.isfinite(h).all():
        raise ValueError("heatmaps contain NaN or infinite values")
    return h, m


def pointing_game(heatmaps, masks, tolerance: int = 0) -> dict:
    """Pointing game: is each map's maximum on the lesion (within ``tolerance`` pixels)? Chapter 2.

    Returns ``hits`` (bool per image), ``hit_rate``, and two baselines to read it against:
    ``random_baseline`` (the expected hit rate of a uniformly random point: the mean lesion
    fraction of the image, after the same tolerance) and ``center_baseline`` (always pointing
    at the image's centre; for crops centred on the lesion this one is hard to beat).
    """
    h, m = _check_maps(heatmaps, masks)
    if isinstance(tolerance, bool) or not isinstance(tolerance, numbers.Integral) or tolerance < 0:
        raise ValueError(f"tolerance must be a non-negative integer (pixels), got {tolerance!r}")
    if tolerance:
        m = np.stack([ndimage.binary_dilation(mi, structure=_disk(tolerance)) for mi in m])
    n, hh, ww = h.shape
    flat = h.reshape(n, -1).argmax(1)
    hits = m.reshape(n, -1)[np.arange(n), flat]
    return {"hits": hits, "hit_rate": float(hits.mean()),
            "random_baseline": float(m.reshape(n, -1).mean(1).mean()),
            "center_baseline": float(m[:, hh // 2, ww // 2].mean())}


def heatmap_iou(heatmaps, masks, threshold: float = 0.5) -> np.ndarray:
    """IoU of each map thresholded at ``threshold`` (maps scaled to [0, 1]) with its mask; chapter 2."""
    h, m = _check_maps(heatmaps, masks)
    if not 0 <= threshold <= 1:
        raise ValueError(f"threshold must lie in [0, 1], got {threshold!r}")
    pred = h >= threshold
    inter = (pred & m).reshape(len(h), -1).sum(1)
    union = (pred | m).reshape(len(h), -1).sum(1)
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def overlay(image: np.ndarray, heatmap: np.ndarray, mask: np.ndarray | None = None, ax=None,
            alpha: float = 0.45, cmap: str = "jet", title: str | None = None):
    """Draw ``heatmap`` over ``image`` (grayscale or RGB), with the mask's outline in white; chapter 2.

    Returns the matplotlib axes.
    """
    import matplotlib.pyplot as plt

    img = np.asarray(image)
    hm = np.asarray(heatmap, dtype=float)
    if img.shape[:2] != hm.shape:
        raise ValueError(f"image {img.shape[:2]} and heatmap {hm.shape} must have the same height and width")
    if ax is None:
        _, ax = plt.subplots(figsize=(3, 3))
    ax.imshow(img, cmap="gray" if img.ndim == 2 else None)
    ax.imshow(hm, cmap=cmap, alpha=alpha, vmin=0, vmax=1)
    if mask is not None:
        ax.contour(np.asarray(mask, dtype=float), levels=[0.5], colors="white", linewidths=1)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=9)
    return ax
