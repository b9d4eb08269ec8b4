"""ResNets for small images, and the structural edits that tricks make to them.

`cifar_resnet` is the 3-stage CIFAR ResNet of He et al. 2016 (depth 6n+2 with basic blocks,
9n+2 with bottlenecks; widths 16/32/64 x `width`/16), optionally pre-activation (He et al.
2016, Identity Mappings, arXiv:1603.05027). `resnet18/34/50` are torchvision's ImageNet
ResNets with a 3x3 stride-1 stem and no max-pool, as usual for 32x32 inputs.

The baseline is the *original* ResNet in both cases: bottlenecks stride in their first 1x1
conv and downsampling shortcuts are strided 1x1 projections. The bag-of-tricks tweaks
(He et al. 2019, arXiv:1812.01187) are then edits on the built model:

- B: stride moves to the 3x3 conv of downsampling bottlenecks (torchvision's "v1.5");
- C: the stem conv becomes three 3x3 convs;
- D: downsampling shortcuts average-pool 2x2 before a stride-1 projection.

Blocks are torchvision's `BasicBlock`/`Bottleneck` (plus a pre-activation block written here,
which torchvision lacks), so every edit below works on every ResNet ablate builds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import resnet as tv

from ablate.models.attention import (
    BAM,
    CBAM,
    SRM,
    GlobalContext,
    SelectiveKernelConv,
    SpatialGroupEnhance,
    SqueezeExcite,
)


class PreActBlock(nn.Module):
    """Pre-activation basic block: BN-ReLU-conv twice; the shortcut sees the pre-activated input
    when it projects."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes)
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(x))
        shortcut = self.downsample(out) if self.downsample is not None else x
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + shortcut


class PaddingShortcut(nn.Module):
    """Option-A shortcut of the CIFAR ResNet paper: subsample and zero-pad channels (no weights)."""

    def __init__(self, out_channels: int, stride: int) -> None:
        super().__init__()
        self.out_channels, self.stride = out_channels, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, ::self.stride, ::self.stride]
        pad = self.out_channels - x.shape[1]
        return F.pad(x, (0, 0, 0, 0, 0, pad))


def _projection(inplanes: int, outplanes: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(inplanes, outplanes, 1, stride, bias=False), nn.BatchNorm2d(outplanes))


