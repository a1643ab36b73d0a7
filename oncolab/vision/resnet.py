"""Convolution, plain CNNs and residual networks (ResNet), written from first principles.

Taught in chapter 2 ("Images, CNNs and ResNet"); the encoders are reused by chapters 5, 10
and 12 through :func:`oncolab.vision.image_encoder`.

* :func:`conv2d_by_hand` is a 2-D convolution (cross-correlation, as deep learning uses the
  word) written with NumPy, checked against ``torch.nn.functional.conv2d``.
* :class:`SmallCNN` is a plain stack of convolution, batch-norm, ReLU and pooling.
* :class:`BasicBlock` and :class:`Bottleneck` are the residual blocks of He et al. (2016):
  ``out = relu(F(x) + shortcut(x))``; the shortcut is the identity, or a strided 1x1
  convolution with batch-norm where the shape changes.
* :class:`ResNet` stacks them. Its module names follow timm's ``ResNet`` (``conv1``, ``bn1``,
  ``layer1`` ... ``layer4``, ``fc``), so that ``ResNet.resnet18()`` has exactly the parameters
  of ``timm.create_model("resnet18")`` and timm's weights load into it unchanged.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

__all__ = ["BasicBlock", "Bottleneck", "ResNet", "SmallCNN", "conv2d_by_hand", "count_parameters"]


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (weights and biases) of a model; chapter 2."""
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only))


def _pair(value, name: str) -> tuple[int, int]:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (int(value), int(value))
    if (not isinstance(value, tuple | list) or len(value) != 2
            or not all(isinstance(v, numbers.Integral) and v >= 0 for v in value)):
        raise ValueError(f"{name} must be a non-negative integer or a pair of them, got {value!r}")
    return int(value[0]), int(value[1])


def conv2d_by_hand(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None,
                   stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0) -> np.ndarray:
    """2-D convolution of a batch, by hand: ``out[n, o, i, j] = b[o] + sum_{c,u,v} w[o,c,u,v] *
    x_padded[n, c, i*s + u, j*s + v]``; chapter 2.

    ``x`` is (N, C, H, W), ``weight`` (O, C, KH, KW), ``bias`` (O,) or None. Zero padding.
    The loop runs over the KH*KW kernel offsets only: each offset adds one shifted, strided
    view of the input multiplied by that offset's (O, C) weights. The result equals
    ``torch.nn.functional.conv2d`` (same arguments) up to floating-point rounding.
    """
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(weight, dtype=np.float64)
    if x.ndim != 4:
        raise ValueError(f"x must be a batch (N, C, H, W), got shape {x.shape}")
    if w.ndim != 4 or w.shape[1] != x.shape[1]:
        raise ValueError(f"weight must be (O, C={x.shape[1]}, KH, KW), got shape {w.shape}")
    sh, sw = _pair(stride, "stride")
    if sh == 0 or sw == 0:
        raise ValueError(f"stride must be positive, got {stride!r}")
    ph, pw = _pair(padding, "padding")
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    n, _, hp, wp = xp.shape
    o, _, kh, kw = w.shape
    oh, ow = (hp - kh) // sh + 1, (wp - kw) // sw + 1
    if oh < 1 or ow < 1:
        raise ValueError(f"kernel {kh}x{kw} is larger than the padded input {hp}x{wp}")
    out = np.zeros((n, o, oh, ow))
    for u in range(kh):
        for v in range(kw):
            patch = xp[:, :, u:u + sh * (oh - 1) + 1:sh, v:v + sw * (ow - 1) + 1:sw]  # (N, C, OH, OW)
            out += np.einsum("nchw,oc->nohw", patch, w[:, :, u, v])
    if bias is not None:
        out += np.asarray(bias, dtype=np.float64)[None, :, None, None]
    return out


class SmallCNN(nn.Module):
    """A plain CNN: ``len(widths)`` stages of conv3x3-BN-ReLU-maxpool, global average pool, a
    linear head; chapter 2.

    ``num_classes=0`` returns the pooled features (``num_features`` of them), like timm.
    """

    def __init__(self, in_chans: int = 1, num_classes: int = 3, widths: Sequence[int] = (16, 32, 64, 128)):
        super().__init__()
        _check_positive("in_chans", in_chans)
        layers: list[nn.Module] = []
        c = in_chans
        for wdt in widths:
            layers += [nn.Conv2d(c, wdt, 3, padding=1, bias=False), nn.BatchNorm2d(wdt),
                       nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            c = wdt
        self.features = nn.Sequential(*layers)
        self.num_features = c
        self.in_chans = in_chans
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, num_classes) if num_classes else nn.Identity()

    @property
    def last_conv_layer(self) -> nn.Module:
        """The last ReLU before the final pooling: the usual target layer of Grad-CAM."""
        return self.features[-2]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.forward_features(x)).flatten(1))


def _check_positive(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _shortcut(in_ch: int, out_ch: int, stride: int) -> nn.Module | None:
    if stride == 1 and in_ch == out_ch:
        return None
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch))


