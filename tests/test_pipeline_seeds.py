"""The seed systems compared on the same patients: oncolab.pipeline.seeds."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from oncolab.data import MODALITIES, oracle, synthetic_cohort, train_val_test_split
from oncolab.pipeline import OncoLabSystem, preset
from oncolab.pipeline.seeds import SEED_RESULTS, compare_seed_systems, seed_systems_table
from oncolab.pipeline.system import outcome_strata

TINY = dict(cnn_epochs=1, detector_epochs=1, detector_imgsz=64, mil_epochs=2, tile_epochs=1, max_tiles=4,
            bert_epochs=1, epochs=20, patience=20, hidden=8, folds=2)
NAMES = ("handcrafted", "oncovision", "medfusion")


@pytest.fixture(scope="module")
def cohort():
    return synthetic_cohort(80, seed=1, image_size=96, slide_size=128, modalities=[*MODALITIES, "symptoms"])


@pytest.fixture(scope="module")
def table(cohort):
    return compare_seed_systems(cohort, names=NAMES, seed=3, n_boot=30, overrides=TINY)


@pytest.mark.slow
def test_structure(cohort, table):
    assert list(table.index) == [*NAMES, "oracle"]
    n_test = len(train_val_test_split(outcome_strata(cohort), fractions=(0.8, 0.0, 0.2), seed=3)["test"])
    assert (table["n"] == n_test).all() and len(table.attrs["test_ids"]) == n_test
    assert table.loc["medfusion", "modalities"].endswith("symptoms") and table.loc["medfusion", "fusion"] == "hybrid"
    systems = table.drop(index="oracle")
    for met in ("macro_auc", "macro_f1", "macro_precision"):
        assert systems[met].between(0, 1).all() and (systems[f"{met}_low"] <= systems[f"{met}_high"]).all()
    # every preset here learns a risk; the C-index is there exactly when the task has a risk head
    assert (systems["task"] == "multitask").all() and systems["c_index"].notna().all()
    # the hand-made finder is a learned detector: its mAP is scored; oncovision has no radiograph
    assert np.isfinite(table.loc["handcrafted", "detector_map50"]) and np.isnan(table.loc["oncovision",
                                                                                         "detector_map50"])
    assert set(table.attrs["fit_seconds"]) == set(NAMES)
    assert set(systems["best_single"]) <= set(MODALITIES) | {"symptoms"}


@pytest.mark.slow
def test_rows_are_what_the_system_scores_on_the_same_split(cohort, table):
    parts = train_val_test_split(outcome_strata(cohort), fractions=(0.8, 0.0, 0.2), seed=3)
    test = cohort.subset(parts["test"])
    assert [str(i) for i in test.ids] == table.attrs["test_ids"]
    s = OncoLabSystem(preset("handcrafted", seed=3, progress=False, **TINY)).fit(cohort.subset(parts["train"]))
    ev = s.evaluate(test, n_boot=30, seed=3).set_index("metric")
    for met in ("macro_auc", "macro_f1", "macro_precision", "c_index"):
        assert table.loc["handcrafted", met] == pytest.approx(ev.at[met, "value"], abs=1e-12)
        assert table.loc["handcrafted", f"{met}_low"] == pytest.approx(ev.at[met, "ci_low"], abs=1e-12)


@pytest.mark.slow
def test_paired_difference_is_the_difference_of_the_point_values(table):
    ref = table.loc["handcrafted"]
    assert ref["auc_minus_reference"] == 0 and ref["c_index_minus_reference"] == 0
    for name in NAMES[1:]:
        r = table.loc[name]
        assert r["auc_minus_reference"] == pytest.approx(r["macro_auc"] - ref["macro_auc"], abs=1e-12)
        assert r["c_index_minus_reference"] == pytest.approx(r["c_index"] - ref["c_index"], abs=1e-12)
        assert r["auc_minus_reference_low"] <= r["auc_minus_reference_high"]
        assert 0 < r["auc_minus_reference_p"] <= 1


@pytest.mark.slow
def test_oracle_row(cohort, table):
    test = cohort.subset(train_val_test_split(outcome_strata(cohort), fractions=(0.8, 0.0, 0.2), seed=3)["test"])
    o = oracle(test)
    row = table.loc["oracle"]
    assert row["macro_auc"] == pytest.approx(o["bayes_auc"]) and row["c_index"] == pytest.approx(o["c_index"])
    assert np.isnan(row[["macro_f1", "macro_precision", "auc_minus_reference"]].astype(float)).all()
    assert "Bayes" in row["note"]


@pytest.mark.slow
def test_same_seed_same_frame_and_rows_do_not_depend_on_the_others(cohort, table):
    again = compare_seed_systems(cohort, names=("handcrafted", "oncovision"), seed=3, n_boot=30, overrides=TINY)
    pd.testing.assert_frame_equal(again, table.loc[["handcrafted", "oncovision", "oracle"]])


@pytest.mark.slow
def test_seed_systems_table_sets_the_seeds_numbers_beside_ours(table):
    shown = seed_systems_table(table)
    assert list(shown.index) == list(table.index)
    assert shown.at["handcrafted", "macro AUC minus handcrafted"] == ""
    assert shown.at["oncovision", "macro AUC minus handcrafted"].startswith(
        f"{table.loc['oncovision', 'auc_minus_reference']:+.3f}")
    # only the seeds that report a number show one; none is made up
    assert shown.at["oncovision", "seed: macro AUC"] == "" and shown.at["oncovision", "seed: source"]
    gap = table.loc["medfusion", "fusion_minus_best_single"]
    assert shown.at["medfusion", "fusion vs best single modality"].startswith("below" if gap < 0 else "above")
    # the table read back from a CSV file gives the same rows
    back = pd.read_csv(io.StringIO(table.to_csv()), index_col="system")
    pd.testing.assert_frame_equal(seed_systems_table(back, reference="handcrafted"), shown)
    assert SEED_RESULTS["bone_tumor"]["bibkey"] == "sang2025multimodal"
    with pytest.raises(ValueError, match="lacks the columns"):
        seed_systems_table(table.drop(columns=["best_single"]))


@pytest.mark.parametrize("names, match", [
    (("handcrafted", "no_such_preset"), "unknown preset 'no_such_preset'"),
    (("handcrafted", "oncovision", "oncovision"), "named twice"),
    (("handcrafted", "chimera"), "prostate cohort"),
    (("oncovision",), "reference 'handcrafted' is not among names"),
    ("handcrafted", "sequence of preset names"),
    ((), "names is empty"),
])
def test_bad_names_raise(cohort, names, match):
    with pytest.raises(ValueError, match=match):
        compare_seed_systems(cohort, names=names)


def test_bad_settings_raise(cohort):
    no_notes = synthetic_cohort(40, seed=1, image_size=64, slide_size=64)
    with pytest.raises(ValueError, match="preset 'medfusion' reads the 'symptoms' modality"):
        compare_seed_systems(no_notes, names=("handcrafted", "medfusion"))
    with pytest.raises(ValueError, match="test_fraction must lie in"):
        compare_seed_systems(cohort, names=("handcrafted",), test_fraction=1.0)
    with pytest.raises(ValueError, match="n_boot must be a non-negative integer, got -1"):
        compare_seed_systems(cohort, names=("handcrafted",), n_boot=-1)
    with pytest.raises(ValueError, match="overrides name the preset 'bone_tumor'"):
        compare_seed_systems(cohort, names=("handcrafted",), overrides={"bone_tumor": {"epochs": 1}})
    with pytest.raises(ValueError, match="unknown"):
        compare_seed_systems(cohort, names=("handcrafted",), overrides={"no_such_setting": 1})
