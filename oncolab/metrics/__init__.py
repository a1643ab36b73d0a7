"""Metrics of a classifier: point values, bootstrap intervals, the paired comparison of two
models, calibration, conformal prediction sets and subgroups.

Chapter 10 ("Fusion strategies") teaches the point metrics and their bootstrap intervals;
chapter 13 ("Evaluation and clinical validity") calibration, decision curves, conformal sets,
subgroups and the shift to a new center.

* :mod:`~oncolab.metrics.classification`: :func:`macro_auc`, :func:`point_metrics`,
  :func:`bootstrap_metrics`, :func:`bootstrap_ci` (any metric) and :func:`paired_bootstrap`
  (the difference between two models on the same patients);
* :mod:`~oncolab.metrics.calibration`: reliability data, ECE, temperature scaling;
* :mod:`~oncolab.metrics.decision`: net benefit and decision curves (:func:`net_benefit`,
  :func:`decision_curve`, :func:`net_benefit_difference`);
* :mod:`~oncolab.metrics.conformal`: split-conformal prediction sets and their coverage;
* :mod:`~oncolab.metrics.subgroups`: metrics by subgroup, and under a change of center.

**One argument order.** Every metric function takes the truth first and the model's output
second, ``metric(y_true, y_score)``, as scikit-learn's metrics do (``roc_auc_score(y_true,
y_score)``): a reader moves between this package and scikit-learn without swapping arguments,
and any scikit-learn metric can be passed to :func:`bootstrap_ci` or :func:`paired_bootstrap`
as it is. Classes that learn from a model's output (:class:`TemperatureScaler`,
:class:`SplitConformal`) follow scikit-learn's estimators instead: ``fit(X, y)``, with the
model's output as ``X``. Survival metrics live in :mod:`oncolab.survival` and keep its order,
``(time, event, risk)``: the observed outcome first, the prediction last, the same rule; pass
``y=(time, event)`` to the bootstrap functions to resample them together.
"""

from .calibration import (
    TemperatureScaler,
    expected_calibration_error,
    plot_reliability,
    reliability_table,
)
from .classification import (
    METRICS,
    UndefinedMetricError,
    bootstrap_ci,
    bootstrap_metrics,
    macro_auc,
    paired_bootstrap,
    point_metrics,
)
from .conformal import CONFORMAL_SCORES, SplitConformal, conformal_quantile, set_coverage
from .decision import decision_curve, net_benefit, net_benefit_difference
from .subgroups import age_bands, center_shift, subgroup_table

__all__ = [
    "CONFORMAL_SCORES", "METRICS", "SplitConformal", "TemperatureScaler", "UndefinedMetricError", "age_bands",
    "bootstrap_ci", "bootstrap_metrics", "center_shift", "conformal_quantile", "decision_curve",
    "expected_calibration_error", "macro_auc", "net_benefit", "net_benefit_difference", "paired_bootstrap", "plot_reliability", "point_metrics", "reliability_table", "set_coverage",
    "subgroup_table",
]
