"""Classification metrics: macro AUC, the point metrics of a diagnosis + risk model, the patient
bootstrap of any metric, and the paired bootstrap of the difference between two models.

Taught in chapter 10 ("Fusion strategies": the ablation table with bootstrap intervals) and
used by the complete system (chapter 12); :func:`macro_auc` and :func:`paired_bootstrap` are used
from chapter 2 on, :func:`bootstrap_ci` from chapter 6, and the subgroup table of chapter 13
reports :func:`macro_auc`. The diagnosis metrics are the ones
the bone-tumour paper reports (macro precision, macro F1, macro one-vs-rest AUC) plus accuracy
and macro recall; the risk metric is Harrell's C (:func:`oncolab.survival.harrell_c`).

Every bootstrap here resamples patients with replacement from ``numpy.random.default_rng(seed)``
(one draw of ``n`` indices per resample), so the same seed gives the same numbers, and the
percentile interval is read from the resampled values. A resample on which a metric is
undefined (a class absent, no comparable pair of survival times) is skipped; with fewer than
ten usable resamples no interval is reported (NaN).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from ..survival import harrell_c
from ._checks import check_level, check_n_boot

__all__ = ["METRICS", "UndefinedMetricError", "bootstrap_ci", "bootstrap_metrics", "macro_auc", "paired_bootstrap",
           "point_metrics"]

METRICS = ("accuracy", "macro_precision", "macro_recall", "macro_f1", "macro_auc", "c_index")

_MIN_RESAMPLES = 10  # fewer usable resamples than this: no interval


class UndefinedMetricError(ValueError):
    """A metric has no value on these patients (for AUC: a class without any patient)."""


def macro_auc(y, proba, labels=None) -> float:
    """Macro one-vs-rest ROC AUC: the mean over classes of the AUC of ``proba[:, k]`` for ``y == labels[k]``.

    Each class's AUC is the Mann-Whitney statistic: the probability that a random patient of
    the class scores higher than a random patient of the other classes, ties counting 1/2.
    Equal to ``sklearn.metrics.roc_auc_score(y, proba, multi_class="ovr", average="macro",
    labels=labels)`` for three or more classes. Used from chapter 2 on (every held-out AUC);
    chapter 10's ablation table reports it.

    Parameters
    ----------
    y : array-like of shape (n,)
        True class of each patient.
    proba : array-like of shape (n, K) or (n,)
        Scores, one column per class (probabilities or any monotone scores such as logits;
        rows need not sum to 1). A 1-D array is the score of the second label of a binary
        problem, as in scikit-learn. With ``(n, 2)`` probabilities that sum to 1 the result
        equals the binary AUC of the second column.
    labels : sequence, optional
        The class of each column of ``proba``, in order; by default ``0, 1, ..., K - 1``
        (``0, 1`` for a 1-D score).

    Returns
    -------
    float
        The macro AUC, in [0, 1].

    Raises
    ------
    UndefinedMetricError
        When a class of ``labels`` has no patient in ``y`` (its AUC is undefined); a subclass
        of ``ValueError``.
    ValueError
        When the shapes do not match, a score is not finite, or ``y`` holds a label that is not
        in ``labels``.
    """
    y = np.asarray(y)
    s = np.asarray(proba, dtype=np.float64)
    if s.ndim == 1:
        s = s[:, None]
        k, binary = 2, True
    elif s.ndim == 2 and s.shape[1] >= 2:
        k, binary = s.shape[1], False
    else:
        raise ValueError(f"proba must be (n, K) with K >= 2 classes or a 1-D binary score, got shape {s.shape}")
    if y.ndim != 1 or len(y) != len(s):
        raise ValueError(f"y must hold one label per row of proba ({len(s)} rows), got shape {y.shape}")
    if not np.isfinite(s).all():
        raise ValueError("proba holds NaN or infinite scores")
    labels = list(range(k)) if labels is None else list(labels)
    if len(labels) != k or len(set(labels)) != k:
        raise ValueError(f"labels must name the {k} classes of proba's columns once each, got {labels!r}")
    unknown = sorted(set(y.tolist()) - set(labels), key=str)
    if unknown:
        raise ValueError(f"y holds labels {unknown} that are not among labels {labels}")
    absent = [c for c in labels if not (y == c).any()]
    if absent:
        raise UndefinedMetricError(f"class(es) {absent} have no patient in y: the macro AUC is undefined")
    cols = [(labels[1], s[:, 0])] if binary else [(labels[j], s[:, j]) for j in range(k)]
    aucs = []
    for c, score in cols:
        pos = y == c
        n_pos, n_neg = int(pos.sum()), int((~pos).sum())
        ranks = rankdata(score)  # average ranks: a tie counts 1/2
        aucs.append((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
    return float(np.mean(aucs))


def point_metrics(y, proba, time=None, event=None, risk=None) -> dict[str, float]:
    """Each metric of :data:`METRICS` once, on all the patients given; chapter 10.

    Parameters
    ----------
    y : array-like of shape (n,)
        True diagnosis, ``0..K-1``.
    proba : array-like of shape (n, K)
        Predicted class probabilities; the predicted class is the row's largest.
    time, event, risk : array-like of shape (n,), optional
        Survival time, event indicator and predicted risk (higher = worse). ``c_index``
        (:func:`oncolab.survival.harrell_c`) is computed only when all three are given.

    Returns
    -------
    dict
        ``accuracy``, ``macro_precision``, ``macro_recall``, ``macro_f1`` (scikit-learn, over
        the ``K`` classes, 0 where a class is never predicted), ``macro_auc``
        (:func:`macro_auc`; NaN when a class has no patient) and, with survival data,
        ``c_index`` (NaN when there is no event).

    Raises
    ------
    ValueError
        When ``proba`` is not (n, K) for the ``n`` labels, or the C-index has no comparable
        pair (:func:`oncolab.survival.harrell_c`).
    """
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    y = np.asarray(y)
    proba = np.asarray(proba, float)
    if proba.ndim != 2 or len(proba) != len(y):
        raise ValueError(f"proba must be (n, n_classes) for n={len(y)} patients, got shape {proba.shape}")
    k = proba.shape[1]
    pred = proba.argmax(1)
    p, r, f, _ = precision_recall_fscore_support(y, pred, labels=range(k), average="macro", zero_division=0)
    out = {"accuracy": float(accuracy_score(y, pred)), "macro_precision": float(p), "macro_recall": float(r),
           "macro_f1": float(f)}
    try:
        out["macro_auc"] = macro_auc(y, proba)
    except UndefinedMetricError:
        out["macro_auc"] = float("nan")
    if risk is not None and time is not None and event is not None:
        ev = np.asarray(event, bool)
        out["c_index"] = (float(harrell_c(np.asarray(time, float), ev, np.asarray(risk, float))) if ev.any()
                          else float("nan"))
    return out


def _resamples(n: int, n_boot: int, seed) -> Iterator[np.ndarray]:
    """``n_boot`` bootstrap index vectors of length ``n``, drawn from ``default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    for _ in range(n_boot):
        yield rng.integers(0, n, n)


