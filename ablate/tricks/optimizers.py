"""Optimiser choice: SGD with Nesterov momentum, Adam, AdamW, RAdam (torch.optim).

The recipe names the baseline optimiser; one of these tricks replaces it in an arm. Adaptive
optimisers want a much smaller lr than SGD, so each takes its own `lr` (and optionally its own
weight decay; by default the recipe's).
"""

from __future__ import annotations

from pydantic import Field

from ablate.tricks.base import NoParams, Trick, TrickParams, register_trick


class _OptimizerTrick(Trick):
    kind = "optimizer"
    slot = "optimizer"
    optimizer: str

    def check(self, params, spec):
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

    def check(self, params, spec):
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
