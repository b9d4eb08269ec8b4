"""Normalisation tricks: weight standardisation with the e-shifted L2 regulariser, and EvoNorm
B0/S0 in place of BatchNorm + ReLU (edits in `ablate.models.normalization`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from functools import partial

from pydantic import Field

from ablate.tricks.base import NoParams, Trick, TrickParams, register_trick

if TYPE_CHECKING:  # pragma: no cover
    from ablate.tricks.base import SpecView


class WSParams(TrickParams):
    shift: float = Field(1e-3, ge=0, le=1, description="e of the e-shifted L2: the filter std below which "
                                                         "the regulariser stops shrinking (0: plain L2)")
    weight: float | None = Field(None, ge=0, le=1, description="regulariser strength; None: the arm's weight decay")


@register_trick
class WeightStandardization(Trick):
    """Every conv uses its weight standardised per output filter; those weights get the
    e-shifted L2 regulariser (in the objective) instead of weight decay, as in the write-up's
    WS-ResNet runs (`--nowd-conv --el2 --mineps 1e-3`)."""

    name = "weight_standardization"
    code = "WS"
    title = "Weight standardisation + e-shifted L2"
    paper = ("Qiao et al. 2019, Micro-Batch Training with Batch-Channel Normalization and Weight "
             "Standardization (arXiv:1903.10520); Li, Chen & Yang 2019, Understanding the Disharmony "
             "between Weight Normalization Family and Weight Decay: e-shifted L2 Regularizer (arXiv:1911.05920)")
    kind = "model"
    Params = WSParams

    def apply(self, params, proc):
        from ablate.models.normalization import shifted_l2, shifted_l2_weights, standardize_convs

        def regulariser(model):
            # read when training, after every trick has set the arm's weight decay
            strength = proc.weight_decay if params.weight is None else params.weight
            return strength * shifted_l2(shifted_l2_weights(model), params.shift)

        proc.model_edits.append(standardize_convs)
        proc.regularisers.append(regulariser)
        proc.decay_exempt.append(shifted_l2_weights)


class EvoNormParams(TrickParams):
    groups: int = Field(32, ge=1, le=256, description="S0 only: channel groups (at most; gcd with the channels)")


class _EvoNorm(Trick):
    kind = "model"
    slot = "normalisation"
    variant: str
    paper = "Liu et al. 2020, Evolving Normalization-Activation Layers (arXiv:2004.02967)"

    def check(self, params, spec: SpecView):
        import importlib.util

        if importlib.util.find_spec("timm") is None:
            return (f"'{self.name}' uses timm's EvoNorm layers, but timm is not installed; "
                    f"pip install timm (or pip install 'ablate[timm]')")
        if getattr(spec.model, "preact", False):
            return (f"'{self.name}' replaces BN-ReLU pairs, but the pre-activation blocks of model "
                    f"'{spec.model.name}' apply their ReLU as a function it cannot replace; use preact: false")
        return None

    def apply(self, params, proc):
        from ablate.models.normalization import replace_bn_relu

        proc.model_edits.append(partial(replace_bn_relu, kind=self.variant,
                                        groups=getattr(params, "groups", 32)))


@register_trick
class EvoNormB0(_EvoNorm):
    name = "evonorm_b0"
    code = "EB0"
    title = "EvoNorm-B0"
    Params = NoParams
    variant = "b0"   # batch-dependent: batch and instance variance, running average for evaluation


@register_trick
class EvoNormS0(_EvoNorm):
    name = "evonorm_s0"
    code = "ES0"
    title = "EvoNorm-S0"
    variant = "s0"   # sample-based: group std and a SiLU-like x * sigmoid(v x)
    Params = EvoNormParams
