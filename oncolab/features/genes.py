"""Gene expression as features: log-CPM (of counts), per-gene standardisation, optionally PCA.

Taught in chapter 7 ("Gene expression"), where each step is built by hand and checked
against scikit-learn; chapter 8 feeds the result to the Cox model and chapter 12 to the
complete system. This module only puts the steps of :mod:`oncolab.omics`
(:class:`~oncolab.omics.GenePreprocessor`, :class:`~oncolab.omics.PCA`) behind the
scikit-learn transformer interface, with columns matched by gene name.

Two kinds of gene table are read (:class:`GeneFeatures`, ``values``): read counts (RNA-seq),
which first go through ``log2(CPM + prior)``, and expression values already on a log scale
(a microarray's log2 intensities, or ``log2(TPM + 1)``), which are only standardised: taking
the log-CPM of values that are already logarithms would compress them a second time and
divide them by a "library size" that means nothing for them.
"""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd

from oncolab.omics import PCA, GenePreprocessor

from .base import FeatureTransformer
from .tables import align_columns, numeric_table

__all__ = ["GeneFeatures"]

_VALUES = {"counts": "a read count >= 0",
           "log_expression": "a log-scale expression value >= 0 (such as a log2 intensity or log2(TPM + 1))"}


def _where(table: pd.DataFrame | None, r: int, c: int) -> str:
    """The gene and patient of entry (r, c), by name for a table, by position for an array."""
    if table is None:
        return f"the gene in column {c} of row {r}"
    return f"gene {table.columns[c]!r} of patient {table.index[r]!r}"


def _sub(arrays: dict, prefix: str) -> dict:
    return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}


