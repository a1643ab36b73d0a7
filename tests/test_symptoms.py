"""Symptom notes: the generator, finding extraction with negation, the symptoms stages (chapters 6 and 12).

medspaCy (the clinical NLP library whose ConText algorithm these rules follow) is not a test
dependency: on Python 3.11 it requires spaCy < 3.8, whose thinc is built for NumPy 1 and
fails to import beside the NumPy 2 this book is tested with. The rules are therefore checked
against the generator's truth and against the hand-annotated sentences below, each labelled
by reading it (the status a clinician reading the sentence would give each finding).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from oncolab.data import (
    SYMPTOM_FINDINGS,
    export_cohort,
    load_cohort,
    oracle,
    oracle_table,
    symptom_note,
    synthetic_cohort,
    train_val_test_split,
    validate_cohort,
)
from oncolab.metrics import macro_auc
from oncolab.text import (
    FINDINGS,
    FindingExtractor,
    extract_findings,
    find_mentions,
    finding_status,
    tfidf_model,
)

ALL = ("radiograph", "pathology", "labs", "genes", "clinical", "symptoms")

#: hand-annotated sentences: the status of every finding they mention (the rest: not mentioned)
ANNOTATED: list[tuple[str, dict[str, str]]] = [
    ("Patient denies night pain.", {"night_pain": "absent"}),
    ("No fever.", {"fever": "absent"}),
    ("Reports swelling of the knee.", {"swelling": "present"}),
    ("No fever, but reports swelling.", {"fever": "absent", "swelling": "present"}),
    ("Denies fever, weight loss or night pain.", {"fever": "absent", "weight_loss": "absent", "night_pain": "absent"}),
    ("Fever: none.", {"fever": "absent"}),
    ("Weight loss denied.", {"weight_loss": "absent"}),
    ("Pathological fracture cannot be ruled out.", {"pathological_fracture": "uncertain"}),
    ("Possible limited range of motion.", {"limited_motion": "uncertain"}),
    ("? swelling.", {"swelling": "uncertain"}),
    ("Her mother had a pathological fracture.", {}),
    ("Family history of weight loss in his father.", {}),
    ("Left thigh pain for 3 months, worse at night.", {"pain": "present", "night_pain": "present"}),
    ("Night pain noted.", {"night_pain": "present"}),
    ("Denies tiredness; complains of stiffness.", {"fatigue": "absent", "limited_motion": "present"}),
    ("No history of fracture. Reports fatigue.", {"pathological_fracture": "absent", "fatigue": "present"}),
    ("Negative for pyrexia.", {"fever": "absent"}),
    ("There is no palpable mass.", {"swelling": "absent"}),
    ("Unclear whether there is malaise.", {"fatigue": "uncertain"}),
    ("Swelling absent. Stiffness on examination.", {"swelling": "absent", "limited_motion": "present"}),
    ("Lost 6 kg over two months.", {"weight_loss": "present"}),
    ("Pain at night is not reported.", {"night_pain": "absent"}),
    ("Febrile episodes and lethargy.", {"fever": "present", "fatigue": "present"}),
    ("No swelling or stiffness, however reports pain that wakes her at night.",
     {"swelling": "absent", "limited_motion": "absent", "night_pain": "present"}),
    ("Fracture through the lesion.", {"pathological_fracture": "present"}),
    ("Without fever.", {"fever": "absent"}),
    ("May have unintentional weight loss.", {"weight_loss": "uncertain"}),
    ("Aching in the right shin, no swelling.", {"pain": "present", "swelling": "absent"}),
    ("Stiffness and swelling denied.", {"limited_motion": "absent", "swelling": "absent"}),
    ("Suspected pathological fracture; no fever.", {"pathological_fracture": "uncertain", "fever": "absent"}),
    ("Presents with discomfort, no fevers, possible lump.",
     {"pain": "present", "fever": "absent", "swelling": "uncertain"}),
    ("Reports no pain.", {"pain": "absent"}),
    ("Denies pain but has fevers.", {"pain": "absent", "fever": "present"}),
    ("A 40-year-old man referred with a lesion of the left tibia seen on imaging.", {}),
]


@pytest.fixture(scope="module")
def notes_cohort():
    """Tables only, with symptom notes: 1500 patients, enough to measure accuracy per finding."""
    return synthetic_cohort(1500, seed=11, modalities=["labs", "genes", "clinical", "symptoms"])


def _truth(cohort) -> pd.DataFrame:
    return cohort.truth[[f"finding_{k}" for k in FINDINGS]].set_axis(list(FINDINGS), axis=1)


# --------------------------------------------------------------------------------------------
# the generator
# --------------------------------------------------------------------------------------------
def test_symptoms_leave_every_other_table_as_it_was():
    kw = dict(n_patients=40, seed=7, image_size=64, slide_size=96, modality_missing={"genes": 0.2})
    base = synthetic_cohort(**kw)
    more = synthetic_cohort(**kw, modalities=ALL)
    assert "symptoms" not in base.tables and "symptoms" not in base.modalities
    assert more.modalities == ALL and list(more.symptoms.columns) == ["note"]
    for name, table in base.tables.items():
        assert table.to_csv() == more.tables[name][table.columns].to_csv(), name
    assert np.array_equal(base.radiograph(3), more.radiograph(3)) and np.array_equal(base.slide(3), more.slide(3))
    again = synthetic_cohort(**kw, modalities=ALL)
    assert again.fingerprint(images=2) == more.fingerprint(images=2)
    assert synthetic_cohort(**{**kw, "seed": 8}, modalities=ALL).symptoms.note.tolist() != more.symptoms.note.tolist()


def test_a_note_is_written_from_its_patients_own_stream():
    small = synthetic_cohort(10, seed=4, modalities=["clinical", "symptoms"])
    rng = np.random.default_rng([4, 10, 3])  # the notes' stream of seed 4, patient 3
    row, truth = small.clinical.iloc[3], _truth(small).iloc[3]
    note = symptom_note({k: bool(truth[k]) for k in FINDINGS}, rng, row.age, row.sex, row.site)
    assert note == small.symptoms.note.iloc[3]


def test_findings_follow_the_latent_aggressiveness(notes_cohort):
    truth = _truth(notes_cohort)
    by_class = truth.groupby(notes_cohort.labels["diagnosis"]).mean()
    for k in FINDINGS:   # every finding is commoner in malignant than in benign lesions
        assert by_class.at["malignant", k] > by_class.at["benign", k] + 0.05, k
    assert not (truth["night_pain"] > truth["pain"]).any(), "night pain only where there is pain"
    for k, (b, _) in SYMPTOM_FINDINGS.items():   # prevalence ordered as the intercepts say
        if k != "night_pain":
            assert (truth[k].mean() > 0.5) == (b > 0), k
    o = oracle(notes_cohort, n_sim=20_000)
    assert 0.65 < o["by_modality"]["symptoms"]["auc"] < o["bayes_auc"]


def test_oracle_table_names_the_signals_it_fuses(notes_cohort):
    """With notes the fused row reads five signals, and its label says so; without notes, four."""
    o = oracle(notes_cohort)
    t = oracle_table(notes_cohort)
    assert list(o["by_modality"]) == ["radiograph", "pathology", "labs", "genes", "symptoms"]
    fused = "radiograph + pathology + labs + genes + symptoms (fused)"
    assert list(t.index) == [f"{m} alone" for m in o["by_modality"]] + [fused]
    assert t.loc[fused, "Bayes macro AUC"] == o["bayes_auc"] and t.loc[fused, "Bayes accuracy"] == o["bayes_accuracy"]
    # the fused rule reads more than any one signal: on 1500 patients it beats each of them
    assert (t.loc[fused, "Bayes macro AUC"] > t.drop(index=fused)["Bayes macro AUC"]).all()
    # the same patients without notes: the symptom signal is neither listed nor fused
    plain = synthetic_cohort(1500, seed=11, modalities=["labs", "genes", "clinical"])
    t4 = oracle_table(plain)
    assert t4.index[-1] == "radiograph + pathology + labs + genes (fused)" and "symptoms alone" not in t4.index
    assert t4.iloc[-1]["Bayes macro AUC"] < t.loc[fused, "Bayes macro AUC"]


def test_missing_notes_are_empty_and_marked_absent():
    c = synthetic_cohort(300, seed=2, modalities=["clinical", "symptoms"], modality_missing={"symptoms": 0.3})
    absent = ~c.presence["symptoms"]
    assert 0.2 < absent.mean() < 0.4
    assert c.symptoms.note[absent].isna().all() and c.symptoms.note[~absent].notna().all()
    assert c.patient(int(np.flatnonzero(absent)[0])).symptoms is None
    assert c.patient(int(np.flatnonzero(~absent)[0])).symptoms.startswith(("A ", "An "))


def test_symptom_note_checks_its_input():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="missing \\['fatigue'"):
        symptom_note({k: False for k in FINDINGS if k != "fatigue"}, rng)
    with pytest.raises(ValueError, match="unknown site 'knee'"):
        symptom_note(dict.fromkeys(FINDINGS, False), rng, site="knee")
    with pytest.raises(ValueError, match="night_pain without pain"):
        symptom_note({**dict.fromkeys(FINDINGS, False), "night_pain": True}, rng)


def test_symptoms_folder_round_trip(tmp_path):
    c = synthetic_cohort(25, seed=1, image_size=64, slide_size=64, modalities=["radiograph", "labs", "symptoms"],
                         modality_missing={"symptoms": 0.2})
    folder = export_cohort(c, tmp_path / "c")
    assert (folder / "symptoms.csv").is_file()
    assert not [p for p in validate_cohort(folder) if p.level == "error"]
    back = load_cohort(folder)
    assert back.equals(c) and back.modalities == c.modalities
    assert back.presence["symptoms"].tolist() == c.presence["symptoms"].tolist()
    # a symptoms table without its note column is named
    (folder / "symptoms.csv").write_text("patient_id,text\nP00000,pain\n")
    problems = [str(p) for p in validate_cohort(folder) if p.level == "error"]
    assert any("symptoms.csv:1: has no 'note' column" in p for p in problems), problems


# --------------------------------------------------------------------------------------------
# extraction
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("note,expected", ANNOTATED, ids=[n[:40] for n, _ in ANNOTATED])
def test_extraction_agrees_with_the_hand_annotation(note, expected):
    got = finding_status(note)
    assert got == {k: expected.get(k, "not mentioned") for k in FINDINGS}


def test_mentions_name_their_trigger():
    m = find_mentions("Denies fever, weight loss or night pain. Her mother had a fracture. ? lump.")
    assert [(x.finding, x.status, x.trigger) for x in m] == [
        ("fever", "absent", "denies"), ("weight_loss", "absent", "denies"), ("night_pain", "absent", "denies"),
        ("pathological_fracture", "family", "mother"), ("swelling", "uncertain", "?")]
    assert [m[2].text, m[2].start] == ["night pain", 29]


def test_extraction_matches_the_truth_wherever_the_note_does_not_hedge(notes_cohort):
    notes = notes_cohort.symptoms.note
    truth = _truth(notes_cohort)
    got = extract_findings(notes)
    status = pd.DataFrame([finding_status(n) for n in notes], index=notes.index)
    sure = status != "uncertain"
    assert sure.to_numpy().mean() > 0.9
    # a note that states or negates a finding (or leaves it out) is read exactly
    assert ((got == truth) | ~sure).all().all()
    # accuracy per finding, hedges included (a hedge is counted as present): measured 0.970-0.993
    # on 2000 notes of seed 11; the hedges of absent findings (3 %) are the errors
    acc = (got == truth).mean()
    assert (acc > 0.95).all(), acc.to_dict()
    # counting hedges as absent trades errors on absent findings for errors on present ones
    acc0 = (extract_findings(notes, uncertain=0) == truth).mean()
    assert acc0["pain"] > acc["pain"] and acc0["pathological_fracture"] > acc["pathological_fracture"]


def test_negation_matters():
    """Without the context rules (every mention taken as present) the findings are much worse."""
    c = synthetic_cohort(400, seed=5, modalities=["clinical", "symptoms"])
    truth = _truth(c)
    naive = pd.DataFrame(0, index=truth.index, columns=list(FINDINGS))
    for pid, note in c.symptoms.note.items():
        for m in find_mentions(note):
            naive.at[pid, m.finding] = 1
    acc_naive, acc = (naive == truth).mean(), (extract_findings(c.symptoms.note) == truth).mean()
    assert (acc > acc_naive + 0.1).all(), (acc_naive.to_dict(), acc.to_dict())


def test_extractor_is_a_transformer_and_checks_input():
    notes = ["No fever, but reports swelling.", "Fever noted."]
    X = FindingExtractor().fit().transform(notes)
    assert X.shape == (2, len(FINDINGS)) and X.dtype == np.float64
    np.testing.assert_array_equal(X, extract_findings(notes).to_numpy())
    assert list(FindingExtractor().get_feature_names_out()) == list(FINDINGS)
    cfg, arrays = FindingExtractor(uncertain=0).state()
    assert cfg == {"uncertain": 0} and arrays == {}
    assert FindingExtractor.from_state(json.loads(json.dumps(cfg)), arrays).uncertain == 0
    with pytest.raises(ValueError, match="uncertain must be 0 or 1"):
        extract_findings(notes, uncertain=0.5)
    with pytest.raises(TypeError, match="a note must be a string"):
        extract_findings(["fine", 3])
    with pytest.raises(TypeError, match="not one string"):
        extract_findings("No fever.")


def test_findings_and_tfidf_classifiers_are_below_the_oracle(notes_cohort):
    """The chapter's comparison: findings + logistic regression, TF-IDF + logistic regression, the ceiling."""
    split = train_val_test_split(notes_cohort, seed=0)
    tr, te = split["train"], split["test"]
    y, notes = notes_cohort.y, notes_cohort.symptoms.note.to_numpy()
    F = extract_findings(notes).to_numpy()
    p_find = make_pipeline(LogisticRegression(max_iter=2000)).fit(F[tr], y[tr]).predict_proba(F[te])
    p_text = tfidf_model().fit(list(notes[tr]), y[tr]).predict_proba(list(notes[te]))
    auc_find, auc_text = macro_auc(y[te], p_find), macro_auc(y[te], p_text)
    ceiling = oracle(notes_cohort.subset(te), n_sim=1000)["by_modality"]["symptoms"]["auc"]
    assert 0.6 < auc_find < ceiling and 0.6 < auc_text < ceiling, (auc_find, auc_text, ceiling)


