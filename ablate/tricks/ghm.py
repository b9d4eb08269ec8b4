"""GHM-C, the gradient harmonizing loss, adapted from detection to classification (the loss
itself is `ablate.losses.GHMCLoss`: neither torch nor timm has it)."""

from __future__ import annotations

from pydantic import Field

from ablate.tricks.base import Trick, TrickParams, register_trick


class GHMCParams(TrickParams):
    bins: int = Field(10, ge=2, le=1000, description="bins of the gradient norm in [0, 1]")
    momentum: float = Field(0.75, ge=0, lt=1, description="running average of the bin counts (0: this batch's)")


@register_trick
class GHMC(Trick):
    name = "ghmc"
    code = "GHM"
    title = "GHM-C loss"
    paper = "Li, Liu & Wang 2019, Gradient Harmonized Single-stage Detector (arXiv:1811.05181)"
    kind = "loss"
    slot = "loss"
    Params = GHMCParams

    def apply(self, params, proc):
        proc.loss = "ghmc"
        proc.loss_options = {"bins": params.bins, "momentum": params.momentum}
