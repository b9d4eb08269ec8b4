"""A plain VGG-style ConvNet (conv-BN-ReLU x2, max-pool, three stages): fast, no residual blocks.

Useful as a quick non-ResNet baseline; tricks that need residual branches reject it.
"""

from __future__ import annotations

from torch import nn


def convnet(*, width: int, in_channels: int, num_classes: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    c_in = in_channels
    for mult in (1, 2, 4):
        c = width * mult
        for _ in range(2):
            layers += [nn.Conv2d(c_in, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
            c_in = c
        layers.append(nn.MaxPool2d(2, ceil_mode=True))
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, num_classes)]
    return nn.Sequential(*layers)
