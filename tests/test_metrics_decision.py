"""oncolab.metrics.decision: net benefit against the dcurves package and against cases counted by
hand, the treat-all formula, the decision-curve table, the paired bootstrap of a net-benefit
difference, and clear errors on bad thresholds, labels and probabilities."""

import numpy as np
import pandas as pd
import pytest

from oncolab.metrics import paired_bootstrap
from oncolab.metrics.decision import decision_curve, net_benefit, net_benefit_difference


def _random_case(seed, n=300):
    """Labels and probabilities with ties, exact 0s and 1s, and thresholds that hit some probabilities."""
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.35
    p = np.clip(0.25 * y + rng.random(n) * 0.75, 0, 1)
    p[:10] = np.round(p[:10], 1)          # ties on the threshold grid
    p[10:13], p[13:16] = 0.0, 1.0
    thresholds = np.r_[np.arange(0.01, 1.0, 0.01), p[20:25]]
    return y, p, thresholds


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_net_benefit_equals_dcurves(seed):
    from dcurves import dca

    y, p, thresholds = _random_case(seed)
    ref = dca(data=pd.DataFrame({"y": y.astype(int), "m": p}), outcome="y", modelnames=["m"],
              thresholds=list(thresholds))
    ours = decision_curve(y, {"m": p}, thresholds)
    for ours_col, ref_model in (("m", "m"), ("treat all", "all"), ("treat none", "none")):
        nb_ref = ref.loc[ref["model"] == ref_model, "net_benefit"].to_numpy(float)
        np.testing.assert_allclose(ours[ours_col].to_numpy(), nb_ref, rtol=0, atol=1e-9)
    np.testing.assert_allclose(net_benefit(y.astype(int), p, thresholds), ours["m"].to_numpy(), rtol=0, atol=0)


def test_hand_counted_cases():
    y = np.array([1, 1, 0, 0])
    p = np.array([0.9, 0.4, 0.6, 0.1])
    # t = 0.25: treat 0.9, 0.4 (TP) and 0.6 (FP): 2/4 - 1/4 * (1/3)
    assert net_benefit(y, p, 0.25) == pytest.approx(2 / 4 - 1 / 4 * (0.25 / 0.75), abs=1e-15)
    # t = 0.4 equals a probability: that patient is treated (p >= t)
    assert net_benefit(y, p, 0.4) == pytest.approx(2 / 4 - 1 / 4 * (0.4 / 0.6), abs=1e-15)
    # t = 0.5: one TP, one FP, weight 1: nothing gained
    assert net_benefit(y, p, 0.5) == pytest.approx(0.0, abs=1e-15)
    # t = 0.95: nobody treated
    assert net_benefit(y, p, 0.95) == 0.0
    # a scalar gives a float, a sequence an array
    assert isinstance(net_benefit(y, p, 0.5), float)
    assert net_benefit(y, p, [0.5]).shape == (1,)
    # booleans and 0/1 give the same answer
    assert np.array_equal(net_benefit(y.astype(bool), p, [0.25, 0.5]), net_benefit(y, p, [0.25, 0.5]))


def test_perfect_model_gains_the_prevalence_and_treat_all_follows_its_formula():
    rng = np.random.default_rng(4)
    y = rng.random(200) < 0.3
    t = np.linspace(0.05, 0.95, 19)
    np.testing.assert_allclose(net_benefit(y, y.astype(float), t), np.full(len(t), y.mean()), atol=1e-15)
    curve = decision_curve(y, rng.random(200), t)
    prev = y.mean()
    np.testing.assert_allclose(curve["treat all"], prev - (1 - prev) * t / (1 - t), atol=1e-15)
    assert (curve["treat none"] == 0).all()
    assert list(curve.columns) == ["model", "treat all", "treat none"]
    assert curve.index.name == "threshold" and np.array_equal(curve.index.to_numpy(), t)
    assert curve.attrs["prevalence"] == pytest.approx(prev) and curve.attrs["n"] == 200
    # treat-all crosses zero at the prevalence
    assert net_benefit(y, np.ones(200), prev) == pytest.approx(0.0, abs=1e-12)