# --------------------------------------------------------------------------------------------
# the stages of the medfusion preset: symptoms (findings, tfidf), labs forest, genes svm
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def stage_data():
    c = synthetic_cohort(150, seed=6, modalities=["labs", "genes", "clinical", "symptoms"],
                         modality_missing={"symptoms": 0.1, "labs": 0.1})
    return c, np.arange(110), c.subset(np.arange(110, 150))


def _round_trip(stage, raw):
    from oncolab.pipeline.stages import stage_class

    config, arrays = stage.state()
    back = stage_class(stage.modality, stage.name).from_state(json.loads(json.dumps(config)), arrays)
    np.testing.assert_allclose(back.transform(raw), stage.transform(raw), atol=1e-12)
    assert back.feature_names() == stage.feature_names()
    return back


def test_findings_stage_standardises_the_extracted_findings(stage_data):
    from oncolab.pipeline.stages import SymptomsFindings, Targets

    c, rows, _ = stage_data
    raw, usable, notes = SymptomsFindings.read(c, None)
    assert notes == [] and usable.tolist() == c.presence["symptoms"].tolist()
    assert all((n is None) == (not u) for n, u in zip(raw, usable))
    fit_rows = rows[usable[rows]]
    stage = SymptomsFindings()
    Z = stage.fit_transform(raw, fit_rows, Targets(c.y, c.classes))
    assert stage.feature_names() == list(FINDINGS) and Z.shape == (len(c), len(FINDINGS))
    F = extract_findings(c.symptoms.note[usable]).to_numpy(float)
    np.testing.assert_allclose(Z[usable], (F - stage.mean_) / stage.scale_)
    np.testing.assert_allclose(Z[fit_rows].mean(0), 0, atol=1e-12)
    assert np.all(Z[~usable] == 0)
    _round_trip(stage, raw)


