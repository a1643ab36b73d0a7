"""Patient-level stratified splits: train/val/test and K folds.

Taught in chapter 1 (train/val/test) and chapter 13 (K folds, and the leakage that comes from
choosing features on all patients instead of inside each fold).

Splits are made on patients, never on images or tiles, and stratified by diagnosis so that
each part has the cohort's class mix (or by another label, e.g. ``stratify="event"`` for the
prostate cohort of chapter 14, which has no diagnosis). They return positions (integer arrays) into the cohort;
``cohort.subset(idx)`` turns them into cohorts.
"""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import StratifiedKFold, train_test_split

from .cohort import Cohort

__all__ = ["kfold_indices", "train_val_test_split"]


def _strata(cohort: Cohort | np.ndarray, stratify: str | None) -> tuple[int, np.ndarray | None]:
    if isinstance(cohort, Cohort):
        n = len(cohort)
        if stratify is None:
            return n, None
        if stratify == "y":
            if not cohort.classes:
                raise ValueError(f"cannot stratify by the diagnosis ('y'): this cohort has none; its label columns "
                                 f"are {list(cohort.labels.columns)} (pass stratify='event' or None)")
            return n, cohort.y
        if stratify not in cohort.labels.columns:
            raise ValueError(f"cannot stratify by {stratify!r}; expected 'y' (the diagnosis) or a label column, "
                             f"one of {list(cohort.labels.columns)}")
        return n, cohort.labels[stratify].to_numpy()
    labels = np.asarray(cohort)
    return len(labels), (labels if stratify is not None else None)


def train_val_test_split(cohort: Cohort | np.ndarray, fractions: tuple[float, float, float] = (0.6, 0.2, 0.2),
                         seed: int = 0, stratify: str | None = "y") -> dict[str, np.ndarray]:
    """Split patients into training, validation and test positions, stratified by a label.

    Taught in chapter 1.

    Parameters
    ----------
    cohort : Cohort or array-like
        The patients, or an array of their labels (one per patient).
    fractions : tuple of float
        (train, val, test): non-negative, summing to 1, train and test above 0 (val may be 0).
    seed : int
        Same seed, same split.
    stratify : str or None
        What each part keeps the mix of: ``"y"``, the diagnosis (:attr:`Cohort.y`), or a
        column of ``cohort.labels`` (``"event"``); ``None`` for a split that is not stratified.

    Returns
    -------
    dict of str to numpy.ndarray
        ``{"train", "val", "test"}``: sorted positions into the cohort, disjoint, covering it
        (``"val"`` is empty when its fraction is 0).

    Raises
    ------
    ValueError
        When ``fractions`` is not three non-negative numbers summing to 1 with train and test
        above 0, ``stratify`` names no label of the cohort (or ``"y"`` on a cohort without a
        diagnosis), or scikit-learn cannot split (a part would be empty, or a class has too
        few patients to stratify).
    """
    fr = np.asarray(fractions, dtype=float)
    if fr.shape != (3,) or (fr < 0).any() or not np.isclose(fr.sum(), 1.0) or fr[0] == 0 or fr[2] == 0:
        raise ValueError(f"fractions must be (train, val, test) >= 0 summing to 1 with train, test > 0; got {fractions}")
    n, strata = _strata(cohort, stratify)
    idx = np.arange(n)
    rest, test = train_test_split(idx, test_size=fr[2], random_state=seed, stratify=strata)
    if fr[1] == 0:
        return {"train": np.sort(rest), "val": np.array([], dtype=int), "test": np.sort(test)}
    train, val = train_test_split(rest, test_size=fr[1] / (fr[0] + fr[1]), random_state=seed,
                                  stratify=None if strata is None else strata[rest])
    return {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}


def kfold_indices(cohort: Cohort | np.ndarray, k: int = 5, seed: int = 0,
                  stratify: str | None = "y") -> list[tuple[np.ndarray, np.ndarray]]:
    """K stratified folds of patients, for cross-validation.

    Taught in chapter 13 (cross-validated results, and the leakage experiment); chapters 12
    and 14 cross-validate with it too. The folds are shuffled with ``seed`` (scikit-learn's
    ``StratifiedKFold``).

    Parameters
    ----------
    cohort : Cohort or array-like
        The patients, or an array of their labels (one per patient).
    k : int
        Number of folds (>= 2).
    seed : int
        Same seed, same folds.
    stratify : str or None
        What each fold keeps the mix of: ``"y"``, the diagnosis (:attr:`Cohort.y`), or a
        column of ``cohort.labels`` (``"event"`` for a survival outcome); ``None`` for folds
        that are not stratified.

    Returns
    -------
    list of tuple of numpy.ndarray
        ``k`` pairs ``(train_positions, test_positions)``, each sorted; the test parts are
        disjoint and cover every patient once.

    Raises
    ------
    ValueError
        When ``k`` is not an integer >= 2, ``stratify`` names no label of the cohort, or
        scikit-learn cannot make ``k`` folds (fewer patients than folds, or no class with at
        least ``k`` patients).
    """
    if not isinstance(k, int) or k < 2:
        raise ValueError(f"k must be an integer >= 2, got {k!r}")
    n, strata = _strata(cohort, stratify)
    if strata is None:
        strata = np.zeros(n)
    skf = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    return [(np.sort(tr), np.sort(te)) for tr, te in skf.split(np.zeros(n), strata)]
