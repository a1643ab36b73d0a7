"""Gene expression as features: log-CPM, per-gene standardisation, optionally PCA.

Taught in chapter 7 ("Gene expression"), where each step is built by hand and checked
against scikit-learn; chapter 8 feeds the result to the Cox model and chapter 12 to the
complete system. This module only puts the steps of :mod:`oncolab.omics`
(:class:`~oncolab.omics.GenePreprocessor`, :class:`~oncolab.omics.PCA`) behind the
scikit-learn transformer interface, with columns matched by gene name.
"""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from oncolab.omics import PCA, GenePreprocessor

from .tables import align_columns, numeric_table

__all__ = ["GeneFeatures"]


def _sub(arrays: dict, prefix: str) -> dict:
    return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}


class GeneFeatures(TransformerMixin, BaseEstimator):
    """Read counts -> ``log2(CPM + prior)`` -> per-gene standardisation -> optional PCA.

    Taught in chapter 7.

    ``fit`` learns on the training patients only: each gene's mean and standard deviation
    (``ddof=1``) of log-CPM (:class:`oncolab.omics.GenePreprocessor`), then, with
    ``n_components``, the principal components of the standardised values
    (:class:`oncolab.omics.PCA`). Columns are matched by gene name: a table whose genes come
    in another order gives the same output; a missing or unknown gene raises.

    Parameters
    ----------
    n_components : int, optional
        Keep this many principal components; ``None`` (default) keeps every standardised gene.
        At most ``min(n_training_patients, n_genes)``.
    whiten : bool
        Divide each component's score by its training standard deviation, so that every
        component has unit variance (as :class:`sklearn.decomposition.PCA` with
        ``whiten=True``). Only with ``n_components``.
    prior : float
        The count added before the log (``log2(CPM + prior)``).

    Attributes
    ----------
    genes_ : list
        The genes, in input order of the training table (``g0``, ``g1``, ... for an array).
    pre_ : oncolab.omics.GenePreprocessor
        log-CPM and per-gene scaling.
    pca_ : oncolab.omics.PCA or None
        The components (with ``n_components``).
    """

    def __init__(self, n_components: int | None = None, whiten: bool = False, prior: float = 1.0):
        self.n_components = n_components
        self.whiten = whiten
        self.prior = prior

    def _counts(self, X, genes=None):
        """A checked (patients x genes) table or array of counts, aligned to ``genes`` by name."""
        if isinstance(X, pd.DataFrame):
            table = align_columns(X, genes, "gene") if genes is not None else X
            x = numeric_table(table, "gene")
            if np.isnan(x).any():
                r, c = np.argwhere(np.isnan(x))[0]
                raise ValueError(f"gene {table.columns[c]!r} of patient {table.index[r]!r} has no count (NaN); "
                                 f"expected a read count >= 0 for every gene")
            return pd.DataFrame(x, index=table.index, columns=table.columns)
        x = np.asarray(X, dtype=np.float64)
        if x.ndim != 2:
            raise ValueError(f"counts must be a 2-D (patients x genes) table, got shape {x.shape}")
        if genes is not None and x.shape[1] != len(genes):
            raise ValueError(f"expected {len(genes)} genes (columns), got {x.shape[1]}; "
                             f"pass a DataFrame to match genes by name")
        return x

    def fit(self, X, y=None):
        """Learn the per-gene scaling (and the components) on the training patients.

        Parameters
        ----------
        X : pandas.DataFrame or array_like
            Raw read counts, one row per training patient, one column per gene.
        y : ignored

        Returns
        -------
        GeneFeatures
            ``self``.
        """
        k = self.n_components
        if k is not None and (isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1):
            raise ValueError(f"n_components must be a positive integer or None, got {k!r}")
        if self.whiten and k is None:
            raise ValueError("whiten=True needs n_components (whitening scales principal components)")
        counts = self._counts(X)
        self.pre_ = GenePreprocessor(log=True, prior=float(self.prior)).fit(counts)
        self.genes_ = list(self.pre_.genes)
        self.n_features_in_ = len(self.genes_)
        if isinstance(X, pd.DataFrame):
            self.feature_names_in_ = np.asarray(self.genes_, dtype=object)
        self.pca_ = None
        if k is not None:
            Z = self.pre_.transform(counts)
            if k > min(Z.shape):
                raise ValueError(f"n_components={k} exceeds min(n_training_patients, n_genes) = {min(Z.shape)}; "
                                 f"expected at most that many components")
            self.pca_ = PCA(int(k)).fit(Z)
        return self

    def transform(self, X) -> np.ndarray:
        """Standardised log-CPM (or its principal component scores) of any patients.

        Parameters
        ----------
        X : pandas.DataFrame or array_like
            Raw read counts with the training genes (a DataFrame: by name, in any order).

        Returns
        -------
        numpy.ndarray
            float64 array (n, n_genes), or (n, n_components) with PCA.
        """
        if not hasattr(self, "pre_"):
            raise RuntimeError("GeneFeatures is not fitted: call fit(training_counts) first")
        Z = self.pre_.transform(self._counts(X, self.genes_))
        if self.pca_ is None:
            return Z
        scores = self.pca_.transform(Z)
        return scores / np.sqrt(np.maximum(self.pca_.explained_variance_, 1e-12)) if self.whiten else scores

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """The gene names, or ``PC1`` ... ``PCk`` with PCA.

        Parameters
        ----------
        input_features : ignored

        Returns
        -------
        numpy.ndarray
            Object array of names.
        """
        if not hasattr(self, "pre_"):
            raise RuntimeError("GeneFeatures is not fitted: call fit(training_counts) first")
        if self.pca_ is None:
            return np.asarray([str(g) for g in self.genes_], dtype=object)
        return np.asarray([f"PC{k + 1}" for k in range(self.pca_.n_components)], dtype=object)

    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """Settings (JSON-ready) and fitted arrays, for saving without pickle.

        Returns
        -------
        tuple of (dict, dict)
            ``{"n_components", "whiten", "prior", "pre": ..., "pca": ... or None}`` and the
            arrays of the preprocessor (``pre.*``) and of the PCA (``pca.*``).
        """
        if not hasattr(self, "pre_"):
            raise RuntimeError("GeneFeatures is not fitted: call fit(training_counts) first")
        pre_cfg, pre_arrays = self.pre_.state()
        config = {"n_components": None if self.n_components is None else int(self.n_components),
                  "whiten": bool(self.whiten), "prior": float(self.prior), "pre": pre_cfg, "pca": None}
        arrays = {f"pre.{k}": v for k, v in pre_arrays.items()}
        if self.pca_ is not None:
            config["pca"], pca_arrays = self.pca_.state()
            arrays.update({f"pca.{k}": v for k, v in pca_arrays.items()})
        return config, arrays

    @classmethod
    def from_state(cls, config: dict, arrays: dict[str, np.ndarray]) -> GeneFeatures:
        """Rebuild a fitted transformer from :meth:`state`.

        Parameters
        ----------
        config : dict
            The settings of :meth:`state`.
        arrays : dict of str to numpy.ndarray
            The arrays of :meth:`state`.

        Returns
        -------
        GeneFeatures
        """
        t = cls(n_components=config["n_components"], whiten=bool(config["whiten"]), prior=float(config["prior"]))
        t.pre_ = GenePreprocessor.from_state(config["pre"], _sub(arrays, "pre."))
        t.genes_ = list(t.pre_.genes)
        t.n_features_in_ = len(t.genes_)
        t.pca_ = PCA.from_state(config["pca"], _sub(arrays, "pca.")) if config.get("pca") else None
        return t
