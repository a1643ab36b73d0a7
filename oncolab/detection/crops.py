"""Regions of interest: from a lesion box to the fixed-size crop the image encoders read.

Taught in chapter 3 ("Finding the tumor: object detection"); the same cuts make the lesion crops
of chapter 2's CNNs (:func:`oncolab.vision.lesion_crops`) and the radiograph windows of the
complete system of chapter 12.

The crop is square and centred on the box, enlarged by a ``margin`` on every side (the tissue
around a lesion carries information: a sclerotic rim, a periosteal reaction), padded with zeros
where it leaves the image, and resized to ``size`` x ``size``. When there is no box (the
detector found nothing) the whole image, padded to a square, is used instead and the fallback is
flagged, so that the next stage can tell.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from .boxes import Detections, check_boxes

__all__ = ["centred_window", "crop_window", "roi_crop", "roi_crops"]


def _check_image(image, name: str = "image") -> np.ndarray:
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise TypeError(f"{name} must be a uint8 array, got dtype {arr.dtype}")
    if arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (1, 3)):
        return arr[..., 0] if arr.ndim == 3 and arr.shape[2] == 1 else arr
    raise ValueError(f"{name} must have shape (H, W), (H, W, 1) or (H, W, 3), got {arr.shape}")


def _check_size(size: int) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"size must be a positive integer, got {size!r}")
    return int(size)


def crop_window(box, image_shape: tuple[int, int], margin: float = 0.15) -> tuple[int, int, int, int]:
    """The square pixel window ``(x0, y0, x1, y1)`` that :func:`roi_crop` cuts around ``box``.

    The side is the box's longer side times ``1 + 2 * margin`` (at least one pixel); the window
    is centred on the box and may reach outside the image (that part is padded).
    ``box = None`` gives the whole image made square. Taught in chapter 3.

    Parameters
    ----------
    box : array-like of 4 floats, or None
        One ``xyxy`` box in pixels.
    image_shape : tuple of (int, int)
        ``(height, width)`` of the image (further entries are ignored).
    margin : float, default 0.15
        Fraction of the box's longer side added on every side, >= 0.

    Returns
    -------
    tuple of 4 int
        ``(x0, y0, x1, y1)``, with ``x1 - x0 == y1 - y0 >= 1``; may lie partly outside the
        image.

    Raises
    ------
    ValueError
        When ``margin`` is negative or not finite, ``box`` is not one valid ``xyxy`` box, or
        the box lies entirely outside the image.
    """
    if margin < 0 or not np.isfinite(margin):
        raise ValueError(f"margin must be a finite number >= 0, got {margin!r}")
    h, w = int(image_shape[0]), int(image_shape[1])
    if box is None:
        side = max(h, w)
        cx, cy = w / 2, h / 2
    else:
        b = check_boxes(box, "box")
        if len(b) != 1:
            raise ValueError(f"box must be one xyxy box of 4 numbers, got shape {np.shape(box)}")
        x0, y0, x1, y1 = b[0]
        if x1 <= 0 or y1 <= 0 or x0 >= w or y0 >= h:
            raise ValueError(f"box {b[0].tolist()} lies outside the image of shape {(h, w)}")
        side = max(x1 - x0, y1 - y0) * (1 + 2 * margin)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    side = max(int(round(side)), 1)
    left, top = int(round(cx - side / 2)), int(round(cy - side / 2))
    return left, top, left + side, top + side


def centred_window(box, image_shape: tuple[int, int], window: float = 0.5) -> tuple[float, float, float, float]:
    """A square ``xyxy`` window, ``window`` times the image's height, centred on ``box``.

    Cut with ``roi_crop(image, centred_window(box, image.shape, w), size, margin=0)``: unlike a
    window fitted to the box, a fixed window keeps the lesion's true size visible to a CNN
    (chapter 2; the complete system of chapter 12 crops this way around the detector's box).

    Parameters
    ----------
    box : array-like of 4 floats
        One ``xyxy`` box in pixels.
    image_shape : tuple of (int, int)
        ``(height, width)`` of the image; only the height is used.
    window : float, default 0.5
        Side of the window as a fraction of the image height, in (0, 1].

    Returns
    -------
    tuple of 4 float
        ``(x0, y0, x1, y1)`` centred on the box's centre; may reach outside the image.

    Raises
    ------
    ValueError
        When ``window`` is outside (0, 1] or ``box`` is not one valid ``xyxy`` box.
    """
    if not 0 < window <= 1:
        raise ValueError(f"window must lie in (0, 1], got {window!r}")
    b = check_boxes(box, "box")
    if len(b) != 1:
        raise ValueError(f"box must be one xyxy box of 4 numbers, got shape {np.shape(box)}")
    x0, y0, x1, y1 = b[0]
    half = window * int(image_shape[0]) / 2
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return (cx - half, cy - half, cx + half, cy + half)


def roi_crop(image, box, size: int = 128, margin: float = 0.15) -> np.ndarray:
    """Cut a square region around ``box`` (``xyxy`` pixels) and resize it to ``size`` x ``size``.

    ``image`` is uint8, grayscale ``(H, W)`` or colour ``(H, W, 3)``; the crop keeps its
    channels. Parts of the window outside the image are filled with zeros; the resize is
    bilinear (PIL). ``box=None`` crops the whole image (padded to a square). Taught in chapter 3.

    Parameters
    ----------
    image : numpy.ndarray of uint8, shape (H, W), (H, W, 1) or (H, W, 3)
        The image (a single channel is squeezed to (H, W)).
    box : array-like of 4 floats, or None
        One ``xyxy`` box in pixels.
    size : int, default 128
        Side of the output, >= 1.
    margin : float, default 0.15
        As in :func:`crop_window`; 0 cuts exactly a square window given as ``box``.

    Returns
    -------
    numpy.ndarray of uint8, shape (size, size) or (size, size, 3)

    Raises
    ------
    TypeError
        When ``image`` is not uint8.
    ValueError
        When ``image`` has another shape, ``size`` is not a positive integer, or ``box`` or
        ``margin`` fails :func:`crop_window`.
    """
    img = _check_image(image)
    size = _check_size(size)
    x0, y0, x1, y1 = crop_window(box, img.shape[:2], margin)
    h, w = img.shape[:2]
    canvas = np.zeros((y1 - y0, x1 - x0, *img.shape[2:]), dtype=np.uint8)
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if sx1 > sx0 and sy1 > sy0:
        canvas[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = img[sy0:sy1, sx0:sx1]
    if canvas.shape[0] == size and canvas.shape[1] == size:
        return canvas
    return np.asarray(Image.fromarray(canvas).resize((size, size), Image.BILINEAR))


def roi_crops(images: Sequence, boxes: Sequence, size: int = 128, margin: float = 0.15,
              min_score: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Crops for a batch of images; returns ``(crops, fell_back)``.

    ``boxes`` has one entry per image: a :class:`~oncolab.detection.Detections` (its
    highest-scoring box is used when its score is at least ``min_score``), an ``xyxy`` box of
    four numbers, or ``None``. Where there is no usable box the whole image is used and
    ``fell_back[i]`` is True. ``crops`` has shape ``(n, size, size)`` for grayscale images or
    ``(n, size, size, 3)`` for colour ones (all images must agree). Taught in chapter 3 (crops
    around YOLO's boxes).

    Parameters
    ----------
    images : sequence of numpy.ndarray of uint8
        The images, each (H, W), (H, W, 1) or (H, W, 3).
    boxes : sequence
        One entry per image: a :class:`~oncolab.detection.Detections`, one ``xyxy`` box, an
        empty array, or None.
    size : int, default 128
        Side of each crop.
    margin : float, default 0.15
        As in :func:`crop_window`.
    min_score : float, default 0.0
        Below this score a detection is not used (the image falls back).

    Returns
    -------
    crops : numpy.ndarray of uint8, shape (n, size, size) or (n, size, size, 3)
        ``(0, size, size)`` when there are no images.
    fell_back : numpy.ndarray of bool, shape (n,)
        True where the whole image was used.

    Raises
    ------
    ValueError
        When ``images`` and ``boxes`` differ in length, a crop fails :func:`roi_crop`, or the
        images mix grayscale and colour.
    TypeError
        When an image is not uint8.
    """
    if len(images) != len(boxes):
        raise ValueError(f"{len(images)} images but {len(boxes)} box entries; expected one entry per image")
    size = _check_size(size)
    crops, fell_back = [], np.zeros(len(images), bool)
    for i, (image, entry) in enumerate(zip(images, boxes)):
        box = entry
        if isinstance(entry, Detections):
            box = entry.best() if len(entry) and entry.scores[0] >= min_score else None
        elif entry is not None and np.size(entry) == 0:
            box = None
        fell_back[i] = box is None
        crops.append(roi_crop(_check_image(image, f"images[{i}]"), box, size, margin))
    if not crops:
        return np.zeros((0, size, size), np.uint8), fell_back
    shapes = {c.shape for c in crops}
    if len(shapes) > 1:
        raise ValueError(f"images mix grayscale and colour (crop shapes {sorted(shapes)}); convert them first")
    return np.stack(crops), fell_back
