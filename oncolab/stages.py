"""The encoders the complete system plugs together, and the hand-made fallbacks.

Taught in chapter 10 ("Fusion strategies", where the embeddings come from) and chapter 12
("The complete system", how the stages are chosen).

Each modality becomes one numeric feature vector per patient. The stages here are the
small, fast ones that need no training beyond a linear map: they run anywhere in seconds and
are the defaults of the system, so that the book's last chapter runs on a laptop CPU.

* ``radiograph_features``: from the lesion's box (annotated, or found by a detector), the
  size of the box, how dark, mottled and blurred the lesion is against the bone around it,
  and whether it has a bright (sclerotic) rim;
* ``slide_features``: haematoxylin optical density by colour deconvolution (Ruifrok and
  Johnston), the density, size and size variation of nuclei, very dark clumps (mitoses);
* ``lab_features``: log-values of the panel plus one "not measured" indicator per analyte
  (a missing value is never invented: it is set to the training median *and* flagged);
* clinical and gene-expression encoders live in :mod:`oncolab.omics`.

The learned encoders of chapters 2-6 (CNN features of the detector's crop, attention-MIL
over slide tiles, a BERT over the lab narrative) plug in at the same place; see
:mod:`oncolab.system`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import ndimage

__all__ = [
    "RADIOGRAPH_FEATURES",
    "SLIDE_FEATURES",
    "lab_features",
    "radiograph_features",
    "slide_features",
]

RADIOGRAPH_FEATURES = ("box_w", "box_h", "box_size", "inner_mean", "inner_std", "contrast",
                       "edge_sharpness", "rim", "texture")
SLIDE_FEATURES = ("tissue_frac", "h_mean", "h_frac_nuclear", "nuclei_density", "nucleus_area",
                  "nucleus_area_cv", "h_p99", "dark_clumps", "e_mean")


def _check_image(img, name: str, ndim: int) -> np.ndarray:
    img = np.asarray(img)
    if img.ndim != ndim or img.size == 0 or not np.isfinite(img.astype(float)).all():
        shape = "(H, W)" if ndim == 2 else "(H, W, 3)"
        raise ValueError(f"{name} must be a finite {shape} image, got shape {img.shape}")
    if ndim == 3 and img.shape[2] != 3:
        raise ValueError(f"{name} must have 3 colour channels, got shape {img.shape}")
    return img


def radiograph_features(image: np.ndarray, box) -> np.ndarray:
    """Nine numbers describing the lesion inside ``box`` = (x0, y0, x1, y1) in pixels.

    Sizes are fractions of the image side, intensities fractions of 255, so that the same
    lesion gives the same numbers at any image size.
    """
    img = _check_image(image, "radiograph", 2).astype(np.float32) / 255.0
    h_img, w_img = img.shape
    x0, y0, x1, y1 = (float(v) for v in box)
    if not (0 <= x0 < x1 <= w_img and 0 <= y0 < y1 <= h_img):
        raise ValueError(f"box {tuple(box)} does not lie inside the {w_img}x{h_img} image")
    side = float(max(h_img, w_img))
    w, h = x1 - x0, y1 - y0
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2

    def region(scale):
        hx, hy = max(w * scale / 2, 1.0), max(h * scale / 2, 1.0)
        return (slice(int(max(cy - hy, 0)), int(min(cy + hy, h_img)) or 1),
                slice(int(max(cx - hx, 0)), int(min(cx + hx, w_img)) or 1))

    inner = img[region(0.5)]
    ring_region = img[region(1.8)].copy()
    yy, xx = np.mgrid[region(1.8)]
    outside = (np.abs(xx - cx) > w * 0.6) | (np.abs(yy - cy) > h * 0.6)
    ring = ring_region[outside] if outside.any() else ring_region.ravel()
    pad = int(max(w, h) * 0.5) + 4
    ya, yb = max(int(y0) - pad, 0), min(int(np.ceil(y1)) + pad, h_img)
    xa, xb = max(int(x0) - pad, 0), min(int(np.ceil(x1)) + pad, w_img)
    crop = img[ya:yb, xa:xb]
    grad = np.hypot(ndimage.sobel(crop, 0), ndimage.sobel(crop, 1))
    box_sl = (slice(int(y0) - ya, int(np.ceil(y1)) - ya), slice(int(x0) - xa, int(np.ceil(x1)) - xa))
    inner_mean = float(inner.mean())
    contrast = float(np.median(ring) - inner_mean)
    edge = float(np.percentile(grad[box_sl], 90)) / (abs(contrast) + 0.05)
    band = crop[box_sl]
    rim = float(np.percentile(band, 99) - np.median(ring))
    resid = np.abs(crop - ndimage.gaussian_filter(crop, 2.0))
    iy, ix = region(0.5)
    texture = float(resid[iy.start - ya:iy.stop - ya, ix.start - xa:ix.stop - xa].mean())
    return np.array([w / side, h / side, np.sqrt(w * h) / side, inner_mean, float(inner.std()),
                     contrast, edge, rim, texture], dtype=np.float64)


def slide_features(image: np.ndarray) -> np.ndarray:
    """Nine numbers describing the nuclei of an H&E region (uint8 RGB).

    Haematoxylin and eosin amounts come from colour deconvolution
    (:func:`skimage.color.rgb2hed`); nuclei are the connected regions of high haematoxylin.
    Densities are per tissue pixel, areas fractions of the region, so that the numbers do
    not depend on the region's size.
    """
    from skimage.color import rgb2hed

    img = _check_image(image, "slide", 3)
    hed = rgb2hed(img)
    hch, ech = hed[..., 0], hed[..., 1]
    tissue = img.astype(np.float32).mean(2) < 225
    n_tissue = max(int(tissue.sum()), 1)
    h_t = hch[tissue] if tissue.any() else hch.ravel()
    thr = float(np.median(h_t) + 2.0 * (np.percentile(h_t, 75) - np.median(h_t)) + 1e-3)
    nuclear = (hch > thr) & tissue
    labels, n_nuc = ndimage.label(nuclear)
    areas = np.bincount(labels.ravel())[1:] if n_nuc else np.zeros(1)
    areas = areas[areas >= 3] if (areas >= 3).any() else areas
    size = float(img.shape[0] * img.shape[1])
    dark = hch > np.percentile(h_t, 99.5)
    _, n_dark = ndimage.label(ndimage.binary_opening(dark & tissue))
    return np.array([
        n_tissue / size, float(h_t.mean()), float(nuclear.sum()) / n_tissue,
        len(areas) / n_tissue * 1e3, float(areas.mean()) / size * 1e4,
        float(areas.std() / (areas.mean() + 1e-9)), float(np.percentile(h_t, 99)),
        n_dark / n_tissue * 1e3, float(ech[tissue].mean()) if tissue.any() else 0.0,
    ], dtype=np.float64)


def lab_features(labs: pd.DataFrame) -> pd.DataFrame:
    """Log of every lab value plus a 0/1 ``<name>_missing`` column; NaN stays NaN here.

    The NaNs are filled later with the training median by the model that reads this table,
    the indicator telling it which values were filled.
    """
    if not isinstance(labs, pd.DataFrame):
        raise TypeError(f"labs must be a DataFrame, got {type(labs).__name__}")
    vals = labs.astype(float)
    if (vals < 0).any().any():
        col = vals.columns[(vals < 0).any()][0]
        raise ValueError(f"lab {col!r} has a negative value; concentrations are >= 0")
    out = np.log1p(vals)
    miss = vals.isna().astype(float).add_suffix("_missing")
    return pd.concat([out, miss], axis=1)
