"""scikit-survival's models behind the same interface as ours, and one factory for all.

Taught in chapter 9 ("Deep survival models"), where every model is compared in one loop.

:class:`SksurvModel` wraps ``CoxPHSurvivalAnalysis`` ("sk-cox"), ``CoxnetSurvivalAnalysis``
("coxnet", elastic net with its penalty chosen by an inner cross-validation),
``RandomSurvivalForest`` ("rsf") and ``GradientBoostingSurvivalAnalysis`` ("gbsa", Cox loss)
so that each has ``predict_survival(X, times)`` (an array) besides the scikit-survival API.
:func:`make_model` builds any model of the book by name.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import BaseEstimator

from ._checks import check_survival, check_X
from .base import SurvivalMixin

__all__ = ["MODEL_NAMES", "SksurvModel", "make_model"]

MODEL_NAMES = ("cox", "coxnet", "rsf", "gbsa", "deepsurv", "discrete", "sk-cox")
_KINDS = ("sk-cox", "coxnet", "rsf", "gbsa")


class SksurvModel(SurvivalMixin, BaseEstimator):
    """A scikit-survival model with ``predict_survival(X, times)``.

    ``kind`` is one of "sk-cox", "coxnet", "rsf", "gbsa"; ``params`` go to its constructor;
    ``seed`` sets ``random_state`` where the model has one. For "coxnet", ``alpha=None``
    chooses the penalty on a path of 30 values by 3-fold inner cross-validation (Harrell's
    C) on the training data, then refits at that value. Taught in chapter 9.

    Parameters
    ----------
    kind : {"sk-cox", "coxnet", "rsf", "gbsa"}, default "rsf"
        ``CoxPHSurvivalAnalysis`` (Efron ties), ``CoxnetSurvivalAnalysis`` (``l1_ratio=0.5``),
        ``RandomSurvivalForest`` (100 trees, ``min_samples_leaf=10``) or
        ``GradientBoostingSurvivalAnalysis`` (Cox loss, 100 stages of depth 2); an unknown
        kind is refused at ``fit``.
    params : dict, optional
        Constructor arguments that replace those defaults.
    seed : int, default 0
        ``random_state`` of "rsf" and "gbsa", and the inner folds of "coxnet".
    alpha : float, optional
        The "coxnet" penalty; None chooses it by inner cross-validation. Ignored by the others.

    Attributes
    ----------
    model_ : the fitted scikit-survival estimator
    alpha_ : float
        The "coxnet" penalty used.
    baseline_time_ : numpy.ndarray of float
        The model's time grid (its ``unique_times_``, else the training event times).
    """

    def __init__(self, kind: str = "rsf", params: dict | None = None, seed: int = 0, alpha: float | None = None):
        self.kind = kind
        self.params = params
        self.seed = seed
        self.alpha = alpha

    def _make(self, **extra):
        from sksurv.ensemble import GradientBoostingSurvivalAnalysis, RandomSurvivalForest
        from sksurv.linear_model import CoxnetSurvivalAnalysis, CoxPHSurvivalAnalysis

        p = dict(self.params or {})
        p.update(extra)
        if self.kind == "sk-cox":
            return CoxPHSurvivalAnalysis(**{"ties": "efron", **p})
        if self.kind == "coxnet":
            return CoxnetSurvivalAnalysis(**{"l1_ratio": 0.5, "fit_baseline_model": True, **p})
        if self.kind == "rsf":
            return RandomSurvivalForest(**{"n_estimators": 100, "min_samples_leaf": 10, "max_features": "sqrt",
                                           "n_jobs": 1, "random_state": self.seed, **p})
        if self.kind == "gbsa":
            return GradientBoostingSurvivalAnalysis(**{"loss": "coxph", "n_estimators": 100, "learning_rate": 0.05,
                                                       "max_depth": 2, "subsample": 0.8,
                                                       "random_state": self.seed, **p})
        raise ValueError(f"kind must be one of {_KINDS}, got {self.kind!r}")

    def fit(self, X, y):
        """Fit the wrapped scikit-survival model (choosing the "coxnet" penalty first if needed).

        Parameters
        ----------
        X : array-like, shape (n, n_features)
            Numeric covariates without NaN.
        y : numpy structured array of (event, time), shape (n,)
            The outcome.

        Returns
        -------
        SksurvModel
            ``self``, fitted.

        Raises
        ------
        ValueError
            When ``kind`` is unknown, or ``X`` or ``y`` fails the survival input checks.
        ArithmeticError
            When Coxnet diverges at every penalty path tried (give ``alpha``).
        """
        event, time = check_survival(y)
        X = check_X(X, len(time))
        self.n_features_in_ = X.shape[1]
        if self.kind == "coxnet":
            if self.alpha is not None:
                self.alpha_, path = float(self.alpha), [float(self.alpha)]
            else:
                self.alpha_, path = self._choose_alpha(X, y)
            # fit along the path down to the chosen penalty (warm starts keep it stable); the
            # last alpha of the path is the one predict and predict_survival_function use
            self.model_ = self._make(alphas=[a for a in path if a >= self.alpha_]).fit(X, y)
        else:
            self.model_ = self._make().fit(X, y)
        m = self.model_
        grid = getattr(m, "unique_times_", None)
        if grid is None:
            grid = np.unique(time[event])
        self.baseline_time_ = np.asarray(grid, float)
        return self

    def _choose_alpha(self, X, y) -> tuple[float, list[float]]:
        from sklearn.model_selection import StratifiedKFold

        from .metrics import harrell_c

        path = None
        for ratio in (0.01, 0.05, 0.2, 0.5):  # small penalties can diverge when p ~ n
            try:
                path = self._make(n_alphas=30, alpha_min_ratio=ratio, fit_baseline_model=False).fit(X, y).alphas_
                break
            except ArithmeticError:
                continue
        if path is None:
            raise ArithmeticError("Coxnet diverged even at alpha_min_ratio=0.5; give alpha= explicitly")
        scores = np.full((3, len(path)), np.nan)
        event, _ = check_survival(y)
        folds = StratifiedKFold(3, shuffle=True, random_state=self.seed).split(X, event)
        for f, (tr, va) in enumerate(folds):
            try:
                m = self._make(alphas=path, fit_baseline_model=False).fit(X[tr], y[tr])
            except ArithmeticError:
                continue
            ev, t = check_survival(y[va])
            for k, a in enumerate(path):
                if a in m.alphas_:
                    try:
                        scores[f, k] = harrell_c(t, ev, m.predict(X[va], alpha=a))
                    except ValueError:
                        pass
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
            mean = np.nanmean(scores, axis=0)
        best = 0 if np.isnan(mean).all() else int(np.nanargmax(mean))
        return float(path[best]), [float(a) for a in path]

    def predict(self, X):
        """The wrapped model's risk score (higher = worse).

        Parameters
        ----------
        X : array-like, shape (n_patients, n_features)
            Covariates.

        Returns
        -------
        numpy.ndarray of float, shape (n_patients,)

        Raises
        ------
        RuntimeError
            When the model is not fitted.
        """
        self._check_fitted()
        return np.asarray(self.model_.predict(check_X(X)), float)

    def predict_survival(self, X, times) -> np.ndarray:
        """S(t | x) at ``times``: 1 before the model's first time, its last value after the last.

        Parameters
        ----------
        X : array-like, shape (n_patients, n_features)
            Covariates.
        times : array-like of float, shape (n_times,)
            Where to evaluate.

        Returns
        -------
        numpy.ndarray of float, shape (n_patients, n_times)

        Raises
        ------
        RuntimeError
            When the model is not fitted.
        """
        self._check_fitted()
        times = np.asarray(times, float)
        fns = self.model_.predict_survival_function(check_X(X))
        out = np.empty((len(fns), len(times)))
        for i, f in enumerate(fns):
            lo, hi = f.domain
            s = f(np.clip(times, lo, hi))
            out[i] = np.where(times < lo, 1.0, s)
        return out

    def _check_fitted(self):
        if not hasattr(self, "model_"):
            raise RuntimeError("this SksurvModel is not fitted yet: call fit(X, y) first")


def make_model(name: str, seed: int = 0, fast: bool = False, **params):
    """Any survival model of the book by name: one of :data:`MODEL_NAMES`.

    "cox" is our :class:`~oncolab.survival.CoxPH` (Efron ties, a small L2 penalty
    ``alpha=0.1`` unless given, which keeps it finite on correlated genes); "deepsurv" and
    "discrete" are the PyTorch models; the others are :class:`SksurvModel`. ``fast=True`` shrinks
    ensembles and epochs (for smoke runs). Extra ``params`` go to the model. Taught in chapter 9
    (every model compared in one loop).

    Parameters
    ----------
    name : str
        One of :data:`MODEL_NAMES`: "cox", "coxnet", "rsf", "gbsa", "deepsurv", "discrete",
        "sk-cox".
    seed : int, default 0
        The model's seed (unused by "cox" and "sk-cox", which are deterministic).
    fast : bool, default False
        25 trees for "rsf" and "gbsa", 40 epochs for "deepsurv" and "discrete", unless
        ``params`` say otherwise.
    **params
        Constructor arguments of the model (for :class:`SksurvModel`, those of the wrapped
        scikit-survival estimator, except ``alpha``, which goes to the wrapper).

    Returns
    -------
    estimator
        An unfitted :class:`~oncolab.survival.CoxPH`, :class:`~oncolab.survival.DeepSurv`,
        :class:`~oncolab.survival.DiscreteTimeSurvival` or :class:`SksurvModel`.

    Raises
    ------
    ValueError
        When ``name`` is not one of :data:`MODEL_NAMES`.
    """
    if name == "cox":
        from .cox import CoxPH

        return CoxPH(**{"ties": "efron", "alpha": 0.1, **params})
    if name in ("deepsurv", "discrete"):
        from .deep import DeepSurv, DiscreteTimeSurvival

        cls = DeepSurv if name == "deepsurv" else DiscreteTimeSurvival
        if fast:
            params = {"epochs": 40, **params}
        return cls(seed=seed, **params)
    if name in _KINDS:
        alpha = params.pop("alpha", None)
        if fast and name in ("rsf", "gbsa"):
            params = {"n_estimators": 25, **params}
        return SksurvModel(kind=name, params=params or None, seed=seed, alpha=alpha)
    raise ValueError(f"unknown model {name!r}; expected one of {MODEL_NAMES}")
