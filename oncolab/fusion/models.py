"""The seven fusion strategies as ``nn.Module`` s, modality dropout, and the two heads.

Taught in chapter 10 ("Fusion strategies").

=============  ================================================================================
early          concatenate the (projected) embeddings and the presence mask; a missing
               modality's block is zeroed *and* its mask bit is 0, so the model can tell
               "absent" from "measured as zero"
late           one head per modality; the predictions of the present modalities are averaged
               (``stack=True``: weighted by learned, per-modality weights renormalised over the
               present ones)
gated          a gated multimodal unit (Arevalo et al. 2017): ``h_m = tanh(W_m x_m)``,
               gates ``g = softmax(W_g [x_1..x_M])`` over the present modalities, ``z = sum g_m h_m``
attention      a score per modality per patient from its own embedding, softmax over the
               present modalities; the weights are returned to explain each prediction
bilinear       Kronecker product of ``[h_m, 1]`` over modalities (Pathomic Fusion, PORPOISE): all
               products of features across modalities, the appended 1 keeping every
               lower-order term; a missing modality contributes ``[0, ..., 0, 1]``, i.e. only
               the terms without it
crossattn      a transformer over modality tokens plus a [CLS] token; absent modalities are
               masked out of attention (``key_padding_mask``); the CLS token's attention to each
               modality (averaged over heads) is returned
hybrid         early fusion inside the structured group, late fusion across groups (MEDFUSION's
               hybrid): the modalities named ``late`` (by default the images, radiograph and
               pathology) each get a head of their own; the others (tables, findings from
               text) are fused early: their projected embeddings, zeroed where absent, and
               their presence bits are concatenated into one head (a hidden layer, then the
               outputs). The prediction is the mean over the *members* present: each late
               modality the patient has, and the early group when the patient has any of its
               modalities. With no late modality it is early fusion with its own head; with
               no early one, late fusion
=============  ================================================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["FUSIONS", "IMAGE_MODALITIES", "AttentionFusion", "BilinearFusion", "CrossAttentionFusion",
           "EarlyFusion", "FusionOutput", "GatedFusion", "HybridFusion", "LateFusion", "MultimodalModel",
           "OrdinalHead", "make_fusion", "modality_dropout"]

NEG = -1e9
#: the modalities :class:`HybridFusion` gives heads of their own unless told otherwise
IMAGE_MODALITIES: tuple[str, ...] = ("radiograph", "pathology")


@dataclass
class FusionOutput:
    logits: torch.Tensor  # (n, n_classes)
    risk: torch.Tensor  # (n,)
    weights: torch.Tensor | None  # (n, M) or None


def _check_inputs(modalities: Sequence[str], dims: dict[str, int], x: dict[str, torch.Tensor],
                  mask: torch.Tensor) -> int:
    missing = [m for m in modalities if m not in x]
    if missing:
        raise ValueError(f"missing embedding for modality {missing[0]!r}; expected {list(modalities)}")
    n = len(mask)
    if mask.shape != (n, len(modalities)):
        raise ValueError(f"mask must have shape (n, {len(modalities)}), got {tuple(mask.shape)}")
    for m in modalities:
        if x[m].shape != (n, dims[m]):
            raise ValueError(f"embedding {m!r} must have shape ({n}, {dims[m]}), got {tuple(x[m].shape)}")
    if not bool(mask.any(1).all()):
        raise ValueError(f"patient at row {int((~mask.any(1)).nonzero()[0])} has no modality present")
    return n


def modality_dropout(mask: torch.Tensor, p: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Drop each present modality with probability ``p``, keeping at least one per patient."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"modality dropout p must lie in [0, 1), got {p}")
    if p == 0:
        return mask
    keep = torch.rand(mask.shape, generator=generator) >= p
    new = mask & keep
    empty = ~new.any(1)
    if empty.any():  # restore one present modality at random for patients left with none
        scores = torch.rand(mask.shape, generator=generator) * mask
        pick = scores.argmax(1)
        new[empty, pick[empty]] = True
    return new


class _Base(nn.Module):
    outputs_predictions = False

    def __init__(self, dims: dict[str, int], hidden: int = 32, dropout: float = 0.1):
        super().__init__()
        if not dims:
            raise ValueError("at least one modality is needed")
        bad = {m: d for m, d in dims.items() if not isinstance(d, int) or d < 1}
        if bad:
            raise ValueError(f"embedding sizes must be positive integers, got {bad}")
        self.modalities = tuple(dims)
        self.dims = dict(dims)
        self.hidden = int(hidden)
        self.proj = nn.ModuleDict({m: nn.Sequential(nn.Linear(d, hidden), nn.GELU(), nn.Dropout(dropout))
                                   for m, d in dims.items()})

    def project(self, x, mask):
        _check_inputs(self.modalities, self.dims, x, mask)
        return torch.stack([self.proj[m](x[m]) for m in self.modalities], 1)  # (n, M, h)


class EarlyFusion(_Base):
    def __init__(self, dims, hidden=32, dropout=0.1):
        super().__init__(dims, hidden, dropout)
        self.out_dim = hidden * len(dims) + len(dims)

    def forward(self, x, mask):
        h = self.project(x, mask) * mask[..., None]
        return torch.cat([h.flatten(1), mask.float()], 1), None


class LateFusion(_Base):
    """Per-modality heads (3 logits + 1 risk each), averaged over the present modalities."""

    outputs_predictions = True

    def __init__(self, dims, hidden=32, dropout=0.1, n_out: int = 4, stack: bool = False):
        super().__init__(dims, hidden, dropout)
        self.heads = nn.ModuleDict({m: nn.Linear(hidden, n_out) for m in dims})
        self.stack = bool(stack)
        self.logw = nn.Parameter(torch.zeros(len(dims))) if stack else None
        self.out_dim = n_out

    def forward(self, x, mask):
        h = self.project(x, mask)
        preds = torch.stack([self.heads[m](h[:, j]) for j, m in enumerate(self.modalities)], 1)
        logw = self.logw if self.logw is not None else torch.zeros(len(self.modalities))
        w = torch.softmax(logw.expand(len(mask), -1).masked_fill(~mask, NEG), 1)
        return (w[..., None] * preds).sum(1), w


class GatedFusion(_Base):
    def __init__(self, dims, hidden=32, dropout=0.1):
        super().__init__(dims, hidden, dropout)
        self.h = nn.ModuleDict({m: nn.Linear(hidden, hidden) for m in dims})
        self.gate = nn.Linear(hidden * len(dims), len(dims))
        self.out_dim = hidden

    def forward(self, x, mask):
        p = self.project(x, mask) * mask[..., None]
        hs = torch.stack([torch.tanh(self.h[m](p[:, j])) for j, m in enumerate(self.modalities)], 1)
        g = torch.softmax(self.gate(p.flatten(1)).masked_fill(~mask, NEG), 1)
        return (g[..., None] * hs).sum(1), g


class AttentionFusion(_Base):
    def __init__(self, dims, hidden=32, dropout=0.1):
        super().__init__(dims, hidden, dropout)
        self.score = nn.Sequential(nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, 1))
        self.out_dim = hidden

    def forward(self, x, mask):
        h = self.project(x, mask)
        a = torch.softmax(self.score(h).squeeze(-1).masked_fill(~mask, NEG), 1)
        return (a[..., None] * h).sum(1), a


class BilinearFusion(_Base):
    """Kronecker product of ``[h_m, 1]`` over modalities, each ``h_m`` of size ``rank``."""

    def __init__(self, dims, hidden=32, dropout=0.1, rank: int = 4):
        super().__init__(dims, hidden, dropout)
        if (rank + 1) ** len(dims) > 200_000:
            raise ValueError(f"rank {rank} with {len(dims)} modalities gives {(rank + 1) ** len(dims)} "
                             "product features; choose a smaller rank")
        self.small = nn.ModuleDict({m: nn.Linear(hidden, rank) for m in dims})
        self.out = nn.Sequential(nn.Linear((rank + 1) ** len(dims), hidden), nn.GELU(), nn.Dropout(dropout))
        self.out_dim = hidden

    def forward(self, x, mask):
        p = self.project(x, mask)
        n = len(mask)
        kron = torch.ones(n, 1)
        for j, m in enumerate(self.modalities):
            hm = torch.tanh(self.small[m](p[:, j])) * mask[:, j:j + 1]
            hm = torch.cat([hm, torch.ones(n, 1)], 1)
            kron = (kron[:, :, None] * hm[:, None, :]).flatten(1)
        return self.out(kron), None


class CrossAttentionFusion(_Base):
    def __init__(self, dims, hidden=32, dropout=0.1, heads: int = 4, layers: int = 1):
        super().__init__(dims, hidden, dropout)
        if hidden % heads:
            raise ValueError(f"hidden ({hidden}) must be divisible by heads ({heads})")
        self.type_emb = nn.Parameter(torch.randn(len(dims), hidden) * 0.02)
        self.cls = nn.Parameter(torch.zeros(1, 1, hidden))
        self.layers = nn.ModuleList(
            nn.MultiheadAttention(hidden, heads, dropout=dropout, batch_first=True) for _ in range(layers))
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(layers))
        self.ff = nn.ModuleList(nn.Sequential(nn.Linear(hidden, 2 * hidden), nn.GELU(), nn.Linear(2 * hidden, hidden))
                                for _ in range(layers))
        self.out_dim = hidden

    def forward(self, x, mask):
        h = self.project(x, mask) + self.type_emb
        n = len(mask)
        tok = torch.cat([self.cls.expand(n, -1, -1), h], 1)
        pad = torch.cat([torch.zeros(n, 1, dtype=torch.bool), ~mask], 1)
        attn = None
        for mha, norm, ff in zip(self.layers, self.norms, self.ff):
            a, w = mha(tok, tok, tok, key_padding_mask=pad, need_weights=True, average_attn_weights=True)
            tok = norm(tok + a)
            tok = tok + ff(tok)
            attn = w[:, 0, 1:]  # CLS -> modalities
        attn = attn / attn.sum(1, keepdim=True).clamp_min(1e-12)
        return tok[:, 0], attn


class HybridFusion(_Base):
    """Early fusion of the structured modalities, late fusion with each of the ``late`` ones.

    Taught in chapter 10 (the module docstring gives the definition). Each member (the early
    group, each late modality) outputs ``n_out`` numbers (the class logits and the risk);
    they are averaged over the members a patient has, as :class:`LateFusion` averages its
    heads. A member whose modalities are all absent has no say, and an absent modality of
    the early group reaches its head neither as values (zeroed) nor as a presence bit of 1.

    Parameters
    ----------
    dims : dict of str to int
        Embedding size of each modality, in the model's modality order.
    hidden : int
        Width of the projections and of the early group's hidden layer.
    dropout : float
        Dropout after each projection and in the early head.
    n_out : int
        Outputs of each member: the number of classes plus one (the risk).
    late : sequence of str
        The modalities with a head of their own (those of ``dims`` among them); the rest are
        fused early.
    """

    outputs_predictions = True

    def __init__(self, dims, hidden=32, dropout=0.1, n_out: int = 4, late: Sequence[str] = IMAGE_MODALITIES):
        super().__init__(dims, hidden, dropout)
        if isinstance(late, str):
            raise TypeError(f"late must be a sequence of modality names, not one string ({late!r})")
        self.late = tuple(m for m in self.modalities if m in set(late))
        self.early = tuple(m for m in self.modalities if m not in set(late))
        self.heads = nn.ModuleDict({m: nn.Linear(hidden, n_out) for m in self.late})
        k = len(self.early)
        self.early_head = (nn.Sequential(nn.Linear(hidden * k + k, hidden), nn.GELU(), nn.Dropout(dropout),
                                         nn.Linear(hidden, n_out)) if k else None)
        self.out_dim = n_out

    def forward(self, x, mask):
        h = self.project(x, mask)
        index = {m: j for j, m in enumerate(self.modalities)}
        preds, present = [], []
        if self.early:
            cols = [index[m] for m in self.early]
            m_early = mask[:, cols]
            z = torch.cat([(h[:, cols] * m_early[..., None]).flatten(1), m_early.float()], 1)
            preds.append(self.early_head(z))
            present.append(m_early.any(1))
        for m in self.late:
            preds.append(self.heads[m](h[:, index[m]]))
            present.append(mask[:, index[m]])
        preds, present = torch.stack(preds, 1), torch.stack(present, 1).float()
        w = present / present.sum(1, keepdim=True)
        return (w[..., None] * preds).sum(1), None


FUSIONS = {"early": EarlyFusion, "late": LateFusion, "gated": GatedFusion, "attention": AttentionFusion,
           "bilinear": BilinearFusion, "crossattn": CrossAttentionFusion, "hybrid": HybridFusion}


def make_fusion(name: str, dims: dict[str, int], seed: int = 0, n_classes: int = 3,
                head: str = "softmax", **kwargs) -> MultimodalModel:
    """A :class:`MultimodalModel` with the fusion ``name`` (one of :data:`FUSIONS`).

    Taught in chapter 10. The initial weights depend on ``seed`` only (the global random
    state is left as it was).

    Parameters
    ----------
    name : str
        A key of :data:`FUSIONS`.
    dims : dict of str to int
        Embedding size of each modality, in the model's modality order.
    seed : int
        Seeds the initial weights.
    n_classes : int
        Number of diagnosis classes.
    head : {"softmax", "ordinal"}
        The diagnosis head (unused by the fusions whose members predict: late, hybrid).
    **kwargs
        Settings of the fusion class (``hidden``, ``dropout``; ``late`` for hybrid, ...).

    Returns
    -------
    MultimodalModel
    """
    if name not in FUSIONS:
        raise ValueError(f"unknown fusion {name!r}; expected one of {list(FUSIONS)}")
    if FUSIONS[name].outputs_predictions:
        kwargs.setdefault("n_out", n_classes + 1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return MultimodalModel(FUSIONS[name](dims, **kwargs), n_classes, head)


class OrdinalHead(nn.Module):
    """Cumulative-logit (proportional odds) head: one score ``s = w.z``, ``P(y <= k) = sigmoid(t_k - s)``.

    Benign < intermediate < malignant is an order; this head uses it, with ``d + K - 1``
    parameters instead of the softmax head's ``K (d + 1)``. Returns log class probabilities,
    which act as logits (their softmax is the probabilities).
    """

    def __init__(self, in_dim: int, n_classes: int = 3):
        super().__init__()
        self.score = nn.Linear(in_dim, 1)
        self.first = nn.Parameter(torch.tensor(-1.0))
        self.log_gaps = nn.Parameter(torch.zeros(n_classes - 2))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        s = self.score(z)
        cuts = torch.cat([self.first.view(1), self.first + torch.cumsum(torch.exp(self.log_gaps) * 2.0, 0)])
        cdf = torch.sigmoid(cuts - s)  # (n, K-1)
        cdf = torch.cat([torch.zeros_like(s), cdf, torch.ones_like(s)], 1)
        return torch.log((cdf[:, 1:] - cdf[:, :-1]).clamp_min(1e-9))


class MultimodalModel(nn.Module):
    """Fusion followed by a diagnosis head and a risk head (Cox log-hazard).

    ``head="softmax"`` gives ``n_classes`` free logits, ``"ordinal"`` an :class:`OrdinalHead`.
    For late and hybrid fusion the members' heads already produce the logits and the risk.
    """

    def __init__(self, fusion: nn.Module, n_classes: int = 3, head: str = "softmax"):
        super().__init__()
        if head not in ("softmax", "ordinal"):
            raise ValueError(f"head must be 'softmax' or 'ordinal', got {head!r}")
        self.fusion = fusion
        self.n_classes = int(n_classes)
        self.head = head
        if getattr(fusion, "outputs_predictions", False):
            if fusion.out_dim != n_classes + 1:
                raise ValueError(f"{type(fusion).__name__} must output {n_classes + 1} numbers, has "
                                 f"{fusion.out_dim}")
            self.diagnosis = self.risk = None
        else:
            self.diagnosis = (OrdinalHead(fusion.out_dim, n_classes) if head == "ordinal"
                              else nn.Linear(fusion.out_dim, n_classes))
            self.risk = nn.Linear(fusion.out_dim, 1)

    def forward(self, x: dict[str, torch.Tensor], mask: torch.Tensor) -> FusionOutput:
        z, w = self.fusion(x, mask)
        if self.diagnosis is None:
            return FusionOutput(z[:, : self.n_classes], z[:, self.n_classes], w)
        return FusionOutput(self.diagnosis(z), self.risk(z).squeeze(-1), w)
