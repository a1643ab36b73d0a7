"""oncolab.detection.yolo: dataset checks, a tiny offline training run with no network access,
validation against our mAP, prediction input handling. (Accuracy targets: benchmarks/bench_yolo.py.)"""

from __future__ import annotations

import socket
import time

import numpy as np
import pytest

from oncolab.data import YoloLabelError, export_yolo, synthetic_cohort
from oncolab.detection import (
    Detections,
    YoloDetector,
    check_yolo_dataset,
    evaluate_detections,
    match_detections,
)

IMGSZ = 64


@pytest.fixture(scope="module")
def tiny_yolo(tmp_path_factory):
    cohort = synthetic_cohort(24, seed=5, modalities=["radiograph"], image_size=IMGSZ)
    folder = tmp_path_factory.mktemp("tiny") / "yolo"
    splits = {"train": np.arange(16), "val": np.arange(16, 20), "test": np.arange(20, 24)}
    return cohort, export_yolo(cohort, folder, splits)


@pytest.fixture(scope="module")
def trained(tiny_yolo, tmp_path_factory):
    """One epoch on 16 images, with every socket call recorded and refused, and ultralytics'
    settings folder (where it looks for its plotting font) pointed at an empty folder."""
    import ultralytics.utils
    import ultralytics.utils.checks

    cohort, data_yaml = tiny_yolo
    attempts = []
    mp = pytest.MonkeyPatch()
    fonts = tmp_path_factory.mktemp("ultralytics-settings")
    for module in (ultralytics.utils, ultralytics.utils.checks):
        mp.setattr(module, "USER_CONFIG_DIR", fonts)
    check_font_cache = ultralytics.utils.checks.check_font.__wrapped__     # it remembers where it found a font
    check_font_cache.cache_clear()

    def refuse(name):
        def _refuse(*args, **kwargs):
            attempts.append((name, args[:2]))
            raise OSError(f"network access attempted in an offline test: {name}{args[:2]}")
        return _refuse

    mp.setattr(socket, "getaddrinfo", refuse("getaddrinfo"))
    mp.setattr(socket, "create_connection", refuse("create_connection"))
    mp.setattr(socket.socket, "connect", refuse("socket.connect"))
    project = tmp_path_factory.mktemp("runs")
    try:
        det = YoloDetector(imgsz=IMGSZ, device="cpu", project=project, name="tiny", seed=0, verbose=False)
        det.fit(data_yaml, epochs=1, batch=8)
        run = det.evaluate(data_yaml, split="test")
        preds = det.predict([cohort.radiograph(i) for i in range(20, 24)], conf=0.0)
    finally:
        mp.undo()
        check_font_cache.cache_clear()
    return det, run, preds, attempts, project, fonts


def test_no_network_access_during_training_validation_and_prediction(trained):
    _, _, _, attempts, _, fonts = trained
    assert attempts == []
    # ultralytics checks its plotting font on every dataset check: the detector put one there
    assert (fonts / "Arial.ttf").is_file()


def test_run_writes_into_the_chosen_folder(trained, tmp_path):
    det, _, _, _, project, _ = trained
    assert det.run_dir == project / "tiny"
    assert (det.run_dir / "weights" / "best.pt").is_file()
    assert (det.run_dir / "results.csv").is_file()
    assert det.history is not None and len(det.history) == 1
    assert det.train_seconds > 0


def test_our_map_agrees_with_the_validator_on_its_predictions(trained):
    _, run, _, _, _, _ = trained
    assert len(run.predictions) == 4 and len(run.ground_truth) == 4
    ours = evaluate_detections(run.predictions, run.ground_truth)
    assert abs(ours.map50 - run.metrics["mAP@0.5"]) < 0.01
    assert abs(ours.map50_95 - run.metrics["mAP@0.5:0.95"]) < 0.01
    # and our matching marks exactly the validator's true positives
    ours_tp = np.concatenate([match_detections(p.boxes, p.scores, g, np.linspace(0.5, 0.95, 10))
                              for p, g in zip(run.predictions, run.ground_truth)])
    np.testing.assert_array_equal(ours_tp, run.tp)


def test_predict_returns_pixel_boxes_per_image(trained, tiny_yolo):
    det, _, preds, _, _, _ = trained
    assert len(preds) == 4 and all(isinstance(p, Detections) for p in preds)
    for p in preds:
        assert p.image_shape == (IMGSZ, IMGSZ)
        if len(p):
            assert (p.boxes >= -1e-3).all() and (p.boxes <= IMGSZ + 1e-3).all()
            assert (np.diff(p.scores) <= 0).all()


