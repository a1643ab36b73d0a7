"""Tabular inputs for the survival models: the cohort's labs, genes and clinical variables as
one table, and a preprocessor that is fitted inside each cross-validation fold.

Taught in chapter 8 (the Cox model on the cohort) and chapter 9 (every model on the cohort and
on real data).

:func:`cohort_tabular` only gathers the raw values (nothing is learned, nothing transformed);
:func:`tabular_preprocessor` turns them into model inputs with the transformers of
:mod:`oncolab.features`, fitted on the training patients only when it sits first in a
Pipeline.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from oncolab.features import ClinicalFeatures, GeneFeatures, LabFeatures

__all__ = ["cohort_tabular", "tabular_preprocessor"]

_TABLES = ("labs", "genes", "clinical")
_OTHER = r"^(?!(?:labs|genes|clinical):)"  # a column without a modality prefix


def cohort_tabular(cohort, modalities=("labs", "genes", "clinical")) -> pd.DataFrame:
    """One row per patient: the raw lab values, gene counts and clinical variables.

    Taught in chapter 8; chapter 9 uses it too.

    Parameters
    ----------
    cohort : Cohort
        The patients.
    modalities : sequence of str
        Some of ``"labs"``, ``"genes"``, ``"clinical"``.

    Returns
    -------
    pandas.DataFrame
        Indexed like the cohort; column names get the modality as prefix (``labs:ldh``,
        ``genes:MKI67``, ``clinical:age``), which is how :func:`tabular_preprocessor` knows
        which transformer each column goes through. Labs in canonical units (NaN = not
        measured), raw read counts, clinical columns as they are (sex, site, center as text).

    Raises
    ------
    ValueError
        When ``modalities`` is empty or names something other than the three tables, or the
        cohort lacks one of the tables asked for.
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
        parts.append(cohort.tables[m].add_prefix(f"{m}:"))
    return pd.concat(parts, axis=1)


def _unprefix(X: pd.DataFrame) -> pd.DataFrame:
    return X.rename(columns=lambda c: c.split(":", 1)[1])


def _unprefixed_names(transformer, input_features) -> np.ndarray:
    return np.asarray([str(c).split(":", 1)[1] for c in input_features], dtype=object)


def _output_name(transformer_name: str, feature_name: str) -> str:
    return f"{transformer_name}:{feature_name}" if transformer_name in _TABLES else feature_name


def _modality(name: str, transformer) -> tuple:
    route = make_pipeline(FunctionTransformer(_unprefix, feature_names_out=_unprefixed_names), transformer)
    return name, route, make_column_selector(pattern=f"^{name}:")


def tabular_preprocessor() -> ColumnTransformer:
    """Turn a survival table into model inputs; unfitted: put it first in a Pipeline.

    Taught in chapter 8; chapter 9 uses it inside every cross-validation fold.

    The columns of a cohort table (:func:`cohort_tabular`, by their prefix) go through
    :mod:`oncolab.features`: ``labs:`` through :class:`~oncolab.features.LabFeatures` (the
    ``log1p`` lab transform, training median for a missing value plus a ``_missing`` flag per
    lab, standardised), ``genes:`` through :class:`~oncolab.features.GeneFeatures` (log-CPM,
    standardised per gene), ``clinical:`` through :class:`~oncolab.features.ClinicalFeatures`
    (standardised numbers, every category one-hot with an "unknown" column; the full set of
    dummies is collinear for a Cox model, which has no intercept, so fit it with a penalty).

    Any other table (a real data set such as GBSG2): numeric columns get median imputation
    with a 0/1 "was missing" indicator per column that had gaps in training, then
    standardisation; text columns are one-hot without the first category (the reference; a
    category unseen in training also becomes the reference), so that an unpenalised Cox model
    stays identifiable.

    Columns are found by name, in any order. As with any scikit-learn ``ColumnTransformer``,
    a column missing at ``transform`` raises and a column added after fitting is ignored.

    Returns
    -------
    sklearn.compose.ColumnTransformer
        Output names keep the cohort prefixes (``labs:ldh``, ``labs:ldh_missing``,
        ``clinical:sex=F``).
    """
    return ColumnTransformer(
        [_modality("labs", LabFeatures()), _modality("genes", GeneFeatures()),
         _modality("clinical", ClinicalFeatures()),
         ("num", make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler()),
          make_column_selector(pattern=_OTHER, dtype_include="number")),
         ("cat", OneHotEncoder(drop="first", handle_unknown="ignore", sparse_output=False),
          make_column_selector(pattern=_OTHER, dtype_exclude="number"))],
        verbose_feature_names_out=_output_name)