def test_symptom_text_stage_round_trip(stage_data):
    from oncolab.pipeline.stages import SymptomsText, Targets

    c, rows, _ = stage_data
    raw, usable, _ = SymptomsText.read(c, None)
    stage = SymptomsText(components=6)
    fit_rows = rows[usable[rows]]
    Z = stage.fit_transform(raw, fit_rows, Targets(c.y, c.classes))
    assert Z.shape == (len(c), 6) and np.all(Z[~usable] == 0)
    np.testing.assert_allclose(Z[fit_rows].std(0, ddof=1), 1, rtol=1e-6)   # unit variance on the fitting patients
    _round_trip(stage, raw)


@pytest.mark.parametrize("name", ["forest", "svm"])
def test_classical_stages_are_cross_fitted_and_round_trip(stage_data, name):
    from oncolab.pipeline.stages import GenesSVM, LabsForest, Targets

    cls = {"forest": LabsForest, "svm": GenesSVM}[name]
    c, rows, _ = stage_data
    raw, usable, _ = cls.read(c, None)
    stage = cls(folds=3, seed=1) if name == "forest" else cls(components=6, folds=3, seed=1)
    fit_rows = rows[usable[rows]]
    targets = Targets(c.y, c.classes)
    Z = stage.fit_transform(raw, fit_rows, targets)
    assert Z.shape == (len(c), 3) and len(stage.models) == 3
    np.testing.assert_allclose(np.exp(Z[usable]).sum(1), 1, atol=1e-4)
    assert np.all(Z[~usable] == 0)
    # each fitting patient gets the output of the fold model that did not see it
    from oncolab.pipeline.stages import crossfit_folds

    inputs = stage.prepare(raw, fit_rows, None)
    for model, (fitted, held) in zip(stage.models, crossfit_folds(fit_rows, c.y, 3, 1)):
        np.testing.assert_allclose(Z[held], np.log(np.clip(model.predict_proba(inputs[held]), 1e-6, 1)))
        assert not set(held) & set(fitted)
    # and a new patient the mean of the fold models
    rest = np.setdiff1d(np.flatnonzero(usable), fit_rows)
    mean = np.mean([m.predict_proba(inputs[rest]) for m in stage.models], axis=0)
    np.testing.assert_allclose(Z[rest], np.log(np.clip(mean, 1e-6, 1)))
    back = _round_trip(stage, raw)
    assert back.transformer.state()[0] == stage.transformer.state()[0]


