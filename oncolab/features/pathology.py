"""Hand-made features of an H&E slide region: the nuclei, and the region's stain statistics.

Taught in chapter 1 (the stain statistics, the pathology baseline) and chapter 10 (the
nuclear measurements, the pathology stage of the hand-made system); chapter 13 shows how a
center's stain moves them.

Both start from colour deconvolution (Ruifrok and Johnston; :func:`skimage.color.rgb2hed`),
which separates the haematoxylin (nuclei, blue-purple) from the eosin (cytoplasm, pink) with
a fixed stain matrix:

* :func:`nuclear_measurements` (:class:`NuclearMeasurements`): nine numbers a pathologist
  would read: tissue fraction, haematoxylin amount, nuclear density, size and size variation
  (pleomorphism), very dark clumps (mitoses), eosin (:data:`NUCLEAR_FEATURES`);
* :func:`stain_statistics` (:class:`StainStatistics`): colour means and spreads, tissue
  fraction and the haematoxylin distribution, with no notion of a nucleus
  (:data:`STAIN_FEATURES`).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .base import Measurements

__all__ = ["NUCLEAR_FEATURES", "STAIN_FEATURES", "NuclearMeasurements", "StainStatistics", "nuclear_measurements",
           "stain_statistics"]

NUCLEAR_FEATURES: tuple[str, ...] = ("tissue_frac", "h_mean", "h_frac_nuclear", "nuclei_density", "nucleus_area",
                                     "nucleus_area_cv", "h_p99", "dark_clumps", "e_mean")
"""Names of the nine numbers of :func:`nuclear_measurements`, in order."""

STAIN_FEATURES: tuple[str, ...] = ("r_mean", "g_mean", "b_mean", "r_std", "g_std", "b_std", "tissue_frac",
                                   "h_mean", "h_std", "h_q90", "h_above_q95")
"""Names of the eleven numbers of :func:`stain_statistics`, in order."""


def _deconvolved(region) -> tuple[np.ndarray, np.ndarray]:
    """The checked region and its haematoxylin, eosin and DAB channels (:func:`skimage.color.rgb2hed`)."""
    from skimage.color import rgb2hed

    img = np.asarray(region)
    if img.ndim != 3 or img.shape[2] != 3 or img.size == 0:
        raise ValueError(f"a slide region is a non-empty RGB array (H, W, 3), got shape {img.shape}")
    if not np.isfinite(img.astype(np.float64)).all():
        raise ValueError("the slide region has NaN or infinite pixels; expected RGB values in [0, 255]")
    return img, rgb2hed(img)


def nuclear_measurements(region) -> np.ndarray:
    """Nine numbers describing the nuclei of an H&E region.

    Taught in chapter 10 (the hand-made pathology stage); chapter 13 trains a pathology-only
    model on them across centers.

    Nuclei are the connected regions of high haematoxylin inside the tissue (pixels darker
    than 225 on average). Densities are per tissue pixel and areas fractions of the region,
    so that the numbers do not depend on the region's size. In order
    (:data:`NUCLEAR_FEATURES`): tissue fraction; mean haematoxylin over tissue; nuclear
    fraction of the tissue; nuclei per 1000 tissue pixels; mean nucleus area (per 10,000 of
    the region); coefficient of variation of nucleus area (pleomorphism); 99th percentile of
    haematoxylin (hyperchromasia); very dark clumps per 1000 tissue pixels (mitoses); mean
    eosin over tissue.

    Parameters
    ----------
    region : array_like
        The slide region, uint8 RGB (H, W, 3).

    Returns
    -------
    numpy.ndarray
        float64 array of shape (9,).

    Raises
    ------
    ValueError
        When ``region`` is not a non-empty (H, W, 3) array or holds NaN or infinite values.
    """
    img, hed = _deconvolved(region)
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


def stain_statistics(region) -> np.ndarray:
    """Colour means and spreads, tissue fraction and haematoxylin statistics of a slide region.

    Taught in chapter 1 (the pathology baseline).

    In order (:data:`STAIN_FEATURES`): mean and standard deviation of R, G, B over the whole
    region (as fractions of 255); tissue fraction (pixels darker than 0.85 on average); mean,
    standard deviation and 90th percentile of haematoxylin over the tissue; fraction of
    tissue pixels above the region's 95th haematoxylin percentile.

    Parameters
    ----------
    region : array_like
        As in :func:`nuclear_measurements`.

    Returns
    -------
    numpy.ndarray
        float64 array of shape (11,).

    Raises
    ------
    ValueError
        When ``region`` is not a non-empty (H, W, 3) array or holds NaN or infinite values.
    """
    img, hed = _deconvolved(region)
    rgb = img.astype(np.float32) / 255
    tissue = rgb.mean(2) < 0.85
    h = hed[..., 0]
    ht = h[tissue] if tissue.any() else h.ravel()
    px = rgb.reshape(-1, 3)
    return np.concatenate([px.mean(0), px.std(0), [tissue.mean()],
                           [ht.mean(), ht.std(), np.quantile(ht, 0.9), (ht > np.quantile(h, 0.95)).mean()]]
                          ).astype(np.float64)


class NuclearMeasurements(Measurements):
    """:func:`nuclear_measurements` as a scikit-learn transformer; learns nothing.

    Taught in chapter 10.

    ``transform(X)`` takes a sequence of RGB regions, one per patient, and returns a float64
    array (n, 9) whose columns are :data:`NUCLEAR_FEATURES`. ``state()`` holds no settings
    and no arrays.
    """

    def _measure(self, item) -> np.ndarray:
        return nuclear_measurements(item)

    def _names(self) -> tuple[str, ...]:
        return NUCLEAR_FEATURES


class StainStatistics(Measurements):
    """:func:`stain_statistics` as a scikit-learn transformer; learns nothing.

    Taught in chapter 1.

    ``transform(X)`` takes a sequence of RGB regions, one per patient, and returns a float64
    array (n, 11) whose columns are :data:`STAIN_FEATURES`. ``state()`` holds no settings and
    no arrays.
    """

    def _measure(self, item) -> np.ndarray:
        return stain_statistics(item)

    def _names(self) -> tuple[str, ...]:
        return STAIN_FEATURES
