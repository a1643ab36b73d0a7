"""Input checks shared by the metrics modules (each error names the bad value and what was expected)."""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["check_bins", "check_level", "check_n_boot", "check_proba"]


def check_proba(y, proba) -> tuple[np.ndarray, np.ndarray]:
    """Integer labels ``0..K-1`` and an ``(n, K)`` matrix of probabilities whose rows sum to 1."""
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
    """A positive integer number of bins."""
    if isinstance(n_bins, bool) or not isinstance(n_bins, numbers.Integral) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}")
    return int(n_bins)


def check_level(level) -> float:
    """A confidence level strictly between 0 and 1."""
    if isinstance(level, bool) or not isinstance(level, numbers.Real) or not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level!r}")
    return float(level)


def check_n_boot(n_boot) -> int:
    """A number of bootstrap resamples: an integer >= 0."""
    if isinstance(n_boot, bool) or not isinstance(n_boot, numbers.Integral) or n_boot < 0:
        raise ValueError(f"n_boot must be an integer >= 0, got {n_boot!r}")
    return int(n_boot)
