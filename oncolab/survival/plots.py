"""Risk stratification: split patients by predicted risk, Kaplan-Meier curve per group with
the log-rank p-value. One plotting helper for the book's survival figures.

Taught in chapter 8 (Kaplan-Meier curves, and risk groups compared by the log-rank test) and
chapter 9 (risk groups from a model).
"""

from __future__ import annotations

import numpy as np

from ._checks import check_risk, check_survival
from .nonparametric import kaplan_meier, logrank_test

__all__ = ["plot_km", "plot_risk_groups", "risk_groups"]


def risk_groups(risk, n_groups: int = 3, cutoffs=None, labels=None) -> np.ndarray:
    """Group labels by predicted risk: equal-sized quantile groups (``n_groups``), or
    ``cutoffs`` on the risk scale (e.g. thresholds chosen on training data, which is the
    honest way to stratify a test set). Labels go from lowest to highest risk.

    Taught in chapter 8 (through :func:`plot_risk_groups`, test patients grouped at cutoffs
    chosen on the training patients) and chapter 9 (tertiles of DeepSurv's out-of-fold risk). A risk equal to a cutoff goes to the higher
    group, so quantile groups are about, not exactly, equal in size when risks tie.

    Parameters
    ----------
    risk : array-like of float, shape (n,)
        Predicted risk per patient (higher = worse), finite.
    n_groups : int, default 3
        Number of quantile groups, between 2 and ``n``; ignored when ``cutoffs`` is given.
    cutoffs : array-like of float, optional
        Thresholds on the risk scale (sorted here); ``len(cutoffs) + 1`` groups.
    labels : sequence, optional
        One label per group, lowest risk first. By default ``["low", "high"]`` for two groups,
        ``["low", "intermediate", "high"]`` for three, ``Q1, Q2, ...`` otherwise.

    Returns
    -------
    numpy.ndarray of object, shape (n,)
        The group label of each patient.

    Raises
    ------
    ValueError
        When ``risk`` is not a 1-D finite array, ``n_groups`` is out of range, or ``labels``
        does not have one label per group.
    """
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
    log-rank p-value when there are groups, and numbers at risk under the axis.

    Taught in chapter 8; chapter 9 draws a model's risk groups with it. Groups named ``low``,
    ``intermediate`` and ``high`` are drawn in that order, other labels sorted as text. The
    numbers at risk are read at five ticks from 0 to the longest follow-up.

    Parameters
    ----------
    y : numpy structured array of (event, time), shape (n,)
        The outcome.
    groups : array-like, shape (n,), optional
        One group label per patient; None draws one curve for all patients.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new 6 x 4 inch figure by default.
    ci : bool, default True
        Draw the pointwise confidence bands.
    at_risk : bool, default True
        Write the numbers at risk under the x axis.
    title : str, optional
        Title; the log-rank p-value is added on a second line when there are several groups.

    Returns
    -------
    matplotlib.axes.Axes
        The axes drawn on.

    Raises
    ------
    ValueError
        When ``y`` is not a valid outcome or ``groups`` has another length.
    """
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

    Taught in chapter 8 (risk groups of a Cox model compared by the log-rank test).

    Parameters
    ----------
    y : numpy structured array of (event, time), shape (n,)
        The outcome.
    risk : array-like of float, shape (n,)
        Predicted risk per patient (higher = worse).
    n_groups : int, default 3
        Number of quantile groups, when no ``cutoffs`` are given.
    cutoffs : array-like of float, optional
        Thresholds on the risk scale (chosen on training patients, to stratify a test set).
    ax : matplotlib.axes.Axes, optional
        Where to draw.
    title : str, optional
        Title of the plot.

    Returns
    -------
    ax : matplotlib.axes.Axes
        The axes drawn on.
    groups : numpy.ndarray of object, shape (n,)
        Each patient's group label (:func:`risk_groups`).
    logrank : dict
        :func:`logrank_test`'s result for those groups.

    Raises
    ------
    ValueError
        As :func:`risk_groups` and :func:`plot_km`.
    """
    event, time = check_survival(y)
    groups = risk_groups(check_risk(risk, len(time)), n_groups=n_groups, cutoffs=cutoffs)
    ax = plot_km(y, groups, ax=ax, title=title)
    return ax, groups, logrank_test(time, event, groups)
