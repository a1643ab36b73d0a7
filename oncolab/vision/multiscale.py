"""Whole slides at several magnifications: aligned multi-scale tiles and a CrossFusion-style model.

Taught in chapter 14 ("Whole slides at several scales, and MRI"), building on the
attention-MIL of chapter 5 (:mod:`oncolab.vision.mil`); chapter 15 streams the tiles.

A pathologist reads a slide at low magnification for the architecture of the glands and at
high magnification for the nuclei. A model that sees tiles at one magnification only sees
one of the two. CrossFusion (Soraki et al., arXiv 2503.02064) embeds the same regions at 5x,
10x and 20x, lets the middle scale attend to the others (cross-attention), runs a
transformer per scale and merges them for survival. This module has

* :func:`sample_locations` / :func:`aligned_tiles`: the same regions at several levels of a
  slide pyramid, centred on the same point (for any object with OpenSlide's
  ``read_region((x, y), level, (w, h))``: ``openslide.OpenSlide`` or
  :class:`oncolab.data.prostate.ProstateSlide`), read one region at a time;
* :func:`tile_features`: a cheap, frozen tile encoder (colour deconvolution, then
  blob-filter responses at three widths): the stand-in for a pathology foundation model;
* :func:`cross_attention`: scaled dot-product cross-attention by hand (checked against
  ``torch.nn.MultiheadAttention``);
* :class:`CrossFusionSurv`: the multi-scale model with a discrete-time survival head;
  the single-scale baseline is :class:`oncolab.vision.mil.GatedAttentionMIL` with one logit per
  time bin;
* :func:`time_bins`, :func:`fit_bag_survival`, :func:`predict_bag_survival`: the
  discrete-time training loop (loss :func:`oncolab.survival.losses.logistic_hazard_nll`) and
  survival curves.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from scipy import ndimage
from torch import nn

from ..survival.losses import logistic_hazard_nll
from .mil import GatedAttentionMIL

__all__ = [
    "CrossFusionSurv",
    "GatedAttentionMIL",
    "aligned_tiles",
    "cross_attention",
    "bin_index",
    "fit_bag_survival",
    "iter_aligned_tiles",
    "predict_bag_survival",
    "sample_locations",
    "slide_bag",
    "survival_at",
    "tile_features",
    "time_bins",
]


# --------------------------------------------------------------------------------------------
# tiling
# --------------------------------------------------------------------------------------------
def _level_downsample(slide, level: int) -> float:
    if not 0 <= level < slide.level_count:
        raise ValueError(f"level {level} does not exist; the slide has levels 0..{slide.level_count - 1}")
    return float(slide.level_downsamples[level])


def sample_locations(slide, n: int, footprint: int, seed: int = 0) -> np.ndarray:
    """``n`` distinct region centres (level-0 (x, y), int (n, 2)) on a grid of ``footprint`` cells.

    The slide is cut into ``footprint x footprint`` level-0 cells (the area the widest tile
    covers) and ``n`` cells are drawn without replacement with ``seed``; each centre is
    a cell's centre, so regions never overlap.
    """
    W, H = slide.dimensions
    if footprint < 1 or footprint > min(W, H):
        raise ValueError(f"footprint must lie in [1, {min(W, H)}] level-0 pixels, got {footprint}")
    gy, gx = H // footprint, W // footprint
    if not 1 <= n <= gy * gx:
        raise ValueError(f"n must lie in [1, {gy * gx}] (cells of {footprint} px), got {n}")
    cells = np.random.default_rng(seed).choice(gy * gx, size=n, replace=False)
    cy, cx = np.divmod(np.sort(cells), gx)
    return np.stack([cx * footprint + footprint // 2, cy * footprint + footprint // 2], 1).astype(int)


def aligned_tiles(slide, centers: np.ndarray, levels: Sequence[int] = (2, 1, 0),
                  tile: int = 32, one_read: bool = True) -> np.ndarray:
    """Tiles of ``tile x tile`` pixels at each level, all centred on the same level-0 points.

    Returns uint8 ``(n_centres, len(levels), tile, tile, 3)``. A tile at level ``k`` covers
    ``tile * downsample_k`` level-0 pixels, so the tiles of one centre are nested views of
    one region at decreasing magnification (order ``levels`` from low to high magnification
    to match CrossFusion's 5x, 10x, 20x). Regions are read one at a time.

    ``one_read=True`` reads each centre's widest region once, at the finest level asked
    for, and makes the coarser tiles by averaging blocks of pixels: exact for a pyramid
    whose levels are block means (as :class:`oncolab.data.prostate.ProstateSlide`'s are),
    close for a scanner's. ``one_read=False`` reads every level from the slide.
    """
    centers = np.asarray(centers)
    if centers.ndim != 2 or centers.shape[1] != 2:
        raise ValueError(f"centers must be (n, 2) level-0 (x, y) points, got shape {centers.shape}")
    if tile < 1:
        raise ValueError(f"tile must be a positive number of pixels, got {tile}")
    ds = [_level_downsample(slide, lv) for lv in levels]
    out = np.empty((len(centers), len(levels), tile, tile, 3), np.uint8)
    if one_read:
        fine = int(np.argmin(ds))
        factors = [int(round(d / ds[fine])) for d in ds]
        if any(abs(f * ds[fine] - d) > 1e-6 for f, d in zip(factors, ds)):
            raise ValueError(f"one_read needs downsamples that are multiples of the finest, got {ds}")
        big = tile * max(factors)
        half = int(round(big * ds[fine] / 2))
        for i, (x, y) in enumerate(centers):
            region = np.asarray(slide.read_region((int(x) - half, int(y) - half), int(levels[fine]),
                                                  (big, big)))[..., :3]
            for s, f in enumerate(factors):
                off = (big - tile * f) // 2
                crop = region[off:off + tile * f, off:off + tile * f].astype(np.float32)
                out[i, s] = np.round(crop.reshape(tile, f, tile, f, 3).mean((1, 3))).astype(np.uint8)
        return out
    for s, (level, d) in enumerate(zip(levels, ds)):
        half = int(round(tile * d / 2))
        for i, (x, y) in enumerate(centers):
            region = slide.read_region((int(x) - half, int(y) - half), int(level), (tile, tile))
            out[i, s] = np.asarray(region)[..., :3]  # OpenSlide returns RGBA
    return out


def iter_aligned_tiles(slide, levels: Sequence[int] = (2, 1, 0), tile: int = 32):
    """Every region of the slide, in raster order, as ``(centre, tiles (len(levels), T, T, 3))``.

    The regions are the cells of the widest tile's footprint; each is read when the loop
    asks for it and dropped after, so tiling a whole slide at several scales never holds
    more than one region in memory (chapter 15 measures it).
    """
    W, H = slide.dimensions
    footprint = int(tile * max(_level_downsample(slide, lv) for lv in levels))
    for y in range(footprint // 2, H - footprint // 2 + 1, footprint):
        for x in range(footprint // 2, W - footprint // 2 + 1, footprint):
            centre = np.array([[x, y]])
            yield (x, y), aligned_tiles(slide, centre, levels, tile)[0]


# --------------------------------------------------------------------------------------------
# a cheap frozen tile encoder
# --------------------------------------------------------------------------------------------
FEATURE_SIGMAS = (1.0, 2.0, 4.0)


def tile_features(tiles: np.ndarray) -> np.ndarray:
    """A frozen, hand-made tile embedding: float32 ``(..., 18)`` for uint8 tiles ``(..., T, T, 3)``.

    Colour deconvolution (``skimage.color.rgb2hed``) separates haematoxylin (nuclei) from
    eosin (stroma, cytoplasm). For each stain: mean, standard deviation, and the mean absolute
    value and root mean square of the scale-normalised Laplacian of Gaussian at widths 1, 2
    and 4 pixels (blob detectors: their responses say how large and how contrasted the blobs
    of the tile are: nuclei and chromatin at high magnification, glands and lumens at low). Plus the fraction
    of unstained pixels (lumen) and the mean gradient magnitude. The same encoder runs at
    every magnification, as a pathology foundation model would.
    """
    from skimage.color import rgb2hed

    t = np.asarray(tiles)
    if t.dtype != np.uint8 or t.ndim < 3 or t.shape[-1] != 3:
        raise ValueError(f"tiles must be uint8 (..., T, T, 3), got {t.dtype} {t.shape}")
    lead, (h, w) = t.shape[:-3], t.shape[-3:-1]
    flat = t.reshape(-1, h, w, 3)
    hed = rgb2hed(flat).astype(np.float32)
    feats = []
    for ch in (0, 1):
        x = hed[..., ch] * 10.0
        feats += [x.mean((1, 2)), x.std((1, 2))]
        for s in FEATURE_SIGMAS:
            # the Laplacian over the two image axes only (axis 0 is the batch of tiles)
            log = s * s * (ndimage.gaussian_filter(x, (0, s, s), order=(0, 2, 0), mode="reflect")
                           + ndimage.gaussian_filter(x, (0, s, s), order=(0, 0, 2), mode="reflect"))
            feats += [np.abs(log).mean((1, 2)), np.sqrt((log**2).mean((1, 2)))]
    od = -np.log((flat.astype(np.float32) + 1) / 256).sum(-1)
    feats.append((od < 0.25).mean((1, 2)))
    gy, gx = np.gradient(od, axis=(1, 2))
    feats.append(np.sqrt(gy**2 + gx**2).mean((1, 2)))
    return np.stack(feats, -1).astype(np.float32).reshape(*lead, len(feats))


def slide_bag(slide, n_tiles: int = 16, levels: Sequence[int] = (2, 1, 0), tile: int = 32,
              seed: int = 0) -> np.ndarray:
    """One slide as a multi-scale bag of tile features, float32 ``(len(levels), n_tiles, F)``."""
    footprint = int(tile * max(_level_downsample(slide, lv) for lv in levels))
    centers = sample_locations(slide, n_tiles, footprint, seed)
    tiles = aligned_tiles(slide, centers, levels, tile)  # (n, S, T, T, 3)
    return np.ascontiguousarray(tile_features(tiles).transpose(1, 0, 2))


# --------------------------------------------------------------------------------------------
# cross-attention and the CrossFusion-style model
# --------------------------------------------------------------------------------------------
def cross_attention(q: torch.Tensor, kv: torch.Tensor, w_q: torch.Tensor, w_k: torch.Tensor,
                    w_v: torch.Tensor, w_o: torch.Tensor, n_heads: int,
                    b_q=None, b_k=None, b_v=None, b_o=None,
                    key_padding_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Multi-head cross-attention by hand: queries from ``q`` (B, Nq, d), keys/values from ``kv``.

    ``softmax(Q K^T / sqrt(d_head)) V`` per head, heads concatenated and mixed by ``w_o``.
    ``key_padding_mask`` (B, Nk) is True where a key is padding. Returns the output
    (B, Nq, d) and the attention averaged over heads (B, Nq, Nk), the two things
    ``torch.nn.MultiheadAttention`` returns for the same weights.
    """
    B, Nq, d = q.shape
    if d % n_heads:
        raise ValueError(f"the embedding size {d} must be divisible by n_heads={n_heads}")
    dh = d // n_heads

    def heads(x, w, b):
        y = x @ w.T + (b if b is not None else 0)
        return y.view(B, -1, n_heads, dh).transpose(1, 2)  # (B, h, N, dh)

    Q, K, V = heads(q, w_q, b_q), heads(kv, w_k, b_k), heads(kv, w_v, b_v)
    scores = Q @ K.transpose(-1, -2) / math.sqrt(dh)
    if key_padding_mask is not None:
        scores = scores.masked_fill(key_padding_mask[:, None, None, :], float("-inf"))
    att = scores.softmax(-1)
    out = (att @ V).transpose(1, 2).reshape(B, Nq, d)
    out = out @ w_o.T + (b_o if b_o is not None else 0)
    return out, att.mean(1)


class _AttentionPool(nn.Module):
    """Gated attention pooling of a bag of tokens (as in chapter 5's MIL), respecting a mask."""

    def __init__(self, dim: int, hidden: int = 16):
        super().__init__()
        self.V, self.U, self.w = nn.Linear(dim, hidden), nn.Linear(dim, hidden), nn.Linear(hidden, 1)

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.w(torch.tanh(self.V(h)) * torch.sigmoid(self.U(h))).squeeze(-1)
        a = s.masked_fill(~mask, float("-inf")).softmax(-1)
        return torch.einsum("bn,bnd->bd", a, h), a


class CrossFusionSurv(nn.Module):
    """A CrossFusion-style multi-scale survival model over aligned tile embeddings.

    Input ``x`` is ``(B, S, N, F)``: ``S`` scales (low to high magnification) of the same
    ``N`` regions, each an ``F``-dimensional tile embedding; ``mask`` ``(B, N)`` marks real
    regions (True) and padding. Steps:

    1. a linear projection per scale to ``dim``, plus a learned scale embedding;
    2. cross-attention: the middle scale's tokens (queries) attend to the tokens of every
       other scale (keys and values), with a residual connection: 10x borrows the
       architecture seen at 5x and the nuclei seen at 20x;
    3. a transformer encoder layer per scale (self-attention among the regions);
    4. gated attention pooling per scale, concatenation, and an MLP to ``n_bins`` logits
       (one per time interval of a discrete-time survival model).

    The last cross-attention weights are kept in ``self.last_cross_attention``
    ``(B, N, (S-1) N)``.
    """

    def __init__(self, in_dim: int, n_scales: int = 3, n_bins: int = 8, dim: int = 32,
                 n_heads: int = 4, dropout: float = 0.1, middle: int | None = None):
        super().__init__()
        for name, v in (("in_dim", in_dim), ("n_scales", n_scales), ("n_bins", n_bins), ("dim", dim),
                        ("n_heads", n_heads)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if n_scales < 2:
            raise ValueError(f"a multi-scale model needs at least 2 scales, got n_scales={n_scales}")
        if dim % n_heads:
            raise ValueError(f"dim={dim} must be divisible by n_heads={n_heads}")
        self.in_dim, self.n_scales, self.n_bins = in_dim, n_scales, n_bins
        self.middle = n_scales // 2 if middle is None else int(middle)
        if not 0 <= self.middle < n_scales:
            raise ValueError(f"middle must index a scale in [0, {n_scales - 1}], got {middle}")
        self.proj = nn.ModuleList(nn.Sequential(nn.Linear(in_dim, dim), nn.LayerNorm(dim))
                                  for _ in range(n_scales))
        self.scale_embedding = nn.Parameter(torch.zeros(n_scales, dim))
        self.cross = nn.MultiheadAttention(dim, n_heads, dropout=dropout, batch_first=True)
        self.cross_norm = nn.LayerNorm(dim)
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(dim, n_heads, 2 * dim, dropout, batch_first=True, norm_first=True)
            for _ in range(n_scales))
        self.pools = nn.ModuleList(_AttentionPool(dim) for _ in range(n_scales))
        self.head = nn.Sequential(nn.Linear(n_scales * dim, dim), nn.GELU(), nn.Dropout(dropout),
                                  nn.Linear(dim, n_bins))
        self.last_cross_attention: torch.Tensor | None = None

    def embed(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """The merged slide embedding ``(B, S * dim)`` (before the survival head)."""
        if x.dim() != 4 or x.shape[1] != self.n_scales or x.shape[-1] != self.in_dim:
            raise ValueError(f"x must be (B, {self.n_scales}, N, {self.in_dim}), got {tuple(x.shape)}")
        B, S, N, _ = x.shape
        if mask is None:
            mask = torch.ones(B, N, dtype=torch.bool, device=x.device)
        mask = mask.to(torch.bool)
        if mask.shape != (B, N) or not bool(mask.any(1).all()):
            raise ValueError(f"mask must be (B, N) = {(B, N)} with at least one True per slide")
        tokens = [self.proj[s](x[:, s]) + self.scale_embedding[s] for s in range(S)]
        others = [s for s in range(S) if s != self.middle]
        kv = torch.cat([tokens[s] for s in others], 1)
        kv_pad = (~mask).repeat(1, len(others))
        c, att = self.cross(tokens[self.middle], kv, kv, key_padding_mask=kv_pad)
        self.last_cross_attention = att.detach()
        tokens[self.middle] = self.cross_norm(tokens[self.middle] + c)
        pooled = []
        for s in range(S):
            h = self.blocks[s](tokens[s], src_key_padding_mask=~mask)
            pooled.append(self.pools[s](h, mask)[0])
        return torch.cat(pooled, -1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.embed(x, mask))


# --------------------------------------------------------------------------------------------
# discrete-time survival: bins, training, prediction
# --------------------------------------------------------------------------------------------
def time_bins(time, event, n_bins: int = 8) -> np.ndarray:
    """Interval edges ``(n_bins + 1,)`` at quantiles of the event times, from 0 to the last time."""
    time, event = np.asarray(time, float), np.asarray(event, bool)
    if n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins}")
    if not event.any():
        raise ValueError("time bins need at least one observed event; got none")
    inner = np.quantile(time[event], np.linspace(0, 1, n_bins + 1)[1:-1])
    edges = np.unique(np.r_[0.0, inner, time.max() + 1e-6])
    if len(edges) < 3:
        raise ValueError(f"event times too few or tied to make {n_bins} bins")
    return edges


def bin_index(time, edges: np.ndarray) -> np.ndarray:
    """The interval each time falls in (times past the last edge go to the last interval)."""
    return np.clip(np.searchsorted(edges, np.asarray(time, float), side="right") - 1, 0, len(edges) - 2)


def _logits(out) -> torch.Tensor:
    return out.logits if hasattr(out, "logits") else out


def fit_bag_survival(model: nn.Module, x: torch.Tensor, mask: torch.Tensor, time, event,
                     edges: np.ndarray, epochs: int = 40, lr: float = 2e-3,
                     weight_decay: float = 1e-3, batch_size: int = 32, seed: int = 0,
                     forward: Callable | None = None) -> nn.Module:
    """Train ``model`` (logits = one per time bin) with the logistic-hazard NLL; AdamW, mini-batches.

    ``x`` and ``mask`` are indexed by patient in their first dimension; ``forward(model, xb,
    mb)`` returns logits (default ``model(xb, mb)``, unwrapping ``.logits``). Mini-batch order
    and dropout come from ``seed``; the global random state is left as it was. The epoch
    losses are kept in ``model.history_``.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    n = len(x)
    if len(mask) != n or len(time) != n or len(event) != n:
        raise ValueError(f"x, mask, time and event must have one row per patient; got {n}, {len(mask)}, {len(time)}, {len(event)}")
    fwd = forward or (lambda m, xb, mb: _logits(m(xb, mb)))
    b = torch.as_tensor(bin_index(time, edges), dtype=torch.long)
    ev = torch.as_tensor(np.asarray(event, bool))
    history = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
        for _ in range(epochs):
            model.train()
            order = torch.randperm(n, generator=gen)
            total = 0.0
            for s in range(0, n, batch_size):
                idx = order[s:s + batch_size]
                loss = logistic_hazard_nll(fwd(model, x[idx], mask[idx]), b[idx], ev[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(idx)
            history.append(total / n)
    model.eval()
    model.history_ = history
    return model


@torch.no_grad()
def predict_bag_survival(model: nn.Module, x: torch.Tensor, mask: torch.Tensor, edges: np.ndarray,
                         forward: Callable | None = None, batch_size: int = 256) -> dict[str, np.ndarray]:
    """Survival at the bin ends ``(n, K)`` and a risk score (minus the restricted mean survival)."""
    model.eval()
    fwd = forward or (lambda m, xb, mb: _logits(m(xb, mb)))
    logits = torch.cat([fwd(model, x[s:s + batch_size], mask[s:s + batch_size])
                        for s in range(0, len(x), batch_size)])
    surv = torch.cumprod(1 - torch.sigmoid(logits), 1).numpy().astype(float)
    widths = np.diff(edges)
    start = np.hstack([np.ones((len(surv), 1)), surv[:, :-1]])
    rmst = ((start + surv) / 2 * widths).sum(1)
    return {"survival": surv, "risk": -rmst, "times": np.asarray(edges[1:], float)}


def survival_at(surv: np.ndarray, edges: np.ndarray, times) -> np.ndarray:
    """Survival probabilities ``(n, len(times))`` read off the step curve at the bin ends."""
    times = np.asarray(times, float)
    full = np.hstack([np.ones((len(surv), 1)), surv])
    k = np.clip(np.searchsorted(edges, times, side="right") - 1, 0, full.shape[1] - 1)
    return full[:, k]
