"""Input checks shared by the metrics modules (each error names the bad value and what was expected).

Used by the metrics of chapter 10 (bootstrap intervals) and chapter 13 (calibration, conformal
sets, subgroups).
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["check_bins", "check_level", "check_n_boot", "check_proba"]


def check_proba(y, proba) -> tuple[np.ndarray, np.ndarray]:
    """Integer labels ``0..K-1`` and an ``(n, K)`` matrix of probabilities whose rows sum to 1.

    Parameters
    ----------
    y : array-like, shape (n,)
        True class of each patient, ``0..K-1`` (cast to int).
    proba : array-like of float, shape (n, K)
        Predicted probabilities, ``K >= 2``; each row finite, non-negative (to -1e-9) and
        summing to 1 (to 1e-6).

    Returns
    -------
    y : numpy.ndarray of int, shape (n,)
    proba : numpy.ndarray of float64, shape (n, K)

    Raises
    ------
    ValueError
        When ``proba`` is not (n, K) with ``K >= 2``, ``y`` is not 1-D with one label per row,
        there is no patient, a row is not a probability vector, or a label lies outside
        ``0..K-1``.
    """
    p = np.asarray(proba, dtype=np.float64)
    y = np.asarray(y)
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError(f"proba must be (n, K) with K >= 2 classes, got shape {p.shape}")
    if y.ndim != 1 or len(y) != len(p):
        raise ValueError(f"y must hold one label per row of proba ({len(p)} rows), got shape {y.shape}")
    if len(y) == 0:
        raise ValueError("y and proba are empty: no patients to evaluate")
    if not np.isfinite(p).all() or (p < -1e-9).any() or not np.allclose(p.sum(1), 1, atol=1e-6):
        raise ValueError("proba rows must be finite probabilities summing to 1")
    y = y.astype(int)
    if y.min() < 0 or y.max() >= p.shape[1]:
        raise ValueError(f"labels must lie in [0, {p.shape[1] - 1}], got range [{y.min()}, {y.max()}]")
    return y, p


def check_bins(n_bins) -> int:
    """A positive integer number of bins.

    Parameters
    ----------
    n_bins : int
        The number of bins asked for.

    Returns
    -------
    int

    Raises
    ------
    ValueError
        When ``n_bins`` is not an integer >= 1 (a bool is refused).
    """
    if isinstance(n_bins, bool) or not isinstance(n_bins, numbers.Integral) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}")
    return int(n_bins)


def check_level(level) -> float:
    """A confidence level strictly between 0 and 1.

    Parameters
    ----------
    level : float
        The level asked for (e.g. 0.95).

    Returns
    -------
    float

    Raises
    ------
    ValueError
        When ``level`` is not a number in (0, 1) (a bool is refused).
    """
    if isinstance(level, bool) or not isinstance(level, numbers.Real) or not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level!r}")
    return float(level)


def check_n_boot(n_boot) -> int:
    """A number of bootstrap resamples: an integer >= 0.

    Parameters
    ----------
    n_boot : int
        The number asked for.

    Returns
    -------
    int

    Raises
    ------
    ValueError
        When ``n_boot`` is not an integer >= 0 (a bool is refused).
    """
    if isinstance(n_boot, bool) or not isinstance(n_boot, numbers.Integral) or n_boot < 0:
        raise ValueError(f"n_boot must be an integer >= 0, got {n_boot!r}")
    return int(n_boot)
