"""Hand-made features of a radiograph: the lesion inside a box, and the whole image's histogram.

Taught in chapter 1 (the intensity histogram, the floor every radiograph model is measured
from) and chapter 10 (the lesion measurements, the radiograph stage of the hand-made system
that chapter 12 sets beside the learned one).

* :func:`lesion_measurements` (:class:`LesionMeasurements`): nine numbers describing the
  lesion inside a box: its size, how dark, mottled and blurred it is against the bone around
  it, and whether it has a bright (sclerotic) rim (:data:`LESION_FEATURES`);
* :func:`intensity_histogram` (:class:`IntensityHistogram`): the fraction of pixels in each
  of ``bins`` grey-level bins plus the fractions of dark pixels. It needs no box, and sees the
  lesion only through the share of the image it darkens.

The box is an input: a detector's box at prediction, or the annotated one where a result says
so (an annotation is a label, not an observation).
"""

from __future__ import annotations

import numbers

import numpy as np
from scipy import ndimage

from .base import Measurements

__all__ = ["LESION_FEATURES", "IntensityHistogram", "LesionMeasurements", "intensity_histogram",
           "lesion_measurements"]

LESION_FEATURES: tuple[str, ...] = ("box_w", "box_h", "box_size", "inner_mean", "inner_std", "contrast",
                                    "edge_sharpness", "rim", "texture")
"""Names of the nine numbers of :func:`lesion_measurements`, in order."""


def _check_radiograph(image) -> np.ndarray:
    img = np.asarray(image)
    if img.ndim != 2 or img.size == 0:
        raise ValueError(f"a radiograph is a non-empty 2-D (H, W) grayscale array, got shape {img.shape}")
    if not np.isfinite(img.astype(np.float64)).all():
        raise ValueError("the radiograph has NaN or infinite pixels; expected grey levels in [0, 255]")
    return img


def lesion_measurements(image, box) -> np.ndarray:
    """Nine numbers describing the lesion inside ``box`` = (x0, y0, x1, y1) in pixels.

    Taught in chapter 10 (the hand-made radiograph stage); chapter 12 compares it with the
    learned one.

    Sizes are fractions of the image's longer side and intensities fractions of 255, so that
    the same lesion gives the same numbers at any image size. In order
    (:data:`LESION_FEATURES`): box width, height and geometric-mean size; mean and standard
    deviation of the central half of the box; contrast (median of a ring of bone around the
    box minus the lesion's mean: a lytic lesion is darker); edge sharpness (90th percentile
    of the Sobel gradient inside the box, relative to the contrast: a blurred, permeative
    margin is soft); rim (99th percentile inside the box minus the ring's median: a
    sclerotic rim is bright); texture (mean absolute difference from a Gaussian-smoothed
    copy inside the box's centre: a mottled lesion is rough).

    Parameters
    ----------
    image : array_like
        The radiograph, (H, W) grey levels in [0, 255] (uint8 or float).
    box : sequence of 4 floats
        (x0, y0, x1, y1) in pixels, with 0 <= x0 < x1 <= W and 0 <= y0 < y1 <= H.

    Returns
    -------
    numpy.ndarray
        float64 array of shape (9,).

    Raises
    ------
    ValueError
        When ``image`` is not a non-empty 2-D array of finite values, or ``box`` is not four
        numbers lying inside the image with ``x0 < x1`` and ``y0 < y1``.
    """
    img = _check_radiograph(image).astype(np.float32) / 255.0
    h_img, w_img = img.shape
    try:
        x0, y0, x1, y1 = (float(v) for v in box)
    except (TypeError, ValueError):
        raise ValueError(f"box must be 4 numbers (x0, y0, x1, y1) in pixels, got {box!r}") from None
    if not (0 <= x0 < x1 <= w_img and 0 <= y0 < y1 <= h_img):
        raise ValueError(f"box {tuple(box)} does not lie inside the {w_img}x{h_img} image; "
                         f"expected 0 <= x0 < x1 <= {w_img} and 0 <= y0 < y1 <= {h_img}")
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


def _check_bins(bins) -> int:
    if isinstance(bins, bool) or not isinstance(bins, numbers.Integral) or bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins!r}")
    return int(bins)


def intensity_histogram(image, bins: int = 16) -> np.ndarray:
    """Grey-level histogram of a radiograph plus the fractions of dark pixels.

    Taught in chapter 1 (the radiograph baseline).

    Parameters
    ----------
    image : array_like
        The radiograph, (H, W) grey levels in [0, 255].
    bins : int
        Number of equal-width bins over [0, 255].

    Returns
    -------
    numpy.ndarray
        float64 array of shape (bins + 2,): the fraction of pixels in each bin, then the
        fractions of pixels below 60 and below 90 (dark: where bone was destroyed).

    Raises
    ------
    ValueError
        When ``bins`` is not a positive integer or ``image`` is not a non-empty 2-D array of
        finite values.
    """
    bins = _check_bins(bins)
    img = _check_radiograph(image).astype(np.float32)
    hist = np.histogram(img, bins=bins, range=(0, 255))[0] / img.size
    return np.concatenate([hist, [(img < 60).mean(), (img < 90).mean()]]).astype(np.float64)


class LesionMeasurements(Measurements):
    """:func:`lesion_measurements` as a scikit-learn transformer; learns nothing.

    Taught in chapter 10.

    ``transform(X)`` takes a sequence of ``(image, box)`` pairs, one per patient, and returns
    a float64 array (n, 9) whose columns are :data:`LESION_FEATURES`. Standardise it (the
    numbers have different scales) with the next step of a Pipeline. ``state()`` holds no
    settings and no arrays.
    """

    def _measure(self, item) -> np.ndarray:
        image, box = item
        return lesion_measurements(image, box)

    def _names(self) -> tuple[str, ...]:
        return LESION_FEATURES


class IntensityHistogram(Measurements):
    """:func:`intensity_histogram` as a scikit-learn transformer; learns nothing.

    Taught in chapter 1.

    ``transform(X)`` takes a sequence of (H, W) radiographs, one per patient, and returns a
    float64 array (n, bins + 2): the columns ``intensity_bin_00`` ... then ``below_60`` and
    ``below_90``. ``state()`` holds the settings ``{"bins": int}`` and no arrays.

    Parameters
    ----------
    bins : int
        Number of grey-level bins; the output has ``bins + 2`` columns.
    """

    def __init__(self, bins: int = 16):
        self.bins = bins

    def _settings(self) -> dict:
        return {"bins": _check_bins(self.bins)}

    def _measure(self, item) -> np.ndarray:
        return intensity_histogram(item, self.bins)

    def _names(self) -> list[str]:
        bins = _check_bins(self.bins)
        width = len(str(bins - 1))
        return [f"intensity_bin_{k:0{width}d}" for k in range(bins)] + ["below_60", "below_90"]
