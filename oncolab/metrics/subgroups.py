"""Performance by subgroup, and under a shift of center.

Taught in chapter 13 ("Evaluation and clinical validity").

* :func:`subgroup_table`: accuracy, macro AUC and ECE overall and by sex, age band and center.
* :func:`center_shift`: train on some centers, test on a held-out one, with and without stain
  normalisation (:class:`oncolab.vision.pathology.MacenkoNormalizer`, chapter 5).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ._checks import check_proba
from .calibration import expected_calibration_error
from .classification import UndefinedMetricError, macro_auc

__all__ = ["age_bands", "center_shift", "subgroup_table"]


def age_bands(age, edges: Sequence[float] = (0, 30, 50, 70, 200)) -> pd.Categorical:
    """Age bands ``[a, b)`` as a categorical; chapter 13.

    Parameters
    ----------
    age : array-like of shape (n,)
        Ages in years.
    edges : sequence of float
        Increasing band edges; the last band is open-ended in its label.

    Returns
    -------
    pandas.Categorical
        Labels such as ``'30-49'``; the last one ``'70+'`` with the default edges. An age
        outside ``[edges[0], edges[-1])`` (or NaN) gets no band (NaN).

    Raises
    ------
    ValueError
        When ``edges`` is not at least two strictly increasing values.
    """
    e = list(edges)
    if len(e) < 2 or any(b <= a for a, b in zip(e[:-1], e[1:])):
        raise ValueError(f"edges must be at least two increasing values, got {e!r}")
    labels = [f"{int(a)}-{int(b) - 1}" for a, b in zip(e[:-2], e[1:-1])] + [f"{int(e[-2])}+"]
    return pd.cut(np.asarray(age, float), e, right=False, labels=labels)


def _group_metrics(y: np.ndarray, p: np.ndarray) -> dict:
    """n, accuracy, macro AUC (NaN when a class is absent) and ECE of one group."""
    try:
        auc = macro_auc(y, p)
    except UndefinedMetricError:
        auc = float("nan")
    return {"n": len(y), "accuracy": float((p.argmax(1) == y).mean()), "macro_auc": auc,
            "ece": expected_calibration_error(y, p, n_bins=10)}


def subgroup_table(y, proba, groups: pd.DataFrame, min_size: int = 10) -> pd.DataFrame:
    """Accuracy, macro AUC and ECE overall and per subgroup; chapter 13.

    Parameters
    ----------
    y, proba
        As in :func:`oncolab.metrics.reliability_table`: the true class ``0..K-1`` and the
        ``(n, K)`` predicted probabilities.
    groups : pandas.DataFrame
        One column per grouping (e.g. ``sex``, ``age_band``, ``center``), one row per patient.
    min_size : int
        Subgroups smaller than this are reported with NaN metrics (too few patients to say
        anything) rather than a noisy number.

    Returns
    -------
    pandas.DataFrame
        Columns ``grouping``, ``group``, ``n``, ``accuracy``, ``macro_auc``
        (:func:`oncolab.metrics.macro_auc`; NaN where a class is absent) and ``ece``
        (:func:`oncolab.metrics.expected_calibration_error` with 10 bins); first the row
        ``all``/``all``, then each grouping's groups (compared as text, sorted).

    Raises
    ------
    ValueError
        When ``y`` and ``proba`` fail the checks (labels ``0..K-1``, rows of probabilities
        summing to 1) or ``groups`` has another number of rows.
    """
    y, p = check_proba(y, proba)
    if len(groups) != len(y):
        raise ValueError(f"groups has {len(groups)} rows for {len(y)} patients")
    rows = [{"grouping": "all", "group": "all", **_group_metrics(y, p)}]
    for col in groups.columns:
        g = np.asarray(groups[col]).astype(str)
        for v in sorted(set(g)):
            m = g == v
            r = _group_metrics(y[m], p[m]) if m.sum() >= min_size else {"n": int(m.sum()), "accuracy": np.nan,
                                                                         "macro_auc": np.nan, "ece": np.nan}
            rows.append({"grouping": col, "group": v, **r})
    return pd.DataFrame(rows)


def center_shift(cohort, held_out: str, normalise: bool, reference: int | None = None, seed: int = 0,
                 features: dict | None = None, colour: bool = True) -> dict:
    """Train on the other centers, test on ``held_out``, with or without stain normalisation; chapter 13.

    Each slide region is described by nine nuclear features
    (:func:`oncolab.features.pathology.nuclear_measurements`,
    which deconvolves the colours with a fixed stain matrix, so a center's stain shifts them),
    and with ``colour`` also by the mean and spread of its R, G, B values
    (:func:`oncolab.vision.pathology.colour_statistics`). With ``normalise`` every slide is first
    mapped to the stain of one training slide by
    :class:`oncolab.vision.pathology.MacenkoNormalizer`. A standardised logistic regression is
    trained on the training centers' patients and scored (:func:`oncolab.metrics.macro_auc`,
    accuracy) on the internal test part (a seeded quarter of the training centers' patients with
    a slide, at least three, never trained on) and on the held-out center. Patients without a
    slide are left out. A stain shift moves every patient of the new center
    the same way, which the ranking (AUC) may survive while the decision thresholds (accuracy)
    do not: report both.

    Parameters
    ----------
    cohort : oncolab.data.Cohort
        Patients with pathology slides and a ``center`` column in ``clinical``.
    held_out : str
        The center tested on, never trained on.
    normalise : bool
        Whether to stain-normalise every slide first.
    reference : int, optional
        Position in the cohort of the stain target; by default the first training patient.
    seed : int
        Seed of the internal test split.
    features : dict, optional
        A previous call's ``'features'``, to reuse slide features already computed.
    colour : bool
        Whether to add the colour statistics to the nuclear features.

    Returns
    -------
    dict
        ``held_out``, ``normalised``, the sizes ``n_train``, ``n_internal``, ``n_external``;
        ``auc_internal``, ``auc_external``, ``auc_drop`` (internal minus external) and the same
        for ``accuracy``; ``features`` (the cache to pass to the next call).

    Raises
    ------
    ValueError
        When ``held_out`` is not a center of the cohort.
    oncolab.metrics.UndefinedMetricError
        When the internal part or the held-out center lacks a diagnosis class (its AUC is
        undefined).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from ..features.pathology import nuclear_measurements
    from ..vision.pathology import MacenkoNormalizer, colour_statistics

    center = cohort.clinical["center"].to_numpy().astype(str)
    if held_out not in set(center):
        raise ValueError(f"held_out center {held_out!r} is not in the cohort's centers {sorted(set(center))}")
    has = cohort.presence["pathology"].to_numpy(bool) if "pathology" in cohort.presence else np.ones(len(cohort), bool)
    inside = np.flatnonzero((center != held_out) & has)
    outside = np.flatnonzero((center == held_out) & has)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(inside)
    n_int = max(len(perm) // 4, 3)
    internal, train = np.sort(perm[:n_int]), np.sort(perm[n_int:])
    ref = int(train[0] if reference is None else reference)
    key = ("normalised", ref, colour) if normalise else ("raw", colour)  # raw features serve every held-out center
    feats = dict(features or {})
    if key not in feats:
        norm = MacenkoNormalizer().fit(cohort.slide(ref)) if normalise else None
        X = np.full((len(cohort), 15 if colour else 9), np.nan)
        for i in np.flatnonzero(has):
            img = cohort.slide(int(i))
            img = norm.transform(img) if norm is not None else img
            X[i] = (np.concatenate([nuclear_measurements(img), colour_statistics(img)]) if colour
                    else nuclear_measurements(img))
        feats[key] = X
    X = feats[key]
    y = cohort.y
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(X[train], y[train])

    def score(rows):
        p = clf.predict_proba(X[rows])
        return macro_auc(y[rows], p, labels=clf.classes_), float((clf.classes_[p.argmax(1)] == y[rows]).mean())

    auc_in, acc_in = score(internal)
    auc_out, acc_out = score(outside)
    return {"held_out": held_out, "normalised": bool(normalise), "n_train": len(train), "n_internal": len(internal),
            "n_external": len(outside), "auc_internal": auc_in, "auc_external": auc_out,
            "auc_drop": auc_in - auc_out, "accuracy_internal": acc_in, "accuracy_external": acc_out,
            "accuracy_drop": acc_in - acc_out,
            "features": feats}

