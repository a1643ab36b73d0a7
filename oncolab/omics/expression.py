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
    """Counts per million: each patient's counts divided by its library size, times 1e6."""
    x = _counts(counts)
    lib = x.sum(1, keepdims=True)
    if (lib == 0).any():
        raise ValueError(f"patient at row {int(np.argmax(lib.ravel() == 0))} has no reads at all (library size 0)")
    return x / lib * 1e6


def log_cpm(counts, prior: float = 1.0) -> np.ndarray:
    """``log2(CPM + prior)``, the usual scale for expression."""
    if prior <= 0:
        raise ValueError(f"prior must be > 0, got {prior}")
    return np.log2(cpm(counts) + prior)


class GenePreprocessor:
    """log-CPM, then per-gene standardisation fitted on training patients only.

    ``fit(train_counts)`` remembers the genes (by name when given a DataFrame), their means
    and standard deviations; ``transform`` applies them to any patients, checking that the
    same genes come in the same order. Genes that do not vary in training get a spread of 1.
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
        x = self._scale(counts)
        if len(x) < 2:
            raise ValueError(f"need at least 2 training patients to fit a scaling, got {len(x)}")
        self.genes = list(counts.columns) if isinstance(counts, pd.DataFrame) else [f"g{i}" for i in range(x.shape[1])]
        self.mean_ = x.mean(0)
        sd = x.std(0, ddof=1)
        self.std_ = np.where(sd > 1e-12, sd, 1.0)
        return self

    def transform(self, counts) -> np.ndarray:
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
        return self.fit(counts).transform(counts)

    # save / load without pickle
    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        return ({"log": self.log, "prior": self.prior, "genes": self.genes},
                {"mean": self.mean_, "std": self.std_})

    @classmethod
    def from_state(cls, config: dict, arrays: dict[str, np.ndarray]) -> GenePreprocessor:
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
    """

    def __init__(self, n_components: int):
        if isinstance(n_components, bool) or not isinstance(n_components, numbers.Integral) or n_components < 1:
            raise ValueError(f"n_components must be a positive integer, got {n_components!r}")
        self.n_components = int(n_components)

    def fit(self, X) -> PCA:
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
        if not hasattr(self, "components_"):
            raise RuntimeError("PCA is not fitted: call fit(X) first")
        X = np.asarray(X, float)
        if X.ndim != 2 or X.shape[1] != self.components_.shape[1]:
            raise ValueError(f"expected {self.components_.shape[1]} features, got shape {X.shape}")
        return (X - self.mean_) @ self.components_.T

    def fit_transform(self, X) -> np.ndarray:
        return self.fit(X).transform(X)

    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        return {"n_components": self.n_components}, {"mean": self.mean_, "components": self.components_,
                                                     "explained_variance": self.explained_variance_,
                                                     "explained_variance_ratio": self.explained_variance_ratio_}

    @classmethod
    def from_state(cls, config: dict, arrays: dict[str, np.ndarray]) -> PCA:
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
        return self.net(x)


class GeneAutoencoder(nn.Module):
    """Encoder (genes -> ``latent`` numbers) and decoder back; trained to reconstruct."""

    def __init__(self, in_dim: int, latent: int = 8, hidden: int = 32):
        super().__init__()
        if latent < 1 or hidden < 1 or in_dim < 1:
            raise ValueError(f"in_dim, latent, hidden must be positive, got {in_dim}, {latent}, {hidden}")
        self.encoder = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, latent))
        self.decoder = nn.Sequential(nn.Linear(latent, hidden), nn.GELU(), nn.Linear(hidden, in_dim))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
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
    latent, hidden : int
        Sizes of the embedding and of the hidden layers.
    epochs, lr, weight_decay : int, float, float
        Adam's epochs, learning rate and weight decay.
    seed : int
        Seeds the initial weights (the global random state is left as it was): same seed,
        same weights.

    Returns
    -------
    tuple of (GeneAutoencoder, list of float)
        The model in eval mode and the mean squared reconstruction error of each epoch.
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
