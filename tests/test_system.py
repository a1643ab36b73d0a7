"""oncolab.system, oncolab.report and the CLI on a small cohort."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from oncolab.data import synthetic_cohort
from oncolab.system import OncoLabSystem, modality_features, subset_features

FAST = {"epochs": 40, "patience": 40, "progress": False, "hidden": 16}


@pytest.fixture(scope="module")
def fitted(small_cohort):
    feats = modality_features(small_cohort)
    s = OncoLabSystem(FAST).fit(small_cohort.subset(np.arange(70)), features=subset_features(feats, np.arange(70)))
    return s, feats


def test_fit_predict_evaluate(fitted, small_cohort):
    s, feats = fitted
    test = small_cohort.subset(np.arange(70, 90))
    pred = s.predict(test, features=subset_features(feats, np.arange(70, 90)))
    probs = pred[["p_benign", "p_intermediate", "p_malignant"]].to_numpy()
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-6)
    assert set(pred["risk_group"]) <= {"low", "intermediate", "high"}
    np.testing.assert_allclose(pred.filter(like="w_").sum(1), 1, atol=1e-5)
    tab = s.evaluate(test, n_boot=20, features=subset_features(feats, np.arange(70, 90)))
    assert list(tab.columns) == ["metric", "value", "ci_low", "ci_high", "n"]
    assert {"macro_auc", "macro_f1", "macro_precision", "c_index"} <= set(tab["metric"])
    # features computed inside predict give the same answer as precomputed ones
    pd.testing.assert_frame_equal(pred, s.predict(test))


def test_one_patient_predict_equals_cohort_row(fitted, small_cohort):
    s, _ = fitted
    row = s.predict(small_cohort.subset([75])).iloc[0]
    one = s.predict(small_cohort.patient(75)).iloc[0]
    np.testing.assert_allclose(one[["p_benign", "p_intermediate", "p_malignant", "risk"]].astype(float),
                               row[["p_benign", "p_intermediate", "p_malignant", "risk"]].astype(float), atol=1e-6)


def test_save_load_round_trip_is_identical_and_safe(fitted, small_cohort, tmp_path):
    s, _ = fitted
    s.save(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "model.safetensors"]
    test = small_cohort.subset(np.arange(70, 90))
    pd.testing.assert_frame_equal(s.predict(test), OncoLabSystem.load(tmp_path / "m").predict(test))
    meta = json.loads((tmp_path / "m" / "config.json").read_text())
    meta["config"]["fusion"] = "early"  # weights of another fusion: incompatible
    (tmp_path / "m" / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="incompatible"):
        OncoLabSystem.load(tmp_path / "m")
    meta["format_version"] = 99
    (tmp_path / "m" / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="format version"):
        OncoLabSystem.load(tmp_path / "m")
    with pytest.raises(FileNotFoundError):
        OncoLabSystem.load(tmp_path / "nothing")


def test_bad_config_and_inputs(fitted, small_cohort):
    with pytest.raises(ValueError, match="unknown system setting"):
        OncoLabSystem({"fusoin": "early"})
    with pytest.raises(ValueError, match="fusion='magic'"):
        OncoLabSystem({"fusion": "magic"})
    with pytest.raises(RuntimeError, match="not fitted"):
        OncoLabSystem().predict(small_cohort)
    s, _ = fitted
    no_genes = synthetic_cohort(20, seed=5, image_size=96, slide_size=128,
                                modalities=["radiograph", "pathology", "labs", "clinical"])
    with pytest.raises(ValueError, match="genes"):
        s.predict(no_genes)
    with pytest.warns(UserWarning, match="masked"):
        pred = s.predict(no_genes, missing_modalities="mask")
    assert not pred["modalities_used"].str.contains("genes").any()


def test_modality_absent_in_every_training_patient_raises():
    c = synthetic_cohort(30, seed=1, image_size=64, slide_size=64,
                         modalities=["labs", "genes", "clinical"])
    with pytest.raises(ValueError, match="absent in every training patient"):
        OncoLabSystem({**FAST, "modalities": ["labs", "radiograph"]}).fit(c)


def test_corrupt_image_raises_or_is_masked(fitted, small_cohort):
    s, _ = fitted
    p = small_cohort.patient(80)
    p.radiograph = np.full((10,), 3, np.uint8)  # not an image
    with pytest.raises(ValueError, match="P00080: bad radiograph"):
        s.predict(p)
    pred = s.predict(p, on_bad_image="mask").iloc[0]
    assert "radiograph" not in pred["modalities_used"] and "radiograph masked" in pred["warnings"]


def test_missing_modality_is_masked_not_zero_filled():
    c = synthetic_cohort(60, seed=2, image_size=64, slide_size=64, modalities=["labs", "genes", "clinical"],
                         modality_missing={"genes": 0.3})
    s = OncoLabSystem({**FAST, "modalities": ["labs", "genes", "clinical"]}).fit(c)
    pred = s.predict(c)
    absent = ~c.presence["genes"].to_numpy()
    assert absent.any()
    assert (pred["w_genes"].to_numpy()[absent] < 1e-6).all()


def test_report_and_cli(fitted, small_cohort, tmp_path):
    from oncolab.cli import main
    from oncolab.report import patient_report

    s, _ = fitted
    path = patient_report(s, small_cohort, 80, tmp_path / "rep")
    text = path.read_text()
    assert "Predicted diagnosis" in text and "risk group" in text and "Genes furthest" in text
    assert (tmp_path / "rep" / "P00080_km.png").stat().st_size > 1000
    out = tmp_path / "run"
    rc = main(["run", "--n-patients", "60", "--seed", "1", "--image-size", "64", "--slide-size", "64",
               "--out", str(out), "--epochs", "20", "--n-boot", "5", "--reports", "1", "--no-ablation", "--quiet",
               "--stages", "handcrafted"])
    assert rc == 0
    summary = json.loads((out / "run.json").read_text())
    assert summary["save_load_identical"] is True
    assert summary["config"]["fusion"] == "attention" and summary["config"]["detector"] == "annotated"
    assert (out / "metrics.csv").is_file()
    assert main(["report", "--model", str(out), "--patient", "3", "--out", str(tmp_path / "r2")]) == 0
    assert (tmp_path / "r2" / "P00003.md").is_file()
    with pytest.raises(SystemExit):
        main(["run", "--n-patients", "0"])


def test_same_seed_same_predictions(fitted, small_cohort):
    s, feats = fitted
    train = np.arange(70)
    again = OncoLabSystem(FAST).fit(small_cohort.subset(train), features=subset_features(feats, train))
    test = np.arange(70, 90)
    f_test = subset_features(feats, test)
    pd.testing.assert_frame_equal(s.predict(small_cohort.subset(test), features=f_test),
                                  again.predict(small_cohort.subset(test), features=f_test))


@pytest.mark.slow
def test_cli_learned_stages(tmp_path):
    """The default `oncolab run` composes the learned stages; short schedules keep this quick."""
    from oncolab.cli import main

    out = tmp_path / "run"
    rc = main(["run", "--n-patients", "80", "--seed", "2", "--image-size", "64", "--slide-size", "128",
               "--out", str(out), "--epochs", "20", "--n-boot", "20", "--reports", "1", "--quiet",
               "--detector-epochs", "1", "--cnn-epochs", "1", "--mil-epochs", "2", "--fusion", "early"])
    assert rc == 0
    summary = json.loads((out / "run.json").read_text())
    cfg = summary["config"]
    assert (cfg["detector"], cfg["radiograph_encoder"], cfg["pathology_encoder"], cfg["labs_encoder"]) == \
        ("yolo", "cnn", "mil", "tfidf")
    assert (cfg["fusion"], cfg["cnn_epochs"], cfg["detector_epochs"], cfg["mil_epochs"]) == ("early", 1, 1, 2)
    assert summary["save_load_identical"] is True
    refs = summary["against_references"]
    assert refs["best_single"] in ("radiograph", "pathology", "labs", "genes", "clinical")
    abl = pd.read_csv(out / "ablation.csv")
    assert set(abl["modalities"]) >= {"radiograph", "pathology", "labs", "genes", "clinical", "all"}
    best = abl[abl["modalities"] == refs["best_single"]]["macro_auc"].iloc[0]
    fused = pd.read_csv(out / "metrics.csv").set_index("metric").at["macro_auc", "value"]
    assert refs["auc_over_best_single"] == pytest.approx(fused - best)
    pid = summary["reports"][0].rsplit("/", 1)[-1][:-3]
    assert (out / "reports" / f"{pid}_explanation.json").is_file()
