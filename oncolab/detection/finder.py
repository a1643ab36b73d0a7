"""A hand-made lesion finder: the lesion's box from the radiograph alone, without a network.

Taught in chapter 12 ("The complete system"): the hand-made stages of the complete system
measure the lesion inside the box this finder returns, so that no patient's annotated box
is read when that patient is predicted. YOLO (chapter 3, :class:`YoloDetector`) plays the
same part for the learned stages.

The method, in five steps, on the radiograph resized to ``work_size`` pixels:

1. **Smooth** with a Gaussian of ``sigma`` pixels (the lytic texture is mottled; the lesion
   is a dark blob once smoothed).
2. **Find the bone's axis.** The brightest 30 % of pixels are the bone; the least-squares
   slope of their column on their row (``x = a + b y``) is the shaft's direction (for a
   straight band running from the top edge to the bottom edge it is exactly the band's slope,
   where the principal axis of the bright pixels would lean). When the bright pixels spread
   more across than down, the image is transposed first.
3. **Estimate the background** each pixel would have without a lesion: along every line
   parallel to the shaft, the ``background_quantile`` of the intensities (the lesion covers
   part of each line only, and is darker, so a high quantile ignores it), then a 3-pixel
   minimum across the lines (so that a slightly tilted line does not pick up the bright
   cortex and paint a false dark edge beside it).
4. **Threshold the darkness** ``background - image`` at ``threshold`` grey levels, open the
   mask with a 3 x 3 square (thin lines go), and keep the connected component of at least
   ``min_area`` pixels with the largest summed darkness: the most lesion-like one.
5. **Draw the box** where the darkness around that component falls to ``edge_level`` times
   its peak (a blurred step crosses half its depth at the true edge, whatever the blur; the
   fraction is tuned because the mottled texture and the bright rim of slow lesions shift
   it), padded by ``pad`` pixels, and scaled back to the image's pixels.

:meth:`LesionFinder.fit` tunes ``sigma``, ``background_quantile``, ``threshold``, ``min_area``,
``edge_level`` and ``pad`` by an exhaustive search over :attr:`LesionFinder.GRID`, maximising
the mean IoU with the annotated boxes of the *training* patients. Where nothing passes the
threshold, the finder says so (``found = False``) and returns a centred box of the training
boxes' median size.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import ndimage

from .boxes import box_iou, check_boxes

__all__ = ["LesionFinder"]

_BRIGHT_FRACTION = 0.3     # the share of pixels taken as bone when finding the shaft's axis
_MIN_WIDTH = 3             # the minimum filter across the background profile, in working pixels
_REACH = 0.25              # the box may grow this far (fraction of work_size) beyond the component


# each setting's allowed range: (low, high, low excluded, high excluded)
_BOUNDS = {"sigma": (0.0, 20.0, True, False), "background_quantile": (0.0, 1.0, True, True),
           "threshold": (0.0, 255.0, True, False), "min_area": (1.0, np.inf, False, False),
           "edge_level": (0.0, 1.0, True, True), "pad": (-np.inf, np.inf, False, False)}
_PARAMS = tuple(_BOUNDS)   # the settings fit() tunes


def _check_setting(name: str, value: Any, label: str | None = None) -> float:
    """``value`` as a float when it is an allowed value of the setting ``name``; else a ValueError."""
    label = label or name
    low, high, low_open, high_open = _BOUNDS[name]
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise ValueError(f"{label} must be a finite number, got {value!r}")
    v = float(value)
    if v < low or v > high or (low_open and v == low) or (high_open and v == high):
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise ValueError(f"{label} must lie in {interval}, got {value!r}")
    return v


def _check_image(image: Any, i: int) -> np.ndarray:
    arr = np.asarray(image)
    if arr.dtype == object or arr.dtype.kind not in "uif":
        raise ValueError(f"images[{i}] must be a numeric 2-D grayscale image, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"images[{i}] must be a 2-D grayscale image (H, W), got shape {arr.shape}")
    if min(arr.shape) < 8:
        raise ValueError(f"images[{i}] must be at least 8 x 8 pixels, got shape {arr.shape}")
    img = arr.astype(np.float32)
    if not np.isfinite(img).all():
        raise ValueError(f"images[{i}] has NaN or infinite pixels; expected finite grey levels")
    lo, hi = float(img.min()), float(img.max())
    if lo < 0 or hi > 255:
        raise ValueError(f"images[{i}] has grey levels from {lo:g} to {hi:g}; expected the 0-255 scale of an "
                         "8-bit radiograph (rescale 16-bit images first)")
    if arr.dtype.kind == "f" and 0 < hi <= 1:
        raise ValueError(f"images[{i}] has grey levels from {lo:g} to {hi:g}, which looks like a [0, 1] image; "
                         "expected the 0-255 scale of an 8-bit radiograph (multiply by 255)")
    return img


def _check_images(images: Any) -> list[np.ndarray]:
    if isinstance(images, np.ndarray) and images.ndim == 2:
        raise ValueError(f"images must be a sequence of 2-D images; wrap a single image of shape {images.shape} "
                         "in a list: [image]")
    if isinstance(images, (str, bytes)) or not isinstance(images, (Sequence, np.ndarray)):
        raise ValueError(f"images must be a sequence of 2-D grayscale images, got {type(images).__name__}")
    return [_check_image(im, i) for i, im in enumerate(images)]


class _Smoothed:
    """One image resized, smoothed and turned so that its bone runs down the columns."""

    def __init__(self, img: np.ndarray, work_size: int, sigma: float):
        h, w = img.shape
        work = ndimage.zoom(img, (work_size / h, work_size / w), order=1, mode="nearest", grid_mode=True)
        sm = ndimage.gaussian_filter(work, sigma, mode="nearest")
        ys, xs = np.nonzero(sm >= np.quantile(sm, 1 - _BRIGHT_FRACTION))
        ys, xs = ys - ys.mean(), xs - xs.mean()
        var_y, var_x, cov = float(ys @ ys), float(xs @ xs), float(xs @ ys)
        self.transposed = var_x > var_y
        if self.transposed:
            sm, var_y = sm.T, var_x
        self.image = np.ascontiguousarray(sm)
        self.slope = cov / var_y if var_y > 0 else 0.0

    def darkness(self, quantile: float) -> np.ndarray:
        """``background - image`` in the working frame (bone along the columns when transposed)."""
        sm, b = self.image, self.slope
        n_rows, n_cols = sm.shape
        rows = np.arange(n_rows, dtype=np.float64)[:, None]
        cols = np.arange(n_cols, dtype=np.float64)
        shift = b * (rows - (n_rows - 1) / 2)                    # (rows, 1): where each line sits in a row
        xs = cols[None, :] + shift
        lines = ndimage.map_coordinates(sm, [np.broadcast_to(rows, xs.shape), xs], order=1,
                                        mode="constant", cval=np.nan)
        lines.sort(axis=0)                                       # NaN (outside the image) sort last
        count = np.isfinite(lines).sum(0)
        pick = np.clip(np.floor(quantile * (count - 1)).astype(int), 0, n_rows - 1)
        profile = lines[pick, np.arange(n_cols)]
        seen = count > 0
        profile = np.interp(cols, cols[seen], profile[seen]) if seen.any() else np.zeros(n_cols)
        profile = ndimage.minimum_filter1d(profile, _MIN_WIDTH, mode="nearest")
        background = np.interp(cols[None, :] - shift, cols, profile)
        return (background - sm).astype(np.float32)


def _opened(dark: np.ndarray) -> np.ndarray:
    """The darkness map after a grey opening with a 3 x 3 square: a line thinner than 3 pixels goes.

    Thresholding commutes with a flat opening, so ``_opened(dark) > t`` is the binary opening
    of ``dark > t``, for every ``t`` at once.
    """
    return ndimage.grey_opening(dark, size=(3, 3), mode="nearest")


def _components(opened: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Label ``opened > threshold``; return (labels, areas, summed darkness), index 0 = background."""
    labels, n = ndimage.label(opened > threshold)
    flat = labels.ravel()
    area = np.bincount(flat, minlength=n + 1).astype(float)
    mass = np.bincount(flat, weights=opened.ravel(), minlength=n + 1)
    return labels, area, mass


