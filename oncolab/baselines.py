"""Simple per-modality baselines: the floor every model is measured from.

Taught in chapter 1 (where they show that the oracle is well above what a simple model of
any single modality reaches); reused as reference rows in later chapters.

Features are hand-made and cheap, all from :mod:`oncolab.features`: an intensity histogram
of the radiograph (:class:`~oncolab.features.IntensityHistogram`), colour and haematoxylin
statistics of the slide region (:class:`~oncolab.features.StainStatistics`), the lab panel
(:class:`~oncolab.features.LabFeatures`), log-CPM gene expression
(:class:`~oncolab.features.GeneFeatures`) and the clinical variables
(:class:`~oncolab.features.ClinicalFeatures`). Whatever a feature learns (medians, scalings,
categories) is fitted on the training patients only; each baseline is then a standardised
logistic regression.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .data import synthetic
from .data.cohort import Cohort
from .features import (
    ClinicalFeatures,
    GeneFeatures,
    IntensityHistogram,
    LabFeatures,
    StainStatistics,
)
from .metrics import macro_auc

__all__ = ["BASELINE_FEATURES", "baseline_features", "per_modality_baselines"]

BASELINE_FEATURES = {"radiograph": IntensityHistogram, "pathology": StainStatistics, "labs": LabFeatures,
                     "genes": GeneFeatures, "clinical": ClinicalFeatures}
"""The :mod:`oncolab.features` transformer (class) that describes each modality in the baselines."""

_IMAGES = ("radiograph", "pathology")


def baseline_features(cohort: Cohort, modality: str, train: Sequence[int] | None = None,
                      progress: bool = False) -> np.ndarray:
    """The baseline feature matrix of one modality, one row per patient of ``cohort``.

    Taught in chapter 1.

    Parameters
    ----------
    cohort : Cohort
        The patients.
    modality : str
        One of :data:`BASELINE_FEATURES`: ``"radiograph"``, ``"pathology"`` (images: nothing
        is learned), ``"labs"``, ``"genes"``, ``"clinical"`` (tables: fitted on ``train``).
    train : sequence of int, optional
        Positions of the training patients; needed for the table modalities, whose
        transformer learns medians, scalings and categories from them only.
    progress : bool
        Show a progress bar over the images.

    Returns
    -------
    numpy.ndarray
        float64 array (n_patients, n_features) with the transformer's columns
        (``BASELINE_FEATURES[modality]().get_feature_names_out()`` once fitted).
    """
    if modality not in BASELINE_FEATURES:
        raise ValueError(f"unknown modality {modality!r}; expected one of {list(BASELINE_FEATURES)}")
    transformer = BASELINE_FEATURES[modality]()
    if modality in _IMAGES:
        load = cohort.radiograph if modality == "radiograph" else cohort.slide
        positions = range(len(cohort))
        if progress:
            from tqdm.auto import tqdm

            positions = tqdm(positions, desc=f"{modality} features")
        return transformer.fit_transform(load(i) for i in positions)
    if modality not in cohort.tables:
        raise ValueError(f"this cohort has no {modality!r} table; it has {sorted(cohort.tables)}")
    if train is None:
        raise ValueError(f"the {modality} features are fitted (medians, scalings, categories): pass train=, the "
                         f"positions of the training patients")
    table = cohort.tables[modality]
    return transformer.fit(table.iloc[np.asarray(train, dtype=int)]).transform(table)


def _oracle_auc(best: dict, mods: list[str]) -> float:
    """The oracle AUC given the signals of ``mods``: one modality's, or the fused one for all of them."""
    signals = [m for m in mods if m in best["by_modality"]]
    if len(signals) == 1 and len(mods) == 1:
        return best["by_modality"][signals[0]]["auc"]
    if set(signals) == set(best["by_modality"]):
        return best["bayes_auc"]
    return float("nan")  # no signal (clinical data), or a subset whose fused oracle is not computed


def _model(seed: int):
    return make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=2000, random_state=seed))


def per_modality_baselines(cohort: Cohort, train: Sequence[int], test: Sequence[int],
                           modalities: Sequence[str] = ("radiograph", "pathology", "labs", "genes"),
                           include_fused: bool = True, seed: int = 0, progress: bool = False) -> pd.DataFrame:
    """Logistic regression on each modality's simple features (and on all of them concatenated).

    Taught in chapter 1.

    Parameters
    ----------
    cohort : Cohort
        The patients, with labels.
    train, test : sequence of int
        Positions of the patients to fit on and to score.
    modalities : sequence of str
        Modalities of :data:`BASELINE_FEATURES`, one baseline each.
    include_fused : bool
        Add a row for all of them concatenated.
    seed : int
        Seed of the logistic regression.
    progress : bool
        Show progress bars over the images.

    Returns
    -------
    pandas.DataFrame
        Indexed by modality: held-out ``accuracy`` and macro one-vs-rest ``macro AUC``, and,
        for a cohort made by :func:`oncolab.data.synthetic_cohort`, ``oracle AUC``: the best
        AUC any model of that information could reach on the same test patients
        (:func:`oncolab.data.synthetic.oracle`): one modality's Bayes AUC, the fused one for
        every imaging and molecular modality together, NaN otherwise (clinical variables carry
        no diagnostic signal by construction).
    """
    y = cohort.y
    feats = {m: baseline_features(cohort, m, train, progress=progress) for m in modalities}
    best = synthetic.oracle(cohort.subset(test)) if cohort.meta.get("source") == synthetic.SOURCE else None
    rows = []
    sets = [(m, [m]) for m in modalities] + ([("all (concatenated)", list(modalities))] if include_fused else [])
    for name, mods in sets:
        X = np.hstack([feats[m] for m in mods])
        model = _model(seed).fit(X[train], y[train])
        p = model.predict_proba(X[test])
        row = {"modality": name, "accuracy": accuracy_score(y[test], p.argmax(1)),
               "macro AUC": macro_auc(y[test], p)}
        if best is not None:
            row["oracle AUC"] = _oracle_auc(best, mods)
        rows.append(row)
    return pd.DataFrame(rows).set_index("modality")
