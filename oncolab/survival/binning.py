"""Time bins for discrete-time survival models: edges at quantiles of the event times.

Taught in chapter 9 ("Deep survival models"), where :class:`~oncolab.survival.DiscreteTimeSurvival`
cuts time into bins; chapter 14's multi-scale survival models use the same bins.

**The edge convention.** ``K`` bins have edges ``0 = e_0 < e_1 < ... < e_K``. Bin ``b`` is the
interval ``(e_b, e_{b+1}]``, open on the left and closed on the right: a time that falls
exactly on an edge ``e_{b+1}`` belongs to bin ``b``, the bin that *ends* there. Time 0 belongs
to the first bin, and a time after the last edge (a patient followed longer than anyone in
training) to the last. This is the convention of the survival function ``S(t) = P(T > t)``:
a patient whose event is at ``e_{b+1}`` has had it by ``e_{b+1}``, so the survival read at the
end of bin ``b`` (the product of ``1 - h_k`` over ``k <= b``) already counts it. It is also
``pandas.cut(time, edges, right=True, include_lowest=True)``.
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["bin_index", "time_bins"]


def _times(time, name: str = "time") -> np.ndarray:
    t = np.asarray(time, dtype=float)
    if np.isnan(t).any():
        raise ValueError(f"{name} contains NaN; expected non-negative times")
    if (t < 0).any():
        raise ValueError(f"{name} must be >= 0, got {float(t.min())}")
    return t


def time_bins(time, event, n_bins: int = 8) -> np.ndarray:
    """Bin edges ``0 = e_0 < e_1 < ... < e_K = max(time)``, inner edges at quantiles of the event times.

    The inner edges are the ``j / n_bins`` quantiles (``j = 1 .. n_bins - 1``) of the times of
    the observed events, so every bin holds about as many events. Tied quantiles merge, so
    ``K <= n_bins``. Which bin a time falls in is :func:`bin_index` (the edge convention is in
    this module's docstring). Taught in chapter 9 (the bins of
    :class:`~oncolab.survival.DiscreteTimeSurvival`); chapter 14 uses the same bins.

    Parameters
    ----------
    time : array-like of float, shape (n,)
        Follow-up times (event or censoring), >= 0.
    event : array-like of bool, shape (n,)
        True where the event was observed.
    n_bins : int
        Number of bins wanted, >= 2.

    Returns
    -------
    numpy.ndarray of float, shape (K + 1,)
        Strictly increasing edges from 0 to the longest follow-up time, ``2 <= K <= n_bins``.

    Raises
    ------
    ValueError
        When ``n_bins`` is not an integer >= 2, a time is NaN or negative, ``time`` and
        ``event`` differ in length, ``event`` is neither boolean nor 0/1, no event is observed,
        or the event times are too few or too tied to make at least two bins.
    """
    if isinstance(n_bins, bool) or not isinstance(n_bins, numbers.Integral) or n_bins < 2:
        raise ValueError(f"n_bins must be an integer >= 2, got {n_bins!r}")
    t = _times(time).reshape(-1)
    e = np.asarray(event).reshape(-1)
    if len(e) != len(t):
        raise ValueError(f"time and event must have the same length, got {len(t)} and {len(e)}")
    if e.dtype != bool:
        if not np.isin(e, (0, 1)).all():
            raise ValueError("event must be boolean or 0/1")
        e = e.astype(bool)
    if not e.any():
        raise ValueError("time bins need at least one observed event; got none")
    inner = np.quantile(t[e], np.linspace(0, 1, int(n_bins) + 1)[1:-1])
    edges = np.unique(np.r_[0.0, inner, t.max()])
    if len(edges) < 3:
        raise ValueError(f"the event times are too few or too tied to make {n_bins} bins (at least 2 are needed); "
                         f"distinct event times: {len(np.unique(t[e]))}")
    return edges


def bin_index(time, edges) -> np.ndarray:
    """The bin each time falls in: ``b`` with ``e_b < t <= e_{b+1}``.

    Time 0 falls in bin 0, and a time after the last edge in the last bin ``K - 1`` (see the
    module docstring for why the bins are closed on the right). Taught in chapter 9 (the
    target of :class:`~oncolab.survival.DiscreteTimeSurvival`).

    Parameters
    ----------
    time : float or array-like of float
        Times, >= 0.
    edges : array-like of float, shape (K + 1,)
        Strictly increasing bin edges, e.g. from :func:`time_bins`.

    Returns
    -------
    numpy.ndarray of int
        Bin indices in ``0 .. K - 1``, with the shape of ``time``.

    Raises
    ------
    ValueError
        When ``edges`` is not a strictly increasing 1-D array of at least two values, or a
        time is NaN or negative.
    """
    edges = np.asarray(edges, dtype=float)
    if edges.ndim != 1 or len(edges) < 2 or not (np.diff(edges) > 0).all():
        raise ValueError(f"edges must be a strictly increasing 1-D array of at least 2 values, got {edges!r}")
    t = _times(time)
    return np.clip(np.searchsorted(edges, t, side="left") - 1, 0, len(edges) - 2)
