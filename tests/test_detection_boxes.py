"""oncolab.detection.boxes: formats, IoU, GIoU, NMS, matching, AP and mAP against the libraries."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from hypothesis import given, settings
from hypothesis import strategies as st

from oncolab.detection import (
    Detections,
    average_precision,
    box_iou,
    convert_boxes,
    evaluate_detections,
    generalized_box_iou,
    match_detections,
    nms,
    precision_recall_curve,
    ultralytics_map,
)


def random_boxes(n: int, rng: np.random.Generator, extent: float = 100.0) -> np.ndarray:
    xy = rng.uniform(0, extent, (n, 2))
    wh = rng.uniform(1, 0.4 * extent, (n, 2))
    return np.hstack([xy, xy + wh])


def simulated_detections(n_images: int, seed: int, noise: float, n_classes: int = 1):
    """Noisy copies of the truth (some missed) plus random false alarms, with scores."""
    rng = np.random.default_rng(seed)
    preds, gts = [], []
    for _ in range(n_images):
        g = random_boxes(int(rng.integers(1, 4)), rng)
        gc = rng.integers(0, n_classes, len(g))
        boxes, scores, classes = [], [], []
        for box, c in zip(g, gc):
            if rng.random() < 0.85:
                boxes.append(box + rng.normal(0, noise, 4))
                scores.append(rng.uniform(0.3, 1.0))
                classes.append(c if rng.random() < 0.9 else (c + 1) % n_classes)
        for _ in range(int(rng.integers(0, 4))):
            boxes.append(random_boxes(1, rng)[0])
            scores.append(rng.uniform(0.0, 0.8))
            classes.append(int(rng.integers(0, n_classes)))
        b = np.asarray(boxes, dtype=float).reshape(-1, 4)
        b[:, 2:] = np.maximum(b[:, 2:], b[:, :2] + 0.5)
        preds.append({"boxes": b, "scores": np.asarray(scores), "classes": np.asarray(classes, dtype=int)})
        gts.append({"boxes": g, "classes": gc})
    return preds, gts


# ------------------------------------------------------------------------------------------ formats
def test_convert_boxes_matches_torchvision_and_round_trips():
    rng = np.random.default_rng(0)
    b = random_boxes(30, rng)
    for fmt in ("xywh", "cxcywh"):
        ours = convert_boxes(b, "xyxy", fmt)
        ref = torchvision.ops.box_convert(torch.tensor(b), "xyxy", fmt).numpy()
        np.testing.assert_allclose(ours, ref, atol=1e-9)
        np.testing.assert_allclose(convert_boxes(ours, fmt, "xyxy"), b, atol=1e-9)
    y = convert_boxes(b, "xyxy", "yolo", image_size=(200, 150))
    np.testing.assert_allclose(convert_boxes(y, "yolo", "xyxy", image_size=(200, 150)), b, atol=1e-9)
    np.testing.assert_allclose(y[:, [0, 2]] * 200, convert_boxes(b, "xyxy", "cxcywh")[:, [0, 2]], atol=1e-9)


def test_yolo_format_agrees_with_the_cohort_export(small_cohort, tmp_path):
    from oncolab.data import export_yolo, read_yolo_labels

    idx = np.arange(6)
    export_yolo(small_cohort, tmp_path / "yolo", {"train": idx, "test": idx})
    for i in idx:
        pid = small_cohort.ids[i]
        h, w = small_cohort.radiograph(i).shape
        label = read_yolo_labels(tmp_path / "yolo" / "labels" / "train" / f"{pid}.txt")
        ours = convert_boxes(small_cohort.boxes.loc[pid].to_numpy(), "xyxy", "yolo", image_size=(w, h))
        np.testing.assert_allclose(label[:, 1:], ours, atol=1e-6)


def test_bad_boxes_raise_naming_the_value():
    with pytest.raises(ValueError, match=r"shape \(n, 4\)"):
        box_iou(np.zeros((3, 5)), np.zeros((1, 4)))
    with pytest.raises(ValueError, match="not a valid 'xyxy' box"):
        box_iou([[10, 0, 5, 5]], [[0, 0, 1, 1]])
    with pytest.raises(ValueError, match="unknown box format 'xyxyxy'"):
        convert_boxes([[0, 0, 1, 1]], "xyxyxy", "xyxy")
    with pytest.raises(ValueError, match="image_size"):
        convert_boxes([[0, 0, 1, 1]], "xyxy", "yolo")
    with pytest.raises(ValueError, match="non-finite"):
        box_iou([[0, 0, np.nan, 1]], [[0, 0, 1, 1]])
    with pytest.raises(ValueError, match="3 values for 2 boxes"):
        nms([[0, 0, 1, 1], [0, 0, 2, 2]], [0.1, 0.2, 0.3])


# ------------------------------------------------------------------------------------------ IoU
def test_iou_by_hand():
    a = [[0, 0, 10, 10]]
    b = [[5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 10, 10]]
    np.testing.assert_allclose(box_iou(a, b), [[50 / 150, 0.0, 1.0]])
    # disjoint boxes: IoU 0, GIoU negative and smaller the further apart they are
    g = generalized_box_iou(a, [[20, 0, 30, 10], [40, 0, 50, 10]])
    np.testing.assert_allclose(g, [[0 - 100 / 300, 0 - 300 / 500]])


def test_iou_and_giou_match_torchvision():
    rng = np.random.default_rng(1)
    a, b = random_boxes(40, rng), random_boxes(25, rng)
    ta, tb = torch.tensor(a), torch.tensor(b)
    np.testing.assert_allclose(box_iou(a, b), torchvision.ops.box_iou(ta, tb).numpy(), atol=1e-12)
    np.testing.assert_allclose(generalized_box_iou(a, b), torchvision.ops.generalized_box_iou(ta, tb).numpy(),
                               atol=1e-12)
    assert box_iou(np.zeros((0, 4)), b).shape == (0, 25)


# ------------------------------------------------------------------------------------------ NMS
@pytest.mark.parametrize("seed", range(5))
def test_nms_keeps_exactly_what_torchvision_keeps(seed):
    rng = np.random.default_rng(seed)
    for _ in range(40):
        n = int(rng.integers(1, 120))
        boxes = random_boxes(n, rng)
        scores = rng.random(n)
        thr = float(rng.uniform(0.05, 0.95))
        ref = torchvision.ops.nms(torch.tensor(boxes), torch.tensor(scores), thr).numpy()
        np.testing.assert_array_equal(nms(boxes, scores, thr), ref)
        classes = rng.integers(0, 3, n)
        ref_b = torchvision.ops.batched_nms(torch.tensor(boxes), torch.tensor(scores), torch.tensor(classes), thr)
        np.testing.assert_array_equal(nms(boxes, scores, thr, classes=classes), ref_b.numpy())


def test_nms_by_hand():
    boxes = [[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]]
    np.testing.assert_array_equal(nms(boxes, [0.9, 0.8, 0.7], 0.5), [0, 2])
    np.testing.assert_array_equal(nms(boxes, [0.8, 0.9, 0.7], 0.5), [1, 2])
    np.testing.assert_array_equal(nms(boxes, [0.9, 0.8, 0.7], 0.9), [0, 1, 2])
    assert nms(np.zeros((0, 4)), np.zeros(0)).shape == (0,)


# ------------------------------------------------------------------------------------------ matching, AP
def test_matching_equals_ultralytics_validator():
    from ultralytics.models.yolo.detect import DetectionValidator
    from ultralytics.utils.metrics import box_iou as ul_box_iou

    matcher = DetectionValidator.__new__(DetectionValidator)
    matcher.iouv = torch.linspace(0.5, 0.95, 10)
    preds, gts = simulated_detections(150, seed=2, noise=2.0, n_classes=2)
    for p, g in zip(preds, gts):
        order = np.argsort(-p["scores"], kind="stable")
        pb, ps, pc = p["boxes"][order], p["scores"][order], p["classes"][order]
        ours = match_detections(pb, ps, g["boxes"], np.linspace(0.5, 0.95, 10), pc, g["classes"])
        if len(pb) == 0:
            assert ours.shape == (0, 10)
            continue
        iou = ul_box_iou(torch.tensor(g["boxes"], dtype=torch.float32), torch.tensor(pb, dtype=torch.float32))
        ref = matcher.match_predictions(torch.tensor(pc), torch.tensor(g["classes"]), iou).numpy()
        np.testing.assert_array_equal(ours, ref)


def test_match_detections_duplicates_are_false_positives():
    gt = [[0, 0, 10, 10]]
    pred = [[0, 0, 10, 10], [0, 0, 10, 9.5], [40, 40, 50, 50]]
    tp = match_detections(pred, [0.5, 0.9, 0.8], gt, 0.5)
    np.testing.assert_array_equal(tp[:, 0], [False, True, False])   # the higher score claims the object


def test_average_precision_by_hand():
    # three objects; detections by decreasing score: hit, false alarm, hit
    prec, rec, _ = precision_recall_curve([True, False, True], [0.9, 0.8, 0.7], n_gt=3)
    np.testing.assert_allclose(prec, [1, 0.5, 2 / 3])
    np.testing.assert_allclose(rec, [1 / 3, 1 / 3, 2 / 3])
    assert average_precision(rec, prec, "all") == pytest.approx(1 / 3 * 1 + 1 / 3 * 2 / 3)
    # COCO: recall points 0..0.33 read precision 1, 0.34..0.66 read 2/3, 0.67..1 read 0
    assert average_precision(rec, prec, "coco") == pytest.approx((34 * 1 + 33 * 2 / 3) / 101)
    assert average_precision([], [], "all") == 0.0
    with pytest.raises(ValueError, match="method"):
        average_precision(rec, prec, "voc07")


def test_average_precision_close_to_ultralytics_compute_ap():
    from ultralytics.utils.metrics import compute_ap

    rng = np.random.default_rng(3)
    for _ in range(30):
        n = int(rng.integers(20, 200))
        tp = rng.random(n) < rng.uniform(0.2, 0.9)
        prec, rec, _ = precision_recall_curve(tp, rng.random(n), n_gt=int(tp.sum() + rng.integers(0, 10)))
        ref = compute_ap(rec, prec)[0]
        assert average_precision(rec, prec, "coco") == pytest.approx(ref, abs=0.01)


@pytest.mark.parametrize(("noise", "n_classes"), [(1.0, 1), (3.0, 1), (6.0, 1), (2.0, 3)])
def test_map_within_0_01_of_ultralytics(noise, n_classes):
    preds, gts = simulated_detections(300, seed=int(noise * 10) + n_classes, noise=noise, n_classes=n_classes)
    ours = evaluate_detections(preds, gts)
    ref = ultralytics_map(preds, gts)
    assert 0.05 < ref["mAP@0.5"] < 1.0            # a non-trivial case
    assert abs(ours.map50 - ref["mAP@0.5"]) < 0.01
    assert abs(ours.map50_95 - ref["mAP@0.5:0.95"]) < 0.01
    assert ours.n_images == 300 and ours.ap.shape == (n_classes, 10)


def test_map_extremes_and_input_forms():
    rng = np.random.default_rng(4)
    gts = [random_boxes(2, rng) for _ in range(10)]
    perfect = [Detections(g, [0.9, 0.8], [0, 0]) for g in gts]
    ev = evaluate_detections(perfect, gts)
    assert ev.map50 == pytest.approx(1.0) and ev.map50_95 == pytest.approx(1.0)
    assert ev.precision == 1.0 and ev.recall == 1.0
    nothing = [(np.zeros((0, 4)), np.zeros(0)) for _ in gts]
    assert evaluate_detections(nothing, gts).map50 == 0.0
    with pytest.raises(ValueError, match="one entry per image"):
        evaluate_detections(perfect[:3], gts)
    with pytest.raises(TypeError, match=r"predictions\[0\]"):
        evaluate_detections([42] * 10, gts)


# ------------------------------------------------------------------------------------------ properties
_coord = st.floats(0, 200, allow_nan=False, allow_infinity=False)
_size = st.floats(0.5, 100, allow_nan=False, allow_infinity=False)
_box = st.tuples(_coord, _coord, _size, _size).map(lambda t: [t[0], t[1], t[0] + t[2], t[1] + t[3]])


@settings(max_examples=100, deadline=None)
@given(st.lists(_box, min_size=1, max_size=6), st.lists(_box, min_size=1, max_size=6))
def test_iou_properties(a, b):
    iou, giou = box_iou(a, b), generalized_box_iou(a, b)
    assert ((iou >= 0) & (iou <= 1 + 1e-12)).all()
    assert ((giou >= -1 - 1e-12) & (giou <= iou + 1e-12)).all()     # GIoU <= IoU, in [-1, 1]
    np.testing.assert_allclose(box_iou(b, a), iou.T)                 # symmetric
    np.testing.assert_allclose(np.diag(box_iou(a, a)), 1.0)          # a box fits itself
    for fmt in ("xywh", "cxcywh"):
        np.testing.assert_allclose(convert_boxes(convert_boxes(a, "xyxy", fmt), fmt, "xyxy"), a, atol=1e-9)
