"""A 3D CNN for multiparametric MRI volumes, from scratch: 3D convolution and a 3D residual block.

Taught in chapter 14 ("Whole slides at several scales, and MRI"), building on the 2D ResNet of
chapter 2 (:mod:`oncolab.vision.resnet`).

A prostate MRI study is a stack of 3D volumes (T2-weighted, ADC from diffusion, DCE after
contrast), acquired on different voxel grids and resampled onto one
(:func:`oncolab.data.prostate.resample_volume`): one input of shape ``(sequences, depth,
height, width)``. A 3D
convolution slides a ``(k_d, k_h, k_w)`` kernel through all three spatial axes at once, so a
lesion is seen as a volume, not a pile of slices. :func:`conv3d_by_hand` writes it as a sum
of shifted copies of the input (checked against ``torch.nn.functional.conv3d``);
:class:`ResBlock3d` is the 2D basic block with every 2D layer made 3D; :class:`MRIEncoder3d`
stacks them into an encoder that maps a volume to an embedding.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = ["MRIEncoder3d", "ResBlock3d", "conv3d_by_hand", "mri_batch"]


def conv3d_by_hand(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None,
                   stride: int = 1, padding: int = 0) -> np.ndarray:
    """3D convolution (cross-correlation, as in deep learning) in NumPy.

    ``x`` (B, C_in, D, H, W), ``weight`` (C_out, C_in, kD, kH, kW). For every kernel offset
    ``(a, b, c)`` the input shifted by that offset is multiplied by the kernel's weights at
    that offset and summed over input channels; the output is the sum over offsets.
    """
    x = np.asarray(x, np.float64)
    weight = np.asarray(weight, np.float64)
    if x.ndim != 5 or weight.ndim != 5 or x.shape[1] != weight.shape[1]:
        raise ValueError(f"expected x (B, C, D, H, W) and weight (C_out, C, kD, kH, kW) with the same C; "
                         f"got {x.shape} and {weight.shape}")
    if stride < 1 or padding < 0:
        raise ValueError(f"stride must be >= 1 and padding >= 0, got stride={stride}, padding={padding}")
    p = padding
    x = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p), (p, p)))
    _, _, D, H, W = x.shape
    kd, kh, kw = weight.shape[2:]
    od, oh, ow = (D - kd) // stride + 1, (H - kh) // stride + 1, (W - kw) // stride + 1
    if min(od, oh, ow) < 1:
        raise ValueError(f"the kernel {weight.shape[2:]} is larger than the padded input {(D, H, W)}")
    out = np.zeros((x.shape[0], weight.shape[0], od, oh, ow))
    for a in range(kd):
        for b in range(kh):
            for c in range(kw):
                patch = x[:, :, a:a + stride * od:stride, b:b + stride * oh:stride, c:c + stride * ow:stride]
                out += np.einsum("bcdhw,oc->bodhw", patch, weight[:, :, a, b, c])
    if bias is not None:
        out += np.asarray(bias)[None, :, None, None, None]
    return out


class ResBlock3d(nn.Module):
    """A 3D residual basic block: ``relu(x' + BN(conv(relu(BN(conv(x))))))``.

    ``x'`` is ``x`` itself, or a strided 1x1x1 convolution + BN when the block changes the
    number of channels or the resolution (as in ResNet's basic block, chapter 2).
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1):
        super().__init__()
        for name, v in (("in_ch", in_ch), ("out_ch", out_ch), ("stride", stride)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        self.conv1 = nn.Conv3d(in_ch, out_ch, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm3d(out_ch)
        self.conv2 = nn.Conv3d(out_ch, out_ch, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm3d(out_ch)
        self.shortcut = None
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Sequential(nn.Conv3d(in_ch, out_ch, 1, stride, bias=False),
                                          nn.BatchNorm3d(out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + (x if self.shortcut is None else self.shortcut(x)))


class MRIEncoder3d(nn.Module):
    """A small 3D ResNet: volume ``(B, sequences, D, H, W)`` -> embedding ``(B, out_dim)``.

    A stem convolution halves the in-plane resolution (MRI voxels are usually thicker than
    they are wide), three residual blocks (the last two halve every axis), global average
    pooling and a linear layer. Each sequence is standardised per volume first (MRI
    intensities have no absolute scale). ``head`` > 0 adds a linear output of that size
    (e.g. one logit per survival time bin); ``forward`` then returns it.
    """

    def __init__(self, in_channels: int = 3, width: int = 8, out_dim: int = 32, head: int = 0):
        super().__init__()
        for name, v in (("in_channels", in_channels), ("width", width), ("out_dim", out_dim)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        self.in_channels = in_channels
        self.stem = nn.Sequential(nn.Conv3d(in_channels, width, 3, (1, 2, 2), 1, bias=False),
                                  nn.BatchNorm3d(width), nn.ReLU())
        self.layers = nn.Sequential(ResBlock3d(width, width), ResBlock3d(width, 2 * width, 2),
                                    ResBlock3d(2 * width, 4 * width, 2))
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(4 * width, out_dim)
        self.head = nn.Linear(out_dim, head) if head else None

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected volumes (B, {self.in_channels}, D, H, W), got {tuple(x.shape)}")
        mu = x.mean((2, 3, 4), keepdim=True)
        sd = x.std((2, 3, 4), keepdim=True)
        x = (x - mu) / (sd + 1e-6)
        return torch.relu(self.fc(self.pool(self.layers(self.stem(x))).flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.embed(x)
        return self.head(z) if self.head is not None else z


def mri_batch(cohort, positions, fill: str = "zeros") -> tuple[torch.Tensor, torch.Tensor]:
    """The MRI volumes of some patients as a tensor ``(n, 3, D, H, W)`` and a presence mask ``(n,)``.

    A patient without MRI gets a volume of zeros (``fill="zeros"``, what CHIMERA's baseline
    feeds its encoder); the mask says which volumes are real, so a model can ignore the rest.
    """
    if fill != "zeros":
        raise ValueError(f"fill must be 'zeros', got {fill!r}")
    shape = tuple(cohort.meta["config"]["mri_shape"])
    out = np.zeros((len(positions), 3, *shape), np.float32)
    mask = np.zeros(len(positions), bool)
    for k, i in enumerate(positions):
        if cohort.has("mri", int(i)):
            out[k] = cohort.mri(int(i))
            mask[k] = True
    return torch.from_numpy(out), torch.from_numpy(mask)
