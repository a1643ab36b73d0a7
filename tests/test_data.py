"""The synthetic cohort, the container, the oracle, files, splits and real loaders (chapter 1)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from oncolab.data import (
    BIOMARKERS,
    GENES,
    INFORMATIVE_GENES,
    MODALITIES,
    OPTIONAL_MODALITIES,
    YoloLabelError,
    check_modalities,
    export_cohort,
    export_yolo,
    flag_value,
    kfold_indices,
    load_breast_cancer_genes,
    load_cohort,
    load_fna_breast_cancer,
    load_gbsg2,
    load_whas500,
    oracle,
    oracle_table,
    prostate_cohort,
    read_data_yaml,
    read_yolo_labels,
    reference_range,
    survival_array,
    synthetic_cohort,
    train_val_test_split,
)
from oncolab.data import synthetic as synthetic_module
from oncolab.data.cohort import Cohort
from oncolab.data.synthetic import CohortConfig, diagnosis_posterior


# --- the generator ------------------------------------------------------------------------
def test_same_seed_same_bytes_and_other_seed_differs():
    a = synthetic_cohort(40, seed=7, image_size=64, slide_size=96)
    b = synthetic_cohort(40, seed=7, image_size=64, slide_size=96)
    c = synthetic_cohort(40, seed=8, image_size=64, slide_size=96)
    assert a.fingerprint(images=40) == b.fingerprint(images=40)
    assert a.fingerprint() != c.fingerprint()
    # images do not depend on the order they are asked for in
    late_first = synthetic_cohort(40, seed=7, image_size=64, slide_size=96)
    assert np.array_equal(late_first.radiograph(39), a.radiograph(39))
    assert np.array_equal(late_first.slide(5), a.slide(5))


def test_cohort_contents(small_cohort):
    c = small_cohort
    assert len(c) == 90
    assert set(c.modalities) == {"radiograph", "pathology", "labs", "genes", "clinical"}
    assert list(c.labs.columns) == [b.name for b in BIOMARKERS] and len(BIOMARKERS) >= 8
    assert c.genes.shape[1] == len(GENES) >= 50 and len(INFORMATIVE_GENES) < len(GENES) / 2
    assert c.radiograph(0).shape == (96, 96) and c.radiograph(0).dtype == np.uint8
    assert c.slide(0).shape == (128, 128, 3)
    assert set(c.labels["diagnosis"]) == {"benign", "intermediate", "malignant"}
    assert c.labs.isna().to_numpy().any(), "some lab values should be missing"
    assert (c.labels["time"] > 0).all() and 0 < c.labels["event"].mean() < 1
    y = c.survival_y()
    assert y.dtype.names == ("event", "time")


def test_boxes_enclose_the_lesion(small_cohort):
    for i in range(10):
        mask = small_cohort.lesion_mask(i)
        x0, y0, x1, y1 = small_cohort.boxes.iloc[i]
        ys, xs = np.nonzero(mask)
        assert xs.min() == x0 and xs.max() + 1 == x1 and ys.min() == y0 and ys.max() + 1 == y1
        # the lesion is darker than the bone around it
        img = small_cohort.radiograph(i).astype(float)
        window = (slice(int(y0), int(y1)), slice(int(x0), int(x1)))
        assert img[mask].mean() < img[window][~mask[window]].mean()


def test_lesion_size_and_nuclei_grow_with_aggressiveness():
    c = synthetic_cohort(150, seed=1, image_size=96, slide_size=128)
    area = (c.boxes.x1 - c.boxes.x0) * (c.boxes.y1 - c.boxes.y0)
    rho = pd.Series(area).corr(c.truth["s_radiograph"], method="spearman")
    assert rho > 0.6
    dark = [(c.slide(i).astype(float).mean(axis=2) < 120).mean() for i in range(60)]
    rho2 = pd.Series(dark).corr(c.truth["s_pathology"].iloc[:60].reset_index(drop=True), method="spearman")
    assert rho2 > 0.5


@pytest.mark.parametrize("n", [0, -3])
def test_bad_sizes_raise_value_error(n):
    with pytest.raises(ValueError, match="n_patients must be at least 1"):
        synthetic_cohort(n)


@pytest.mark.parametrize("n", [2.5, "10", True])
def test_non_integer_size_raises_type_error(n):
    with pytest.raises(TypeError, match="n_patients must be an integer"):
        synthetic_cohort(n)


def test_unknown_modality_names_it():
    with pytest.raises(ValueError, match="'xray'"):
        synthetic_cohort(10, modalities=["radiograph", "xray"])


def test_unknown_setting_names_it():
    with pytest.raises(ValueError, match="colour"):
        synthetic_cohort(10, colour=3)


def test_modality_subset_and_missing_modalities():
    c = synthetic_cohort(60, seed=2, modalities=["labs", "clinical"])
    assert c.modalities == ("labs", "clinical") and "genes" not in c.tables
    with pytest.raises(ValueError, match="no radiograph"):
        c.radiograph(0)
    m = synthetic_cohort(200, seed=2, image_size=64, slide_size=64, modality_missing={"genes": 0.3})
    frac = 1 - m.presence["genes"].mean()
    assert 0.2 < frac < 0.4


def test_optional_modalities_are_made_only_when_named():
    assert check_modalities(None) == MODALITIES and "symptoms" in OPTIONAL_MODALITIES
    assert check_modalities(["symptoms", "labs"]) == ("labs", "symptoms")
    with pytest.raises(ValueError, match="'notes'.*'symptoms'"):
        check_modalities(["notes"])
    c = synthetic_cohort(6, seed=0, modalities=["labs", "clinical"])
    assert "symptoms" not in c.tables and "symptoms" not in c.presence.columns
    c = synthetic_cohort(6, seed=0, modalities=["labs", "clinical", "symptoms"])
    assert c.modalities == ("labs", "clinical", "symptoms") and c.presence["symptoms"].all()
    # a cohort built by hand has the optional modality when it holds its table
    tables = {"labels": c.labels, "symptoms": c.symptoms}
    assert Cohort(tables).modalities == MODALITIES + ("symptoms",)
    assert Cohort({"labels": c.labels}).modalities == MODALITIES
    assert c.patient(0).symptoms == c.symptoms.note.iloc[0] and c.patient(0, images=False).labs


def test_the_oracle_adds_the_symptom_signal_and_keeps_the_others():
    without = oracle(synthetic_cohort(300, seed=1, modalities=["labs", "clinical"]), n_sim=50_000)
    with_notes = oracle(synthetic_cohort(300, seed=1, modalities=["labs", "clinical", "symptoms"]), n_sim=50_000)
    assert set(with_notes["by_modality"]) == set(without["by_modality"]) | {"symptoms"}
    for m, v in without["by_modality"].items():
        assert with_notes["by_modality"][m] == v
    assert with_notes["population_bayes_auc"] > without["population_bayes_auc"]
    assert with_notes["c_index"] == without["c_index"]


# --- the oracle -------------------------------------------------------------------------------
def test_oracle_fused_beats_every_single_modality():
    c = synthetic_cohort(2000, seed=0, image_size=64, slide_size=64)
    o = oracle(c)
    singles = [v["auc"] for v in o["by_modality"].values()]
    assert o["bayes_auc"] > max(singles) + 0.03
    assert abs(o["bayes_auc"] - o["population_bayes_auc"]) < 0.03
    assert 0.6 < o["c_index"] < 0.95 and o["c_index_signals"] <= o["c_index"] + 0.02


def test_simple_per_modality_baseline_is_below_the_oracle():
    """Logistic regression on the lab panel: better than chance, worse than the fused oracle."""
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    c = synthetic_cohort(800, seed=4, image_size=64, slide_size=64)
    s = train_val_test_split(c, seed=0)
    X = np.log(c.labs.to_numpy() + 1e-3)
    model = make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(X[s["train"]], c.y[s["train"]])
    auc = roc_auc_score(c.y[s["test"]], model.predict_proba(X[s["test"]]), multi_class="ovr")
    o = oracle(c.subset(s["test"]))
    assert 0.6 < auc < o["bayes_auc"]


def test_oracle_table_rows_are_the_oracle(small_cohort):
    o = oracle(small_cohort, n_sim=1000)
    t = oracle_table(small_cohort)
    fused = " + ".join(o["by_modality"]) + " (fused)"
    assert list(t.index) == [f"{m} alone" for m in o["by_modality"]] + [fused]
    assert t.loc[fused, "Bayes macro AUC"] == o["bayes_auc"]
    assert t.loc["labs alone", "Bayes accuracy"] == o["by_modality"]["labs"]["accuracy"]


def test_oracle_refuses_a_cohort_the_generator_did_not_make(small_cohort):
    """The oracle belongs to the generator: a hand-made, real or prostate cohort is refused by name."""
    hand = Cohort({k: small_cohort.tables[k] for k in ("labels", "clinical")}, meta={"source": "hospital"})
    with pytest.raises(ValueError, match=r"meta\['source'\] == 'hospital'.*synthetic_cohort"):
        oracle(hand)
    with pytest.raises(ValueError, match="synthetic_cohort"):
        synthetic_module.oracle(hand)
    no_truth = Cohort({k: v for k, v in small_cohort.tables.items() if k != "truth"}, meta=small_cohort.meta)
    with pytest.raises(ValueError, match="a 'truth' table"):
        oracle(no_truth)
    prostate = prostate_cohort(20, seed=0, slide_size=256, mri_shape=(8, 16, 16))
    with pytest.raises(ValueError, match="got meta\\['source'\\] == 'synthetic prostate BCR'"):
        synthetic_module.oracle(prostate)
    with pytest.raises(TypeError, match="expected a Cohort"):
        oracle(small_cohort.tables)
    assert not hasattr(small_cohort, "oracle")


def test_diagnosis_posterior_matches_the_joint_gaussian():
    """Fusing signals by their precision-weighted mean gives the same posterior as the full joint density."""
    from scipy.stats import multivariate_normal

    cfg = CohortConfig()
    g = np.random.default_rng(0)
    sig = {"radiograph": g.normal(0, 1.5, 50), "labs": g.normal(0, 1.5, 50)}
    tau = np.array([cfg.tau["radiograph"], cfg.tau["labs"]])
    cov = cfg.sigma_a**2 + np.diag(tau**2)  # (s_rad, s_labs) | y: shared aggressiveness, own noise
    x = np.column_stack([sig["radiograph"], sig["labs"]])
    joint = np.column_stack([p * multivariate_normal([mu, mu], cov).pdf(x)
                             for p, mu in zip(cfg.class_prior, cfg.mu)])
    np.testing.assert_allclose(diagnosis_posterior(sig, cfg), joint / joint.sum(1, keepdims=True), rtol=1e-10)
    with pytest.raises(ValueError, match="'xray'"):
        diagnosis_posterior({"xray": np.zeros(3)}, cfg)
    with pytest.raises(ValueError, match="1-D"):
        diagnosis_posterior({"labs": np.zeros(3), "genes": np.zeros(4)}, cfg)


# --- the container ------------------------------------------------------------------------------
def test_the_container_imports_no_generator():
    """``Cohort`` is a plain container: cohort.py imports no other module of the package."""
    import ast

    import oncolab.data.cohort as cohort_module

    tree = ast.parse(Path(cohort_module.__file__).read_text())
    own = [node.module or "." for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
           and (node.level or (node.module or "").startswith("oncolab"))]
    own += [a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names
            if a.name.startswith("oncolab")]
    assert own == [], f"cohort.py imports {own}"


def test_cohort_survival_array_matches_sksurv(small_cohort):
    from sksurv.util import Surv

    ref = Surv.from_arrays(small_cohort.labels["event"], small_cohort.labels["time"])
    mine = small_cohort.survival_y()
    assert mine.dtype.names == ref.dtype.names
    np.testing.assert_array_equal(mine["event"], ref["event"])
    np.testing.assert_array_equal(mine["time"], ref["time"])
    with pytest.raises(ValueError, match="same length"):
        survival_array([True, False], [1.0])


def test_classes_and_y_follow_the_diagnosis():
    """y is each diagnosis's position in the classes, given or sorted; a subset keeps the coding."""
    ids = pd.Index(["a", "b", "c", "d"], name="patient_id")
    labels = pd.DataFrame({"diagnosis": ["low", "high", "low", "mid"]}, index=ids)
    ordered = Cohort({"labels": labels}, meta={"classes": ["low", "mid", "high"], "ordered": True})
    assert ordered.classes == ["low", "mid", "high"] and ordered.y.tolist() == [0, 2, 0, 1]
    found = Cohort({"labels": labels})
    assert found.classes == ["high", "low", "mid"] and found.y.tolist() == [1, 0, 1, 2]
    sub = found.subset([0, 2])  # only "low" left: still coded 1
    assert sub.classes == ["high", "low", "mid"] and sub.y.tolist() == [1, 1]
    assert not found.has_survival and found.patient("b").time is None
    with pytest.raises(ValueError, match=r"\['mid'\] are not among the classes \['low', 'high'\]"):
        Cohort({"labels": labels}, meta={"classes": ["low", "high"]})
    with pytest.raises(ValueError, match="distinct"):
        Cohort({"labels": labels}, meta={"classes": ["low", "low", "mid", "high"]})
    with pytest.raises(ValueError, match="cannot stratify by the diagnosis"):
        train_val_test_split(Cohort({"labels": labels[[]]}))


