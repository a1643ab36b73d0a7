"""Survival analysis: Kaplan-Meier, log-rank, Cox from first principles, deep survival models,
scikit-survival wrappers, metrics and validation.

Chapter 8 ("Survival analysis from first principles") teaches the non-parametric estimators,
the Cox model and concordance; chapter 9 ("Deep survival models") DeepSurv, the discrete-time
model and its time bins, the metrics and the validation helper. Every estimator follows scikit-survival's API:
``fit(X, y)`` with the structured ``y`` of (event, time), ``predict(X)`` a risk score (higher =
worse), ``predict_survival(X, times)`` and ``predict_survival_function(X)``, ``score`` =
Harrell's C.

The PyTorch parts (:func:`cox_ph_loss`, :class:`DeepSurv`, :class:`DiscreteTimeSurvival`) are
imported on first use, so that ``import oncolab.survival`` does not load torch.
"""

from __future__ import annotations

import importlib

from ._checks import check_survival
from .base import SurvivalMixin, survival_matrix
from .binning import bin_index, time_bins
from .cox import CoxPH, breslow_baseline, cox_newton, cox_partial_likelihood
from .features import cohort_tabular, tabular_preprocessor
from .metrics import (
    brier_score,
    calibration_at_horizon,
    censoring_survival,
    concordance_counts,
    harrell_c,
    integrated_brier_score,
    td_auc,
    uno_c,
)
from .nonparametric import KaplanMeier, event_table, kaplan_meier, logrank_test, nelson_aalen
from .plots import plot_km, plot_risk_groups, risk_groups

_LAZY = {
    "cox_ph_loss": "losses", "logistic_hazard_nll": "losses",
    "DeepSurv": "deep", "DiscreteTimeSurvival": "deep",
    "SksurvModel": "wrappers", "make_model": "wrappers", "MODEL_NAMES": "wrappers",
    "cross_validate_survival": "validation", "default_times": "validation",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CoxPH", "KaplanMeier", "SurvivalMixin", "bin_index", "breslow_baseline", "brier_score",
    "calibration_at_horizon", "censoring_survival", "check_survival", "cohort_tabular", "concordance_counts",
    "cox_newton", "cox_partial_likelihood", "event_table", "harrell_c", "integrated_brier_score",
    "kaplan_meier", "logrank_test", "nelson_aalen", "plot_km", "plot_risk_groups", "risk_groups",
    "survival_matrix", "tabular_preprocessor", "td_auc", "time_bins", "uno_c", *_LAZY,
]
