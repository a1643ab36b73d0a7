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
    C) on the training data, then refits at that value.
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
        self._check_fitted()
        return np.asarray(self.model_.predict(check_X(X)), float)

    def predict_survival(self, X, times) -> np.ndarray:
        """S(t | x) at ``times`` (held at the first/last value outside the training times)."""
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
    ensembles and epochs (for smoke runs). Extra ``params`` go to the model.
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
