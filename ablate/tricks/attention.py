"""Attention blocks in every residual branch: SE, CBAM, SK (modules in `ablate.models.attention`)."""

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

        proc.model_edits.append(partial(add_attention, kind=self.module, reduction=params.reduction))


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
