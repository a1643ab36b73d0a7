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
* :func:`stain_blob_features`: a cheap, frozen tile encoder (colour deconvolution, then
  blob-filter responses at three widths): the stand-in for a pathology foundation model;
* :func:`cross_attention`: scaled dot-product cross-attention by hand (checked against
  ``torch.nn.MultiheadAttention``);
* :class:`CrossFusionSurv`: the multi-scale model with a discrete-time survival head, its
  scales merged by cross-attention; :class:`ConvFusionSurv`: the same scales merged by
  convolution (the paper's "convolutional fusion processor": a learned weighting of the
  scales, then convolutions over the grid of regions); the single-scale baseline is
  :class:`oncolab.vision.mil.GatedAttentionMIL` with one logit per time bin;
* :func:`fit_bag_survival`, :func:`predict_bag_survival`, :func:`survival_at`: discrete-time
  training (loss :func:`oncolab.survival.logistic_hazard_nll`, time bins from
  :func:`oncolab.survival.time_bins`) and survival curves;
* :func:`region_bag`, :func:`tile_attention`, :func:`tile_risks`, :func:`region_map` and
  :func:`draw_region_map`: where on a slide a trained model looks (attention per region) and
  what it would predict from each region alone (risk per region), drawn on the pyramid.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from scipy import ndimage
from torch import nn

from ..survival.binning import bin_index
from ..survival.losses import logistic_hazard_nll
from ..training import fit, limit_threads
from .mil import GatedAttentionMIL