def test_classical_stages_learn_through_the_system_with_hybrid_fusion(stage_data, tmp_path):
    """Labs random forest + genes SVM + clinical one-hot, hybrid fusion: fit, save, load, same predictions."""
    from oncolab.pipeline import OncoLabSystem

    c, rows, test = stage_data
    cfg = {"modalities": ["labs", "genes", "clinical"], "labs_encoder": "forest", "genes_encoder": "svm",
           "fusion": "hybrid", "epochs": 60, "patience": 60, "hidden": 16, "progress": False}
    s = OncoLabSystem(cfg).fit(c.subset(rows))
    assert s.dims_ == {"labs": 3, "genes": 3, "clinical": s.dims_["clinical"]}
    assert s.model.fusion.early == ("labs", "genes", "clinical") and s.model.fusion.late == ()
    s.save(tmp_path / "m")
    pred = s.predict(test)
    pd.testing.assert_frame_equal(pred, OncoLabSystem.load(tmp_path / "m").predict(test))
    p = pred[[f"p_{k}" for k in c.classes]].to_numpy()
    assert macro_auc(test.y, p) > 0.6


# --------------------------------------------------------------------------------------------
# the medfusion preset
# --------------------------------------------------------------------------------------------
def _config_reads_symptoms() -> bool:
    from dataclasses import fields

    from oncolab.pipeline import SystemConfig

    return "symptoms_encoder" in {f.name for f in fields(SystemConfig)}