class GeneFeatures(FeatureTransformer):
    """Gene table -> ``log2(CPM + prior)`` (of counts) -> per-gene standardisation -> optional PCA.

    Taught in chapter 7.

    ``fit`` learns on the training patients only: each gene's mean and standard deviation
    (``ddof=1``) of log-CPM, or of the values themselves with ``values="log_expression"``
    (:class:`oncolab.omics.GenePreprocessor`), then, with ``n_components``, the principal
    components of the standardised values (:class:`oncolab.omics.PCA`). Columns are matched
    by gene name: a table whose genes come in another order gives the same output; a missing
    or unknown gene raises. ``get_feature_names_out()`` gives the gene names, or ``PC1`` ...
    ``PCk`` with PCA; ``state()`` holds ``{"n_components", "whiten", "prior", "values", "pre":
    ..., "pca": ... or None}`` and the arrays of the preprocessor (``pre.*``) and of the PCA
    (``pca.*``).

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
        The count added before the log (``log2(CPM + prior)``); unused with
        ``values="log_expression"``.
    values : {"counts", "log_expression"}
        What the table holds. ``"counts"`` (default): raw read counts >= 0 (RNA-seq), turned
        into log-CPM before the standardisation. ``"log_expression"``: values already on a log
        scale, >= 0 (a microarray's log2 intensities, ``log2(TPM + 1)``), standardised per gene
        as they are. Centred values (log ratios, z-scores) are not accepted.

    Attributes
    ----------
    genes_ : list
        The genes, in input order of the training table (``g0``, ``g1``, ... for an array).
    pre_ : oncolab.omics.GenePreprocessor
        log-CPM (with counts) and per-gene scaling.
    pca_ : oncolab.omics.PCA or None
        The components (with ``n_components``).
    """

    fit_hint = "fit(training_gene_table)"

    def __init__(self, n_components: int | None = None, whiten: bool = False, prior: float = 1.0,
                 values: str = "counts"):
        self.n_components = n_components
        self.whiten = whiten
        self.prior = prior
        self.values = values

    def _expected(self) -> str:
        """What one value of the table must be, for the error messages; checks ``values``."""
        if not isinstance(self.values, str) or self.values not in _VALUES:
            raise ValueError(f"values must be one of {sorted(_VALUES)}, got {self.values!r}")
        return _VALUES[self.values]

    def _table(self, X, genes=None):
        """A checked (patients x genes) table or array, aligned to ``genes`` by name."""
        expected = self._expected()
        if isinstance(X, pd.DataFrame):
            table = align_columns(X, genes, "gene") if genes is not None else X
            x = numeric_table(table, "gene")
        else:
            table, x = None, np.asarray(X, dtype=np.float64)
            if x.ndim != 2:
                raise ValueError(f"the gene table must be 2-D (patients x genes), got shape {x.shape}")
            if genes is not None and x.shape[1] != len(genes):
                raise ValueError(f"expected {len(genes)} genes (columns), got {x.shape[1]}; "
                                 f"pass a DataFrame to match genes by name")
        if np.isnan(x).any():
            r, c = np.argwhere(np.isnan(x))[0]
            what = "count" if self.values == "counts" else "value"
            raise ValueError(f"{_where(table, r, c)} has no {what} (NaN); expected {expected} for every gene")
        bad = ~np.isfinite(x) | (x < 0)
        if bad.any():
            r, c = np.argwhere(bad)[0]
            raise ValueError(f"{_where(table, r, c)} is {x[r, c]}; expected {expected}")
        return x if table is None else pd.DataFrame(x, index=table.index, columns=table.columns)

    def fit(self, X, y=None):
        """Learn the per-gene scaling (and the components) on the training patients.

        Parameters
        ----------
        X : pandas.DataFrame or array_like
            The gene table as ``values`` says (read counts, or log-scale expression), one row
            per training patient, one column per gene.
        y : ignored

        Returns
        -------
        GeneFeatures
            ``self``.

        Raises
        ------
        ValueError
            When ``n_components`` is not a positive integer or None or exceeds
            ``min(n_training_patients, n_genes)``, ``whiten`` is set without ``n_components``,
            ``values`` is unknown, there are fewer than two patients, or a value is missing,
            negative, infinite or not a number (named with its gene and patient).
        """
        k = self.n_components
        if k is not None and (isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1):
            raise ValueError(f"n_components must be a positive integer or None, got {k!r}")
        if self.whiten and k is None:
            raise ValueError("whiten=True needs n_components (whitening scales principal components)")
        table = self._table(X)
        self.pre_ = GenePreprocessor(log=self.values == "counts", prior=float(self.prior)).fit(table)
        self.genes_ = list(self.pre_.genes)
        self.n_features_in_ = len(self.genes_)
        if isinstance(X, pd.DataFrame):
            self.feature_names_in_ = np.asarray(self.genes_, dtype=object)
        self.pca_ = None
        if k is not None:
            Z = self.pre_.transform(table)
            if k > min(Z.shape):
                raise ValueError(f"n_components={k} exceeds min(n_training_patients, n_genes) = {min(Z.shape)}; "
                                 f"expected at most that many components")
            self.pca_ = PCA(int(k)).fit(Z)
        return self

    def transform(self, X) -> np.ndarray:
        """Standardised log-CPM or log expression (or its principal component scores) of any patients.

        Parameters
        ----------
        X : pandas.DataFrame or array_like
            The gene table as ``values`` says, with the training genes (a DataFrame: by name,
            in any order).

        Returns
        -------
        numpy.ndarray
            float64 array (n, n_genes), or (n, n_components) with PCA.

        Raises
        ------
        RuntimeError
            When not fitted.
        ValueError
            When a training gene is missing or an unknown one is present (an array: the number
            of columns differs), or a value is missing, negative, infinite or not a number.
        """
        self.check_fitted()
        Z = self.pre_.transform(self._table(X, self.genes_))
        if self.pca_ is None:
            return Z
        scores = self.pca_.transform(Z)
        return scores / np.sqrt(np.maximum(self.pca_.explained_variance_, 1e-12)) if self.whiten else scores

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "pre_")

    def _names(self) -> list[str]:
        if self.pca_ is None:
            return [str(g) for g in self.genes_]
        return [f"PC{k + 1}" for k in range(self.pca_.n_components)]

    def _state(self) -> tuple[dict, dict[str, np.ndarray]]:
        pre_cfg, pre_arrays = self.pre_.state()
        config = {"n_components": None if self.n_components is None else int(self.n_components),
                  "whiten": bool(self.whiten), "prior": float(self.prior), "values": str(self.values),
                  "pre": pre_cfg, "pca": None}
        arrays = {f"pre.{k}": v for k, v in pre_arrays.items()}
        if self.pca_ is not None:
            config["pca"], pca_arrays = self.pca_.state()
            arrays.update({f"pca.{k}": v for k, v in pca_arrays.items()})
        return config, arrays

    @classmethod
    def _from_state(cls, config: dict, arrays: dict[str, np.ndarray]) -> GeneFeatures:
        t = cls(n_components=config["n_components"], whiten=bool(config["whiten"]), prior=float(config["prior"]),
                values=config["values"])
        t._expected()  # an unknown kind of table is refused by name
        t.pre_ = GenePreprocessor.from_state(config["pre"], _sub(arrays, "pre."))
        t.genes_ = list(t.pre_.genes)
        t.n_features_in_ = len(t.genes_)
        t.pca_ = PCA.from_state(config["pca"], _sub(arrays, "pca.")) if config.get("pca") else None
        return t
