"""ShakeDrop and stochastic depth: random regularisers on every residual branch (the modules
are in `ablate.models.branch_drop`; they find branches through `ablate.models.blocks`).

Both drop the branch of block l of L with probability l / L x the final block's rate (the
papers' linear decay). torchvision has StochasticDepth (used); ShakeDrop is written here.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from ablate.tricks.base import Trick, TrickParams, register_trick

if TYPE_CHECKING:  # pragma: no cover
    from ablate.tricks.base import SpecView


class _BranchTrick(Trick):
    kind = "model"
    slot = "residual branch drop"

    def check(self, params, spec: SpecView):
        from ablate.models.blocks import BRANCH_END_ATTR, has_residual_blocks

        if not has_residual_blocks(spec.model):
            return (f"'{self.name}' acts on residual branches, but model '{spec.model.name}' has no "
                    f"residual blocks (a block opts in with the attribute '{BRANCH_END_ATTR}')")
        return None


class ShakeDropParams(TrickParams):
    p_final: float = Field(0.5, gt=0, lt=1, description="drop probability of the last block (linear in depth)")
    alpha_min: float = Field(-1.0, ge=-2, le=2, description="forward scale alpha ~ U(alpha_min, alpha_max)")
    alpha_max: float = Field(1.0, ge=-2, le=2)
    beta_min: float = Field(0.0, ge=-2, le=2, description="backward scale beta ~ U(beta_min, beta_max)")
    beta_max: float = Field(1.0, ge=-2, le=2)

    @model_validator(mode="after")
    def _ordered(self):
        for lo, hi in (("alpha_min", "alpha_max"), ("beta_min", "beta_max")):
            if getattr(self, lo) > getattr(self, hi):
                raise ValueError(f"{lo} <= {hi} must hold, got {lo}={getattr(self, lo)}, {hi}={getattr(self, hi)}")
        return self


@register_trick
class ShakeDropTrick(_BranchTrick):
    name = "shakedrop"
    code = "SD"
    title = "ShakeDrop"
    paper = "Yamada et al. 2019, ShakeDrop Regularization for Deep Residual Learning (arXiv:1802.02375)"
    Params = ShakeDropParams

    def apply(self, params, proc):
        from ablate.models.branch_drop import add_shakedrop

        proc.model_edits.append(partial(add_shakedrop, final_p=params.p_final,
                                        alpha_range=(params.alpha_min, params.alpha_max),
                                        beta_range=(params.beta_min, params.beta_max)))


class StochasticDepthParams(TrickParams):
    rate: float = Field(0.5, gt=0, lt=1, description="drop probability (of the last block with linear_decay)")
    linear_decay: bool = Field(True, description="block l of L drops with l / L x rate; false: every block with rate")
    mode: Literal["batch", "row"] = Field("batch", description="one draw per batch (the paper) or per image")


@register_trick
class StochasticDepth(_BranchTrick):
    name = "stochastic_depth"
    code = "SDP"
    title = "Stochastic depth"
    paper = "Huang et al. 2016, Deep Networks with Stochastic Depth (arXiv:1603.09382)"
    Params = StochasticDepthParams

    def apply(self, params, proc):
        from ablate.models.branch_drop import add_stochastic_depth

        proc.model_edits.append(partial(add_stochastic_depth, rate=params.rate,
                                        linear_decay=params.linear_decay, mode=params.mode))
