"""Clinical validity: calibration, conformal prediction sets, subgroups and center shift.

Taught in chapter 13 ("Evaluation and clinical validity").

* :func:`reliability_table` and :func:`expected_calibration_error` (Guo et al. 2017): bin the
  top-class confidence, compare each bin's mean confidence with its accuracy. The per-bin
  table agrees with ``sklearn.calibration.calibration_curve`` for a binary problem.
* :class:`TemperatureScaler`: divide the logits by one number ``T`` fitted on a validation
  split by minimising the negative log-likelihood; the ranking (and so the AUC) is unchanged.
* Survival calibration at a horizon is :func:`oncolab.survival.calibration_at_horizon`
  (chapter 8), re-exported here.
* :class:`SplitConformal` (Vovk et al. 2005; Angelopoulos & Bates 2021): prediction sets for
  the 3-class diagnosis with the LAC (``1 - p_y``) or APS (cumulative mass of the classes
  more likely than ``y``, plus a seeded random share of ``p_y``) score, with a finite-sample
  coverage guarantee ``>= 1 - alpha`` for exchangeable patients.
* :func:`subgroup_table`: metrics by sex, age band and center.
* :func:`center_shift`: train on some centers, test on a held-out one, with and without stain
  normalisation (:class:`oncolab.vision.MacenkoNormalizer`, chapter 5).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import optimize, special

from .survival.metrics import calibration_at_horizon

__all__ = ["CONFORMAL_SCORES", "SplitConformal", "TemperatureScaler", "age_bands", "calibration_at_horizon",
           "center_shift", "conformal_quantile", "expected_calibration_error", "plot_reliability",
           "reliability_table", "set_coverage", "subgroup_table"]

CONFORMAL_SCORES = ("lac", "aps")


def _check_proba(y, proba) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(proba, dtype=np.float64)
    y = np.asarray(y)
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError(f"proba must be (n, K) with K >= 2 classes, got shape {p.shape}")
    if len(y) != len(p):
        raise ValueError(f"y has {len(y)} labels but proba has {len(p)} rows")
    if not np.isfinite(p).all() or (p < -1e-9).any() or not np.allclose(p.sum(1), 1, atol=1e-6):
        raise ValueError("proba rows must be finite probabilities summing to 1")
    y = y.astype(int)
    if y.min() < 0 or y.max() >= p.shape[1]:
        raise ValueError(f"labels must lie in [0, {p.shape[1] - 1}], got range [{y.min()}, {y.max()}]")
    return y, p


def _check_bins(n_bins) -> int:
    if isinstance(n_bins, bool) or not isinstance(n_bins, numbers.Integral) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}")
    return int(n_bins)


def reliability_table(y, proba, n_bins: int = 10, positive: int | None = None) -> pd.DataFrame:
    """Reliability-diagram data in equal-width bins; chapter 13.

    By default the top-label view: ``confidence`` = the largest probability, ``correct`` =
    whether that class is true. With ``positive=k``: the one-vs-rest view of class ``k``
    (``confidence`` = ``p_k``, ``correct`` = ``y == k``), the quantity that
    ``sklearn.calibration.calibration_curve`` bins. Bins are ``[0, 1/B], (1/B, 2/B], ...``;
    empty bins are left out. Columns: ``bin``, ``count``, ``confidence`` (mean), ``accuracy``.
    """
    y, p = _check_proba(y, proba)
    b = _check_bins(n_bins)
    if positive is None:
        conf, correct = p.max(1), (p.argmax(1) == y).astype(float)
    else:
        if not 0 <= positive < p.shape[1]:
            raise ValueError(f"positive must be a class in [0, {p.shape[1] - 1}], got {positive!r}")
        conf, correct = p[:, positive], (y == positive).astype(float)
    # the same binning as scikit-learn: searchsorted on the inner edges
    idx = np.searchsorted(np.linspace(0, 1, b + 1)[1:-1], conf)
    rows = [{"bin": k, "count": int((idx == k).sum()), "confidence": float(conf[idx == k].mean()),
             "accuracy": float(correct[idx == k].mean())} for k in range(b) if (idx == k).any()]
    return pd.DataFrame(rows)


def expected_calibration_error(y, proba, n_bins: int = 15) -> float:
    """Top-label ECE: ``sum_b (n_b / n) |accuracy_b - confidence_b|``; chapter 13."""
    t = reliability_table(y, proba, n_bins)
    return float((t["count"] * (t["accuracy"] - t["confidence"]).abs()).sum() / t["count"].sum())


def plot_reliability(tables: dict[str, pd.DataFrame], ax=None, title: str | None = None):
    """Reliability diagrams (one line per table, e.g. before/after recalibration); chapter 13."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(4.2, 4))
    ax.plot([0, 1], [0, 1], ls="--", c="0.6", lw=1, label="perfect calibration")
    for name, t in tables.items():
        ax.plot(t["confidence"], t["accuracy"], marker="o", ms=4, label=name)
    ax.set(xlabel="confidence (mean predicted probability)", ylabel="observed accuracy", xlim=(0, 1),
           ylim=(0, 1), title=title or "Reliability diagram")
    ax.legend(fontsize=8, loc="upper left")
    return ax


