"""The cohort's tabular table and the fold-fitted preprocessor."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.pipeline import make_pipeline

from oncolab.features import ClinicalFeatures, GeneFeatures, LabFeatures
from oncolab.survival import CoxPH, calibration_at_horizon, cohort_tabular, tabular_preprocessor


def test_cohort_tabular_holds_the_raw_values(small_cohort):
    X = cohort_tabular(small_cohort)
    labs, genes, clin = small_cohort.labs, small_cohort.genes, small_cohort.clinical
    assert len(X) == len(small_cohort) and X.index.equals(small_cohort.ids)
    assert X.shape[1] == labs.shape[1] + genes.shape[1] + clin.shape[1]
    np.testing.assert_array_equal(X[f"genes:{genes.columns[0]}"], genes.iloc[:, 0])
    lab = labs.columns[0]
    np.testing.assert_array_equal(X[f"labs:{lab}"], labs[lab])  # NaN kept: the preprocessor fills and flags it
    assert X["clinical:sex"].dtype == object
    with pytest.raises(ValueError, match="modalities"):
        cohort_tabular(small_cohort, ["radiograph"])


def test_preprocessor_routes_cohort_columns_through_oncolab_features(small_cohort):
    """Fitted on the training rows only; each modality's block equals its transformer's output."""
    X = cohort_tabular(small_cohort)
    tr, te = X.iloc[:60], X.iloc[60:]
    p = tabular_preprocessor().fit(tr)
    Z = p.transform(te)
    assert not np.isnan(Z).any()
    names = list(p.get_feature_names_out())
    c = small_cohort
    blocks = {"labs": LabFeatures().fit(c.labs.iloc[:60]).transform(c.labs.iloc[60:]),
              "genes": GeneFeatures().fit(c.genes.iloc[:60]).transform(c.genes.iloc[60:]),
              "clinical": ClinicalFeatures().fit(c.clinical.iloc[:60]).transform(c.clinical.iloc[60:])}
    start = 0
    for m, block in blocks.items():
        cols = [i for i, n in enumerate(names) if n.startswith(f"{m}:")]
        assert cols == list(range(start, start + block.shape[1]))
        np.testing.assert_allclose(Z[:, cols], block, rtol=1e-12, atol=1e-12)
        start += block.shape[1]
    assert start == Z.shape[1]
    assert "labs:ldh_missing" in names and "clinical:sex=F" in names


def test_preprocessor_on_another_table_imputes_scales_and_drops_a_reference():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"size": rng.normal(20, 5, 40), "grade": rng.choice(["I", "II", "III"], 40)})
    X.loc[:4, "size"] = np.nan
    tr, te = X.iloc[:30], X.iloc[30:]
    p = tabular_preprocessor().fit(tr)
    names = list(p.get_feature_names_out())
    assert names == ["size", "missingindicator_size", "grade_II", "grade_III"]
    Z = p.transform(te)
    med = tr["size"].median()
    filled = tr["size"].fillna(med)
    np.testing.assert_allclose(Z[:, 0], (te["size"].fillna(med) - filled.mean()) / filled.std(ddof=0))


def test_preprocessor_in_a_cox_pipeline_and_cloned(small_cohort):
    X, y = cohort_tabular(small_cohort, ["labs", "clinical"]), small_cohort.survival_y()
    model = clone(make_pipeline(tabular_preprocessor(), CoxPH(ties="efron", alpha=10.0))).fit(X.iloc[:60], y[:60])
    risk = model.predict(X.iloc[60:])
    assert risk.shape == (len(X) - 60,) and np.isfinite(risk).all()
    np.testing.assert_array_equal(model.predict(X.iloc[60:, ::-1]), risk)  # columns found by name
    with pytest.raises(ValueError, match=r"labs:crp"):
        model.predict(X.iloc[60:].drop(columns="labs:crp"))


def test_calibration_rejects_horizon_beyond_follow_up(small_cohort):
    y = small_cohort.survival_y()
    with pytest.raises(ValueError, match="horizon"):
        calibration_at_horizon(y, np.full(len(y), 0.5), y["time"].max() + 10)
