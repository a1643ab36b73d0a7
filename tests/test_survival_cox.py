"""Our Cox model (first principles) against scikit-survival and lifelines."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sksurv.linear_model import CoxPHSurvivalAnalysis
from sksurv.linear_model.coxph import CoxPHOptimizer
from sksurv.preprocessing import OneHotEncoder

from oncolab.data import survival_array
from oncolab.survival import CoxPH, cox_partial_likelihood


@pytest.fixture(scope="module")
def gbsg2():
    from oncolab.data import load_gbsg2

    d = load_gbsg2()
    X = d.X.copy()
    X["tgrade"] = X["tgrade"].map(len).astype(int)
    return OneHotEncoder().fit_transform(X), d.y


def _cohort_xy(cohort):
    X = np.column_stack([np.log1p(cohort.genes.to_numpy()[:, :6]), cohort.clinical["age"].to_numpy()])
    X = (X - X.mean(0)) / X.std(0)
    y = cohort.survival_y()
    y["time"] = np.round(y["time"])  # make ties, so that Breslow and Efron differ
    return X, y


@pytest.mark.parametrize("ties", ["breslow", "efron"])
def test_coefficients_equal_sksurv_on_gbsg2(gbsg2, ties):
    X, y = gbsg2
    ours = CoxPH(ties=ties).fit(X, y)
    ref = CoxPHSurvivalAnalysis(ties=ties).fit(X, y)
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=1e-5, rtol=0)
    assert ours.converged_


@pytest.mark.parametrize("ties", ["breslow", "efron"])
def test_coefficients_equal_sksurv_on_cohort(small_cohort, ties):
    X, y = _cohort_xy(small_cohort)
    ours = CoxPH(ties=ties).fit(X, y)
    ref = CoxPHSurvivalAnalysis(ties=ties).fit(X, y)
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=1e-5, rtol=0)
    # survival curves from the Breslow baseline agree too
    times = np.percentile(y["time"], [10, 50, 80])
    S_ref = np.array([[f(t) for t in times] for f in ref.predict_survival_function(X)])
    np.testing.assert_allclose(ours.predict_survival(X, times), S_ref, atol=1e-5)
    assert ours.score(X, y) == pytest.approx(ref.score(X, y), abs=1e-9)


def test_penalised_fit_matches_sksurv_alpha(small_cohort):
    X, y = _cohort_xy(small_cohort)
    ours = CoxPH(ties="efron", alpha=5.0).fit(X, y)
    ref = CoxPHSurvivalAnalysis(ties="efron", alpha=5.0).fit(X, y)
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=1e-5, rtol=0)


@pytest.mark.parametrize("ties", ["breslow", "efron"])
def test_loglik_gradient_hessian(small_cohort, ties):
    X, y = _cohort_xy(small_cohort)
    b = np.random.default_rng(0).normal(scale=0.3, size=X.shape[1])
    ll, g, H = cox_partial_likelihood(b, X, y["time"], y["event"], ties)
    opt = CoxPHOptimizer(X, y["event"], y["time"], np.zeros(X.shape[1]), ties)
    assert -ll == pytest.approx(opt.nlog_likelihood(b) * len(y), rel=1e-12)
    opt.update(b)
    np.testing.assert_allclose(-g, opt.gradient * len(y), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(-H, opt.hessian * len(y), rtol=1e-9, atol=1e-9)


def test_standard_errors_match_lifelines(gbsg2):
    from lifelines import CoxPHFitter

    X, y = gbsg2
    ours = CoxPH(ties="efron").fit(X, y).summary()
    df = X.copy()
    df["T"] = y["time"]
    df["E"] = y["event"]
    ll = CoxPHFitter().fit(df, "T", "E").summary
    np.testing.assert_allclose(ours["coef"], ll.loc[ours.index, "coef"], atol=1e-5)
    np.testing.assert_allclose(ours["se"], ll.loc[ours.index, "se(coef)"], rtol=1e-4)
    np.testing.assert_allclose(ours["p"], ll.loc[ours.index, "p"], rtol=1e-3, atol=1e-10)


def test_separation_warns_and_names_the_covariate():
    rng = np.random.default_rng(0)
    n = 60
    t = rng.exponential(size=n)
    sep = -np.argsort(np.argsort(t)).astype(float)  # perfectly orders the times
    X = np.column_stack([rng.normal(size=n), sep])
    import pandas as pd

    Xdf = pd.DataFrame(X, columns=["noise", "leaky"])
    with pytest.warns(ConvergenceWarning, match="'leaky'"):
        CoxPH(max_iter=30).fit(Xdf, survival_array(np.ones(n, bool), t))


def test_bad_input_errors():
    y = survival_array([True, False, True], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="NaN"):
        CoxPH().fit(np.array([[1.0], [np.nan], [2.0]]), y)
    with pytest.raises(ValueError, match="rows"):
        CoxPH().fit(np.ones((4, 1)), y)
    with pytest.raises(ValueError, match="ties"):
        CoxPH(ties="exact").fit(np.ones((3, 1)), y)
    bad = np.empty(3, dtype=[("event", int), ("time", float)])
    bad["event"] = [1, 0, 1]
    bad["time"] = [1, 2, 3]
    with pytest.raises(ValueError, match="boolean"):
        CoxPH().fit(np.ones((3, 1)), bad)
    with pytest.raises(RuntimeError, match="not fitted"):
        CoxPH().predict(np.ones((3, 1)))


def test_works_in_a_pipeline_and_cross_val(gbsg2):
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = gbsg2
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        scores = cross_val_score(make_pipeline(StandardScaler(), CoxPH(ties="efron")), X, y, cv=3)
    assert len(scores) == 3 and (scores > 0.6).all()
