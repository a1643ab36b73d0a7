"""Bounding boxes from first principles: formats, IoU, GIoU, NMS, matching, AP and mAP.

Taught in chapter 3 ("Finding the tumor: object detection"). Every function here is checked
against the library it re-implements: :func:`box_iou` and :func:`generalized_box_iou` against
``torchvision.ops``, :func:`nms` against ``torchvision.ops.nms`` / ``batched_nms``, and
:func:`evaluate_detections` (mAP@0.5, mAP@0.5:0.95) against ultralytics' validator metrics.

Conventions
-----------
Boxes are NumPy arrays of shape ``(n, 4)`` (a single box of shape ``(4,)`` is accepted where
noted). Four formats are understood by :func:`convert_boxes`:

``"xyxy"``
    corners ``x0, y0, x1, y1`` in pixels (the cohort's ``boxes`` table, torchvision);
``"xywh"``
    top-left corner and size ``x0, y0, w, h`` in pixels (COCO's JSON);
``"cxcywh"``
    centre and size ``cx, cy, w, h`` in pixels;
``"yolo"``
    centre and size divided by the image width and height, each in ``[0, 1]`` (YOLO label files).

Pixel coordinates are continuous: a box ``(0, 0, 10, 10)`` covers the first ten pixels and has
area 100 (no "+1" as in the old PASCAL VOC code).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "split_ground_truth",
    "split_predictions",
    "BOX_FORMATS",
    "COCO_IOU_THRESHOLDS",
    "DetectionEvaluation",
    "Detections",
    "average_precision",
    "box_area",
    "box_iou",
    "check_boxes",
    "convert_boxes",
    "evaluate_detections",
    "generalized_box_iou",
    "match_detections",
    "nms",
    "precision_recall_curve",
]

BOX_FORMATS = ("xyxy", "xywh", "cxcywh", "yolo")
COCO_IOU_THRESHOLDS = np.round(np.linspace(0.5, 0.95, 10), 2)
"""The ten IoU thresholds of COCO's mAP@0.5:0.95: 0.50, 0.55, ..., 0.95."""


# --------------------------------------------------------------------------------------------
# formats
# --------------------------------------------------------------------------------------------
def check_boxes(boxes, name: str = "boxes", fmt: str = "xyxy") -> np.ndarray:
    """Return ``boxes`` as a float ``(n, 4)`` array, or raise naming what is wrong.

    A single box of shape ``(4,)`` becomes ``(1, 4)``; an empty input becomes ``(0, 4)``.
    For ``"xyxy"`` boxes, ``x1 >= x0`` and ``y1 >= y0`` are required; for the size-based
    formats, non-negative width and height. Values must be finite. Taught in chapter 3 (what
    makes a box valid); every function of this module checks its boxes with it.

    Parameters
    ----------
    boxes : array-like, shape (n, 4) or (4,)
        The boxes, in format ``fmt``.
    name : str, default "boxes"
        The name used in error messages.
    fmt : {"xyxy", "xywh", "cxcywh", "yolo"}, default "xyxy"
        The format of ``boxes`` (see the module docstring).

    Returns
    -------
    numpy.ndarray of float, shape (n, 4)
        A float array (a copy when the input was not already a float array).

    Raises
    ------
    ValueError
        When ``fmt`` is unknown, the shape is not (n, 4), a value is not finite, or a box has
        its corners in the wrong order (``xyxy``) or a negative width or height (the others);
        the message names the first bad row.
    """
    if fmt not in BOX_FORMATS:
        raise ValueError(f"unknown box format {fmt!r}; expected one of {BOX_FORMATS}")
    arr = np.asarray(boxes, dtype=float)
    if arr.size == 0:
        return arr.reshape(0, 4)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"{name} must have shape (n, 4), got {np.shape(boxes)}")
    if not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(f"{name} has a non-finite value at row {bad[0]}: {arr[bad[0]].tolist()}")
    if fmt == "xyxy":
        bad = np.flatnonzero((arr[:, 2] < arr[:, 0]) | (arr[:, 3] < arr[:, 1]))
        if bad.size:
            raise ValueError(f"{name}[{bad[0]}] = {arr[bad[0]].tolist()} is not a valid 'xyxy' box: "
                             "expected x0 <= x1 and y0 <= y1")
    else:
        bad = np.flatnonzero((arr[:, 2] < 0) | (arr[:, 3] < 0))
        if bad.size:
            raise ValueError(f"{name}[{bad[0]}] = {arr[bad[0]].tolist()} has a negative width or height")
    return arr


