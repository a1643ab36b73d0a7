"""Metrics of a diagnosis + risk model with bootstrap confidence intervals.

Taught in chapter 10 ("Fusion strategies": the ablation table) and used by the complete
system (chapter 12). The diagnosis metrics are the ones the bone-tumour paper reports (macro
precision, macro F1, macro one-vs-rest AUC) plus accuracy; the risk metric is Harrell's C
(:func:`oncolab.survival.harrell_c`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["METRICS", "bootstrap_metrics", "point_metrics"]

METRICS = ("accuracy", "macro_precision", "macro_recall", "macro_f1", "macro_auc", "c_index")


def point_metrics(y, proba, time=None, event=None, risk=None) -> dict[str, float]:
    """Each metric of :data:`METRICS` once (``c_index`` only when time, event and risk are given)."""
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support, roc_auc_score

    y = np.asarray(y)
    proba = np.asarray(proba, float)
    if proba.ndim != 2 or len(proba) != len(y):
        raise ValueError(f"proba must be (n, n_classes) for n={len(y)} patients, got shape {proba.shape}")
    k = proba.shape[1]
    pred = proba.argmax(1)
    p, r, f, _ = precision_recall_fscore_support(y, pred, labels=range(k), average="macro", zero_division=0)
    out = {"accuracy": float(accuracy_score(y, pred)), "macro_precision": float(p), "macro_recall": float(r),
           "macro_f1": float(f)}
    out["macro_auc"] = (float(roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=range(k)))
                        if len(np.unique(y)) == k else float("nan"))
    if risk is not None and time is not None and event is not None:
        from oncolab.survival import harrell_c

        ev = np.asarray(event, bool)
        out["c_index"] = float(harrell_c(np.asarray(time, float), ev, np.asarray(risk, float))) if ev.any() else float("nan")
    return out


def bootstrap_metrics(y, proba, time=None, event=None, risk=None, n_boot: int = 200, seed: int = 0,
                      level: float = 0.95) -> pd.DataFrame:
    """A tidy table: one row per metric with ``value``, ``ci_low``, ``ci_high`` (percentile bootstrap).

    Patients are resampled with replacement ``n_boot`` times (seeded); resamples where a
    metric is undefined (a class absent, no events) are skipped for that metric.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    if n_boot < 0:
        raise ValueError(f"n_boot must be >= 0, got {n_boot}")
    y = np.asarray(y)
    proba = np.asarray(proba, float)
    point = point_metrics(y, proba, time, event, risk)
    rng = np.random.default_rng(seed)
    n = len(y)
    boots: dict[str, list[float]] = {k: [] for k in point}
    for _ in range(n_boot):
        i = rng.integers(0, n, n)
        try:
            b = point_metrics(y[i], proba[i], None if time is None else np.asarray(time)[i],
                              None if event is None else np.asarray(event)[i],
                              None if risk is None else np.asarray(risk)[i])
        except ValueError:
            continue
        for k, v in b.items():
            if np.isfinite(v):
                boots[k].append(v)
    a = (1 - level) / 2
    rows = []
    for k, v in point.items():
        bs = np.asarray(boots[k])
        lo, hi = (np.quantile(bs, [a, 1 - a]) if len(bs) >= 10 else (np.nan, np.nan))
        rows.append({"metric": k, "value": v, "ci_low": float(lo), "ci_high": float(hi), "n": n})
    return pd.DataFrame(rows)