def _choose(area: np.ndarray, mass: np.ndarray, min_area: float) -> int:
    """The label of the most lesion-like component (largest summed darkness), 0 when none is big enough."""
    score = np.where(area >= min_area, mass, -np.inf)
    score[0] = -np.inf
    k = int(np.argmax(score))
    return k if np.isfinite(score[k]) else 0


def _extents(opened: np.ndarray, labels: np.ndarray, k: int, edge_levels: Sequence[float]) -> np.ndarray:
    """``(len(edge_levels), 4)`` boxes ``(x0, y0, x1, y1)`` (working pixels): for each level, the
    region connected to component ``k`` darker than that fraction of its peak, searched within
    ``_REACH`` of the component."""
    comp = labels == k
    ys, xs = np.nonzero(comp)
    reach = int(round(_REACH * max(opened.shape)))
    r0, r1 = max(ys.min() - reach, 0), min(ys.max() + 1 + reach, opened.shape[0])
    c0, c1 = max(xs.min() - reach, 0), min(xs.max() + 1 + reach, opened.shape[1])
    window, inside = opened[r0:r1, c0:c1], comp[r0:r1, c0:c1]
    peak = float(window[inside].max())
    out = np.tile([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], (len(edge_levels), 1)).astype(float)
    for j, level in enumerate(edge_levels):
        lab, _ = ndimage.label(window >= level * peak)
        keep = np.unique(lab[inside])
        keep = keep[keep > 0]
        if keep.size:      # a level above the component's darkest pixel: keep the component's own box
            rows, cols = np.nonzero(np.isin(lab, keep))
            out[j] = cols.min() + c0, rows.min() + r0, cols.max() + 1 + c0, rows.max() + 1 + r0
    return out