def convert_boxes(boxes, src: str, dst: str, image_size: tuple[int, int] | None = None) -> np.ndarray:
    """Convert boxes between the formats ``"xyxy"``, ``"xywh"``, ``"cxcywh"`` and ``"yolo"``.

    ``image_size`` is ``(width, height)`` in pixels and is needed whenever ``src`` or ``dst``
    is ``"yolo"`` (normalised coordinates). Taught in chapter 3 (the cohort's boxes written as
    YOLO labels).

    Parameters
    ----------
    boxes : array-like, shape (n, 4) or (4,)
        Boxes in format ``src``.
    src, dst : {"xyxy", "xywh", "cxcywh", "yolo"}
        Source and target formats.
    image_size : tuple of (int, int), optional
        ``(width, height)`` of the image in pixels; required when either format is ``"yolo"``.

    Returns
    -------
    numpy.ndarray of float, shape (n, 4)
        A new array, in format ``dst``.

    Raises
    ------
    ValueError
        When a format is unknown, ``boxes`` fails :func:`check_boxes` for ``src``, or
        ``image_size`` is missing or not two positive numbers where ``"yolo"`` is involved.
    """
    for f in (src, dst):
        if f not in BOX_FORMATS:
            raise ValueError(f"unknown box format {f!r}; expected one of {BOX_FORMATS}")
    b = check_boxes(boxes, fmt=src).copy()
    if "yolo" in (src, dst):
        if image_size is None or len(image_size) != 2 or min(image_size) <= 0:
            raise ValueError(f"converting to or from 'yolo' needs image_size=(width, height) > 0, got {image_size!r}")
        w_img, h_img = float(image_size[0]), float(image_size[1])
    # to xyxy
    if src == "yolo":
        b *= [w_img, h_img, w_img, h_img]
    if src in ("yolo", "cxcywh"):
        xyxy = np.column_stack([b[:, 0] - b[:, 2] / 2, b[:, 1] - b[:, 3] / 2,
                                b[:, 0] + b[:, 2] / 2, b[:, 1] + b[:, 3] / 2])
    elif src == "xywh":
        xyxy = np.column_stack([b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]])
    else:
        xyxy = b
    # from xyxy
    if dst == "xyxy":
        return xyxy
    w, h = xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1]
    if dst == "xywh":
        return np.column_stack([xyxy[:, 0], xyxy[:, 1], w, h])
    out = np.column_stack([xyxy[:, 0] + w / 2, xyxy[:, 1] + h / 2, w, h])
    if dst == "yolo":
        out /= [w_img, h_img, w_img, h_img]
    return out


