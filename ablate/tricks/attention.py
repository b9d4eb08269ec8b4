"""Attention blocks in every residual branch: SE, CBAM, SK, GC, BAM, SGE, SRM (modules in
`ablate.models.attention`)."""

from __future__ import annotations

from functools import partial

from pydantic import Field

from ablate.tricks.base import Trick, TrickParams, register_trick


class AttentionParams(TrickParams):
    reduction: int = Field(16, ge=1, le=64, description="channel reduction of the attention MLP")


class _Attention(Trick):
    kind = "model"
    slot = "attention"
    needs_resnet = True
    Params = AttentionParams
    module: str

    def apply(self, params, proc):
        from ablate.models.resnet import add_attention

        proc.model_edits.append(partial(add_attention, kind=self.module, **params.model_dump()))


@register_trick
class SE(_Attention):
    name = "se"
    code = "SE"
    title = "Squeeze-and-excitation"
    paper = "Hu et al. 2018, Squeeze-and-Excitation Networks (arXiv:1709.01507)"
    module = "se"


@register_trick
class CBAMTrick(_Attention):
    name = "cbam"
    code = "CBAM"
    title = "CBAM attention"
    paper = "Woo et al. 2018, CBAM: Convolutional Block Attention Module (arXiv:1807.06521)"
    module = "cbam"


@register_trick
class SK(_Attention):
    name = "sk"
    code = "SK"
    title = "Selective-kernel conv"
    paper = "Li et al. 2019, Selective Kernel Networks (arXiv:1903.06586)"
    module = "sk"


@register_trick
class GC(_Attention):
    name = "gc"
    code = "GC"
    title = "Global context block"
    paper = "Cao et al. 2019, GCNet: Non-local Networks Meet Squeeze-Excitation Networks and Beyond (arXiv:1904.11492)"
    module = "gc"


@register_trick
class BAMTrick(_Attention):
    name = "bam"
    code = "BAM"
    title = "Bottleneck attention module"
    paper = "Park et al. 2018, BAM: Bottleneck Attention Module (arXiv:1807.06514)"
    module = "bam"


class SGEParams(TrickParams):
    groups: int = Field(8, ge=1, le=128, description="channel groups (the largest divisor of the "
                                                     "channels up to this is used)")


@register_trick
class SGE(_Attention):
    name = "sge"
    code = "SGE"
    title = "Spatial group-wise enhance"
    paper = "Li et al. 2019, Spatial Group-wise Enhance (arXiv:1905.09646)"
    module = "sge"
    Params = SGEParams


class NoReduction(TrickParams):
    """SRM has no hyper-parameters (its gate is a channel-wise layer)."""


@register_trick
class SRMTrick(_Attention):
    name = "srm"
    code = "SRM"
    title = "Style-based recalibration"
    paper = "Lee et al. 2019, SRM: A Style-based Recalibration Module (arXiv:1903.10829)"
    module = "srm"
    Params = NoReduction
