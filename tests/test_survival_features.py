"""The cohort's tabular table and the fold-fitted preprocessor."""

from __future__ import annotations

import numpy as np
import pytest

from oncolab.survival import calibration_at_horizon, cohort_tabular, tabular_preprocessor


def test_cohort_tabular_columns_and_scales(small_cohort):
    X = cohort_tabular(small_cohort)
    labs, genes = small_cohort.labs, small_cohort.genes
    assert len(X) == len(small_cohort)
    assert X.shape[1] == labs.shape[1] + genes.shape[1] + small_cohort.clinical.shape[1]
    np.testing.assert_allclose(X[f"genes:{genes.columns[0]}"], np.log1p(genes.iloc[:, 0]))
    lab = labs.columns[0]
    np.testing.assert_array_equal(X[f"labs:{lab}"].isna(), labs[lab].isna())  # NaN kept for the imputer
    assert X["clinical:sex"].dtype == object
    with pytest.raises(ValueError, match="modalities"):
        cohort_tabular(small_cohort, ["radiograph"])


def test_preprocessor_is_fitted_on_training_rows_only(small_cohort):
    X = cohort_tabular(small_cohort, ["labs", "clinical"])
    tr, te = X.iloc[:60], X.iloc[60:]
    p = tabular_preprocessor().fit(tr)
    Z = p.transform(te)
    assert not np.isnan(Z).any()
    names = list(p.get_feature_names_out())
    # medians and scales come from the training rows
    col = names.index("labs:ldh")
    med = np.nanmedian(tr["labs:ldh"])
    filled = np.where(te["labs:ldh"].isna(), med, te["labs:ldh"])
    mu, sd = np.nanmean(np.where(tr["labs:ldh"].isna(), med, tr["labs:ldh"])), np.std(np.where(tr["labs:ldh"].isna(), med, tr["labs:ldh"]))
    np.testing.assert_allclose(Z[:, col], (filled - mu) / sd, rtol=1e-6)
    # one category of each text column is the reference (no collinear dummies)
    n_sites = tr["clinical:site"].nunique()
    assert sum(n.startswith("clinical:site_") for n in names) == n_sites - 1


def test_calibration_rejects_horizon_beyond_follow_up(small_cohort):
    y = small_cohort.survival_y()
    with pytest.raises(ValueError, match="horizon"):
        calibration_at_horizon(y, np.full(len(y), 0.5), y["time"].max() + 10)
