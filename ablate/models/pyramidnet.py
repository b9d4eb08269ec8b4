"""PyramidNet (Han, Kim & Kim 2017, Deep Pyramidal Residual Networks, arXiv:1610.02915).

Widths grow additively by alpha / N per block (N blocks in all), from 16 after the stem to
16 + alpha at the end, instead of doubling at each stage. Blocks (the paper's Fig. 6d): BN-conv-BN-
ReLU-conv-BN (basic) or BN-1x1-BN-ReLU-3x3-BN-ReLU-1x1(x4)-BN (bottleneck), no ReLU after the
addition. Shortcuts have no weights: a 2x2 average pool when the block downsamples and zero
channels appended where the width grows. PyramidNet-110 alpha=48 has 1.7M parameters, the
bottleneck PyramidNet-272 alpha=200 26.0M (Table 4).

Blocks expose `branch` and `shortcut` and compute `branch(x) + shortcut(x)`, so tricks that
wrap residual branches (ShakeDrop was proposed on this network) can find them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ablate.models.resnet import kaiming_init


class PadShortcut(nn.Module):
    """Average-pool when downsampling, then zero-pad channels up to the block's output width."""

    def __init__(self, out_channels: int, stride: int) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.pool = nn.AvgPool2d(2, 2, ceil_mode=True) if stride != 1 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(x)
        return F.pad(x, (0, 0, 0, 0, 0, self.out_channels - x.shape[1]))


def _bn_conv(c_in: int, c_out: int, k: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, k, stride, k // 2, bias=False), nn.BatchNorm2d(c_out)]


class PyramidBlock(nn.Module):
    # the residual-block protocol (ablate.models.blocks): ShakeDrop and stochastic depth wrap
    # `branch`, whose output is added to the shortcut (ShakeDrop's paper uses PyramidNet)
    residual_branch_end = "branch"

    def __init__(self, inplanes: int, planes: int, stride: int, bottleneck: bool) -> None:
        super().__init__()
        if bottleneck:
            out = planes * 4
            layers = [nn.BatchNorm2d(inplanes), *_bn_conv(inplanes, planes, 1), nn.ReLU(inplace=True),
                      *_bn_conv(planes, planes, 3, stride), nn.ReLU(inplace=True), *_bn_conv(planes, out, 1)]
        else:
            out = planes
            layers = [nn.BatchNorm2d(inplanes), *_bn_conv(inplanes, planes, 3, stride), nn.ReLU(inplace=True),
                      *_bn_conv(planes, planes, 3)]
        self.branch = nn.Sequential(*layers)
        self.shortcut = PadShortcut(out, stride)
        self.out_channels = out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.branch(x) + self.shortcut(x)


def pyramid_widths(depth: int, alpha: float, bottleneck: bool) -> list[int]:
    """The branch width of each block: 16 + alpha * k / N, rounded down (the authors' code)."""
    per = 9 if bottleneck else 6
    total = 3 * ((depth - 2) // per)
    return [int(16 + alpha * k / total) for k in range(1, total + 1)]


class PyramidNet(nn.Module):
    def __init__(self, *, depth: int, alpha: float, bottleneck: bool, in_channels: int, num_classes: int) -> None:
        super().__init__()
        widths = pyramid_widths(depth, alpha, bottleneck)
        per_stage = len(widths) // 3
        self.conv1 = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        blocks, inplanes = [], 16
        for k, planes in enumerate(widths):
            stride = 2 if k in (per_stage, 2 * per_stage) else 1
            block = PyramidBlock(inplanes, planes, stride, bottleneck)
            blocks.append(block)
            inplanes = block.out_channels
        self.blocks = nn.Sequential(*blocks)
        self.final_bn = nn.Sequential(nn.BatchNorm2d(inplanes), nn.ReLU(inplace=True))
        self.fc = nn.Linear(inplanes, num_classes)
        kaiming_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.bn1(self.conv1(x)))
        x = self.final_bn(x)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))