@dataclass
class Detections:
    """The detections of one image: ``xyxy`` pixel boxes, scores and class indices.

    What :meth:`oncolab.detection.YoloDetector.predict` returns per image and what
    :func:`evaluate_detections` and :func:`oncolab.detection.roi_crops` accept. Boxes are
    sorted by decreasing score (stable, so equal scores keep their order). Taught in chapter 3.

    Parameters
    ----------
    boxes : array-like, shape (n, 4)
        ``xyxy`` pixel boxes (checked with :func:`check_boxes`).
    scores : array-like of float, shape (n,)
        Confidence of each box.
    classes : array-like of int, shape (n,)
        Class index of each box.
    image_shape : tuple of (int, int), optional
        ``(height, width)`` of the image the boxes belong to.

    Raises
    ------
    ValueError
        When the boxes are invalid or the three arrays differ in length.
    """

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray
    image_shape: tuple[int, int] | None = None   # (height, width)

    def __post_init__(self):
        self.boxes = check_boxes(self.boxes, "Detections.boxes")
        self.scores = np.asarray(self.scores, dtype=float).reshape(-1)
        self.classes = np.asarray(self.classes, dtype=int).reshape(-1)
        if not len(self.boxes) == len(self.scores) == len(self.classes):
            raise ValueError(f"Detections: {len(self.boxes)} boxes, {len(self.scores)} scores and "
                             f"{len(self.classes)} classes; expected the same number of each")
        order = np.argsort(-self.scores, kind="stable")
        self.boxes, self.scores, self.classes = self.boxes[order], self.scores[order], self.classes[order]

    def __len__(self) -> int:
        return len(self.scores)

    def best(self) -> np.ndarray | None:
        """The highest-scoring box (shape ``(4,)``), or ``None`` when nothing was detected.

        Returns
        -------
        numpy.ndarray of float, shape (4,), or None
            A copy of the first ``xyxy`` box.
        """
        return self.boxes[0].copy() if len(self) else None


# --------------------------------------------------------------------------------------------
# IoU and GIoU
# --------------------------------------------------------------------------------------------
def box_area(boxes) -> np.ndarray:
    """Areas of ``xyxy`` boxes, shape ``(n,)``.

    Taught in chapter 3 (the ingredient of IoU).

    Parameters
    ----------
    boxes : array-like, shape (n, 4) or (4,)
        ``xyxy`` boxes.

    Returns
    -------
    numpy.ndarray of float, shape (n,)
        ``(x1 - x0) * (y1 - y0)`` per box.

    Raises
    ------
    ValueError
        When the boxes fail :func:`check_boxes`.
    """
    b = check_boxes(boxes)
    return (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])


def _inter_union(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lt = np.maximum(a[:, None, :2], b[None, :, :2])   # (n, m, 2) top-left of the overlap
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])   # bottom-right of the overlap
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return inter, union


def box_iou(boxes1, boxes2) -> np.ndarray:
    """Pairwise intersection over union of two sets of ``xyxy`` boxes: shape ``(n, m)``.

    IoU = area(A ∩ B) / area(A ∪ B), in [0, 1]. Two empty (zero-area) boxes give 0. Taught in
    chapter 3; chapter 12 scores the detector's boxes against the annotated ones with it.

    Parameters
    ----------
    boxes1 : array-like, shape (n, 4) or (4,)
        ``xyxy`` boxes.
    boxes2 : array-like, shape (m, 4) or (4,)
        ``xyxy`` boxes.

    Returns
    -------
    numpy.ndarray of float, shape (n, m)
        ``iou[i, j]`` between ``boxes1[i]`` and ``boxes2[j]``.

    Raises
    ------
    ValueError
        When either set fails :func:`check_boxes`.
    """
    a, b = check_boxes(boxes1, "boxes1"), check_boxes(boxes2, "boxes2")
    inter, union = _inter_union(a, b)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def generalized_box_iou(boxes1, boxes2) -> np.ndarray:
    """Pairwise generalised IoU (Rezatofighi et al., 2019): shape ``(n, m)``, in [-1, 1].

    GIoU = IoU - area(C \\ (A ∪ B)) / area(C), where C is the smallest box enclosing A and B.
    Unlike IoU it still says how far apart two boxes are when they do not overlap, which is
    why detectors use ``1 - GIoU`` (or its relatives CIoU, DIoU) as a box loss. Taught in
    chapter 3. When the enclosing box has zero area the result is the IoU (0).

    Parameters
    ----------
    boxes1 : array-like, shape (n, 4) or (4,)
        ``xyxy`` boxes.
    boxes2 : array-like, shape (m, 4) or (4,)
        ``xyxy`` boxes.

    Returns
    -------
    numpy.ndarray of float, shape (n, m)
        ``giou[i, j]`` between ``boxes1[i]`` and ``boxes2[j]``.

    Raises
    ------
    ValueError
        When either set fails :func:`check_boxes`.
    """
    a, b = check_boxes(boxes1, "boxes1"), check_boxes(boxes2, "boxes2")
    inter, union = _inter_union(a, b)
    lt = np.minimum(a[:, None, :2], b[None, :, :2])
    rb = np.maximum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    hull = wh[..., 0] * wh[..., 1]
    safe_union = np.where(union > 0, union, 1)
    safe_hull = np.where(hull > 0, hull, 1)
    iou = np.where(union > 0, inter / safe_union, 0.0)
    return np.where(hull > 0, iou - (hull - union) / safe_hull, iou)


