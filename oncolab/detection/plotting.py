"""Figures of detections: an image with its ground-truth and predicted boxes and scores.

Taught in chapter 3 ("Finding the tumor: object detection").
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .boxes import Detections, box_iou, check_boxes

__all__ = ["plot_detection_grid", "plot_detections"]

GT_COLOR = "#2ca02c"     # green: the truth
PRED_COLOR = "#d62728"   # red: the detector


def plot_detections(image, gt_boxes=None, detections: Detections | None = None, ax=None, title: str | None = None,
                    max_boxes: int = 3, min_score: float = 0.0):
    """Draw ``image`` with ground-truth boxes (green, solid) and detections (red, dashed, score).

    ``gt_boxes``: ``xyxy`` box(es) or ``None``; ``detections``: a :class:`Detections` (its
    ``max_boxes`` best with score >= ``min_score`` are drawn) or ``None``. When both are
    given, the title gains the IoU of the best detection drawn with the first ground-truth box
    (or "missed" when no detection is drawn). Taught in chapter 3.

    Parameters
    ----------
    image : array-like, shape (H, W) or (H, W, 3)
        The image, with values in 0..255 (grayscale is drawn with a gray colour map).
    gt_boxes : array-like, shape (n, 4) or (4,), optional
        Annotated ``xyxy`` boxes.
    detections : Detections, optional
        The detector's boxes.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new 3 x 3 inch figure by default.
    title : str, optional
        Title of the panel.
    max_boxes : int, default 3
        Most detections drawn.
    min_score : float, default 0.0
        Detections scoring lower are not drawn.

    Returns
    -------
    matplotlib.axes.Axes
        The axes drawn on (ticks removed).

    Raises
    ------
    ValueError
        When ``gt_boxes`` are not valid ``xyxy`` boxes.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    if ax is None:
        _, ax = plt.subplots(figsize=(3, 3))
    img = np.asarray(image)
    ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=255)
    gt = check_boxes(gt_boxes, "gt_boxes") if gt_boxes is not None else np.zeros((0, 4))
    for x0, y0, x1, y1 in gt:
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, lw=1.5, ec=GT_COLOR))
    label = title or ""
    if detections is not None:
        keep = np.flatnonzero(detections.scores >= min_score)[:max_boxes]
        for k in keep:
            x0, y0, x1, y1 = detections.boxes[k]
            ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, lw=1.5, ec=PRED_COLOR, ls="--"))
            ax.text(x0, y0 - 1, f"{detections.scores[k]:.2f}", color="white", fontsize=7, va="bottom",
                    bbox={"facecolor": PRED_COLOR, "edgecolor": "none", "pad": 1, "alpha": 0.8})
        if len(gt):
            if len(keep):
                iou = float(box_iou(detections.boxes[keep[:1]], gt[:1])[0, 0])
                label = f"{label}  IoU {iou:.2f}".strip()
            else:
                label = f"{label}  missed".strip()
    if label:
        ax.set_title(label, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
    return ax


def plot_detection_grid(images: Sequence, gt_boxes: Sequence | None = None,
                        detections: Sequence[Detections] | None = None, titles: Sequence[str] | None = None,
                        ncols: int = 4, size: float = 2.4, **kwargs):
    """A grid of :func:`plot_detections` panels; returns the figure.

    Taught in chapter 3.

    Parameters
    ----------
    images : sequence of array-like
        One image per panel, at least one.
    gt_boxes : sequence, optional
        One entry per image: ``xyxy`` box(es) or None.
    detections : sequence of Detections, optional
        One entry per image (None entries draw no detection).
    titles : sequence of str, optional
        One title per image.
    ncols : int, default 4
        Columns of the grid (at most the number of images).
    size : float, default 2.4
        Side of each panel in inches.
    **kwargs
        Passed to :func:`plot_detections` (``max_boxes``, ``min_score``).

    Returns
    -------
    matplotlib.figure.Figure
        The figure; unused panels are switched off.

    Raises
    ------
    ValueError
        When there is no image or a sequence does not have one entry per image.
    """
    import matplotlib.pyplot as plt

    n = len(images)
    if n == 0:
        raise ValueError("plot_detection_grid needs at least one image")
    for name, seq in (("gt_boxes", gt_boxes), ("detections", detections), ("titles", titles)):
        if seq is not None and len(seq) != n:
            raise ValueError(f"{name} has {len(seq)} entries for {n} images; expected one per image")
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i >= n:
            ax.axis("off")
            continue
        plot_detections(images[i], None if gt_boxes is None else gt_boxes[i],
                        None if detections is None else detections[i], ax=ax,
                        title=None if titles is None else titles[i], **kwargs)
    fig.tight_layout()
    return fig