def test_subset_presence_and_image_errors():
    c = synthetic_cohort(30, seed=5, image_size=64, slide_size=64, modality_missing={"pathology": 0.4})
    ids = c.ids[[4, 1]]
    for index in ([4, 1], ids, np.isin(np.arange(30), [1, 4])):
        sub = c.subset(index)
        assert type(sub) is Cohort and len(sub) == 2 and sub.meta == c.meta
        assert np.array_equal(sub.radiograph(ids[1]), c.radiograph(1))
    assert list(c.subset([4, 1]).ids) == list(ids)
    with pytest.raises(KeyError, match="'P99999'"):
        c.subset(["P99999"])
    with pytest.raises(ValueError, match="boolean mask has length 3"):
        c.subset(np.ones(3, bool))
    absent = int(np.flatnonzero(~c.presence["pathology"].to_numpy())[0])
    assert not c.has("pathology", absent) and c.has("radiograph", absent) and not c.has("mri", absent)
    with pytest.raises(ValueError, match=f"patient {c.ids[absent]} has no pathology"):
        c.slide(absent)
    assert "slide" not in c.image_arrays(absent) and c.patient(absent).slide is None
    with pytest.raises(IndexError, match="out of range"):
        c.radiograph(30)
    with pytest.raises(TypeError, match="position \\(int\\) or id \\(str\\)"):
        c.radiograph(1.0)
    assert f"absent={{'pathology': {int((~c.presence['pathology']).sum())}}}" in repr(c)
    labels_only = Cohort({"labels": c.labels[["time", "event"]]})
    with pytest.raises(ValueError, match="no diagnosis"):
        _ = labels_only.y
    assert labels_only.classes == [] and labels_only.has_survival
    assert labels_only.patient(0).diagnosis is None and labels_only.patient(0).y is None
    with pytest.raises(ValueError, match="a 'labels' table"):
        Cohort({"clinical": c.clinical})