class TemperatureScaler:
    """Temperature scaling (Guo et al. 2017): ``softmax(logits / T)``; chapter 13.

    ``fit(logits, y)`` on a validation split finds ``T`` minimising the mean negative
    log-likelihood (a bounded 1-D search over ``log T``). Probabilities can be given instead
    of logits (``from_proba=True``): their logs are logits up to a constant per row.
    """

    def __init__(self, bounds: tuple[float, float] = (0.05, 20.0)):
        if not 0 < bounds[0] < bounds[1]:
            raise ValueError(f"bounds must be 0 < low < high, got {bounds!r}")
        self.bounds = bounds
        self.temperature_: float | None = None

    @staticmethod
    def _logits(z, from_proba: bool) -> np.ndarray:
        z = np.asarray(z, dtype=np.float64)
        if z.ndim != 2:
            raise ValueError(f"logits must be (n, K), got shape {z.shape}")
        return np.log(np.clip(z, 1e-12, None)) if from_proba else z

    @staticmethod
    def nll(logits, y, temperature: float = 1.0) -> float:
        """Mean negative log-likelihood of ``softmax(logits / temperature)``."""
        lp = special.log_softmax(np.asarray(logits, float) / temperature, axis=1)
        return float(-lp[np.arange(len(lp)), np.asarray(y, int)].mean())

    def fit(self, logits, y, from_proba: bool = False) -> TemperatureScaler:
        z = self._logits(logits, from_proba)
        y = np.asarray(y, int)
        if len(y) != len(z):
            raise ValueError(f"{len(z)} rows of logits but {len(y)} labels")
        res = optimize.minimize_scalar(lambda lt: self.nll(z, y, np.exp(lt)), method="bounded",
                                       bounds=tuple(np.log(self.bounds)), options={"xatol": 1e-6})
        self.temperature_ = float(np.exp(res.x))
        return self

    def transform(self, logits, from_proba: bool = False) -> np.ndarray:
        if self.temperature_ is None:
            raise RuntimeError("TemperatureScaler is not fitted: call fit(logits, y) on a validation split")
        return special.softmax(self._logits(logits, from_proba) / self.temperature_, axis=1)


