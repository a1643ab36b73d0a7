"""Clinical variables: category vocabularies, scaled numbers, an embedding encoder.

Taught in chapter 7 ("Gene expression", the clinical encoder that sits beside it).

A categorical variable (sex, site, center) becomes an index into a table of learned
vectors (an embedding); index 0 is kept for a category never seen in training, so that a
new center does not crash the model (it is encoded as "unknown"). Numbers (age) are
standardised with the training mean and spread. An embedding lookup is the same as a
linear layer over one-hot columns: :meth:`ClinicalPreprocessor.one_hot` gives that form,
which the fusion models read.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

__all__ = ["ClinicalEncoder", "ClinicalPreprocessor"]


class ClinicalPreprocessor:
    """Fit vocabularies and scalings on training patients; turn tables into model inputs."""

    def __init__(self, categorical: list[str] | None = None, numeric: list[str] | None = None):
        self.categorical = categorical
        self.numeric = numeric
        self.vocab: dict[str, list[str]] | None = None

    def fit(self, df: pd.DataFrame) -> ClinicalPreprocessor:
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
        """(n, n_categorical) int64 indices; 0 = not seen in training (or missing)."""
        if self.vocab is None:
            raise RuntimeError("ClinicalPreprocessor is not fitted: call fit(train_table) first")
        self._check_columns(df)
        out = np.zeros((len(df), len(self.categorical)), np.int64)
        for j, c in enumerate(self.categorical):
            lookup = {v: i + 1 for i, v in enumerate(self.vocab[c])}
            out[:, j] = [lookup.get(str(v), 0) for v in df[c]]
        return out

    def numbers(self, df: pd.DataFrame) -> np.ndarray:
        """(n, n_numeric) standardised numbers; a missing number becomes 0 (the training mean)."""
        if self.vocab is None:
            raise RuntimeError("ClinicalPreprocessor is not fitted: call fit(train_table) first")
        self._check_columns(df)
        x = (df[self.numeric].astype(float).to_numpy() - self.mean_) / self.std_
        return np.nan_to_num(x, nan=0.0)

    def one_hot(self, df: pd.DataFrame) -> np.ndarray:
        """Standardised numbers then one 0/1 column per (variable, category incl. unknown)."""
        idx = self.indices(df)
        blocks = [self.numbers(df)]
        for j, c in enumerate(self.categorical):
            oh = np.zeros((len(df), len(self.vocab[c]) + 1))
            oh[np.arange(len(df)), idx[:, j]] = 1.0
            blocks.append(oh)
        return np.concatenate(blocks, 1)

    def feature_names(self) -> list[str]:
        return [*self.numeric, *[f"{c}={v}" for c in self.categorical for v in ["<unknown>", *self.vocab[c]]]]

    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        return ({"categorical": self.categorical, "numeric": self.numeric, "vocab": self.vocab},
                {"mean": self.mean_, "std": self.std_})

    @classmethod
    def from_state(cls, config: dict, arrays: dict[str, np.ndarray]) -> ClinicalPreprocessor:
        p = cls(list(config["categorical"]), list(config["numeric"]))
        p.vocab = {k: list(v) for k, v in config["vocab"].items()}
        p.mean_, p.std_ = np.asarray(arrays["mean"], float), np.asarray(arrays["std"], float)
        return p


class ClinicalEncoder(nn.Module):
    """One embedding table per categorical variable plus a linear map of the numbers, summed.

    ``forward(indices, numbers)`` with indices from :meth:`ClinicalPreprocessor.indices`.
    """

    def __init__(self, cardinalities: list[int], n_numeric: int, out_dim: int = 8):
        super().__init__()
        if any(k < 1 for k in cardinalities) or n_numeric < 0 or out_dim < 1:
            raise ValueError(f"bad sizes: cardinalities={cardinalities}, n_numeric={n_numeric}, out_dim={out_dim}")
        self.embeddings = nn.ModuleList(nn.Embedding(k, out_dim) for k in cardinalities)
        self.numeric = nn.Linear(n_numeric, out_dim) if n_numeric else None

    @classmethod
    def for_preprocessor(cls, pre: ClinicalPreprocessor, out_dim: int = 8) -> ClinicalEncoder:
        return cls([len(pre.vocab[c]) + 1 for c in pre.categorical], len(pre.numeric), out_dim)

    def forward(self, indices: torch.Tensor, numbers: torch.Tensor) -> torch.Tensor:
        out = self.numeric(numbers) if self.numeric is not None else 0.0
        for j, emb in enumerate(self.embeddings):
            out = out + emb(indices[:, j])
        return out
