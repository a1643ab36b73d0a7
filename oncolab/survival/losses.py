"""Survival losses for PyTorch: the negative Cox partial likelihood and the discrete-time
(logistic hazard) negative log likelihood.

Taught in chapter 9 ("Deep survival models"); the fusion models of chapter 10 train their
risk head with :func:`cox_ph_loss`. The Cox loss equals the NumPy partial likelihood of
:func:`oncolab.survival.cox_partial_likelihood` (Breslow and Efron ties), checked in
``tests/test_survival_deep.py``.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["cox_ph_loss", "logistic_hazard_nll"]


def _as_tensor(x, like: torch.Tensor, dtype=None) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.to(device=like.device, dtype=dtype or x.dtype)
    return torch.as_tensor(np.ascontiguousarray(x), device=like.device, dtype=dtype)


def cox_ph_loss(risk: torch.Tensor, time, event, ties: str = "breslow") -> torch.Tensor:
    """Negative Cox log partial likelihood per event (a mean, so its scale does not grow with n).

    Taught in chapter 9 (DeepSurv's loss); the fusion models of chapter 10 train their risk
    head with it.

    Parameters
    ----------
    risk : torch.Tensor, shape (n,) or (n, 1)
        Log-risk scores ``eta`` (the network's output; higher = worse).
    time : array-like or torch.Tensor, shape (n,)
        Follow-up times, >= 0.
    event : array-like or torch.Tensor, shape (n,)
        Event flags, bool or 0/1.
    ties : {"breslow", "efron"}
        How tied event times are handled (see :mod:`oncolab.survival.cox`).

    Returns
    -------
    torch.Tensor
        ``-l(eta) / n_events``, a scalar, differentiable in ``risk``; numerically stable
        (log-sum-exp with a shift).

    Raises
    ------
    TypeError
        When ``risk`` is not a tensor.
    ValueError
        When ``ties`` is unknown, ``risk`` is not of shape (n,) or (n, 1), the lengths differ,
        ``event`` is not boolean or 0/1, a time is NaN or negative, or the batch holds no event
        (its partial likelihood is empty; use larger batches or sample events into each).
    """
    if ties not in ("breslow", "efron"):
        raise ValueError(f"ties must be 'breslow' or 'efron', got {ties!r}")
    if not isinstance(risk, torch.Tensor):
        raise TypeError(f"risk must be a torch.Tensor, got {type(risk).__name__}")
    eta = risk.reshape(-1) if risk.ndim == 2 and risk.shape[1] == 1 else risk
    if eta.ndim != 1:
        raise ValueError(f"risk must have shape (n,) or (n, 1), got {tuple(risk.shape)}")
    t = _as_tensor(time, eta, dtype=torch.float64).reshape(-1)
    ev = _as_tensor(event, eta).reshape(-1)
    if ev.dtype != torch.bool:
        if not torch.all((ev == 0) | (ev == 1)):
            raise ValueError("event must be boolean or 0/1")
        ev = ev.bool()
    n = eta.shape[0]
    if t.shape[0] != n or ev.shape[0] != n:
        raise ValueError(f"risk, time and event must have the same length, got {n}, {t.shape[0]}, {ev.shape[0]}")
    if torch.isnan(t).any() or (t < 0).any():
        raise ValueError("time must be non-negative and not NaN")
    n_ev = int(ev.sum())
    if n_ev == 0:
        raise ValueError("no events in this batch: the Cox partial likelihood is undefined")
    uniq, gi = torch.unique(t, return_inverse=True)               # ascending distinct times
    m = uniq.shape[0]
    shift = eta.detach().max()
    w = torch.exp(eta - shift)
    # sum of w over patients with time >= t_j: reverse cumulative sum over time groups
    per_time = torch.zeros(m, dtype=w.dtype, device=w.device).index_add(0, gi, w)
    S0 = torch.flip(torch.cumsum(torch.flip(per_time, [0]), 0), [0])
    evi = torch.nonzero(ev).reshape(-1)
    g_ev = gi[evi]
    if ties == "breslow":
        den = S0[g_ev]
    else:
        Sd = torch.zeros(m, dtype=w.dtype, device=w.device).index_add(0, g_ev, w[evi])
        d = torch.bincount(g_ev, minlength=m)
        # m-th event within its time group: 0..d-1 (order is irrelevant: only the count matters)
        order = torch.argsort(g_ev, stable=True)
        sorted_g = g_ev[order]
        start = torch.cumsum(d, 0) - d
        rank_sorted = torch.arange(len(evi), device=w.device) - start[sorted_g]
        rank = torch.empty_like(rank_sorted)
        rank[order] = rank_sorted
        c = rank.to(w.dtype) / d[g_ev].to(w.dtype)
        den = S0[g_ev] - c * Sd[g_ev]
    loglik = eta[evi].sum() - (torch.log(den) + shift).sum()
    return -loglik / n_ev


def logistic_hazard_nll(logits: torch.Tensor, bin_idx, event) -> torch.Tensor:
    """Negative log likelihood of the discrete-time logistic-hazard model, mean over patients.

    ``logits`` is (n, K): ``h_k = sigmoid(logits_k)`` is the probability of the event in bin
    ``k`` given survival to its start. A patient whose time falls in bin ``b`` (from
    :func:`~oncolab.survival.bin_index`, whose bins are closed on the right) contributes
    ``log h_b + sum_{k<b} log(1 - h_k)`` if the event was observed, and
    ``sum_{k<=b} log(1 - h_k)`` if censored (alive through bin ``b``). Taught in chapter 9
    (the loss of :class:`~oncolab.survival.DiscreteTimeSurvival`); the multi-scale models of
    chapter 14 and the data-parallel loop of chapter 15 train with it.

    Parameters
    ----------
    logits : torch.Tensor, shape (n, K)
        One logit per patient and bin.
    bin_idx : array-like of int, shape (n,)
        Each patient's bin, in ``0 .. K - 1``.
    event : array-like of bool or 0/1, shape (n,)
        True (1) where the event was observed.

    Returns
    -------
    torch.Tensor
        The mean negative log likelihood over patients (a scalar, differentiable in ``logits``).

    Raises
    ------
    ValueError
        When ``logits`` is not 2-D, the lengths differ, or a bin index is outside
        ``0 .. K - 1``.
    """
    if logits.ndim != 2:
        raise ValueError(f"logits must be (n, n_bins), got shape {tuple(logits.shape)}")
    n, K = logits.shape
    b = _as_tensor(bin_idx, logits, dtype=torch.long).reshape(-1)
    ev = _as_tensor(event, logits).reshape(-1).to(logits.dtype)
    if b.shape[0] != n or ev.shape[0] != n:
        raise ValueError(f"logits, bin_idx and event must have the same length, got {n}, {b.shape[0]}, {ev.shape[0]}")
    if (b < 0).any() or (b >= K).any():
        raise ValueError(f"bin_idx must be in [0, {K - 1}]")
    k = torch.arange(K, device=logits.device)[None, :]
    target = (k == b[:, None]).to(logits.dtype) * ev[:, None]         # 1 at the event bin
    mask = (k <= b[:, None]).to(logits.dtype)                          # bins the patient lived in
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return (bce * mask).sum(1).mean()
