"""The ResNet-B, -C and -D architecture tweaks of the bag-of-tricks paper (He et al. 2019,
arXiv:1812.01187). The edits themselves live in `ablate.models.resnet`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ablate.models import model_info
from ablate.tricks.base import Trick, register_trick

if TYPE_CHECKING:  # pragma: no cover
    from ablate.tricks.base import SpecView

PAPER = "He et al. 2019, Bag of Tricks for Image Classification with CNNs (arXiv:1812.01187)"


@register_trick
class ResNetB(Trick):
    name = "resnet_b"
    code = "RB"
    title = "ResNet-B (stride in 3x3)"
    paper = PAPER
    kind = "model"
    needs_resnet = True

    def check(self, params, spec: SpecView):
        reason = super().check(params, spec)
        if reason is None and model_info(spec.model).block != "bottleneck":
            reason = ("'resnet_b' moves the stride inside bottleneck blocks, but model "
                      f"'{spec.model.name}' uses basic blocks (use block: bottleneck or resnet50)")
        return reason

    def apply(self, params, proc):
        from ablate.models.resnet import stride_in_3x3

        proc.model_edits.append(stride_in_3x3)


@register_trick
class ResNetC(Trick):
    name = "resnet_c"
    code = "RC"
    title = "ResNet-C (deep stem)"
    paper = PAPER
    kind = "model"
    needs_resnet = True

    def apply(self, params, proc):
        from ablate.models.resnet import deep_stem

        proc.model_edits.append(deep_stem)


@register_trick
class ResNetD(Trick):
    name = "resnet_d"
    code = "RD"
    title = "ResNet-D (avg-pool shortcut)"
    paper = PAPER
    kind = "model"
    needs_resnet = True

    def check(self, params, spec: SpecView):
        reason = super().check(params, spec)
        if reason is None and not model_info(spec.model).projection_shortcuts:
            reason = ("'resnet_d' changes projection shortcuts, but model.shortcut is 'padding' "
                      "(parameter-free); use shortcut: projection")
        return reason

    def apply(self, params, proc):
        from ablate.models.resnet import avgpool_shortcut

        proc.model_edits.append(avgpool_shortcut)
