"""The Vision Transformer (ViT, Dosovitskiy et al. 2021), written from first principles.

Taught in chapter 4 ("Vision transformers"); reused by chapters 5, 11 and 12.

* :func:`patchify` cuts images into non-overlapping square patches: the tokens.
* :func:`multi_head_attention` is multi-head scaled dot-product self-attention in a few
  lines, checked against ``torch.nn.MultiheadAttention`` (same weights, same outputs).
* :class:`VisionTransformer` = patch embedding (a strided convolution, which equals a linear
  map of each flattened patch), a learned class token, learned position embeddings, pre-norm
  transformer blocks (attention + MLP, each with a residual) and a final LayerNorm; the class
  token's output is the image's embedding. Module and parameter names follow timm's
  ``VisionTransformer``, so a timm model of the same configuration has exactly the same
  parameters and its weights load unchanged (:func:`load_timm_weights`).
* Each attention layer keeps its last attention matrix (``keep_attention=True``) for
  attention rollout (:func:`oncolab.vision.attention_rollout`).
"""

from __future__ import annotations

import math
import numbers

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["VIT_CONFIGS", "Attention", "Block", "PatchEmbed", "VisionTransformer",
           "load_timm_weights", "multi_head_attention", "patchify"]

# The configurations of the paper and DeiT (Touvron et al. 2021), as named in timm.
VIT_CONFIGS: dict[str, dict] = {
    "vit_tiny": dict(patch_size=16, embed_dim=192, depth=12, num_heads=3),
    "vit_small": dict(patch_size=16, embed_dim=384, depth=12, num_heads=6),
    "vit_base": dict(patch_size=16, embed_dim=768, depth=12, num_heads=12),
}


