"""Learned and random augmentation policies on uint8 images, via torchvision.transforms.v2.

Each image of a batch gets its own draw of operations, so the policy runs per image (the v2
transforms given a batch would apply one draw to all of it). The v2 transforms draw from the
global RNG, so each batch runs them on a private global RNG seeded from the trial's tricks
generator (`global_rng_from`): the op choices and magnitudes are a function of that generator.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

if TYPE_CHECKING:
    import torch

from ablate.tricks.base import SpecView, Trick, TrickParams, global_rng_from, register_trick


def per_image(transform):
    """Apply `transform` to each uint8 image of a (B, C, H, W) batch independently; the returned
    callable `(batch, generator)` draws every image's ops from `generator`."""

    def apply(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        import torch

        with global_rng_from(generator):
            return torch.stack([transform(img) for img in batch])

    return apply


class AutoAugmentParams(TrickParams):
    policy: Literal["cifar10", "imagenet", "svhn"] = Field("cifar10", description="learned policy")


@register_trick
class AutoAugment(Trick):
    name = "autoaugment"
    code = "AA"
    title = "AutoAugment"
    paper = "Cubuk et al. 2019, AutoAugment: Learning Augmentation Policies from Data (arXiv:1805.09501)"
    kind = "augmentation"
    slot = "policy"
    Params = AutoAugmentParams

    def apply(self, params, proc):
        from torchvision.transforms import v2

        policy = v2.AutoAugmentPolicy(params.policy)
        proc.sample_policies.append(per_image(v2.AutoAugment(policy)))


class RandAugmentParams(TrickParams):
    num_ops: int = Field(2, ge=1, le=10, description="operations per image (N)")
    magnitude: int = Field(9, ge=0, le=30, description="operation strength (M)")


@register_trick
class RandAugment(Trick):
    name = "randaugment"
    code = "RA"
    title = "RandAugment"
    paper = "Cubuk et al. 2020, RandAugment: Practical automated data augmentation (arXiv:1909.13719)"
    kind = "augmentation"
    slot = "policy"
    Params = RandAugmentParams

    def apply(self, params, proc):
        from torchvision.transforms import v2

        proc.sample_policies.append(per_image(v2.RandAugment(num_ops=params.num_ops,
                                                             magnitude=params.magnitude)))


@register_trick
class TrivialAugment(Trick):
    name = "trivialaugment"
    code = "TA"
    title = "TrivialAugment"
    paper = "Mueller & Hutter 2021, TrivialAugment: Tuning-free Yet State-of-the-Art (arXiv:2103.10158)"
    kind = "augmentation"
    slot = "policy"

    def apply(self, params, proc):
        from torchvision.transforms import v2

        proc.sample_policies.append(per_image(v2.TrivialAugmentWide()))


class ColorJitterParams(TrickParams):
    brightness: float = Field(0.4, ge=0, le=1, description="brightness factor ~ U(1 - b, 1 + b)")
    contrast: float = Field(0.4, ge=0, le=1, description="contrast factor ~ U(1 - c, 1 + c)")
    saturation: float = Field(0.4, ge=0, le=1, description="saturation factor ~ U(1 - s, 1 + s); 3 channels only")
    hue: float = Field(0.0, ge=0, le=0.5, description="hue shift ~ U(-h, h) of a turn; 3 channels only")


@register_trick
class ColorJitter(Trick):
    """Random brightness, contrast, saturation and hue per image, in random order
    (torchvision's v2.ColorJitter)."""

    name = "color_jitter"
    code = "CJ"
    title = "Colour jitter"
    paper = ("Krizhevsky et al. 2012, ImageNet Classification with Deep CNNs (colour augmentation); "
             "He et al. 2019, Bag of Tricks (arXiv:1812.01187) uses 0.4/0.4/0.4")
    kind = "augmentation"
    Params = ColorJitterParams

    def check(self, params, spec: SpecView):
        if not any((params.brightness, params.contrast, params.saturation, params.hue)):
            return "brightness, contrast, saturation and hue are all 0, so colour jitter would change nothing"
        channels = getattr(spec.data, "channels", 3)
        colour = {k: v for k, v in (("saturation", params.saturation), ("hue", params.hue)) if v}
        if channels == 1 and colour:
            given = ", ".join(f"{k}={v}" for k, v in colour.items())
            return (f"saturation and hue need colour images, but data '{spec.data.name}' has 1 channel "
                    f"(got {given}); set them to 0 (brightness and contrast work on grey images)")
        return None

    def apply(self, params, proc):
        from torchvision.transforms import v2

        proc.sample_policies.append(per_image(v2.ColorJitter(
            brightness=params.brightness or None, contrast=params.contrast or None,
            saturation=params.saturation or None, hue=params.hue or None)))