# --------------------------------------------------------------------------------------------
# non-maximum suppression
# --------------------------------------------------------------------------------------------
def nms(boxes, scores, iou_threshold: float = 0.5, classes=None) -> np.ndarray:
    """Greedy non-maximum suppression; returns the indices kept, highest score first.

    Take the highest-scoring box, drop every remaining box whose IoU with it is *greater*
    than ``iou_threshold``, repeat with the next box still standing. With ``classes``, boxes
    of different classes never suppress each other (``torchvision.ops.batched_nms``).
    Same rule and order as ``torchvision.ops.nms``. Taught in chapter 3.

    Parameters
    ----------
    boxes : array-like, shape (n, 4)
        ``xyxy`` boxes.
    scores : array-like of float, shape (n,)
        Score of each box.
    iou_threshold : float, default 0.5
        In [0, 1]; a box overlapping a kept one by more than this is dropped.
    classes : array-like, shape (n,), optional
        Class of each box; boxes only suppress boxes of their own class.

    Returns
    -------
    numpy.ndarray of int64, shape (k,)
        Indices into ``boxes`` of the boxes kept, by decreasing score.

    Raises
    ------
    ValueError
        When the boxes are invalid, ``scores`` or ``classes`` does not have one value per box,
        or ``iou_threshold`` is outside [0, 1].
    """
    b = check_boxes(boxes)
    s = np.asarray(scores, dtype=float).reshape(-1)
    if s.shape[0] != b.shape[0]:
        raise ValueError(f"scores has {s.shape[0]} values for {b.shape[0]} boxes; expected one score per box")
    if not 0.0 <= float(iou_threshold) <= 1.0:
        raise ValueError(f"iou_threshold must lie in [0, 1], got {iou_threshold!r}")
    if classes is not None:
        c = np.asarray(classes).reshape(-1)
        if c.shape[0] != b.shape[0]:
            raise ValueError(f"classes has {c.shape[0]} values for {b.shape[0]} boxes")
        same_class = c[:, None] == c[None, :]
    order = np.argsort(-s, kind="stable")
    iou = box_iou(b, b)
    suppressed = np.zeros(len(b), bool)
    keep = []
    for i in order:
        if suppressed[i]:
            continue
        keep.append(i)
        hit = iou[i] > iou_threshold
        if classes is not None:
            hit &= same_class[i]
        suppressed |= hit
    return np.asarray(keep, dtype=np.int64)