def _positive(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """(N, C, H, W) images -> (N, L, C*P*P) flattened patches, row by row; chapter 4.

    ``L = (H/P) * (W/P)``; each patch is flattened channel first, then rows, then columns
    (the order of a convolution kernel's weights, so a linear layer on these vectors equals
    a convolution with kernel = stride = ``patch_size``).
    """
    p = _positive("patch_size", patch_size)
    if images.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}")
    n, c, h, w = images.shape
    if h % p or w % p:
        raise ValueError(f"image size {h}x{w} is not a multiple of the patch size {p}")
    x = images.reshape(n, c, h // p, p, w // p, p)
    return x.permute(0, 2, 4, 1, 3, 5).reshape(n, (h // p) * (w // p), c * p * p)


def multi_head_attention(x: torch.Tensor, w_qkv: torch.Tensor, b_qkv: torch.Tensor | None,
                         w_out: torch.Tensor, b_out: torch.Tensor | None, num_heads: int
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """Multi-head self-attention by hand; chapter 4. Returns (output, attention weights).

    ``x`` (N, L, D); ``w_qkv`` (3D, D) stacks the query, key and value projections (the layout
    of ``nn.MultiheadAttention.in_proj_weight`` and of timm's ``qkv`` layer); ``w_out`` (D, D).
    Per head ``h`` with ``d = D / num_heads``: ``A_h = softmax(Q_h K_h^T / sqrt(d))`` (N, L, L)
    and ``out_h = A_h V_h``; the heads are concatenated and projected by ``w_out``.
    Attention weights are returned per head, (N, heads, L, L).
    """
    n, seq, d = x.shape
    h = _positive("num_heads", num_heads)
    if d % h:
        raise ValueError(f"embedding size {d} is not divisible by num_heads={h}")
    qkv = F.linear(x, w_qkv, b_qkv)  # (N, L, 3D)
    q, k, v = qkv.reshape(n, seq, 3, h, d // h).permute(2, 0, 3, 1, 4)  # each (N, h, L, d/h)
    attn = (q @ k.transpose(-2, -1) / math.sqrt(d // h)).softmax(dim=-1)
    out = (attn @ v).transpose(1, 2).reshape(n, seq, d)
    return F.linear(out, w_out, b_out), attn


class PatchEmbed(nn.Module):
    """Cut a fixed-size image into P x P patches and map each to a D-vector (a strided conv)."""

    def __init__(self, img_size: int = 224, patch_size: int = 16, in_chans: int = 3, embed_dim: int = 768):
        super().__init__()
        self.img_size = (_positive("img_size", img_size),) * 2
        self.patch_size = (_positive("patch_size", patch_size),) * 2
        if img_size % patch_size:
            raise ValueError(f"img_size {img_size} must be a multiple of patch_size {patch_size}")
        self.grid_size = (img_size // patch_size,) * 2
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.proj = nn.Conv2d(_positive("in_chans", in_chans), _positive("embed_dim", embed_dim),
                              patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) != self.img_size:
            raise ValueError(f"this ViT takes {self.img_size[0]}x{self.img_size[1]} images, got "
                             f"{x.shape[-2]}x{x.shape[-1]}; resize the images (position embeddings are "
                             "learned for one grid of patches)")
        return self.proj(x).flatten(2).transpose(1, 2)  # (N, L, D)


class Attention(nn.Module):
    """Multi-head self-attention with a fused ``qkv`` projection (timm's layout)."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"embed_dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.keep_attention = False
        self.attention: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, attn = multi_head_attention(x, self.qkv.weight, self.qkv.bias, self.proj.weight,
                                         self.proj.bias, self.num_heads)
        self.attention = attn.detach() if self.keep_attention else None
        return out


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(norm1(x))`` then ``x + mlp(norm2(x))``."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads, qkv_bias=qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VisionTransformer(nn.Module):
    """A ViT for fixed-size square images; chapter 4.

    ``num_classes=0`` returns the class token's final embedding (``num_features = embed_dim``).
    Inputs of another size raise a ``ValueError``: the position embeddings are learned for
    one grid of patches.
    """

    def __init__(self, img_size: int = 224, patch_size: int = 16, in_chans: int = 3,
                 num_classes: int = 1000, embed_dim: int = 768, depth: int = 12, num_heads: int = 12,
                 mlp_ratio: float = 4.0, qkv_bias: bool = True):
        super().__init__()
        if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral) or num_classes < 0:
            raise ValueError(f"num_classes must be a non-negative integer, got {num_classes!r}")
        self.patch_embed = PatchEmbed(img_size, patch_size, in_chans, embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.patch_embed.num_patches + 1, embed_dim))
        self.blocks = nn.Sequential(*[Block(embed_dim, num_heads, mlp_ratio, qkv_bias)
                                      for _ in range(_positive("depth", depth))])
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.head = nn.Linear(embed_dim, num_classes) if num_classes else nn.Identity()
        self.img_size = img_size
        self.in_chans = in_chans
        self.num_features = embed_dim
        self._init_weights()

    def _init_weights(self) -> None:
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    @classmethod
    def from_config(cls, name: str, **kwargs) -> VisionTransformer:
        """``"vit_tiny"``, ``"vit_small"`` or ``"vit_base"`` (patch 16, 224 pixels by default)."""
        if name not in VIT_CONFIGS:
            raise ValueError(f"unknown ViT configuration {name!r}; expected one of {list(VIT_CONFIGS)}")
        return cls(**{**VIT_CONFIGS[name], **kwargs})

    def keep_attention(self, keep: bool = True) -> VisionTransformer:
        """Make every block keep its last attention weights (``block.attn.attention``)."""
        for b in self.blocks:
            b.attn.keep_attention = keep
            if not keep:
                b.attn.attention = None
        return self

    def attention_maps(self) -> list[torch.Tensor]:
        """The attention weights of the last forward pass, one (N, heads, L+1, L+1) per block."""
        maps = [b.attn.attention for b in self.blocks]
        if any(m is None for m in maps):
            raise RuntimeError("no attention kept: call model.keep_attention() before the forward pass")
        return maps

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        return self.norm(self.blocks(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x)[:, 0])


def load_timm_weights(model: VisionTransformer | nn.Module, timm_model: nn.Module) -> nn.Module:
    """Copy a timm model's weights into ours (same configuration); chapters 2 and 4.

    Works for :class:`VisionTransformer` vs timm's ``VisionTransformer`` and for
    :class:`oncolab.vision.ResNet` vs timm's ``ResNet``: the parameter names agree. A missing
    or extra name, or a shape that differs, raises a ``ValueError`` naming it.
    """
    ours = model.state_dict()
    theirs = timm_model.state_dict()
    missing = sorted(set(ours) - set(theirs))
    extra = sorted(set(theirs) - set(ours))
    if missing or extra:
        raise ValueError(f"the two models differ in parameters: ours only {missing[:5]}, "
                         f"timm's only {extra[:5]}; build ours with the same configuration")
    for k, v in ours.items():
        if v.shape != theirs[k].shape:
            raise ValueError(f"parameter {k!r} has shape {tuple(v.shape)} here and "
                             f"{tuple(theirs[k].shape)} in the timm model")
    model.load_state_dict(theirs)
    return model
