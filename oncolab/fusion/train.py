"""Training a fusion model: full-batch Adam, multitask loss, modality dropout, early stopping.

Taught in chapter 10 ("Fusion strategies").

The loss is ``cross_entropy(diagnosis) + survival_weight * cox_ph_loss(risk)`` for
``task="multitask"``, one term alone for ``"diagnosis"`` or ``"survival"``; the Cox partial
likelihood comes from :func:`oncolab.survival.cox_ph_loss` (chapter 9). The loop is
:func:`oncolab.training.fit`: with validation data the weights of the epoch with the lowest
validation loss are kept.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..survival.losses import cox_ph_loss
from ..training import FitResult, fit, limit_threads
from .models import MultimodalModel, modality_dropout

__all__ = ["TASKS", "predict_model", "to_tensors", "train_model"]

TASKS = ("multitask", "diagnosis", "survival")


def to_tensors(X: dict, mask) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Embeddings and presence mask as tensors, checked; chapter 10.

    Parameters
    ----------
    X : dict of str to array-like
        One ``(n, d_m)`` embedding per modality (NumPy or tensor).
    mask : array-like of bool, shape (n, M)
        Presence mask (True = acquired).

    Returns
    -------
    tuple of (dict of str to torch.Tensor, torch.Tensor)
        float32 embeddings and a bool mask.
    """
    xt = {m: torch.as_tensor(np.asarray(v, np.float32)) for m, v in X.items()}
    for m, v in xt.items():
        if not torch.isfinite(v).all():
            raise ValueError(f"embedding {m!r} has NaN or infinite values; fill or mask them first")
    return xt, torch.as_tensor(np.asarray(mask, bool))


def _loss(out, y, time, event, task: str, survival_weight: float):
    terms = {}
    if task in ("multitask", "diagnosis"):
        terms["ce"] = F.cross_entropy(out.logits, y)
    if task in ("multitask", "survival"):
        terms["cox"] = cox_ph_loss(out.risk, time, event).float()
    total = terms.get("ce", 0.0) + survival_weight * terms.get("cox", 0.0)
    return total, {k: float(v.detach()) for k, v in terms.items()}


def _rows(X, mask, y, time, event, what: str) -> tuple:
    xt, mt = to_tensors(X, mask)
    yt = torch.as_tensor(np.asarray(y), dtype=torch.long)
    n = len(mt)
    if len(yt) != n or len(np.asarray(time)) != n or len(np.asarray(event)) != n:
        raise ValueError(f"{what}: X, mask, y, time and event must describe the same {n} patients")
    return (xt, mt, yt, torch.as_tensor(np.asarray(time, np.float64)), torch.as_tensor(np.asarray(event, bool)))


def train_model(model: MultimodalModel, X: dict, mask, y, time, event, *, task: str = "multitask",
                epochs: int = 300, lr: float = 3e-3, weight_decay: float = 1e-3, survival_weight: float = 1.0,
                p_modality_dropout: float = 0.0, val: tuple | None = None, patience: int = 60,
                seed: int = 0, progress: bool = False) -> FitResult:
    """Train a fusion model in place on full batches with Adam; chapter 10.

    The loop is :func:`oncolab.training.fit` (on one CPU thread); the loss is the module
    docstring's. Modality dropout hides present modalities of the training patients at random
    in every epoch (never for validation).

    Parameters
    ----------
    model : MultimodalModel
        The model to train (from :func:`~oncolab.fusion.make_fusion`).
    X : dict of str to array-like
        One ``(n, d_m)`` embedding per modality.
    mask : array-like of bool, shape (n, M)
        Presence mask.
    y : array-like of int, shape (n,)
        Diagnosis classes.
    time, event : array-like, shape (n,)
        Survival times and event flags.
    task : {"multitask", "diagnosis", "survival"}
        Which loss terms to train.
    epochs, lr, weight_decay : int, float, float
        Adam's epochs (at most), learning rate and weight decay.
    survival_weight : float
        Weight of the Cox term in the multitask loss.
    p_modality_dropout : float
        Probability of hiding each present modality of a training patient, in ``[0, 1)``.
    val : tuple or None
        ``(X_val, mask_val, y_val, time_val, event_val)``: enables early stopping; the weights
        of the epoch with the lowest validation loss are kept.
    patience : int
        Epochs without a better validation loss before stopping.
    seed : int
        Seeds dropout and modality dropout: same seed, same weights.
    progress : bool
        Show a progress bar.

    Returns
    -------
    oncolab.training.FitResult
        The model and its history: per epoch ``train_loss``, ``train_ce`` / ``train_cox``
        (the terms), and with ``val`` the same for validation.
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    train = _rows(X, mask, y, time, event, "training data")
    val_rows = _rows(*val, "validation data") if val is not None else None
    gen = torch.Generator().manual_seed(int(seed))

    def loss_fn(m, batch):
        x, present, yb, tb, eb = batch
        if m.training:
            present = modality_dropout(present, p_modality_dropout, gen)
        return _loss(m(x, present), yb, tb, eb, task, survival_weight)

    return fit(model, loss_fn, train, val=val_rows, epochs=epochs, lr=lr, weight_decay=weight_decay,
               patience=patience, seed=seed, threads=1, progress=progress, desc="training fusion")


@torch.no_grad()
def predict_model(model: nn.Module, X: dict, mask) -> dict[str, np.ndarray]:
    """Class probabilities, risk and (where the fusion has them) modality weights; chapter 10.

    Parameters
    ----------
    model : torch.nn.Module
        A trained :class:`~oncolab.fusion.MultimodalModel` (put in eval mode here).
    X : dict of str to array-like
        One ``(n, d_m)`` embedding per modality.
    mask : array-like of bool, shape (n, M)
        Presence mask.

    Returns
    -------
    dict of str to numpy.ndarray
        ``"proba"`` (n, n_classes), ``"risk"`` (n,), and ``"weights"`` (n, M) where the fusion
        returns modality weights; float64.
    """
    model.eval()
    xt, mt = to_tensors(X, mask)
    with limit_threads(1):
        out = model(xt, mt)
    res = {"proba": torch.softmax(out.logits, 1).numpy().astype(np.float64),
           "risk": out.risk.numpy().astype(np.float64)}
    if out.weights is not None:
        res["weights"] = out.weights.numpy().astype(np.float64)
    return res
