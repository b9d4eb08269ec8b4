"""A fast CIFAR network of the airbench family (Keller Jordan 2024, "94% on CIFAR-10 in 3.29
seconds on a single GPU", arXiv:2404.00498), written from the paper's description.

A 2x2 stem conv (24 channels, no padding) with GELU, then three blocks of conv3x3 -> 2x2 max-pool
-> BN -> GELU -> conv3x3 -> BN -> GELU with widths 64, 256, 256, a global max-pool and a linear
head whose output is scaled by 1/9. The paper initialises the stem by patch whitening of the
training images and freezes the first epochs; that needs the data, so here the stem is an
ordinary learned conv (a trick could add the whitening init). Pools use ceil mode so that 8x8
digits still reach the head with a 1x1 map.
"""

from __future__ import annotations

import torch
from torch import nn


class AirbenchBlock(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, momentum: float) -> None:
        super().__init__(
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.MaxPool2d(2, ceil_mode=True),
            nn.BatchNorm2d(c_out, momentum=momentum), nn.GELU(),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out, momentum=momentum), nn.GELU())


class Airbench(nn.Module):
    def __init__(self, *, widths: tuple[int, int, int], stem: int, in_channels: int, num_classes: int,
                 scale: float = 1 / 9, bn_momentum: float = 0.4) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, stem, 2, bias=True), nn.GELU())
        c_in, blocks = stem, []
        for c in widths:
            blocks.append(AirbenchBlock(c_in, c, bn_momentum))
            c_in = c
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(c_in, num_classes, bias=False)
        self.scale = scale
        for m in self.modules():
            if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3):
                # the paper's partial identity init: the first in_channels filters of each 3x3
                # conv pass their input channel through (torch's dirac_), the rest keep the default
                with torch.no_grad():
                    nn.init.dirac_(m.weight[:min(m.in_channels, m.out_channels)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(x))
        return self.fc(torch.amax(x, dim=(2, 3))) * self.scale
