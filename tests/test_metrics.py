"""oncolab.metrics: macro AUC against scikit-learn, point metrics, the bootstrap of one metric and
the paired bootstrap of a difference, reliability data against scikit-learn, ECE, temperature
scaling, conformal coverage at its nominal level on a large synthetic problem, subgroups,
center shift."""

import numpy as np
import pandas as pd
import pytest
from scipy import special
from sklearn.calibration import calibration_curve
from sklearn.metrics import f1_score, roc_auc_score
from sksurv.metrics import concordance_index_censored

from oncolab.metrics import (
    METRICS,
    SplitConformal,
    TemperatureScaler,
    UndefinedMetricError,
    age_bands,
    bootstrap_ci,
    bootstrap_metrics,
    center_shift,
    conformal_quantile,
    expected_calibration_error,
    macro_auc,
    paired_bootstrap,
    point_metrics,
    reliability_table,
    set_coverage,
    subgroup_table,
)
from oncolab.survival import harrell_c


def _problem(n, seed=0, sharpen=1.0):
    """A 3-class problem with known true probabilities; ``sharpen`` > 1 makes the reported
    probabilities over-confident (logits multiplied by it)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=1.5, size=(n, 3))
    p_true = special.softmax(logits, 1)
    y = (rng.random(n)[:, None] > np.cumsum(p_true, 1)).sum(1)
    return logits * sharpen, y, p_true


def _survival(n, seed=0):
    """Times from a hazard driven by ``eta``, 30% censored, and a noisy risk score of ``eta``."""
    r = np.random.default_rng(seed)
    eta = r.normal(size=n)
    time = r.exponential(np.exp(-eta))
    event = r.random(n) < 0.7
    return time, event, eta


# ---------------------------------------------------------------------------------------------
# macro AUC
# ---------------------------------------------------------------------------------------------
def test_macro_auc_matches_sklearn_with_and_without_ties():
    logits, y, _ = _problem(500, seed=2)
    p = special.softmax(logits, 1)
    assert macro_auc(y, p) == pytest.approx(roc_auc_score(y, p, multi_class="ovr", average="macro"), abs=1e-12)
    coarse = np.round(p, 1)  # many tied scores: a tie counts 1/2 in both
    coarse = coarse / coarse.sum(1, keepdims=True)
    assert macro_auc(y, coarse) == pytest.approx(roc_auc_score(y, coarse, multi_class="ovr"), abs=1e-12)
    # scores need not be probabilities: per-class AUC is invariant to a monotone map of a column
    z = logits * 3 + 7
    want = np.mean([roc_auc_score(y == k, z[:, k]) for k in range(3)])
    assert macro_auc(y, z) == pytest.approx(want, abs=1e-12)


def test_macro_auc_labels_binary_and_one_dimensional():
    logits, y, _ = _problem(300, seed=5)
    p = special.softmax(logits, 1)
    names = np.array(["benign", "intermediate", "malignant"])[y]
    want = roc_auc_score(names, p, multi_class="ovr", labels=["benign", "intermediate", "malignant"])
    assert macro_auc(names, p, labels=["benign", "intermediate", "malignant"]) == pytest.approx(want, abs=1e-12)
    # reordered columns with matching labels give the same value
    assert macro_auc(names, p[:, [2, 0, 1]], labels=["malignant", "benign", "intermediate"]) == pytest.approx(want)
    yb = (y == 2).astype(int)
    pb = np.c_[1 - p[:, 2], p[:, 2]]
    assert macro_auc(yb, pb) == pytest.approx(roc_auc_score(yb, p[:, 2]), abs=1e-12)
    assert macro_auc(yb, p[:, 2]) == pytest.approx(roc_auc_score(yb, p[:, 2]), abs=1e-12)


def test_macro_auc_bad_input_and_undefined():
    logits, y, _ = _problem(60)
    p = special.softmax(logits, 1)
    with pytest.raises(UndefinedMetricError, match=r"\[2\] have no patient"):
        macro_auc(np.where(y == 2, 1, y), p)
    assert issubclass(UndefinedMetricError, ValueError)
    with pytest.raises(ValueError, match="one label per row"):
        macro_auc(y[:-1], p)
    with pytest.raises(ValueError, match=r"labels \[7\]"):
        macro_auc(np.r_[y[:-1], 7], p)
    with pytest.raises(ValueError, match="NaN or infinite"):
        macro_auc(y, np.where(np.arange(60)[:, None] == 0, np.nan, p))
    with pytest.raises(ValueError, match="3 classes"):
        macro_auc(y, p, labels=[0, 1])
    with pytest.raises(ValueError, match=r"shape \(60, 1\)"):
        macro_auc(y, p[:, :1])


# ---------------------------------------------------------------------------------------------
# point metrics and their bootstrap table
# ---------------------------------------------------------------------------------------------
def test_point_metrics_against_sklearn_and_sksurv():
    t, e, risk = _survival(200, seed=2)
    _, y, _ = _problem(200, seed=2)
    p = np.random.default_rng(0).dirichlet([1, 1, 1], len(y))
    pm = point_metrics(y, p, t, e, risk)
    assert tuple(pm) == METRICS
    assert pm["macro_auc"] == pytest.approx(roc_auc_score(y, p, multi_class="ovr"))
    assert pm["macro_f1"] == pytest.approx(f1_score(y, p.argmax(1), average="macro"))
    assert pm["c_index"] == pytest.approx(concordance_index_censored(e, t, risk)[0])
    assert "c_index" not in point_metrics(y, p)
    assert np.isnan(point_metrics(np.where(y == 2, 0, y), p)["macro_auc"])
    assert np.isnan(point_metrics(y, p, t, np.zeros(len(y), bool), risk)["c_index"])


def test_bootstrap_metrics_table_deterministic_and_shares_the_resampling():
    t, e, risk = _survival(200, seed=3)
    _, y, _ = _problem(200, seed=3)
    p = np.random.default_rng(1).dirichlet([1, 1, 1], len(y))
    tab = bootstrap_metrics(y, p, t, e, risk, n_boot=50, seed=0)
    assert list(tab.columns) == ["metric", "value", "ci_low", "ci_high", "n"]
    assert list(tab["metric"]) == list(METRICS) and (tab["n"] == 200).all()
    assert (tab["ci_low"] <= tab["value"]).all() and (tab["value"] <= tab["ci_high"]).all()
    assert tab.equals(bootstrap_metrics(y, p, t, e, risk, n_boot=50, seed=0))
    assert not tab.equals(bootstrap_metrics(y, p, t, e, risk, n_boot=50, seed=1))
    # the same patients are drawn as by bootstrap_ci with the same seed
    auc = tab.set_index("metric").loc["macro_auc"]
    assert (auc["value"], auc["ci_low"], auc["ci_high"]) == pytest.approx(bootstrap_ci(macro_auc, y, p, 50, seed=0))
    c = tab.set_index("metric").loc["c_index"]
    c_ci = bootstrap_ci(lambda te, r: harrell_c(te[0], te[1], r), (t, e), risk, 50, seed=0)
    assert (c["value"], c["ci_low"], c["ci_high"]) == pytest.approx(c_ci)
    no_ci = bootstrap_metrics(y, p, n_boot=0)
    assert no_ci["ci_low"].isna().all() and no_ci["value"].notna().all()
    with pytest.raises(ValueError, match="level"):
        bootstrap_metrics(y, p, level=1.5)


# ---------------------------------------------------------------------------------------------
# bootstrap of one metric
# ---------------------------------------------------------------------------------------------
def test_bootstrap_ci_of_a_mean_matches_the_normal_interval():
    # for a mean of n = 4000 values the percentile bootstrap and mean +- 1.96 SE agree closely
    x = np.random.default_rng(0).exponential(size=4000)
    point, lo, hi = bootstrap_ci(lambda _, s: float(np.mean(s)), np.zeros(len(x)), x, n_boot=2000, seed=1)
    se = x.std(ddof=1) / np.sqrt(len(x))
    assert point == pytest.approx(x.mean())
    assert lo == pytest.approx(x.mean() - 1.96 * se, abs=0.15 * se)
    assert hi == pytest.approx(x.mean() + 1.96 * se, abs=0.15 * se)


def test_bootstrap_ci_seeded_and_checks_input():
    logits, y, _ = _problem(150, seed=4)
    p = special.softmax(logits, 1)
    a = bootstrap_ci(macro_auc, y, p, n_boot=200, seed=3)
    assert a == bootstrap_ci(macro_auc, y, p, n_boot=200, seed=3)
    assert a != bootstrap_ci(macro_auc, y, p, n_boot=200, seed=4)
    assert a[0] == macro_auc(y, p) and a[1] < a[0] < a[2]
    assert np.isnan(bootstrap_ci(macro_auc, y, p, n_boot=0)[1])
    with pytest.raises(TypeError, match="metric must be a function"):
        bootstrap_ci("auc", y, p)
    with pytest.raises(ValueError, match="n_boot must be an integer >= 0, got -1"):
        bootstrap_ci(macro_auc, y, p, n_boot=-1)
    with pytest.raises(ValueError, match=r"level must lie in \(0, 1\), got 95"):
        bootstrap_ci(macro_auc, y, p, level=95)
    with pytest.raises(ValueError, match="score has 149 patients"):
        bootstrap_ci(macro_auc, y, p[:-1])


def test_bootstrap_ci_tuple_y_with_a_c_index():
    t, e, risk = _survival(150, seed=6)
    point, lo, hi = bootstrap_ci(lambda te, r: harrell_c(*te, r), (t, e), risk, n_boot=200, seed=0)
    assert point == pytest.approx(concordance_index_censored(e, t, risk)[0])
    assert lo < point < hi
    with pytest.raises(ValueError, match=r"y\[1\] has 149 patients"):
        bootstrap_ci(lambda te, r: harrell_c(*te, r), (t, e[:-1]), risk)


# ---------------------------------------------------------------------------------------------
# paired bootstrap of a difference
# ---------------------------------------------------------------------------------------------
def test_paired_bootstrap_model_against_itself():
    logits, y, _ = _problem(300, seed=7)
    p = special.softmax(logits, 1)
    r = paired_bootstrap(macro_auc, y, p, p.copy(), n_boot=200, seed=0)
    assert r["difference"] == 0 and r["ci_low"] <= 0 <= r["ci_high"]
    assert r["value_a"] == r["value_b"] == macro_auc(y, p)
    assert r["p_value"] == 1.0 and r["n"] == 300 and r["n_boot_used"] == 200


def test_paired_bootstrap_detects_a_better_model_and_is_seeded():
    logits, y, p_true = _problem(2000, seed=8)
    noisy = special.softmax(logits + np.random.default_rng(9).normal(scale=3.0, size=logits.shape), 1)
    r = paired_bootstrap(macro_auc, y, p_true, noisy, n_boot=200, seed=0)
    assert r["difference"] == pytest.approx(macro_auc(y, p_true) - macro_auc(y, noisy))
    assert r["ci_low"] > 0 and r["ci_low"] < r["difference"] < r["ci_high"]
    # every resampled difference is above 0: the smallest p-value 200 resamples can give
    assert r["p_value"] == pytest.approx(2 / 201)
    assert r == paired_bootstrap(macro_auc, y, p_true, noisy, n_boot=200, seed=0)
    other = paired_bootstrap(macro_auc, y, p_true, noisy, n_boot=200, seed=1)
    assert other["difference"] == r["difference"] and other["ci_low"] != r["ci_low"]
    flipped = paired_bootstrap(macro_auc, y, noisy, p_true, n_boot=200, seed=0)
    assert flipped["difference"] == -r["difference"] and flipped["ci_high"] == pytest.approx(-r["ci_low"])


def test_paired_interval_is_narrower_than_two_separate_ones():
    # two close models: most of each one's sampling noise is shared and cancels in the difference
    t, e, risk = _survival(300, seed=10)
    rng = np.random.default_rng(11)
    a, b = risk + rng.normal(scale=0.3, size=300), risk + rng.normal(scale=0.3, size=300)

    def c_index(te, r):
        return harrell_c(te[0], te[1], r)

    r = paired_bootstrap(c_index, (t, e), a, b, n_boot=300, seed=0)
    assert r["value_a"] == pytest.approx(concordance_index_censored(e, t, a)[0])
    assert r["value_b"] == pytest.approx(concordance_index_censored(e, t, b)[0])
    _, lo_a, hi_a = bootstrap_ci(c_index, (t, e), a, n_boot=300, seed=0)
    _, lo_b, hi_b = bootstrap_ci(c_index, (t, e), b, n_boot=300, seed=0)
    unpaired = np.hypot(hi_a - lo_a, hi_b - lo_b)
    assert r["ci_high"] - r["ci_low"] < 0.5 * unpaired


def test_paired_bootstrap_skips_undefined_resamples_and_reports_them():
    # class 2 has a single patient: a resample misses it with probability (1 - 1/40)^40 ~ 0.36
    logits, y, _ = _problem(40, seed=12)
    y = np.where(y == 2, 1, y)
    y[0] = 2
    p = special.softmax(logits, 1)
    q = special.softmax(logits * 0.5, 1)
    r = paired_bootstrap(macro_auc, y, p, q, n_boot=400, seed=0)
    expected = 400 * (1 - (1 - 1 / 40) ** 40)
    assert abs(r["n_boot_used"] - expected) < 4 * np.sqrt(400 * 0.36 * 0.64)
    assert np.isfinite([r["ci_low"], r["ci_high"], r["p_value"]]).all()
    # with fewer than ten usable resamples no interval and no p-value are reported
    r5 = paired_bootstrap(macro_auc, y, p, q, n_boot=5, seed=0)
    assert r5["n_boot_used"] <= 5 and np.isnan(r5["ci_low"]) and np.isnan(r5["p_value"])
    assert np.isfinite(r5["difference"])
    with pytest.raises(ValueError, match="score_b has 39 patients"):
        paired_bootstrap(macro_auc, y, p, q[:-1])


# ---------------------------------------------------------------------------------------------
# calibration
# ---------------------------------------------------------------------------------------------
def test_reliability_table_matches_sklearn_calibration_curve():
    logits, y, _ = _problem(3000)
    p = special.softmax(logits, 1)
    ours = reliability_table(y, p, n_bins=10, positive=2)
    prob_true, prob_pred = calibration_curve(y == 2, p[:, 2], n_bins=10, strategy="uniform")
    np.testing.assert_allclose(ours["accuracy"], prob_true, atol=1e-12)
    np.testing.assert_allclose(ours["confidence"], prob_pred, atol=1e-12)
    with pytest.raises(ValueError, match="n_bins must be a positive integer, got 0"):
        reliability_table(y, p, n_bins=0)


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


# ---------------------------------------------------------------------------------------------
# conformal sets
# ---------------------------------------------------------------------------------------------
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
    res = set_coverage(y[5000:], cp.predict_sets(p[5000:]))
    # guarantee: 1 - alpha <= E[coverage] <= 1 - alpha + 1/(n+1); sampling error of 20000 test
    # patients plus that of the calibration quantile: a few x sqrt(alpha(1-alpha)/n_cal)
    tol = 4 * np.sqrt(alpha * (1 - alpha) / 5000)
    assert abs(res["coverage"] - (1 - alpha)) < tol
    assert 1 <= res["mean_size"] < 3


def test_set_coverage_counts_and_argument_order():
    sets = np.array([[True, False, False], [True, True, False], [False, False, False], [True, True, True]])
    y = np.array([0, 2, 1, 1])
    res = set_coverage(y, sets)
    assert res["coverage"] == 0.5 and res["mean_size"] == 1.5
    assert res["size_counts"] == {0: 1, 1: 1, 2: 1, 3: 1}
    with pytest.raises(ValueError, match="boolean"):
        set_coverage(sets, y)  # truth first, as every metric of the package


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


# ---------------------------------------------------------------------------------------------
# subgroups and center shift
# ---------------------------------------------------------------------------------------------
def test_subgroup_table_and_age_bands():
    logits, y, _ = _problem(400)
    p = special.softmax(logits, 1)
    bands = age_bands(np.r_[np.full(200, 25.0), np.full(195, 60.0), np.full(5, 80.0)])
    g = pd.DataFrame({"sex": np.tile(["F", "M"], 200), "age_band": bands})
    tab = subgroup_table(y, p, g, min_size=10).set_index("group")
    assert set(tab.index) == {"all", "F", "M", "0-29", "50-69", "70+"}
    assert tab.loc["70+", "n"] == 5 and np.isnan(tab.loc["70+", "macro_auc"])
    assert tab.loc["F", "n"] == 200
    female = np.tile([True, False], 200)
    assert tab.loc["F", "macro_auc"] == pytest.approx(roc_auc_score(y[female], p[female], multi_class="ovr"))
    assert tab.loc["all", "ece"] == pytest.approx(expected_calibration_error(y, p, n_bins=10))
    with pytest.raises(ValueError, match="increasing"):
        age_bands([40.0], edges=(0, 50, 30))


def test_center_shift_runs_and_checks_center():
    from oncolab.data import synthetic_cohort

    c = synthetic_cohort(40, seed=0, modalities=["pathology", "clinical"], image_size=64, slide_size=96)
    with pytest.raises(ValueError, match="not in the cohort's centers"):
        center_shift(c, "Z", normalise=False)
    held = c.clinical["center"].iloc[0]
    r = center_shift(c, held, normalise=True)
    assert r["n_external"] == int((c.clinical["center"] == held).sum())
    assert 0 <= r["auc_external"] <= 1 and r["auc_drop"] == pytest.approx(r["auc_internal"] - r["auc_external"])