# --- files ----------------------------------------------------------------------------------------
def test_export_and_load_round_trip(tmp_path, small_cohort):
    sub = small_cohort.subset(np.arange(12))
    folder = export_cohort(sub, tmp_path / "cohort")
    back = load_cohort(folder)
    assert back.equals(sub)
    assert back.meta["seed"] == 3 and oracle(back, n_sim=1000)["n"] == 12
    assert (folder / "images" / "radiograph" / "P00000.png").exists()
    assert not (folder / ".export-incomplete").exists()
    assert back.classes == ["benign", "intermediate", "malignant"] and np.array_equal(back.y, sub.y)


def test_export_refuses_missing_parent_and_existing_folder(tmp_path, small_cohort):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        export_cohort(small_cohort, tmp_path / "nope" / "cohort")
    (tmp_path / "exists").mkdir()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export_cohort(small_cohort, tmp_path / "exists")


def test_interrupted_export_leaves_nothing_that_loads(tmp_path, small_cohort, monkeypatch):
    import oncolab.data.io as io

    calls = {"n": 0}
    real = io.write_png

    def flaky(array, path):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt("simulated interruption")
        real(array, path)

    monkeypatch.setattr(io, "write_png", flaky)
    with pytest.raises(KeyboardInterrupt):
        export_cohort(small_cohort.subset(np.arange(6)), tmp_path / "cohort")
    assert not (tmp_path / "cohort").exists()
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(FileNotFoundError, match="not found"):
        load_cohort(tmp_path / "cohort")


