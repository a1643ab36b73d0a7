"""Real datasets that ship with installed packages, in the book's table conventions.

Taught in chapters 1, 7 and 8; chapters 9 and 12 use them too. All load offline.

Each loader returns a :class:`RealDataset`: ``X`` (a DataFrame of covariates, raw: no
encoding or scaling, so that preprocessing can be fitted inside cross-validation folds),
``y`` (scikit-survival's structured (event, time) array, or class labels), and a
description with the source and what the outcome means.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .cohort import survival_array

__all__ = ["RealDataset", "load_breast_cancer_genes", "load_fna_breast_cancer", "load_gbsg2",
           "load_whas500"]


@dataclass
class RealDataset:
    """A real dataset in the book's conventions (taught in chapter 1; used in chapters 7-9 and 12).

    Attributes
    ----------
    name : str
        Short name (``"gbsg2"``, ``"breast_cancer"``, ...).
    X : pandas.DataFrame
        The raw covariates, indexed by ``patient_id`` (``"0"``, ``"1"``, ... as text);
        categorical columns hold text.
    y : numpy.ndarray
        scikit-survival's structured (event, time) array, or class labels.
    description : str
        The patients and the outcome.
    citation : str
        The source.
    """

    name: str
    X: pd.DataFrame
    y: np.ndarray
    description: str
    citation: str

    def __repr__(self) -> str:
        return f"RealDataset({self.name!r}, X={self.X.shape}, y={self.y.dtype.names or self.y.dtype})"


def _as_frame(X: pd.DataFrame) -> pd.DataFrame:
    X = X.copy()
    for c in X.columns:
        if isinstance(X[c].dtype, pd.CategoricalDtype):
            X[c] = X[c].astype(str)
    X.index = pd.RangeIndex(len(X), name="patient_id").astype(str)
    return X


def load_gbsg2() -> RealDataset:
    """German Breast Cancer Study Group 2: 686 patients, recurrence-free survival (days).

    Taught in chapters 1 and 8; chapter 9 uses it too.

    Returns
    -------
    RealDataset
        ``X``: 8 clinical covariates (age, tumour size and grade, nodes, receptors, ...);
        ``y``: (event, time) with time in days.
    """
    from sksurv.datasets import load_gbsg2 as _load

    X, y = _load()
    return RealDataset("gbsg2", _as_frame(X), survival_array(y["cens"], y["time"]),
                       "686 node-positive breast cancer patients; outcome recurrence-free survival in days; "
                       "covariates age, tumour size and grade, nodes, hormone receptors, menopause, hormonal therapy.",
                       "Schumacher et al., J Clin Oncol 1994")


def load_breast_cancer_genes() -> RealDataset:
    """scikit-survival's breast_cancer: 198 patients, 76 genes + clinical, distant metastasis.

    Taught in chapters 1 and 7; chapters 9 and 12 use it too.

    Returns
    -------
    RealDataset
        ``X``: 76 gene expression values plus age, ER, grade and size; ``y``: (event,
        time) with time to distant metastasis in days.
    """
    from sksurv.datasets import load_breast_cancer as _load

    X, y = _load()
    return RealDataset("breast_cancer", _as_frame(X), survival_array(y["e.tdm"], y["t.tdm"]),
                       "198 node-negative breast cancer patients; 76 gene expression values plus age, ER, "
                       "grade and size; outcome time to distant metastasis (days).",
                       "Desmedt et al., Clin Cancer Res 2007")


def load_whas500() -> RealDataset:
    """Worcester Heart Attack Study: 500 patients, survival after myocardial infarction (days).

    Listed on the book's datasets page: a further real survival dataset to practise chapter 8 on.

    Returns
    -------
    RealDataset
        ``X``: the study's covariates; ``y``: (event, time) with time to death in days.
    """
    from sksurv.datasets import load_whas500 as _load

    X, y = _load()
    return RealDataset("whas500", _as_frame(X), survival_array(y["fstat"], y["lenfol"]),
                       "500 patients after acute myocardial infarction; outcome death (days).",
                       "Hosmer, Lemeshow and May, Applied Survival Analysis 2008")


def load_fna_breast_cancer() -> RealDataset:
    """scikit-learn's Wisconsin diagnostic breast cancer: 569 FNA samples, malignant vs benign.

    Listed on the book's datasets page: a real diagnostic dataset to practise chapter 1's baselines on.

    Returns
    -------
    RealDataset
        ``X``: 30 nuclear features; ``y``: 1 = malignant, 0 = benign.
    """
    from sklearn.datasets import load_breast_cancer as _load

    d = _load(as_frame=True)
    X = _as_frame(d.data)
    y = (d.target.to_numpy() == 0).astype(int)  # 1 = malignant
    return RealDataset("fna_breast_cancer", X, y,
                       "569 fine-needle aspirates, 30 nuclear features; outcome 1 = malignant, 0 = benign.",
                       "Street, Wolberg and Mangasarian, 1993")
