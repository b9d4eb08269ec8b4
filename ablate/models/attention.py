"""Channel/spatial attention modules inserted into residual branches.

- SE: squeeze-and-excitation, Hu et al. 2018 (arXiv:1709.01507).
- CBAM: channel then spatial attention, Woo et al. 2018 (arXiv:1807.06521).
- SK: selective kernel convolution, Li et al. 2019 (arXiv:1903.06586).
- GC: global context block, Cao et al. 2019 (arXiv:1904.11492).
- BAM: bottleneck attention module, Park et al. 2018 (arXiv:1807.06514).
- SGE: spatial group-wise enhance, Li et al. 2019 (arXiv:1905.09646).
- SRM: style-based recalibration module, Lee et al. 2019 (arXiv:1903.10829).

All of them map (B, C, H, W) to the same shape. GC, BAM, SGE and SRM are written here because
neither torch nor torchvision has them (timm has GC and BAM-like blocks, but timm is optional).

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


class GlobalContext(nn.Module):
    """GC block: softmax attention pooling to one context vector, a bottleneck transform with
    LayerNorm, added to every position (the paper's fusion by addition)."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        h = _hidden(channels, reduction)
        self.attend = nn.Conv2d(channels, 1, 1)
        self.transform = nn.Sequential(nn.Conv2d(channels, h, 1), nn.LayerNorm([h, 1, 1]), nn.ReLU(inplace=True),
                                       nn.Conv2d(h, channels, 1))
        # the last transform conv starts at zero (as in the authors' code), so a block that
        # zero-gamma starts as the identity stays the identity with GC added
        nn.init.zeros_(self.transform[-1].weight)
        nn.init.zeros_(self.transform[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, _, _ = x.shape
        weights = torch.softmax(self.attend(x).reshape(b, 1, -1), dim=-1)         # B, 1, HW
        context = torch.bmm(x.reshape(b, c, -1), weights.transpose(1, 2))         # B, C, 1
        return x + self.transform(context.view(b, c, 1, 1))


class BAM(nn.Module):
    """BAM: channel (pooled MLP) and spatial (1x1 reduce, two dilated 3x3, 1x1) attention, summed,
    sigmoid, applied residually: x + x * M(x)."""

    def __init__(self, channels: int, reduction: int = 16, dilation: int = 4) -> None:
        super().__init__()
        h = _hidden(channels, reduction)
        self.channel = nn.Sequential(nn.Conv2d(channels, h, 1), nn.BatchNorm2d(h), nn.ReLU(inplace=True),
                                     nn.Conv2d(h, channels, 1))
        self.spatial = nn.Sequential(
            nn.Conv2d(channels, h, 1), nn.BatchNorm2d(h), nn.ReLU(inplace=True),
            nn.Conv2d(h, h, 3, padding=dilation, dilation=dilation), nn.BatchNorm2d(h), nn.ReLU(inplace=True),
            nn.Conv2d(h, h, 3, padding=dilation, dilation=dilation), nn.BatchNorm2d(h), nn.ReLU(inplace=True),
            nn.Conv2d(h, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attention = torch.sigmoid(self.channel(x.mean((2, 3), keepdim=True)) + self.spatial(x))
        return x + x * attention


class SpatialGroupEnhance(nn.Module):
    """SGE: in each channel group, the similarity of every position to the group's mean feature,
    normalised over positions, scaled and shifted per group, gates that position. The scale
    starts at 0 and the shift at 1 (the authors' init), so the block starts as x * sigmoid(1)."""

    def __init__(self, channels: int, groups: int = 8) -> None:
        super().__init__()
        self.groups = _largest_divisor(channels, groups)
        self.weight = nn.Parameter(torch.zeros(1, self.groups, 1, 1))
        self.bias = nn.Parameter(torch.ones(1, self.groups, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        xg = x.reshape(b * self.groups, c // self.groups, h, w)
        sim = (xg * xg.mean((2, 3), keepdim=True)).sum(1, keepdim=True)        # B*G, 1, H, W
        sim = sim.reshape(b * self.groups, -1)
        sim = (sim - sim.mean(1, keepdim=True)) / (sim.std(1, correction=0, keepdim=True) + 1e-5)
        gate = sim.reshape(b, self.groups, h, w) * self.weight + self.bias
        return (xg * torch.sigmoid(gate.reshape(b * self.groups, 1, h, w))).reshape(b, c, h, w)


def _largest_divisor(channels: int, at_most: int) -> int:
    return max(d for d in range(1, min(channels, at_most) + 1) if channels % d == 0)


class SRM(nn.Module):
    """SRM: style pooling (per-channel mean and std), a channel-wise fully connected layer over the
    two (a grouped conv), BN, sigmoid gate."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.integrate = nn.Conv1d(channels, channels, 2, groups=channels, bias=False)
        self.bn = nn.BatchNorm1d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, _, _ = x.shape
        flat = x.reshape(b, c, -1)
        std = flat.var(-1, unbiased=False).add(1e-5).sqrt() if flat.shape[-1] > 1 else torch.zeros_like(flat[..., 0])
        style = torch.stack([flat.mean(-1), std], dim=-1)                      # B, C, 2
        gate = torch.sigmoid(self.bn(self.integrate(style)))                   # B, C, 1
        return x * gate.view(b, c, 1, 1)
