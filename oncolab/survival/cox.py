"""The Cox proportional hazards model from first principles.

Taught in chapter 8 ("Survival analysis from first principles"); chapter 9 uses it as the
baseline the deep models must beat. Checked against scikit-survival's
``CoxPHSurvivalAnalysis`` (coefficients, Breslow and Efron ties) and lifelines'
``CoxPHFitter`` (standard errors) in ``tests/test_survival_cox.py``.

The model: hazard ``h(t | x) = h0(t) exp(x' beta)``. The partial likelihood conditions, at
each distinct event time ``t_j``, on who failed among those at risk ``R_j`` (time ``>= t_j``):

* Breslow ties: ``l(beta) = sum_j [ sum_{i in D_j} eta_i - d_j log sum_{k in R_j} e^{eta_k} ]``;
* Efron ties: ``l(beta) = sum_j [ sum_{i in D_j} eta_i
  - sum_{m=0}^{d_j-1} log( sum_{R_j} e^{eta_k} - (m / d_j) sum_{D_j} e^{eta_k} ) ]``,

with ``eta = X beta`` and ``D_j`` the ``d_j`` patients who failed at ``t_j``. Both are
concave in ``beta``; :func:`cox_newton` maximises them (optionally with an L2 penalty
``alpha / 2 * ||beta||^2``) by Newton-Raphson with step halving. The Breslow estimator of
the baseline cumulative hazard is ``H0(t) = sum_{t_j <= t} d_j / sum_{R_j} e^{eta_k}``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning

from ._checks import check_survival, check_X
from .base import SurvivalMixin

__all__ = ["CoxPH", "breslow_baseline", "cox_newton", "cox_partial_likelihood"]

TIES = ("breslow", "efron")


def _check_ties(ties: str) -> str:
    if ties not in TIES:
        raise ValueError(f"ties must be one of {TIES}, got {ties!r}")
    return ties


def cox_partial_likelihood(beta, X, time, event, ties: str = "breslow", alpha: float = 0.0,
                           derivatives: bool = True):
    """Log partial likelihood of a Cox model, its gradient and Hessian.

    With ``alpha > 0`` the L2 penalty ``alpha / 2 * ||beta||^2`` is subtracted (and its
    derivatives with it). Vectorised: O(n p^2) for the Hessian, no loop over event times.
    Taught in chapter 8 (the partial likelihood written out and checked against
    scikit-survival); chapter 9 compares DeepSurv's loss with it. No input check is made here
    beyond ``ties``: :class:`CoxPH` checks its inputs before calling it.

    Parameters
    ----------
    beta : array-like of float, shape (p,)
        Coefficients at which to evaluate.
    X : array-like of float, shape (n, p)
        Covariates.
    time : array-like of float, shape (n,)
        Follow-up times.
    event : array-like of bool, shape (n,)
        True where the event was observed.
    ties : {"breslow", "efron"}, default "breslow"
        How tied event times are handled (see the module docstring).
    alpha : float, default 0.0
        L2 penalty strength.
    derivatives : bool, default True
        Also compute the gradient and the Hessian.

    Returns
    -------
    loglik : float
        The (penalised) log partial likelihood.
    gradient : numpy.ndarray of float, shape (p,), or None
        Its gradient in ``beta``; None unless ``derivatives``.
    hessian : numpy.ndarray of float, shape (p, p), or None
        Its Hessian (negative semi-definite); None unless ``derivatives``.

    Raises
    ------
    ValueError
        When ``ties`` is not "breslow" or "efron".
    """
    _check_ties(ties)
    X = np.asarray(X, float)
    beta = np.asarray(beta, float)
    time = np.asarray(time, float)
    event = np.asarray(event, bool)
    n, p = X.shape
    eta = X @ beta
    shift = eta.max()
    w = np.exp(eta - shift)                    # exp(eta), shifted for stability
    order = np.argsort(time, kind="mergesort")
    ts = time[order]
    uniq, first = np.unique(ts, return_index=True)
    # risk-set sums at each distinct time: suffix sums from the first patient with that time
    w_s = w[order]
    S0 = np.cumsum(w_s[::-1])[::-1][first]                        # sum_R e^eta
    # events per distinct time
    gi = np.searchsorted(uniq, time)                               # group of each patient
    ev_idx = np.flatnonzero(event)
    d = np.bincount(gi[ev_idx], minlength=len(uniq))
    Sd = np.bincount(gi[ev_idx], weights=w[ev_idx], minlength=len(uniq))  # sum_D e^eta
    jt = np.flatnonzero(d)                                          # distinct event times
    # one row per event: its time group and its m in 0..d-1
    reps = d[jt]
    grp = np.repeat(jt, reps)
    m = np.arange(reps.sum()) - np.repeat(np.cumsum(reps) - reps, reps)
    c = m / np.repeat(reps, reps) if ties == "efron" else np.zeros(len(m))
    den = S0[grp] - c * Sd[grp]
    loglik = float(eta[event].sum() - np.sum(np.log(den) + shift))
    if alpha:
        loglik -= 0.5 * alpha * float(beta @ beta)
    if not derivatives:
        return loglik, None, None
    X_s = X[order]
    S1 = np.cumsum((w_s[:, None] * X_s)[::-1], axis=0)[::-1][first]   # sum_R e^eta x
    S1d = np.zeros((len(uniq), p))
    np.add.at(S1d, gi[ev_idx], w[ev_idx, None] * X[ev_idx])            # sum_D e^eta x
    A = S1[grp] - c[:, None] * S1d[grp]                                  # (events, p)
    grad = X[event].sum(0) - (A / den[:, None]).sum(0)
    # second moments: sum_jm (S2_R - c S2_D) / den, folded into per-patient weights
    inv = 1.0 / den
    per_time_R = np.bincount(grp, weights=inv, minlength=len(uniq))     # sum_m 1/den at t_j
    per_time_D = np.bincount(grp, weights=c * inv, minlength=len(uniq))  # sum_m c/den at t_j
    cum_R = np.cumsum(per_time_R)                                        # over t_j <= t_k
    wk = w * cum_R[gi]
    wk[ev_idx] -= w[ev_idx] * per_time_D[gi[ev_idx]]
    Z = A * inv[:, None]
    info = (X * wk[:, None]).T @ X - Z.T @ Z                             # -Hessian
    hess = -info
    if alpha:
        grad = grad - alpha * beta
        hess = hess - alpha * np.eye(p)
    return loglik, grad, hess


def cox_newton(X, time, event, ties: str = "breslow", alpha: float = 0.0, max_iter: int = 100,
               tol: float = 1e-10, beta0=None, feature_names=None) -> dict:
    """Maximise the (penalised) partial likelihood by Newton-Raphson with step halving.

    Each step solves ``H delta = -g`` (least squares when ``H`` is singular, a gradient step
    when that fails too); when the log likelihood does not increase the step is halved (up to
    30 times, after which the iterations stop unconverged). It has converged when the relative
    change of the log likelihood is below ``tol`` and the largest step is below
    ``max(tol, 1e-8) * (1 + max |beta|)``. If it does not converge, or a coefficient ends above
    15 per standard deviation of its covariate (separation: a covariate that perfectly orders
    the events), it warns with a ``ConvergenceWarning`` that names the covariate. Taught in
    chapter 8 (Newton-Raphson on the partial likelihood); :class:`CoxPH` fits with it.

    Parameters
    ----------
    X : array-like of float, shape (n, p)
        Covariates.
    time : array-like of float, shape (n,)
        Follow-up times.
    event : array-like of bool, shape (n,)
        True where the event was observed.
    ties : {"breslow", "efron"}, default "breslow"
        How tied event times are handled.
    alpha : float, default 0.0
        L2 penalty ``alpha / 2 * ||beta||^2`` (0 = none).
    max_iter : int, default 100
        Most Newton iterations.
    tol : float, default 1e-10
        Convergence tolerance (see above).
    beta0 : array-like of float, shape (p,), optional
        Starting coefficients; zeros by default.
    feature_names : sequence of str, optional
        Covariate names for the warning; ``x0, x1, ...`` by default.

    Returns
    -------
    dict
        ``coef`` (numpy.ndarray, shape (p,)), ``loglik`` (float), ``gradient`` (shape (p,))
        and ``hessian`` (shape (p, p)) at ``coef``, ``n_iter`` (int, iterations run) and
        ``converged`` (bool).

    Raises
    ------
    ValueError
        When ``ties`` is not "breslow" or "efron".
    """
    X = np.asarray(X, float)
    n, p = X.shape
    names = list(feature_names) if feature_names is not None else [f"x{j}" for j in range(p)]
    beta = np.zeros(p) if beta0 is None else np.asarray(beta0, float).copy()
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        return _newton(X, time, event, ties, alpha, max_iter, tol, beta, names)


def _newton(X, time, event, ties, alpha, max_iter, tol, beta, names) -> dict:
    ll, g, H = cox_partial_likelihood(beta, X, time, event, ties, alpha)
    converged = False
    n_iter = 0
    for it in range(1, max_iter + 1):
        n_iter = it
        try:
            step = np.linalg.solve(H, -g)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(H, -g, rcond=None)[0]
        if not np.all(np.isfinite(step)):
            step = np.where(np.isfinite(g), g, 0.0)  # (near-)singular Hessian: a gradient step
        improved = False
        for _ in range(30):
            new = beta + step
            ll_new = cox_partial_likelihood(new, X, time, event, ties, alpha, derivatives=False)[0]
            if np.isfinite(ll_new) and ll_new >= ll - 1e-12 * abs(ll):
                improved = True
                break
            step = step / 2
        if not improved:
            break
        rel = abs(ll_new - ll) / max(abs(ll), 1e-300)
        beta = new
        ll, g, H = cox_partial_likelihood(beta, X, time, event, ties, alpha)
        if rel < tol and np.max(np.abs(step)) < max(tol, 1e-8) * (1 + np.max(np.abs(beta))):
            converged = True
            break
    sd = X.std(0)
    scaled = np.abs(beta) * np.where(sd > 0, sd, 1.0)
    if not converged or scaled.max(initial=0) > 15:
        j = int(np.argmax(scaled))
        warnings.warn(
            f"Cox fit {'did not converge in ' + str(max_iter) + ' iterations' if not converged else 'converged to a huge coefficient'}"
            f": the coefficient of covariate {names[j]!r} diverges (beta = {beta[j]:.3g}, "
            f"{scaled[j]:.3g} per standard deviation). This is separation: that covariate orders "
            "the events (almost) perfectly. Remove or merge it, or use an L2 penalty (alpha > 0).",
            ConvergenceWarning, stacklevel=2)
    return {"coef": beta, "loglik": ll, "gradient": g, "hessian": H, "n_iter": n_iter, "converged": converged}


def breslow_baseline(eta, time, event) -> tuple[np.ndarray, np.ndarray]:
    """Breslow's baseline cumulative hazard ``H0`` at each distinct time: ``(times, H0)``.

    ``H0(t) = sum_{t_j <= t} d_j / sum_{k: t_k >= t_j} exp(eta_k)``. Taught in chapter 8 (from
    a Cox model's linear predictor to survival curves); :class:`DeepSurv` uses it with the
    network's output in chapter 9.

    Parameters
    ----------
    eta : array-like of float, shape (n,)
        Linear predictor (log relative hazard) of each training patient.
    time : array-like of float, shape (n,)
        Follow-up times.
    event : array-like of bool, shape (n,)
        True where the event was observed.

    Returns
    -------
    times : numpy.ndarray of float, shape (n_distinct,)
        The distinct follow-up times (event or censoring), increasing.
    H0 : numpy.ndarray of float, shape (n_distinct,)
        The baseline cumulative hazard at each of them (a non-decreasing step function).
    """
    eta = np.asarray(eta, float)
    time = np.asarray(time, float)
    event = np.asarray(event, bool)
    order = np.argsort(time, kind="mergesort")
    uniq, first = np.unique(time[order], return_index=True)
    S0 = np.cumsum(np.exp(eta[order])[::-1])[::-1][first]
    d = np.bincount(np.searchsorted(uniq, time[event]), minlength=len(uniq))
    return uniq, np.cumsum(d / S0)


class CoxPH(SurvivalMixin, BaseEstimator):
    """Cox proportional hazards, fitted by our own Newton-Raphson (see the module docstring).

    Taught in chapter 8; the baseline of chapters 9, 12 and 13.

    Parameters
    ----------
    ties : {"breslow", "efron"}, default "breslow"
        How tied event times are handled.
    alpha : float, default 0.0
        L2 penalty ``alpha / 2 * ||beta||^2`` on the log partial likelihood (0 = none;
        the same scale as scikit-survival's ``alpha``).
    max_iter : int, default 100
        Most Newton-Raphson iterations.
    tol : float, default 1e-10
        Convergence tolerance of :func:`cox_newton`.

    Attributes
    ----------
    coef_ : numpy.ndarray of float, shape (p,)
        The fitted coefficients (log hazard ratios).
    loglik_ : float
        The (penalised) log partial likelihood at ``coef_``.
    n_iter_ : int
    converged_ : bool
    cov_ : numpy.ndarray, shape (p, p)
        Inverse of the observed (penalised) information; NaN when it is singular.
    baseline_time_, cum_baseline_hazard_ : numpy.ndarray, shape (n_distinct,)
        Breslow's baseline cumulative hazard at each distinct training time.
    feature_names_in_ : numpy.ndarray of str
        Only when ``X`` was a DataFrame.

    :meth:`summary` gives the coefficient table.
    """

    def __init__(self, ties: str = "breslow", alpha: float = 0.0, max_iter: int = 100, tol: float = 1e-10):
        self.ties = ties
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = tol

    def fit(self, X, y):
        """Fit the coefficients and the Breslow baseline hazard.

        Parameters
        ----------
        X : array-like or pandas.DataFrame, shape (n, p)
            Numeric covariates without NaN; a DataFrame's column names name the coefficients.
        y : numpy structured array of (event, time), shape (n,)
            The outcome (see :func:`~oncolab.data.survival_array`).

        Returns
        -------
        CoxPH
            ``self``, fitted.

        Raises
        ------
        ValueError
            When ``ties`` or ``alpha`` is invalid, or ``X`` or ``y`` fails the checks of
            :func:`~oncolab.survival.check_survival` and ``check_X``.

        Warns
        -----
        sklearn.exceptions.ConvergenceWarning
            When Newton-Raphson does not converge or a coefficient diverges (separation).
        """
        _check_ties(self.ties)
        if not (np.isscalar(self.alpha) and self.alpha >= 0):
            raise ValueError(f"alpha must be a number >= 0, got {self.alpha!r}")
        event, time = check_survival(y)
        names = list(X.columns) if hasattr(X, "columns") else None
        X = check_X(X, len(time))
        if names is not None:
            self.feature_names_in_ = np.asarray(names, dtype=object)
        self.n_features_in_ = X.shape[1]
        res = cox_newton(X, time, event, self.ties, float(self.alpha), self.max_iter, self.tol,
                         feature_names=names)
        self.coef_ = res["coef"]
        self.loglik_ = res["loglik"]
        self.n_iter_ = res["n_iter"]
        self.converged_ = res["converged"]
        try:
            self.cov_ = np.linalg.inv(-res["hessian"])
        except np.linalg.LinAlgError:
            self.cov_ = np.full((X.shape[1], X.shape[1]), np.nan)
        with np.errstate(over="ignore", divide="ignore"):  # only after a diverged (warned) fit
            self.baseline_time_, self.cum_baseline_hazard_ = breslow_baseline(X @ self.coef_, time, event)
        return self

    def predict(self, X):
        """Linear predictor ``x' beta`` (higher = higher hazard).

        Parameters
        ----------
        X : array-like, shape (n_patients, p)
            Covariates in the columns the model was fitted on.

        Returns
        -------
        numpy.ndarray of float, shape (n_patients,)

        Raises
        ------
        RuntimeError
            When the model is not fitted.
        ValueError
            When ``X`` is not a numeric 2-D matrix without NaN.
        """
        self._check_fitted()
        return check_X(X) @ self.coef_

    def predict_cumulative_hazard(self, X, times) -> np.ndarray:
        """``H(t | x) = H0(t) exp(x' beta)`` at ``times``: shape (n_patients, n_times).

        ``H0`` is the Breslow step function: 0 before the first training time, its last value
        after the last.

        Parameters
        ----------
        X : array-like, shape (n_patients, p)
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
        idx = np.searchsorted(self.baseline_time_, times, side="right") - 1
        h0 = np.where(idx >= 0, self.cum_baseline_hazard_[np.maximum(idx, 0)], 0.0)
        return np.exp(self.predict(X))[:, None] * h0[None, :]

    def predict_survival(self, X, times) -> np.ndarray:
        """``S(t | x) = exp(-H(t | x))`` at ``times``: shape (n_patients, n_times).

        Parameters
        ----------
        X : array-like, shape (n_patients, p)
            Covariates.
        times : array-like of float, shape (n_times,)
            Where to evaluate.

        Returns
        -------
        numpy.ndarray of float, shape (n_patients, n_times)
            Survival probabilities, non-increasing in time.

        Raises
        ------
        RuntimeError
            When the model is not fitted.
        """
        return np.exp(-self.predict_cumulative_hazard(X, times))

    def summary(self, conf_level: float = 0.95) -> pd.DataFrame:
        """Coefficient table: coef, exp(coef) (hazard ratio), se, z, p, confidence interval.

        Standard errors are the square roots of the diagonal of ``cov_``; ``z = coef / se``;
        ``p`` is the two-sided Wald p-value; the interval is ``coef -+ q * se`` on the
        coefficient (log hazard ratio) scale, ``q`` the normal quantile.

        Parameters
        ----------
        conf_level : float, default 0.95
            Confidence level of the Wald interval.

        Returns
        -------
        pandas.DataFrame
            One row per covariate (index ``covariate``: the fitted DataFrame's column names,
            or ``x0, x1, ...``), columns ``coef``, ``exp(coef)``, ``se``, ``z``, ``p``,
            ``ci_low``, ``ci_high``.

        Raises
        ------
        RuntimeError
            When the model is not fitted.
        """
        self._check_fitted()
        se = np.sqrt(np.diag(self.cov_))
        z = self.coef_ / se
        q = stats.norm.isf((1 - conf_level) / 2)
        names = getattr(self, "feature_names_in_", [f"x{j}" for j in range(len(self.coef_))])
        return pd.DataFrame({"coef": self.coef_, "exp(coef)": np.exp(self.coef_), "se": se, "z": z,
                             "p": 2 * stats.norm.sf(np.abs(z)),
                             "ci_low": self.coef_ - q * se, "ci_high": self.coef_ + q * se},
                            index=pd.Index(names, name="covariate"))

    def _check_fitted(self):
        if not hasattr(self, "coef_"):
            raise RuntimeError("this CoxPH is not fitted yet: call fit(X, y) first")
