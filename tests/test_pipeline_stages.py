"""The stages of the complete system (oncolab.pipeline.stages), learned ones first, and the pieces they use.

One small learned system (YOLO detector, cross-fitted CNN and attention-MIL, lab narratives
through TF-IDF) is fitted once per module and shared; the settings are tiny, so the numbers
mean nothing clinically, but every relation checked here must hold for any setting.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from oncolab.data import Cohort, synthetic_cohort, train_val_test_split
from oncolab.pipeline import OncoLabSystem, SystemConfig, ablation, preset, read_inputs
from oncolab.pipeline.stages import (
    LabsText,
    LabsTinyBert,
    PathologyMIL,
    RadiographCNN,
    RadiographMeasurements,
    Targets,
    crossfit_folds,
)
from oncolab.pipeline.stages.radiograph import AnnotatedBoxes, YoloBoxes

CFG = preset("learned", cnn_epochs=2, detector_epochs=2, detector_imgsz=64, mil_epochs=3, epochs=20, patience=20,
             hidden=16, folds=3, seed=0, progress=False)
CLASSES = ["benign", "intermediate", "malignant"]
PROBS = ["p_benign", "p_intermediate", "p_malignant"]


@pytest.fixture(scope="module")
def learned():
    """One learned system fitted on the training part of a 120-patient cohort."""
    cohort = synthetic_cohort(120, seed=3, image_size=96, slide_size=128)
    split = train_val_test_split(cohort, seed=0)
    train, test = split["train"], split["test"]
    feats = read_inputs(cohort, CFG)
    ftr = feats.subset(train)
    system = OncoLabSystem(CFG).fit(cohort.subset(train), inputs=ftr)
    return SimpleNamespace(cohort=cohort, train=train, test=test, feats=feats, ftr=ftr, system=system,
                           ctr=cohort.subset(train), cte=cohort.subset(test))


def _log(p):
    return np.log(np.clip(p, 1e-6, 1.0))


# --------------------------------------------------------------------------------------------
# the fitted system: save/load, one patient, cross-fitting
# --------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_fitted_system_uses_every_learned_stage(learned):
    s = learned.system
    assert isinstance(s.stages["radiograph"], RadiographCNN)
    assert isinstance(s.stages["radiograph"].detector, YoloBoxes)
    assert isinstance(s.stages["pathology"], PathologyMIL)
    assert isinstance(s.stages["labs"], LabsText)
    assert s.dims_["radiograph"] == 3 and s.dims_["pathology"] == 3
    assert len(s.stages["radiograph"].models) == CFG.folds == len(s.stages["pathology"].models)
    assert s.label_note is None
    pred = s.predict(learned.cte)
    assert list(pred.index) == list(learned.cte.ids)
    np.testing.assert_allclose(pred[PROBS].sum(1), 1, atol=1e-6)
    assert (pred["modalities_used"] == "radiograph,pathology,labs,genes,clinical").all()


@pytest.mark.slow
def test_save_load_round_trip_keeps_every_learned_weight(learned, tmp_path):
    from safetensors.numpy import load_file

    s = learned.system
    s.save(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "model.safetensors"]
    arrays = load_file(str(tmp_path / "m" / "model.safetensors"))
    keys = list(arrays)
    for prefix in ("stage.radiograph.detector.", "stage.pathology.fold0.", "stage.labs.enc.idf", "stage.labs.pca.",
                   "fusion.", "risk_cuts"):
        assert any(k.startswith(prefix) for k in keys), prefix
    for k in range(CFG.folds):
        assert any(key.startswith(f"stage.radiograph.fold{k}.") for key in keys)
        assert any(key.startswith(f"stage.pathology.fold{k}.") for key in keys)
    assert not any(key.startswith(f"stage.radiograph.fold{CFG.folds}.") for key in keys)
    # the stored CNN weights are the fitted ones
    cnn0 = s.stages["radiograph"].models[0].state_dict()
    for name, v in cnn0.items():
        np.testing.assert_array_equal(arrays[f"stage.radiograph.fold0.{name}"], v.detach().cpu().numpy())
    meta = json.loads((tmp_path / "m" / "config.json").read_text())
    assert meta["stages"]["radiograph"]["detector"]["name"] == "yolo"
    assert meta["stages"]["radiograph"]["detector"]["yolo"]["imgsz"] == CFG.detector_imgsz

    loaded = OncoLabSystem.load(tmp_path / "m")
    before, after = s.predict(learned.cte), loaded.predict(learned.cte)
    pd.testing.assert_frame_equal(before, after)
    assert list(before["warnings"]) == list(after["warnings"])


@pytest.mark.slow
def test_one_patient_predict_equals_its_cohort_row(learned):
    s = learned.system
    full = s.predict(learned.cte)
    for pid in learned.cte.ids[:3]:
        one = s.predict(learned.cohort.patient(pid))
        assert list(one.index) == [pid]
        num = PROBS + ["risk"] + [c for c in full.columns if c.startswith("w_")]
        np.testing.assert_allclose(one.loc[pid, num].astype(float), full.loc[pid, num].astype(float), atol=1e-6)
        for col in ("predicted", "risk_group", "modalities_used", "warnings"):
            assert one.at[pid, col] == full.at[pid, col], col


@pytest.mark.slow
def test_one_patient_without_a_slide_is_masked_not_refused(learned):
    s = learned.system
    pid = learned.cte.ids[1]
    p = learned.cohort.patient(pid)
    p.slide = None
    pred = s.predict(p)
    assert pred.at[pid, "modalities_used"] == "radiograph,labs,genes,clinical"
    np.testing.assert_allclose(pred.loc[pid, PROBS].astype(float).sum(), 1, atol=1e-6)
    assert pred.at[pid, "w_pathology"] < 1e-6


@pytest.mark.slow
def test_annotated_cnn_stage_state_round_trip(learned):
    cfg = CFG.replace(detector="annotated")
    raw, usable, _ = RadiographCNN.read(learned.ctr, cfg)
    assert usable.all() and "annotated_boxes" in raw
    y = learned.ctr.y
    rows = np.arange(len(y))
    stage = RadiographCNN(AnnotatedBoxes(), window=0.5, crop_size=32, epochs=1, folds=2)
    assert stage.reads_labels_at_prediction
    Z = stage.fit_transform(raw, rows, Targets(y, CLASSES))
    assert Z.shape == (len(y), 3) and len(stage.models) == 2
    np.testing.assert_allclose(np.exp(Z).sum(1), 1, atol=1e-4)   # log-probabilities
    cfg_s, arrays = stage.state()
    assert cfg_s["detector"] == {"name": "annotated"} and not any(k.startswith("detector.") for k in arrays)
    back = RadiographCNN.from_state(json.loads(json.dumps(cfg_s)), arrays)
    np.testing.assert_allclose(back.transform(raw), stage.transform(raw), atol=1e-6)
    # the annotated boxes are used as they are
    np.testing.assert_array_equal(stage.boxes(raw), raw["annotated_boxes"])
    lacking = {"images": raw["images"], "annotated_boxes": raw["annotated_boxes"].copy()}
    lacking["annotated_boxes"][5] = np.nan
    with pytest.raises(ValueError, match="position 5 has a radiograph but no annotated box"):
        stage.boxes(lacking)


def test_only_the_annotated_detector_reads_the_boxes_table(learned):
    """No label at prediction: without detector='annotated' the radiograph input holds no box."""
    c = learned.cte
    for det in ("finder", "yolo"):
        raw, _, _ = RadiographMeasurements.read(c, CFG.replace(detector=det))
        assert set(raw) == {"images"}
    no_boxes = Cohort({k: v for k, v in c.tables.items() if k != "boxes"}, images=c.images, meta=c.meta)
    raw, usable, _ = RadiographMeasurements.read(no_boxes, CFG.replace(detector="finder"))
    assert usable.all()
    with pytest.raises(ValueError, match="detector='annotated' reads the cohort's 'boxes' table"):
        RadiographMeasurements.read(no_boxes, CFG.replace(detector="annotated"))
    assert SystemConfig(detector="annotated").reads_labels_at_prediction
    assert not SystemConfig(detector="annotated", modalities=("labs",)).reads_labels_at_prediction
    assert not SystemConfig().reads_labels_at_prediction


@pytest.mark.slow
def test_stages_are_cross_fitted(learned):
    from oncolab.vision import predict_proba

    s, ftr = learned.system, learned.ftr
    n = len(learned.train)
    y = learned.ctr.y
    folds = crossfit_folds(np.arange(n), y, CFG.folds, CFG.seed)

    rad = s.stages["radiograph"]
    raw = ftr.raw["radiograph"]
    oof, ens = s.fit_outputs_["radiograph"], rad.transform(raw)
    assert oof.shape == ens.shape == (n, 3)
    # every training patient got an out-of-fold output, not the ensemble's
    assert (np.abs(oof - ens).max(1) > 1e-6).all()
    crops = rad.crops(raw, rad.boxes(raw))
    probs = [predict_proba(m, crops) for m in rad.models]
    for k, (fit_rows, held) in enumerate(folds):
        assert not set(fit_rows) & set(held)
        np.testing.assert_allclose(oof[held], _log(probs[k][held]), atol=1e-5)
    np.testing.assert_allclose(ens, _log(np.mean(probs, axis=0)), atol=1e-5)

    path = s.stages["pathology"]
    oof_p, ens_p = s.fit_outputs_["pathology"], path.transform(ftr.raw["pathology"])
    assert oof_p.shape == ens_p.shape == (n, 3)
    assert (np.abs(oof_p - ens_p).max(1) > 1e-6).all()

    # the lab text stage is not supervised: no cross-fitting, fit output == transform
    np.testing.assert_allclose(s.fit_outputs_["labs"], s.stages["labs"].transform(ftr.raw["labs"]), atol=1e-10)


def test_crossfit_folds_are_a_stratified_partition():
    y = np.repeat([0, 1, 2], [12, 9, 6])
    rows = np.arange(3, 27)   # positions into y; y[rows] has 9, 9 and 6 of each class
    folds = crossfit_folds(rows, y, 3, seed=1)
    assert len(folds) == 3
    held = [h for _, h in folds]
    assert sorted(np.concatenate(held).tolist()) == rows.tolist()
    for a in range(3):
        for b in range(a + 1, 3):
            assert not set(held[a]) & set(held[b])
    for fit, h in folds:
        assert sorted(np.concatenate([fit, h]).tolist()) == rows.tolist()
        np.testing.assert_array_equal(np.bincount(y[h], minlength=3), [3, 3, 2])
    again = crossfit_folds(rows, y, 3, seed=1)
    for (_, b1), (_, b2) in zip(folds, again):
        np.testing.assert_array_equal(b1, b2)


@pytest.mark.parametrize("k", [1, 0, 2.0, True])
def test_crossfit_folds_rejects_bad_fold_counts(k):
    y = np.repeat([0, 1, 2], 5)
    with pytest.raises(ValueError, match="folds must be an integer >= 2"):
        crossfit_folds(np.arange(15), y, k, seed=0)


def test_crossfit_folds_needs_k_patients_of_every_class():
    y = np.array([0] * 6 + [1] * 6 + [2] * 2)
    with pytest.raises(ValueError, match=r"needs at least 3 patients of every class.*counts \[6, 6, 2\]"):
        crossfit_folds(np.arange(14), y, 3, seed=0)


# --------------------------------------------------------------------------------------------
# YOLO and TF-IDF states (no pickle)
# --------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_yolo_state_round_trip(learned):
    from oncolab.detection import YoloDetector

    rad = learned.system.stages["radiograph"]
    cfg, arrays = rad.state()
    ycfg = cfg["detector"]["yolo"]
    ya = {k[len("detector."):]: v for k, v in arrays.items() if k.startswith("detector.")}
    assert ycfg["names"] == ["lesion"] and ycfg["imgsz"] == CFG.detector_imgsz
    images = [learned.cohort.radiograph(int(i)) for i in learned.test[:4]]

    det = YoloDetector.from_state(ycfg, ya, device="cpu")
    for a, b in zip(rad.detector.yolo.predict(images, conf=0.001, max_det=5), det.predict(images, conf=0.001, max_det=5)):
        np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-3)
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-4)

    # a detector certain of a lesion everywhere (class bias raised) has boxes to compare
    sure = {k: (v + 8.0 if "cv3" in k and k.endswith(".2.bias") else v) for k, v in ya.items()}
    assert any(not np.array_equal(sure[k], ya[k]) for k in ya)
    d1 = YoloDetector.from_state(ycfg, sure, device="cpu")
    c2, a2 = d1.state()
    assert c2 == ycfg and set(a2) == set(sure)
    for k in sure:
        np.testing.assert_array_equal(a2[k], sure[k])
    d2 = YoloDetector.from_state(c2, a2, device="cpu")
    r1, r2 = d1.predict(images, conf=0.05, max_det=3), d2.predict(images, conf=0.05, max_det=3)
    assert all(len(r) > 0 for r in r1)
    for a, b in zip(r1, r2):
        np.testing.assert_array_equal(a.boxes, b.boxes)
        np.testing.assert_array_equal(a.scores, b.scores)

    with pytest.raises(ValueError, match="do not fit"):
        YoloDetector.from_state({**ycfg, "names": ["lesion", "cyst"]}, ya, device="cpu")
    missing = dict(ya)
    missing.pop(next(iter(missing)))
    with pytest.raises(ValueError, match="do not fit"):
        YoloDetector.from_state(ycfg, missing, device="cpu")


def test_tfidf_state_round_trip(learned):
    from oncolab.text import TfidfEncoder

    texts = list(LabsText.read(learned.cohort.subset(np.arange(40)), CFG)[0])
    enc = TfidfEncoder().fit(texts[:30])
    cfg, arrays = enc.state()
    assert len(cfg["vocabulary"]) == len(arrays["idf"]) > 10
    back = TfidfEncoder.from_state(json.loads(json.dumps(cfg)), arrays)
    np.testing.assert_allclose(back.encode(texts[30:]), enc.encode(texts[30:]), atol=1e-7)
    assert np.abs(enc.encode(texts[30:])).sum() > 0
    with pytest.raises(ValueError, match="one idf weight per term"):
        TfidfEncoder.from_state(cfg, {"idf": arrays["idf"][:-1]})
    with pytest.raises(RuntimeError, match="not fitted"):
        TfidfEncoder().state()


def test_tiny_bert_lab_text_stage_round_trip(learned):
    """labs_encoder="bert": WordPiece + MLM pretraining in fit; saved as JSON + arrays, encodes the same."""
    from oncolab.text import TinyBertEncoder

    texts = LabsText.read(learned.cohort.subset(np.arange(40)), CFG)[0]
    texts[3] = None                                    # a patient without labs gets a zero row
    stage = LabsTinyBert(components=4, bert_epochs=1, seed=0)
    Z = stage.fit_transform(texts, np.array([i for i in range(30) if i != 3]), None)
    assert Z.shape == (40, 4) and np.all(Z[3] == 0) and np.abs(Z[30:]).sum() > 0
    assert isinstance(stage.encoder, TinyBertEncoder) and stage.feature_names()[0] == "bert PC1"
    cfg, arrays = stage.state()
    assert any(k.startswith("enc.bert.") for k in arrays)
    back = LabsTinyBert.from_state(json.loads(json.dumps(cfg)), arrays)
    np.testing.assert_allclose(back.transform(texts), stage.transform(texts), atol=1e-5)
    np.testing.assert_allclose(stage.transform(texts)[30:], Z[30:], atol=1e-6)  # unsupervised: no cross-fitting
    bad = {k: v for k, v in arrays.items() if not k.endswith("query.weight")}
    with pytest.raises(ValueError, match="BERT weights do not fit"):
        LabsTinyBert.from_state(cfg, bad)
    with pytest.raises(ValueError, match="is not 'labs'/'bert'"):
        LabsTinyBert.from_state({**cfg, "name": "tfidf"}, arrays)


def test_biobert_lab_text_stage_fails_fast_offline(monkeypatch):
    import time

    from oncolab.env import HubUnavailableError
    from oncolab.pipeline.stages import LabsBioBert

    monkeypatch.setenv("ONCOLAB_OFFLINE", "1")
    stage = LabsBioBert()
    texts = np.array(["ALP 120 U/L, normal."] * 4, dtype=object)
    t0 = time.perf_counter()
    with pytest.raises(HubUnavailableError):
        stage.fit_transform(texts, np.arange(4), None)
    assert time.perf_counter() - t0 < 2


# --------------------------------------------------------------------------------------------
# windows, YOLO datasets, narratives
# --------------------------------------------------------------------------------------------
def test_centred_window_reproduces_lesion_crops(learned):
    from oncolab.detection import centred_window, roi_crop
    from oncolab.vision import lesion_crops

    c = learned.cohort
    idx = np.arange(6)
    crops, _ = lesion_crops(c, idx, size=32, window=0.4)
    for k, i in enumerate(idx):
        img = c.radiograph(int(i))
        box = c.boxes.iloc[int(i)][["x0", "y0", "x1", "y1"]].to_numpy(float)
        np.testing.assert_array_equal(roi_crop(img, centred_window(box, img.shape, 0.4), 32, margin=0.0), crops[k])
    # the window is a square of window x image height, centred on the box
    assert centred_window((10, 20, 30, 40), (100, 80), 0.5) == pytest.approx((-5, 5, 45, 55))
    assert centred_window((0, 0, 8, 8), (16, 16), 1.0) == pytest.approx((-4, -4, 12, 12))
    for bad in (0, 1.5, -0.2):
        with pytest.raises(ValueError, match="window must lie in"):
            centred_window((10, 20, 30, 40), (100, 80), bad)


def test_write_yolo_dataset(tmp_path):
    from oncolab.data import write_yolo_dataset
    from oncolab.detection import check_yolo_dataset

    img = np.zeros((50, 100), np.uint8)
    img[5:25, 10:30] = 200
    splits = {"train": iter([("a", img, (10, 5, 30, 25)), ("b", img, (0, 0, 100, 50))]),
              "val": iter([("c", img, (50, 10, 60, 40))])}
    data = write_yolo_dataset(splits, tmp_path / "ds")
    assert data == tmp_path / "ds" / "data.yaml"
    assert check_yolo_dataset(data) == {"train": {"images": 2, "boxes": 2}, "val": {"images": 1, "boxes": 1}}
    assert (tmp_path / "ds" / "labels" / "train" / "a.txt").read_text() == "0 0.200000 0.300000 0.200000 0.400000\n"
    assert (tmp_path / "ds" / "labels" / "train" / "b.txt").read_text() == "0 0.500000 0.500000 1.000000 1.000000\n"
    assert (tmp_path / "ds" / "labels" / "val" / "c.txt").read_text() == "0 0.550000 0.500000 0.100000 0.600000\n"
    assert not [p for p in tmp_path.iterdir() if p.name != "ds"]   # no partial folder left

    with pytest.raises(ValueError, match="holdout"):
        write_yolo_dataset({"train": [], "holdout": []}, tmp_path / "bad")
    assert not (tmp_path / "bad").exists()

    def broken():
        yield "x", img, (10, 5, 30, 25)
        raise RuntimeError("disk went away")

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(RuntimeError, match="disk went away"):
        write_yolo_dataset({"train": broken()}, empty / "ds")
    assert list(empty.iterdir()) == []


def test_export_yolo_writes_the_cohort_boxes(learned, tmp_path):
    from oncolab.data import export_yolo
    from oncolab.detection import check_yolo_dataset

    c = learned.cohort
    data = export_yolo(c, tmp_path / "ds", {"train": [0, 1, 2], "val": [3, 4]})
    assert check_yolo_dataset(data) == {"train": {"images": 3, "boxes": 3}, "val": {"images": 2, "boxes": 2}}
    pid = c.ids[1]
    h, w = c.radiograph(pid).shape
    x0, y0, x1, y1 = c.boxes.loc[pid, ["x0", "y0", "x1", "y1"]].to_numpy(float)
    vals = [float(v) for v in (tmp_path / "ds" / "labels" / "train" / f"{pid}.txt").read_text().split()]
    np.testing.assert_allclose(vals, [0, (x0 + x1) / 2 / w, (y0 + y1) / 2 / h, (x1 - x0) / w, (y1 - y0) / h],
                               atol=1e-6)
    with pytest.raises(ValueError, match="holdout"):
        export_yolo(c, tmp_path / "ds2", {"holdout": [0]})


def test_narrate_cohort_by_id_does_not_depend_on_the_cohort(learned):
    from oncolab.text import narrate, narrate_cohort, patient_seed

    c = learned.cohort.subset(np.arange(12))
    by_id = narrate_cohort(c, seed=0, by="id")
    for i in (0, 7, 11):
        pid = c.ids[i]
        assert narrate_cohort(c.subset([pid]), seed=0, by="id") == [by_id[i]]
        assert narrate_cohort(c.subset([c.ids[11 - i], pid]), seed=0, by="id")[1] == by_id[i]
    np.testing.assert_array_equal(LabsText.read(c, CFG)[0], np.array(by_id, dtype=object))
    # by position (the default): patient i is narrated with patient_seed(seed, i)
    by_pos = narrate_cohort(c, seed=0)
    assert by_pos == narrate_cohort(c, seed=0, by="position")
    clin = c.clinical
    for i in (0, 7):
        pid = c.ids[i]
        assert by_pos[i] == narrate(c.labs.loc[pid], clin.at[pid, "sex"], clin.at[pid, "age"],
                                    seed=patient_seed(0, i))
    assert by_pos != by_id   # the seeds differ, so does some wording
    with pytest.raises(ValueError, match="by must be 'position' or 'id'"):
        narrate_cohort(c, by="name")


# --------------------------------------------------------------------------------------------
# configuration errors
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("key, value, allowed", [
    ("detector", "rcnn", "'finder', 'yolo', 'annotated'"),
    ("radiograph_encoder", "swin", "'measurements', 'cnn', 'vit'"),
    ("pathology_encoder", "clam", "'measurements', 'mil', 'resnet_tiles', 'vit_tiles', 'wsi_mil', 'crossfusion', "
                                  "'convfusion'"),
    ("labs_encoder", "gpt", "'numeric', 'tfidf', 'bert', 'biobert', 'forest'"),
])
def test_unknown_stage_choice_lists_the_choices(key, value, allowed):
    with pytest.raises(ValueError, match=f"{key}='{value}' is not available; expected one of \\[{allowed}\\]"):
        OncoLabSystem({**CFG.to_dict(), key: value})


@pytest.mark.parametrize("setting, match", [
    ({"folds": 1}, "folds must be >= 2"),
    ({"folds": True}, "folds must be an integer"),
    ({"detector_imgsz": 100}, "detector_imgsz must be a multiple of 32"),
    ({"crop_window": 0.0}, "crop_window must be > 0.0"),
    ({"crop_window": 1.5}, "crop_window must be <= 1.0"),
    ({"mil_epochs": 0}, "mil_epochs must be >= 1"),
])
def test_bad_learned_settings_raise(setting, match):
    with pytest.raises(ValueError, match=match):
        OncoLabSystem({**CFG.to_dict(), **setting})


def test_stage_constructors_check_their_settings():
    with pytest.raises(ValueError, match="window must lie in"):
        RadiographCNN(window=0)
    from oncolab.pipeline import stage_class

    with pytest.raises(ValueError, match="unknown radiograph stage 'swin'; expected one of"):
        stage_class("radiograph", "swin")
    with pytest.raises(ValueError, match="unknown modality 'pet'"):
        stage_class("pet", "cnn")


@pytest.mark.slow
def test_stages_from_another_fit_must_match(learned):
    s, ctr, ftr = learned.system, learned.ctr, learned.ftr
    assert "cnn_epochs" in CFG.stage_settings()
    with pytest.raises(ValueError, match="same stage settings.*cnn_epochs"):
        OncoLabSystem(CFG.replace(cnn_epochs=3)).fit(ctr, inputs=ftr, stages=s)
    with pytest.raises(ValueError, match="same patients"):
        OncoLabSystem(CFG).fit(learned.cte, inputs=learned.feats.subset(learned.test), stages=s)
    # a different fusion on the same stages: the fitted stages are shared, not refitted
    other = OncoLabSystem(CFG.replace(fusion="early", modalities=("radiograph", "labs"))).fit(
        ctr, inputs=ftr, stages=s)
    assert other.stages["radiograph"] is s.stages["radiograph"]
    assert other.stages["labs"] is s.stages["labs"]
    assert set(other.stages) == {"radiograph", "labs"}


# --------------------------------------------------------------------------------------------
# corrupt images, ablation, report
# --------------------------------------------------------------------------------------------
class _OneBadRadiograph:
    """An image source that returns garbage instead of one patient's radiograph."""

    def __init__(self, images, bad_pid):
        self.images, self.bad_pid = images, bad_pid

    def radiograph(self, pid):
        return np.full((10,), 3, np.uint8) if pid == self.bad_pid else self.images.radiograph(pid)

    def slide(self, pid):
        return self.images.slide(pid)

    def lesion_mask(self, pid):
        return self.images.lesion_mask(pid)


