"""Gene expression: library-size normalisation, log, per-gene scaling, PCA, encoders.

Taught in chapter 7 ("Gene expression").
"""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..training import fit

__all__ = ["PCA", "GeneAutoencoder", "GenePreprocessor", "SNNEncoder", "cpm", "fit_autoencoder",
           "log_cpm"]


def _counts(counts) -> np.ndarray:
    x = np.asarray(counts, dtype=float)
    if x.ndim != 2:
        raise ValueError(f"counts must be a 2-D (patients x genes) table, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("counts contain NaN or infinite values; expected finite read counts >= 0")
    if (x < 0).any():
        raise ValueError(f"counts must be >= 0, found {x.min()}")
    return x


def cpm(counts) -> np.ndarray:
    """Counts per million: each patient's counts divided by its library size, times 1e6.

    Taught in chapter 7.

    Parameters
    ----------
    counts : array-like or pandas.DataFrame, shape (n_patients, n_genes)
        Read counts, finite and >= 0.

    Returns
    -------
    numpy.ndarray of float, shape (n_patients, n_genes)
        Each row sums to 1e6.

    Raises
    ------
    ValueError
        When ``counts`` is not 2-D, holds NaN, infinite or negative values, or a patient has
        no reads at all.
    """
    x = _counts(counts)
    lib = x.sum(1, keepdims=True)
    if (lib == 0).any():
        raise ValueError(f"patient at row {int(np.argmax(lib.ravel() == 0))} has no reads at all (library size 0)")
    return x / lib * 1e6


def log_cpm(counts, prior: float = 1.0) -> np.ndarray:
    """``log2(CPM + prior)``, the usual scale for expression.

    Taught in chapter 7.

    Parameters
    ----------
    counts : array-like or pandas.DataFrame, shape (n_patients, n_genes)
        Read counts, finite and >= 0.
    prior : float, default 1.0
        Added before the log, > 0 (so that a zero count stays finite).

    Returns
    -------
    numpy.ndarray of float, shape (n_patients, n_genes)

    Raises
    ------
    ValueError
        When ``prior <= 0`` or ``counts`` fails :func:`cpm`'s checks.
    """
    if prior <= 0:
        raise ValueError(f"prior must be > 0, got {prior}")
    return np.log2(cpm(counts) + prior)


class GenePreprocessor:
    """log-CPM, then per-gene standardisation fitted on training patients only.

    ``fit(train_counts)`` remembers the genes (by name when given a DataFrame), their means
    and standard deviations; ``transform`` applies them to any patients, checking that the
    same genes come in the same order. Genes that do not vary in training get a spread of 1.
    The spread is the sample standard deviation (``ddof=1``). Taught in chapter 7.

    Parameters
    ----------
    log : bool, default True
        Apply :func:`log_cpm` first; False standardises the values as given (they must still
        be finite and >= 0).
    prior : float, default 1.0
        The prior of :func:`log_cpm`.

    Attributes
    ----------
    genes : list of str
        The training genes (``g0, g1, ...`` when fitted on an array).
    mean_, std_ : numpy.ndarray of float, shape (n_genes,)
        Per-gene training mean and spread (on the log-CPM scale when ``log``).
    """

    def __init__(self, log: bool = True, prior: float = 1.0):
        self.log = bool(log)
        self.prior = float(prior)
        self.genes: list[str] | None = None
        self.mean_: np.ndarray | None = None
        self.std_: np.ndarray | None = None

    def _scale(self, counts) -> np.ndarray:
        return log_cpm(counts, self.prior) if self.log else _counts(counts)

    def fit(self, counts) -> GenePreprocessor:
        """Learn the genes, their means and spreads from the training patients.

        Parameters
        ----------
        counts : array-like or pandas.DataFrame, shape (n_patients, n_genes)
            Training read counts (at least two patients).

        Returns
        -------
        GenePreprocessor
            ``self``, fitted.

        Raises
        ------
        ValueError
            When there are fewer than two patients or the counts fail :func:`cpm`'s checks.
        """
        x = self._scale(counts)
        if len(x) < 2:
            raise ValueError(f"need at least 2 training patients to fit a scaling, got {len(x)}")
        self.genes = list(counts.columns) if isinstance(counts, pd.DataFrame) else [f"g{i}" for i in range(x.shape[1])]
        self.mean_ = x.mean(0)
        sd = x.std(0, ddof=1)
        self.std_ = np.where(sd > 1e-12, sd, 1.0)
        return self

    def transform(self, counts) -> np.ndarray:
        """Standardised log-CPM of any patients with the training means and spreads.

        Parameters
        ----------
        counts : array-like or pandas.DataFrame, shape (n, n_genes)
            Read counts; a DataFrame must have the training genes as columns, in order (an
            array is matched by position).

        Returns
        -------
        numpy.ndarray of float, shape (n, n_genes)

        Raises
        ------
        RuntimeError
            When not fitted.
        ValueError
            When genes are missing or out of order, the number of genes differs, or the counts
            fail :func:`cpm`'s checks.
        """
        if self.mean_ is None:
            raise RuntimeError("GenePreprocessor is not fitted: call fit(train_counts) first")
        if isinstance(counts, pd.DataFrame) and list(counts.columns) != self.genes:
            missing = [g for g in self.genes if g not in counts.columns]
            raise ValueError(f"genes differ from the training genes (missing {missing[:5]}...)" if missing
                             else "genes come in a different order than in training; reindex them first")
        x = self._scale(counts)
        if x.shape[1] != len(self.mean_):
            raise ValueError(f"expected {len(self.mean_)} genes, got {x.shape[1]}")
        return (x - self.mean_) / self.std_

    def fit_transform(self, counts) -> np.ndarray:
        """:meth:`fit` then :meth:`transform` on the same patients.

        Parameters
        ----------
        counts : array-like or pandas.DataFrame, shape (n_patients, n_genes)
            Training read counts.

        Returns
        -------
        numpy.ndarray of float, shape (n_patients, n_genes)

        Raises
        ------
        ValueError
            As :meth:`fit`.
        """
        return self.fit(counts).transform(counts)

    # save / load without pickle
    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """``(config, arrays)`` to save without pickle; :meth:`from_state` reads them back.

        Returns
        -------
        config : dict
            ``log``, ``prior`` and ``genes``.
        arrays : dict of str to numpy.ndarray
            ``mean`` and ``std`` (None before ``fit``).
        """
        return ({"log": self.log, "prior": self.prior, "genes": self.genes},
                {"mean": self.mean_, "std": self.std_})

    @classmethod
    def from_state(cls, config: dict, arrays: dict[str, np.ndarray]) -> GenePreprocessor:
        """The preprocessor :meth:`state` described.

        Parameters
        ----------
        config : dict
            The ``config`` of :meth:`state`.
        arrays : dict of str to numpy.ndarray
            The ``arrays`` of :meth:`state`.

        Returns
        -------
        GenePreprocessor
            Fitted, transforming as the saved one did.

        Raises
        ------
        KeyError
            When a key is missing.
        """
        p = cls(log=config["log"], prior=config["prior"])
        p.genes = list(config["genes"])
        p.mean_, p.std_ = np.asarray(arrays["mean"], float), np.asarray(arrays["std"], float)
        return p


class PCA:
    """Principal components from the singular value decomposition of the centred data.

    ``X - mean = U S V^T``; the components are the rows of ``V^T``, the scores ``U S``, and
    component *k* explains ``S_k^2 / sum(S^2)`` of the variance. Signs are fixed so that the
    largest loading of each component is positive (sklearn fixes them another way; compare
    up to sign). Checked against :class:`sklearn.decomposition.PCA` in chapter 7 and the tests.
    Taught in chapter 7; the gene stage of the complete system (chapters 10 and 12) uses it.

    Parameters
    ----------
    n_components : int
        Components kept, >= 1.

    Attributes
    ----------
    mean_ : numpy.ndarray, shape (n_features,)
    components_ : numpy.ndarray, shape (n_components, n_features)
    explained_variance_ : numpy.ndarray, shape (n_components,)
        ``S_k^2 / (n - 1)``.
    explained_variance_ratio_ : numpy.ndarray, shape (n_components,)

    Raises
    ------
    ValueError
        When ``n_components`` is not a positive integer.
    """

    def __init__(self, n_components: int):
        if isinstance(n_components, bool) or not isinstance(n_components, numbers.Integral) or n_components < 1:
            raise ValueError(f"n_components must be a positive integer, got {n_components!r}")
        self.n_components = int(n_components)

    def fit(self, X) -> PCA:
        """Centre ``X`` and keep its first principal components.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
            Finite data (at least two rows for a defined variance).

        Returns
        -------
        PCA
            ``self``, fitted.

        Raises
        ------
        ValueError
            When ``X`` is not a finite 2-D array or ``n_components`` exceeds
            ``min(n_samples, n_features)``.
        """
        X = np.asarray(X, float)
        if X.ndim != 2 or not np.isfinite(X).all():
            raise ValueError(f"X must be a finite 2-D array, got shape {X.shape}")
        if self.n_components > min(X.shape):
            raise ValueError(f"n_components={self.n_components} exceeds min(n_samples, n_features)={min(X.shape)}")
        self.mean_ = X.mean(0)
        _, s, vt = np.linalg.svd(X - self.mean_, full_matrices=False)
        flip = np.sign(vt[np.arange(len(vt)), np.abs(vt).argmax(1)])
        vt = vt * flip[:, None]
        self.components_ = vt[: self.n_components]
        var = s**2 / (len(X) - 1)
        self.explained_variance_ = var[: self.n_components]
        self.explained_variance_ratio_ = (var / var.sum())[: self.n_components]
        return self

    def transform(self, X) -> np.ndarray:
        """The scores ``(X - mean_) @ components_.T``.

        Parameters
        ----------
        X : array-like, shape (n, n_features)

        Returns
        -------
        numpy.ndarray of float, shape (n, n_components)

        Raises
        ------
        RuntimeError
            When not fitted.
        ValueError
            When ``X`` is not 2-D with the training number of features.
        """
        if not hasattr(self, "components_"):
            raise RuntimeError("PCA is not fitted: call fit(X) first")
        X = np.asarray(X, float)
        if X.ndim != 2 or X.shape[1] != self.components_.shape[1]:
            raise ValueError(f"expected {self.components_.shape[1]} features, got shape {X.shape}")
        return (X - self.mean_) @ self.components_.T

    def fit_transform(self, X) -> np.ndarray:
        """:meth:`fit` then :meth:`transform` on the same data.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)

        Returns
        -------
        numpy.ndarray of float, shape (n_samples, n_components)

        Raises
        ------
        ValueError
            As :meth:`fit`.
        """
        return self.fit(X).transform(X)

    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """``(config, arrays)`` to save without pickle; :meth:`from_state` reads them back.

        Returns
        -------
        config : dict
            ``{"n_components": int}``.
        arrays : dict of str to numpy.ndarray
            ``mean``, ``components``, ``explained_variance``, ``explained_variance_ratio``.

        Raises
        ------
        AttributeError
            When not fitted.
        """
        return {"n_components": self.n_components}, {"mean": self.mean_, "components": self.components_,
                                                     "explained_variance": self.explained_variance_,
                                                     "explained_variance_ratio": self.explained_variance_ratio_}

    @classmethod
    def from_state(cls, config: dict, arrays: dict[str, np.ndarray]) -> PCA:
        """The PCA :meth:`state` described.

        Parameters
        ----------
        config : dict
            The ``config`` of :meth:`state`.
        arrays : dict of str to numpy.ndarray
            The ``arrays`` of :meth:`state`.

        Returns
        -------
        PCA
            Fitted, transforming as the saved one did.

        Raises
        ------
        KeyError
            When a key is missing.
        """
        p = cls(config["n_components"])
        p.mean_ = np.asarray(arrays["mean"], float)
        p.components_ = np.asarray(arrays["components"], float)
        p.explained_variance_ = np.asarray(arrays["explained_variance"], float)
        p.explained_variance_ratio_ = np.asarray(arrays["explained_variance_ratio"], float)
        return p


class SNNEncoder(nn.Module):
    """A self-normalising MLP (SELU + alpha dropout, LeCun-normal weights): genes -> embedding.

    SELU keeps activations near zero mean and unit variance through the layers, which makes
    deep MLPs on tabular omics trainable without batch norm (Klambauer et al., 2017).
    Taught in chapter 7. The weights are drawn from PyTorch's global random state (seed it
    first).

    Parameters
    ----------
    in_dim : int
        Number of genes.
    hidden : int, default 64
        Width of the hidden layers.
    out_dim : int, default 16
        Size of the embedding.
    depth : int, default 2
        Number of linear layers (``depth - 1`` hidden blocks of Linear, SELU, AlphaDropout,
        then Linear and SELU to ``out_dim``).
    dropout : float, default 0.1
        Alpha-dropout probability.

    Raises
    ------
    ValueError
        When a size is not a positive integer.
    """

    def __init__(self, in_dim: int, hidden: int = 64, out_dim: int = 16, depth: int = 2, dropout: float = 0.1):
        super().__init__()
        for name, v in (("in_dim", in_dim), ("hidden", hidden), ("out_dim", out_dim), ("depth", depth)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        layers: list[nn.Module] = []
        d = in_dim
        for _ in range(depth - 1):
            layers += [nn.Linear(d, hidden), nn.SELU(), nn.AlphaDropout(dropout)]
            d = hidden
        layers += [nn.Linear(d, out_dim), nn.SELU()]
        self.net = nn.Sequential(*layers)
        for m in self.net:
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, (1.0 / m.in_features) ** 0.5)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The embedding.

        Parameters
        ----------
        x : torch.Tensor of float, shape (n, in_dim)
            Standardised expression.

        Returns
        -------
        torch.Tensor of float, shape (n, out_dim)
        """
        return self.net(x)


class GeneAutoencoder(nn.Module):
    """Encoder (genes -> ``latent`` numbers) and decoder back; trained to reconstruct.

    Each side is Linear, GELU, Linear. Taught in chapter 7 (through :func:`fit_autoencoder`).

    Parameters
    ----------
    in_dim : int
        Number of genes.
    latent : int, default 8
        Size of the embedding.
    hidden : int, default 32
        Width of the hidden layer on each side.

    Raises
    ------
    ValueError
        When a size is not positive.
    """

    def __init__(self, in_dim: int, latent: int = 8, hidden: int = 32):
        super().__init__()
        if latent < 1 or hidden < 1 or in_dim < 1:
            raise ValueError(f"in_dim, latent, hidden must be positive, got {in_dim}, {latent}, {hidden}")
        self.encoder = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, latent))
        self.decoder = nn.Sequential(nn.Linear(latent, hidden), nn.GELU(), nn.Linear(hidden, in_dim))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode and decode.

        Parameters
        ----------
        x : torch.Tensor of float, shape (n, in_dim)

        Returns
        -------
        z : torch.Tensor, shape (n, latent)
            The embedding.
        x_hat : torch.Tensor, shape (n, in_dim)
            The reconstruction.
        """
        z = self.encoder(x)
        return z, self.decoder(z)


def fit_autoencoder(X, latent: int = 8, hidden: int = 32, epochs: int = 200, lr: float = 1e-2,
                    weight_decay: float = 1e-4, seed: int = 0) -> tuple[GeneAutoencoder, list[float]]:
    """Train a :class:`GeneAutoencoder` on standardised expression (full batch, Adam, MSE); chapter 7.

    The loop is :func:`oncolab.training.fit`.

    Parameters
    ----------
    X : array-like, shape (n_patients, n_genes)
        Standardised expression (e.g. from :class:`GenePreprocessor`), finite.
    latent, hidden : int, default 8 and 32
        Sizes of the embedding and of the hidden layer on each side.
    epochs, lr, weight_decay : int, float, float
        Adam's epochs, learning rate and weight decay.
    seed : int
        Seeds the initial weights (the global random state is left as it was): same seed,
        same weights.

    Returns
    -------
    tuple of (GeneAutoencoder, list of float)
        The model in eval mode and the mean squared reconstruction error of each epoch.

    Raises
    ------
    ValueError
        When ``X`` is not a finite 2-D array, ``epochs`` is not a positive integer, or a size
        is not positive.
    """
    X = torch.as_tensor(np.asarray(X, np.float32))
    if X.ndim != 2 or not torch.isfinite(X).all():
        raise ValueError(f"X must be a finite 2-D array, got shape {tuple(X.shape)}")
    if isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        model = GeneAutoencoder(X.shape[1], latent, hidden)

    def loss_fn(m, x):
        return torch.mean((m(x)[1] - x) ** 2)

    res = fit(model, loss_fn, X, epochs=int(epochs), lr=lr, weight_decay=weight_decay, seed=int(seed))
    return model, res.curve("train_loss")