def test_predict_converts_or_refuses_channels(trained, tiny_yolo):
    det = trained[0]
    cohort, _ = tiny_yolo
    gray = cohort.radiograph(0)
    a = det.predict([gray], conf=0.0)[0]
    b = det.predict([gray[..., None]], conf=0.0)[0]
    c = det.predict([np.dstack([gray] * 3)], conf=0.0)[0]
    np.testing.assert_allclose(a.boxes, b.boxes)
    np.testing.assert_allclose(a.boxes, c.boxes)
    with pytest.raises(ValueError, match=r"images\[0\] has shape \(64, 64, 4\)"):
        det.predict([np.dstack([gray] * 4)])
    with pytest.raises(TypeError, match=r"images\[1\] must be uint8"):
        det.predict([gray, gray / 255.0])
    with pytest.raises(TypeError, match="wrap a single image"):
        det.predict(gray)


def test_save_and_load_give_the_same_predictions(trained, tiny_yolo, tmp_path):
    det = trained[0]
    cohort, _ = tiny_yolo
    path = det.save(tmp_path / "det.pt")
    again = YoloDetector.load(path, device="cpu", project=tmp_path)
    assert again.imgsz == IMGSZ            # remembered from training
    img = [cohort.radiograph(1)]
    np.testing.assert_allclose(det.predict(img, conf=0.0)[0].scores, again.predict(img, conf=0.0)[0].scores,
                               atol=1e-5)


def test_pretrained_offline_fails_fast():
    from oncolab.env import HubUnavailableError

    t0 = time.perf_counter()
    with pytest.raises(HubUnavailableError, match="yolo11n.pt"):
        YoloDetector(pretrained=True)
    assert time.perf_counter() - t0 < 2.0


def test_detector_argument_errors(tmp_path):
    with pytest.raises(ValueError, match="multiple of 32"):
        YoloDetector(imgsz=100)
    with pytest.raises(ValueError, match=r"\.yaml config or a \.pt"):
        YoloDetector(model="yolo11n.onnx")
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        YoloDetector(model=str(tmp_path / "missing.pt"))


# ------------------------------------------------------------------------------------------ bad datasets
def _copy(tiny_yolo, tmp_path):
    import shutil

    _, data_yaml = tiny_yolo
    dst = tmp_path / "copy"
    shutil.copytree(data_yaml.parent, dst)
    text = (dst / "data.yaml").read_text().replace(str(data_yaml.parent.resolve()), str(dst.resolve()))
    (dst / "data.yaml").write_text(text)
    return dst


def test_dataset_check_counts(tiny_yolo):
    counts = check_yolo_dataset(tiny_yolo[1])
    assert counts == {"train": {"images": 16, "boxes": 16}, "val": {"images": 4, "boxes": 4},
                      "test": {"images": 4, "boxes": 4}}


@pytest.mark.parametrize(("line", "match"), [
    ("0 0.5 0.5 0.2", r":1: expected 5 fields"),
    ("0 0.95 0.5 0.2 0.2", r":1: box .* is not inside \[0, 1\]"),
    ("0 0.5 0.5 0 0.2", r":1: box has zero or negative area"),
    ("3 0.5 0.5 0.2 0.2", r":1: class '3' is not an integer"),
])
def test_bad_label_lines_name_file_and_line(tiny_yolo, tmp_path, line, match):
    dst = _copy(tiny_yolo, tmp_path)
    label = sorted((dst / "labels" / "train").glob("*.txt"))[0]
    label.write_text(line + "\n")
    with pytest.raises(YoloLabelError, match=label.name + match):
        check_yolo_dataset(dst / "data.yaml")
    det = YoloDetector(imgsz=IMGSZ, device="cpu", project=tmp_path / "runs")
    with pytest.raises(YoloLabelError, match=label.name):
        det.fit(dst / "data.yaml", epochs=1)       # refused before any training starts


def test_unreadable_image_is_named(tiny_yolo, tmp_path):
    dst = _copy(tiny_yolo, tmp_path)
    image = sorted((dst / "images" / "val").glob("*.png"))[0]
    image.write_bytes(b"not a png")
    with pytest.raises(ValueError, match=f"cannot read image .*{image.name}"):
        check_yolo_dataset(dst / "data.yaml")


def test_empty_dataset_folder_is_refused(tiny_yolo, tmp_path):
    dst = _copy(tiny_yolo, tmp_path)
    for f in (dst / "images" / "test").iterdir():
        f.unlink()
    with pytest.raises(YoloLabelError, match="'test' split folder .* is empty"):
        check_yolo_dataset(dst / "data.yaml")