def test_load_rejects_incomplete_folder(tmp_path):
    (tmp_path / "c").mkdir()
    with pytest.raises(ValueError, match="labels.csv:0: is missing"):
        load_cohort(tmp_path / "c")
    (tmp_path / "c" / "cohort.json").write_text("{not json")
    with pytest.raises(ValueError, match="cohort.json:1: is not valid JSON") as e:
        load_cohort(tmp_path / "c")
    assert "labels.csv:0: is missing" in str(e.value), "every error is listed, not only the first"


def test_a_folder_left_by_an_interrupted_export_is_refused(tmp_path, small_cohort, monkeypatch):
    """Killed while writing images (nothing cleans up): the temporary folder keeps its marker and is refused."""
    import oncolab.data.io as io

    calls = {"n": 0}
    real = io.write_png

    def killed(array, path):
        calls["n"] += 1
        if calls["n"] == 3:
            raise SystemExit("killed")
        real(array, path)

    monkeypatch.setattr(io, "write_png", killed)
    monkeypatch.setattr(io.shutil, "rmtree", lambda *a, **k: None)
    with pytest.raises(SystemExit):
        export_cohort(small_cohort.subset(np.arange(4)), tmp_path / "cohort")
    (left,) = list(tmp_path.iterdir())
    assert left.name.startswith(".cohort.partial-") and (left / "labels.csv").is_file()
    with pytest.raises(ValueError, match=r"\.export-incomplete:0: the folder was left by an interrupted export"):
        load_cohort(left)


