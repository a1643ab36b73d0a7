"""What every survival model in :mod:`oncolab.survival` shares: the scikit-survival API.

Taught in chapter 8 (the API) and chapter 9 (comparing models in one loop).

``fit(X, y)`` takes scikit-survival's structured ``y`` of (event, time); ``predict(X)`` returns a
risk score (higher = worse); ``predict_survival(X, times)`` returns survival probabilities as
an array (patients x times); ``predict_survival_function(X)`` returns scikit-survival step
functions; ``score(X, y)`` is Harrell's C. :func:`survival_matrix` gets the (patients x times)
array from any model, ours or scikit-survival's.
"""

from __future__ import annotations

import numpy as np

from ._checks import check_survival

__all__ = ["SurvivalMixin", "survival_matrix"]


class SurvivalMixin:
    """``score`` (Harrell's C) and ``predict_survival_function`` for models that define
    ``predict`` and ``predict_survival(X, times)`` and keep their time grid in
    ``baseline_time_``.

    Taught in chapter 8 (the API) and chapter 9 (comparing models in one loop). It is mixed into
    :class:`~oncolab.survival.CoxPH`, :class:`~oncolab.survival.DeepSurv` and
    :class:`~oncolab.survival.DiscreteTimeSurvival`.
    """

    def score(self, X, y) -> float:
        """Harrell's C of ``predict(X)`` against the outcome ``y``.

        Parameters
        ----------
        X : array-like, shape (n_patients, n_covariates)
            Covariates, as for ``predict``.
        y : numpy structured array of (event, time), shape (n_patients,)
            The observed outcome (see :func:`~oncolab.survival.check_survival`).

        Returns
        -------
        float
            :func:`~oncolab.survival.harrell_c` of the predicted risk, in [0, 1].

        Raises
        ------
        ValueError
            When ``y`` is not a valid survival outcome.
        """
        from .metrics import harrell_c

        event, time = check_survival(y)
        return harrell_c(time, event, self.predict(X))

    def predict_survival_function(self, X, return_array: bool = False):
        """Survival curves on the model's own time grid ``baseline_time_``, as scikit-survival gives them.

        Parameters
        ----------
        X : array-like, shape (n_patients, n_covariates)
            Covariates, as for ``predict``.
        return_array : bool, default False
            Return the (n_patients, n_times) array instead of step functions.

        Returns
        -------
        numpy.ndarray
            Of ``sksurv.functions.StepFunction`` objects, shape (n_patients,), each over
            ``baseline_time_``; or, with ``return_array``, the float array
            ``predict_survival(X, baseline_time_)`` of shape (n_patients, len(baseline_time_)).
        """
        from sksurv.functions import StepFunction

        times = self.baseline_time_
        S = self.predict_survival(X, times)
        if return_array:
            return S
        return np.array([StepFunction(times, s) for s in S])


def survival_matrix(model, X, times) -> np.ndarray:
    """Predicted ``S(t | x)`` of any fitted model at ``times``: shape (n_patients, n_times).

    Uses ``model.predict_survival`` when the model has it; otherwise evaluates
    scikit-survival's step functions, holding the first/last value outside their domain
    (before the first training time S is taken as the first value, after the last as the
    last value). Works on a Pipeline whose last step is such a model, and on a fitted
    ``GridSearchCV`` (its best estimator). Taught in chapter 9 (Brier scores of every model in
    one loop).

    Parameters
    ----------
    model : fitted estimator
        One of ours, a scikit-survival model with ``predict_survival_function``, a Pipeline
        ending in either, or a fitted ``GridSearchCV`` around one.
    X : array-like, shape (n_patients, n_covariates)
        Covariates, in the form the model (or the Pipeline's first step) takes.
    times : array-like of float, shape (n_times,)
        Where to evaluate the survival function.

    Returns
    -------
    numpy.ndarray of float, shape (n_patients, n_times)
        ``S(t | x)`` for each patient and time.
    """
    times = np.asarray(times, float)
    if hasattr(model, "steps"):  # a Pipeline: transform, then ask the last step
        Xt = X
        for _, step in model.steps[:-1]:
            Xt = step.transform(Xt)
        return survival_matrix(model.steps[-1][1], Xt, times)
    if hasattr(model, "best_estimator_"):  # a fitted GridSearchCV
        return survival_matrix(model.best_estimator_, X, times)
    if hasattr(model, "predict_survival"):
        return np.asarray(model.predict_survival(X, times), float)
    fns = model.predict_survival_function(X)
    out = np.empty((len(fns), len(times)))
    for i, f in enumerate(fns):
        lo, hi = f.domain
        out[i] = f(np.clip(times, lo, hi))
    return out
