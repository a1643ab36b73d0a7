"""Our survival metrics against scikit-survival's, on random data with ties and on the cohort."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sksurv import metrics as skm

from oncolab.data import survival_array
from oncolab.survival import (
    brier_score,
    calibration_at_horizon,
    censoring_survival,
    concordance_counts,
    harrell_c,
    integrated_brier_score,
    td_auc,
    uno_c,
)


def _data(seed, n=300, ties=True):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    t = rng.exponential(np.exp(-0.7 * x)) * 10
    c = rng.uniform(2, 25, size=n)
    time = np.minimum(t, c)
    if ties:
        time = np.round(time)
    event = t <= c
    risk = x + 0.5 * rng.normal(size=n)
    if ties:
        risk = np.round(risk, 1)
    return survival_array(event, time), risk


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 40), st.integers(0, 10_000), st.booleans())
def test_harrell_c_equals_sksurv_exactly(n, seed, integer_risk):
    rng = np.random.default_rng(seed)
    time = rng.integers(0, 6, n).astype(float)
    event = rng.random(n) < 0.6
    event[0] = True
    risk = rng.integers(0, 3, n).astype(float) if integer_risk else rng.normal(size=n)
    try:
        with np.errstate(invalid="ignore"):
            ref = skm.concordance_index_censored(event, time, risk)
    except ValueError:
        ref = (np.nan,)
    if np.isnan(ref[0]):  # no comparable pairs: ours refuses with a clear error
        with pytest.raises(ValueError, match="no comparable pairs"):
            harrell_c(time, event, risk)
        return
    c = concordance_counts(time, event, risk)
    assert harrell_c(time, event, risk) == ref[0]
    assert (c["concordant"], c["discordant"], c["tied_risk"], c["tied_time"]) == tuple(ref[1:])


@pytest.mark.parametrize("ties", [True, False])
def test_harrell_c_on_larger_data(ties):
    y, risk = _data(1, n=2000, ties=ties)
    ref = skm.concordance_index_censored(y["event"], y["time"], risk)[0]
    assert harrell_c(y["time"], y["event"], risk) == ref


@pytest.mark.parametrize("tau", [None, 15.0])
def test_uno_c_matches_sksurv(tau):
    y_tr, _ = _data(2)
    y_te, risk = _data(3)
    y_te["time"] = np.minimum(y_te["time"], y_tr["time"].max())
    ref = skm.concordance_index_ipcw(y_tr, y_te, risk, tau=tau)[0]
    assert abs(uno_c(y_tr, y_te, risk, tau=tau) - ref) < 1e-6


def test_td_auc_and_mean_match_sksurv():
    y_tr, _ = _data(4)
    y_te, risk = _data(5)
    y_te["time"] = np.minimum(y_te["time"], y_tr["time"].max())
    times = np.percentile(y_te["time"][y_te["event"]], [10, 30, 50, 70])
    auc, mean = td_auc(y_tr, y_te, risk, times)
    ref_auc, ref_mean = skm.cumulative_dynamic_auc(y_tr, y_te, risk, times)
    np.testing.assert_allclose(auc, ref_auc, atol=1e-6)
    assert abs(mean - ref_mean) < 1e-6
    # time-dependent risk: one column per time
    R = risk[:, None] * np.array([1.0, 0.5, 2.0, 1.5])[None] + np.arange(4)
    auc2, mean2 = td_auc(y_tr, y_te, R, times)
    ref2 = skm.cumulative_dynamic_auc(y_tr, y_te, R, times)
    np.testing.assert_allclose(auc2, ref2[0], atol=1e-6)
    assert abs(mean2 - ref2[1]) < 1e-6


def test_brier_and_ibs_match_sksurv():
    y_tr, _ = _data(6)
    y_te, risk = _data(7)
    y_te["time"] = np.minimum(y_te["time"], y_tr["time"].max())
    times = np.linspace(np.percentile(y_te["time"], 5), np.percentile(y_te["time"], 85), 15)
    S = np.exp(-np.exp(risk)[:, None] * times[None] / 12)
    t1, bs = brier_score(y_tr, y_te, S, times)
    t2, ref = skm.brier_score(y_tr, y_te, S, times)
    np.testing.assert_allclose(t1, t2)
    np.testing.assert_allclose(bs, ref, atol=1e-6)
    assert abs(integrated_brier_score(y_tr, y_te, S, times) - skm.integrated_brier_score(y_tr, y_te, S, times)) < 1e-6


def test_metrics_on_cohort_match_sksurv(small_cohort):
    from oncolab.data import kfold_indices

    y = small_cohort.survival_y()
    risk = small_cohort.truth["true_risk"].to_numpy()
    tr, te = kfold_indices(small_cohort, k=3, seed=0)[0]
    yt, ye = y[tr], y[te].copy()
    ye["time"] = np.minimum(ye["time"], yt["time"].max())
    times = np.percentile(ye["time"], [20, 40, 60])
    assert harrell_c(y["time"], y["event"], risk) == skm.concordance_index_censored(y["event"], y["time"], risk)[0]
    assert abs(uno_c(yt, ye, risk[te]) - skm.concordance_index_ipcw(yt, ye, risk[te])[0]) < 1e-6
    assert abs(td_auc(yt, ye, risk[te], times)[1] - skm.cumulative_dynamic_auc(yt, ye, risk[te], times)[1]) < 1e-6


def test_censoring_survival_and_horizon_errors():
    y_tr, _ = _data(8)
    y_te, risk = _data(9)
    last = np.argmax(y_tr["time"])
    y_tr["time"][last] += 1.0
    y_tr["event"][last] = True  # the last time is an event: G is still > 0 there
    with pytest.raises(ValueError, match="beyond the follow-up"):
        censoring_survival(y_tr, [y_tr["time"].max() + 1])
    with pytest.raises(ValueError, match="follow-up of the test data"):
        td_auc(y_tr, y_te, risk, [y_te["time"].max() + 5])
    with pytest.raises(ValueError, match="follow-up"):
        brier_score(y_tr, y_te, np.full((len(y_te), 1), 0.5), [y_te["time"].max()])


def test_bad_inputs_name_the_problem():
    t = np.array([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="boolean"):
        harrell_c(t, np.array([1, 0, 1]), np.zeros(3))
    with pytest.raises(ValueError, match=">= 0"):
        harrell_c(np.array([1.0, -2.0, 3.0]), np.array([True, False, True]), np.zeros(3))
    with pytest.raises(ValueError, match="finite"):
        harrell_c(np.array([1.0, np.nan, 3.0]), np.array([True, False, True]), np.zeros(3))
    with pytest.raises(ValueError, match="censored"):
        harrell_c(t, np.zeros(3, bool), np.zeros(3))
    with pytest.raises(ValueError, match="different lengths"):
        harrell_c(t, np.array([True, False]), np.zeros(3))
    with pytest.raises(ValueError, match="risk has 2 values"):
        harrell_c(t, np.array([True, False, True]), np.zeros(2))


def test_calibration_table_is_close_for_the_true_model():
    rng = np.random.default_rng(0)
    n = 3000
    x = rng.normal(size=n)
    t = rng.exponential(np.exp(-x))
    c = rng.exponential(3.0, size=n)
    y = survival_array(t <= c, np.minimum(t, c))
    h = 0.5
    table = calibration_at_horizon(y, np.exp(-h * np.exp(x)), h, n_groups=5)
    assert list(table.columns) == ["group", "n", "predicted", "observed", "observed_low", "observed_high"]
    assert table["n"].sum() == n
    # the true survival model is calibrated: each group's prediction inside its KM interval
    assert ((table["predicted"] >= table["observed_low"] - 0.02) & (table["predicted"] <= table["observed_high"] + 0.02)).all()
    # and a miscalibrated prediction is visibly off
    bad = calibration_at_horizon(y, np.exp(-h * np.exp(x)) ** 3, h, n_groups=5)
    assert (bad["observed"] - bad["predicted"]).abs().mean() > (table["observed"] - table["predicted"]).abs().mean() + 0.05