# --------------------------------------------------------------------------------------------
# matching, precision-recall, AP
# --------------------------------------------------------------------------------------------
def match_detections(pred_boxes, pred_scores, gt_boxes, iou_thresholds=0.5,
                     pred_classes=None, gt_classes=None) -> np.ndarray:
    """Which detections of one image are true positives, at each IoU threshold.

    Detections are visited from the highest score down; each claims the still unclaimed
    ground-truth box of its class with which it has the highest IoU, and is a true positive
    when that IoU reaches the threshold; otherwise it is a false positive (a duplicate of an
    object already found counts as a false positive). This is the greedy rule of PASCAL VOC
    and COCO, and of ultralytics' validator. Each IoU threshold is matched on its own. Taught in
    chapter 3 (through :func:`evaluate_detections`).

    Parameters
    ----------
    pred_boxes : array-like, shape (n_pred, 4)
        Detected ``xyxy`` boxes of one image.
    pred_scores : array-like of float, shape (n_pred,)
        Their scores.
    gt_boxes : array-like, shape (n_gt, 4)
        Annotated ``xyxy`` boxes of the same image.
    iou_thresholds : float or array-like of float, default 0.5
        One or more thresholds in [0, 1].
    pred_classes, gt_classes : array-like of int, optional
        Class of each box; all class 0 when omitted.

    Returns
    -------
    numpy.ndarray of bool, shape (n_pred, n_thresholds)
        True where the detection is a true positive at that threshold, rows in the order the
        detections were given.

    Raises
    ------
    ValueError
        When the boxes are invalid, the scores or classes do not have one value per box, or a
        threshold is outside [0, 1].
    """
    p = check_boxes(pred_boxes, "pred_boxes")
    g = check_boxes(gt_boxes, "gt_boxes")
    s = np.asarray(pred_scores, dtype=float).reshape(-1)
    if s.shape[0] != p.shape[0]:
        raise ValueError(f"pred_scores has {s.shape[0]} values for {p.shape[0]} boxes")
    thr = np.atleast_1d(np.asarray(iou_thresholds, dtype=float))
    if ((thr < 0) | (thr > 1)).any():
        raise ValueError(f"IoU thresholds must lie in [0, 1], got {thr.tolist()}")
    pc = np.zeros(len(p), int) if pred_classes is None else np.asarray(pred_classes).reshape(-1)
    gc = np.zeros(len(g), int) if gt_classes is None else np.asarray(gt_classes).reshape(-1)
    if len(pc) != len(p) or len(gc) != len(g):
        raise ValueError("pred_classes / gt_classes must have one value per box")
    correct = np.zeros((len(p), len(thr)), bool)
    if len(p) == 0 or len(g) == 0:
        return correct
    iou = box_iou(g, p) * (gc[:, None] == pc[None, :])   # (n_gt, n_pred), 0 across classes
    claimed = np.zeros((len(g), len(thr)), bool)
    for j in np.argsort(-s, kind="stable"):
        available = np.where(claimed, 0.0, iou[:, j, None])   # (n_gt, n_thr)
        k = available.argmax(0)
        hit = available[k, np.arange(len(thr))] >= thr
        correct[j] = hit
        claimed[k[hit], np.flatnonzero(hit)] = True
    return correct


