"""Training a fusion model: full-batch Adam, multitask loss, modality dropout, early stopping.

Taught in chapter 10 ("Fusion strategies").

The loss is ``cross_entropy(diagnosis) + survival_weight * cox_ph_loss(risk)`` for
``task="multitask"``, one term alone for ``"diagnosis"`` or ``"survival"``; the Cox partial
likelihood comes from :func:`oncolab.survival.cox_ph_loss` (chapter 9). With validation data
the weights of the epoch with the lowest validation loss are kept.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .models import MultimodalModel, modality_dropout

__all__ = ["TASKS", "TrainResult", "predict_model", "to_tensors", "train_model"]

TASKS = ("multitask", "diagnosis", "survival")


@dataclass
class TrainResult:
    model: MultimodalModel
    history: list[dict] = field(default_factory=list)
    best_epoch: int = -1


def to_tensors(X: dict, mask) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """NumPy (or tensor) embeddings and mask as float32 tensors and a bool mask."""
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
        from oncolab.survival import cox_ph_loss

        terms["cox"] = cox_ph_loss(out.risk, time, event).float()
    total = terms.get("ce", 0.0) + survival_weight * terms.get("cox", 0.0)
    return total, {k: float(v.detach()) for k, v in terms.items()}


def train_model(model: MultimodalModel, X: dict, mask, y, time, event, *, task: str = "multitask",
                epochs: int = 300, lr: float = 3e-3, weight_decay: float = 1e-3, survival_weight: float = 1.0,
                p_modality_dropout: float = 0.0, val: tuple | None = None, patience: int = 60,
                seed: int = 0, progress: bool = False) -> TrainResult:
    """Train ``model`` in place on full batches; return it with the loss history.

    ``val`` = ``(X_val, mask_val, y_val, time_val, event_val)`` enables early stopping.
    Same seed, same weights (dropout and modality dropout draw from seeded generators).
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    xt, mt = to_tensors(X, mask)
    yt = torch.as_tensor(np.asarray(y), dtype=torch.long)
    n = len(mt)
    if len(yt) != n or len(np.asarray(time)) != n or len(np.asarray(event)) != n:
        raise ValueError(f"X, mask, y, time and event must describe the same {n} patients")
    time_t = torch.as_tensor(np.asarray(time, np.float64))
    event_t = torch.as_tensor(np.asarray(event, bool))
    if val is not None:
        xv, mv = to_tensors(val[0], val[1])
        yv = torch.as_tensor(np.asarray(val[2]), dtype=torch.long)
        tv, ev = torch.as_tensor(np.asarray(val[3], np.float64)), torch.as_tensor(np.asarray(val[4], bool))
    gen = torch.Generator().manual_seed(int(seed))
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    result = TrainResult(model)
    best, best_state, since = np.inf, None, 0
    it = range(epochs)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc="training fusion", leave=False)
    with torch.random.fork_rng(devices=[]), _one_thread():
        torch.manual_seed(int(seed))
        for epoch in it:
            model.train()
            m_in = modality_dropout(mt, p_modality_dropout, gen)
            opt.zero_grad()
            loss, parts = _loss(model(xt, m_in), yt, time_t, event_t, task, survival_weight)
            loss.backward()
            opt.step()
            rec = {"epoch": epoch, "train_loss": float(loss.detach()), **{f"train_{k}": v for k, v in parts.items()}}
            if val is not None:
                model.eval()
                with torch.no_grad():
                    vloss, vparts = _loss(model(xv, mv), yv, tv, ev, task, survival_weight)
                rec["val_loss"] = float(vloss)
                if float(vloss) < best - 1e-5:
                    best, best_state, since = float(vloss), copy.deepcopy(model.state_dict()), 0
                    result.best_epoch = epoch
                else:
                    since += 1
            result.history.append(rec)
            if val is not None and since >= patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return result


class _one_thread:
    """Run on one CPU thread: these models are tiny, and on a busy machine several threads
    spend more time waiting for each other than computing (30x slower measured on 2 cores)."""

    def __enter__(self):
        self.prev = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc):
        torch.set_num_threads(self.prev)


@torch.no_grad()
def predict_model(model: nn.Module, X: dict, mask) -> dict[str, np.ndarray]:
    """Class probabilities, risk and (where the fusion has them) modality weights, as arrays."""
    model.eval()
    xt, mt = to_tensors(X, mask)
    with _one_thread():
        out = model(xt, mt)
    res = {"proba": torch.softmax(out.logits, 1).numpy().astype(np.float64),
           "risk": out.risk.numpy().astype(np.float64)}
    if out.weights is not None:
        res["weights"] = out.weights.numpy().astype(np.float64)
    return res