class CifarResNet(nn.Module):
    def __init__(self, *, depth: int, width: int, block: str, preact: bool, shortcut: str,
                 in_channels: int, num_classes: int) -> None:
        super().__init__()
        per = 9 if block == "bottleneck" else 6
        n = (depth - 2) // per
        if block == "bottleneck":
            block_cls = tv.Bottleneck
        else:
            block_cls = PreActBlock if preact else tv.BasicBlock
        self.preact = preact
        self.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        self.bn1 = nn.Identity() if preact else nn.BatchNorm2d(width)
        self.relu = nn.Identity() if preact else nn.ReLU(inplace=True)
        inplanes = width
        stages = []
        for i, planes in enumerate((width, 2 * width, 4 * width)):
            blocks = []
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                out = planes * block_cls.expansion
                down = None
                if stride != 1 or inplanes != out:
                    down = (PaddingShortcut(out, stride) if shortcut == "padding"
                            else _projection(inplanes, out, stride))
                blocks.append(block_cls(inplanes, planes, stride, down))
                inplanes = out
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.final_bn = nn.Sequential(nn.BatchNorm2d(inplanes), nn.ReLU(inplace=True)) if preact else nn.Identity()
        self.fc = nn.Linear(inplanes, num_classes)
        kaiming_init(self)
        _stride_in_first_conv(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        x = self.final_bn(x)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def kaiming_init(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def torchvision_resnet(arch: str, *, in_channels: int, num_classes: int) -> nn.Module:
    """torchvision's ResNet with a small-image stem (3x3 stride 1, no max-pool)."""
    model = getattr(tv, arch)(weights=None, num_classes=num_classes)
    model.conv1 = nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False)
    nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    model.maxpool = nn.Identity()
    _stride_in_first_conv(model)
    return model


def iter_blocks(model: nn.Module) -> Iterator[nn.Module]:
    """Every residual block of a ResNet built here, in forward order."""
    for m in model.modules():
        if isinstance(m, (tv.BasicBlock, tv.Bottleneck, PreActBlock)):
            yield m


def _stride_in_first_conv(model: nn.Module) -> None:
    # torchvision's Bottleneck strides in its 3x3 conv (ResNet v1.5 = ResNet-B); the original
    # ResNet, the paper's baseline, strides in the first 1x1.
    for b in iter_blocks(model):
        if isinstance(b, tv.Bottleneck) and b.conv2.stride != (1, 1):
            b.conv1.stride, b.conv2.stride = b.conv2.stride, (1, 1)


# -- edits made by tricks -------------------------------------------------------------------

def last_branch_bn(block: nn.Module) -> nn.BatchNorm2d:
    """The last BatchNorm of a post-activation residual branch (bn3 of a bottleneck, bn2 of a
    basic block), seen through an attention wrapper."""
    bn = block.bn3 if isinstance(block, tv.Bottleneck) else block.bn2
    return bn[0] if isinstance(bn, nn.Sequential) else bn


def branch_output_init(block: nn.Module) -> nn.Parameter:
    """The weight that zero-gamma zeroes so that `block`'s branch starts at zero output.

    Post-activation blocks end in BN, so its scale (gamma): the BN's input still gets a gradient
    through the shift, and gamma gets one from the normalised input. A pre-activation block
    ends in a conv fed by BN-ReLU; zeroing that BN would make ReLU(0) = 0 pass no gradient and
    the branch would never train, so its last conv's weight is zeroed instead (its gradient is
    the non-zero activation times the upstream gradient).
    """
    if isinstance(block, PreActBlock):
        conv = block.conv2[0] if isinstance(block.conv2, nn.Sequential) else block.conv2
        if not isinstance(conv, nn.Conv2d):   # pragma: no cover - add_attention keeps conv2 a conv
            raise TypeError(f"pre-activation block ends in {type(conv).__name__}, not a conv")
        return conv.weight
    return last_branch_bn(block).weight


def zero_branch_gamma(model: nn.Module) -> int:
    """Make every residual branch start at zero output, so each block starts as the identity
    (see `branch_output_init` for what is zeroed). Returns the number of blocks edited."""
    count = 0
    for b in iter_blocks(model):
        nn.init.zeros_(branch_output_init(b))
        count += 1
    return count


def stride_in_3x3(model: nn.Module) -> int:
    """ResNet-B: move the stride of downsampling bottlenecks from the 1x1 conv to the 3x3."""
    count = 0
    for b in iter_blocks(model):
        if isinstance(b, tv.Bottleneck) and b.conv1.stride != (1, 1):
            conv2 = b.conv2 if isinstance(b.conv2, nn.Conv2d) else None
            if conv2 is None:
                raise ValueError("resnet_b cannot move the stride into a selective-kernel conv")
            b.conv2.stride, b.conv1.stride = b.conv1.stride, (1, 1)
            count += 1
    return count


def deep_stem(model: nn.Module) -> None:
    """ResNet-C: replace the stem conv by three 3x3 convs (the first keeps its stride)."""
    old: nn.Conv2d = model.conv1
    out, mid = old.out_channels, max(old.out_channels // 2, 8)
    model.conv1 = nn.Sequential(
        nn.Conv2d(old.in_channels, mid, 3, old.stride, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU(inplace=True),
        nn.Conv2d(mid, mid, 3, 1, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU(inplace=True),
        nn.Conv2d(mid, out, 3, 1, 1, bias=False),
    )
    kaiming_init(model.conv1)


def avgpool_shortcut(model: nn.Module) -> int:
    """ResNet-D: 2x2 average pool, then a stride-1 1x1 projection, in downsampling shortcuts."""
    count = 0
    for b in iter_blocks(model):
        down = b.downsample
        if isinstance(down, nn.Sequential) and isinstance(down[0], nn.Conv2d) and down[0].stride != (1, 1):
            stride = down[0].stride[0]
            down[0].stride = (1, 1)
            b.downsample = nn.Sequential(
                nn.AvgPool2d(stride, stride, ceil_mode=True, count_include_pad=False), *down)
            count += 1
    return count


ATTENTION: dict[str, Callable[..., nn.Module]] = {"se": SqueezeExcite, "cbam": CBAM, "gc": GlobalContext,
                                                  "bam": BAM, "sge": SpatialGroupEnhance, "srm": SRM}


def add_attention(model: nn.Module, kind: str, reduction: int | None = None, **options) -> int:
    """SE, CBAM, GC, BAM, SGE or SRM: insert the module at the end of every residual branch
    (before the addition), built as `ATTENTION[kind](channels, reduction=..., **options)`.
    SK: replace a 3x3 conv of every block by a selective-kernel conv."""
    if reduction is not None:
        options["reduction"] = reduction
    count = 0
    for b in iter_blocks(model):
        if kind == "sk":
            # SK replaces the 3x3 conv that feeds a BN-ReLU: conv2 of a post-activation block,
            # conv1 of a pre-activation block (whose conv2 ends the branch and has no BN after it;
            # SK ends in BN-ReLU itself, which would make the branch output non-negative).
            name = "conv1" if isinstance(b, PreActBlock) else "conv2"
            conv: nn.Conv2d = getattr(b, name)
            setattr(b, name, SelectiveKernelConv(conv.in_channels, conv.out_channels, conv.stride[0], **options))
        else:
            name = "bn3" if isinstance(b, tv.Bottleneck) else ("conv2" if isinstance(b, PreActBlock) else "bn2")
            end = getattr(b, name)
            channels = end.num_features if isinstance(end, nn.BatchNorm2d) else end.out_channels
            setattr(b, name, nn.Sequential(end, ATTENTION[kind](channels, **options)))
        count += 1
    return count
