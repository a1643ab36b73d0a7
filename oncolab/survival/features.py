"""Tabular inputs for the survival models: the cohort's labs, genes and clinical variables as
one table, and a preprocessor that is fitted inside each cross-validation fold.

Taught in chapter 8 (the Cox model on the cohort) and chapter 9 (every model on the cohort and
on real data).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

__all__ = ["cohort_tabular", "tabular_preprocessor"]

_TABLES = ("labs", "genes", "clinical")


def cohort_tabular(cohort, modalities=("labs", "genes", "clinical")) -> pd.DataFrame:
    """One row per patient: ``log(lab)`` (NaN = not measured, left for the imputer),
    ``log1p(gene count)`` and the clinical columns (age numeric; sex, site, center as text).

    Column names get the modality as prefix (``labs:ldh``, ``genes:G01``, ``clinical:age``).
    """
    if isinstance(modalities, str):
        modalities = (modalities,)
    bad = [m for m in modalities if m not in _TABLES]
    if bad or not modalities:
        raise ValueError(f"modalities must be some of {_TABLES}, got {list(modalities)}")
    parts = []
    for m in modalities:
        if m not in cohort.tables:
            raise ValueError(f"this cohort has no {m!r} table; it has {sorted(cohort.tables)}")
        df = cohort.tables[m]
        if m == "labs":
            vals = df.astype(float)
            if (vals <= 0).any().any():
                col = vals.columns[(vals <= 0).any()][0]
                raise ValueError(f"lab {col!r} has a value <= 0; expected positive concentrations")
            df = np.log(vals)
        elif m == "genes":
            counts = df.astype(float)
            if (counts < 0).any().any():
                raise ValueError("gene counts must be >= 0")
            df = np.log1p(counts)
        parts.append(df.add_prefix(f"{m}:"))
    return pd.concat(parts, axis=1)


def tabular_preprocessor(scale: bool = True) -> ColumnTransformer:
    """Numeric columns: median imputation with a 0/1 "was missing" indicator per column that
    had gaps in training, then standardisation; text columns: one-hot without the first category (the model has
    no intercept to absorb it, so a full set of dummies would be collinear; a category unseen
    in training becomes the reference).

    Unfitted: put it first in a Pipeline so that it is fitted on training patients only.
    """
    num = [SimpleImputer(strategy="median", add_indicator=True)] + ([StandardScaler()] if scale else [])
    return ColumnTransformer(
        [("num", make_pipeline(*num), make_column_selector(dtype_include="number")),
         ("cat", OneHotEncoder(drop="first", handle_unknown="ignore", sparse_output=False),
          make_column_selector(dtype_exclude="number"))],
        verbose_feature_names_out=False)
