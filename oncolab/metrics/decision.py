"""Decision-curve analysis: the net benefit of acting on a model's probability, beside treating
everyone and treating no one (Vickers and Elkin 2006). Taught in chapter 13 ("Evaluation and
clinical validity").

A clinician who would act (biopsy, refer, treat) when the probability of the condition is at
least a threshold ``t`` says, by choosing ``t``, that one true positive is worth ``(1 - t) / t``
false positives: at ``t = 0.2`` one malignant tumour found is worth four unneeded work-ups. The
**net benefit** of acting on a model at that threshold counts the true positives per patient,
net of the false positives weighted by that exchange rate::

    NB(t) = TP(t) / n - FP(t) / n * t / (1 - t),

where a patient is acted on when ``p >= t``. Treating everyone is the rule ``p = 1`` for every
patient (``NB = prevalence - (1 - prevalence) * t / (1 - t)``); treating no one has ``NB = 0``.
A model is worth using at the thresholds where its curve lies above both.

* :func:`net_benefit`: the net benefit at each threshold, counted from first principles;
* :func:`decision_curve`: one or more models beside treat-all and treat-none, as a table;
* :func:`net_benefit_difference`: the difference between two rules on the same patients, with
  the paired bootstrap of :func:`oncolab.metrics.paired_bootstrap` at each threshold.

The convention (act when ``p >= t``) and the values are those of the ``dcurves`` package,
against which the unit tests check them.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from .classification import paired_bootstrap

__all__ = ["decision_curve", "net_benefit", "net_benefit_difference"]


def _binary_outcome(y, p) -> tuple[np.ndarray, np.ndarray]:
    """``y`` as a boolean array (True = has the condition) and ``p`` as float probabilities, checked."""
    y = np.asarray(y)
    p = np.asarray(p, dtype=np.float64)
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D, one outcome per patient, got shape {y.shape}")
    if p.ndim != 1:
        raise ValueError(f"p must be 1-D, one probability per patient, got shape {p.shape}; for a multi-class "
                         "model pass the column of the class acted on")
    if len(y) != len(p):
        raise ValueError(f"y has {len(y)} patients but p has {len(p)}; expected one probability per patient")
    if len(y) == 0:
        raise ValueError("y and p are empty: no patients to evaluate")
    if y.dtype != bool:
        if not np.issubdtype(y.dtype, np.number):
            raise ValueError(f"y must be binary (0/1 or False/True, 1 = has the condition), got values of type "
                             f"{y.dtype}; for a diagnosis with several classes pass y == k")
        bad = np.unique(y[~np.isin(y, (0, 1))])
        if len(bad):
            raise ValueError(f"y must be binary (0/1 or False/True, 1 = has the condition), got values "
                             f"{bad[:5].tolist()}; for a diagnosis with several classes pass y == k")
        y = y == 1
    if not np.isfinite(p).all():
        raise ValueError("p holds NaN or infinite values; expected probabilities in [0, 1]")
    if p.min() < 0 or p.max() > 1:
        raise ValueError(f"p must be probabilities in [0, 1], got values from {p.min():g} to {p.max():g}")
    return y, p


def _thresholds(thresholds) -> np.ndarray:
    """The threshold probabilities as a 1-D float array, each strictly between 0 and 1."""
    t = np.atleast_1d(np.asarray(thresholds, dtype=np.float64))
    if t.ndim != 1 or len(t) == 0:
        raise ValueError(f"thresholds must be a number or a non-empty 1-D sequence, got shape {np.shape(thresholds)}")
    bad = t[~((t > 0) & (t < 1))]  # NaN fails both comparisons
    if len(bad):
        raise ValueError(f"threshold {bad[0]!r} is outside the open interval (0, 1): net benefit weighs false "
                         "positives by t / (1 - t), defined only for 0 < t < 1")
    return t


def net_benefit(y, p, thresholds):
    """Net benefit of acting on the patients whose probability is at least each threshold.

    ``NB(t) = TP(t) / n - FP(t) / n * t / (1 - t)``, where ``TP(t)`` and ``FP(t)`` count the
    patients with ``p >= t`` who have and who do not have the condition, and ``n`` is the
    number of patients (Vickers and Elkin 2006). Taught in chapter 13. Treat-all is
    ``net_benefit(y, numpy.ones(n), t)``; treat-none is 0.

    Parameters
    ----------
    y : array-like of shape (n,)
        Whether each patient has the condition acted on: 0/1 or False/True. For a diagnosis with
        several classes pass ``y == k`` for the class ``k`` acted on.
    p : array-like of shape (n,)
        The model's probability of the condition for each patient, in [0, 1].
    thresholds : float or array-like of shape (T,)
        Threshold probabilities, each strictly between 0 and 1.

    Returns
    -------
    float or numpy.ndarray of shape (T,)
        The net benefit at each threshold: a float for a single number, an array otherwise.
        In units of true positives per patient; at most the prevalence (a perfect model).

    Raises
    ------
    ValueError
        When ``y`` is not binary, ``p`` is not a probability per patient (NaN, outside [0, 1],
        another length), there is no patient, or a threshold is not in (0, 1).
    """
    y, p = _binary_outcome(y, p)
    t = _thresholds(thresholds)
    n = len(y)
    pos, neg = np.sort(p[y]), np.sort(p[~y])
    # searchsorted(side="left") is the number of values below t: the rest have p >= t
    tp = len(pos) - np.searchsorted(pos, t, side="left")
    fp = len(neg) - np.searchsorted(neg, t, side="left")
    nb = tp / n - fp / n * t / (1 - t)
    return float(nb[0]) if np.ndim(thresholds) == 0 else nb


def decision_curve(y, p, thresholds) -> pd.DataFrame:
    """The decision curve of one or more models beside treat-all and treat-none; chapter 13.

    Parameters
    ----------
    y : array-like of shape (n,)
        Whether each patient has the condition (0/1 or False/True), as in :func:`net_benefit`.
    p : array-like of shape (n,), or dict of str to array-like of shape (n,)
        The probability of the condition from one model (its column is named ``"model"``), or
        from several models by name, all for the same patients.
    thresholds : array-like of shape (T,)
        Threshold probabilities, each strictly between 0 and 1.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``threshold``, one column of net benefit per model, then ``"treat all"``
        and ``"treat none"`` (zeros). ``df.attrs["prevalence"]`` holds the share of patients
        with the condition and ``df.attrs["n"]`` their number.

    Raises
    ------
    ValueError
        As :func:`net_benefit`; also when no model is given or a model is named
        ``"treat all"`` or ``"treat none"``.
    """
    models = dict(p) if isinstance(p, Mapping) else {"model": p}
    if not models:
        raise ValueError("p is an empty dict: give at least one model's probabilities")
    clash = sorted({"treat all", "treat none"} & set(models))
    if clash:
        raise ValueError(f"model names {clash} are reserved for the reference rules; rename those models")
    t = _thresholds(thresholds)
    cols = {name: net_benefit(y, pm, t) for name, pm in models.items()}
    yb, _ = _binary_outcome(y, next(iter(models.values())))
    cols["treat all"] = net_benefit(yb, np.ones(len(yb)), t)
    cols["treat none"] = np.zeros(len(t))
    df = pd.DataFrame(cols, index=pd.Index(t, name="threshold"))
    df.attrs["prevalence"] = float(yb.mean())
    df.attrs["n"] = len(yb)
    return df


def net_benefit_difference(y, p_a, p_b, thresholds, n_boot: int = 1000, seed: int = 0,
                           level: float = 0.95) -> pd.DataFrame:
    """Net benefit of rule ``a`` minus rule ``b`` on the same patients, with paired bootstrap intervals.

    At each threshold, :func:`oncolab.metrics.paired_bootstrap` resamples the patients and
    scores both rules on each resample; the same ``seed`` at every threshold means the same
    resamples, so the rows are read together. Treat-all is the rule ``numpy.ones(n)``. Taught
    in chapter 13.

    Parameters
    ----------
    y : array-like of shape (n,)
        Whether each patient has the condition (0/1 or False/True).
    p_a, p_b : array-like of shape (n,)
        The two rules' probabilities for the same patients, in the same order.
    thresholds : float or array-like of shape (T,)
        Threshold probabilities, each strictly between 0 and 1.
    n_boot : int
        Bootstrap resamples (0: no intervals).
    seed : int
        Seed of the resampling; the same seed gives the same table.
    level : float
        Coverage of the intervals, in (0, 1).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``threshold``, the columns of :func:`oncolab.metrics.paired_bootstrap`:
        ``value_a``, ``value_b`` (net benefit of each rule on all patients), ``difference``,
        ``ci_low``, ``ci_high``, ``p_value``, ``n`` and ``n_boot_used``.

    Raises
    ------
    ValueError
        As :func:`net_benefit` for either rule, or when ``n_boot`` or ``level`` is invalid.
    """
    yb, _ = _binary_outcome(y, p_a)
    _binary_outcome(yb, p_b)
    t = _thresholds(thresholds)
    rows = [paired_bootstrap(lambda yy, s, ti=ti: net_benefit(yy, s, ti), yb, p_a, p_b, n_boot=n_boot, seed=seed,
                             level=level) for ti in t]
    return pd.DataFrame(rows, index=pd.Index(t, name="threshold"))
