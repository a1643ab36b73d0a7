"""Attention-based multiple-instance learning (MIL) over the tiles of a slide.

Taught in chapter 5 ("Pathology: tiles, stains and multiple-instance learning").

A slide carries one label (the diagnosis) but is seen as a *bag* of tiles, most of which say
little. Gated attention-MIL (Ilse, Tomczak & Welling 2018) learns a weight for every tile and
pools the tiles' embeddings ``h_k`` into one slide embedding::

    a_k = softmax_k( w^T ( tanh(V h_k) * sigmoid(U h_k) ) )      (gated attention)
    z   = sum_k a_k h_k                                            (the bag embedding)
    logits = classifier(z)

so the weights ``a_k`` (non-negative, summing to one over the bag) say which tiles the
prediction rests on. With ``gated=False`` the sigmoid gate is dropped (plain attention-MIL).

* :class:`GatedAttentionMIL`: the module; it takes one bag ``(N, D)`` or a padded batch
  ``(B, N, D)`` with a mask, and returns logits, bag embedding and attention weights;
* :func:`pad_bags`: a list of bags of different sizes -> padded tensor and mask;
* :func:`fit_mil` / :func:`predict_mil`: seeded training (the shared loop of
  :func:`oncolab.training.fit`) and batched prediction;
* :class:`TileModel`: a tile image encoder with, optionally, attention-MIL pooling over its
  tile embeddings (the deep tile stages of the complete system, chapter 12).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from ..training import fit, limit_threads

__all__ = ["GatedAttentionMIL", "MILOutput", "TileModel", "fit_mil", "pad_bags", "predict_mil"]


class MILOutput(NamedTuple):
    """What :class:`GatedAttentionMIL` returns.

    ``logits`` ``(B, C)``; ``embedding`` ``(B, H)``, the attention-pooled bag embedding;
    ``attention`` ``(B, N)``, each tile's weight (0 on padding; each row sums to 1). For an
    unbatched bag ``(N, D)`` the leading ``B`` dimension is dropped.
    """

    logits: torch.Tensor
    embedding: torch.Tensor
    attention: torch.Tensor


class GatedAttentionMIL(nn.Module):
    """Gated attention-MIL pooling with a linear classifier (Ilse et al. 2018).

    Parameters
    ----------
    in_dim: size of each tile's input embedding.
    n_classes: number of outputs (3 for benign / intermediate / malignant).
    hidden_dim: tiles are first mapped to ``hidden_dim`` by ``Linear -> ReLU -> Dropout``.
    attention_dim: size of the attention network's hidden layer (``V``, ``U``).
    dropout: dropout after the tile encoder.
    gated: use the sigmoid gate (True) or plain ``tanh`` attention (False).
    """

    def __init__(self, in_dim: int, n_classes: int = 3, hidden_dim: int = 64,
                 attention_dim: int = 32, dropout: float = 0.0, gated: bool = True):
        super().__init__()
        for name, v in (("in_dim", in_dim), ("n_classes", n_classes), ("hidden_dim", hidden_dim),
                        ("attention_dim", attention_dim)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout!r}")
        self.in_dim, self.n_classes, self.gated = in_dim, n_classes, bool(gated)
        self.encoder = nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.ReLU(), nn.Dropout(dropout))
        self.attention_V = nn.Linear(hidden_dim, attention_dim)
        self.attention_U = nn.Linear(hidden_dim, attention_dim) if gated else None
        self.attention_w = nn.Linear(attention_dim, 1)
        self.classifier = nn.Linear(hidden_dim, n_classes)

    def attention_scores(self, h: torch.Tensor) -> torch.Tensor:
        """Unnormalised attention score of each encoded tile, ``(..., N)``."""
        a = torch.tanh(self.attention_V(h))
        if self.gated:
            a = a * torch.sigmoid(self.attention_U(h))
        return self.attention_w(a).squeeze(-1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> MILOutput:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"expected a torch.Tensor of tile embeddings, got {type(x).__name__}")
        single = x.dim() == 2
        if single:
            x = x.unsqueeze(0)
        if x.dim() != 3 or x.shape[-1] != self.in_dim:
            raise ValueError(f"expected tile embeddings of shape (N, {self.in_dim}) or (B, N, {self.in_dim}); "
                             f"got {tuple(x.shape if not single else x.shape[1:])}")
        if x.shape[1] == 0:
            raise ValueError("a bag needs at least one tile; got an empty bag")
        if not torch.isfinite(x).all():
            raise ValueError("tile embeddings contain NaN or infinite values; expected finite values")
        if mask is None:
            mask = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
        else:
            mask = mask.to(torch.bool)
            if single and mask.dim() == 1:
                mask = mask.unsqueeze(0)
            if mask.shape != x.shape[:2]:
                raise ValueError(f"mask must have shape {tuple(x.shape[:2])}, got {tuple(mask.shape)}")
            if not mask.any(1).all():
                raise ValueError("every bag needs at least one unmasked tile; got a bag whose mask is all False")
        h = self.encoder(x)
        scores = self.attention_scores(h).masked_fill(~mask, float("-inf"))
        att = torch.softmax(scores, dim=1)
        z = torch.einsum("bn,bnh->bh", att, h)
        logits = self.classifier(z)
        if single:
            return MILOutput(logits[0], z[0], att[0])
        return MILOutput(logits, z, att)


def pad_bags(bags: Sequence[np.ndarray | torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack bags of different sizes ``(N_i, D)`` into ``(B, max N_i, D)`` float32 and a mask."""
    if len(bags) == 0:
        raise ValueError("expected at least one bag, got none")
    arrs = [torch.as_tensor(np.asarray(b), dtype=torch.float32) for b in bags]
    d = arrs[0].shape[-1] if arrs[0].dim() == 2 else None
    for i, a in enumerate(arrs):
        if a.dim() != 2 or a.shape[1] != d:
            raise ValueError(f"bag {i} has shape {tuple(a.shape)}; expected (N, {d}) like bag 0")
        if a.shape[0] == 0:
            raise ValueError(f"bag {i} is empty; every bag needs at least one tile")
    n = max(a.shape[0] for a in arrs)
    x = torch.zeros(len(arrs), n, d)
    mask = torch.zeros(len(arrs), n, dtype=torch.bool)
    for i, a in enumerate(arrs):
        x[i, :len(a)] = a
        mask[i, :len(a)] = True
    return x, mask


