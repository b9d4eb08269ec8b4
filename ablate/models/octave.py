"""Octave-convolution ResNet (Chen et al. 2019, Drop an Octave, arXiv:1904.05049).

Every feature map is split into a high-frequency part at full resolution and a low-frequency
part (a fraction `alpha` of the channels) at half resolution; an octave conv computes the four
paths high->high, high->low (pool then conv), low->high (conv then upsample), low->low.

Its own small family (a CIFAR ResNet, 6n+2 basic blocks) rather than an option on the existing
ResNets: blocks carry a (high, low) pair of tensors, so a ResNet block's convs, BNs and
shortcut all change type, and the edits other tricks make to torchvision-style blocks
(zero-gamma's BN, SE/CBAM after bn2, SK replacing conv2, ResNet-B/D) would not find what they
expect. The tricks that need a ResNet therefore refuse this family (its `model_info` family is
"octave resnet"). The head average-pools both parts and concatenates them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ablate.models.resnet import kaiming_init

Pair = tuple[torch.Tensor, torch.Tensor | None]


def _split(channels: int, alpha: float) -> tuple[int, int]:
    low = int(round(alpha * channels))
    return channels - low, low


class OctaveConv(nn.Module):
    """k x k octave conv from (c_in, alpha_in) to (c_out, alpha_out); stride 1 or 2."""

    def __init__(self, c_in: int, c_out: int, k: int, *, alpha_in: float, alpha_out: float, stride: int = 1) -> None:
        super().__init__()
        (hi_in, lo_in), (hi_out, lo_out) = _split(c_in, alpha_in), _split(c_out, alpha_out)
        self.stride = stride

        def conv(a: int, b: int) -> nn.Conv2d | None:
            return nn.Conv2d(a, b, k, 1, k // 2, bias=False) if a and b else None

        self.hh, self.hl = conv(hi_in, hi_out), conv(hi_in, lo_out)
        self.lh, self.ll = conv(lo_in, hi_out), conv(lo_in, lo_out)

    def forward(self, x: Pair) -> Pair:
        hi, lo = x
        if self.stride == 2:
            hi = F.avg_pool2d(hi, 2, ceil_mode=True)
            lo = F.avg_pool2d(lo, 2, ceil_mode=True) if lo is not None else None
        out_hi = self.hh(hi) if self.hh is not None else None
        out_lo = self.hl(F.avg_pool2d(hi, 2, ceil_mode=True)) if self.hl is not None else None
        if lo is not None:
            if self.lh is not None:
                up = F.interpolate(self.lh(lo), size=hi.shape[-2:], mode="nearest")
                out_hi = up if out_hi is None else out_hi + up
            if self.ll is not None:
                out_lo = self.ll(lo) if out_lo is None else out_lo + self.ll(lo)
        return out_hi, out_lo


class OctaveBN(nn.Module):
    """BN (and optionally ReLU) on each part."""

    def __init__(self, channels: int, alpha: float, relu: bool) -> None:
        super().__init__()
        hi, lo = _split(channels, alpha)
        self.hi = nn.BatchNorm2d(hi)
        self.lo = nn.BatchNorm2d(lo) if lo else None
        self.relu = relu

    def forward(self, x: Pair) -> Pair:
        hi, lo = self.hi(x[0]), self.lo(x[1]) if self.lo is not None else None
        if self.relu:
            hi, lo = F.relu(hi), F.relu(lo) if lo is not None else None
        return hi, lo


class OctaveBlock(nn.Module):
    """Basic block: octave conv-BN-ReLU, octave conv-BN, plus the shortcut (an octave 1x1
    projection with BN where the shape changes), then ReLU."""

    def __init__(self, c_in: int, c_out: int, stride: int, alpha: float) -> None:
        super().__init__()
        self.conv1 = OctaveConv(c_in, c_out, 3, alpha_in=alpha, alpha_out=alpha, stride=stride)
        self.bn1 = OctaveBN(c_out, alpha, relu=True)
        self.conv2 = OctaveConv(c_out, c_out, 3, alpha_in=alpha, alpha_out=alpha)
        self.bn2 = OctaveBN(c_out, alpha, relu=False)
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(OctaveConv(c_in, c_out, 1, alpha_in=alpha, alpha_out=alpha,
                                                       stride=stride), OctaveBN(c_out, alpha, relu=False))

    def forward(self, x: Pair) -> Pair:
        out = self.bn2(self.conv2(self.bn1(self.conv1(x))))
        short = self.downsample(x) if self.downsample is not None else x
        hi = F.relu(out[0] + short[0])
        lo = F.relu(out[1] + short[1]) if out[1] is not None else None
        return hi, lo


class OctaveResNet(nn.Module):
    def __init__(self, *, depth: int, width: int, alpha: float, in_channels: int, num_classes: int) -> None:
        super().__init__()
        n = (depth - 2) // 6
        self.conv1 = OctaveConv(in_channels, width, 3, alpha_in=0.0, alpha_out=alpha)
        self.bn1 = OctaveBN(width, alpha, relu=True)
        blocks, c_in = [], width
        for i, c in enumerate((width, 2 * width, 4 * width)):
            for j in range(n):
                blocks.append(OctaveBlock(c_in, c, 2 if (i > 0 and j == 0) else 1, alpha))
                c_in = c
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(c_in, num_classes)
        kaiming_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hi, lo = self.blocks(self.bn1(self.conv1((x, None))))
        pooled = [hi.mean((2, 3))] + ([lo.mean((2, 3))] if lo is not None else [])
        return self.fc(torch.cat(pooled, dim=1))
