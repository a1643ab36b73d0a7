"""Pathology slide regions: tissue masks, tiling, stain deconvolution and normalisation.

Taught in chapter 5 ("Pathology: tiles, stains and multiple-instance learning").

A whole-slide image is far too large to feed to a network at once, so it is cut into tiles
and only the tiles that hold tissue are kept (:func:`tissue_mask`, :func:`tile_slide`).
Slides from different centers look different because their labs stain differently; the
colour of H&E follows the Beer-Lambert law, ``I = I0 * exp(-OD)`` with the optical density
``OD = c_H * v_H + c_E * v_E`` a mix of the haematoxylin and eosin stain vectors. Working in
optical density turns stains into linear algebra:

* :func:`rgb_to_od` / :func:`od_to_rgb`: the Beer-Lambert transform and its inverse;
* :func:`stain_concentrations`: colour deconvolution (Ruifrok & Johnston 2001), the
  concentrations of each stain at each pixel, by least squares;
* :func:`macenko_stain_matrix`: the stain vectors of one image, estimated from the plane
  that its optical densities span (Macenko et al. 2009);
* :class:`MacenkoNormalizer`: re-stain an image with a reference's stain vectors and
  concentration range;
* :class:`ReinhardNormalizer`: match the mean and spread of each CIELAB channel to a
  reference (Reinhard et al. 2001), a colour-statistics alternative;
* :func:`tile_features`: a handful of interpretable per-tile measurements (nuclear density,
  size, size variation, hyperchromasia) computed from the haematoxylin channel, the tile
  embeddings the chapter feeds to attention-MIL (:mod:`oncolab.vision.mil`).

Input rule, everywhere in this module: an image must be RGB, shape ``(H, W, 3)``. ``uint8`` is
used as is; an RGBA image loses its alpha channel; other integer types must lie in 0..255;
floating-point images with every value in [0, 1] are read as fractions of 255, other floats
must lie in [0, 255]; either is rounded to ``uint8``. A grayscale image (``(H, W)`` or
``(H, W, 1)``) has no stain colour and raises; so do NaN or infinite pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

__all__ = [
    "REFERENCE_STAINS",
    "TILE_FEATURES",
    "EmptyTileSetError",
    "MacenkoNormalizer",
    "ReinhardNormalizer",
    "SlideBag",
    "Tiles",
    "as_rgb_uint8",
    "colour_statistics",
    "downsample_tiles",
    "macenko_stain_matrix",
    "od_to_rgb",
    "slide_tile_features",
    "rgb_to_od",
    "stain_angle_degrees",
    "stain_concentrations",
    "tile_features",
    "tile_slide",
    "tissue_mask",
]

#: Ruifrok & Johnston's haematoxylin and eosin optical-density vectors, as unit rows (H, E).
REFERENCE_STAINS = np.array([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11]])
REFERENCE_STAINS = REFERENCE_STAINS / np.linalg.norm(REFERENCE_STAINS, axis=1, keepdims=True)

#: Names of the columns :func:`tile_features` returns, in order.
TILE_FEATURES: tuple[str, ...] = (
    "tissue_fraction", "h_mean", "e_mean", "nuclear_fraction", "nuclei_per_1000px",
    "nucleus_area_mean", "nucleus_area_sd", "h_p99",
)


_OD_LUT = -np.log(np.maximum(np.arange(256, dtype=np.float64), 1.0) / 255.0)


def _od_norm_above(od: np.ndarray, threshold: float) -> np.ndarray:
    return np.einsum("...c,...c->...", od, od) > threshold * threshold


class EmptyTileSetError(ValueError):
    """No tile of a slide region holds enough tissue (the region is background)."""


# ------------------------------------------------------------------------------------------
# input
# ------------------------------------------------------------------------------------------
def as_rgb_uint8(image, name: str = "image") -> np.ndarray:
    """Check an image and return it as ``uint8`` RGB ``(H, W, 3)`` (see the module's rule).

    Raises ``ValueError`` for grayscale input, a wrong number of channels, NaN or infinite
    pixels, or values outside the stated range; ``TypeError`` for non-numeric arrays.
    """
    arr = np.asarray(image)
    if arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 1):
        raise ValueError(
            f"{name} is grayscale with shape {arr.shape}; expected an RGB image of shape (H, W, 3). "
            "Stain analysis needs colour: pass the RGB slide, not a grayscale conversion.")
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ValueError(f"{name} has shape {arr.shape}; expected an RGB image of shape (H, W, 3)")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape}); expected (H, W, 3) with H, W >= 1")
    if arr.shape[2] == 4:
        arr = arr[..., :3]
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number):
        raise TypeError(f"{name} has dtype {arr.dtype}; expected uint8, integer 0..255 or float pixels")
    if np.issubdtype(arr.dtype, np.integer):
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi > 255:
            raise ValueError(f"{name} has integer values in [{lo}, {hi}]; expected 0..255")
        return arr.astype(np.uint8)
    bad = ~np.isfinite(arr)
    if bad.any():
        n_bad = int(bad.any(axis=-1).sum())
        raise ValueError(f"{name} has {n_bad} pixel(s) with NaN or infinite values; expected finite "
                         "pixel values (fill or drop them before stain analysis)")
    lo, hi = float(arr.min()), float(arr.max())
    if lo < 0 or hi > 255:
        raise ValueError(f"{name} has float values in [{lo:g}, {hi:g}]; expected [0, 1] or [0, 255]")
    scale = 255.0 if hi <= 1.0 else 1.0
    return np.rint(arr.astype(np.float64) * scale).astype(np.uint8)


# ------------------------------------------------------------------------------------------
# tissue and tiles
# ------------------------------------------------------------------------------------------
def rgb_to_od(image, background: float = 255.0) -> np.ndarray:
    """Optical density ``-ln(I / I0)`` per channel (Beer-Lambert), float64 ``(H, W, 3)``.

    Intensities are clipped below at 1 so that black pixels give a finite density.
    """
    rgb = as_rgb_uint8(image)
    if not np.isfinite(background) or background <= 1:
        raise ValueError(f"background must be a finite intensity > 1, got {background!r}")
    if background == 255.0:
        return _OD_LUT[rgb]  # the same values, looked up: one log per intensity level
    return -np.log(np.maximum(rgb.astype(np.float64), 1.0) / float(background))


def od_to_rgb(od: np.ndarray, background: float = 255.0) -> np.ndarray:
    """Inverse of :func:`rgb_to_od`: ``I0 * exp(-OD)``, rounded and clipped to ``uint8``."""
    od = np.asarray(od, dtype=np.float64)
    if od.ndim < 1 or od.shape[-1] != 3:
        raise ValueError(f"optical density must end in 3 channels, got shape {od.shape}")
    if not np.isfinite(od).all():
        raise ValueError("optical density has NaN or infinite values; expected finite values")
    return np.clip(np.rint(background * np.exp(-od)), 0, 255).astype(np.uint8)


def tissue_mask(image, od_threshold: float = 0.15) -> np.ndarray:
    """Tissue pixels of an H&E image: bool ``(H, W)``, True where the optical density's norm
    exceeds ``od_threshold`` (glass absorbs almost nothing, stained tissue does)."""
    if not od_threshold > 0:
        raise ValueError(f"od_threshold must be positive, got {od_threshold!r}")
    return _od_norm_above(rgb_to_od(image), od_threshold)


@dataclass(frozen=True)
class Tiles:
    """Tiles cut from one slide region.

    ``tiles``: uint8 ``(N, t, t, 3)``; ``coords``: int ``(N, 2)``, the (row, column) of each
    tile's top-left pixel in the region; ``tissue``: the tissue fraction of each tile;
    ``tile_size``; ``image_shape``: the region's ``(H, W)``.
    """

    tiles: np.ndarray
    coords: np.ndarray
    tissue: np.ndarray
    tile_size: int
    image_shape: tuple[int, int]

    def __len__(self) -> int:
        return len(self.tiles)


def _positive_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def tile_slide(image, tile_size: int = 64, stride: int | None = None, min_tissue: float = 0.5,
               mask: np.ndarray | None = None, max_tiles: int | None = None, seed: int = 0) -> Tiles:
    """Cut a slide region into square tiles and keep those with enough tissue.

    Tiles start at rows and columns ``0, stride, 2 * stride, ...`` (``stride`` defaults to
    ``tile_size``: no overlap) and must fit inside the image. A tile is kept when at least
    ``min_tissue`` of its pixels are tissue (``mask``, default :func:`tissue_mask`). When more
    than ``max_tiles`` remain, that many are drawn at random (``seed``) and kept in grid
    order. Raises :class:`EmptyTileSetError` when no tile qualifies.
    """
    rgb = as_rgb_uint8(image)
    t = _positive_int("tile_size", tile_size)
    s = t if stride is None else _positive_int("stride", stride)
    if not 0.0 <= float(min_tissue) <= 1.0:
        raise ValueError(f"min_tissue must lie in [0, 1], got {min_tissue!r}")
    h, w = rgb.shape[:2]
    if t > h or t > w:
        raise ValueError(f"tile_size {t} is larger than the image ({h} x {w}); expected <= {min(h, w)}")
    m = tissue_mask(rgb) if mask is None else np.asarray(mask)
    if m.shape != (h, w):
        raise ValueError(f"mask has shape {m.shape}; expected the image's (H, W) = {(h, w)}")
    m = m.astype(bool)
    rows = np.arange(0, h - t + 1, s)
    cols = np.arange(0, w - t + 1, s)
    # tissue fraction of every candidate tile from an integral image
    ii = np.pad(m.astype(np.int64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    r0, c0 = np.meshgrid(rows, cols, indexing="ij")
    counts = ii[r0 + t, c0 + t] - ii[r0, c0 + t] - ii[r0 + t, c0] + ii[r0, c0]
    frac = (counts / float(t * t)).ravel()
    coords = np.stack([r0.ravel(), c0.ravel()], 1)
    keep = np.flatnonzero(frac >= float(min_tissue) - 1e-12)
    if len(keep) == 0:
        raise EmptyTileSetError(
            f"no {t}x{t} tile of this {h}x{w} region has at least {min_tissue:.0%} tissue "
            f"(the best has {frac.max():.0%}): it looks like background. Expected a region with "
            "tissue; lower min_tissue or tile_size, or check the image.")
    if max_tiles is not None:
        k = _positive_int("max_tiles", max_tiles)
        if len(keep) > k:
            keep = np.sort(np.random.default_rng(seed).choice(keep, size=k, replace=False))
    coords = coords[keep]
    tiles = np.stack([rgb[r:r + t, c:c + t] for r, c in coords])
    return Tiles(tiles=tiles, coords=coords.astype(np.int64), tissue=frac[keep],
                 tile_size=t, image_shape=(h, w))


def downsample_tiles(tiles, size: int) -> np.ndarray:
    """Tiles shrunk to ``size`` x ``size`` pixels by averaging blocks of pixels (area averaging).

    Taught in chapter 5: a network on many small tiles is cheaper than on few large ones, and
    averaging keeps what a tile's nuclei look like from afar (their density and darkness).

    Parameters
    ----------
    tiles : Tiles or array (N, t, t, 3)
        uint8 tiles (a :class:`Tiles`, or its ``tiles`` array).
    size : int
        The new side; ``t`` must be a multiple of it (``size == t`` returns the tiles unchanged).

    Returns
    -------
    ndarray
        uint8 ``(N, size, size, 3)``.
    """
    arr = tiles.tiles if isinstance(tiles, Tiles) else np.asarray(tiles)
    if arr.ndim != 4 or arr.shape[1] != arr.shape[2] or arr.shape[-1] != 3:
        raise ValueError(f"tiles must have shape (N, t, t, 3); got {arr.shape}")
    t = arr.shape[1]
    s = _positive_int("size", size)
    if s > t or t % s:
        raise ValueError(f"size {s} must divide the tile side {t} (an integer shrink factor)")
    if s == t:
        return arr.astype(np.uint8, copy=False)
    f = t // s
    blocks = arr.reshape(len(arr), s, f, s, f, 3).astype(np.float32).mean((2, 4))
    return np.rint(blocks).astype(np.uint8)


# ------------------------------------------------------------------------------------------
# stains
# ------------------------------------------------------------------------------------------
def _check_stains(stains) -> np.ndarray:
    m = np.asarray(stains, dtype=np.float64)
    if m.ndim != 2 or m.shape[1] != 3 or not 1 <= m.shape[0] <= 3:
        raise ValueError(f"a stain matrix has one row per stain and 3 columns (R, G, B OD); got shape {m.shape}")
    if not np.isfinite(m).all():
        raise ValueError("the stain matrix has NaN or infinite entries")
    if np.linalg.matrix_rank(m) < m.shape[0]:
        raise ValueError(f"the stain vectors {m.round(3).tolist()} are linearly dependent; expected distinct stains")
    return m


def stain_concentrations(image, stains) -> np.ndarray:
    """Colour deconvolution: per-pixel stain concentrations, float ``(H, W, k)``.

    Solves ``OD = C @ stains`` in the least-squares sense for each pixel, ``stains`` being
    ``(k, 3)`` (k stains, rows in optical density). With two stains the part of the OD outside
    their plane is dropped: this equals Ruifrok & Johnston's 3x3 inverse when the third
    vector is orthogonal to the first two.
    """
    m = _check_stains(stains)
    od = rgb_to_od(image)
    return od @ np.linalg.pinv(m)


def stain_angle_degrees(a, b) -> np.ndarray:
    """Angle, in degrees, between matching rows of two stain matrices (direction only)."""
    a, b = np.atleast_2d(np.asarray(a, float)), np.atleast_2d(np.asarray(b, float))
    if a.shape != b.shape or a.shape[-1] != 3:
        raise ValueError(f"stain matrices must have the same shape (k, 3); got {a.shape} and {b.shape}")
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def _stained_od(image, beta: float, mask, od: np.ndarray | None = None) -> np.ndarray:
    od = rgb_to_od(image) if od is None else od
    flat = od.reshape(-1, 3)
    keep = _od_norm_above(flat, beta)
    if mask is not None:
        mk = np.asarray(mask, bool)
        if mk.shape != od.shape[:2]:
            raise ValueError(f"mask has shape {mk.shape}; expected the image's (H, W) = {od.shape[:2]}")
        keep &= mk.ravel()
    return flat[keep]


def macenko_stain_matrix(image, alpha: float = 1.0, beta: float = 0.15,
                         mask: np.ndarray | None = None) -> np.ndarray:
    """Estimate an H&E image's stain vectors (Macenko et al. 2009): unit rows ``(H, E)``.

    1. optical densities of the stained pixels (OD norm above ``beta``; the original drops a
       pixel when *any* channel is below ``beta``, which would drop pure eosin stroma whose
       red density is small);
    2. the plane of the two largest eigenvectors of their covariance;
    3. the angle of each pixel's projection in that plane; the ``alpha`` and ``100 - alpha``
       percentiles of the angle are the two most extreme (purest) stain directions;
    4. back to OD space; haematoxylin is the vector with the larger red density.
    """
    return _macenko(_stained_od(image, beta, mask), alpha, beta)


def _macenko(od: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    if not 0 <= alpha < 50:
        raise ValueError(f"alpha must be a percentile in [0, 50), got {alpha!r}")
    if len(od) < 10:
        raise ValueError(f"only {len(od)} stained pixel(s) (OD norm > {beta}); expected tissue to "
                         "estimate stains from: is the image background?")
    _, vecs = np.linalg.eigh(np.cov(od, rowvar=False))
    plane = vecs[:, [2, 1]]  # largest, then second largest
    plane = plane * np.where(plane.sum(0) < 0, -1.0, 1.0)  # point into positive OD
    proj = od @ plane
    phi = np.arctan2(proj[:, 1], proj[:, 0])
    lo, hi = np.percentile(phi, [alpha, 100 - alpha])
    v1 = plane @ np.array([np.cos(lo), np.sin(lo)])
    v2 = plane @ np.array([np.cos(hi), np.sin(hi)])
    h, e = (v1, v2) if v1[0] > v2[0] else (v2, v1)
    m = np.stack([h, e])
    m = m * np.where(m.sum(1, keepdims=True) < 0, -1.0, 1.0)
    return m / np.linalg.norm(m, axis=1, keepdims=True)


class MacenkoNormalizer:
    """Re-stain images to look like a reference (Macenko et al. 2009).

    ``fit(reference)`` stores the reference's stain vectors and the ``percentile`` of each
    stain's concentration over its stained pixels; ``transform(image)`` deconvolves the image
    with its own stain vectors, rescales each concentration so that its percentile matches
    the reference's, and recombines with the reference's vectors. Background (no stain)
    stays white. ``stains_`` holds the vectors estimated for the last transformed image.
    """

    def __init__(self, alpha: float = 1.0, beta: float = 0.15, percentile: float = 99.0):
        if not 0 < percentile <= 100:
            raise ValueError(f"percentile must lie in (0, 100], got {percentile!r}")
        self.alpha, self.beta, self.percentile = float(alpha), float(beta), float(percentile)
        self.target_stains_: np.ndarray | None = None
        self.target_max_: np.ndarray | None = None
        self.stains_: np.ndarray | None = None

    def _max_conc(self, image, stains, mask=None) -> np.ndarray:
        od = _stained_od(image, self.beta, mask)
        conc = od @ np.linalg.pinv(stains)
        return np.percentile(conc, self.percentile, axis=0)

    def fit(self, reference, mask: np.ndarray | None = None) -> MacenkoNormalizer:
        stains = macenko_stain_matrix(reference, self.alpha, self.beta, mask)
        return self.set_target(stains, self._max_conc(reference, stains, mask))

    def set_target(self, stains, max_concentrations) -> MacenkoNormalizer:
        """Use given target stain vectors ``(2, 3)`` and concentration percentiles ``(2,)``."""
        m = _check_stains(stains)
        mx = np.asarray(max_concentrations, dtype=np.float64)
        if m.shape != (2, 3) or mx.shape != (2,) or not (np.isfinite(mx).all() and (mx > 0).all()):
            raise ValueError(f"expected stains of shape (2, 3) and two positive concentrations; got "
                             f"{m.shape} and {mx.tolist()}")
        self.target_stains_, self.target_max_ = m / np.linalg.norm(m, axis=1, keepdims=True), mx
        return self

    def transform(self, image, mask: np.ndarray | None = None) -> np.ndarray:
        if self.target_stains_ is None:
            raise RuntimeError("MacenkoNormalizer is not fitted: call fit(reference) or set_target(...) first")
        od = rgb_to_od(image)
        stained = _stained_od(None, self.beta, mask, od=od)
        stains = _macenko(stained, self.alpha, self.beta)
        self.stains_ = stains
        pinv = np.linalg.pinv(stains)
        src_max = np.percentile(stained @ pinv, self.percentile, axis=0)
        if not (src_max > 0).all():
            raise ValueError(f"the image's stain concentrations have a non-positive {self.percentile:g}th "
                             f"percentile {src_max.tolist()}; expected stained tissue")
        conc = od @ pinv
        conc = np.maximum(conc, 0.0) * (self.target_max_ / src_max)
        return od_to_rgb(conc @ self.target_stains_)

    def fit_transform(self, images) -> list[np.ndarray]:
        """Fit on the first image and transform all of them."""
        images = list(images)
        if not images:
            raise ValueError("expected at least one image")
        self.fit(images[0])
        return [self.transform(im) for im in images]


class ReinhardNormalizer:
    """Match each CIELAB channel's mean and standard deviation to a reference's
    (Reinhard et al. 2001), over tissue pixels only; background pixels are left as they are.

    The colour conversion is scikit-image's (``rgb2lab`` / ``lab2rgb``); the statistics
    matching, ``(x - mean_src) / sd_src * sd_ref + mean_ref``, is the method.
    """

    def __init__(self, od_threshold: float = 0.15):
        self.od_threshold = float(od_threshold)
        self.target_mean_: np.ndarray | None = None
        self.target_std_: np.ndarray | None = None

    def _lab_stats(self, rgb):
        from skimage.color import rgb2lab

        lab = rgb2lab(rgb)
        m = tissue_mask(rgb, self.od_threshold)
        if m.sum() < 2:
            raise ValueError(f"only {int(m.sum())} tissue pixel(s); expected tissue to normalise")
        px = lab[m]
        return lab, m, px.mean(0), px.std(0)

    def fit(self, reference) -> ReinhardNormalizer:
        _, _, self.target_mean_, self.target_std_ = self._lab_stats(as_rgb_uint8(reference))
        return self

    def transform_lab(self, image) -> tuple[np.ndarray, np.ndarray]:
        """The matched image in CIELAB, before conversion back to RGB, and the tissue mask.

        Over the tissue its channel means and standard deviations equal the reference's
        exactly; converting to RGB can then move them a little, where matched colours fall
        outside what RGB can show and are clipped.
        """
        if self.target_mean_ is None:
            raise RuntimeError("ReinhardNormalizer is not fitted: call fit(reference) first")
        lab, m, mu, sd = self._lab_stats(as_rgb_uint8(image))
        out = lab.copy()
        out[m] = (lab[m] - mu) / np.maximum(sd, 1e-8) * self.target_std_ + self.target_mean_
        return out, m

    def transform(self, image) -> np.ndarray:
        from skimage.color import lab2rgb

        rgb = as_rgb_uint8(image)
        out, m = self.transform_lab(rgb)
        out[..., 0] = np.clip(out[..., 0], 0, 100)
        res = np.clip(np.rint(lab2rgb(out) * 255), 0, 255).astype(np.uint8)
        res[~m] = rgb[~m]
        return res


# ------------------------------------------------------------------------------------------
# features
# ------------------------------------------------------------------------------------------
def colour_statistics(image, od_threshold: float = 0.15) -> np.ndarray:
    """Mean and standard deviation of R, G, B over the tissue pixels: a ``(6,)`` vector.

    The chapter uses it to show how well colour alone reveals a slide's center.
    """
    rgb = as_rgb_uint8(image)
    m = tissue_mask(rgb, od_threshold)
    if m.sum() < 2:
        raise ValueError(f"only {int(m.sum())} tissue pixel(s); expected tissue")
    px = rgb[m].astype(np.float64)
    return np.concatenate([px.mean(0), px.std(0)])


def tile_features(tiles, stains=REFERENCE_STAINS, h_threshold: float = 0.5,
                  od_threshold: float = 0.15) -> np.ndarray:
    """Interpretable measurements of each tile, float ``(N, len(TILE_FEATURES))``.

    ``tiles``: a :class:`Tiles` or an array ``(N, t, t, 3)`` (or one tile ``(t, t, 3)``).
    Haematoxylin and eosin concentrations come from :func:`stain_concentrations` with
    ``stains`` (use the normaliser's target stains on normalised tiles); a nucleus pixel has a
    haematoxylin concentration above ``h_threshold``. Columns (:data:`TILE_FEATURES`): tissue
    fraction; mean H and E concentration over tissue; fraction of tissue that is nuclear;
    nuclei (connected components) per 1000 tissue pixels; mean and standard deviation of
    nucleus area in pixels (size and pleomorphism); 99th percentile of H (hyperchromasia,
    mitoses).
    """
    arr = tiles.tiles if isinstance(tiles, Tiles) else np.asarray(tiles)
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise ValueError(f"tiles must have shape (N, t, t, 3); got {arr.shape}")
    if len(arr) == 0:
        raise EmptyTileSetError("no tiles to describe; expected at least one tile")
    m = _check_stains(stains)
    pinv = np.linalg.pinv(m)
    out = np.zeros((len(arr), len(TILE_FEATURES)))
    for k, tile in enumerate(arr):
        od = rgb_to_od(tile)
        tissue = _od_norm_above(od, od_threshold)
        conc = od @ pinv
        h, e = conc[..., 0], conc[..., 1]
        n_tissue = int(tissue.sum())
        if n_tissue == 0:
            continue
        nuc = (h > h_threshold) & tissue
        labels, n_nuc = ndimage.label(nuc)
        areas = np.bincount(labels.ravel())[1:] if n_nuc else np.zeros(0)
        out[k] = (n_tissue / tissue.size, h[tissue].mean(), e[tissue].mean(), nuc.sum() / n_tissue,
                  1000.0 * n_nuc / n_tissue, areas.mean() if n_nuc else 0.0,
                  areas.std() if n_nuc > 1 else 0.0, np.percentile(h[tissue], 99))
    return out


@dataclass(frozen=True)
class SlideBag:
    """A slide region as a MIL bag: its tissue ``tiles``, their ``features``
    (:func:`tile_features`, one row per tile) and the ``image`` the tiles were cut from
    (the normalised region when a normaliser was used)."""

    tiles: Tiles
    features: np.ndarray
    image: np.ndarray


def slide_tile_features(image, normalizer: MacenkoNormalizer | None = None, tile_size: int = 64,
                        min_tissue: float = 0.5, max_tiles: int | None = None, seed: int = 0,
                        h_threshold: float = 0.5) -> SlideBag:
    """One slide region -> a :class:`SlideBag` of its tissue tiles and their features.

    Tiles are chosen on the image as given (:func:`tile_slide`, which raises
    :class:`EmptyTileSetError` for a region without tissue); with a fitted ``normalizer`` the
    whole region is normalised first, the tiles are cut from the result and described with
    the normaliser's target stains, otherwise with :data:`REFERENCE_STAINS`.
    """
    rgb = as_rgb_uint8(image)
    tiles = tile_slide(rgb, tile_size, min_tissue=min_tissue, max_tiles=max_tiles, seed=seed)
    stains = REFERENCE_STAINS
    if normalizer is not None:
        if normalizer.target_stains_ is None:
            raise RuntimeError("the normalizer is not fitted: call fit(reference) first")
        rgb = normalizer.transform(rgb)
        t = tiles.tile_size
        tiles = Tiles(np.stack([rgb[r:r + t, c:c + t] for r, c in tiles.coords]), tiles.coords,
                      tiles.tissue, t, tiles.image_shape)
        stains = normalizer.target_stains_
    return SlideBag(tiles, tile_features(tiles, stains, h_threshold=h_threshold), rgb)
