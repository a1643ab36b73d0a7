"""Validation done right, in one helper: repeated stratified K-fold on patients, preprocessing
fitted inside each fold, bootstrap confidence intervals, a tidy results table.

Taught in chapter 9 ("Deep survival models").

For each repeat and fold, every model is cloned into a ``Pipeline(preprocessor, model)``
fitted on the training patients only (imputation, scaling and encoding never see the test
patients), then evaluated on the test patients: Harrell's C, Uno's C, the mean
time-dependent AUC and the integrated Brier score over a grid of times. Folds are
stratified by event status and time tertile, so each has the cohort's mix.

Confidence intervals (Harrell's C and the IBS; Uno's C and the mean td-AUC get the fold
standard deviation only): each bootstrap replicate resamples the test patients of every fold
(with replacement, the models stay fixed), recomputes Harrell's C and the IBS per fold and
averages over folds; the 2.5% and 97.5% quantiles of those averages form the 95% interval of
the cross-validated estimate. This captures test-set sampling noise, not the variability of
refitting on other training sets (repeats show some of that).
"""

from __future__ import annotations

import time as _time
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import RepeatedStratifiedKFold
from sklearn.pipeline import Pipeline

from ._checks import check_survival
from .base import survival_matrix
from .metrics import (
    brier_from_censoring,
    censoring_survival,
    check_eval_times,
    harrell_c,
    integrated_brier_score,
    td_auc,
    uno_c,
)

__all__ = ["CVResult", "cross_validate_survival", "default_times"]


def default_times(y, n: int = 20, lo: float = 10, hi: float = 80) -> np.ndarray:
    """An evaluation grid: ``n`` times from the ``lo``-th to the ``hi``-th percentile of the
    event times (inside the follow-up, where IPCW weights are stable).

    Taught in chapter 9 (the default grid of :func:`cross_validate_survival`).

    Parameters
    ----------
    y : numpy structured array of (event, time), shape (n_patients,)
        The outcome.
    n : int, default 20
        Number of times.
    lo, hi : float, default 10 and 80
        Percentiles of the event times that bound the grid.

    Returns
    -------
    numpy.ndarray of float, shape (n,)
        Evenly spaced times, increasing.

    Raises
    ------
    ValueError
        When ``y`` is not a valid outcome with at least one event.
    """
    event, time = check_survival(y)
    return np.linspace(*np.percentile(time[event], [lo, hi]), n)


@dataclass
class CVResult:
    """What :func:`cross_validate_survival` returns; taught in chapter 9.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per model and metric (``harrell_c``, ``uno_c``, ``td_auc``, ``ibs``):
        ``estimate`` (the mean over folds), ``ci_low``/``ci_high`` (the bootstrap 95% interval,
        NaN for ``uno_c`` and ``td_auc`` and when ``n_boot=0``), ``sd`` (over folds) and
        ``n_folds``.
    folds : pandas.DataFrame
        One row per model, repeat and fold: the four metrics, ``n_test`` and ``fit_seconds``.
    predictions : pandas.DataFrame
        The test fold of each patient (column ``fold``) and the out-of-fold risk per model
        (last repeat; risks of different folds are not on one scale).
    """

    table: pd.DataFrame
    folds: pd.DataFrame
    predictions: pd.DataFrame

    def wide(self, digits: int = 3) -> pd.DataFrame:
        """One row per model, one column per metric, as text.

        A metric with a bootstrap interval reads "estimate [low, high]", one without (Uno's C,
        the mean td-AUC, or every metric when ``n_boot=0``) "estimate (sd s)", ``s`` the
        standard deviation over folds.

        Parameters
        ----------
        digits : int, default 3
            Decimals shown.

        Returns
        -------
        pandas.DataFrame
            Indexed by model in the order given, columns among ``harrell_c``, ``uno_c``,
            ``td_auc``, ``ibs``, in that order.
        """
        t = self.table.copy()

        def fmt(r):
            if np.isnan(r["ci_low"]):
                return f"{r['estimate']:.{digits}f} (sd {r['sd']:.{digits}f})"
            return f"{r['estimate']:.{digits}f} [{r['ci_low']:.{digits}f}, {r['ci_high']:.{digits}f}]"

        t["value"] = t.apply(fmt, axis=1)
        out = t.pivot(index="model", columns="metric", values="value")
        order = list(dict.fromkeys(self.table["model"]))
        cols = [c for c in ("harrell_c", "uno_c", "td_auc", "ibs") if c in out.columns]
        return out.loc[order, cols]