def fit_mil(bags: Sequence[np.ndarray], y: Sequence[int], n_classes: int | None = None,
            epochs: int = 60, lr: float = 3e-3, weight_decay: float = 1e-4, batch_size: int = 16,
            hidden_dim: int = 64, attention_dim: int = 32, dropout: float = 0.1,
            gated: bool = True, class_weight: bool = True, seed: int = 0,
            device: str = "cpu", num_threads: int | None = 1) -> GatedAttentionMIL:
    """Train a :class:`GatedAttentionMIL` on bags of tile embeddings with cross-entropy; chapter 5.

    The bags are padded once (:func:`pad_bags`) and trained in shuffled mini-batches with AdamW
    by :func:`oncolab.training.fit`.

    Parameters
    ----------
    bags : sequence of array-like
        One ``(N_i, D)`` array of tile embeddings per slide.
    y : sequence of int
        One class per bag, in ``0 .. n_classes - 1``.
    n_classes : int or None
        Number of classes; None: the largest label plus one.
    epochs, lr, weight_decay, batch_size : int, float, float, int
        AdamW's epochs, learning rate and weight decay; bags per mini-batch.
    hidden_dim, attention_dim, dropout, gated :
        The model's settings (see :class:`GatedAttentionMIL`).
    class_weight : bool
        Weigh the classes by inverse frequency in the loss.
    seed : int
        Seeds the weights, dropout and the mini-batch order (the global random state is left
        as it was): same seed, same weights.
    device : str
        Where to train.
    num_threads : int or None
        Caps PyTorch's CPU threads while training (restored afterwards): a model this small
        gains nothing from several threads and loses much on a busy machine; None leaves the
        setting alone.

    Returns
    -------
    GatedAttentionMIL
        The trained model in eval mode; ``model.history_`` holds the mean training loss of
        each epoch.
    """
    y_arr = np.asarray(y)
    if len(bags) != len(y_arr):
        raise ValueError(f"got {len(bags)} bags but {len(y_arr)} labels; expected one label per bag")
    if y_arr.dtype.kind not in "iu" or (y_arr < 0).any():
        raise ValueError(f"labels must be non-negative integers, got dtype {y_arr.dtype}")
    k = int(n_classes) if n_classes is not None else int(y_arr.max()) + 1
    if y_arr.max() >= k:
        raise ValueError(f"label {int(y_arr.max())} is out of range for n_classes={k}")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    x, mask = pad_bags(bags)
    yt = torch.as_tensor(y_arr, dtype=torch.long)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = GatedAttentionMIL(x.shape[-1], k, hidden_dim, attention_dim, dropout, gated).to(device)
    weight = None
    if class_weight:
        counts = torch.bincount(yt, minlength=k).float()
        weight = (counts.sum() / (k * counts.clamp(min=1))).to(device)
    ce = nn.CrossEntropyLoss(weight=weight)

    def loss_fn(m, batch):
        xb, mb, yb = batch
        return ce(m(xb, mb).logits, yb)

    res = fit(model, loss_fn, (x, mask, yt), epochs=epochs, lr=lr, weight_decay=weight_decay,
              optimizer="adamw", batch_size=batch_size, seed=seed, threads=num_threads, device=device)
    model.history_ = res.curve("train_loss")
    return model