@pytest.mark.slow
def test_corrupt_radiograph_in_the_learned_path(learned):
    s, cte = learned.system, learned.cte
    bad_pid = cte.ids[2]
    bad = Cohort(cte.tables, images=_OneBadRadiograph(cte.images, bad_pid), meta=cte.meta)
    with pytest.raises(ValueError, match=f"patient {bad_pid}: bad radiograph"):
        s.predict(bad)
    pred = s.predict(bad, on_bad_image="mask")
    assert "radiograph" not in pred.at[bad_pid, "modalities_used"].split(",")
    assert f"{bad_pid}: radiograph masked" in pred.at[bad_pid, "warnings"]
    assert pred.at[bad_pid, "modalities_used"] == "pathology,labs,genes,clinical"
    good = s.predict(cte)
    others = [p for p in cte.ids if p != bad_pid]
    np.testing.assert_allclose(pred.loc[others, PROBS], good.loc[others, PROBS], atol=1e-6)
    assert not pred.loc[others, "warnings"].str.contains("masked").any()
    assert not np.allclose(pred.loc[bad_pid, PROBS].astype(float), good.loc[bad_pid, PROBS].astype(float),
                           atol=1e-6)


@pytest.mark.slow
def test_ablation_reuses_the_fitted_stages(learned, monkeypatch):
    def refit(*args, **kwargs):
        raise AssertionError("a stage was refitted")

    for cls in (RadiographCNN, PathologyMIL, LabsText):
        monkeypatch.setattr(cls, "fit_transform", refit)
    tab = ablation(learned.cohort, learned.train, learned.test, inputs=learned.feats, config=CFG,
                   modality_sets=[["radiograph"], ["pathology", "labs"]], fusions=["early"], n_boot=20,
                   stages=learned.system)
    assert list(tab["modalities"]) == ["radiograph", "pathology+labs", "all"]
    assert list(tab["fusion"]) == [learned.system.config.fusion] * 2 + ["early"]
    assert (tab["note"] == "").all()
    nums = tab[["macro_precision", "macro_f1", "macro_auc", "accuracy", "c_index"]].to_numpy(float)
    assert np.isfinite(nums).all() and ((nums >= 0) & (nums <= 1)).all()
    for col in ("macro_auc_ci", "c_index_ci"):
        bounds = np.array([json.loads(v) for v in tab[col]], float)   # "[low, high]"
        assert np.isfinite(bounds).all() and (bounds[:, 0] <= bounds[:, 1]).all()


