"""Kaplan-Meier, Nelson-Aalen and log-rank against scikit-survival and lifelines."""

from __future__ import annotations

import numpy as np
import pytest
from sksurv.compare import compare_survival
from sksurv.nonparametric import kaplan_meier_estimator, nelson_aalen_estimator

from oncolab.data import survival_array
from oncolab.survival import (
    kaplan_meier,
    logrank_test,
    nelson_aalen,
    plot_risk_groups,
    risk_groups,
)


def _data(seed=0, n=200):
    rng = np.random.default_rng(seed)
    t = np.round(rng.exponential(10, n))
    e = rng.random(n) < 0.7
    return t, e


def test_kaplan_meier_matches_sksurv_with_ci():
    t, e = _data()
    km = kaplan_meier(t, e)
    x, s, ci = kaplan_meier_estimator(e, t, conf_type="log-log")
    np.testing.assert_allclose(km.time, x)
    np.testing.assert_allclose(km.survival, s, atol=1e-12)
    np.testing.assert_allclose(km.ci_low, ci[0], atol=1e-12)
    np.testing.assert_allclose(km.ci_high, ci[1], atol=1e-12)
    xr, sr = kaplan_meier_estimator(e, t, reverse=True)
    np.testing.assert_allclose(kaplan_meier(t, e, reverse=True).survival, sr, atol=1e-12)


def test_kaplan_meier_matches_lifelines():
    from lifelines import KaplanMeierFitter

    t, e = _data(1)
    km = kaplan_meier(t, e)
    kmf = KaplanMeierFitter().fit(t, e)
    np.testing.assert_allclose(km(km.time), kmf.survival_function_at_times(km.time).to_numpy(), atol=1e-12)
    assert km.median() == kmf.median_survival_time_


def test_kaplan_meier_by_hand_ten_patients():
    t = np.array([2, 3, 3, 5, 6, 7, 9, 10, 12, 15], float)
    e = np.array([1, 1, 0, 1, 0, 1, 1, 0, 1, 0], bool)
    km = kaplan_meier(t, e)
    # S(3) = (1 - 1/10)(1 - 1/9); S(5) = S(3)(1 - 1/7)
    assert km(3) == pytest.approx(0.9 * 8 / 9)
    assert km(5) == pytest.approx(0.9 * 8 / 9 * 6 / 7)
    assert km(1.0) == 1.0


def test_nelson_aalen_matches_sksurv():
    t, e = _data(2)
    x, h = nelson_aalen(t, e)
    xr, hr = nelson_aalen_estimator(e, t)
    np.testing.assert_allclose(x, xr)
    np.testing.assert_allclose(h, hr, atol=1e-12)


@pytest.mark.parametrize("k", [2, 3, 4])
def test_logrank_matches_sksurv_and_lifelines(k):
    from lifelines.statistics import multivariate_logrank_test

    t, e = _data(3, n=240)
    g = np.repeat(np.arange(k), 240 // k)
    t = t + g  # a real difference between groups
    res = logrank_test(t, e, g)
    chi2, p = compare_survival(survival_array(e, t), g)
    assert res["statistic"] == pytest.approx(chi2, rel=1e-10)
    assert res["p_value"] == pytest.approx(p, rel=1e-8)
    ll = multivariate_logrank_test(t, g, e)
    assert res["statistic"] == pytest.approx(ll.test_statistic, rel=1e-8)


def test_logrank_needs_two_groups_and_events():
    t, e = _data(4)
    with pytest.raises(ValueError, match="at least two groups"):
        logrank_test(t, e, np.zeros(len(t)))
    with pytest.raises(ValueError, match="censored"):
        logrank_test(t, np.zeros(len(t), bool), np.arange(len(t)) % 2)


def test_risk_groups_and_plot():
    rng = np.random.default_rng(0)
    x = rng.normal(size=300)
    t = rng.exponential(np.exp(-x))
    y = survival_array(np.ones(300, bool), t)
    g = risk_groups(x, 3)
    assert set(g) == {"low", "intermediate", "high"}
    assert x[g == "high"].min() >= x[g == "low"].max()
    ax, groups, lr = plot_risk_groups(y, x, n_groups=3)
    assert lr["p_value"] < 1e-6
    assert "log-rank p" in ax.get_title()
    assert len(ax.get_lines()) == 3
