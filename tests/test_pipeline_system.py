"""oncolab.pipeline (system, configuration, report) and the CLI on a small cohort, hand-made stages."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from oncolab.data import synthetic_cohort
from oncolab.pipeline import OncoLabSystem, SystemConfig, read_inputs

FAST = {"epochs": 40, "patience": 40, "progress": False, "hidden": 16}


@pytest.fixture(scope="module")
def fitted(small_cohort):
    feats = read_inputs(small_cohort, SystemConfig.from_dict(FAST))
    s = OncoLabSystem(FAST).fit(small_cohort.subset(np.arange(70)), inputs=feats.subset(np.arange(70)))
    return s, feats


def test_fit_predict_evaluate(fitted, small_cohort):
    s, feats = fitted
    test = small_cohort.subset(np.arange(70, 90))
    pred = s.predict(test, inputs=feats.subset(np.arange(70, 90)))
    probs = pred[["p_benign", "p_intermediate", "p_malignant"]].to_numpy()
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-6)
    assert set(pred["risk_group"]) <= {"low", "intermediate", "high"}
    np.testing.assert_allclose(pred.filter(like="w_").sum(1), 1, atol=1e-5)
    tab = s.evaluate(test, n_boot=20, inputs=feats.subset(np.arange(70, 90)))
    assert list(tab.columns) == ["metric", "value", "ci_low", "ci_high", "n", "note"]
    assert (tab["note"] == "").all()   # the hand-made finder reads no label
    assert {"macro_auc", "macro_f1", "macro_precision", "c_index"} <= set(tab["metric"])
    # inputs read inside predict give the same answer as inputs read before
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
    from oncolab.pipeline import patient_report

    s, _ = fitted
    path = patient_report(s, small_cohort, 80, tmp_path / "rep")
    text = path.read_text()
    assert "Predicted diagnosis" in text and "risk group" in text and "Genes furthest" in text
    assert (tmp_path / "rep" / "P00080_km.png").stat().st_size > 1000
    out = tmp_path / "run"
    rc = main(["run", "--n-patients", "60", "--seed", "1", "--image-size", "64", "--slide-size", "64",
               "--out", str(out), "--epochs", "20", "--n-boot", "5", "--reports", "1", "--no-ablation", "--quiet",
               "--preset", "handcrafted"])
    assert rc == 0
    summary = json.loads((out / "run.json").read_text())
    assert summary["save_load_identical"] is True
    assert summary["config"]["fusion"] == "attention" and summary["config"]["detector"] == "finder"
    assert summary["label_note"] is None
    assert (out / "metrics.csv").is_file()
    assert main(["report", "--model", str(out), "--patient", "3", "--out", str(tmp_path / "r2")]) == 0
    assert (tmp_path / "r2" / "P00003.md").is_file()
    with pytest.raises(SystemExit):
        main(["run", "--n-patients", "0"])


def test_same_seed_same_predictions(fitted, small_cohort):
    s, feats = fitted
    train = np.arange(70)
    again = OncoLabSystem(FAST).fit(small_cohort.subset(train), inputs=feats.subset(train))
    test = np.arange(70, 90)
    f_test = feats.subset(test)
    pd.testing.assert_frame_equal(s.predict(small_cohort.subset(test), inputs=f_test),
                                  again.predict(small_cohort.subset(test), inputs=f_test))


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


# --------------------------------------------------------------------------------------------
# no label at prediction
# --------------------------------------------------------------------------------------------
def _relabelled(cohort, seed=0):
    """The same patients with every label table scrambled and the annotated boxes removed."""
    from oncolab.data import Cohort

    rng = np.random.default_rng(seed)
    tables = {k: v for k, v in cohort.tables.items() if k not in ("boxes", "truth")}
    lab = cohort.labels.copy()
    for col in ("diagnosis", "y", "time", "event"):
        lab[col] = lab[col].to_numpy()[rng.permutation(len(lab))]
    tables["labels"] = lab
    return Cohort(tables, images=cohort.images, meta=cohort.meta)


def test_default_system_reads_no_label_of_the_patients_it_predicts(fitted, small_cohort):
    s, _ = fitted
    assert s.config.detector == "finder" and s.label_note is None
    test = small_cohort.subset(np.arange(70, 90))
    pd.testing.assert_frame_equal(s.predict(test), s.predict(_relabelled(test)))


def test_annotated_box_is_named_and_labelled_wherever_shown(small_cohort, tmp_path):
    from oncolab.pipeline import patient_report, preset

    cfg = preset("annotated_box", **FAST)
    assert cfg.reads_labels_at_prediction
    s = OncoLabSystem(cfg).fit(small_cohort.subset(np.arange(70)))
    test = small_cohort.subset(np.arange(70, 90))
    assert "annotated lesion box" in s.label_note
    tab = s.evaluate(test, n_boot=5)
    assert (tab["note"] == s.label_note).all()
    # it does read the boxes: predictions move when the boxes move
    moved = test.boxes.copy()
    moved[["x0", "x1"]] = moved[["x0", "x1"]] * 0.5
    from oncolab.data import Cohort

    other = Cohort({**test.tables, "boxes": moved}, images=test.images, meta=test.meta)
    assert not np.allclose(s.predict(test)["p_benign"], s.predict(other)["p_benign"])
    text = patient_report(s, small_cohort, 80, tmp_path / "rep").read_text()
    assert s.label_note in text


# --------------------------------------------------------------------------------------------
# adding a stage: one class, one registry line
# --------------------------------------------------------------------------------------------
def test_a_new_stage_is_one_class_and_one_registry_line(small_cohort, tmp_path, monkeypatch):
    from oncolab.pipeline import STAGES, Stage
    from oncolab.pipeline.config import choices
    from oncolab.pipeline.stages.tables import read_table

    class GeneMean(Stage):
        modality, name = "genes", "mean"

        @classmethod
        def read(cls, cohort, config, on_bad_image="raise"):
            return read_table(cohort, "genes")

        def fit_transform(self, raw, rows, targets):
            self.mu_ = np.log1p(raw.to_numpy(float)[rows]).mean()
            return self.transform(raw)

        def transform(self, raw):
            return np.log1p(raw.to_numpy(float)).mean(1, keepdims=True) - self.mu_

        def feature_names(self):
            return ["mean log count"]

        def arrays(self):
            return {"mu": np.array([self.mu_])}

        def restore(self, config, arrays):
            self.mu_ = float(arrays["mu"][0])

    monkeypatch.setitem(STAGES["genes"], "mean", GeneMean)
    assert "mean" in choices("genes_encoder")
    s = OncoLabSystem({**FAST, "genes_encoder": "mean", "modalities": ["labs", "genes"]})
    s.fit(small_cohort.subset(np.arange(70)))
    assert s.dims_["genes"] == 1 and s.feature_names()["genes"] == ["genes: mean log count"]
    s.save(tmp_path / "m")
    test = small_cohort.subset(np.arange(70, 90))
    pd.testing.assert_frame_equal(s.predict(test), OncoLabSystem.load(tmp_path / "m").predict(test))
    from oncolab.cli import build_parser

    args = build_parser().parse_args(["run", "--genes-encoder", "mean"])
    assert args.genes_encoder == "mean"


def test_cli_options_come_from_the_config():
    from dataclasses import fields

    from oncolab.cli import build_parser
    from oncolab.pipeline.config import config_from_args

    parser = build_parser()
    args = parser.parse_args(["run", "--preset", "handcrafted", "--fusion", "late", "--crop-window", "0.4",
                              "--modalities", "labs,genes"])
    cfg = config_from_args(args)
    assert (cfg.fusion, cfg.crop_window, cfg.modalities) == ("late", 0.4, ("labs", "genes"))
    run = next(a for a in parser._subparsers._group_actions[0].choices["run"]._actions if a.dest == "detector")
    assert run.choices == ["finder", "yolo", "annotated"]
    dests = {a.dest for a in parser._subparsers._group_actions[0].choices["run"]._actions}
    assert {f.name for f in fields(SystemConfig)} - {"progress"} <= dests
    with pytest.raises(SystemExit):
        parser.parse_args(["run", "--epochs", "many"])


# --------------------------------------------------------------------------------------------
# bad input ends in an error that names the value and what was expected
# --------------------------------------------------------------------------------------------
def test_unknown_or_non_numeric_lab_is_named(fitted, small_cohort):
    from oncolab.data import Cohort

    s, _ = fitted
    test = small_cohort.subset(np.arange(70, 75))
    labs = test.labs.rename(columns={test.labs.columns[0]: "troponin_x"})
    with pytest.raises(ValueError, match="troponin_x"):
        s.predict(Cohort({**test.tables, "labs": labs}, images=test.images, meta=test.meta))
    labs = test.labs.astype(object)
    col = labs.columns[1]
    labs.iloc[2, 1] = "high"
    with pytest.raises(ValueError, match=f"(?s)(?=.*{col})(?=.*{test.ids[2]})"):
        s.predict(Cohort({**test.tables, "labs": labs}, images=test.images, meta=test.meta))


def test_unreadable_model_files_are_named(fitted, tmp_path):
    s, _ = fitted
    s.save(tmp_path / "m")
    w = tmp_path / "m" / "model.safetensors"
    w.write_bytes(w.read_bytes()[:200])
    with pytest.raises(ValueError, match=r"model\.safetensors is not a readable safetensors file"):
        OncoLabSystem.load(tmp_path / "m")
    s.save(tmp_path / "m")
    (tmp_path / "m" / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"config\.json is not readable JSON"):
        OncoLabSystem.load(tmp_path / "m")


def test_empty_or_too_small_cohort_is_refused(small_cohort):
    with pytest.raises(ValueError, match="the cohort has no patients"):
        OncoLabSystem(FAST).fit(small_cohort.subset([]))
    with pytest.raises(ValueError, match="too small to split off a validation part: 6 patients"):
        OncoLabSystem(FAST).fit(small_cohort.subset(np.arange(6)))


def test_evaluate_can_mask_a_corrupt_image(fitted, small_cohort):
    from oncolab.data import Cohort

    s, _ = fitted
    test = small_cohort.subset(np.arange(70, 90))
    bad_pid = test.ids[3]

    class OneBad:
        def radiograph(self, pid):
            return np.zeros(5) if pid == bad_pid else test.images.radiograph(pid)

        def slide(self, pid):
            return test.images.slide(pid)

        def lesion_mask(self, pid):
            return test.images.lesion_mask(pid)

    bad = Cohort(test.tables, images=OneBad(), meta=test.meta)
    with pytest.raises(ValueError, match=f"patient {bad_pid}: bad radiograph"):
        s.evaluate(bad, n_boot=5)
    tab = s.evaluate(bad, n_boot=5, on_bad_image="mask").set_index("metric")
    assert tab.at["macro_auc", "n"] == 20 and np.isfinite(tab.at["macro_auc", "value"])
