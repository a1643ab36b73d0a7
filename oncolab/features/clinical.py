"""Clinical variables as features: standardised numbers and one-hot categories.

Taught in chapter 8 (the encoded clinical columns of the Cox model on the cohort); chapter 1's
baselines and chapter 12's complete system use it too. This module puts
:class:`oncolab.omics.ClinicalPreprocessor` behind the scikit-learn transformer interface, with
columns matched by name.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from oncolab.omics import ClinicalPreprocessor

from .base import FeatureTransformer
from .tables import align_columns, numeric_table, require_frame

__all__ = ["ClinicalFeatures"]


def _with_numbers(table: pd.DataFrame, numeric: list) -> pd.DataFrame:
    """``table`` with its ``numeric`` columns as floats; a value that is not a number raises."""
    if not numeric:
        return table
    out = table.copy()
    out[numeric] = numeric_table(table[numeric], "clinical variable")
    return out


class ClinicalFeatures(FeatureTransformer):
    """Clinical table -> standardised numbers, then one 0/1 column per (variable, category).

    Taught in chapter 8 (through :func:`oncolab.survival.tabular_preprocessor`); chapters 1 and
    12 use it too.

    ``fit`` learns on the training patients only: the mean and standard deviation (``ddof=1``)
    of each numeric variable and the categories of each categorical one
    (:class:`oncolab.omics.ClinicalPreprocessor`). ``transform`` gives the standardised
    numbers (a missing number becomes 0, the training mean), then for each categorical
    variable one column for ``<unknown>`` (a category never seen in training, or missing) and
    one per training category. No reference category is dropped, so the dummies of a variable
    sum to 1, which is collinear with an intercept (and, for a Cox model, with the baseline
    hazard): fit a penalised model (a ridge logistic regression, a Cox model with ``alpha > 0``).
    ``get_feature_names_out()`` gives the numeric variables, then ``<variable>=<category>``
    (``<unknown>`` first); ``state()`` holds ``{"pre": ...}`` (columns and vocabularies) and
    the arrays ``mean``, ``std``.

    Parameters
    ----------
    categorical, numeric : list of str, optional
        The columns of each kind; by default the training table's non-numeric and numeric
        columns.

    Attributes
    ----------
    pre_ : oncolab.omics.ClinicalPreprocessor
        Vocabularies and scalings.
    """

    fit_hint = "fit(training_clinical_table)"

    def __init__(self, categorical=None, numeric=None):
        self.categorical = categorical
        self.numeric = numeric

    def _table(self, X) -> pd.DataFrame:
        """``X`` with the fitted columns, matched by name; numeric columns checked."""
        table = align_columns(X, [*self.pre_.categorical, *self.pre_.numeric], "clinical variable")
        return _with_numbers(table, self.pre_.numeric)

    def fit(self, X, y=None):
        """Learn vocabularies and scalings on the training patients.

        Parameters
        ----------
        X : pandas.DataFrame
            The training patients' clinical table (at least 2 rows).
        y : ignored

        Returns
        -------
        ClinicalFeatures
            ``self``.

        Raises
        ------
        TypeError
            When ``X`` is not a DataFrame.
        ValueError
            When there are fewer than two rows, a named column is missing, a column is neither
            categorical nor numeric, or a numeric value is not a number (named with its patient).
        """
        require_frame(X, "clinical variable")
        pre = ClinicalPreprocessor(None if self.categorical is None else list(self.categorical),
                                   None if self.numeric is None else list(self.numeric))
        if pre.numeric is not None:  # a declared number written as text is an error, not a category
            X = _with_numbers(X, [c for c in pre.numeric if c in X.columns])
        self.pre_ = pre.fit(X)
        self._table(X)  # a column that is neither categorical nor numeric is refused by name
        self.n_features_in_ = len(pre.categorical) + len(pre.numeric)
        return self

    def transform(self, X) -> np.ndarray:
        """Standardised numbers then one-hot categories.

        Parameters
        ----------
        X : pandas.DataFrame
            A clinical table with the fitted columns, in any order.

        Returns
        -------
        numpy.ndarray
            float64 array (n, len(get_feature_names_out())).

        Raises
        ------
        RuntimeError
            When not fitted.
        TypeError
            When ``X`` is not a DataFrame.
        ValueError
            When a fitted column is missing, an unknown column is present, or a numeric value is
            not a number.
        """
        self.check_fitted()
        return self.pre_.one_hot(self._table(X)).astype(np.float64)

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "pre_") and self.pre_.vocab is not None

    def _names(self) -> list[str]:
        return self.pre_.feature_names()

    def _state(self) -> tuple[dict, dict[str, np.ndarray]]:
        config, arrays = self.pre_.state()
        return {"pre": config}, arrays

    @classmethod
    def _from_state(cls, config: dict, arrays: dict[str, np.ndarray]) -> ClinicalFeatures:
        pre = ClinicalPreprocessor.from_state(config["pre"], arrays)
        t = cls(categorical=list(pre.categorical), numeric=list(pre.numeric))
        t.pre_ = pre
        t.n_features_in_ = len(pre.categorical) + len(pre.numeric)
        return t