def _fold_times(times, y_tr, y_te):
    t_te = check_survival(y_te)[1]
    t_tr = check_survival(y_tr)[1]
    keep = (times >= t_te.min()) & (times < t_te.max()) & (times <= t_tr.max())
    return times[keep]


def _strata(event, time):
    tert = np.searchsorted(np.quantile(time, [1 / 3, 2 / 3]), time)
    s = event.astype(int) * 3 + tert
    counts = np.bincount(s, minlength=6)
    return np.where(counts[s] >= 10, s, event.astype(int))


def cross_validate_survival(models: dict, X, y, preprocessor=None, n_splits: int = 5, n_repeats: int = 1,
                            seed: int = 0, times=None, n_boot: int = 200, verbose: bool = False) -> CVResult:
    """Cross-validate several survival models the same way (see the module docstring).

    Taught in chapter 9 (every model on the cohort and on GBSG2).

    Parameters
    ----------
    models : dict of str to estimator
        ``{name: estimator}`` with the scikit-survival API; each is cloned for every fold.
    X : pandas.DataFrame or array-like, shape (n_patients, n_columns)
        Raw covariates.
    y : numpy structured array of (event, time), shape (n_patients,)
        The outcome.
    preprocessor : transformer, optional
        Fitted inside each fold before the model (e.g. a ColumnTransformer that imputes,
        encodes and scales); None uses ``X`` as is.
    n_splits : int, default 5
        Folds per repeat, >= 2.
    n_repeats : int, default 1
        Repeats of the K-fold split.
    seed : int, default 0
        Seeds the folds and the bootstrap. The models' own seeds are not changed: set them on
        the estimators given (e.g. :func:`~oncolab.survival.make_model`'s ``seed``).
    times : array-like of float, optional
        Evaluation grid for Uno's C (its ``tau`` is the last time of the fold), td-AUC and
        IBS; by default :func:`default_times`. Each fold keeps the times inside its test
        patients' follow-up and its training follow-up.
    n_boot : int, default 200
        Bootstrap replicates for the 95% intervals of Harrell's C and the IBS (0 = none).
    verbose : bool, default False
        Print one line per model and fold.

    Returns
    -------
    CVResult
        The summary table, the per-fold metrics and the out-of-fold predictions.

    Raises
    ------
    ValueError
        When ``y`` is not a valid outcome, ``models`` is empty, ``X`` and ``y`` differ in
        length, ``n_splits < 2``, or ``times`` leaves the follow-up of ``y``.
    """
    event, time = check_survival(y)
    if not models:
        raise ValueError("models is empty: give {name: estimator}")
    if len(X) != len(time):
        raise ValueError(f"X has {len(X)} rows but y has {len(time)} patients")
    if n_splits < 2:
        raise ValueError(f"n_splits must be >= 2, got {n_splits}")
    times = default_times(y) if times is None else np.asarray(times, float)
    check_eval_times(times, time)
    cv = RepeatedStratifiedKFold(n_splits=n_splits, n_repeats=n_repeats, random_state=seed)
    rows, store = [], []
    oof = {name: np.full(len(time), np.nan) for name in models}
    fold_of = np.full(len(time), -1)
    Xa = X
    take = (lambda idx: Xa.iloc[idx]) if hasattr(Xa, "iloc") else (lambda idx: np.asarray(Xa)[idx])
    for k, (tr, te) in enumerate(cv.split(np.zeros(len(time)), _strata(event, time))):
        rep, fold = divmod(k, n_splits)
        y_tr, y_te = y[tr], y[te]
        if rep == n_repeats - 1:
            fold_of[te] = fold
        ft = _fold_times(times, y_tr, y_te)
        for name, model in models.items():
            steps = ([("prep", clone(preprocessor))] if preprocessor is not None else []) + [("model", clone(model))]
            pipe = Pipeline(steps)
            t0 = _time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", category=FutureWarning)
                pipe.fit(take(tr), y_tr)
            fit_s = _time.perf_counter() - t0
            risk = np.asarray(pipe.predict(take(te)), float)
            S = survival_matrix(pipe, take(te), ft)
            rec = {"model": name, "repeat": rep, "fold": fold, "n_test": len(te), "fit_seconds": fit_s,
                   "harrell_c": harrell_c(time[te], event[te], risk),
                   "uno_c": uno_c(y_tr, y_te, risk, tau=ft.max()),
                   "td_auc": td_auc(y_tr, y_te, risk, ft)[1],
                   "ibs": integrated_brier_score(y_tr, y_te, S, ft)}
            rows.append(rec)
            store.append((name, event[te], time[te], risk, S, ft,
                          censoring_survival(y_tr, ft), censoring_survival(y_tr, time[te])))
            if rep == n_repeats - 1:
                oof[name][te] = risk
            if verbose:
                print(f"repeat {rep} fold {fold} {name}: C={rec['harrell_c']:.3f} IBS={rec['ibs']:.3f} ({fit_s:.1f}s)")
    folds = pd.DataFrame(rows)
    table = []
    boot = _bootstrap(store, list(models), n_boot, seed) if n_boot else {}
    for name in models:
        f = folds[folds["model"] == name]
        for metric in ("harrell_c", "uno_c", "td_auc", "ibs"):
            est = float(f[metric].mean())
            lo = hi = np.nan
            if metric in ("harrell_c", "ibs") and n_boot:
                lo, hi = np.nanpercentile(boot[name][metric], [2.5, 97.5])
            table.append({"model": name, "metric": metric, "estimate": est, "ci_low": float(lo),
                          "ci_high": float(hi), "sd": float(f[metric].std(ddof=1)) if len(f) > 1 else np.nan,
                          "n_folds": len(f)})
    return CVResult(pd.DataFrame(table), folds, pd.DataFrame({"fold": fold_of, **oof}))


