"""Model edits that change normalisation: weight standardisation (with the e-shifted L2
regulariser) and EvoNorm in place of BatchNorm + ReLU.

Weight standardisation is a few lines (written here; timm's StdConv2d would make timm, an
optional extra, a core dependency). EvoNorm B0/S0 come from timm (`timm.layers`), which the
EvoNorm tricks require.
"""

from __future__ import annotations

import math

import torch
from torch import nn

WS_EPS = 1e-5   # added to each filter's standard deviation, as in Qiao et al.'s code


def standardize_weight(w: torch.Tensor, eps: float = WS_EPS) -> torch.Tensor:
    """Qiao et al. 2019: each output filter of a conv weight to zero mean and unit std
    (unbiased std + eps, as their code)."""
    flat = w.flatten(1)
    mean = flat.mean(1).view(-1, 1, 1, 1)
    std = flat.std(1).view(-1, 1, 1, 1) + eps
    return (w - mean) / std


class WSConv2d(nn.Conv2d):
    """A Conv2d that convolves with its standardised weight (the stored weight is not changed)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, standardize_weight(self.weight), self.bias)


def _replace(parent: nn.Module, name: str, new: nn.Module) -> None:
    if isinstance(parent, nn.Sequential):
        parent[int(name)] = new
    else:
        setattr(parent, name, new)


def standardize_convs(model: nn.Module) -> int:
    """Swap every plain Conv2d whose filters have more than one weight for a WSConv2d sharing
    the same parameters. Returns the number swapped."""
    swaps = []
    for parent in model.modules():
        for name, child in parent.named_children():
            if type(child) is nn.Conv2d and child.weight[0].numel() > 1:
                swaps.append((parent, name, child))
    for parent, name, conv in swaps:
        ws = WSConv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                      conv.dilation, conv.groups, conv.bias is not None, conv.padding_mode,
                      device=conv.weight.device, dtype=conv.weight.dtype)
        ws.weight, ws.bias = conv.weight, conv.bias
        _replace(parent, name, ws)
    return len(swaps)


def shifted_l2_weights(model: nn.Module) -> list[torch.Tensor]:
    """The weights the e-shifted L2 regulariser covers: standardised convs, depthwise ones left
    out as in the write-up's code. (That code tests `weight.shape[1] != 1`, which also drops a
    stem conv on 1-channel images; here only true depthwise convs, groups == in_channels > 1.)"""
    return [m.weight for m in model.modules()
            if isinstance(m, WSConv2d) and not (m.groups > 1 and m.groups == m.in_channels)]


def shifted_l2(weights: list[torch.Tensor], shift: float) -> torch.Tensor:
    """Li, Chen & Yang 2019's e-shifted L2 on standardised conv weights, per output filter w of
    n weights with mean m and (unbiased) std s: 1/2 [(n - 1)(s - e)^2 + n m^2].

    With e = 0 it is 1/2 |w|^2 (plain L2: (n - 1) s^2 + n m^2 = |w|^2). Its gradient,
    (1 - e / s)(w - m) + m, is the update of the write-up's code (`--el2 --mineps e`): it stops
    shrinking a filter whose std reaches e, where plain L2 on a scale-invariant (standardised)
    weight would drive it to zero and make the effective learning rate blow up."""
    total = torch.zeros((), device=weights[0].device if weights else "cpu")
    for w in weights:
        flat = w.flatten(1)
        n = flat.shape[1]
        total = total + 0.5 * ((n - 1) * (flat.std(1) - shift) ** 2 + n * flat.mean(1) ** 2).sum()
    return total


# -- EvoNorm ----------------------------------------------------------------------------------

def _evonorm(kind: str, channels: int, *, act: bool, groups: int) -> nn.Module:
    """An EvoNorm layer; without the nonlinearity (where a BN had no ReLU after it) its v is
    fixed at 0, which keeps the normalisation: B0 becomes x / max(batch std, instance std), S0
    x / (2 group std). (timm's `apply_act=False` would drop the division as well, leaving an
    affine layer: the end of every residual branch unnormalised, which with weight
    standardisation made a ResNet-18's loss overflow in three steps.)"""
    from timm.layers import EvoNorm2dB0, EvoNorm2dS0

    if kind == "b0":
        layer = EvoNorm2dB0(channels, apply_act=True)
    else:
        layer = EvoNorm2dS0(channels, groups=math.gcd(groups, channels), apply_act=True)
    if not act:
        with torch.no_grad():
            layer.v.zero_()
        layer.v.requires_grad_(False)
    return layer


def _is_bn(m) -> bool:
    return isinstance(m, nn.BatchNorm2d)


def replace_bn_relu(model: nn.Module, kind: str, groups: int = 32) -> int:
    """Liu et al. 2020: every BatchNorm-ReLU pair becomes one EvoNorm layer (its own
    nonlinearity); a BatchNorm with no ReLU after it (the end of a residual branch, a shortcut
    projection) becomes EvoNorm without the nonlinearity. The ReLU after a residual addition
    stays. Handles torchvision's BasicBlock/Bottleneck (whose one `relu` module serves the BNs
    and the addition: it becomes Identity and the block is followed by a ReLU), a model-level
    bn1/relu stem, and (BN, ReLU) neighbours in any nn.Sequential. Returns the number of BNs
    replaced. Pre-activation blocks apply a functional ReLU, which this cannot see: the trick
    refuses them."""
    from torchvision.models import resnet as tv

    count = 0

    def evo(channels, act):
        return _evonorm(kind, channels, act=act, groups=groups)

    def swap_bn(owner: nn.Module, name: str, act: bool) -> None:
        nonlocal count
        mod = getattr(owner, name)
        if isinstance(mod, nn.Sequential) and _is_bn(mod[0]):   # wrapped by attention or a branch trick
            mod[0] = evo(mod[0].num_features, act)
        elif _is_bn(mod):
            setattr(owner, name, evo(mod.num_features, act))
        else:
            return
        count += 1

    blocks = [(parent, name, child) for parent in model.modules() for name, child in parent.named_children()
              if isinstance(child, (tv.BasicBlock, tv.Bottleneck))]
    for parent, name, block in blocks:
        bns = ["bn1", "bn2", "bn3"] if isinstance(block, tv.Bottleneck) else ["bn1", "bn2"]
        for bn in bns[:-1]:
            swap_bn(block, bn, act=True)
        swap_bn(block, bns[-1], act=False)
        block.relu = nn.Identity()
        _replace(parent, name, nn.Sequential(block, nn.ReLU(inplace=True)))
    if _is_bn(getattr(model, "bn1", None)) and isinstance(getattr(model, "relu", None), nn.ReLU):
        swap_bn(model, "bn1", act=True)
        model.relu = nn.Identity()
    for seq in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
        for i in range(len(seq) - 1):
            if _is_bn(seq[i]) and isinstance(seq[i + 1], nn.ReLU):
                seq[i] = evo(seq[i].num_features, True)
                seq[i + 1] = nn.Identity()
                count += 1
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if _is_bn(child):
                _replace(parent, name, evo(child.num_features, False))
                count += 1
    return count


def count_batchnorms(model: nn.Module) -> int:
    return sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


__all__ = ["WSConv2d", "standardize_weight", "standardize_convs", "shifted_l2", "shifted_l2_weights",
           "replace_bn_relu", "count_batchnorms"]