needs_symptoms_setting = pytest.mark.skipif(not _config_reads_symptoms(),
                                            reason="SystemConfig has no symptoms_encoder setting")


@needs_symptoms_setting
@pytest.mark.slow
def test_medfusion_preset_fits_saves_and_masks_a_missing_note(tmp_path):
    from oncolab.pipeline import OncoLabSystem, preset

    cfg = preset("medfusion", cnn_epochs=1, mil_epochs=3, folds=2, epochs=30, patience=30, hidden=16,
                 progress=False)
    assert cfg.modalities == ALL and cfg.fusion == "hybrid"
    assert (cfg.radiograph_encoder, cfg.labs_encoder, cfg.genes_encoder, cfg.symptoms_encoder) == (
        "cnn", "forest", "svm", "findings")
    c = synthetic_cohort(90, seed=3, image_size=96, slide_size=128, modalities=ALL)
    s = OncoLabSystem(cfg).fit(c.subset(np.arange(70)))
    f = s.model.fusion
    assert f.late == ("radiograph", "pathology") and f.early == ("labs", "genes", "clinical", "symptoms")
    assert s.feature_names()["symptoms"] == [f"symptoms: {k}" for k in FINDINGS]
    test = c.subset(np.arange(70, 90))
    s.save(tmp_path / "m")
    pred = s.predict(test)
    pd.testing.assert_frame_equal(pred, OncoLabSystem.load(tmp_path / "m").predict(test))
    # a cohort without notes: the symptoms are masked, the other modalities predict
    without = synthetic_cohort(90, seed=3, image_size=96, slide_size=128).subset(np.arange(70, 90))
    with pytest.warns(UserWarning, match="symptoms"):
        masked = s.predict(without, missing_modalities="mask")
    assert (masked["modalities_used"] == "radiograph,pathology,labs,genes,clinical").all()