class BasicBlock(nn.Module):
    """ResNet-18/34 block: two 3x3 convolutions and a shortcut, ``relu(F(x) + x)``; chapter 2.

    With the residual, a block that has nothing useful to add can learn ``F = 0`` and pass
    its input through; gradients reach early layers through the identity path unchanged.
    """

    expansion = 1

    def __init__(self, in_ch: int, width: int, stride: int = 1):
        super().__init__()
        out_ch = width * self.expansion
        self.conv1 = nn.Conv2d(in_ch, width, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.act1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(width, out_ch, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.act2 = nn.ReLU(inplace=True)
        self.downsample = _shortcut(in_ch, out_ch, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.act2(out + shortcut)


class Bottleneck(nn.Module):
    """ResNet-50/101/152 block: 1x1 reduce, 3x3, 1x1 expand (x4), plus the shortcut; chapter 2."""

    expansion = 4

    def __init__(self, in_ch: int, width: int, stride: int = 1):
        super().__init__()
        out_ch = width * self.expansion
        self.conv1 = nn.Conv2d(in_ch, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.act1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.act2 = nn.ReLU(inplace=True)
        self.conv3 = nn.Conv2d(width, out_ch, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_ch)
        self.act3 = nn.ReLU(inplace=True)
        self.downsample = _shortcut(in_ch, out_ch, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.act2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.act3(out + shortcut)


_BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}


class ResNet(nn.Module):
    """A residual network; chapter 2.

    Parameters
    ----------
    layers:
        Blocks per stage, e.g. ``(2, 2, 2, 2)`` for ResNet-18, ``(3, 4, 6, 3)`` for ResNet-50.
    block:
        ``"basic"`` (:class:`BasicBlock`) or ``"bottleneck"`` (:class:`Bottleneck`).
    widths:
        Width of each stage (the output has ``width * expansion`` channels).
    in_chans, num_classes:
        Input channels; classes of the linear head (``0``: no head, the model returns its
        pooled ``num_features``-dimensional embedding, as timm does).
    stem:
        ``"imagenet"``: 7x7 stride-2 convolution and 3x3 stride-2 max-pool (224-pixel inputs,
        as in the paper and timm); ``"small"``: one 3x3 stride-1 convolution, no pooling
        (for 32-96 pixel crops, where a 4x reduction at the start would lose the detail).
    stem_width:
        Channels after the stem (defaults to ``widths[0]``).
    """

    def __init__(self, layers: Sequence[int] = (2, 2, 2, 2), block: str = "basic",
                 widths: Sequence[int] = (64, 128, 256, 512), in_chans: int = 3,
                 num_classes: int = 1000, stem: str = "imagenet", stem_width: int | None = None):
        super().__init__()
        if block not in _BLOCKS:
            raise ValueError(f"block must be one of {list(_BLOCKS)}, got {block!r}")
        if stem not in ("imagenet", "small"):
            raise ValueError(f"stem must be 'imagenet' or 'small', got {stem!r}")
        if len(layers) != len(widths) or not layers:
            raise ValueError(f"layers {tuple(layers)} and widths {tuple(widths)} must have the same, non-zero length")
        for n in layers:
            _check_positive("blocks per stage", n)
        _check_positive("in_chans", in_chans)
        if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral) or num_classes < 0:
            raise ValueError(f"num_classes must be a non-negative integer, got {num_classes!r}")
        blk = _BLOCKS[block]
        stem_width = stem_width or widths[0]
        if stem == "imagenet":
            self.conv1 = nn.Conv2d(in_chans, stem_width, 7, stride=2, padding=3, bias=False)
            self.maxpool: nn.Module = nn.MaxPool2d(3, stride=2, padding=1)
        else:
            self.conv1 = nn.Conv2d(in_chans, stem_width, 3, stride=1, padding=1, bias=False)
            self.maxpool = nn.Identity()
        self.bn1 = nn.BatchNorm2d(stem_width)
        self.act1 = nn.ReLU(inplace=True)
        c = stem_width
        for i, (n, wdt) in enumerate(zip(layers, widths)):
            stage = []
            for j in range(n):
                stage.append(blk(c, wdt, stride=2 if (j == 0 and i > 0) else 1))
                c = wdt * blk.expansion
            self.add_module(f"layer{i + 1}", nn.Sequential(*stage))
        self.n_stages = len(layers)
        self.num_features = c
        self.in_chans = in_chans
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, num_classes) if num_classes else nn.Identity()
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        # start every residual branch at zero: each block begins as the identity (Goyal et al.)
        for m in self.modules():
            if isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)
            elif isinstance(m, Bottleneck):
                nn.init.zeros_(m.bn3.weight)

    @property
    def last_conv_layer(self) -> nn.Module:
        """The last residual block: the usual target layer of Grad-CAM."""
        return getattr(self, f"layer{self.n_stages}")[-1]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.act1(self.bn1(self.conv1(x))))
        for i in range(self.n_stages):
            x = getattr(self, f"layer{i + 1}")(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.global_pool(self.forward_features(x)).flatten(1))

    # --- the configurations of the paper, and a small one for crops --------------------------
    @classmethod
    def resnet18(cls, **kwargs) -> ResNet:
        """ResNet-18 (11.7 M parameters with the 1000-class head)."""
        return cls(layers=(2, 2, 2, 2), block="basic", **kwargs)

    @classmethod
    def resnet34(cls, **kwargs) -> ResNet:
        return cls(layers=(3, 4, 6, 3), block="basic", **kwargs)

    @classmethod
    def resnet50(cls, **kwargs) -> ResNet:
        """ResNet-50 (25.6 M parameters with the 1000-class head)."""
        return cls(layers=(3, 4, 6, 3), block="bottleneck", **kwargs)

    @classmethod
    def small(cls, in_chans: int = 1, num_classes: int = 3, widths: Sequence[int] = (16, 32, 64, 128),
              layers: Sequence[int] = (1, 1, 1, 1)) -> ResNet:
        """A small ResNet for 32-96 pixel crops: small stem, one basic block per stage."""
        return cls(layers=layers, block="basic", widths=widths, in_chans=in_chans,
                   num_classes=num_classes, stem="small")
