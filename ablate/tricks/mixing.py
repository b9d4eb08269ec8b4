"""Batch mixing: mixup and CutMix, through torchvision.transforms.v2.

Both turn integer labels into soft targets. With `prob < 1` a batch is left unmixed with that
probability (its targets become one-hot, so the loss always sees soft targets). When both
tricks are on, each batch uses one of them, chosen at random (as timm's Mixup does).

torchvision's transforms draw from the global RNG; each call runs them on a private global RNG
seeded from the trial's tricks generator (`global_rng_from`), so every draw -- the mixing
coin, lambda and CutMix's box -- comes from that generator.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

if TYPE_CHECKING:
    import torch

from ablate.tricks.base import Trick, TrickParams, global_rng_from, register_trick


def with_probability(mix, prob: float, num_classes: int):
    """Wrap a v2 mixing transform: apply it with probability `prob`, else one-hot the labels.
    The returned callable `(x, y, generator)` draws everything from `generator`."""
    import torch
    import torch.nn.functional as F

    def apply(x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        if prob >= 1.0 or torch.rand((), generator=generator, device=generator.device).item() < prob:
            with global_rng_from(generator):
                return mix(x, y)
        return x, F.one_hot(y, num_classes).to(x.dtype)

    return apply


class MixParams(TrickParams):
    alpha: float = Field(0.2, gt=0, description="Beta(alpha, alpha) concentration of the mix ratio")
    prob: float = Field(1.0, gt=0, le=1, description="probability that a batch is mixed")


@register_trick
class Mixup(Trick):
    """Convex combinations of image pairs and of their labels."""

    name = "mixup"
    code = "M"
    title = "Mixup"
    paper = "Zhang et al. 2018, mixup: Beyond Empirical Risk Minimization (arXiv:1710.09412)"
    kind = "augmentation"
    Params = MixParams

    def apply(self, params, proc):
        from torchvision.transforms import v2

        mix = v2.MixUp(alpha=params.alpha, num_classes=proc.num_classes)
        proc.batch_mixers.append(with_probability(mix, params.prob, proc.num_classes))


class CutMixParams(MixParams):
    alpha: float = Field(1.0, gt=0, description="Beta(alpha, alpha) concentration of the area ratio")


@register_trick
class CutMix(Trick):
    """Paste a random box from another image; labels mixed by area."""

    name = "cutmix"
    code = "CM"
    title = "CutMix"
    paper = "Yun et al. 2019, CutMix: Regularization Strategy to Train Strong Classifiers (arXiv:1905.04899)"
    kind = "augmentation"
    Params = CutMixParams

    def apply(self, params, proc):
        from torchvision.transforms import v2

        mix = v2.CutMix(alpha=params.alpha, num_classes=proc.num_classes)
        proc.batch_mixers.append(with_probability(mix, params.prob, proc.num_classes))
