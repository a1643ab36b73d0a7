"""Survival metrics from first principles: Harrell's C, Uno's C, time-dependent AUC, Brier
score, integrated Brier score, and calibration at a horizon.

Taught in chapter 8 (concordance by hand) and chapter 9 (the rest). Each is checked against
scikit-survival (``sksurv.metrics``) in ``tests/test_survival_metrics.py``.

Conventions (the same as scikit-survival's, so that results agree):

* a *risk* score is higher for patients expected to fail sooner;
* a pair ``(i, j)`` is *comparable* when ``i`` had an event and ``j`` was still under
  observation after it: ``t_j > t_i``, or ``t_j == t_i`` with ``j`` censored;
* risk scores within ``tied_tol`` of each other are tied and count one half;
* censoring weights come from the Kaplan-Meier estimate of the censoring distribution
  ``G(t) = P(C > t)`` fitted on ``y_train`` (:func:`oncolab.survival.kaplan_meier` with
  ``reverse=True``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._checks import check_risk, check_survival
from .nonparametric import kaplan_meier

__all__ = ["brier_from_censoring", "brier_score", "calibration_at_horizon", "censoring_survival",
           "check_eval_times", "concordance_counts", "harrell_c", "integrated_brier_score", "td_auc", "uno_c"]


# --------------------------------------------------------------------------------------------
# concordance: O(n log^2 n) pair counting, vectorised
def _count_below(pos_start: np.ndarray, thresh: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """For each query q: #{elements e with position >= pos_start[q] and rank[e] < thresh[q]}.

    ``rank`` holds each position's rank (0..n-1) by risk. The prefix ``[0, s)`` splits into at
    most log2(n) aligned blocks (one per set bit of ``s``); at each level the ranks are sorted
    inside their blocks once, and every query's count in its block is a binary search.
    """
    n = len(rank)
    below_all = thresh.astype(np.int64)  # ranks are a permutation: #{rank < t} = t
    prefix = np.zeros(len(pos_start), dtype=np.int64)
    s = pos_start.astype(np.int64)
    pos = np.arange(n, dtype=np.int64)
    k = 0
    while (1 << k) <= n:
        has = ((s >> k) & 1).astype(bool)
        if has.any():
            block = pos >> k
            keys = np.sort(block * n + rank)
            b = (s[has] >> k) - 1
            prefix[has] += (np.searchsorted(keys, b * n + thresh[has], side="left")
                            - np.searchsorted(keys, b * n, side="left"))
        k += 1
    return below_all - prefix


def concordance_counts(time, event, risk, tied_tol: float = 1e-8, weights=None) -> dict:
    """Count comparable pairs and how each is ordered by ``risk`` (see the module docstring).

    Runs in O(n log^2 n) time and O(n) memory. Taught in chapter 8 (concordance by hand, then
    this fast count); :func:`harrell_c` and :func:`uno_c` are built on it. No input check is
    made here: those two check their inputs first.

    Parameters
    ----------
    time : array-like of float, shape (n,)
        Follow-up times.
    event : array-like of bool, shape (n,)
        True where the event was observed.
    risk : array-like of float, shape (n,)
        Predicted risk (higher = worse).
    tied_tol : float, default 1e-8
        Risks closer than this are tied.
    weights : array-like of float, shape (n,), optional
        One weight per patient, applied to the pairs in which that patient had the (earlier)
        event.

    Returns
    -------
    dict
        ``concordant``, ``discordant``, ``tied_risk``, ``tied_time`` (the comparable pairs whose
        times are equal) and ``comparable`` (ints), and, with ``weights``, the weighted
        ``numerator`` (concordant plus half the tied) and ``denominator`` (comparable) as
        floats.
    """
    time = np.asarray(time, float)
    event = np.asarray(event, bool)
    risk = np.asarray(risk, float)
    n = len(time)
    order = np.lexsort((~event, time))      # by time; events before censorings at a tie
    t, e, r = time[order], event[order], risk[order]
    # position of each patient in the risk order -> rank
    r_order = np.argsort(r, kind="mergesort")
    rank = np.empty(n, dtype=np.int64)
    rank[r_order] = np.arange(n)
    r_sorted = r[r_order]
    ev = np.flatnonzero(e)
    # for event i: comparable j are all positions after its time group, plus censored j at its time
    end_of_time = np.searchsorted(t, t[ev], side="right")
    # censored at the same time sit just before end_of_time (events first within a time)
    cens_t = t[~e]
    n_cens_same = np.searchsorted(cens_t, t[ev], side="right") - np.searchsorted(cens_t, t[ev], side="left")
    first_cens_same = end_of_time - n_cens_same
    lo = np.searchsorted(r_sorted, r[ev] - tied_tol, side="left")   # #{r < r_i - tol}
    hi = np.searchsorted(r_sorted, r[ev] + tied_tol, side="right")  # #{r <= r_i + tol}
    below_lo = _count_below(first_cens_same, lo, rank)
    below_hi = _count_below(first_cens_same, hi, rank)
    n_comp = n - first_cens_same
    conc = below_lo
    ties = below_hi - below_lo
    out = {"concordant": int(conc.sum()), "tied_risk": int(ties.sum()),
           "discordant": int((n_comp - conc - ties).sum()), "tied_time": int(n_cens_same.sum()),
           "comparable": int(n_comp.sum())}
    if weights is not None:
        w = np.asarray(weights, float)[order][ev]
        out["numerator"] = float(np.sum(w * conc) + 0.5 * np.sum(w * ties))
        out["denominator"] = float(np.sum(w * n_comp))
    return out


def harrell_c(time, event, risk, tied_tol: float = 1e-8) -> float:
    """Harrell's concordance index.

    Estimand: among comparable pairs (the earlier time is an event; the other patient was
    still followed after it, or censored at the same time), the fraction in which the
    patient who failed first had the higher risk; tied risks (within ``tied_tol``) count
    1/2; pairs of events at the same time are not comparable. No censoring weights, so it
    depends on the censoring distribution. Equals ``sksurv.metrics.concordance_index_censored``
    (first value) exactly. Taught in chapter 8; every later chapter reports it.

    Parameters
    ----------
    time : array-like of float, shape (n,)
        Follow-up times, finite and >= 0.
    event : array-like of bool, shape (n,)
        True where the event was observed (a boolean dtype is required).
    risk : array-like of float, shape (n,)
        Predicted risk (higher = worse), finite.
    tied_tol : float, default 1e-8
        Risks closer than this are tied.

    Returns
    -------
    float
        The concordance, in [0, 1] (0.5 = random ordering).

    Raises
    ------
    ValueError
        When the outcome fails :func:`~oncolab.survival.check_survival` (including no event),
        ``risk`` is not one finite score per patient, or no pair is comparable.
    """
    event, time = check_survival(event=event, time=time)
    risk = check_risk(risk, len(time))
    c = concordance_counts(time, event, risk, tied_tol)
    if c["comparable"] == 0:
        raise ValueError("no comparable pairs: the concordance is undefined")
    return (c["concordant"] + 0.5 * c["tied_risk"]) / c["comparable"]


# --------------------------------------------------------------------------------------------
# censoring weights
def censoring_survival(y_train, t) -> np.ndarray:
    """G(t) = P(C > t): Kaplan-Meier of the censoring times in ``y_train``, at times ``t``.

    Raises when ``t`` goes beyond the last training time while G is still positive there (the
    censoring distribution is unknown beyond follow-up). Taught in chapter 9 (the inverse
    probability of censoring weights of Uno's C, td-AUC and the Brier score).

    Parameters
    ----------
    y_train : numpy structured array of (event, time), shape (n,)
        The training outcome whose censoring times are estimated (an outcome without events is
        accepted).
    t : float or array-like of float
        Where to evaluate ``G``.

    Returns
    -------
    numpy.ndarray of float
        ``G(t)``, with the shape of ``t``: 1 everywhere when nobody in ``y_train`` was
        censored, 0 beyond the last training time when the censoring curve reached 0 there.

    Raises
    ------
    ValueError
        When ``y_train`` is not a valid outcome, or a time lies beyond its follow-up while
        ``G`` is still positive.
    """
    ev, tt = check_survival(y_train, name="y_train", allow_all_censored=True)
    t = np.asarray(t, float)
    if ev.all():
        return np.ones_like(t)
    km = kaplan_meier(tt, ev, reverse=True)
    beyond = t > km.time[-1]
    if beyond.any() and km.survival[-1] > 0:
        raise ValueError(f"time {t[beyond].max():g} is beyond the follow-up of y_train (last time "
                         f"{km.time[-1]:g}); the censoring distribution is unknown there")
    g = km(t)
    g[beyond] = 0.0
    return g


def _ipcw(y_train, event, time) -> np.ndarray:
    w = np.zeros(len(time))
    g = censoring_survival(y_train, time[event])
    if (g == 0).any():
        raise ValueError("the censoring survival G(t) is 0 at an event time: inverse weights are infinite")
    w[event] = 1.0 / g
    return w


def uno_c(y_train, y_test, risk, tau: float | None = None, tied_tol: float = 1e-8) -> float:
    """Uno's concordance index (inverse probability of censoring weighted).

    Estimand: ``P(risk_i > risk_j | T_i < T_j, T_i < tau)``, consistent for the population
    concordance whatever the censoring (if censoring is independent of the covariates).
    Each comparable pair is weighted by ``1 / G(t_i)^2``, ``G`` the Kaplan-Meier censoring
    survival from ``y_train``; events at or after ``tau`` get weight 0 (``tau=None``: no
    truncation). Ties as in :func:`harrell_c`. Agrees with
    ``sksurv.metrics.concordance_index_ipcw``. Taught in chapter 9.

    Parameters
    ----------
    y_train : numpy structured array of (event, time)
        Training outcome, for the censoring distribution ``G``.
    y_test : numpy structured array of (event, time), shape (n,)
        The outcome of the patients scored.
    risk : array-like of float, shape (n,)
        Predicted risk of the test patients (higher = worse).
    tau : float, optional
        Truncation time; None uses every event.
    tied_tol : float, default 1e-8
        Risks closer than this are tied.

    Returns
    -------
    float
        The weighted concordance, in [0, 1].

    Raises
    ------
    ValueError
        When an outcome or ``risk`` fails the input checks, ``G`` is 0 (or unknown, beyond the
        training follow-up) at a test event time, or no pair is comparable before ``tau``.
    """
    event, time = check_survival(y_test, name="y_test")
    risk = check_risk(risk, len(time))
    w = _ipcw(y_train, event & (time < tau) if tau is not None else event, time)
    c = concordance_counts(time, event, risk, tied_tol, weights=w**2)
    if c["denominator"] == 0:
        raise ValueError("no comparable pairs before tau: the concordance is undefined")
    return c["numerator"] / c["denominator"]


# --------------------------------------------------------------------------------------------
def check_eval_times(times, test_time) -> np.ndarray:
    """The sorted unique evaluation ``times``, checked to lie within the follow-up of ``test_time``.

    Taught in chapter 9 (why a horizon past the follow-up cannot be evaluated).

    Parameters
    ----------
    times : float or array-like of float
        Evaluation times.
    test_time : numpy.ndarray of float, shape (n,)
        The test patients' follow-up times.

    Returns
    -------
    numpy.ndarray of float
        The distinct ``times``, increasing.

    Raises
    ------
    ValueError
        When a time lies before the first test time or at or after the last one; the message
        names the allowed range ``[min, max)``.
    """
    times = np.unique(np.atleast_1d(np.asarray(times, float)))
    if times.min() < test_time.min() or times.max() >= test_time.max():
        raise ValueError(f"evaluation times must lie within the follow-up of the test data "
                         f"[{test_time.min():g}, {test_time.max():g}); got [{times.min():g}, {times.max():g}] "
                         "(a horizon beyond the follow-up cannot be evaluated)")
    return times


def td_auc(y_train, y_test, risk, times, tied_tol: float = 1e-8) -> tuple[np.ndarray, float]:
    """Cumulative/dynamic time-dependent AUC, and its mean over ``times``.

    Estimand at each ``t``: ``P(risk_i > risk_j | T_i <= t, T_j > t)``: cases are the patients
    with an event by ``t`` (weighted ``1 / G(t_i)``), controls those still event-free after
    ``t``; tied risks count 1/2. ``risk`` is one score per patient, or one column per time.
    The mean is the integral of AUC(t) against the Kaplan-Meier ``-dS(t)`` of ``y_test``,
    divided by ``1 - S(t_last)``. Agrees with ``sksurv.metrics.cumulative_dynamic_auc``.
    Taught in chapter 9; chapter 14 reports it for the multi-scale models.

    Parameters
    ----------
    y_train : numpy structured array of (event, time)
        Training outcome, for the censoring weights.
    y_test : numpy structured array of (event, time), shape (n,)
        The outcome of the patients scored.
    risk : array-like of float, shape (n,) or (n, n_times)
        Predicted risk, one score per patient or one column per (sorted, distinct) time.
    times : array-like of float
        Evaluation times, within the test follow-up (sorted and made distinct here).
    tied_tol : float, default 1e-8
        Risks closer than this are tied.

    Returns
    -------
    auc : numpy.ndarray of float, shape (n_times,)
        AUC(t) at each sorted distinct time.
    mean_auc : float
        The weighted mean above (AUC(t) itself for a single time).

    Raises
    ------
    ValueError
        When an outcome fails the input checks, a time leaves the test follow-up, ``risk``
        has the wrong shape, or ``G`` is 0 at a test event time.
    """
    event, time = check_survival(y_test, name="y_test")
    times = check_eval_times(times, time)
    est = np.asarray(risk, float)
    if est.ndim == 1:
        check_risk(est, len(time))
        est = np.repeat(est[:, None], len(times), axis=1)
    elif est.shape != (len(time), len(times)):
        raise ValueError(f"risk must have shape ({len(time)},) or ({len(time)}, {len(times)}), got {est.shape}")
    w = _ipcw(y_train, event, time)
    auc = np.empty(len(times))
    for k, t in enumerate(times):
        case = (time <= t) & event
        ctrl = time > t
        rc = np.sort(est[ctrl, k])
        ri = est[case, k]
        below = np.searchsorted(rc, ri - tied_tol, side="left")
        tied = np.searchsorted(rc, ri + tied_tol, side="right") - below
        auc[k] = np.sum(w[case] * (below + 0.5 * tied)) / (w[case].sum() * len(rc))
    if len(times) == 1:
        return auc, float(auc[0])
    s = kaplan_meier(time, event)(times)
    d = -np.diff(np.r_[1.0, s])
    return auc, float((auc * d).sum() / (1.0 - s[-1]))


def brier_score(y_train, y_test, surv_prob, times) -> tuple[np.ndarray, np.ndarray]:
    """Brier score at each time, with inverse probability of censoring weights (Graf 1999).

    Estimand at ``t``: ``E[(1{T > t} - S(t | x))^2]``. Patients with an event by ``t`` count
    ``S(t|x)^2 / G(t_i)``, patients still followed after ``t`` count ``(1 - S(t|x))^2 / G(t)``,
    patients censored before ``t`` count 0 (their weight moves to the others). ``surv_prob``
    holds predicted survival probabilities, one column per time. Returns ``(times, scores)``.
    Agrees with ``sksurv.metrics.brier_score``. Taught in chapter 9.

    Parameters
    ----------
    y_train : numpy structured array of (event, time)
        Training outcome, for the censoring distribution ``G``.
    y_test : numpy structured array of (event, time), shape (n,)
        The outcome of the patients scored.
    surv_prob : array-like of float, shape (n, n_times)
        Predicted ``S(t | x)`` in [0, 1]; its columns follow the sorted distinct ``times``
        (a 1-D array is accepted for a single time).
    times : array-like of float
        Evaluation times, within the test follow-up (sorted and made distinct here).

    Returns
    -------
    times : numpy.ndarray of float, shape (n_times,)
        The sorted distinct times.
    scores : numpy.ndarray of float, shape (n_times,)
        The Brier score at each (0 is perfect; 0.25 is a constant prediction of 0.5).

    Raises
    ------
    ValueError
        When an outcome fails the input checks, a time leaves the test follow-up,
        ``surv_prob`` has the wrong shape or a value outside [0, 1], or a time lies beyond the
        follow-up of ``y_train``.
    """
    event, time = check_survival(y_test, name="y_test")
    times = check_eval_times(times, time)
    p = np.asarray(surv_prob, float)
    if p.ndim == 1 and len(times) == 1:
        p = p[:, None]
    if p.shape != (len(time), len(times)):
        raise ValueError(f"surv_prob must have shape ({len(time)}, {len(times)}), got {p.shape}")
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise ValueError("surv_prob must hold survival probabilities in [0, 1]")
    g_t = censoring_survival(y_train, times)
    g_y = censoring_survival(y_train, time)
    return times, brier_from_censoring(event, time, p, times, g_t, g_y)


def brier_from_censoring(event, time, p, times, g_t, g_y) -> np.ndarray:
    """Brier scores with precomputed censoring survival at ``times`` (g_t) and at ``time`` (g_y).

    Taught in chapter 9; :func:`brier_score` computes the censoring survival itself, and the
    bootstrap of :func:`~oncolab.survival.cross_validate_survival` reuses the weights through
    this function. No input check is made here.

    Parameters
    ----------
    event : numpy.ndarray of bool, shape (n,)
        True where the event was observed.
    time : numpy.ndarray of float, shape (n,)
        Follow-up times.
    p : numpy.ndarray of float, shape (n, n_times)
        Predicted ``S(t | x)``, one column per time.
    times : numpy.ndarray of float, shape (n_times,)
        Evaluation times.
    g_t : numpy.ndarray of float, shape (n_times,)
        Censoring survival ``G`` at ``times``.
    g_y : numpy.ndarray of float, shape (n,)
        Censoring survival ``G`` at each patient's ``time``.

    Returns
    -------
    numpy.ndarray of float, shape (n_times,)
        The Brier score at each time.
    """
    case = (time[:, None] <= times[None, :]) & event[:, None]
    ctrl = time[:, None] > times[None, :]
    a = np.divide(p**2, g_y[:, None], out=np.zeros_like(p), where=case)
    b = np.where(ctrl, (1 - p) ** 2 / g_t[None, :], 0.0)
    return np.mean(a + b, axis=0)


def integrated_brier_score(y_train, y_test, surv_prob, times) -> float:
    """The Brier score integrated over ``[times[0], times[-1]]`` (trapezoidal rule), divided by
    the length of that interval. Agrees with ``sksurv.metrics.integrated_brier_score``.

    Taught in chapter 9; chapter 14 reports it for the multi-scale models.

    Parameters
    ----------
    y_train : numpy structured array of (event, time)
        Training outcome, for the censoring distribution.
    y_test : numpy structured array of (event, time), shape (n,)
        The outcome of the patients scored.
    surv_prob : array-like of float, shape (n, n_times)
        Predicted ``S(t | x)``, one column per sorted distinct time.
    times : array-like of float
        Evaluation times, at least two distinct, within the test follow-up.

    Returns
    -------
    float
        The integrated Brier score (lower is better).

    Raises
    ------
    ValueError
        As :func:`brier_score`, and when fewer than two distinct times are given.
    """
    times, bs = brier_score(y_train, y_test, surv_prob, times)
    if len(times) < 2:
        raise ValueError("the integrated Brier score needs at least two distinct times")
    return float(np.trapezoid(bs, times) / (times[-1] - times[0]))


def calibration_at_horizon(y, surv_at_horizon, horizon: float, n_groups: int = 10) -> pd.DataFrame:
    """Predicted versus observed survival at ``horizon``, by group of predicted risk.

    Patients are cut into ``n_groups`` groups of equal size (to one patient) by predicted
    ``S(horizon | x)`` (deciles by default); in each, the mean prediction is set beside the
    Kaplan-Meier estimate of ``S(horizon)`` with its 95% interval. A calibrated model lies on
    the diagonal. Taught in chapter 9; chapter 13 returns to calibration with it.

    Parameters
    ----------
    y : numpy structured array of (event, time), shape (n,)
        The outcome of the patients.
    surv_at_horizon : array-like of float, shape (n,)
        Predicted ``S(horizon | x)`` per patient.
    horizon : float
        The time at which calibration is read, in ``(0, max(time)]``.
    n_groups : int, default 10
        Number of groups, between 2 and ``n // 2``.

    Returns
    -------
    pandas.DataFrame
        One row per group, group 1 holding the highest predicted survival: ``group``, ``n``,
        ``predicted`` (mean prediction), ``observed`` (Kaplan-Meier ``S(horizon)``; 1 when the
        group has no time up to the horizon), ``observed_low``, ``observed_high``.

    Raises
    ------
    ValueError
        When the outcome or the predictions fail the input checks, ``horizon`` is outside the
        follow-up, or ``n_groups`` is out of range.
    """
    event, time = check_survival(y)
    p = check_risk(surv_at_horizon, len(time), name="surv_at_horizon")
    if horizon <= 0 or horizon > time.max():
        raise ValueError(f"horizon {horizon!r} must be in (0, {time.max():g}], the follow-up of y")
    if not 2 <= n_groups <= len(time) // 2:
        raise ValueError(f"n_groups must be between 2 and n/2 = {len(time) // 2}, got {n_groups}")
    order = np.argsort(-p, kind="mergesort")  # group 1 = highest predicted survival
    rows = []
    for g, idx in enumerate(np.array_split(order, n_groups), start=1):
        km = kaplan_meier(time[idx], event[idx])
        j = np.searchsorted(km.time, horizon, side="right") - 1
        obs, lo, hi = (1.0, 1.0, 1.0) if j < 0 else (km.survival[j], km.ci_low[j], km.ci_high[j])
        rows.append({"group": g, "n": len(idx), "predicted": float(p[idx].mean()), "observed": float(obs),
                     "observed_low": float(lo), "observed_high": float(hi)})
    return pd.DataFrame(rows)