# ---------------------------------------------------------------------------------------------
# split conformal prediction
# ---------------------------------------------------------------------------------------------
def conformal_quantile(scores, alpha: float) -> float:
    """The ``ceil((n + 1)(1 - alpha)) / n`` empirical quantile of calibration scores; chapter 13.

    Equal to ``np.quantile(scores, level, method="inverted_cdf")`` with ``level = k / n``; infinite when ``n`` is too small
    for the requested coverage (the set must then hold every class).
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha!r}")
    if len(s) == 0:
        raise ValueError("no calibration scores")
    k = int(np.ceil((len(s) + 1) * (1 - alpha)))
    if k > len(s):
        return float("inf")
    return float(np.sort(s)[k - 1])


class SplitConformal:
    """Split-conformal prediction sets for a classifier's probabilities; chapter 13.

    ``score="lac"``: ``s = 1 - p_y``, sets ``{k: 1 - p_k <= q}`` (smallest sets on average).
    ``score="aps"``: ``s`` = probability mass of the classes ranked above ``y`` plus ``u p_y``
    with ``u ~ U(0, 1)`` drawn from ``seed`` (``randomized=False``: ``u = 1``, conservative),
    sets grow class by class until that mass passes ``q`` (adaptive: larger for hard cases).
    """

    def __init__(self, alpha: float = 0.1, score: str = "lac", randomized: bool = True, seed: int = 0):
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must lie in (0, 1), got {alpha!r}")
        if score not in CONFORMAL_SCORES:
            raise ValueError(f"unknown score {score!r}; expected one of {CONFORMAL_SCORES}")
        self.alpha, self.score, self.randomized, self.seed = float(alpha), score, bool(randomized), int(seed)
        self.q_: float | None = None

    def _u(self, n: int, offset: int) -> np.ndarray:
        if not self.randomized:
            return np.ones(n)
        return np.random.default_rng([self.seed, offset]).random(n)

    def _aps_all(self, p: np.ndarray, u: np.ndarray) -> np.ndarray:
        """APS score of every class for every row: mass strictly above + u * own mass."""
        order = np.argsort(-p, axis=1, kind="stable")
        ps = np.take_along_axis(p, order, 1)
        above = np.cumsum(ps, 1) - ps
        s_sorted = above + u[:, None] * ps
        s = np.empty_like(p)
        np.put_along_axis(s, order, s_sorted, 1)
        return s

    def scores(self, proba, y, offset: int = 0) -> np.ndarray:
        y, p = _check_proba(y, proba)
        if self.score == "lac":
            return 1 - p[np.arange(len(p)), y]
        return self._aps_all(p, self._u(len(p), offset))[np.arange(len(p)), y]

    def fit(self, proba, y) -> SplitConformal:
        """Calibrate on held-out patients never used to train the model."""
        self.q_ = conformal_quantile(self.scores(proba, y, offset=0), self.alpha)
        self.n_cal_ = len(np.asarray(y))
        return self

    def predict_sets(self, proba) -> np.ndarray:
        """Boolean (n, K): class ``k`` is in patient ``i``'s set."""
        if self.q_ is None:
            raise RuntimeError("SplitConformal is not fitted: call fit(proba, y) on a calibration split")
        p = np.asarray(proba, dtype=np.float64)
        _check_proba(np.zeros(len(p), int), p)
        if self.score == "lac":
            return (1 - p) <= self.q_
        return self._aps_all(p, self._u(len(p), offset=1)) <= self.q_


def set_coverage(sets, y) -> dict:
    """Coverage (share of sets holding the true class), mean set size, and the sizes' spread."""
    s = np.asarray(sets, bool)
    y = np.asarray(y, int)
    if s.ndim != 2 or len(s) != len(y):
        raise ValueError(f"sets must be (n, K) for {len(y)} labels, got shape {s.shape}")
    size = s.sum(1)
    return {"coverage": float(s[np.arange(len(y)), y].mean()), "mean_size": float(size.mean()),
            "size_counts": {int(k): int((size == k).sum()) for k in range(s.shape[1] + 1)}}


# ---------------------------------------------------------------------------------------------
# subgroups and center shift
# ---------------------------------------------------------------------------------------------
def age_bands(age, edges: Sequence[float] = (0, 30, 50, 70, 200)) -> pd.Categorical:
    """Age bands ``[a, b)`` as a categorical (labels ``'30-49'`` etc.; the last one ``'70+'``)."""
    e = list(edges)
    labels = [f"{int(a)}-{int(b) - 1}" for a, b in zip(e[:-2], e[1:-1])] + [f"{int(e[-2])}+"]
    return pd.cut(np.asarray(age, float), e, right=False, labels=labels)


def _metrics(y, p) -> dict:
    from sklearn.metrics import roc_auc_score

    out = {"n": len(y), "accuracy": float((p.argmax(1) == y).mean())}
    if len(np.unique(y)) < p.shape[1]:  # a class absent from this subgroup: macro AUC undefined
        out["macro_auc"] = np.nan
    else:
        out["macro_auc"] = float(roc_auc_score(y, p, multi_class="ovr", average="macro"))
    out["ece"] = expected_calibration_error(y, p, n_bins=10)
    return out


