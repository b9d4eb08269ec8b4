"""Wide residual networks (Zagoruyko & Komodakis 2016, Wide Residual Networks, arXiv:1605.07146).

WRN-d-k: depth d = 6n+4 (n pre-activation basic blocks per stage, plus the stem conv, the three
stage transitions' 1x1 shortcuts being counted by the paper's convention), stage widths 16k,
32k, 64k after a 16-channel stem, dropout between the two 3x3 convs of a block. Shortcuts that
change shape are 1x1 convs (no BN) fed by the pre-activated input, as in the authors' code.

The blocks are `PreActBlock`s (ablate.models.resnet) with an optional dropout, so every edit
that works on pre-activation ResNets (zero-gamma, attention, SK, ResNet-C/D) works here too.
WRN-28-10 has 36.5M parameters, WRN-16-4 2.7M (Table 1 and 2 of the paper).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ablate.models.resnet import PreActBlock, kaiming_init


class WideBlock(PreActBlock):
    """BN-ReLU-conv3x3-dropout-BN-ReLU-conv3x3 (the paper's B(3,3) block with dropout)."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 dropout: float = 0.0) -> None:
        super().__init__(inplanes, planes, stride, downsample)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(x))
        shortcut = self.downsample(out) if self.downsample is not None else x
        out = self.dropout(self.conv1(out))
        out = self.conv2(F.relu(self.bn2(out)))
        return out + shortcut


class WideResNet(nn.Module):
    def __init__(self, *, depth: int, widen: int, dropout: float, in_channels: int, num_classes: int) -> None:
        super().__init__()
        n = (depth - 4) // 6
        self.preact = True
        self.conv1 = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        inplanes = 16
        stages = []
        for i, planes in enumerate((16 * widen, 32 * widen, 64 * widen)):
            blocks = []
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                down = None
                if stride != 1 or inplanes != planes:
                    # a Sequential so that ResNet-D (avgpool_shortcut) can edit it
                    down = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False))
                blocks.append(WideBlock(inplanes, planes, stride, down, dropout))
                inplanes = planes
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.final_bn = nn.Sequential(nn.BatchNorm2d(inplanes), nn.ReLU(inplace=True))
        self.fc = nn.Linear(inplanes, num_classes)
        kaiming_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer3(self.layer2(self.layer1(self.conv1(x))))
        x = self.final_bn(x)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))
