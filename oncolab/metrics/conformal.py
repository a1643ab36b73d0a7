"""Split-conformal prediction sets for the diagnosis, and their coverage.

Taught in chapter 13 ("Evaluation and clinical validity").

:class:`SplitConformal` (Vovk et al. 2005; Angelopoulos & Bates 2021) turns a classifier's
probabilities into prediction sets for the 3-class diagnosis with the LAC (``1 - p_y``) or APS
(cumulative mass of the classes more likely than ``y``, plus a seeded random share of ``p_y``)
score, with a finite-sample coverage guarantee ``>= 1 - alpha`` for exchangeable patients.
"""

from __future__ import annotations

import numpy as np

from ._checks import check_proba

__all__ = ["CONFORMAL_SCORES", "SplitConformal", "conformal_quantile", "set_coverage"]

CONFORMAL_SCORES = ("lac", "aps")


def conformal_quantile(scores, alpha: float) -> float:
    """The ``k``-th smallest calibration score, ``k = ceil((n + 1)(1 - alpha))``; chapter 13.

    Equal to ``np.quantile(scores, k / n, method="inverted_cdf")``.

    Parameters
    ----------
    scores : array-like of shape (n,)
        Non-conformity scores of the calibration patients.
    alpha : float
        Allowed miscoverage, in (0, 1).

    Returns
    -------
    float
        The threshold ``q``; infinite when ``n`` is too small for the requested coverage (the
        set must then hold every class).

    Raises
    ------
    ValueError
        When ``alpha`` is outside (0, 1) or there is no score.
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
    Like a scikit-learn estimator, ``fit`` takes the model's output first and the labels second.

    Parameters
    ----------
    alpha : float
        Allowed miscoverage, in (0, 1): the sets aim at coverage ``1 - alpha``.
    score : str
        One of :data:`CONFORMAL_SCORES`.
    randomized : bool
        APS only: draw ``u`` (exact coverage on average) or take ``u = 1`` (conservative).
    seed : int
        Seed of ``u``; the same seed gives the same sets.

    Attributes
    ----------
    q_ : float or None
        The calibrated threshold (:func:`conformal_quantile`); None before ``fit``.
    n_cal_ : int
        The number of calibration patients.

    Raises
    ------
    ValueError
        When ``alpha`` is outside (0, 1) or ``score`` is unknown.
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
        """Non-conformity score of each patient's true class.

        Parameters
        ----------
        proba : array-like of shape (n, K)
            Predicted probabilities (rows sum to 1).
        y : array-like of shape (n,)
            True class, ``0..K-1``.
        offset : int
            Which random stream of ``u`` to use with APS (0 for calibration, 1 for prediction).

        Returns
        -------
        numpy.ndarray of shape (n,)
            The LAC or APS score; larger = the true class less plausible under the model.

        Raises
        ------
        ValueError
            When ``y`` and ``proba`` fail the checks (labels ``0..K-1``, rows of probabilities
            summing to 1).
        """
        y, p = check_proba(y, proba)
        if self.score == "lac":
            return 1 - p[np.arange(len(p)), y]
        return self._aps_all(p, self._u(len(p), offset))[np.arange(len(p)), y]

    def fit(self, proba, y) -> SplitConformal:
        """Calibrate on held-out patients never used to train the model.

        Parameters
        ----------
        proba : array-like of shape (n, K)
            The model's probabilities for the calibration patients.
        y : array-like of shape (n,)
            Their true class, ``0..K-1``.

        Returns
        -------
        SplitConformal
            ``self``, with ``q_`` and ``n_cal_`` set.

        Raises
        ------
        ValueError
            As :meth:`scores`.
        """
        self.q_ = conformal_quantile(self.scores(proba, y, offset=0), self.alpha)
        self.n_cal_ = len(np.asarray(y))
        return self

    def predict_sets(self, proba) -> np.ndarray:
        """The prediction set of each patient.

        Parameters
        ----------
        proba : array-like of shape (n, K)
            The model's probabilities for new patients.

        Returns
        -------
        numpy.ndarray of bool, shape (n, K)
            True where class ``k`` is in patient ``i``'s set.

        Raises
        ------
        RuntimeError
            When not fitted.
        ValueError
            When ``proba`` is not (n, K) rows of probabilities summing to 1.
        """
        if self.q_ is None:
            raise RuntimeError("SplitConformal is not fitted: call fit(proba, y) on a calibration split")
        p = np.asarray(proba, dtype=np.float64)
        check_proba(np.zeros(len(p), int), p)
        if self.score == "lac":
            return (1 - p) <= self.q_
        return self._aps_all(p, self._u(len(p), offset=1)) <= self.q_


def set_coverage(y, sets) -> dict:
    """Coverage of prediction sets and their sizes; chapter 13.

    Parameters
    ----------
    y : array-like of shape (n,)
        True class, ``0..K-1``.
    sets : array-like of bool, shape (n, K)
        Prediction sets, e.g. from :meth:`SplitConformal.predict_sets`.

    Returns
    -------
    dict
        ``coverage`` (share of sets that hold the true class), ``mean_size`` and
        ``size_counts`` ({set size: number of patients}, for sizes 0..K).

    Raises
    ------
    ValueError
        When ``sets`` is not a boolean (n, K) array for the ``n`` labels, or a label lies
        outside ``0..K-1``.
    """
    y = np.asarray(y)
    s = np.asarray(sets)
    if s.dtype != bool:
        raise ValueError(f"sets must be a boolean (n, K) array (class k in patient i's set), got dtype {s.dtype}")
    if y.ndim != 1 or s.ndim != 2 or len(s) != len(y):
        raise ValueError(f"sets must be (n, K) for the {len(y)} labels of y, got shape {s.shape}")
    y = y.astype(int)
    if len(y) and (y.min() < 0 or y.max() >= s.shape[1]):
        raise ValueError(f"labels must lie in [0, {s.shape[1] - 1}], got range [{y.min()}, {y.max()}]")
    size = s.sum(1)
    return {"coverage": float(s[np.arange(len(y)), y].mean()), "mean_size": float(size.mean()),
            "size_counts": {int(k): int((size == k).sum()) for k in range(s.shape[1] + 1)}}
