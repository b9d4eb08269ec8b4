"""Shake-Shake regularised ResNet-26 (Gastaldi 2017, Shake-Shake regularization, arXiv:1705.07485).

ResNet-26 "2xWd": three stages of 4 blocks with widths W, 2W, 4W after a 16-channel stem; each
block adds two parallel ReLU-conv3x3-BN-ReLU-conv3x3-BN branches mixed as a*b1 + (1-a)*b2 in the
forward pass and with an independent b in the backward pass (Shake-Shake-Image: a, b ~ U(0, 1)
per image); 0.5 at evaluation. Downsampling shortcuts: ReLU, two 1x1 convs on stride-2 samples
offset by one pixel, concatenated, BN. 2x32d has 2.9M parameters, 2x96d 26.2M (Table 1).

The coefficients come from the model's own generator, seeded once when the model is built (from
the trial's "init" stream, see `ablate.train.seeded_model`), never from the global RNG.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ablate.models.resnet import kaiming_init


class _Shake(torch.autograd.Function):
    """a*x1 + (1-a)*x2 forward; the gradient is split by b, not a (the paper's Eq. 2-3)."""

    @staticmethod
    def forward(ctx, x1, x2, alpha, beta):
        ctx.save_for_backward(beta)
        return alpha * x1 + (1 - alpha) * x2

    @staticmethod
    def backward(ctx, grad):
        (beta,) = ctx.saved_tensors
        return beta * grad, (1 - beta) * grad, None, None


def shake(x1: torch.Tensor, x2: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    return _Shake.apply(x1, x2, alpha, beta)


class _Coefficients:
    """Per-image U(0, 1) draws from one generator per device, all seeded from one number."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._generators: dict[torch.device, torch.Generator] = {}

    def draw(self, x: torch.Tensor) -> torch.Tensor:
        g = self._generators.get(x.device)
        if g is None:
            g = self._generators[x.device] = torch.Generator(device=x.device).manual_seed(self.seed)
        return torch.rand(x.shape[0], 1, 1, 1, generator=g, device=x.device, dtype=x.dtype)


def _branch(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.ReLU(inplace=False), nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
                         nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out))


class SkipShortcut(nn.Module):
    """The paper's downsampling shortcut: two half-width 1x1 convs on offset stride-2 samples."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.conv_a = nn.Conv2d(c_in, c_out // 2, 1, bias=False)
        self.conv_b = nn.Conv2d(c_in, c_out - c_out // 2, 1, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(x)
        s = self.stride
        a = x[:, :, ::s, ::s]
        b = F.pad(x, (0, 1, 0, 1))[:, :, 1::s, 1::s][:, :, :a.shape[2], :a.shape[3]]
        return self.bn(torch.cat([self.conv_a(a), self.conv_b(b)], dim=1))


class ShakeBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, coefficients: _Coefficients) -> None:
        super().__init__()
        self.branch1, self.branch2 = _branch(c_in, c_out, stride), _branch(c_in, c_out, stride)
        self.shortcut = nn.Identity() if (stride == 1 and c_in == c_out) else SkipShortcut(c_in, c_out, stride)
        self.coefficients = coefficients

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1, b2 = self.branch1(x), self.branch2(x)
        if self.training:
            mixed = shake(b1, b2, self.coefficients.draw(b1), self.coefficients.draw(b1))
        else:
            mixed = 0.5 * (b1 + b2)
        return mixed + self.shortcut(x)


class ShakeShakeResNet(nn.Module):
    def __init__(self, *, depth: int, width: int, in_channels: int, num_classes: int) -> None:
        super().__init__()
        n = (depth - 2) // 6
        # drawn from the (seeded, forked) global RNG at build time only: see the module docstring
        self.coefficients = _Coefficients(int(torch.randint(0, 2**62, (), device="cpu")))
        self.conv1 = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        blocks, c_in = [], 16
        for i, c_out in enumerate((width, 2 * width, 4 * width)):
            for j in range(n):
                blocks.append(ShakeBlock(c_in, c_out, 2 if (i > 0 and j == 0) else 1, self.coefficients))
                c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(c_in, num_classes)
        kaiming_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.blocks(self.bn1(self.conv1(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))
