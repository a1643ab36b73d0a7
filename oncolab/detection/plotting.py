"""Figures of detections: an image with its ground-truth and predicted boxes and scores.

Taught in chapter 3 ("Finding the tumor: object detection"); reused by the report of chapter 12.
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
    given, the title gains the IoU of the best detection with the first ground-truth box.
    Returns the matplotlib axes.
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
    """A grid of :func:`plot_detections` panels; returns the figure."""
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
