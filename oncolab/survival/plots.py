"""Risk stratification: split patients by predicted risk, Kaplan-Meier curve per group with
the log-rank p-value. One plotting helper for the book's survival figures.

Taught in chapter 8 (Kaplan-Meier curves) and chapter 9 (risk groups from a model); used by
the fusion and complete-system chapters to show a model's risk groups.
"""

from __future__ import annotations

import numpy as np

from ._checks import check_risk, check_survival
from .nonparametric import kaplan_meier, logrank_test

__all__ = ["plot_km", "plot_risk_groups", "risk_groups"]


def risk_groups(risk, n_groups: int = 3, cutoffs=None, labels=None) -> np.ndarray:
    """Group labels by predicted risk: equal-sized quantile groups (``n_groups``), or
    ``cutoffs`` on the risk scale (e.g. thresholds chosen on training data, which is the
    honest way to stratify a test set). Labels go from lowest to highest risk."""
    r = check_risk(risk, len(np.asarray(risk)))
    if cutoffs is None:
        if not 2 <= n_groups <= len(r):
            raise ValueError(f"n_groups must be between 2 and the number of patients, got {n_groups}")
        cutoffs = np.quantile(r, np.linspace(0, 1, n_groups + 1)[1:-1])
    cutoffs = np.sort(np.asarray(cutoffs, float))
    k = len(cutoffs) + 1
    if labels is None:
        labels = {2: ["low", "high"], 3: ["low", "intermediate", "high"]}.get(k, [f"Q{i + 1}" for i in range(k)])
    if len(labels) != k:
        raise ValueError(f"{k} groups need {k} labels, got {len(labels)}")
    return np.asarray(labels, dtype=object)[np.searchsorted(cutoffs, r, side="right")]


def plot_km(y, groups=None, ax=None, ci: bool = True, at_risk: bool = True, title: str | None = None):
    """Kaplan-Meier curves (with confidence bands) for all patients or per group, the
    log-rank p-value when there are groups, and numbers at risk under the axis."""
    import matplotlib.pyplot as plt

    event, time = check_survival(y)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    if groups is None:
        groups = np.full(len(time), "all", dtype=object)
    groups = np.asarray(groups)
    if len(groups) != len(time):
        raise ValueError(f"groups has {len(groups)} labels for {len(time)} patients")
    names = list(dict.fromkeys(groups.tolist()))  # order of first appearance
    try:
        names = sorted(names, key=lambda g: ["low", "intermediate", "high"].index(g))
    except ValueError:
        names = sorted(names, key=str)
    ticks = np.linspace(0, time.max(), 5)
    rows = []
    for g in names:
        sel = groups == g
        km = kaplan_meier(time[sel], event[sel])
        x = np.r_[0, km.time]
        line = ax.step(x, np.r_[1, km.survival], where="post", label=f"{g} (n={sel.sum()})")[0]
        if ci:
            ax.fill_between(x, np.r_[1, km.ci_low], np.r_[1, km.ci_high], step="post", alpha=0.15,
                            color=line.get_color())
        rows.append([int((time[sel] >= t).sum()) for t in ticks])
    ax.set_xlabel("time")
    ax.set_ylabel("survival probability")
    ax.set_ylim(0, 1.02)
    text = title or ""
    if len(names) > 1:
        lr = logrank_test(time, event, groups)
        text = (text + "\n" if text else "") + f"log-rank p = {lr['p_value']:.2g}"
    ax.set_title(text)
    ax.legend(loc="lower left", fontsize=8)
    if at_risk and len(names) > 0:
        ax.set_xticks(ticks)
        ax.set_xticklabels([f"{t:.0f}\n" + "\n".join(str(r[i]) for r in rows) for i, t in enumerate(ticks)],
                           fontsize=7)
        ax.set_xlabel("time (numbers at risk below, one line per group)")
    return ax


def plot_risk_groups(y, risk, n_groups: int = 3, cutoffs=None, ax=None, title: str | None = None):
    """Risk stratification in one call: :func:`risk_groups` then :func:`plot_km`.

    Returns ``(ax, groups, logrank)`` where ``logrank`` is :func:`logrank_test`'s result.
    """
    event, time = check_survival(y)
    groups = risk_groups(check_risk(risk, len(time)), n_groups=n_groups, cutoffs=cutoffs)
    ax = plot_km(y, groups, ax=ax, title=title)
    return ax, groups, logrank_test(time, event, groups)