def test_yolo_export_is_valid(tmp_path, small_cohort):
    s = train_val_test_split(small_cohort, seed=0)
    data_yaml = export_yolo(small_cohort, tmp_path / "yolo", s)
    data = read_data_yaml(data_yaml)
    assert data["names"] == {0: "lesion"}
    labels = sorted((tmp_path / "yolo" / "labels" / "train").glob("*.txt"))
    assert len(labels) == len(s["train"])
    rows = read_yolo_labels(labels[0], n_classes=1)
    pid = labels[0].stem
    x0, y0, x1, y1 = small_cohort.boxes.loc[pid]
    assert rows.shape == (1, 5)
    np.testing.assert_allclose(rows[0, 1:] * 96, [(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0], atol=1e-3)


@pytest.mark.parametrize("line,msg", [
    ("0 0.5 0.5 0.2", "expected 5 fields"),
    ("0 0.5 0.5 0 0.2", "zero or negative area"),
    ("0 0.95 0.5 0.2 0.2", r"not inside \[0, 1\]"),
    ("3 0.5 0.5 0.2 0.2", "class '3'"),
    ("0 a 0.5 0.2 0.2", "non-numeric"),
])
def test_bad_label_lines_name_file_and_line(tmp_path, line, msg):
    p = tmp_path / "img.txt"
    p.write_text("0 0.5 0.5 0.1 0.1\n" + line + "\n")
    with pytest.raises(YoloLabelError, match=msg) as e:
        read_yolo_labels(p, n_classes=1)
    assert f"{p}:2" in str(e.value)


def test_malformed_data_yaml(tmp_path):
    p = tmp_path / "data.yaml"
    p.write_text("train: [unclosed\n")
    with pytest.raises(YoloLabelError, match="not valid YAML"):
        read_data_yaml(p)
    p.write_text("val: images/val\n")
    with pytest.raises(YoloLabelError, match="missing key"):
        read_data_yaml(p)
    p.write_text("train: images/train\nnames: [lesion]\n")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_data_yaml(p)
    (tmp_path / "images" / "train").mkdir(parents=True)
    with pytest.raises(YoloLabelError, match="is empty"):
        read_data_yaml(p)


# --- splits -------------------------------------------------------------------------------------
def test_splits_are_patient_level_stratified_and_disjoint(small_cohort):
    s = train_val_test_split(small_cohort, seed=0)
    all_idx = np.concatenate([s["train"], s["val"], s["test"]])
    assert sorted(all_idx) == list(range(len(small_cohort)))
    for part in s.values():
        frac = np.bincount(small_cohort.y[part], minlength=3) / len(part)
        assert np.abs(frac - np.bincount(small_cohort.y, minlength=3) / len(small_cohort)).max() < 0.1
    folds = kfold_indices(small_cohort, k=5, seed=0)
    tests = np.concatenate([te for _, te in folds])
    assert sorted(tests) == list(range(len(small_cohort)))
    assert all(len(np.intersect1d(tr, te)) == 0 for tr, te in folds)
    with pytest.raises(ValueError, match="fractions"):
        train_val_test_split(small_cohort, fractions=(0.5, 0.5, 0.5))


# --- lab reference ranges -------------------------------------------------------------------------
def test_flags_follow_the_written_rule():
    assert flag_value("alp", 100) == "normal"
    assert flag_value("alp", 131) == "high"
    assert flag_value("alp", 1200) == "critical"
    assert flag_value("haemoglobin", 125, sex="F") == "normal"
    assert flag_value("haemoglobin", 125, sex="M") == "low"
    assert flag_value("crp", float("nan")) == "not measured"
    assert reference_range("esr", "F", age=70)[1] == 40
    with pytest.raises(ValueError, match="negative"):
        flag_value("ldh", -1)
    with pytest.raises(KeyError, match="'ferritin'"):
        flag_value("ferritin", 10)


# --- real data that ships offline ---------------------------------------------------------------
def test_real_loaders():
    g = load_gbsg2()
    assert g.X.shape == (686, 8) and g.y.dtype.names == ("event", "time")
    b = load_breast_cancer_genes()
    assert b.X.shape[0] == 198 and b.X.shape[1] >= 76
    f = load_fna_breast_cancer()
    assert f.X.shape == (569, 30) and set(np.unique(f.y)) == {0, 1}
    w = load_whas500()
    assert w.X.shape[0] == 500 and w.y.dtype.names == ("event", "time") and 0 < w.y["event"].mean() < 1
