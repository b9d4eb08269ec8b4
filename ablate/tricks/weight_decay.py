"""No bias decay: weight decay on conv/linear weights only, none on biases and norm scales/shifts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ablate.tricks.base import Trick, register_trick

if TYPE_CHECKING:  # pragma: no cover
    from ablate.tricks.base import SpecView


def param_groups(model, weight_decay: float, *, decay_norm_and_bias: bool) -> list[dict]:
    """Optimizer param groups. Without decay on norms and biases, every parameter with fewer
    than 2 dimensions (biases, BN/LN scales and shifts) goes to a group with weight_decay=0."""
    if decay_norm_and_bias:
        return [{"params": [p for p in model.parameters() if p.requires_grad], "weight_decay": weight_decay}]
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


@register_trick
class NoBiasDecay(Trick):
    name = "no_bias_decay"
    code = "NBD"
    title = "No bias/BN weight decay"
    paper = "Jia et al. 2018, Highly Scalable Deep Learning Training System with Mixed-Precision (arXiv:1807.11205)"
    kind = "optimizer"

    def check(self, params, spec: SpecView):
        if spec.recipe.weight_decay == 0:
            return "recipe.weight_decay is 0, so there is no decay to remove"
        return None

    def apply(self, params, proc):
        proc.decay_norm_and_bias = False
