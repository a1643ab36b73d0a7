"""Torch losses against the NumPy partial likelihood; DeepSurv, discrete-time, wrappers and the
cross-validation helper on small data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from oncolab.data import survival_array
from oncolab.survival import (
    CoxPH,
    DeepSurv,
    DiscreteTimeSurvival,
    SksurvModel,
    bin_index,
    cox_partial_likelihood,
    cox_ph_loss,
    cross_validate_survival,
    logistic_hazard_nll,
    make_model,
    time_bins,
)


def _toy(seed=0, n=240, p=4):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    beta = np.array([1.0, -0.7] + [0.0] * (p - 2))
    t = rng.exponential(np.exp(-X @ beta)) * 10
    c = rng.uniform(3, 30, n)
    return X, survival_array(t <= c, np.round(np.minimum(t, c), 1))


@pytest.mark.parametrize("ties", ["breslow", "efron"])
def test_cox_ph_loss_equals_numpy_partial_likelihood_and_gradient(ties):
    X, y = _toy()
    b = np.array([0.3, -0.2, 0.1, 0.05])
    ll, g, _ = cox_partial_likelihood(b, X, y["time"], y["event"], ties)
    bt = torch.tensor(b, requires_grad=True)
    loss = cox_ph_loss(torch.tensor(X) @ bt, y["time"], y["event"], ties=ties)
    loss.backward()
    d = y["event"].sum()
    assert float(loss.detach()) * d == pytest.approx(-ll, rel=1e-12)
    np.testing.assert_allclose(-bt.grad.numpy() * d, g, rtol=1e-9, atol=1e-9)


def test_cox_ph_loss_bad_input():
    r = torch.zeros(3)
    with pytest.raises(ValueError, match="no events"):
        cox_ph_loss(r, [1.0, 2.0, 3.0], [False, False, False])
    with pytest.raises(ValueError, match="same length"):
        cox_ph_loss(r, [1.0, 2.0], [True, False])
    with pytest.raises(ValueError, match="ties"):
        cox_ph_loss(r, [1.0, 2.0, 3.0], [True, False, True], ties="exact")
    with pytest.raises(ValueError, match="non-negative"):
        cox_ph_loss(r, [1.0, -2.0, 3.0], [True, False, True])


def test_logistic_hazard_nll_by_hand():
    logits = torch.tensor([[0.0, 1.0, -1.0], [0.5, 0.5, 0.5]], dtype=torch.float64)
    h = torch.sigmoid(logits)
    # patient 0: event in bin 1; patient 1: censored in bin 2
    by_hand = -(torch.log(1 - h[0, 0]) + torch.log(h[0, 1])) - torch.log(1 - h[1]).sum()
    got = logistic_hazard_nll(logits, [1, 2], [True, False])
    assert float(got) == pytest.approx(float(by_hand) / 2, rel=1e-12)


def test_deepsurv_learns_and_is_deterministic():
    X, y = _toy(1)
    tr, te = np.arange(180), np.arange(180, 240)
    a = DeepSurv(hidden=(16,), epochs=150, seed=3).fit(X[tr], y[tr])
    b = DeepSurv(hidden=(16,), epochs=150, seed=3).fit(X[tr], y[tr])
    np.testing.assert_array_equal(a.predict(X[te]), b.predict(X[te]))
    assert a.history_ == b.history_ and {"train_loss", "val_loss"} <= set(a.history_[0])
    cox = CoxPH().fit(X[tr], y[tr])
    assert a.score(X[te], y[te]) > 0.65
    assert a.score(X[te], y[te]) > cox.score(X[te], y[te]) - 0.08
    S = a.predict_survival(X[te], [1.0, 5.0, 10.0])
    assert S.shape == (60, 3) and (np.diff(S, axis=1) <= 1e-12).all() and (S >= 0).all() and (S <= 1).all()


def test_time_bins_at_event_quantiles_and_closed_on_the_right():
    import pandas as pd

    rng = np.random.default_rng(0)
    time = np.round(rng.exponential(10, 300), 1)
    event = rng.random(300) < 0.6
    edges = time_bins(time, event, 5)
    np.testing.assert_allclose(edges[1:-1], np.quantile(time[event], [0.2, 0.4, 0.6, 0.8]))
    assert edges[0] == 0 and edges[-1] == time.max() and (np.diff(edges) > 0).all()
    # the convention, against pandas: bin b is (e_b, e_{b+1}], the first one includes 0
    probe = np.r_[time, edges, 0.0]
    ref = pd.cut(probe, edges, right=True, include_lowest=True, labels=False)
    np.testing.assert_array_equal(bin_index(probe, edges), ref)
    assert bin_index(edges[2], edges) == 1  # on an edge: the bin that ends there
    assert bin_index(edges[-1] + 5, edges) == len(edges) - 2  # after follow-up: the last bin
    # tied quantiles merge
    tied = time_bins(np.r_[np.ones(50), 2.0, 3.0], np.ones(52, bool), 4)
    np.testing.assert_array_equal(tied, [0.0, 1.0, 3.0])
    with pytest.raises(ValueError, match="n_bins must be an integer >= 2"):
        time_bins(time, event, 1)
    with pytest.raises(ValueError, match="at least one observed event"):
        time_bins(time, np.zeros(300, bool), 4)
    with pytest.raises(ValueError, match="same length"):
        time_bins(time, event[:5], 4)
    with pytest.raises(ValueError, match="time must be >= 0"):
        bin_index([-1.0], edges)
    with pytest.raises(ValueError, match="strictly increasing"):
        bin_index([1.0], edges[::-1])
    with pytest.raises(ValueError, match="too few or too tied"):
        time_bins(np.ones(10), np.ones(10, bool), 4)


def test_discrete_time_model():
    X, y = _toy(2)
    m = DiscreteTimeSurvival(n_bins=8, epochs=200, seed=0).fit(X[:180], y[:180])
    np.testing.assert_array_equal(m.edges_, time_bins(y["time"][:180], y["event"][:180], 8))
    assert m.score(X[180:], y[180:]) > 0.65
    S = m.predict_survival(X[180:], np.linspace(0, 20, 6))
    assert np.allclose(S[:, 0], 1.0) and (np.diff(S, axis=1) <= 1e-12).all()
    with pytest.raises(ValueError, match="n_bins"):
        DiscreteTimeSurvival(n_bins=1).fit(X, y)


@pytest.mark.parametrize("kind", ["sk-cox", "coxnet", "rsf", "gbsa"])
def test_wrappers_share_the_interface(kind):
    X, y = _toy(3, n=160)
    m = make_model(kind, fast=True).fit(X, y)
    assert isinstance(m, SksurvModel)
    risk = m.predict(X)
    assert risk.shape == (160,)
    S = m.predict_survival(X, [0.5, 5.0, 50.0])  # 50 is beyond follow-up: held at the last value
    assert S.shape == (160, 3) and np.isfinite(S).all()
    assert 0.5 < m.score(X, y) <= 1.0
    fns = m.predict_survival_function(X[:2])
    assert len(fns) == 2


def test_sk_cox_wrapper_equals_our_cox():
    X, y = _toy(4)
    ours = CoxPH(ties="efron").fit(X, y)
    ref = make_model("sk-cox").fit(X, y)
    np.testing.assert_allclose(ours.predict(X), ref.predict(X), atol=1e-6)
    t = np.array([2.0, 6.0])
    np.testing.assert_allclose(ours.predict_survival(X, t), ref.predict_survival(X, t), atol=1e-6)


def test_cross_validate_survival_table():
    import pandas as pd
    from sklearn.preprocessing import StandardScaler

    X, y = _toy(5, n=200)
    Xdf = pd.DataFrame(X, columns=list("abcd"))
    res = cross_validate_survival({"cox": make_model("cox"), "rsf": make_model("rsf", fast=True)}, Xdf, y,
                                  StandardScaler(), n_splits=3, seed=0, n_boot=30)
    t = res.table
    assert set(t["metric"]) == {"harrell_c", "uno_c", "td_auc", "ibs"}
    c = t[(t.model == "cox") & (t.metric == "harrell_c")].iloc[0]
    assert c.ci_low <= c.estimate <= c.ci_high and c.estimate > 0.65
    assert len(res.folds) == 6 and res.predictions.notna().all().all()
    assert sorted(set(res.predictions["fold"])) == [0, 1, 2]
    assert res.wide().shape == (2, 4)
    again = cross_validate_survival({"cox": make_model("cox")}, Xdf, y, StandardScaler(), n_splits=3, seed=0, n_boot=30)
    pd.testing.assert_frame_equal(again.table, t[t.model == "cox"].reset_index(drop=True))
    with pytest.raises(ValueError, match="rows"):
        cross_validate_survival({"cox": make_model("cox")}, X[:10], y)
    with pytest.raises(ValueError, match="unknown model"):
        make_model("svm")
