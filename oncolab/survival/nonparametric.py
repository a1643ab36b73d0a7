"""Kaplan-Meier, Nelson-Aalen and the log-rank test, from first principles.

Taught in chapter 8 ("Survival analysis from first principles"). Checked against
scikit-survival (``kaplan_meier_estimator``, ``nelson_aalen_estimator``,
``compare_survival``) and lifelines in ``tests/test_survival_nonparametric.py``.

Notation: at each distinct observed time ``t_j`` there are ``n_j`` patients at risk (time
``>= t_j``) and ``d_j`` events. Kaplan-Meier: ``S(t) = prod_{t_j <= t} (1 - d_j / n_j)``;
Greenwood's variance of ``log S`` is ``sum d_j / (n_j (n_j - d_j))``; the pointwise
confidence interval is built on the log(-log) scale, so it stays inside [0, 1].
Nelson-Aalen: ``H(t) = sum_{t_j <= t} d_j / n_j``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from ._checks import check_survival

__all__ = ["KaplanMeier", "event_table", "kaplan_meier", "logrank_test", "nelson_aalen", "step_at"]


def event_table(time, event) -> pd.DataFrame:
    """Distinct times with patients at risk, events and censorings (the life table).

    Taught in chapter 8 (the table behind Kaplan-Meier). No input check is made here:
    :func:`kaplan_meier` checks before calling it.

    Parameters
    ----------
    time : array-like of float, shape (n,)
        Follow-up times.
    event : array-like of bool, shape (n,)
        True where the event was observed.

    Returns
    -------
    pandas.DataFrame
        One row per distinct time, increasing: ``time``, ``n_at_risk`` (patients with time
        ``>=`` it), ``n_events``, ``n_censored``.
    """
    time = np.asarray(time, float)
    event = np.asarray(event, bool)
    uniq, inv = np.unique(time, return_inverse=True)
    n_events = np.bincount(inv, weights=event, minlength=len(uniq)).astype(int)
    n_total = np.bincount(inv, minlength=len(uniq))
    n_at_risk = len(time) - np.r_[0, np.cumsum(n_total)[:-1]]
    return pd.DataFrame({"time": uniq, "n_at_risk": n_at_risk, "n_events": n_events,
                         "n_censored": n_total - n_events})


def step_at(x: np.ndarray, y: np.ndarray, t, before: float = 1.0) -> np.ndarray:
    """Evaluate a right-continuous step function (jumps at ``x``, values ``y``) at ``t``.

    Before the first jump the value is ``before`` (1 for a survival curve, 0 for a
    cumulative hazard); after the last jump it is the last value. Taught in chapter 8 (reading
    a Kaplan-Meier curve at any time).

    Parameters
    ----------
    x : numpy.ndarray of float, shape (m,)
        Jump times, increasing.
    y : numpy.ndarray of float, shape (m,)
        Value from each jump on.
    t : float or array-like of float
        Where to evaluate.
    before : float, default 1.0
        Value before the first jump.

    Returns
    -------
    numpy.ndarray of float
        The step function at ``t``, with the shape of ``t``.
    """
    idx = np.searchsorted(np.asarray(x), np.asarray(t, float), side="right") - 1
    yy = np.r_[before, np.asarray(y, float)]
    return yy[idx + 1]


@dataclass
class KaplanMeier:
    """A fitted Kaplan-Meier curve: ``time`` (distinct observed times), ``survival``,
    the pointwise confidence band, and the life table.

    Made by :func:`kaplan_meier`; taught in chapter 8. Call it to read ``S(t)`` at any times.

    Attributes
    ----------
    time : numpy.ndarray of float, shape (m,)
        Distinct observed times (events and censorings), increasing.
    survival : numpy.ndarray of float, shape (m,)
        ``S(t)`` just after each time.
    ci_low, ci_high : numpy.ndarray of float, shape (m,)
        Pointwise Greenwood log(-log) interval; NaN for a ``reverse`` (censoring) estimate.
    n_at_risk, n_events : numpy.ndarray of int, shape (m,)
        The life table (for a ``reverse`` estimate: at risk of censoring, and censorings).
    conf_level : float
        Level of the interval.
    """

    time: np.ndarray
    survival: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    n_at_risk: np.ndarray
    n_events: np.ndarray
    conf_level: float

    def __call__(self, t) -> np.ndarray:
        """S(t) at any times (1 before the first observed time).

        Beyond the last observed time the curve is undefined unless it reached 0; this
        returns the last value there (and 0 where the curve reached 0).

        Parameters
        ----------
        t : float or array-like of float
            Times.

        Returns
        -------
        numpy.ndarray of float
            ``S(t)``, with the shape of ``t``.
        """
        return step_at(self.time, self.survival, t)

    def median(self) -> float:
        """The first time at which S(t) <= 0.5 (``inf`` if the curve never gets there).

        Returns
        -------
        float
            The median survival time, or ``inf``.
        """
        below = np.flatnonzero(self.survival <= 0.5)
        return float(self.time[below[0]]) if len(below) else float("inf")

    def to_frame(self) -> pd.DataFrame:
        """The curve as a table.

        Returns
        -------
        pandas.DataFrame
            One row per distinct time: ``time``, ``n_at_risk``, ``n_events``, ``survival``,
            ``ci_low``, ``ci_high``.
        """
        return pd.DataFrame({"time": self.time, "n_at_risk": self.n_at_risk, "n_events": self.n_events,
                             "survival": self.survival, "ci_low": self.ci_low, "ci_high": self.ci_high})


def kaplan_meier(time=None, event=None, *, y=None, conf_level: float = 0.95, reverse: bool = False) -> KaplanMeier:
    """Kaplan-Meier estimate of S(t) with Greenwood log(-log) confidence intervals.

    Give ``time`` and ``event`` (bool), or ``y`` (scikit-survival's structured array).
    ``reverse=True`` estimates the *censoring* distribution G(t) = P(C > t) instead (used for
    inverse-probability-of-censoring weights): censorings become the events and, at a tied
    time, events are taken to happen before censorings (the patients who had an event at
    ``t`` are not at risk of being censored at ``t``). The band is not computed then. Taught in
    chapter 8; the censoring weights of the metrics of chapter 9 use ``reverse=True``.

    Parameters
    ----------
    time : array-like of float, shape (n,), optional
        Follow-up times, finite and >= 0.
    event : array-like of bool, shape (n,), optional
        True where the event was observed.
    y : numpy structured array of (event, time), shape (n,), optional
        Instead of ``time`` and ``event``.
    conf_level : float, default 0.95
        Level of the pointwise interval, in (0, 1).
    reverse : bool, default False
        Estimate the censoring survival ``G(t)`` instead of ``S(t)``.

    Returns
    -------
    KaplanMeier
        The curve at each distinct observed time, its interval and life table. An outcome
        without events is accepted (the curve stays at 1).

    Raises
    ------
    ValueError
        When ``conf_level`` is not in (0, 1) or the outcome fails
        :func:`~oncolab.survival.check_survival`.
    """
    if not 0 < conf_level < 1:
        raise ValueError(f"conf_level must be in (0, 1), got {conf_level!r}")
    event, time = check_survival(y, event=None if y is not None else event,
                                 time=None if y is not None else time, allow_all_censored=True)
    tab = event_table(time, event)
    n = tab["n_at_risk"].to_numpy()
    d = tab["n_events"].to_numpy()
    if reverse:
        n = n - d
        d = tab["n_censored"].to_numpy()
    ratio = np.divide(d, n, out=np.zeros(len(d)), where=d != 0)
    s = np.cumprod(1.0 - ratio)
    if reverse:
        nan = np.full(len(s), np.nan)
        return KaplanMeier(tab["time"].to_numpy(), s, nan, nan, n, d, conf_level)
    gw = np.divide(d, n * (n - d), out=np.zeros(len(d)), where=(d != 0) & (n != d))
    sigma = np.sqrt(np.cumsum(gw))  # sd of log S (Greenwood)
    eps = np.finfo(float).eps
    pos = s > eps
    log_s = np.where(pos, np.log(np.where(pos, s, 1.0)), 0.0)
    theta = np.divide(sigma, log_s, out=np.zeros(len(s)), where=log_s < -eps)
    z = stats.norm.isf((1 - conf_level) / 2)
    lo = np.exp(np.exp(-z * theta) * log_s)
    hi = np.exp(np.exp(z * theta) * log_s)
    lo[~pos] = 0.0
    hi[~pos] = 0.0
    return KaplanMeier(tab["time"].to_numpy(), s, lo, hi, n, d, conf_level)


def nelson_aalen(time=None, event=None, *, y=None) -> tuple[np.ndarray, np.ndarray]:
    """Nelson-Aalen cumulative hazard: ``(distinct times, H(t))``.

    Taught in chapter 8 (the cumulative hazard beside Kaplan-Meier).

    Parameters
    ----------
    time : array-like of float, shape (n,), optional
        Follow-up times.
    event : array-like of bool, shape (n,), optional
        True where the event was observed.
    y : numpy structured array of (event, time), shape (n,), optional
        Instead of ``time`` and ``event``.

    Returns
    -------
    times : numpy.ndarray of float, shape (m,)
        The distinct observed times, increasing.
    H : numpy.ndarray of float, shape (m,)
        ``H(t) = sum_{t_j <= t} d_j / n_j`` at each of them.

    Raises
    ------
    ValueError
        When the outcome fails :func:`~oncolab.survival.check_survival`.
    """
    event, time = check_survival(y, event=None if y is not None else event,
                                 time=None if y is not None else time, allow_all_censored=True)
    tab = event_table(time, event)
    return tab["time"].to_numpy(), np.cumsum(tab["n_events"].to_numpy() / tab["n_at_risk"].to_numpy())


def logrank_test(time=None, event=None, groups=None, *, y=None) -> dict:
    """The log-rank test that two or more groups share one survival function.

    At each event time the events are shared out among the groups in proportion to their
    numbers at risk (the expected counts ``E_g``); the statistic compares observed ``O_g``
    with expected over the first ``k - 1`` groups, ``(O - E)' V^-1 (O - E)``, where ``V`` is
    the hypergeometric covariance; it is chi-squared with ``k - 1`` degrees of freedom.

    Taught in chapter 8 (comparing the curves of two or more groups).

    Parameters
    ----------
    time : array-like of float, shape (n,), optional
        Follow-up times.
    event : array-like of bool, shape (n,), optional
        True where the event was observed.
    groups : array-like, shape (n,)
        One group label per patient (required; any sortable labels).
    y : numpy structured array of (event, time), shape (n,), optional
        Instead of ``time`` and ``event``.

    Returns
    -------
    dict
        ``statistic`` (float), ``p_value`` (float), ``df`` (int, ``k - 1``) and ``table`` (a
        DataFrame indexed by the sorted group labels: ``n``, ``observed``, ``expected``
        events).

    Raises
    ------
    ValueError
        When the outcome fails :func:`~oncolab.survival.check_survival` (including an outcome
        without events), ``groups`` is missing, is not 1-D with one label per patient, or
        holds fewer than two groups.
    """
    event, time = check_survival(y, event=None if y is not None else event,
                                 time=None if y is not None else time)
    if groups is None:
        raise ValueError("groups is required: one group label per patient")
    g = np.asarray(groups)
    if g.ndim != 1 or len(g) != len(time):
        raise ValueError(f"groups must be 1-D with one label per patient ({len(time)}), got shape {g.shape}")
    labels, gi = np.unique(g, return_inverse=True)
    k = len(labels)
    if k < 2:
        raise ValueError(f"the log-rank test needs at least two groups, got only {labels.tolist()}")
    uniq, ti = np.unique(time, return_inverse=True)
    m = len(uniq)
    # events and patients per (time, group)
    d = np.zeros((m, k))
    np.add.at(d, (ti, gi), event.astype(float))
    c = np.zeros((m, k))
    np.add.at(c, (ti, gi), 1.0)
    at_risk = c[::-1].cumsum(0)[::-1]           # n_{jg}: time >= t_j
    D = d.sum(1)
    N = at_risk.sum(1)
    keep = D > 0
    d, at_risk, D, N = d[keep], at_risk[keep], D[keep], N[keep]
    expected = (at_risk * (D / N)[:, None]).sum(0)
    observed = d.sum(0)
    f = np.divide(D * (N - D), N * N * (N - 1), out=np.zeros(len(N)), where=N > 1)
    V = np.einsum("j,jg->g", f * N, at_risk)  # diagonal part
    V = np.diag(V) - np.einsum("j,jg,jh->gh", f, at_risk, at_risk)
    z = (observed - expected)[: k - 1]
    stat = float(z @ np.linalg.solve(V[: k - 1, : k - 1], z))
    table = pd.DataFrame({"n": np.bincount(gi, minlength=k), "observed": observed.astype(int),
                          "expected": expected}, index=pd.Index(labels, name="group"))
    return {"statistic": stat, "p_value": float(stats.chi2.sf(stat, k - 1)), "df": k - 1, "table": table}