def subgroup_table(y, proba, groups: pd.DataFrame, min_size: int = 10) -> pd.DataFrame:
    """Accuracy, macro AUC and ECE overall and per subgroup; chapter 13.

    ``groups`` has one column per grouping (e.g. ``sex``, ``age_band``, ``center``) and one
    row per patient. Subgroups smaller than ``min_size`` are reported with NaN metrics (too
    few patients to say anything) rather than a noisy number.
    """
    y, p = _check_proba(y, proba)
    if len(groups) != len(y):
        raise ValueError(f"groups has {len(groups)} rows for {len(y)} patients")
    rows = [{"grouping": "all", "group": "all", **_metrics(y, p)}]
    for col in groups.columns:
        g = np.asarray(groups[col]).astype(str)
        for v in sorted(set(g)):
            m = g == v
            r = _metrics(y[m], p[m]) if m.sum() >= min_size else {"n": int(m.sum()), "accuracy": np.nan,
                                                                   "macro_auc": np.nan, "ece": np.nan}
            rows.append({"grouping": col, "group": v, **r})
    return pd.DataFrame(rows)


def center_shift(cohort, held_out: str, normalise: bool, reference: int | None = None, seed: int = 0,
                 features: dict | None = None, colour: bool = True) -> dict:
    """Train on the other centers, test on ``held_out``, with or without stain normalisation; chapter 13.

    Each slide region is described by nine nuclear features (:func:`oncolab.stages.slide_features`,
    which deconvolves the colours with a fixed stain matrix, so a center's stain shifts them),
    and with ``colour`` also by the mean and spread of its R, G, B values
    (:func:`oncolab.vision.pathology.colour_statistics`).
    With ``normalise`` every slide is first mapped to the stain of one training slide
    (``reference``: a position in the cohort, by default the first training patient) by
    :class:`oncolab.vision.MacenkoNormalizer`. A standardised logistic regression is trained on
    the training centers' patients and scored (macro AUC, accuracy) on the internal test part
    (a seeded 25% of the training centers' patients, never trained on) and on the held-out
    center. Returns the scores and their drops (internal minus external). A stain shift moves
    every patient of the new center the same way, which the ranking (AUC) may survive while
    the decision thresholds (accuracy) do not: report both. Pass ``features`` (a dict from a previous call's
    ``'features'``) to reuse the slide features.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from .stages import slide_features
    from .vision.pathology import MacenkoNormalizer, colour_statistics

    center = cohort.clinical["center"].to_numpy().astype(str)
    if held_out not in set(center):
        raise ValueError(f"held_out center {held_out!r} is not in the cohort's centers {sorted(set(center))}")
    has = cohort.presence["pathology"].to_numpy(bool) if "pathology" in cohort.presence else np.ones(len(cohort), bool)
    inside = np.flatnonzero((center != held_out) & has)
    outside = np.flatnonzero((center == held_out) & has)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(inside)
    n_int = max(len(perm) // 4, 3)
    internal, train = np.sort(perm[:n_int]), np.sort(perm[n_int:])
    ref = int(train[0] if reference is None else reference)
    key = ("normalised", ref, colour) if normalise else ("raw", colour)  # raw features serve every held-out center
    feats = dict(features or {})
    if key not in feats:
        norm = MacenkoNormalizer().fit(cohort.slide(ref)) if normalise else None
        X = np.full((len(cohort), 15 if colour else 9), np.nan)
        for i in np.flatnonzero(has):
            img = cohort.slide(int(i))
            img = norm.transform(img) if norm is not None else img
            X[i] = np.concatenate([slide_features(img), colour_statistics(img)]) if colour else slide_features(img)
        feats[key] = X
    X = feats[key]
    y = cohort.y
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(X[train], y[train])

    def score(rows):
        p = clf.predict_proba(X[rows])
        return (float(roc_auc_score(y[rows], p, multi_class="ovr", average="macro")),
                float((p.argmax(1) == y[rows]).mean()))

    auc_in, acc_in = score(internal)
    auc_out, acc_out = score(outside)
    return {"held_out": held_out, "normalised": bool(normalise), "n_train": len(train), "n_internal": len(internal),
            "n_external": len(outside), "auc_internal": auc_in, "auc_external": auc_out,
            "auc_drop": auc_in - auc_out, "accuracy_internal": acc_in, "accuracy_external": acc_out,
            "accuracy_drop": acc_in - acc_out,
            "features": feats}