@pytest.mark.slow
def test_patient_report_of_the_learned_system(learned, tmp_path):
    from PIL import Image

    from oncolab.pipeline import patient_report

    s, cte = learned.system, learned.cte
    pid = cte.ids[0]
    pred = s.predict(cte)
    path = patient_report(s, cte, pid, tmp_path / "rep", reference=cte, reference_predictions=pred)
    assert path == tmp_path / "rep" / f"{pid}.md"
    text = path.read_text()
    assert f"# Patient {pid}" in text and f"Predicted diagnosis: {pred.at[pid, 'predicted']}" in text
    assert f"![images]({pid}_images.png)" in text
    with Image.open(tmp_path / "rep" / f"{pid}_images.png") as im:
        w, h = im.size
    assert w > 2 * h   # three panels: radiograph with boxes, Grad-CAM window, tile attention
    rec = json.loads((tmp_path / "rep" / f"{pid}_explanation.json").read_text())
    assert rec["patient_id"] == pid
    assert rec["predicted"] == pred.at[pid, "predicted"]
    for d in ("benign", "intermediate", "malignant"):
        assert rec["probabilities"][d] == pytest.approx(pred.at[pid, f"p_{d}"], abs=1e-6)
    present = pred.at[pid, "modalities_used"].split(",")
    contrib = rec["modality_contributions"]
    assert set(contrib) <= set(present)
    assert sum(contrib[m] for m in present if m in contrib) == pytest.approx(1.0, abs=1e-6)
    assert all(v >= 0 for v in contrib.values())
    assert not list((tmp_path / "rep").glob("*.partial*"))
    # the pointing game of the CNN's Grad-CAM against the true lesion, recomputed here
    from oncolab.detection import centred_window, roi_crop

    rad = s.stages["radiograph"]
    raw = s.read(cte.subset([pid])).raw["radiograph"]
    img = cte.radiograph(pid)
    window = centred_window(rad.boxes(raw)[0], img.shape, rad.window)
    cam = rad.grad_cam(roi_crop(img, window, rad.crop_size, margin=0.0),
                       ["benign", "intermediate", "malignant"].index(rec["predicted"]))
    cut = roi_crop(cte.lesion_mask(pid).astype(np.uint8) * 255, window, rad.crop_size, margin=0.0) > 127
    expected = bool(cut.ravel()[cam.argmax()])
    assert rec["lesion_hit"] is expected
    assert f"peaks {'on' if expected else 'off'} the annotated lesion" in text


def test_tile_attention_map():
    from oncolab.pipeline import tile_attention_map

    heat = tile_attention_map([(0, 0), (0, 4), (4, 4)], [0.5, 2.0, 1.0], 4, (8, 10, 3))
    assert heat.shape == (8, 10)
    np.testing.assert_allclose(heat[:4, :4], 0.25)
    np.testing.assert_allclose(heat[:4, 4:8], 1.0)
    np.testing.assert_allclose(heat[4:, 4:8], 0.5)
    np.testing.assert_allclose(heat[4:, :4], 0.0)
    np.testing.assert_allclose(heat[:, 8:], 0.0)
    np.testing.assert_allclose(tile_attention_map([(0, 0)], [0.0], 4, (4, 4)), 0.0)
    with pytest.raises(ValueError, match="3 tiles but 2 attention weights"):
        tile_attention_map([(0, 0), (0, 4), (4, 4)], [0.5, 2.0], 4, (8, 8))
