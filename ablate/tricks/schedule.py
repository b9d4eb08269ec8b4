"""Learning-rate schedule tricks: linear warmup, cosine annealing, step decay.

The schedule is one pure function of the iteration (`lr_multiplier`), evaluated by the trainer
every step. It is written here rather than chained from torch's LinearLR/CosineAnnealingLR/
MultiStepLR because those keep hidden step counters and compose awkwardly (SequentialLR warns
and re-steps); a pure function is exact per iteration, testable without an optimiser, and gives
the same curve whatever the tricks around it (the habit timm's schedulers follow).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import math

from pydantic import Field

from ablate.tricks.base import NoParams, Procedure, Trick, TrickParams, register_trick

if TYPE_CHECKING:  # pragma: no cover
    from ablate.tricks.base import SpecView


def lr_multiplier(proc: Procedure, step: int, steps_per_epoch: int) -> float:
    """Factor applied to each parameter group's base lr at iteration `step` (0-based).

    - warmup: linear from `warmup_start_factor` to 1 over `warmup_epochs` (Goyal et al. 2017);
    - step: times `gamma` at each milestone (fractions of the whole run);
    - cosine: half-cosine from 1 to `final_lr_factor` over the iterations after warmup
      (Loshchilov & Hutter 2017, without restarts).
    """
    total = proc.epochs * steps_per_epoch
    warm = int(round(proc.warmup_epochs * steps_per_epoch))
    if proc.schedule == "cosine":
        span = max(total - warm, 1)
        t = min(max(step - warm, 0) / span, 1.0)
        base = proc.final_lr_factor + (1 - proc.final_lr_factor) * 0.5 * (1 + math.cos(math.pi * t))
    elif proc.schedule == "step":
        passed = sum(step >= round(m * total) for m in proc.milestones)
        base = proc.gamma ** passed
    elif proc.schedule == "constant":
        base = 1.0
    else:  # the spec validates schedule names; this is a programming error
        raise ValueError(f"unknown schedule '{proc.schedule}'")
    if step < warm:
        base *= proc.warmup_start_factor + (1 - proc.warmup_start_factor) * step / warm
    return base


class WarmupParams(TrickParams):
    epochs: float = Field(5.0, gt=0, description="warmup length in epochs (< recipe.epochs)")
    start_factor: float = Field(0.0, ge=0, lt=1, description="lr multiplier at the first step")


@register_trick
class Warmup(Trick):
    """Linear learning-rate warmup: avoids early instability with large lr / batch."""

    name = "warmup"
    code = "W"
    title = "Linear lr warmup"
    paper = "Goyal et al. 2017, Accurate, Large Minibatch SGD (arXiv:1706.02677)"
    kind = "schedule"
    Params = WarmupParams

    def check(self, params, spec: SpecView):
        if params.epochs >= spec.recipe.epochs:
            return (f"warmup epochs must be < recipe.epochs, got epochs={params.epochs} with "
                    f"recipe.epochs={spec.recipe.epochs}")
        return None

    def apply(self, params, proc):
        proc.warmup_epochs = params.epochs
        proc.warmup_start_factor = params.start_factor


class CosineParams(TrickParams):
    final_factor: float = Field(0.0, ge=0, lt=1, description="final lr as a fraction of the initial")


@register_trick
class Cosine(Trick):
    """Cosine annealing of the learning rate to (near) zero over the run."""

    name = "cosine"
    code = "C"
    title = "Cosine lr annealing"
    paper = "Loshchilov & Hutter 2017, SGDR: Stochastic Gradient Descent with Warm Restarts (arXiv:1608.03983)"
    kind = "schedule"
    slot = "schedule"
    Params = CosineParams

    def check(self, params, spec: SpecView):
        if spec.recipe.schedule == "cosine":
            return "recipe.schedule is already 'cosine', so this trick would change nothing"
        return None

    def apply(self, params, proc):
        proc.schedule = "cosine"
        proc.final_lr_factor = params.final_factor


class StepParams(TrickParams):
    milestones: tuple[float, ...] = Field((0.5, 0.75), min_length=1,
                                          description="fractions of training where lr drops")
    gamma: float = Field(0.1, gt=0, lt=1, description="lr factor at each milestone")


@register_trick
class StepDecay(Trick):
    """Step decay: multiply the lr by gamma at fixed fractions of training."""

    name = "step"
    code = "ST"
    title = "Step lr decay"
    paper = "He et al. 2016, Deep Residual Learning for Image Recognition (arXiv:1512.03385)"
    kind = "schedule"
    slot = "schedule"
    Params = StepParams

    def check(self, params, spec: SpecView):
        bad = [m for m in params.milestones if not 0 < m < 1]
        if bad or list(params.milestones) != sorted(params.milestones):
            return f"milestones must be increasing fractions in (0, 1), got {list(params.milestones)}"
        if spec.recipe.schedule == "step":
            return "recipe.schedule is already 'step', so this trick would change nothing"
        return None

    def apply(self, params, proc):
        proc.schedule = "step"
        proc.milestones = tuple(params.milestones)
        proc.gamma = params.gamma


__all__ = ["lr_multiplier", "Warmup", "Cosine", "StepDecay", "NoParams"]
