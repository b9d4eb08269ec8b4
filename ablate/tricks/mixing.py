"""Batch mixing: mixup and CutMix, through torchvision.transforms.v2, and RICAP (written here:
torchvision and timm lack it).

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


def with_probability(mix, prob: float, num_classes: int, *, takes_generator: bool = False):
    """Wrap a v2 mixing transform: apply it with probability `prob`, else one-hot the labels.
    The returned callable `(x, y, generator)` draws everything from `generator` (handed to
    `mix` itself when it `takes_generator`, else through a private global RNG)."""
    import torch
    import torch.nn.functional as F

    def apply(x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        if prob >= 1.0 or torch.rand((), generator=generator, device=generator.device).item() < prob:
            if takes_generator:
                return mix(x, y, generator=generator)
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


def ricap_regions(height: int, width: int, row: int, col: int) -> list[tuple[int, int, int, int]]:
    """The four output regions (top, left, rows, cols) of RICAP with its boundary point at
    (row, col): top-left, top-right, bottom-left, bottom-right. They tile the image."""
    return [(0, 0, row, col), (0, col, row, width - col),
            (row, 0, height - row, col), (row, col, height - row, width - col)]


def ricap_boundary(height: int, width: int, beta: float, generator: torch.Generator) -> tuple[int, int]:
    """RICAP's boundary point: (round(H u), round(W v)) with u, v ~ Beta(beta, beta)."""
    import torch

    with global_rng_from(generator):   # torch's Beta sampler takes no generator
        frac = torch.distributions.Beta(beta, beta).sample((2,))
    return int(torch.round(frac[0] * height)), int(torch.round(frac[1] * width))


def ricap(x: torch.Tensor, y: torch.Tensor, num_classes: int, beta: float,
          generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Takahashi et al.'s RICAP on a batch: a boundary point (H Beta(b, b), W Beta(b, b)),
    rounded, splits the output into four regions; region k is filled, for every image, by a crop
    of that size at a uniform position of image perm_k (a batch permutation per region), and the
    target is the sum of the four one-hot labels weighted by the regions' area fractions."""
    import torch
    import torch.nn.functional as F

    n, _, height, width = x.shape
    row, col = ricap_boundary(height, width, beta, generator)
    out = torch.empty_like(x)
    target = torch.zeros(n, num_classes, dtype=x.dtype, device=x.device)
    dev = generator.device
    for top, left, rows, cols in ricap_regions(height, width, row, col):
        perm = torch.randperm(n, generator=generator, device=dev).to(x.device)
        y0 = int(torch.randint(0, height - rows + 1, (), generator=generator, device=dev))
        x0 = int(torch.randint(0, width - cols + 1, (), generator=generator, device=dev))
        out[:, :, top:top + rows, left:left + cols] = x[perm, :, y0:y0 + rows, x0:x0 + cols]
        target += (rows * cols / (height * width)) * F.one_hot(y[perm], num_classes).to(x.dtype)
    return out, target


class RICAPParams(TrickParams):
    beta: float = Field(0.3, gt=0, le=10, description="Beta(beta, beta) draws the boundary point")
    prob: float = Field(1.0, gt=0, le=1, description="probability that a batch is mixed")


@register_trick
class RICAP(Trick):
    """Random image cropping and patching: four crops of four images fill one, labels mixed by area."""

    name = "ricap"
    code = "RI"
    title = "RICAP"
    paper = ("Takahashi et al. 2018, RICAP: Random Image Cropping and Patching Data Augmentation for "
             "Deep CNNs (arXiv:1811.09030)")
    kind = "augmentation"
    Params = RICAPParams

    def apply(self, params, proc):
        from functools import partial

        mix = partial(ricap, num_classes=proc.num_classes, beta=params.beta)
        proc.batch_mixers.append(with_probability(mix, params.prob, proc.num_classes, takes_generator=True))