def _percentile_interval(values, level: float) -> tuple[float, float]:
    """The ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles; NaN with too few values."""
    v = np.asarray(values, dtype=np.float64)
    if len(v) < _MIN_RESAMPLES:
        return float("nan"), float("nan")
    lo, hi = np.quantile(v, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def bootstrap_metrics(y, proba, time=None, event=None, risk=None, n_boot: int = 200, seed: int = 0,
                      level: float = 0.95) -> pd.DataFrame:
    """:func:`point_metrics` with a percentile bootstrap interval for each; chapter 10.

    Patients are resampled with replacement ``n_boot`` times (seeded); a resample where a
    metric is undefined (a class absent, no events) is skipped for that metric, and a resample
    where the C-index has no comparable pair is skipped for every metric.

    Parameters
    ----------
    y, proba, time, event, risk
        As in :func:`point_metrics`.
    n_boot : int
        Number of bootstrap resamples (0: no intervals).
    seed : int
        Seed of the resampling; the same seed gives the same table.
    level : float
        Coverage of the intervals, in (0, 1).

    Returns
    -------
    pandas.DataFrame
        One row per metric of :func:`point_metrics`, columns ``metric``, ``value`` (on all
        patients), ``ci_low``, ``ci_high`` (NaN with fewer than ten usable resamples) and ``n``
        (the number of patients).

    Raises
    ------
    ValueError
        When ``level`` or ``n_boot`` is invalid, or :func:`point_metrics` fails on all the
        patients.
    """
    level = check_level(level)
    n_boot = check_n_boot(n_boot)
    y = np.asarray(y)
    proba = np.asarray(proba, float)
    point = point_metrics(y, proba, time, event, risk)
    surv = [None if a is None else np.asarray(a) for a in (time, event, risk)]
    n = len(y)
    boots: dict[str, list[float]] = {k: [] for k in point}
    for i in _resamples(n, n_boot, seed):
        try:
            b = point_metrics(y[i], proba[i], *(None if a is None else a[i] for a in surv))
        except ValueError:
            continue
        for k, v in b.items():
            if np.isfinite(v):
                boots[k].append(v)
    rows = []
    for k, v in point.items():
        lo, hi = _percentile_interval(boots[k], level)
        rows.append({"metric": k, "value": v, "ci_low": lo, "ci_high": hi, "n": n})
    return pd.DataFrame(rows)


def _same_patients(y, scores: dict[str, object]) -> tuple[int, Callable[[np.ndarray], tuple]]:
    """Check that ``y`` (an array or a tuple of arrays) and every score cover the same patients.

    Returns the number of patients and a function that takes patient indices and returns
    ``(y, *scores)`` restricted to them, with ``y`` in the form it was given.
    """
    is_tuple = isinstance(y, tuple)
    ys = [np.asarray(a) for a in (y if is_tuple else (y,))]
    if not ys:
        raise ValueError("y is an empty tuple; expected an array or a tuple of arrays, one value per patient")
    arrays = {name: np.asarray(s) for name, s in scores.items()}
    n = None
    for name, a in [*((f"y[{j}]" if is_tuple else "y", a) for j, a in enumerate(ys)), *arrays.items()]:
        if a.ndim == 0:
            raise ValueError(f"{name} is a scalar; expected one value (or row) per patient")
        if n is None:
            n = len(a)
        elif len(a) != n:
            raise ValueError(f"{name} has {len(a)} patients but the first array has {n}; every array must cover "
                             "the same patients")
    if n == 0:
        raise ValueError("no patients: y and the scores are empty")

    def take(idx: np.ndarray) -> tuple:
        yy = tuple(a[idx] for a in ys) if is_tuple else ys[0][idx]
        return (yy, *(a[idx] for a in arrays.values()))

    return int(n), take


def _defined(metric, y, score) -> float | None:
    """``metric(y, score)`` as a float, or None where it is undefined (raises ValueError, or not finite)."""
    try:
        v = float(metric(y, score))
    except ValueError:
        return None
    return v if np.isfinite(v) else None


def _check_metric(metric) -> None:
    if not callable(metric):
        raise TypeError(f"metric must be a function metric(y, score) -> float, got {metric!r}")


def bootstrap_ci(metric: Callable[..., float], y, score, n_boot: int = 1000, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float, float]:
    """Any metric on all patients, and its percentile bootstrap interval over patients.

    Chapters 2 and 4 build this interval by hand for the macro AUC; this is the same
    computation for any ``metric(y, score)``, e.g. :func:`macro_auc` or, with
    ``y = (time, event)``, ``lambda te, r: harrell_c(*te, r)``.

    Parameters
    ----------
    metric : callable
        ``metric(y, score) -> float``, truth first, as in scikit-learn. A resample on which it
        raises ``ValueError`` (e.g. :class:`UndefinedMetricError` for a class absent) or returns
        NaN is skipped.
    y : array-like of shape (n,), or tuple of such arrays
        The truth; a tuple (e.g. ``(time, event)``) is resampled array by array with the same
        patient indices and passed to ``metric`` as a tuple. A list is one array, not a tuple.
    score : array-like of shape (n,) or (n, K)
        The model's output, one row per patient.
    n_boot, seed, level
        As in :func:`bootstrap_metrics` (0 resamples: no interval).

    Returns
    -------
    tuple of float
        ``(point, low, high)``: the metric on all patients and the ``(1 - level) / 2`` and
        ``(1 + level) / 2`` quantiles of its resampled values (NaN when fewer than ten
        resamples were usable).

    Raises
    ------
    TypeError
        When ``metric`` is not callable.
    ValueError
        When ``level`` or ``n_boot`` is invalid, the arrays do not cover the same patients,
        there is no patient, or ``metric`` raises on all the patients.
    """
    _check_metric(metric)
    level = check_level(level)
    n_boot = check_n_boot(n_boot)
    n, take = _same_patients(y, {"score": score})
    point = float(metric(*take(np.arange(n))))
    values = [v for i in _resamples(n, n_boot, seed) if (v := _defined(metric, *take(i))) is not None]
    return (point, *_percentile_interval(values, level))


def paired_bootstrap(metric: Callable[..., float], y, score_a, score_b, n_boot: int = 1000, seed: int = 0,
                     level: float = 0.95) -> dict:
    """The difference ``metric(y, score_a) - metric(y, score_b)`` of two models on the same patients.

    Each resample draws patients once and scores both models on them, so the interval of the
    difference reflects only how the two models disagree, not how hard the sampled patients
    are: it is much narrower than two separate intervals would suggest, and the right way to
    say whether one model beats another on a test set. Used from chapter 2 on (ResNet against
    the CNN); chapter 14 builds it by hand for Harrell's C.

    The two-sided p-value for "no difference" inverts the percentile interval: it is the
    smallest ``1 - level`` at which the interval excludes 0,
    ``p = min(1, 2 * min(1 + #{d* <= 0}, 1 + #{d* >= 0}) / (B + 1))``, where ``d*`` are the
    ``B`` usable resampled differences (the ``+ 1`` keeps it above 0 with finitely many
    resamples: its smallest value is ``2 / (B + 1)``).

    Parameters
    ----------
    metric : callable
        ``metric(y, score) -> float``, truth first. A resample on which it raises
        ``ValueError`` or returns NaN for either model is skipped.
    y : array-like of shape (n,), or tuple of such arrays
        The truth, as in :func:`bootstrap_ci` (e.g. ``(time, event)`` for a C-index).
    score_a, score_b : array-like of shape (n,) or (n, K)
        The two models' outputs for the same patients, in the same order.
    n_boot, seed, level
        As in :func:`bootstrap_metrics`.

    Returns
    -------
    dict
        ``value_a``, ``value_b`` (each model on all patients), ``difference`` (``value_a -
        value_b``), ``ci_low``, ``ci_high`` (percentile interval of the difference), ``p_value``
        (as above; NaN, as is the interval, with fewer than ten usable resamples), ``n`` (the
        number of patients) and ``n_boot_used`` (the resamples on which both values were
        defined).

    Raises
    ------
    TypeError
        When ``metric`` is not callable.
    ValueError
        When ``level`` or ``n_boot`` is invalid, the arrays do not cover the same patients,
        there is no patient, or ``metric`` raises on all the patients for either model.
    """
    _check_metric(metric)
    level = check_level(level)
    n_boot = check_n_boot(n_boot)
    n, take = _same_patients(y, {"score_a": score_a, "score_b": score_b})
    yy, a, b = take(np.arange(n))
    value_a, value_b = float(metric(yy, a)), float(metric(yy, b))
    diffs = []
    for i in _resamples(n, n_boot, seed):
        yy, a, b = take(i)
        va = _defined(metric, yy, a)
        vb = None if va is None else _defined(metric, yy, b)
        if vb is not None:
            diffs.append(va - vb)
    d = np.asarray(diffs, dtype=np.float64)
    lo, hi = _percentile_interval(d, level)
    if len(d) < _MIN_RESAMPLES:
        p = float("nan")
    else:
        tail = min(int((d <= 0).sum()), int((d >= 0).sum()))
        p = min(1.0, 2 * (tail + 1) / (len(d) + 1))
    return {"value_a": value_a, "value_b": value_b, "difference": value_a - value_b, "ci_low": lo, "ci_high": hi,
            "p_value": p, "n": n, "n_boot_used": len(d)}