@torch.no_grad()
def predict_mil(model: GatedAttentionMIL, bags: Sequence[np.ndarray], batch_size: int = 64,
                num_threads: int | None = 1) -> tuple[np.ndarray, list[np.ndarray]]:
    """Class probabilities and each bag's attention weights; chapter 5.

    Parameters
    ----------
    model : GatedAttentionMIL
        A trained model (put in eval mode here).
    bags : sequence of array-like
        One ``(N_i, D)`` array of tile embeddings per slide.
    batch_size : int
        Bags per forward pass.
    num_threads : int or None
        CPU threads while predicting (restored afterwards); None leaves the setting alone.

    Returns
    -------
    tuple of (numpy.ndarray, list of numpy.ndarray)
        Probabilities ``(B, C)`` and each bag's attention weights ``(N_i,)``.
    """
    with limit_threads(num_threads):
        return _predict(model, bags, batch_size)


def _predict(model, bags, batch_size):
    model.eval()
    device = next(model.parameters()).device
    probs, atts = [], []
    for start in range(0, len(bags), batch_size):
        chunk = list(bags[start:start + batch_size])
        x, mask = pad_bags(chunk)
        out = model(x.to(device), mask.to(device))
        probs.append(torch.softmax(out.logits, 1).cpu().numpy())
        for i, b in enumerate(chunk):
            atts.append(out.attention[i, :len(b)].cpu().numpy())
    if not probs:
        raise ValueError("expected at least one bag, got none")
    return np.concatenate(probs), atts


class TileModel(nn.Module):
    """A tile image encoder and, optionally, attention-MIL pooling over its tile embeddings.

    The complete system's deep tile stages (chapter 12) train ``encoder`` on tiles labelled with
    their slide's class, then ``pool`` (a :class:`GatedAttentionMIL`) on the encoder's tile
    embeddings; with ``pool=None`` the tiles are averaged. The prostate slide stages with a
    network tile backbone (chapter 14) keep their survival model over the tile embeddings
    (attention-MIL, CrossFusion or ConvFusion) as ``pool``. Keeping both in one module keeps
    their weights together (one ``state_dict``).

    Parameters
    ----------
    encoder : torch.nn.Module
        An image classifier (e.g. from :func:`oncolab.vision.image_encoder`).
    pool : torch.nn.Module or None
        The model over a slide's tile embeddings (:class:`GatedAttentionMIL`, or a survival
        model of :mod:`oncolab.vision.multiscale`).
    """

    def __init__(self, encoder: nn.Module, pool: nn.Module | None = None):
        super().__init__()
        self.encoder = encoder
        self.pool = pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The encoder's tile logits for a batch of tiles (pooling is applied per slide, outside)."""
        return self.encoder(x)
