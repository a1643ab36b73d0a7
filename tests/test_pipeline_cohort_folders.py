"""The complete system on cohort folders: validate, run --data, predict (issue: real data through the system).

A real offline dataset (scikit-survival's breast_cancer, converted by ``data_scripts.packaged``)
and exported synthetic folders edited as a researcher's own files would be: columns in another
order, labs in other units, a modality missing, no survival, two unordered classes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data_scripts.packaged import convert_packaged  # noqa: E402
from oncolab.cli import main  # noqa: E402
from oncolab.data import export_cohort, load_cohort, synthetic_cohort  # noqa: E402
from oncolab.pipeline import OncoLabSystem  # noqa: E402

FAST = {"epochs": 30, "patience": 30, "progress": False, "hidden": 16}


@pytest.fixture(scope="module")
def breast_cancer(tmp_path_factory):
    return convert_packaged("breast_cancer", tmp_path_factory.mktemp("real") / "breast_cancer")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    c = synthetic_cohort(80, seed=4, image_size=64, slide_size=64)
    return c, export_cohort(c, tmp_path_factory.mktemp("syn") / "cohort")


def test_validate_command_reports_every_problem_and_its_exit_status(exported, tmp_path, capsys):
    _, folder = exported
    assert main(["validate", str(folder)]) == 0
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "labels.csv").write_text("patient_id,diagnosis,time,event\nA,x,10,1\nA,y,-3,2\nB,x,5,0\n")
    (bad / "labs.csv").write_text("patient_id,troponin_x,ALP [furlongs]\nA,1,2\n")
    assert main(["validate", str(bad)]) == 1
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("error:")]
    assert any("labels.csv:3:" in line and "A" in line for line in lines)        # duplicate id
    assert any("labels.csv:3:" in line and "time" in line for line in lines)     # time <= 0
    assert any("labels.csv:3:" in line and "event" in line for line in lines)    # event not 0/1
    assert any("labs.csv:1:" in line and "troponin_x" in line for line in lines)
    assert any("labs.csv:1:" in line and "furlongs" in line for line in lines)
    assert len(lines) >= 5


def test_run_on_a_real_survival_cohort_reports_only_what_it_learnt(breast_cancer, tmp_path):
    out = tmp_path / "run"
    rc = main(["run", "--data", str(breast_cancer), "--preset", "handcrafted", "--out", str(out), "--epochs", "30",
               "--n-boot", "20", "--reports", "1", "--quiet"])
    assert rc == 0
    summary = json.loads((out / "run.json").read_text())
    assert summary["config"]["modalities"] == ["genes", "clinical"]
    assert summary["save_load_identical"] is True and "oracle_test" not in summary
    metrics = pd.read_csv(out / "metrics.csv")
    assert list(metrics["metric"]) == ["c_index"] and "oracle" not in metrics.columns
    lo, v, hi = metrics.loc[0, ["ci_low", "value", "ci_high"]]
    assert 0 <= lo <= v <= hi <= 1
    pred = pd.read_csv(out / "predictions_test.csv", index_col=0)
    assert {"risk", "risk_group"} <= set(pred.columns) and not any(c.startswith("p_") for c in pred.columns)
    abl = pd.read_csv(out / "ablation.csv")
    assert set(abl["modalities"]) >= {"genes", "clinical"} and "macro_auc" not in abl.columns
    system = OncoLabSystem.load(out / "model")
    assert system.task_ == "survival" and system.classes_ == []
    assert system.stages["genes"].transformer.values == "log_expression"
    report = next((out / "reports").glob("*.md")).read_text()
    assert "risk group" in report and "Predicted diagnosis" not in report


def test_predict_reads_columns_in_any_order_units_by_name_and_masks_a_lacking_modality(exported, tmp_path):
    cohort, folder = exported
    system = OncoLabSystem({**FAST, "modalities": ["labs", "genes", "clinical"]}).fit(cohort.subset(np.arange(60)))
    model = system.save(tmp_path / "model")
    new = cohort.subset(np.arange(60, 80))
    reference = system.predict(new)
    # the new patients' files as a hospital might send them: other column order, calcium in mg/dL
    own = tmp_path / "new_patients"
    export_cohort(new, own)
    labs = pd.read_csv(own / "labs.csv", index_col="patient_id")
    labs = labs[labs.columns[::-1]]
    mg_dl = labs["calcium"] / 0.2495   # the canonical unit of calcium is mmol/L; 1 mg/dL = 0.2495 mmol/L
    labs = labs.drop(columns="calcium").assign(**{"calcium [mg/dL]": mg_dl})
    labs.to_csv(own / "labs.csv")
    genes = pd.read_csv(own / "genes.csv", index_col="patient_id")
    genes[genes.columns[::-1]].iloc[::-1].to_csv(own / "genes.csv")
    assert main(["predict", "--model", str(model), "--data", str(own), "--out", str(tmp_path / "p.csv")]) == 0
    got = pd.read_csv(tmp_path / "p.csv", index_col=0).loc[reference.index]
    cols = ["p_benign", "p_intermediate", "p_malignant", "risk"]
    np.testing.assert_allclose(got[cols].to_numpy(), reference[cols].to_numpy(), atol=2e-3)
    assert (got["risk_group"] == reference["risk_group"]).mean() > 0.9
    # genes lacking for the new patients (a hand-made folder: no cohort.json either): masked, predicted from the rest
    (own / "genes.csv").unlink()
    (own / "cohort.json").unlink()
    with pytest.warns(UserWarning, match="masked"):
        main(["predict", "--model", str(model), "--data", str(own), "--out", str(tmp_path / "q.csv")])
    q = pd.read_csv(tmp_path / "q.csv", index_col=0)
    assert not q["modalities_used"].str.contains("genes").any()
    np.testing.assert_allclose(q[cols[:3]].sum(1), 1, atol=1e-6)


def test_a_cohort_without_survival_and_with_two_unordered_classes(exported, tmp_path):
    cohort, folder = exported
    own = tmp_path / "two_classes"
    export_cohort(cohort, own)
    lab = pd.read_csv(own / "labels.csv", index_col="patient_id")
    lab = pd.DataFrame({"diagnosis": np.where(lab["diagnosis"] == "benign", "not malignant", "tumour")},
                       index=lab.index)
    lab.to_csv(own / "labels.csv")
    meta = json.loads((own / "cohort.json").read_text())
    meta.pop("classes", None)
    meta.pop("ordered", None)
    (own / "cohort.json").write_text(json.dumps(meta))
    c = load_cohort(own)
    assert c.classes == ["not malignant", "tumour"] and not c.has_survival
    s = OncoLabSystem({**FAST, "modalities": ["labs", "genes"]}).fit(c.subset(np.arange(60)))
    assert (s.task_, s.head_) == ("diagnosis", "softmax")
    tab = s.evaluate(c.subset(np.arange(60, 80)), n_boot=10)
    assert "c_index" not in set(tab["metric"]) and "macro_auc" in set(tab["metric"])
    pred = s.predict(c.subset(np.arange(60, 80)))
    assert set(pred["predicted"]) <= {"not malignant", "tumour"} and "risk" not in pred.columns
    with pytest.raises(ValueError, match="task='survival' but the cohort has no 'time' and 'event'"):
        OncoLabSystem({**FAST, "task": "survival", "modalities": ["labs"]}).fit(c)


def test_a_supervised_stage_needs_a_diagnosis(exported):
    from oncolab.data import Cohort

    cohort, _ = exported
    survival_only = Cohort({**cohort.tables, "labels": cohort.labels[["time", "event"]]}, images=cohort.images,
                           meta={k: v for k, v in cohort.meta.items() if k not in ("classes", "ordered")})
    assert survival_only.classes == [] and survival_only.has_survival
    with pytest.raises(ValueError, match="radiograph stage 'cnn' learns from the diagnosis, which this cohort lacks"):
        OncoLabSystem({**FAST, "modalities": ["radiograph"], "radiograph_encoder": "cnn"}).fit(survival_only)
    s = OncoLabSystem({**FAST, "modalities": ["radiograph", "labs"]}).fit(survival_only)   # hand-made: fine
    assert s.task_ == "survival" and list(s.evaluate(survival_only, n_boot=5)["metric"]) == ["c_index"]


def test_radiographs_without_annotated_boxes_use_the_finders_defaults(exported):
    from oncolab.data import Cohort

    cohort, _ = exported
    no_boxes = Cohort({k: v for k, v in cohort.tables.items() if k != "boxes"}, images=cohort.images, meta=cohort.meta)
    s = OncoLabSystem({**FAST, "modalities": ["radiograph"]}).fit(no_boxes.subset(np.arange(60)))
    finder = s.stages["radiograph"].detector.finder
    assert finder.training_iou_ is None   # not tuned: nothing to tune on
    pred = s.predict(no_boxes.subset(np.arange(60, 80)))
    np.testing.assert_allclose(pred[["p_benign", "p_intermediate", "p_malignant"]].sum(1), 1, atol=1e-6)
