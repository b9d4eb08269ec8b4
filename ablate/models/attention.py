"""Channel/spatial attention modules inserted into residual branches.

- SE: squeeze-and-excitation, Hu et al. 2018 (arXiv:1709.01507).
- CBAM: channel then spatial attention, Woo et al. 2018 (arXiv:1807.06521).
- SK: selective kernel convolution, Li et al. 2019 (arXiv:1903.06586).

Small CIFAR widths (16 channels) would leave a reduction-16 bottleneck with one unit, so the
hidden width is floored at `min_hidden` (PytorchInsight's CIFAR variants do the same kind of
clamp).
"""

from __future__ import annotations

import torch
from torch import nn


def _hidden(channels: int, reduction: int, min_hidden: int = 4) -> int:
    return max(channels // reduction, min_hidden)


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        h = _hidden(channels, reduction)
        self.fc1 = nn.Conv2d(channels, h, 1)
        self.fc2 = nn.Conv2d(h, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        return x * torch.sigmoid(self.fc2(torch.relu(self.fc1(s))))


class CBAM(nn.Module):
    def __init__(self, channels: int, reduction: int = 16, kernel_size: int = 7) -> None:
        super().__init__()
        h = _hidden(channels, reduction)
        self.mlp = nn.Sequential(nn.Conv2d(channels, h, 1), nn.ReLU(inplace=True), nn.Conv2d(h, channels, 1))
        self.spatial = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = self.mlp(x.mean((2, 3), keepdim=True))
        mx = self.mlp(x.amax((2, 3), keepdim=True))
        x = x * torch.sigmoid(avg + mx)
        pooled = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.spatial(pooled))


class SelectiveKernelConv(nn.Module):
    """Two 3x3 branches (dilation 1 and 2, i.e. 3x3 and 5x5 receptive fields) fused by softmax attention."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, reduction: int = 16,
                 min_hidden: int = 32) -> None:
        super().__init__()
        self.branches = nn.ModuleList([
            nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 3, stride, padding=d, dilation=d, bias=False),
                nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))
            for d in (1, 2)
        ])
        h = max(out_channels // reduction, min_hidden)
        self.squeeze = nn.Sequential(nn.Conv2d(out_channels, h, 1, bias=False), nn.BatchNorm2d(h),
                                     nn.ReLU(inplace=True))
        self.select = nn.Conv2d(h, out_channels * 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = torch.stack([b(x) for b in self.branches], dim=1)       # B, 2, C, H, W
        z = self.squeeze(feats.sum(1).mean((2, 3), keepdim=True))      # B, h, 1, 1
        b, _, c, _, _ = feats.shape
        weights = torch.softmax(self.select(z).view(b, 2, c, 1, 1), dim=1)
        return (feats * weights).sum(1)
