"""Tricks on the optimisation step: mixed precision, EMA of weights, SAM.

The trainer implements the step (see `ablate.train`); these only switch it on:
- mixed precision: `torch.autocast` (bf16 runs on the CPU as well; fp16 adds a GradScaler);
- EMA: `torch.optim.swa_utils.AveragedModel` with an exponential average, evaluated instead of
  the raw weights; the decay warms up as min(decay, (1 + t) / (10 + t)) (as TensorFlow's and
  timm's EMA do) -- torch's own `get_ema_multi_avg_fn` has no warmup, and in a short run a
  fixed 0.999 decay keeps averaging in the random initialisation;
- SAM: an ascent step of radius rho along the gradient, then the descent step with the gradient
  taken there (two forward/backward passes per batch);
- ASAM: SAM with the ascent scaled per weight by |w| + eta (`ablate.train.sam_offsets`), so
  the sharpness it minimises is invariant to rescaling a layer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from ablate.tricks.base import Trick, TrickParams, register_trick

if TYPE_CHECKING:  # pragma: no cover
    from ablate.tricks.base import SpecView


class PrecisionParams(TrickParams):
    dtype: Literal["bfloat16", "float16"] = Field("bfloat16", description="autocast dtype")


@register_trick
class MixedPrecision(Trick):
    name = "amp"
    code = "MP"
    title = "Mixed precision"
    paper = "Micikevicius et al. 2018, Mixed Precision Training (arXiv:1710.03740)"
    kind = "training"
    Params = PrecisionParams

    def apply(self, params, proc):
        proc.autocast_dtype = params.dtype


class EMAParams(TrickParams):
    decay: float = Field(0.999, gt=0, lt=1, description="per-step decay of the average")
    warmup: bool = Field(True, description="ramp the decay up as (1 + t) / (10 + t)")


def ema_decay_at(decay: float, step: int, *, warmup: bool) -> float:
    """Decay used at update `step` (0-based)."""
    return min(decay, (1 + step) / (10 + step)) if warmup else decay


def ema_update_fn(decay: float, *, warmup: bool):
    """A multi-tensor update for `AveragedModel(multi_avg_fn=...)`: ema <- d * ema + (1 - d) * w."""
    import torch

    @torch.no_grad()
    def update(ema_params, params, num_averaged):
        d = ema_decay_at(decay, int(num_averaged), warmup=warmup)
        floats = [(e, p) for e, p in zip(ema_params, params) if e.is_floating_point()]
        if floats:
            torch._foreach_lerp_([e for e, _ in floats], [p for _, p in floats], 1.0 - d)
        for e, p in zip(ema_params, params):
            if not e.is_floating_point():
                e.copy_(p)   # integer buffers (BN's num_batches_tracked) are copied

    return update


@register_trick
class EMA(Trick):
    name = "ema"
    code = "EMA"
    title = "EMA of weights"
    paper = "Polyak & Juditsky 1992, Acceleration of Stochastic Approximation by Averaging"
    kind = "training"
    Params = EMAParams

    def apply(self, params, proc):
        proc.ema_decay = params.decay
        proc.ema_warmup = params.warmup


class SAMParams(TrickParams):
    rho: float = Field(0.05, gt=0, le=5, description="radius of the ascent step")


@register_trick
class SAM(Trick):
    name = "sam"
    code = "SAM"
    title = "Sharpness-aware minimisation"
    paper = "Foret et al. 2021, Sharpness-Aware Minimization (arXiv:2010.01412)"
    kind = "training"
    slot = "sharpness-aware step"
    Params = SAMParams

    def check(self, params, spec: SpecView):
        for key, t in spec.tricks.items():
            if t.use == "amp" and t.params.dtype == "float16":
                return (f"{self.name.upper()}'s two-pass step does not combine with float16 loss scaling "
                        f"('{key}'); use amp with dtype: bfloat16")
        return None

    def apply(self, params, proc):
        proc.sam_rho = params.rho


class ASAMParams(TrickParams):
    rho: float = Field(0.5, gt=0, le=10, description="radius of the ascent step, in units of |w| + eta")
    eta: float = Field(0.01, ge=0, le=1, description="added to |w| so that zero weights still move")


@register_trick
class ASAM(SAM):
    name = "asam"
    code = "ASAM"
    title = "Adaptive sharpness-aware minimisation"
    paper = ("Kwon et al. 2021, ASAM: Adaptive Sharpness-Aware Minimization for Scale-Invariant "
             "Learning of Deep Neural Networks (arXiv:2102.11600)")
    Params = ASAMParams

    def apply(self, params, proc):
        proc.sam_rho = params.rho
        proc.sam_eta = params.eta