def precision_recall_curve(tp, scores, n_gt: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision and recall after each detection, detections sorted by decreasing score.

    Taught in chapter 3.

    Parameters
    ----------
    tp : array-like of bool, shape (n,) or (n, t)
        Whether each detection is a true positive (one column per IoU threshold, as
        :func:`match_detections` returns).
    scores : array-like of float, shape (n,)
        The detections' scores.
    n_gt : int
        Number of annotated objects, >= 0 (recall is 0 everywhere when it is 0).

    Returns
    -------
    precision : numpy.ndarray of float, shape like ``tp``
        Precision after each detection, in score order.
    recall : numpy.ndarray of float, shape like ``tp``
        Recall after each detection.
    sorted_scores : numpy.ndarray of float, shape (n,)
        The scores, decreasing (stable for ties).

    Raises
    ------
    ValueError
        When ``tp`` and ``scores`` differ in length or ``n_gt < 0``.
    """
    tp = np.asarray(tp, dtype=float)
    s = np.asarray(scores, dtype=float).reshape(-1)
    if tp.shape[0] != s.shape[0]:
        raise ValueError(f"tp has {tp.shape[0]} rows for {s.shape[0]} scores")
    if n_gt < 0:
        raise ValueError(f"n_gt must be >= 0, got {n_gt}")
    order = np.argsort(-s, kind="stable")
    tpc = np.cumsum(tp[order], axis=0)
    fpc = np.cumsum(1 - tp[order], axis=0)
    precision = tpc / np.maximum(tpc + fpc, 1e-16)
    recall = tpc / n_gt if n_gt > 0 else np.zeros_like(tpc)
    return precision, recall, s[order]


def average_precision(recall, precision, method: str = "all") -> float:
    """Area under the interpolated precision-recall curve.

    The precision is first made monotone: at each recall it becomes the best precision
    reached at that recall or beyond (the "envelope"). Then

    ``method="all"``
        all-point interpolation (PASCAL VOC 2010+): the exact area under that envelope, a sum
        of rectangles, one per step in recall;
    ``method="coco"``
        COCO's 101-point interpolation: the mean of the envelope sampled at recall
        0, 0.01, ..., 1 (0 beyond the highest recall reached).

    Taught in chapter 3.

    Parameters
    ----------
    recall : array-like of float, shape (n,)
        Recall after each detection, non-decreasing (from :func:`precision_recall_curve`).
    precision : array-like of float, shape (n,)
        Precision after each detection.
    method : {"all", "coco"}, default "all"
        The interpolation, as above.

    Returns
    -------
    float
        The average precision, in [0, 1]; 0 for no detections.

    Raises
    ------
    ValueError
        When the two arrays differ in length, recall decreases, or ``method`` is unknown.
    """
    r = np.asarray(recall, dtype=float).reshape(-1)
    p = np.asarray(precision, dtype=float).reshape(-1)
    if r.shape != p.shape:
        raise ValueError(f"recall and precision must have the same length, got {r.shape} and {p.shape}")
    if len(r) and (np.diff(r) < -1e-12).any():
        raise ValueError("recall must be non-decreasing (detections sorted by decreasing score)")
    if method not in ("all", "coco"):
        raise ValueError(f"method must be 'all' or 'coco', got {method!r}")
    if len(r) == 0:
        return 0.0
    mrec = np.concatenate(([0.0], r, [1.0]))
    mpre = np.concatenate(([1.0], p, [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]          # envelope
    if method == "all":
        steps = np.flatnonzero(mrec[1:] != mrec[:-1])
        return float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]))
    grid = np.linspace(0, 1, 101)
    env = np.maximum.accumulate(np.concatenate((p, [0.0]))[::-1])[::-1]   # envelope on the real points
    idx = np.searchsorted(r, grid, side="left")              # first point with recall >= grid
    return float(np.mean(np.where(idx < len(r), env[np.minimum(idx, len(r) - 1)], 0.0)))


@dataclass
class DetectionEvaluation:
    """What :func:`evaluate_detections` measured.

    ``ap`` has one row per class present in the ground truth and one column per IoU
    threshold; ``map50`` and ``map50_95`` average it over classes (first column, all
    columns). ``precision``, ``recall`` and ``f1`` are read, for each class, after the
    detection at which that class's F1 at the first IoU threshold (0.5) is highest, and then
    averaged over classes (a class without detections counts 0); ``score_threshold`` is the
    mean of those detections' scores. ultralytics instead picks one score threshold for all
    classes on a smoothed mean F1 curve, so its precision and recall are close to these, not
    equal. Taught in chapter 3.

    Attributes
    ----------
    map50, map50_95 : float
        Mean AP at IoU 0.5 (the first threshold) and over all thresholds.
    precision, recall, f1, score_threshold : float
        As above.
    ap : numpy.ndarray of float, shape (n_classes, n_thresholds)
        AP per class and threshold.
    classes : numpy.ndarray of int
        The classes present in the ground truth, sorted (the rows of ``ap``).
    iou_thresholds : numpy.ndarray of float
        The thresholds (the columns of ``ap``).
    n_images, n_gt, n_pred : int
        Images, annotated objects and detections counted.
    tp, scores, pred_classes, gt_classes : numpy.ndarray
        The pooled matching (``tp``: bool, one row per detection and column per threshold),
        kept for plots.
    """

    map50: float
    map50_95: float
    precision: float
    recall: float
    f1: float
    score_threshold: float
    ap: np.ndarray
    classes: np.ndarray
    iou_thresholds: np.ndarray
    n_images: int
    n_gt: int
    n_pred: int
    tp: np.ndarray = field(repr=False)
    scores: np.ndarray = field(repr=False)
    pred_classes: np.ndarray = field(repr=False)
    gt_classes: np.ndarray = field(repr=False)

    def as_dict(self) -> dict[str, float]:
        """The headline numbers, rounded for a table.

        Returns
        -------
        dict
            ``mAP@0.5``, ``mAP@0.5:0.95``, ``precision``, ``recall`` (floats rounded to four
            decimals) and ``images``, ``objects``, ``detections`` (ints).
        """
        return {"mAP@0.5": round(self.map50, 4), "mAP@0.5:0.95": round(self.map50_95, 4),
                "precision": round(self.precision, 4), "recall": round(self.recall, 4),
                "images": self.n_images, "objects": self.n_gt, "detections": self.n_pred}


def split_predictions(item, i: int):
    """One image's predictions as ``(boxes (n, 4), scores (n,), classes (n,))``; taught in chapter 3.

    Parameters
    ----------
    item : dict, tuple or Detections
        ``{"boxes", "scores"[, "classes"]}``, ``(boxes, scores[, classes])`` or a Detections.
    i : int
        The image's position, named in errors.

    Returns
    -------
    boxes : numpy.ndarray of float, shape (n, 4)
    scores : numpy.ndarray of float, shape (n,)
    classes : numpy.ndarray of int, shape (n,)
        All 0 when the item gives no classes.

    Raises
    ------
    TypeError
        When ``item`` is none of the three forms.
    ValueError
        When the boxes are invalid or the scores do not have one value per box.
    """
    if isinstance(item, dict):
        boxes, scores, classes = item.get("boxes"), item.get("scores"), item.get("classes")
    elif hasattr(item, "boxes") and hasattr(item, "scores"):
        boxes, scores, classes = item.boxes, item.scores, getattr(item, "classes", None)
    elif isinstance(item, (tuple, list)) and len(item) in (2, 3):
        boxes, scores, classes = (*item, None)[:3]
    else:
        raise TypeError(f"predictions[{i}] must be a dict with 'boxes' and 'scores' (and optional 'classes'), "
                        f"a (boxes, scores[, classes]) tuple or a Detections; got {type(item).__name__}")
    boxes = check_boxes(boxes if boxes is not None else [], f"predictions[{i}] boxes")
    scores = np.asarray(scores if scores is not None else [], dtype=float).reshape(-1)
    if len(scores) != len(boxes):
        raise ValueError(f"predictions[{i}]: {len(scores)} scores for {len(boxes)} boxes")
    classes = np.zeros(len(boxes), int) if classes is None else np.asarray(classes, dtype=int).reshape(-1)
    return boxes, scores, classes


def split_ground_truth(item, i: int):
    """One image's annotated boxes as ``(boxes (n, 4), classes (n,))``; taught in chapter 3.

    Parameters
    ----------
    item : dict, tuple or array
        ``{"boxes"[, "classes"]}``, ``(boxes, classes)`` or the boxes alone.
    i : int
        The image's position, named in errors.

    Returns
    -------
    boxes : numpy.ndarray of float, shape (n, 4)
    classes : numpy.ndarray of int, shape (n,)
        All 0 when the item gives no classes.

    Raises
    ------
    ValueError
        When the boxes are invalid or the classes do not have one value per box.
    """
    if isinstance(item, dict):
        boxes, classes = item.get("boxes"), item.get("classes")
    elif isinstance(item, tuple) and len(item) == 2:
        boxes, classes = item
    else:
        boxes, classes = item, None
    boxes = check_boxes(boxes if boxes is not None else [], f"ground_truth[{i}] boxes")
    classes = np.zeros(len(boxes), int) if classes is None else np.asarray(classes, dtype=int).reshape(-1)
    if len(classes) != len(boxes):
        raise ValueError(f"ground_truth[{i}]: {len(classes)} classes for {len(boxes)} boxes")
    return boxes, classes


def evaluate_detections(predictions: Sequence, ground_truth: Sequence,
                        iou_thresholds=COCO_IOU_THRESHOLDS, method: str = "coco") -> DetectionEvaluation:
    """mAP@0.5, mAP@0.5:0.95, precision and recall of detections over a set of images.

    Detections are matched per image with :func:`match_detections`, then pooled over images
    per class, sorted by score, and turned into a precision-recall curve per threshold whose
    area (:func:`average_precision`) is the AP. mAP is the mean AP over the classes that have
    ground truth. Taught in chapter 3.

    Parameters
    ----------
    predictions : sequence
        One entry per image: ``{"boxes": (n, 4) xyxy, "scores": (n,), "classes": (n,)}``
        (``classes`` optional), a ``(boxes, scores[, classes])`` tuple, or a
        :class:`~oncolab.detection.Detections`.
    ground_truth : sequence
        One entry per image, in the same order: an ``(m, 4)`` xyxy array (one class), or
        ``{"boxes": ..., "classes": ...}``, or a ``(boxes, classes)`` tuple.
    iou_thresholds : array-like of float, default :data:`COCO_IOU_THRESHOLDS`
        The IoU thresholds; the first one gives ``map50`` (keep it at 0.5).
    method : {"coco", "all"}, default "coco"
        ``"coco"`` (101-point, what COCO and ultralytics report) or ``"all"`` (all-point).

    Returns
    -------
    DetectionEvaluation
        mAP@0.5, mAP@0.5:0.95, precision, recall, F1, the AP table and the pooled matching.
        With no annotated object at all every number is 0.

    Raises
    ------
    ValueError
        When the two sequences differ in length, or an entry's boxes, scores, classes or IoU
        thresholds are invalid.
    TypeError
        When a prediction entry is none of the accepted forms.
    """
    if len(predictions) != len(ground_truth):
        raise ValueError(f"{len(predictions)} prediction entries for {len(ground_truth)} images; "
                         "expected one entry per image in both")
    thr = np.atleast_1d(np.asarray(iou_thresholds, dtype=float))
    tps, scores, pcls, gcls = [], [], [], []
    for i, (pred, gt) in enumerate(zip(predictions, ground_truth)):
        pb, ps, pc = split_predictions(pred, i)
        gb, gc = split_ground_truth(gt, i)
        tps.append(match_detections(pb, ps, gb, thr, pc, gc))
        scores.append(ps)
        pcls.append(pc)
        gcls.append(gc)
    tp = np.concatenate(tps) if tps else np.zeros((0, len(thr)), bool)
    sc = np.concatenate(scores) if scores else np.zeros(0)
    pc = np.concatenate(pcls) if pcls else np.zeros(0, int)
    gc = np.concatenate(gcls) if gcls else np.zeros(0, int)
    classes = np.unique(gc)
    ap = np.zeros((len(classes), len(thr)))
    best = []   # per class: (f1, precision, recall, score) at the best F1 at the first threshold
    for ci, c in enumerate(classes):
        sel = pc == c
        n_gt = int((gc == c).sum())
        if not sel.any():
            best.append((0.0, 0.0, 0.0, 0.0))
            continue
        prec, rec, s_sorted = precision_recall_curve(tp[sel], sc[sel], n_gt)
        for t in range(len(thr)):
            ap[ci, t] = average_precision(rec[:, t], prec[:, t], method)
        f1 = 2 * prec[:, 0] * rec[:, 0] / np.maximum(prec[:, 0] + rec[:, 0], 1e-16)
        k = int(np.argmax(f1))
        best.append((float(f1[k]), float(prec[k, 0]), float(rec[k, 0]), float(s_sorted[k])))
    best_arr = np.asarray(best, dtype=float).reshape(-1, 4)
    mean = best_arr.mean(0) if len(best_arr) else np.zeros(4)
    return DetectionEvaluation(
        map50=float(ap[:, 0].mean()) if len(classes) else 0.0,
        map50_95=float(ap.mean()) if len(classes) else 0.0,
        precision=float(mean[1]), recall=float(mean[2]), f1=float(mean[0]), score_threshold=float(mean[3]),
        ap=ap, classes=classes, iou_thresholds=thr, n_images=len(predictions), n_gt=int(len(gc)),
        n_pred=int(len(sc)), tp=tp, scores=sc, pred_classes=pc, gt_classes=gc)