def test_several_models_in_one_table():
    rng = np.random.default_rng(5)
    y = rng.random(100) < 0.4
    pa, pb = rng.random(100), np.clip(y * 0.5 + rng.random(100) * 0.5, 0, 1)
    t = [0.1, 0.3, 0.5]
    curve = decision_curve(y, {"a": pa, "b": pb}, t)
    assert list(curve.columns) == ["a", "b", "treat all", "treat none"]
    np.testing.assert_array_equal(curve["b"], net_benefit(y, pb, t))
    with pytest.raises(ValueError, match="reserved"):
        decision_curve(y, {"treat all": pa}, t)
    with pytest.raises(ValueError, match="empty dict"):
        decision_curve(y, {}, t)


def test_net_benefit_difference_is_the_paired_bootstrap_at_each_threshold():
    rng = np.random.default_rng(6)
    y = rng.random(150) < 0.35
    p = np.clip(0.3 * y + rng.random(150) * 0.7, 0, 1)
    t = [0.1, 0.2, 0.4]
    diff = net_benefit_difference(y, p, np.ones(150), t, n_boot=200, seed=3)
    curve = decision_curve(y, p, t)
    np.testing.assert_allclose(diff["difference"], curve["model"] - curve["treat all"], atol=1e-15)
    one = paired_bootstrap(lambda yy, s: net_benefit(yy, s, 0.2), y, p, np.ones(150), n_boot=200, seed=3)
    row = diff.loc[0.2]
    for k in ("value_a", "value_b", "difference", "ci_low", "ci_high", "p_value"):
        assert row[k] == pytest.approx(one[k], abs=1e-15)
    assert (diff["ci_low"] <= diff["difference"]).all() and (diff["difference"] <= diff["ci_high"]).all()
    # seeded: the same seed gives the same table; a rule against itself differs by exactly 0
    pd.testing.assert_frame_equal(diff, net_benefit_difference(y, p, np.ones(150), t, n_boot=200, seed=3))
    same = net_benefit_difference(y, p, p, t, n_boot=50, seed=0)
    assert (same[["difference", "ci_low", "ci_high"]].to_numpy() == 0).all()


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.1, 1.5, float("nan"), [0.2, 1.0], []])
def test_bad_thresholds_are_refused_by_value(bad):
    y, p = np.array([0, 1, 1]), np.array([0.2, 0.7, 0.9])
    with pytest.raises(ValueError, match=r"threshold|thresholds"):
        net_benefit(y, p, bad)
    with pytest.raises(ValueError, match=r"threshold|thresholds"):
        decision_curve(y, p, bad)
    if np.ndim(bad) == 0 and np.isfinite(bad):
        with pytest.raises(ValueError, match=repr(float(bad))):
            net_benefit(y, p, bad)


def test_bad_labels_and_probabilities_are_refused():
    p = np.array([0.2, 0.7, 0.9])
    with pytest.raises(ValueError, match=r"binary.*\[2\].*y == k"):
        net_benefit(np.array([0, 1, 2]), p, 0.5)
    with pytest.raises(ValueError, match="binary"):
        net_benefit(np.array(["benign", "malignant", "malignant"]), p, 0.5)
    with pytest.raises(ValueError, match="binary"):
        net_benefit(np.array([0.0, 1.0, np.nan]), p, 0.5)
    with pytest.raises(ValueError, match="3 patients but p has 2"):
        net_benefit(np.array([0, 1, 1]), p[:2], 0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\].*1\.2"):
        net_benefit(np.array([0, 1, 1]), np.array([0.2, 0.7, 1.2]), 0.5)
    with pytest.raises(ValueError, match="NaN"):
        net_benefit(np.array([0, 1, 1]), np.array([0.2, np.nan, 0.9]), 0.5)
    with pytest.raises(ValueError, match="column of the class"):
        net_benefit(np.array([0, 1, 1]), np.full((3, 3), 1 / 3), 0.5)
    with pytest.raises(ValueError, match="empty"):
        net_benefit(np.array([], int), np.array([]), 0.5)
    with pytest.raises(ValueError, match="n_boot"):
        net_benefit_difference(np.array([0, 1, 1]), p, np.ones(3), 0.5, n_boot=-1)