__all__ = [
    "ConvFusionSurv",
    "CrossFusionSurv",
    "GatedAttentionMIL",
    "aligned_tiles",
    "cross_attention",
    "draw_region_map",
    "fit_bag_survival",
    "iter_aligned_tiles",
    "predict_bag_survival",
    "region_bag",
    "region_centers",
    "region_map",
    "sample_locations",
    "slide_bag",
    "stain_blob_features",
    "survival_at",
    "tile_attention",
    "tile_risks",
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


def region_centers(slide, levels: Sequence[int] = (2, 1, 0), tile: int = 32) -> np.ndarray:
    """The centres of every region of the slide, in raster order: level-0 (x, y), int (n, 2).

    The regions are the cells of the widest tile's footprint (``tile`` times the largest
    downsample of ``levels``), as in :func:`sample_locations`. Taught in chapter 14.

    Parameters
    ----------
    slide :
        An object with OpenSlide's ``dimensions``, ``level_count`` and ``level_downsamples``.
    levels : sequence of int
        Pyramid levels the regions are read at.
    tile : int
        Tile side in pixels at every level.

    Returns
    -------
    numpy.ndarray of int, shape (n, 2)
        The centres, row after row.
    """
    W, H = slide.dimensions
    footprint = int(tile * max(_level_downsample(slide, lv) for lv in levels))
    ys = range(footprint // 2, H - footprint // 2 + 1, footprint)
    xs = range(footprint // 2, W - footprint // 2 + 1, footprint)
    return np.array([(x, y) for y in ys for x in xs], int).reshape(-1, 2)


def iter_aligned_tiles(slide, levels: Sequence[int] = (2, 1, 0), tile: int = 32):
    """Every region of the slide, in raster order, as ``(centre, tiles (len(levels), T, T, 3))``.

    The regions are those of :func:`region_centers`; each is read when the loop asks for it
    and dropped after, so tiling a whole slide at several scales never holds more than one
    region in memory (chapter 15 measures it).
    """
    for x, y in region_centers(slide, levels, tile):
        yield (int(x), int(y)), aligned_tiles(slide, np.array([[x, y]]), levels, tile)[0]


# --------------------------------------------------------------------------------------------
# a cheap frozen tile encoder
# --------------------------------------------------------------------------------------------
FEATURE_SIGMAS = (1.0, 2.0, 4.0)


def stain_blob_features(tiles: np.ndarray) -> np.ndarray:
    """A frozen, hand-made tile embedding: float32 ``(..., 18)`` for uint8 tiles ``(..., T, T, 3)``.

    Colour deconvolution (``skimage.color.rgb2hed``) separates haematoxylin (nuclei) from
    eosin (stroma, cytoplasm). For each stain: mean, standard deviation, and the mean absolute
    value and root mean square of the scale-normalised Laplacian of Gaussian at widths 1, 2
    and 4 pixels (blob detectors: their responses say how large and how contrasted the blobs
    of the tile are: nuclei and chromatin at high magnification, glands and lumens at low).
    Plus the fraction of unstained pixels (lumen) and the mean gradient magnitude. The same
    encoder runs at every magnification, as a pathology foundation model would. Taught in
    chapter 14. (Chapter 5's :func:`oncolab.vision.pathology.tile_features` measures other,
    named measurements of a tile: tissue fraction, nuclear density and size.)

    Parameters
    ----------
    tiles : numpy.ndarray of uint8, shape (..., T, T, 3)
        RGB tiles, any leading dimensions (regions, scales).

    Returns
    -------
    numpy.ndarray of float32, shape (..., 18)
        Per stain (H, then E): mean, standard deviation, and for each width (1, 2, 4 pixels)
        the mean absolute and root-mean-square Laplacian-of-Gaussian response; then the
        unstained fraction and the mean gradient magnitude.
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
    """One slide as a multi-scale bag of :func:`stain_blob_features`; chapters 14 and 15.

    Parameters
    ----------
    slide :
        An object with OpenSlide's ``read_region``, ``level_count``, ``level_downsamples`` and
        ``dimensions``.
    n_tiles : int
        Regions drawn (without overlap) with ``seed``.
    levels : sequence of int
        Pyramid levels, from low to high magnification.
    tile : int
        Tile side in pixels at every level.
    seed : int
        Seeds the choice of regions.

    Returns
    -------
    numpy.ndarray of float32, shape (len(levels), n_tiles, 18)
        The bag: one row of features per region at each scale.
    """
    footprint = int(tile * max(_level_downsample(slide, lv) for lv in levels))
    centers = sample_locations(slide, n_tiles, footprint, seed)
    return region_bag(slide, centers, levels, tile)


def region_bag(slide, centers: np.ndarray, levels: Sequence[int] = (2, 1, 0), tile: int = 32) -> np.ndarray:
    """The multi-scale bag of :func:`stain_blob_features` of given regions of a slide; chapter 14.

    Parameters
    ----------
    slide :
        An object with OpenSlide's ``read_region``, ``level_count`` and ``level_downsamples``.
    centers : numpy.ndarray, shape (n, 2)
        Level-0 (x, y) centres of the regions (e.g. every region of :func:`iter_aligned_tiles`,
        to map a whole slide).
    levels : sequence of int
        Pyramid levels, from low to high magnification.
    tile : int
        Tile side in pixels at every level.

    Returns
    -------
    numpy.ndarray of float32, shape (len(levels), n, 18)
        One row of features per region at each scale.
    """
    tiles = aligned_tiles(slide, centers, levels, tile)  # (n, S, T, T, 3)
    return np.ascontiguousarray(stain_blob_features(tiles).transpose(1, 0, 2))


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


class _MultiScaleSurv(nn.Module):
    """What the multi-scale models share: checked settings, a projection and embedding per
    scale, and a head to ``n_bins`` logits; ``last_attention`` ``(B, N)`` is each region's
    pooling weight in the last forward pass."""

    def __init__(self, in_dim: int, n_scales: int, n_bins: int, dim: int, n_heads: int, dropout: float,
                 head_in: int):
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
        self.proj = nn.ModuleList(nn.Sequential(nn.Linear(in_dim, dim), nn.LayerNorm(dim))
                                  for _ in range(n_scales))
        self.scale_embedding = nn.Parameter(torch.zeros(n_scales, dim))
        self.head = nn.Sequential(nn.Linear(head_in * dim, dim), nn.GELU(), nn.Dropout(dropout),
                                  nn.Linear(dim, n_bins))
        self.last_attention: torch.Tensor | None = None

    def tokens(self, x: torch.Tensor, mask: torch.Tensor | None) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Each scale's projected tokens ``(B, N, dim)`` and the checked mask ``(B, N)``."""
        if x.dim() != 4 or x.shape[1] != self.n_scales or x.shape[-1] != self.in_dim:
            raise ValueError(f"x must be (B, {self.n_scales}, N, {self.in_dim}), got {tuple(x.shape)}")
        B, S, N, _ = x.shape
        if mask is None:
            mask = torch.ones(B, N, dtype=torch.bool, device=x.device)
        mask = mask.to(torch.bool)
        if mask.shape != (B, N) or not bool(mask.any(1).all()):
            raise ValueError(f"mask must be (B, N) = {(B, N)} with at least one True per slide")
        return [self.proj[s](x[:, s]) + self.scale_embedding[s] for s in range(S)], mask

    def embed(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.embed(x, mask))


class CrossFusionSurv(_MultiScaleSurv):
    """A CrossFusion-style multi-scale survival model over aligned tile embeddings; chapter 14.

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
    ``(B, N, (S-1) N)``, and each region's pooling weight, averaged over the scales, in
    ``self.last_attention`` ``(B, N)``.
    """

    def __init__(self, in_dim: int, n_scales: int = 3, n_bins: int = 8, dim: int = 32,
                 n_heads: int = 4, dropout: float = 0.1, middle: int | None = None):
        super().__init__(in_dim, n_scales, n_bins, dim, n_heads, dropout, head_in=n_scales)
        self.middle = n_scales // 2 if middle is None else int(middle)
        if not 0 <= self.middle < n_scales:
            raise ValueError(f"middle must index a scale in [0, {n_scales - 1}], got {middle}")
        self.cross = nn.MultiheadAttention(dim, n_heads, dropout=dropout, batch_first=True)
        self.cross_norm = nn.LayerNorm(dim)
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(dim, n_heads, 2 * dim, dropout, batch_first=True, norm_first=True)
            for _ in range(n_scales))
        self.pools = nn.ModuleList(_AttentionPool(dim) for _ in range(n_scales))
        self.last_cross_attention: torch.Tensor | None = None

    def embed(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """The merged slide embedding ``(B, S * dim)`` (before the survival head)."""
        tokens, mask = self.tokens(x, mask)
        S = len(tokens)
        others = [s for s in range(S) if s != self.middle]
        kv = torch.cat([tokens[s] for s in others], 1)
        kv_pad = (~mask).repeat(1, len(others))
        c, att = self.cross(tokens[self.middle], kv, kv, key_padding_mask=kv_pad)
        self.last_cross_attention = att.detach()
        tokens[self.middle] = self.cross_norm(tokens[self.middle] + c)
        pooled, weights = [], []
        for s in range(S):
            h = self.blocks[s](tokens[s], src_key_padding_mask=~mask)
            z, a = self.pools[s](h, mask)
            pooled.append(z)
            weights.append(a)
        self.last_attention = torch.stack(weights, 1).mean(1).detach()
        return torch.cat(pooled, -1)


class ConvFusionSurv(_MultiScaleSurv):
    """The scales merged by convolution: CrossFusion's "convolutional fusion processor"; chapter 14.

    Input and output as :class:`CrossFusionSurv`'s. Steps:

    1. a linear projection per scale to ``dim``, plus a learned scale embedding;
    2. the scales merged by a 1 x 1 x 1 convolution over the stack ``(S, dim, H, W)``: a
       learned weight per scale (and a bias), the same at every region and channel;
    3. the ``N`` regions laid out on a ``H x W = ceil(sqrt(N))^2`` grid (padding zeroed) and
       convolved with 3 x 3, 5 x 5 and 7 x 7 grouped kernels (summed, with a residual
       1 x 1 convolution): each region's token mixes with its neighbours on the grid;
    4. a linear layer and layer normalisation, gated attention pooling over the regions, and
       an MLP to ``n_bins`` logits.

    Each region's pooling weight in the last forward pass is kept in ``self.last_attention``
    ``(B, N)``.
    """

    def __init__(self, in_dim: int, n_scales: int = 3, n_bins: int = 8, dim: int = 32,
                 n_heads: int = 4, dropout: float = 0.1):
        super().__init__(in_dim, n_scales, n_bins, dim, n_heads, dropout, head_in=1)
        if dim % 2:
            raise ValueError(f"dim must be even (the convolutions have dim / 2 channels), got {dim}")
        half = dim // 2
        self.scale_mix = nn.Conv3d(n_scales, 1, kernel_size=1)
        self.convs = nn.ModuleList(nn.Conv2d(dim, half, k, padding=k // 2, groups=half) for k in (3, 5, 7))
        self.skip = nn.Conv2d(dim, half, 1, groups=half)
        self.drop = nn.Dropout2d(dropout)
        self.out = nn.Sequential(nn.Linear(half, dim), nn.LayerNorm(dim))
        self.pool = _AttentionPool(dim)

    def embed(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """The slide embedding ``(B, dim)`` (before the survival head)."""
        tokens, mask = self.tokens(x, mask)
        B, N = mask.shape
        side = math.ceil(math.sqrt(N))
        t = torch.stack(tokens, 1) * mask[:, None, :, None]  # (B, S, N, dim), padding zeroed
        t = nn.functional.pad(t, (0, 0, 0, side * side - N))
        grid = t.transpose(2, 3).reshape(B, self.n_scales, -1, side, side)  # (B, S, dim, H, W)
        g = self.scale_mix(grid)[:, 0]  # (B, dim, H, W)
        g = self.drop(torch.relu(self.skip(g) + sum(c(g) for c in self.convs)))
        h = self.out(g.flatten(2).transpose(1, 2)[:, :N])  # (B, N, dim)
        z, a = self.pool(h, mask)
        self.last_attention = a.detach()
        return z


# --------------------------------------------------------------------------------------------
# discrete-time survival: bins, training, prediction
# --------------------------------------------------------------------------------------------
def _logits(out) -> torch.Tensor:
    return out.logits if hasattr(out, "logits") else out


def fit_bag_survival(model: nn.Module, x: torch.Tensor, mask: torch.Tensor, time, event,
                     edges: np.ndarray, epochs: int = 40, lr: float = 2e-3,
                     weight_decay: float = 1e-3, batch_size: int = 32, seed: int = 0,
                     forward: Callable | None = None) -> nn.Module:
    """Train a discrete-time survival model on bags with the logistic-hazard NLL; chapter 14.

    AdamW on shuffled mini-batches, by :func:`oncolab.training.fit` on one CPU thread (the
    fastest for these small models); each patient's time goes to its bin by
    :func:`oncolab.survival.bin_index` (a time on an edge belongs to the bin that ends there).

    Parameters
    ----------
    model : torch.nn.Module
        A model whose logits are one per time bin (``len(edges) - 1``).
    x, mask : torch.Tensor
        Bags and their masks, indexed by patient in their first dimension.
    time, event : array-like, shape (n,)
        Follow-up times and event flags.
    edges : numpy.ndarray
        Bin edges from :func:`oncolab.survival.time_bins`.
    epochs, lr, weight_decay, batch_size : int, float, float, int
        AdamW's epochs, learning rate and weight decay; patients per mini-batch.
    seed : int
        Seeds the mini-batch order and dropout (the global random state is left as it was).
    forward : callable or None
        ``forward(model, xb, mb)`` returns the logits; default ``model(xb, mb)``, unwrapping
        ``.logits``.

    Returns
    -------
    torch.nn.Module
        ``model``, trained, in eval mode; ``model.history_`` holds the mean training loss of
        each epoch.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    n = len(x)
    if len(mask) != n or len(time) != n or len(event) != n:
        raise ValueError(f"x, mask, time and event must have one row per patient; got {n}, {len(mask)}, {len(time)}, {len(event)}")
    fwd = forward or (lambda m, xb, mb: _logits(m(xb, mb)))
    b = torch.as_tensor(bin_index(time, edges), dtype=torch.long)
    ev = torch.as_tensor(np.asarray(event, bool))

    def loss_fn(m, batch):
        xb, mb, bb, eb = batch
        return logistic_hazard_nll(fwd(m, xb, mb), bb, eb)

    res = fit(model, loss_fn, (x, mask, b, ev), epochs=epochs, lr=lr, weight_decay=weight_decay,
              optimizer="adamw", batch_size=batch_size, seed=seed, threads=1)
    model.history_ = res.curve("train_loss")
    return model


@torch.no_grad()
def predict_bag_survival(model: nn.Module, x: torch.Tensor, mask: torch.Tensor, edges: np.ndarray,
                         forward: Callable | None = None, batch_size: int = 256) -> dict[str, np.ndarray]:
    """Survival at the bin ends and a risk score; chapter 14.

    Parameters
    ----------
    model : torch.nn.Module
        A model trained by :func:`fit_bag_survival` (put in eval mode here).
    x, mask : torch.Tensor
        Bags and their masks, indexed by patient.
    edges : numpy.ndarray
        The bin edges the model was trained with.
    forward : callable or None
        As in :func:`fit_bag_survival`.
    batch_size : int
        Patients per forward pass.

    Returns
    -------
    dict of str to numpy.ndarray
        ``"survival"`` ``(n, K)``: ``S(e_{k+1}) = prod_{j <= k} (1 - h_j)``, the probability of
        surviving past the end of bin ``k``; ``"risk"`` ``(n,)``: minus the restricted mean
        survival time up to the last edge (trapezoids); ``"times"``: the bin ends.
    """
    model.eval()
    fwd = forward or (lambda m, xb, mb: _logits(m(xb, mb)))
    with limit_threads(1):
        logits = torch.cat([fwd(model, x[s:s + batch_size], mask[s:s + batch_size])
                            for s in range(0, len(x), batch_size)])
    surv = torch.cumprod(1 - torch.sigmoid(logits), 1).numpy().astype(float)
    widths = np.diff(edges)
    start = np.hstack([np.ones((len(surv), 1)), surv[:, :-1]])
    rmst = ((start + surv) / 2 * widths).sum(1)
    return {"survival": surv, "risk": -rmst, "times": np.asarray(edges[1:], float)}


def survival_at(surv: np.ndarray, edges: np.ndarray, times) -> np.ndarray:
    """Survival probabilities read off the step curve that drops at the bin ends; chapter 14.

    ``S(t)`` is the survival at the last edge ``<= t`` (1 before the first bin ends): an event
    at an edge belongs to the bin that ends there (:mod:`oncolab.survival.binning`), so the
    curve has dropped by that edge.

    Parameters
    ----------
    surv : numpy.ndarray, shape (n, K)
        ``"survival"`` from :func:`predict_bag_survival`.
    edges : numpy.ndarray, shape (K + 1,)
        The bin edges.
    times : array-like of float
        Times to read.

    Returns
    -------
    numpy.ndarray, shape (n, len(times))
        Survival probabilities.
    """
    times = np.asarray(times, float)
    full = np.hstack([np.ones((len(surv), 1)), surv])
    k = np.clip(np.searchsorted(edges, times, side="right") - 1, 0, full.shape[1] - 1)
    return full[:, k]


# --------------------------------------------------------------------------------------------
# where on the slide: attention and risk per region
# --------------------------------------------------------------------------------------------
@torch.no_grad()
def tile_attention(model: nn.Module, x: torch.Tensor, mask: torch.Tensor | None = None,
                   scale: int | None = None) -> np.ndarray:
    """Each region's attention weight in a trained model's pooling, ``(B, N)``; chapter 14.

    Parameters
    ----------
    model : torch.nn.Module
        A :class:`CrossFusionSurv` or :class:`ConvFusionSurv` (their ``last_attention``), or a
        :class:`GatedAttentionMIL` reading one scale (its output's ``attention``).
    x : torch.Tensor, shape (B, S, N, F)
        Bags of aligned multi-scale tile embeddings.
    mask : torch.Tensor, shape (B, N), optional
        True for real regions.
    scale : int, optional
        The scale a :class:`GatedAttentionMIL` reads (required for it, ignored otherwise).

    Returns
    -------
    numpy.ndarray, shape (B, N)
        Non-negative weights summing to 1 over each bag's real regions.
    """
    model.eval()
    if isinstance(model, GatedAttentionMIL):
        if scale is None:
            raise ValueError("a single-scale GatedAttentionMIL needs scale= (the index of the scale it reads)")
        return model(x[:, scale], mask).attention.numpy().astype(float)
    if not isinstance(model, _MultiScaleSurv):
        raise TypeError(f"expected CrossFusionSurv, ConvFusionSurv or GatedAttentionMIL, got {type(model).__name__}")
    model(x, mask)
    return model.last_attention.numpy().astype(float)


@torch.no_grad()
def tile_risks(model: nn.Module, x: torch.Tensor, edges: np.ndarray, forward: Callable | None = None,
               batch_size: int = 256) -> np.ndarray:
    """The risk a trained bag model gives each region of one slide when the region is the whole bag.

    Taught in chapter 14. Attention says where the model looks; this says what it would
    conclude from each place alone (the "risk map" of a slide): region ``k`` becomes a bag of
    one region, ``x[:, k:k+1]``, scored by :func:`predict_bag_survival`.

    Parameters
    ----------
    model : torch.nn.Module
        A model trained by :func:`fit_bag_survival`.
    x : torch.Tensor, shape (S, N, F)
        One slide's bag of aligned multi-scale tile embeddings.
    edges : numpy.ndarray
        The bin edges the model was trained with.
    forward : callable, optional
        As in :func:`fit_bag_survival`.
    batch_size : int
        Regions per forward pass.

    Returns
    -------
    numpy.ndarray, shape (N,)
        The risk (minus the restricted mean survival time) of each region alone.
    """
    if x.dim() != 3:
        raise ValueError(f"x must be one slide's bag (S, N, F), got shape {tuple(x.shape)}")
    singles = x.permute(1, 0, 2)[:, :, None, :].contiguous()  # (N, S, 1, F)
    mask = torch.ones(len(singles), 1, dtype=torch.bool)
    return predict_bag_survival(model, singles, mask, edges, forward=forward, batch_size=batch_size)["risk"]


def region_map(centers: np.ndarray, values, footprint: int, slide_size: int, out: int) -> np.ndarray:
    """Values per region painted on an ``out x out`` picture of the slide (NaN where no region).

    Taught in chapter 14, to draw attention and risk on a thumbnail of the pyramid.

    Parameters
    ----------
    centers : numpy.ndarray, shape (n, 2)
        Level-0 (x, y) centres of the regions.
    values : array-like, shape (n,)
        One value per region.
    footprint : int
        Side of a region in level-0 pixels.
    slide_size : int
        Side of the (square) slide in level-0 pixels.
    out : int
        Side of the picture in pixels (that of the thumbnail it is drawn on).

    Returns
    -------
    numpy.ndarray, shape (out, out)
        Each region's square filled with its value.
    """
    centers = np.asarray(centers)
    values = np.asarray(values, float)
    if centers.ndim != 2 or centers.shape[1] != 2 or len(values) != len(centers):
        raise ValueError(f"centers must be (n, 2) and values (n,); got {centers.shape} and {values.shape}")
    if footprint < 1 or slide_size < footprint or out < 1:
        raise ValueError(f"need 1 <= footprint <= slide_size and out >= 1; got footprint={footprint}, "
                         f"slide_size={slide_size}, out={out}")
    pic = np.full((out, out), np.nan)
    scale = out / slide_size
    for (cx, cy), v in zip(centers, values):
        x0, y0 = int(round((cx - footprint / 2) * scale)), int(round((cy - footprint / 2) * scale))
        x1, y1 = int(round((cx + footprint / 2) * scale)), int(round((cy + footprint / 2) * scale))
        pic[max(y0, 0):max(y1, y0 + 1), max(x0, 0):max(x1, x0 + 1)] = v
    return pic


def draw_region_map(slide, centers: np.ndarray, values, footprint: int, ax=None, outline=None,
                    title: str | None = None, alpha: float = 0.45):
    """Values per region drawn over the lowest level of a square slide pyramid; chapter 14.

    The values are scaled to [0, 1] (minimum to maximum) and painted by :func:`region_map`
    over the pyramid's lowest level, read in strips of 256 level-0 rows (so that a lazily
    rendered slide is never held whole at full resolution); ``outline`` (one value in [0, 1]
    per region, e.g. the generator's tumour fraction) is drawn as a white contour at 0.5.

    Parameters
    ----------
    slide :
        A square pyramid with OpenSlide's ``read_region``, ``level_count`` and ``level_dimensions``.
    centers : numpy.ndarray, shape (n, 2)
        Level-0 (x, y) centres of the regions.
    values : array-like, shape (n,)
        One value per region (attention, risk).
    footprint : int
        Side of a region in level-0 pixels.
    ax : matplotlib axes, optional
        Where to draw (a new figure when None).
    outline : array-like, shape (n,), optional
        Values whose 0.5 contour is drawn.
    title : str, optional
        The panel's title.
    alpha : float
        Opacity of the painted values.

    Returns
    -------
    matplotlib axes
    """
    from .gradcam import overlay

    W, H = slide.dimensions
    if W != H:
        raise ValueError(f"draw_region_map draws square slides, got {W} x {H}")
    level = slide.level_count - 1
    lw, lh = slide.level_dimensions[level]
    ds = float(slide.level_downsamples[level])
    rows = max(1, int(256 // ds))
    low = np.concatenate([np.asarray(slide.read_region((0, int(round(y * ds))), level, (lw, min(rows, lh - y))))[..., :3]
                          for y in range(0, lh, rows)])
    v = np.asarray(values, float)
    span = np.ptp(v)
    scaled = (v - v.min()) / span if span > 0 else np.zeros_like(v)
    heat = region_map(centers, scaled, footprint, W, lw)
    mask = None if outline is None else region_map(centers, outline, footprint, W, lw) > 0.5
    return overlay(low, np.nan_to_num(heat, nan=0.0), mask=mask, ax=ax, alpha=alpha, title=title)
