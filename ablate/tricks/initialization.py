"""Initialisation choice for conv and linear weights (torch.nn.init): Kaiming (He et al. 2015)
normal or uniform, Xavier (Glorot & Bengio 2010) normal or uniform, orthogonal (Saxe et al. 2014).

It runs first among the init edits, so zero-gamma (which zeroes the last conv of
pre-activation branches) still has the last word. Biases are set to zero. BN layers keep
their (1, 0) initialisation.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from ablate.tricks.base import Trick, TrickParams, register_trick

if TYPE_CHECKING:  # pragma: no cover
    from ablate.tricks.base import SpecView

SCHEMES = ("kaiming_normal", "kaiming_uniform", "xavier_normal", "xavier_uniform", "orthogonal")


def initialize(model, scheme: str, mode: str = "fan_out") -> int:
    """Re-initialise every Conv2d and Linear weight of `model` with `scheme`; zero their biases.
    Kaiming uses `mode` and the ReLU gain; Xavier and orthogonal use gain 1. Returns the count."""
    from torch import nn

    count = 0
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            w = m.weight
            if scheme.startswith("kaiming"):
                getattr(nn.init, scheme + "_")(w, mode=mode, nonlinearity="relu")
            else:
                getattr(nn.init, scheme + "_")(w)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
            count += 1
    return count


class InitParams(TrickParams):
    scheme: Literal[SCHEMES] = Field("kaiming_normal", description="torch.nn.init function: " + ", ".join(SCHEMES))
    mode: Literal["fan_in", "fan_out"] = Field("fan_in", description="Kaiming only: variance kept forward "
                                                                   "(fan_in) or backward (fan_out)")


@register_trick
class Initialization(Trick):
    name = "init"
    code = "IN"
    title = "Weight initialisation"
    paper = ("He et al. 2015 (arXiv:1502.01852); Glorot & Bengio 2010, Understanding the difficulty of "
             "training deep feedforward networks; Saxe et al. 2014 (arXiv:1312.6120)")
    kind = "model"
    slot = "initialisation"
    Params = InitParams

    def check(self, params, spec: SpecView):
        if not params.scheme.startswith("kaiming") and params.mode != "fan_in":
            return f"mode applies to the Kaiming schemes only, got mode='{params.mode}' with scheme='{params.scheme}'"
        return None

    def apply(self, params, proc):
        proc.init_edits.insert(0, partial(initialize, scheme=params.scheme, mode=params.mode))
