"""Clinical variables: category vocabularies, scaled numbers, an embedding encoder.

Chapter 7 ("Gene expression") draws the clinical encoder beside the genes; the preprocessor is
used through :class:`oncolab.features.ClinicalFeatures` by chapter 8 (the Cox model on the
cohort) and chapter 12 (the complete system).

A categorical variable (sex, site, center) becomes an index into a table of learned
vectors (an embedding); index 0 is kept for a category never seen in training, so that a
new center does not crash the model (it is encoded as "unknown"). Numbers (age) are
standardised with the training mean and spread. An embedding lookup is the same as a
linear layer over one-hot columns: :meth:`ClinicalPreprocessor.one_hot` gives that form,
which :class:`oncolab.features.ClinicalFeatures` hands to the models.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

__all__ = ["ClinicalEncoder", "ClinicalPreprocessor"]


class ClinicalPreprocessor:
    """Fit vocabularies and scalings on training patients; turn tables into model inputs.

    Used through :class:`oncolab.features.ClinicalFeatures` (chapters 8 and 12).

    Parameters
    ----------
    categorical : list of str, optional
        Columns treated as categories; by default the training table's non-numeric columns.
    numeric : list of str, optional
        Columns treated as numbers; by default the training table's numeric columns.

    Attributes
    ----------
    vocab : dict of str to list of str
        Per categorical column, its training categories as text, sorted (None before ``fit``).
    mean_, std_ : numpy.ndarray of float, shape (n_numeric,)
        Training mean and sample standard deviation (``ddof=1``; 1 where it is 0 or undefined).
    """

    def __init__(self, categorical: list[str] | None = None, numeric: list[str] | None = None):
        self.categorical = categorical
        self.numeric = numeric
        self.vocab: dict[str, list[str]] | None = None

    def fit(self, df: pd.DataFrame) -> ClinicalPreprocessor:
        """Learn the categories and the scalings from the training patients.

        Parameters
        ----------
        df : pandas.DataFrame
            The training patients' clinical table, at least two rows.

        Returns
        -------
        ClinicalPreprocessor
            ``self``, fitted.

        Raises
        ------
        ValueError
            When ``df`` is not a DataFrame of at least two rows or lacks a named column.
        """
        if not isinstance(df, pd.DataFrame) or len(df) < 2:
            raise ValueError("clinical data must be a DataFrame with at least 2 training patients")
        if self.categorical is None:
            self.categorical = [c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c])]
        if self.numeric is None:
            self.numeric = [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c])]
        self._check_columns(df)
        self.vocab = {c: sorted(df[c].dropna().astype(str).unique()) for c in self.categorical}
        num = df[self.numeric].astype(float)
        self.mean_ = num.mean().to_numpy()
        sd = num.std(ddof=1).to_numpy()
        self.std_ = np.where(np.isfinite(sd) & (sd > 1e-12), sd, 1.0)
        return self

    def _check_columns(self, df: pd.DataFrame) -> None:
        missing = [c for c in [*self.categorical, *self.numeric] if c not in df.columns]
        if missing:
            raise ValueError(f"clinical table lacks column(s) {missing}; expected {self.categorical + self.numeric}")

    def indices(self, df: pd.DataFrame) -> np.ndarray:
        """(n, n_categorical) int64 indices; 0 = not seen in training (or missing).

        Category ``k`` of the sorted training vocabulary gets index ``k + 1``; values are
        compared as text.

        Parameters
        ----------
        df : pandas.DataFrame
            Clinical table with the fitted columns.

        Returns
        -------
        numpy.ndarray of int64, shape (n, n_categorical)

        Raises
        ------
        RuntimeError
            When not fitted.
        ValueError
            When a column is missing.
        """
        if self.vocab is None:
            raise RuntimeError("ClinicalPreprocessor is not fitted: call fit(train_table) first")
        self._check_columns(df)
        out = np.zeros((len(df), len(self.categorical)), np.int64)
        for j, c in enumerate(self.categorical):
            lookup = {v: i + 1 for i, v in enumerate(self.vocab[c])}
            out[:, j] = [lookup.get(str(v), 0) for v in df[c]]
        return out

    def numbers(self, df: pd.DataFrame) -> np.ndarray:
        """(n, n_numeric) standardised numbers; a missing number becomes 0 (the training mean).

        Parameters
        ----------
        df : pandas.DataFrame
            Clinical table with the fitted columns.

        Returns
        -------
        numpy.ndarray of float, shape (n, n_numeric)

        Raises
        ------
        RuntimeError
            When not fitted.
        ValueError
            When a column is missing or a numeric column does not convert to float.
        """
        if self.vocab is None:
            raise RuntimeError("ClinicalPreprocessor is not fitted: call fit(train_table) first")
        self._check_columns(df)
        x = (df[self.numeric].astype(float).to_numpy() - self.mean_) / self.std_
        return np.nan_to_num(x, nan=0.0)

    def one_hot(self, df: pd.DataFrame) -> np.ndarray:
        """Standardised numbers then one 0/1 column per (variable, category incl. unknown).

        Parameters
        ----------
        df : pandas.DataFrame
            Clinical table with the fitted columns.

        Returns
        -------
        numpy.ndarray of float, shape (n, n_numeric + sum of (n_categories + 1))
            Columns as :meth:`feature_names` names them; each variable's ``<unknown>`` column
            comes first.

        Raises
        ------
        RuntimeError
            When not fitted.
        ValueError
            When a column is missing.
        """
        idx = self.indices(df)
        blocks = [self.numbers(df)]
        for j, c in enumerate(self.categorical):
            oh = np.zeros((len(df), len(self.vocab[c]) + 1))
            oh[np.arange(len(df)), idx[:, j]] = 1.0
            blocks.append(oh)
        return np.concatenate(blocks, 1)

    def feature_names(self) -> list[str]:
        """The names of the columns of :meth:`one_hot`.

        Returns
        -------
        list of str
            The numeric columns, then ``<variable>=<category>`` with ``<unknown>`` first.
        """
        return [*self.numeric, *[f"{c}={v}" for c in self.categorical for v in ["<unknown>", *self.vocab[c]]]]

    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """``(config, arrays)`` to save without pickle; :meth:`from_state` reads them back.

        Returns
        -------
        config : dict
            ``categorical``, ``numeric`` and ``vocab``.
        arrays : dict of str to numpy.ndarray
            ``mean`` and ``std``.
        """
        return ({"categorical": self.categorical, "numeric": self.numeric, "vocab": self.vocab},
                {"mean": self.mean_, "std": self.std_})

    @classmethod
    def from_state(cls, config: dict, arrays: dict[str, np.ndarray]) -> ClinicalPreprocessor:
        """The preprocessor :meth:`state` described.

        Parameters
        ----------
        config : dict
            The ``config`` of :meth:`state`.
        arrays : dict of str to numpy.ndarray
            The ``arrays`` of :meth:`state`.

        Returns
        -------
        ClinicalPreprocessor
            Fitted, transforming as the saved one did.

        Raises
        ------
        KeyError
            When a key is missing.
        """
        p = cls(list(config["categorical"]), list(config["numeric"]))
        p.vocab = {k: list(v) for k, v in config["vocab"].items()}
        p.mean_, p.std_ = np.asarray(arrays["mean"], float), np.asarray(arrays["std"], float)
        return p


class ClinicalEncoder(nn.Module):
    """One embedding table per categorical variable plus a linear map of the numbers, summed.

    ``forward(indices, numbers)`` with indices from :meth:`ClinicalPreprocessor.indices`.
    The embedding form of the one-hot columns of :meth:`ClinicalPreprocessor.one_hot` (see the
    module docstring).

    Parameters
    ----------
    cardinalities : list of int
        Rows of each embedding table (categories + 1 for "unknown"), each >= 1.
    n_numeric : int
        Number of numeric inputs, >= 0.
    out_dim : int, default 8
        Size of the embedding, >= 1.

    Raises
    ------
    ValueError
        When a size is out of range.
    """

    def __init__(self, cardinalities: list[int], n_numeric: int, out_dim: int = 8):
        super().__init__()
        if any(k < 1 for k in cardinalities) or n_numeric < 0 or out_dim < 1:
            raise ValueError(f"bad sizes: cardinalities={cardinalities}, n_numeric={n_numeric}, out_dim={out_dim}")
        self.embeddings = nn.ModuleList(nn.Embedding(k, out_dim) for k in cardinalities)
        self.numeric = nn.Linear(n_numeric, out_dim) if n_numeric else None

    @classmethod
    def for_preprocessor(cls, pre: ClinicalPreprocessor, out_dim: int = 8) -> ClinicalEncoder:
        """An encoder sized for a fitted preprocessor.

        Parameters
        ----------
        pre : ClinicalPreprocessor
            Fitted.
        out_dim : int, default 8
            Size of the embedding.

        Returns
        -------
        ClinicalEncoder
            Freshly initialised (PyTorch's global random state draws the weights).
        """
        return cls([len(pre.vocab[c]) + 1 for c in pre.categorical], len(pre.numeric), out_dim)

    def forward(self, indices: torch.Tensor, numbers: torch.Tensor) -> torch.Tensor:
        """The sum of each variable's embedding and the linear map of the numbers.

        Parameters
        ----------
        indices : torch.Tensor of int64, shape (n, n_categorical)
            From :meth:`ClinicalPreprocessor.indices`.
        numbers : torch.Tensor of float, shape (n, n_numeric)
            From :meth:`ClinicalPreprocessor.numbers`.

        Returns
        -------
        torch.Tensor of float, shape (n, out_dim)
        """
        out = self.numeric(numbers) if self.numeric is not None else 0.0
        for j, emb in enumerate(self.embeddings):
            out = out + emb(indices[:, j])
        return out
