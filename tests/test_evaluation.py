"""oncolab.evaluation: reliability data against scikit-learn, ECE, temperature scaling,
conformal coverage at its nominal level on a large synthetic problem, subgroups, center shift."""

import numpy as np
import pytest
from scipy import special
from sklearn.calibration import calibration_curve

from oncolab.evaluation import (
    SplitConformal,
    TemperatureScaler,
    age_bands,
    center_shift,
    conformal_quantile,
    expected_calibration_error,
    reliability_table,
    set_coverage,
    subgroup_table,
)


def _problem(n, seed=0, sharpen=1.0):
    """A 3-class problem with known true probabilities; ``sharpen`` > 1 makes the reported
    probabilities over-confident (logits multiplied by it)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=1.5, size=(n, 3))
    p_true = special.softmax(logits, 1)
    y = (rng.random(n)[:, None] > np.cumsum(p_true, 1)).sum(1)
    return logits * sharpen, y, p_true


def test_reliability_table_matches_sklearn_calibration_curve():
    logits, y, _ = _problem(3000)
    p = special.softmax(logits, 1)
    ours = reliability_table(y, p, n_bins=10, positive=2)
    prob_true, prob_pred = calibration_curve(y == 2, p[:, 2], n_bins=10, strategy="uniform")
    np.testing.assert_allclose(ours["accuracy"], prob_true, atol=1e-12)
    np.testing.assert_allclose(ours["confidence"], prob_pred, atol=1e-12)


def test_ece_small_when_calibrated_and_temperature_scaling_fixes_overconfidence():
    logits, y, _ = _problem(20000, seed=1)
    p_cal = special.softmax(logits, 1)
    assert expected_calibration_error(y, p_cal) < 0.02
    over = logits * 2.5
    ece_before = expected_calibration_error(y, special.softmax(over, 1))
    ts = TemperatureScaler().fit(over[:10000], y[:10000])
    assert ts.temperature_ == pytest.approx(2.5, rel=0.1)
    ece_after = expected_calibration_error(y[10000:], ts.transform(over[10000:]))
    assert ece_before > 0.08 and ece_after < 0.03
    assert TemperatureScaler.nll(over, y, ts.temperature_) < TemperatureScaler.nll(over, y, 1.0)
    # ranking unchanged
    assert (ts.transform(over).argmax(1) == over.argmax(1)).all()


def test_conformal_quantile_is_numpy_higher_quantile():
    s = np.random.default_rng(0).random(101)
    level = np.ceil(102 * 0.9) / 101
    assert conformal_quantile(s, 0.1) == np.quantile(s, level, method="inverted_cdf")
    assert conformal_quantile(s[:5], 0.1) == np.inf


@pytest.mark.parametrize("score", ["lac", "aps"])
@pytest.mark.parametrize("alpha", [0.1, 0.2])
def test_conformal_sets_reach_nominal_coverage(score, alpha):
    # large problem: 5000 calibration, 20000 test patients; a slightly miscalibrated model
    logits, y, _ = _problem(25000, seed=3, sharpen=1.3)
    p = special.softmax(logits, 1)
    cp = SplitConformal(alpha=alpha, score=score, seed=0).fit(p[:5000], y[:5000])
    res = set_coverage(cp.predict_sets(p[5000:]), y[5000:])
    # guarantee: 1 - alpha <= E[coverage] <= 1 - alpha + 1/(n+1); sampling error of 20000 test
    # patients plus that of the calibration quantile: a few x sqrt(alpha(1-alpha)/n_cal)
    tol = 4 * np.sqrt(alpha * (1 - alpha) / 5000)
    assert abs(res["coverage"] - (1 - alpha)) < tol
    assert 1 <= res["mean_size"] < 3


def test_conformal_deterministic_and_bad_input():
    logits, y, _ = _problem(500)
    p = special.softmax(logits, 1)
    a = SplitConformal(0.1, "aps", seed=4).fit(p, y).predict_sets(p)
    b = SplitConformal(0.1, "aps", seed=4).fit(p, y).predict_sets(p)
    assert (a == b).all()
    with pytest.raises(ValueError, match="unknown score"):
        SplitConformal(0.1, "raps")
    with pytest.raises(ValueError, match="alpha"):
        SplitConformal(1.5)
    with pytest.raises(ValueError, match="summing to 1"):
        SplitConformal(0.1).fit(p * 2, y)
    with pytest.raises(RuntimeError, match="not fitted"):
        SplitConformal(0.1).predict_sets(p)


def test_subgroup_table_and_age_bands():
    import pandas as pd

    logits, y, _ = _problem(400)
    p = special.softmax(logits, 1)
    bands = age_bands(np.r_[np.full(200, 25.0), np.full(195, 60.0), np.full(5, 80.0)])
    g = pd.DataFrame({"sex": np.tile(["F", "M"], 200), "age_band": bands})
    tab = subgroup_table(y, p, g, min_size=10)
    assert set(tab["group"]) == {"all", "F", "M", "0-29", "50-69", "70+"}
    assert tab.set_index("group").loc["70+", "n"] == 5 and np.isnan(tab.set_index("group").loc["70+", "macro_auc"])
    assert tab.set_index("group").loc["F", "n"] == 200


def test_center_shift_runs_and_checks_center():
    from oncolab.data import synthetic_cohort

    c = synthetic_cohort(40, seed=0, modalities=["pathology", "clinical"], image_size=64, slide_size=96)
    with pytest.raises(ValueError, match="not in the cohort's centers"):
        center_shift(c, "Z", normalise=False)
    held = c.clinical["center"].iloc[0]
    r = center_shift(c, held, normalise=True)
    assert r["n_external"] == int((c.clinical["center"] == held).sum())
    assert 0 <= r["auc_external"] <= 1 and r["auc_drop"] == pytest.approx(r["auc_internal"] - r["auc_external"])
