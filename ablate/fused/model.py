"""M models of one architecture as one model: grouped convolutions with per-member normalisation.

The layout (HFTA, Wang et al., MLSys 2021, arXiv:2102.02344): member k's activations are
channels [k*C, (k+1)*C) of a (B, M*C, H, W) batch. A Conv2d becomes one Conv2d with M times the
groups, a BatchNorm2d over C channels becomes one over M*C channels (each member keeps its own
batch statistics, affine parameters and running statistics, so its eval equals its own model's
eval), a Linear becomes a batched matmul. Parameter-free layers (ReLU, pooling, flatten, the
residual additions) act per channel and need no change.

Why grouped convolutions rather than torch.func (stack_module_state + functional_call + vmap):
measured on this project's CPU (2 shared cores, no GPU was available), one forward + backward
of 5 members of the `convnet` (width 16) on 5 x 64 CIFAR-shaped images took 2.78 s with vmap,
0.23 s as the grouped model here, and 0.17 s as 5 plain models one after another (2 threads);
with 1 thread on a heavily loaded machine 4.7 s, 3.5 s and 2.9 s (`benchmarks/fused_trials.py
--approach`). vmap was never faster, and it needs the members' BatchNorm buffers stacked and
passed in (the functorch docs' "patching batch norm") to keep per-member running statistics,
which the grouped form has by construction. Both computed the same outputs. On the CPU a
grouped convolution is slower than the members' own convolutions once they keep the cores
busy (the 25-member ResNet-20 group of the benchmark ran 2.6x slower); the CPU gain is in
per-step overhead on tiny models. On a GPU the gain HFTA reports comes from filling an idle
device; it has not been measured here (no GPU).

Only modules whose behaviour is known to be per channel are accepted (`FUSABLE_CONTAINERS` and
the converted leaves); anything else raises `NotFusable` and the executor runs those trials one
at a time, so an unknown model is never fused wrongly.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import resnet as tv

from ablate.models.airbench import Airbench, AirbenchBlock
from ablate.models.resnet import CifarResNet, PaddingShortcut, PreActBlock


class NotFusable(Exception):
    """The models cannot be fused (an unknown module, or members of different shapes)."""


class FusedLinear(nn.Module):
    """M Linear layers on a (B, M*in) input -> (B, M*out): one batched matmul."""

    def __init__(self, layers: list[nn.Linear]) -> None:
        super().__init__()
        self.members, self.in_features, self.out_features = len(layers), layers[0].in_features, layers[0].out_features
        self.weight = nn.Parameter(torch.stack([m.weight.detach() for m in layers]))     # (M, out, in)
        self.bias = (nn.Parameter(torch.stack([m.bias.detach() for m in layers]))        # (M, out)
                     if layers[0].bias is not None else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        xm = x.reshape(b, self.members, self.in_features).transpose(0, 1)             # (M, B, in)
        if self.bias is None:
            out = torch.bmm(xm, self.weight.transpose(1, 2))
        else:
            out = torch.baddbmm(self.bias.unsqueeze(1), xm, self.weight.transpose(1, 2))
        return out.transpose(0, 1).reshape(b, self.members * self.out_features)


class FusedPaddingShortcut(nn.Module):
    """The option-A shortcut for each member: zero channels appended per member, not at the end."""

    def __init__(self, members: int, shortcut: PaddingShortcut) -> None:
        super().__init__()
        self.members, self.out_channels, self.stride = members, shortcut.out_channels, shortcut.stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, ::self.stride, ::self.stride]
        b, mc, h, w = x.shape
        c = mc // self.members
        x = F.pad(x.reshape(b, self.members, c, h, w), (0, 0, 0, 0, 0, self.out_channels - c))
        return x.reshape(b, self.members * self.out_channels, h, w)


# Modules kept as they are: they only call their children and per-channel operations.
# (Airbench's head takes a max over space per channel and scales the logits by a constant.)
FUSABLE_CONTAINERS = (nn.Sequential, nn.ReLU, nn.GELU, nn.Identity, nn.MaxPool2d, nn.AvgPool2d,
                      nn.AdaptiveAvgPool2d, nn.Flatten, tv.BasicBlock, tv.Bottleneck, tv.ResNet, PreActBlock,
                      CifarResNet, Airbench, AirbenchBlock)


def _fuse_conv(convs: list[nn.Conv2d]) -> nn.Conv2d:
    c, m = convs[0], len(convs)
    fused = nn.Conv2d(m * c.in_channels, m * c.out_channels, c.kernel_size, c.stride, c.padding, c.dilation,
                      groups=m * c.groups, bias=c.bias is not None, padding_mode=c.padding_mode,
                      device=c.weight.device, dtype=c.weight.dtype)
    with torch.no_grad():
        fused.weight.copy_(torch.cat([k.weight for k in convs]))
        if c.bias is not None:
            fused.bias.copy_(torch.cat([k.bias for k in convs]))
    return fused


def _fuse_norm(norms: list[nn.BatchNorm2d]) -> nn.BatchNorm2d:
    n, m = norms[0], len(norms)
    fused = nn.BatchNorm2d(m * n.num_features, n.eps, n.momentum, n.affine, n.track_running_stats,
                           device=(n.weight if n.affine else n.running_mean).device)
    with torch.no_grad():
        for name in ("weight", "bias", "running_mean", "running_var"):
            if getattr(n, name) is not None:
                getattr(fused, name).copy_(torch.cat([getattr(k, name) for k in norms]))
        if n.track_running_stats:
            fused.num_batches_tracked.copy_(n.num_batches_tracked)
    return fused


def _fuse(modules: list[nn.Module]) -> nn.Module:
    first = modules[0]
    if any(type(m) is not type(first) for m in modules):
        raise NotFusable(f"members differ in structure: {sorted({type(m).__name__ for m in modules})}")
    if type(first) is nn.Conv2d:
        return _fuse_conv(modules)
    if type(first) is nn.BatchNorm2d:
        return _fuse_norm(modules)
    if type(first) is nn.Linear:
        return FusedLinear(modules)
    if type(first) is PaddingShortcut:
        return FusedPaddingShortcut(len(modules), first)
    if type(first) not in FUSABLE_CONTAINERS:     # subclasses may add their own behaviour
        raise NotFusable(f"the fused executor does not know how to fuse a {type(first).__name__}")
    if any(True for _ in first.parameters(recurse=False)) or any(True for _ in first.buffers(recurse=False)):
        raise NotFusable(f"{type(first).__name__} holds its own parameters")
    fused = copy.copy(first)                       # a shallow copy whose children are replaced below
    fused._modules = dict(first._modules)
    for name, child in first.named_children():
        children = [m._modules[name] for m in modules]
        if any(c is None for c in children):
            fused._modules[name] = None
            continue
        fused._modules[name] = _fuse(children)
    return fused


def fuse_models(models: list[nn.Module]) -> nn.Module:
    """One module computing all `models` on (B, M*C, H, W) inputs -> (B, M*K) logits. The
    members' weights and buffers are copied; the members are left unchanged."""
    shapes = {tuple((n, tuple(p.shape)) for n, p in m.state_dict().items()) for m in models}
    if len(shapes) != 1:
        raise NotFusable("members have different parameter shapes")
    return _fuse(list(models))


def member_view(tensor: torch.Tensor, members: int) -> torch.Tensor:
    """A fused parameter, gradient or buffer as (M, n): member k's values in row k."""
    return tensor.view(members, -1)


def unfuse_into(fused: nn.Module, models: list[nn.Module]) -> None:
    """Copy each member's trained weights and buffers from `fused` back into `models[k]`.
    Fused state-dict entries have the members' names and hold the members along dim 0."""
    m = len(models)
    state = fused.state_dict()
    with torch.no_grad():
        for k, model in enumerate(models):
            for name, value in model.state_dict().items():
                source = state[name]
                if name.endswith("num_batches_tracked"):
                    value.copy_(source)
                else:
                    value.copy_(member_view(source, m)[k].view_as(value))


def fuse_input(xs: torch.Tensor) -> torch.Tensor:
    """(M, B, C, H, W) member batches -> (B, M*C, H, W)."""
    m, b, c, h, w = xs.shape
    return xs.transpose(0, 1).reshape(b, m * c, h, w)


def split_output(out: torch.Tensor, members: int) -> torch.Tensor:
    """(B, M*K) fused logits -> (M, B, K)."""
    return out.view(out.shape[0], members, -1).transpose(0, 1)