def _bootstrap(store, names, n_boot, seed) -> dict:
    rng = np.random.default_rng(seed)
    out = {name: {"harrell_c": np.full(n_boot, np.nan), "ibs": np.full(n_boot, np.nan)} for name in names}
    # the same resampled patients for every model (paired comparison)
    by_fold: dict[int, list] = {}
    n_models = len(names)
    for i, item in enumerate(store):
        by_fold.setdefault(i // n_models, []).append(item)
    for b in range(n_boot):
        vals = {name: {"harrell_c": [], "ibs": []} for name in names}
        for items in by_fold.values():
            n = len(items[0][2])
            idx = rng.integers(0, n, n)
            for name, ev, tt, risk, S, ft, g_t, g_y in items:
                eb, tb = ev[idx], tt[idx]
                if eb.any():
                    try:
                        vals[name]["harrell_c"].append(harrell_c(tb, eb, risk[idx]))
                    except ValueError:  # no comparable pairs in this resample
                        pass
                keep = (ft >= tb.min()) & (ft < tb.max())
                if keep.sum() >= 2:
                    bs = brier_from_censoring(eb, tb, S[idx][:, keep], ft[keep], g_t[keep], g_y[idx])
                    vals[name]["ibs"].append(np.trapezoid(bs, ft[keep]) / (ft[keep][-1] - ft[keep][0]))
        for name in names:
            for metric in ("harrell_c", "ibs"):
                if vals[name][metric]:
                    out[name][metric][b] = np.mean(vals[name][metric])
    return out
