"""Optimiser choice: SGD with Nesterov momentum, Adam, AdamW, RAdam (torch.optim), AdaBound
(`ablate.optim`), and the Lookahead wrapper around any of them.

The recipe names the baseline optimiser; one of these tricks replaces it in an arm. Adaptive
optimisers want a much smaller lr than SGD, so each takes its own `lr` (and optionally its own
weight decay; by default the recipe's).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from ablate.tricks.base import NoParams, Trick, TrickParams, register_trick

if TYPE_CHECKING:  # pragma: no cover
    from ablate.tricks.base import SpecView


class _OptimizerTrick(Trick):
    kind = "optimizer"
    slot = "optimizer"
    optimizer: str

    def check(self, params, spec: SpecView):
        if spec.recipe.optimizer == self.optimizer and self.name != "nesterov":
            return f"recipe.optimizer is already '{self.optimizer}', so this trick would change nothing"
        return None


@register_trick
class Nesterov(_OptimizerTrick):
    name = "nesterov"
    code = "N"
    title = "Nesterov momentum"
    paper = "Sutskever et al. 2013, On the importance of initialization and momentum in deep learning"
    optimizer = "sgd"
    Params = NoParams

    def check(self, params, spec: SpecView):
        if spec.recipe.optimizer != "sgd":
            return f"Nesterov momentum applies to SGD, but recipe.optimizer is '{spec.recipe.optimizer}'"
        if spec.recipe.nesterov:
            return "recipe.nesterov is already true, so this trick would change nothing"
        if spec.recipe.momentum == 0:
            return "Nesterov momentum needs recipe.momentum > 0"
        return None

    def apply(self, params, proc):
        proc.nesterov = True


class AdaptiveParams(TrickParams):
    lr: float = Field(1e-3, gt=0, le=10, description="initial learning rate")
    beta1: float = Field(0.9, ge=0, lt=1)
    beta2: float = Field(0.999, ge=0, lt=1)
    weight_decay: float | None = Field(None, ge=0, description="None keeps recipe.weight_decay")


class _Adaptive(_OptimizerTrick):
    Params = AdaptiveParams

    def apply(self, params, proc):
        proc.optimizer = self.optimizer
        proc.lr = params.lr
        proc.betas = (params.beta1, params.beta2)
        if params.weight_decay is not None:
            proc.weight_decay = params.weight_decay


@register_trick
class Adam(_Adaptive):
    name = "adam"
    code = "A"
    title = "Adam optimiser"
    paper = "Kingma & Ba 2015, Adam: A Method for Stochastic Optimization (arXiv:1412.6980)"
    optimizer = "adam"


class AdamWParams(AdaptiveParams):
    weight_decay: float | None = Field(0.05, ge=0, description="decoupled weight decay; None keeps the recipe's")


@register_trick
class AdamW(_Adaptive):
    name = "adamw"
    code = "AW"
    title = "AdamW optimiser"
    paper = "Loshchilov & Hutter 2019, Decoupled Weight Decay Regularization (arXiv:1711.05101)"
    optimizer = "adamw"
    Params = AdamWParams


@register_trick
class RAdam(_Adaptive):
    name = "radam"
    code = "R"
    title = "RAdam optimiser"
    paper = "Liu et al. 2020, On the Variance of the Adaptive Learning Rate and Beyond (arXiv:1908.03265)"
    optimizer = "radam"


class AdaBoundParams(AdaptiveParams):
    final_lr: float = Field(0.1, gt=0, le=10, description="the SGD learning rate the bounds close on")
    gamma: float = Field(1e-3, gt=0, le=1, description="convergence speed of the bounds (1/steps)")


@register_trick
class AdaBound(_Adaptive):
    """Adam with per-coordinate step sizes clipped to bounds that close on an SGD learning rate.
    torch.optim has no AdaBound; `ablate.optim.AdaBound` writes it (about 30 lines)."""

    name = "adabound"
    code = "AB"
    title = "AdaBound optimiser"
    paper = "Luo et al. 2019, Adaptive Gradient Methods with Dynamic Bound of Learning Rate (arXiv:1902.09843)"
    optimizer = "adabound"
    Params = AdaBoundParams

    def apply(self, params, proc):
        super().apply(params, proc)
        proc.optimizer_options = {"final_lr": params.final_lr, "gamma": params.gamma}


class LookaheadParams(TrickParams):
    k: int = Field(5, ge=1, le=1000, description="fast steps between slow-weight updates")
    alpha: float = Field(0.5, gt=0, lt=1, description="fraction of the way the slow weights move")


@register_trick
class LookaheadTrick(Trick):
    """Wraps whatever optimiser the arm uses (the recipe's or another optimiser trick's);
    hand-written in `ablate.optim.Lookahead` (torch has none)."""

    name = "lookahead"
    code = "LA"
    title = "Lookahead"
    paper = "Zhang et al. 2019, Lookahead Optimizer: k steps forward, 1 step back (arXiv:1907.08610)"
    kind = "optimizer"
    Params = LookaheadParams

    def check(self, params, spec: SpecView):
        if params.k == 1:
            return ("lookahead with k=1 only slows the optimiser down by alpha (every step is pulled back); "
                    "use k >= 2, got k=1")
        return None

    def apply(self, params, proc):
        proc.lookahead = (params.k, params.alpha)
