"""Calibration of a classifier's probabilities: reliability data, ECE, temperature scaling.

Taught in chapter 13 ("Evaluation and clinical validity").

* :func:`reliability_table` and :func:`expected_calibration_error` (Guo et al. 2017): bin the
  top-class confidence, compare each bin's mean confidence with its accuracy. The per-bin
  table agrees with ``sklearn.calibration.calibration_curve`` for a binary problem.
* :class:`TemperatureScaler`: divide the logits by one number ``T`` fitted on a validation
  split by minimising the negative log-likelihood; the ranking (and so the AUC) is unchanged.

Survival calibration at a horizon is :func:`oncolab.survival.calibration_at_horizon` (chapter 9).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import optimize, special

from ._checks import check_bins, check_proba

__all__ = ["TemperatureScaler", "expected_calibration_error", "plot_reliability", "reliability_table"]


def reliability_table(y, proba, n_bins: int = 10, positive: int | None = None) -> pd.DataFrame:
    """Reliability-diagram data in equal-width bins; chapter 13.

    By default the top-label view: ``confidence`` = the largest probability, ``correct`` =
    whether that class is true. With ``positive=k``: the one-vs-rest view of class ``k``
    (``confidence`` = ``p_k``, ``correct`` = ``y == k``), the quantity that
    ``sklearn.calibration.calibration_curve`` bins. Bins are ``[0, 1/B], (1/B, 2/B], ...``;
    empty bins are left out.

    Parameters
    ----------
    y : array-like of shape (n,)
        True class, ``0..K-1``.
    proba : array-like of shape (n, K)
        Predicted probabilities (rows sum to 1).
    n_bins : int
        Number ``B`` of equal-width bins of [0, 1].
    positive : int, optional
        A class for the one-vs-rest view; None for the top-label view.

    Returns
    -------
    pandas.DataFrame
        One row per non-empty bin: ``bin`` (0-based), ``count``, ``confidence`` (mean) and
        ``accuracy`` (share correct).

    Raises
    ------
    ValueError
        When ``y`` and ``proba`` fail the checks (labels ``0..K-1``, rows of probabilities
        summing to 1), ``n_bins`` is not a positive integer, or ``positive`` is not a class.
    """
    y, p = check_proba(y, proba)
    b = check_bins(n_bins)
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
    """Top-label expected calibration error, ``sum_b (n_b / n) |accuracy_b - confidence_b|``; chapter 13.

    Parameters
    ----------
    y, proba
        As in :func:`reliability_table`.
    n_bins : int
        Number of equal-width bins of the top-class confidence.

    Returns
    -------
    float
        The ECE, in [0, 1]; 0 for a perfectly calibrated model (up to binning).

    Raises
    ------
    ValueError
        As :func:`reliability_table`.
    """
    t = reliability_table(y, proba, n_bins)
    return float((t["count"] * (t["accuracy"] - t["confidence"]).abs()).sum() / t["count"].sum())


def plot_reliability(tables: dict[str, pd.DataFrame], ax=None, title: str | None = None):
    """Reliability diagrams, one line per table (e.g. before and after recalibration); chapter 13.

    Parameters
    ----------
    tables : dict of str to pandas.DataFrame
        Legend label -> a table from :func:`reliability_table`.
    ax : matplotlib Axes, optional
        Where to draw; a new figure when None.
    title : str, optional
        The axes' title.

    Returns
    -------
    matplotlib Axes
        The axes drawn on.
    """
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
    of logits (``from_proba=True``): their logs are logits up to a constant per row. Like a
    scikit-learn estimator, ``fit`` takes the model's output first and the labels second.

    Parameters
    ----------
    bounds : tuple of float
        The search range ``(low, high)`` of ``T``, with ``0 < low < high``.

    Attributes
    ----------
    temperature_ : float or None
        The fitted ``T`` (> 1: the model was over-confident); None before ``fit``.

    Raises
    ------
    ValueError
        When ``bounds`` is not ``0 < low < high``.
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
        """Mean negative log-likelihood of ``softmax(logits / temperature)``.

        Parameters
        ----------
        logits : array-like of shape (n, K)
            The model's logits.
        y : array-like of shape (n,)
            True class, ``0..K-1``.
        temperature : float
            The divisor ``T`` of the logits.

        Returns
        -------
        float
            The mean of ``-log softmax(logits / T)[y]``.
        """
        lp = special.log_softmax(np.asarray(logits, float) / temperature, axis=1)
        return float(-lp[np.arange(len(lp)), np.asarray(y, int)].mean())

    def fit(self, logits, y, from_proba: bool = False) -> TemperatureScaler:
        """Find ``T`` on validation patients never used to train the model.

        Parameters
        ----------
        logits : array-like of shape (n, K)
            The model's logits, or its probabilities with ``from_proba=True``.
        y : array-like of shape (n,)
            True class, ``0..K-1``.
        from_proba : bool
            Whether ``logits`` holds probabilities.

        Returns
        -------
        TemperatureScaler
            ``self``, with ``temperature_`` set.

        Raises
        ------
        ValueError
            When ``logits`` is not 2-D or has another number of rows than ``y``.
        """
        z = self._logits(logits, from_proba)
        y = np.asarray(y, int)
        if len(y) != len(z):
            raise ValueError(f"{len(z)} rows of logits but {len(y)} labels")
        res = optimize.minimize_scalar(lambda lt: self.nll(z, y, np.exp(lt)), method="bounded",
                                       bounds=tuple(np.log(self.bounds)), options={"xatol": 1e-6})
        self.temperature_ = float(np.exp(res.x))
        return self

    def transform(self, logits, from_proba: bool = False) -> np.ndarray:
        """Recalibrated probabilities ``softmax(logits / T)``.

        Parameters
        ----------
        logits : array-like of shape (n, K)
            The model's logits, or its probabilities with ``from_proba=True``.
        from_proba : bool
            Whether ``logits`` holds probabilities.

        Returns
        -------
        numpy.ndarray of shape (n, K)
            Probabilities with the same ranking (and so the same predicted class) as the input.

        Raises
        ------
        RuntimeError
            When not fitted.
        ValueError
            When ``logits`` is not 2-D.
        """
        if self.temperature_ is None:
            raise RuntimeError("TemperatureScaler is not fitted: call fit(logits, y) on a validation split")
        return special.softmax(self._logits(logits, from_proba) / self.temperature_, axis=1)
