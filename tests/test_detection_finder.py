"""oncolab.detection.finder: the hand-made lesion finder (no label read at prediction)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from oncolab.detection import LesionFinder, box_iou

# a small grid for the tests that check the mechanics of fit rather than its quality
SMALL_GRID = {"sigma": [0.75, 1.5], "background_quantile": [0.6], "threshold": [30, 40], "min_area": [4],
              "edge_level": [0.3, 0.35], "pad": [0.5, 1.0]}


@pytest.fixture(scope="module")
def split(small_cohort):
    """Radiographs and annotated boxes, first half for fitting, second half held out."""
    images = [small_cohort.radiograph(pid) for pid in small_cohort.ids]
    boxes = small_cohort.boxes.to_numpy()
    half = len(images) // 2
    return images[:half], boxes[:half], images[half:], boxes[half:]


@pytest.fixture(scope="module")
def fitted(split):
    train_images, train_boxes, _, _ = split
    return LesionFinder().fit(train_images, train_boxes)


def paired_iou(a, b) -> np.ndarray:
    return np.diag(box_iou(a, b))


def centred_box(size, shape) -> np.ndarray:
    """A box of ``size`` (fractions of width and height) centred in an image of ``shape``."""
    h, w = shape
    bw, bh = size[0] * w, size[1] * h
    return np.array([(w - bw) / 2, (h - bh) / 2, (w + bw) / 2, (h + bh) / 2])


def band_with_hole(size: int = 128, hole=(50, 40, 70, 62)) -> np.ndarray:
    """A vertical bright band (a bone) on a dark background with a darker ellipse inside it."""
    yy, xx = np.mgrid[0:size, 0:size]
    img = np.full((size, size), 80.0)
    img[:, int(0.35 * size):int(0.65 * size)] = 150.0
    x0, y0, x1, y1 = hole
    inside = ((xx + 0.5 - (x0 + x1) / 2) / ((x1 - x0) / 2)) ** 2 + ((yy + 0.5 - (y0 + y1) / 2) / ((y1 - y0) / 2)) ** 2 < 1
    img[inside] -= 80.0
    rng = np.random.default_rng(0)
    return np.clip(img + rng.normal(0, 3, img.shape), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------------------------
# quality on held-out patients
# --------------------------------------------------------------------------------------------
def test_held_out_iou_is_high_and_beats_the_centred_box(split, fitted):
    _, _, test_images, test_boxes = split
    boxes, found = fitted.predict(test_images)
    iou = paired_iou(boxes, test_boxes)
    # measured 0.88 median, 0.85 mean, 98 % at IoU >= 0.5 on this split
    assert np.median(iou) > 0.78
    assert iou.mean() > 0.75
    assert (iou >= 0.5).mean() >= 0.9
    assert found.mean() >= 0.95
    # the trivial baseline: the centred fallback box for every patient (median IoU 0.14)
    centred = np.array([centred_box(fitted.fallback_size_, im.shape) for im in test_images])
    baseline = paired_iou(centred, test_boxes)
    assert np.median(iou) - np.median(baseline) > 0.5
    assert (iou > baseline).mean() > 0.9


def test_fit_reports_the_iou_predict_gives_on_the_same_images(split):
    train_images, train_boxes, _, _ = split
    finder = LesionFinder(grid=SMALL_GRID).fit(train_images, train_boxes)
    boxes, _ = finder.predict(train_images)
    assert finder.training_iou_ == pytest.approx(paired_iou(boxes, train_boxes).mean(), abs=1e-9)
    # the chosen setting is the grid's best: no other candidate beats it on these images
    for edge in SMALL_GRID["edge_level"]:
        other = LesionFinder(**{**finder.params, "edge_level": edge})
        other.fallback_size_ = finder.fallback_size_
        assert paired_iou(other.predict(train_images)[0], train_boxes).mean() <= finder.training_iou_ + 1e-9


def test_fit_uses_a_seeded_subset_of_at_most_max_fit_images(split):
    train_images, train_boxes, _, _ = split
    a = LesionFinder(grid=SMALL_GRID, max_fit_images=10, seed=1).fit(train_images, train_boxes)
    b = LesionFinder(grid=SMALL_GRID, max_fit_images=10, seed=1).fit(train_images, train_boxes)
    assert a.params == b.params and a.training_iou_ == b.training_iou_
    # the reported IoU is the mean over 10 of the images: it is one of the subset means
    rng = np.random.default_rng(1)
    idx = np.sort(rng.choice(len(train_images), 10, replace=False))
    boxes, _ = a.predict([train_images[i] for i in idx])
    assert a.training_iou_ == pytest.approx(paired_iou(boxes, train_boxes[idx]).mean(), abs=1e-9)


def test_fallback_is_the_median_training_box_centred(split, fitted):
    _, train_boxes, _, _ = split
    size = split[0][0].shape[0]
    w = np.median(train_boxes[:, 2] - train_boxes[:, 0]) / size
    h = np.median(train_boxes[:, 3] - train_boxes[:, 1]) / size
    np.testing.assert_allclose(fitted.fallback_size_, [w, h])
    flat = np.full((60, 80), 120, np.uint8)          # nothing darker than its background
    boxes, found = fitted.predict([flat])
    assert not found[0]
    np.testing.assert_allclose(boxes[0], [40 - 40 * w, 30 - 30 * h, 40 + 40 * w, 30 + 30 * h])
    np.testing.assert_allclose(boxes[0], centred_box([w, h], flat.shape))


# --------------------------------------------------------------------------------------------
# the method on images made by hand
# --------------------------------------------------------------------------------------------
def test_finds_a_dark_hole_in_a_bright_band():
    hole = (50, 40, 70, 62)
    boxes, found = LesionFinder().predict([band_with_hole(hole=hole)])
    assert found[0]
    assert box_iou(boxes, np.array([hole], float))[0, 0] > 0.75


def test_a_horizontal_bone_gives_the_transposed_box():
    img = band_with_hole(hole=(48, 30, 72, 50))
    finder = LesionFinder()
    (box,), _ = finder.predict([img])
    (box_t,), _ = finder.predict([np.ascontiguousarray(img.T)])
    np.testing.assert_allclose(box_t, box[[1, 0, 3, 2]], atol=1e-9)


def test_box_scales_with_the_image(split, fitted):
    img = split[2][0]
    (box,), _ = fitted.predict([img])
    (box2,), _ = fitted.predict([np.kron(img, np.ones((2, 2), np.uint8))])
    assert box_iou(box2[None] / 2, box[None])[0, 0] > 0.9


def test_images_of_several_sizes_and_float_images(split, fitted):
    a, b = split[2][0], band_with_hole(size=160, hole=(68, 100, 92, 130))
    boxes, found = fitted.predict([a, b.astype(np.float64)])
    assert boxes.shape == (2, 4) and found.dtype == bool and found.all()
    assert (boxes[:, :2] >= 0).all() and (boxes[0, 2:] <= a.shape[::-1]).all() and (boxes[1, 2:] <= 160).all()
    assert boxes[1, 3] > 96            # in the second image's pixels, beyond the first one's height
    assert box_iou(boxes[1:], np.array([[68, 100, 92, 130]], float))[0, 0] > 0.75
    np.testing.assert_array_equal(fitted.predict([a])[0][0], boxes[0])
    assert fitted.darkness(a).shape == (fitted.work_size, fitted.work_size)


def test_darkness_is_high_inside_the_lesion(split, fitted):
    img, (x0, y0, x1, y1) = split[2][1], split[3][1]
    dark = fitted.darkness(img)
    s = fitted.work_size / img.shape[0]
    lesion = dark[int(y0 * s) + 2:int(y1 * s) - 2, int(x0 * s) + 2:int(x1 * s) - 2]
    assert np.median(lesion) > 3 * np.median(np.abs(dark))


# --------------------------------------------------------------------------------------------
# state, determinism
# --------------------------------------------------------------------------------------------
def test_state_round_trip_through_json_gives_identical_predictions(split, fitted):
    config, arrays = fitted.state()
    config = json.loads(json.dumps(config))
    arrays = {k: np.array(v) for k, v in arrays.items()}
    again = LesionFinder.from_state(config, arrays)
    assert again.params == fitted.params and again.training_iou_ == fitted.training_iou_
    a, fa = fitted.predict(split[2])
    b, fb = again.predict(split[2])
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(fa, fb)
    np.testing.assert_array_equal(again.predict([np.zeros((50, 50))])[0], fitted.predict([np.zeros((50, 50))])[0])


def test_same_data_same_fit_and_same_boxes(split, fitted):
    train_images, train_boxes, test_images, _ = split
    again = LesionFinder().fit(train_images, train_boxes)
    assert again.params == fitted.params
    np.testing.assert_array_equal(again.predict(test_images)[0], fitted.predict(test_images)[0])
    # prediction does not depend on the batch it comes in
    np.testing.assert_array_equal(fitted.predict(test_images[3:5])[0], fitted.predict(test_images)[0][3:5])


# --------------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("image, words", [
    (np.zeros((32, 32, 3), np.uint8), "2-D grayscale image"),
    (np.zeros(32, np.uint8), "2-D grayscale image"),
    (np.zeros((4, 32), np.uint8), "at least 8 x 8"),
    (np.full((32, 32), np.nan), "NaN or infinite"),
    (np.full((32, 32), 300.0), "0-255 scale"),
    (np.full((32, 32), -1.0), "0-255 scale"),
    (np.full((32, 32), 0.5), "[0, 1] image"),
    (np.array([["a"] * 16] * 16), "numeric"),
])
def test_bad_images_are_named(image, words):
    with pytest.raises(ValueError, match="images\\[1\\]") as err:
        LesionFinder().predict([np.zeros((32, 32), np.uint8), image])
    assert words in str(err.value)


def test_a_single_image_must_be_wrapped_in_a_list():
    with pytest.raises(ValueError, match="wrap a single image"):
        LesionFinder().predict(np.zeros((32, 32), np.uint8))
    with pytest.raises(ValueError, match="sequence of 2-D grayscale images"):
        LesionFinder().predict(5)


def test_fit_needs_one_box_per_image(split):
    images, boxes = split[0][:5], split[1][:5]
    with pytest.raises(ValueError, match="5 images but 4 boxes"):
        LesionFinder(grid=SMALL_GRID).fit(images, boxes[:4])
    with pytest.raises(ValueError, match="shape \\(n, 4\\)"):
        LesionFinder(grid=SMALL_GRID).fit(images, boxes[:, :3])
    with pytest.raises(ValueError, match="at least one training image"):
        LesionFinder(grid=SMALL_GRID).fit([], np.zeros((0, 4)))


@pytest.mark.parametrize("kwargs, words", [
    ({"sigma": 0}, "sigma must lie in (0, 20]"),
    ({"background_quantile": 1.0}, "background_quantile must lie in (0, 1)"),
    ({"threshold": "40"}, "threshold must be a finite number"),
    ({"min_area": 0.5}, "min_area must lie in [1, inf]"),
    ({"edge_level": np.nan}, "edge_level must be a finite number"),
    ({"work_size": 16}, "work_size must be an integer >= 32"),
    ({"max_fit_images": 0}, "max_fit_images must be an integer >= 1"),
    ({"seed": -1}, "seed must be an integer >= 0"),
    ({"grid": {"blur": [1.0]}}, "unknown grid parameter(s) ['blur']"),
    ({"grid": {"pad": []}}, "grid['pad'] must be a non-empty sequence"),
    ({"grid": {"edge_level": [0.3, 2.0]}}, "grid['edge_level'] value must lie in (0, 1), got 2.0"),
])
def test_bad_settings_are_named(kwargs, words):
    with pytest.raises(ValueError) as err:
        LesionFinder(**kwargs)
    assert words in str(err.value)


def test_from_state_refuses_an_incomplete_state(fitted):
    config, arrays = fitted.state()
    with pytest.raises(ValueError, match="lacks \\['threshold'\\]"):
        LesionFinder.from_state({k: v for k, v in config.items() if k != "threshold"}, arrays)
    with pytest.raises(ValueError, match="fallback_size"):
        LesionFinder.from_state(config, {})
    with pytest.raises(ValueError, match="two positive numbers"):
        LesionFinder.from_state(config, {"fallback_size": np.array([0.2, -1.0])})