def _to_image(boxes: np.ndarray, pads: np.ndarray, transposed: bool, work_size: int,
              shape: tuple[int, int]) -> np.ndarray:
    """Working-frame boxes ``(m, 4)``, each padded by each of ``pads`` ``(p,)``: ``(m, p, 4)`` boxes
    in the original image's pixels, clipped to the image."""
    pads = np.asarray(pads, float)[None, :, None]
    boxes = np.asarray(boxes, float)[:, None, :] + pads * np.array([-1.0, -1.0, 1.0, 1.0])
    if transposed:
        boxes = boxes[..., [1, 0, 3, 2]]
    h, w = shape
    scale = np.array([w, h, w, h]) / work_size
    return np.clip(boxes * scale, 0, np.array([w, h, w, h], float))


class LesionFinder:
    """A classical lesion detector for radiographs: darker than the bone around it (no network).

    Taught in chapter 12 ("The complete system"). The method is described in this module's
    docstring: smooth, find the bone's axis, estimate the background along lines parallel to
    it, threshold the darkness, keep the most lesion-like component, and box it. It takes a
    few milliseconds per radiograph. The constructor's values are close to what the search
    chooses on the book's cohort (held-out mean IoU about 0.89 on 256-pixel radiographs), so
    an unfitted finder already works; :meth:`fit` tunes them on training patients. Sizes are
    in pixels of the ``work_size`` x ``work_size`` image every radiograph is resized to, so
    that one setting suits any image size.

    Parameters
    ----------
    sigma : float, default 0.75
        Standard deviation of the Gaussian smoothing (working pixels, in (0, 20]).
    background_quantile : float, default 0.6
        Quantile of the intensities along a line parallel to the bone taken as its background, in (0, 1).
    threshold : float, default 40.0
        Darkness (grey levels below the background) a pixel needs to belong to a lesion, in (0, 255].
    min_area : float, default 4.0
        Smallest lesion, in working pixels, >= 1.
    edge_level : float, default 0.35
        The box's edge is where the darkness falls to this fraction of the lesion's peak, in (0, 1).
    pad : float, default 1.0
        Pixels (working) added on every side of the box (may be negative).
    work_size : int, default 128
        Side of the working image (an integer >= 32); not tuned.
    grid : mapping of str to sequence of float, optional
        ``{parameter: candidate values}`` searched by :meth:`fit`; keys missing from it take
        :attr:`GRID`'s values. A parameter with one candidate is fixed.
    max_fit_images : int, default 150
        :meth:`fit` searches on at most this many training images (a seeded random subset), so
        that tuning takes seconds (about 30 ms per image).
    seed : int, default 0
        Seeds that subset (>= 0).

    Attributes
    ----------
    fallback_size_ : numpy.ndarray
        Width and height of the fallback box, as fractions of the image's width and height.
    training_iou_ : float or None
        Mean IoU on the images :meth:`fit` searched on, with the chosen parameters.

    Raises
    ------
    ValueError
        When a setting is not a finite number in its range, ``work_size``,
        ``max_fit_images`` or ``seed`` is not an integer in range, or ``grid`` names an unknown
        parameter or holds an empty or invalid list of candidates.
    """

    GRID: dict[str, tuple[float, ...]] = {
        "sigma": (0.75, 1.0, 1.5),
        "background_quantile": (0.6, 0.7),
        "threshold": (30.0, 40.0, 50.0),
        "min_area": (4.0, 16.0),
        "edge_level": (0.25, 0.3, 0.35, 0.4),
        "pad": (0.0, 0.5, 1.0, 1.5),
    }
    """The candidates :meth:`fit` searches (576 settings; each image is smoothed once per ``sigma``)."""

    def __init__(self, sigma: float = 0.75, background_quantile: float = 0.6, threshold: float = 40.0,
                 min_area: float = 4.0, edge_level: float = 0.35, pad: float = 1.0, work_size: int = 128,
                 grid: Mapping[str, Sequence[float]] | None = None, max_fit_images: int = 150, seed: int = 0):
        self.sigma = _check_setting("sigma", sigma)
        self.background_quantile = _check_setting("background_quantile", background_quantile)
        self.threshold = _check_setting("threshold", threshold)
        self.min_area = _check_setting("min_area", min_area)
        self.edge_level = _check_setting("edge_level", edge_level)
        self.pad = _check_setting("pad", pad)
        for name, value, low in (("work_size", work_size, 32), ("max_fit_images", max_fit_images, 1),
                                 ("seed", seed, 0)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        self.work_size, self.max_fit_images, self.seed = int(work_size), int(max_fit_images), int(seed)
        self.grid = self._check_grid(grid or {})
        self.fallback_size_ = np.array([0.25, 0.25])
        self.training_iou_: float | None = None

    @classmethod
    def _check_grid(cls, grid: Mapping[str, Sequence[float]]) -> dict[str, tuple[float, ...]]:
        unknown = sorted(set(grid) - set(_PARAMS))
        if unknown:
            raise ValueError(f"unknown grid parameter(s) {unknown}; expected some of {list(_PARAMS)}")
        out = {}
        for name in _PARAMS:
            values = grid.get(name, cls.GRID[name])
            if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray)) \
                    or np.ndim(values) != 1 or len(values) == 0:
                raise ValueError(f"grid[{name!r}] must be a non-empty sequence of numbers, got {values!r}")
            out[name] = tuple(_check_setting(name, v, f"grid[{name!r}] value") for v in values)
        return out

    def __repr__(self) -> str:
        settings = ", ".join(f"{p}={getattr(self, p):g}" for p in _PARAMS)
        return f"LesionFinder({settings}, work_size={self.work_size})"

    @property
    def params(self) -> dict[str, float]:
        """The six tuned settings, by name."""
        return {p: getattr(self, p) for p in _PARAMS}

    # ----------------------------------------------------------------------------------------
    def fit(self, images: Sequence, boxes) -> LesionFinder:
        """Tune the settings on training radiographs and their annotated boxes; returns ``self``.

        Parameters
        ----------
        images : sequence of numpy.ndarray
            Training radiographs: 2-D arrays of grey levels on the 0-255 scale (uint8 or float),
            at least 8 x 8 pixels.
        boxes : array-like, shape (n, 4)
            Their annotated lesion boxes, ``xyxy`` pixels, one row per image.

        Returns
        -------
        LesionFinder
            ``self``, with the setting of :attr:`grid` that gives the highest mean IoU on (a
            subset of at most ``max_fit_images`` of) the images, ties going to the first in grid
            order; ``fallback_size_`` the median box size relative to the image, and
            ``training_iou_`` that mean IoU.

        Raises
        ------
        ValueError
            When an image is not a finite 2-D grey-level image on the 0-255 scale, the boxes
            are invalid or not one per image, or there is no image.
        """
        imgs = _check_images(images)
        gt = check_boxes(boxes, "boxes")
        if len(gt) != len(imgs):
            raise ValueError(f"{len(imgs)} images but {len(gt)} boxes; expected one annotated box per image")
        if not imgs:
            raise ValueError("fit needs at least one training image with its box, got none")
        sizes = np.array([[b[2] - b[0], b[3] - b[1]] for b in gt]) / np.array([[im.shape[1], im.shape[0]]
                                                                             for im in imgs])
        fallback = np.clip(np.median(sizes, axis=0), 1e-3, 1.0)
        idx = np.arange(len(imgs))
        if len(imgs) > self.max_fit_images:
            idx = np.sort(np.random.default_rng(self.seed).choice(len(imgs), self.max_fit_images, replace=False))
        g = self.grid
        n_q, n_t, n_a, n_e, n_p = (len(g[k]) for k in _PARAMS[1:])
        iou = np.zeros((len(g["sigma"]), n_q, n_t, n_a, n_e, n_p))
        for i in idx:
            img, truth = imgs[i], gt[i:i + 1]
            shape = img.shape
            centred = box_iou(self._fallback(shape, fallback)[None], truth)[0, 0]
            for si, sigma in enumerate(g["sigma"]):
                smoothed = _Smoothed(img, self.work_size, sigma)
                for qi, q in enumerate(g["background_quantile"]):
                    opened = _opened(smoothed.darkness(q))
                    for ti, thr in enumerate(g["threshold"]):
                        labels, area, mass = _components(opened, thr)
                        done: dict[int, np.ndarray] = {}     # component -> IoU per (edge_level, pad)
                        for ai, min_area in enumerate(g["min_area"]):
                            k = _choose(area, mass, min_area)
                            if k == 0:
                                iou[si, qi, ti, ai] += centred
                                continue
                            if k not in done:
                                found = _to_image(_extents(opened, labels, k, g["edge_level"]), g["pad"],
                                                  smoothed.transposed, self.work_size, shape)
                                done[k] = box_iou(found.reshape(-1, 4), truth)[:, 0].reshape(n_e, n_p)
                            iou[si, qi, ti, ai] += done[k]
        best = np.unravel_index(int(np.argmax(iou)), iou.shape)
        for name, j in zip(_PARAMS, best):
            setattr(self, name, g[name][j])
        self.fallback_size_ = fallback
        self.training_iou_ = float(iou[best] / len(idx))
        return self

    def _fallback(self, shape: tuple[int, int], size: np.ndarray | None = None) -> np.ndarray:
        h, w = shape
        fw, fh = (self.fallback_size_ if size is None else size) * np.array([w, h])
        return np.array([(w - fw) / 2, (h - fh) / 2, (w + fw) / 2, (h + fh) / 2])

    def darkness(self, image) -> np.ndarray:
        """How much darker than its background each pixel is (grey levels, working frame).

        Parameters
        ----------
        image : numpy.ndarray, shape (H, W)
            One radiograph, a 2-D array of grey levels on the 0-255 scale.

        Returns
        -------
        numpy.ndarray
            Float32 ``(work_size, work_size)`` map of ``background - smoothed image`` (step 3
            of the method), in the image's orientation: what step 4 thresholds.

        Raises
        ------
        ValueError
            When ``image`` is not a finite 2-D grey-level image on the 0-255 scale.
        """
        img = _check_images([image])[0]
        smoothed = _Smoothed(img, self.work_size, self.sigma)
        dark = smoothed.darkness(self.background_quantile)
        return dark.T if smoothed.transposed else dark

    def predict(self, images: Sequence) -> tuple[np.ndarray, np.ndarray]:
        """The lesion's box on each radiograph, and whether one was found.

        Parameters
        ----------
        images : sequence of numpy.ndarray
            Radiographs: 2-D arrays of grey levels on the 0-255 scale (uint8 or float), at
            least 8 x 8 pixels; they may differ in size.

        Returns
        -------
        boxes : numpy.ndarray
            Float ``(n, 4)`` ``xyxy`` boxes in each image's pixels. Where nothing was found it
            is the fallback: a box of ``fallback_size_`` centred in the image.
        found : numpy.ndarray
            Bool ``(n,)``: False where the box is the fallback.

        Raises
        ------
        ValueError
            When ``images`` is a single 2-D array rather than a sequence, or an image is not a
            finite 2-D grey-level image on the 0-255 scale.
        """
        imgs = _check_images(images)
        boxes = np.zeros((len(imgs), 4))
        found = np.zeros(len(imgs), bool)
        for i, img in enumerate(imgs):
            smoothed = _Smoothed(img, self.work_size, self.sigma)
            opened = _opened(smoothed.darkness(self.background_quantile))
            labels, area, mass = _components(opened, self.threshold)
            k = _choose(area, mass, self.min_area)
            if k == 0:
                boxes[i] = self._fallback(img.shape)
                continue
            box = _extents(opened, labels, k, [self.edge_level])
            boxes[i] = _to_image(box, [self.pad], smoothed.transposed, self.work_size, img.shape)[0, 0]
            found[i] = True
        return boxes, found

    # ----------------------------------------------------------------------------------------
    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """``(config, arrays)``: the settings as JSON-able values and the fallback size as an array.

        Returns
        -------
        config : dict
            The six settings, ``work_size``, ``grid``, ``max_fit_images``, ``seed`` and
            ``training_iou`` (None before :meth:`fit`).
        arrays : dict of str to numpy.ndarray
            ``{"fallback_size": (2,) float}``.
        """
        config: dict[str, Any] = {**self.params, "work_size": self.work_size,
                                  "grid": {k: list(v) for k, v in self.grid.items()},
                                  "max_fit_images": self.max_fit_images, "seed": self.seed,
                                  "training_iou": self.training_iou_}
        return config, {"fallback_size": self.fallback_size_.copy()}

    @classmethod
    def from_state(cls, config: dict, arrays: dict[str, np.ndarray]) -> LesionFinder:
        """The finder :meth:`state` described.

        Parameters
        ----------
        config : dict
            The ``config`` of :meth:`state` (possibly after a round trip through JSON).
        arrays : dict of str to numpy.ndarray
            The ``arrays`` of :meth:`state` (possibly after a round trip through safetensors).

        Returns
        -------
        LesionFinder
            A finder that predicts exactly as the one saved.

        Raises
        ------
        ValueError
            When a key is missing, ``fallback_size`` is not two positive numbers, or a setting
            is out of range.
        """
        expected = {*_PARAMS, "work_size", "grid", "max_fit_images", "seed", "training_iou"}
        missing = sorted(expected - set(config))
        if missing:
            raise ValueError(f"the lesion finder's config lacks {missing}; expected the keys {sorted(expected)}")
        if "fallback_size" not in arrays:
            raise ValueError(f"the lesion finder's arrays lack 'fallback_size'; got {sorted(arrays)}")
        fallback = np.asarray(arrays["fallback_size"], float)
        if fallback.shape != (2,) or not np.isfinite(fallback).all() or (fallback <= 0).any():
            raise ValueError(f"fallback_size must be two positive numbers, got {fallback.tolist()}")
        finder = cls(**{p: config[p] for p in _PARAMS}, work_size=config["work_size"], grid=config["grid"],
                     max_fit_images=config["max_fit_images"], seed=config["seed"])
        finder.fallback_size_ = fallback
        iou = config["training_iou"]
        finder.training_iou_ = None if iou is None else float(iou)
        return finder
