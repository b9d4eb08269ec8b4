"""Random erasing and Cutout, batched on the device.

Written by hand because torchvision's RandomErasing works one image at a time: here one call
draws every image's box and builds all masks with broadcasting, so it costs a few kernels per
batch on a GPU. All draws come from the generator the trainer passes (the trial's tricks stream).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from pydantic import Field

if TYPE_CHECKING:
    import torch

from ablate.tricks.base import SpecView, Trick, TrickParams, register_trick

# Box draws per image before giving up (torchvision's RandomErasing also stops after 10).
ERASING_ATTEMPTS = 10


def box_mask(height: int, width: int, top: torch.Tensor, left: torch.Tensor,
             box_h: torch.Tensor, box_w: torch.Tensor) -> torch.Tensor:
    """Boolean masks (B, H, W), True inside each image's box [top, top+box_h) x [left, left+box_w)."""
    import torch

    ys = torch.arange(height, device=top.device).view(1, -1, 1)
    xs = torch.arange(width, device=top.device).view(1, 1, -1)
    t, l = top.view(-1, 1, 1), left.view(-1, 1, 1)
    return (ys >= t) & (ys < t + box_h.view(-1, 1, 1)) & (xs >= l) & (xs < l + box_w.view(-1, 1, 1))


def erasing_boxes(batch: int, height: int, width: int, *, scale: tuple[float, float],
                  ratio: tuple[float, float], generator: torch.Generator,
                  attempts: int = ERASING_ATTEMPTS) -> tuple[torch.Tensor, ...]:
    """Draw one box per image by Zhong et al.'s rejection rule, all images at once.

    Each attempt draws an area uniform in `scale` x image area and an aspect ratio log-uniform
    in `ratio` (as torchvision and timm do), rounds to h = sqrt(area * r), w = sqrt(area / r),
    and accepts it when the box fits inside the image (h < H and w < W, as the authors' code
    and torchvision test it); an image takes its first accepted attempt and a uniform position
    where the box fits. Returns (found, top, left, h, w): `found` is False for an image whose
    `attempts` draws all failed (it is left unerased, as torchvision does).
    """
    import torch

    dev = generator.device
    area = torch.rand(batch, attempts, generator=generator, device=dev)
    area = (scale[0] + (scale[1] - scale[0]) * area) * (height * width)
    log_r = torch.rand(batch, attempts, generator=generator, device=dev)
    aspect = torch.exp(math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * log_r)
    bh = torch.sqrt(area * aspect).round().long()
    bw = torch.sqrt(area / aspect).round().long()
    fits = (bh >= 1) & (bw >= 1) & (bh < height) & (bw < width)
    found = fits.any(1)
    first = fits.int().argmax(1, keepdim=True)      # index of the first accepted attempt
    bh = bh.gather(1, first).squeeze(1).clamp(min=1)
    bw = bw.gather(1, first).squeeze(1).clamp(min=1)
    top = (torch.rand(batch, generator=generator, device=dev) * (height - bh + 1)).long().clamp(min=0)
    left = (torch.rand(batch, generator=generator, device=dev) * (width - bw + 1)).long().clamp(min=0)
    return found, top, left, bh, bw


def random_erasing(x: torch.Tensor, generator: torch.Generator, *, prob: float,
                   scale: tuple[float, float], ratio: tuple[float, float], value: str) -> torch.Tensor:
    """Erase one box per image with probability `prob` (Zhong et al. 2020).

    Boxes follow `erasing_boxes`. `value` is "zero" (the data mean, as inputs are normalised)
    or "random" (standard normal noise).
    """
    import torch

    b, c, h, w = x.shape
    found, top, left, bh, bw = erasing_boxes(b, h, w, scale=scale, ratio=ratio, generator=generator)
    chosen = torch.rand(b, generator=generator, device=generator.device) < prob
    mask = box_mask(h, w, top, left, bh, bw) & (found & chosen).view(-1, 1, 1)
    mask = mask.unsqueeze(1)
    if value == "random":
        fill = torch.randn(x.shape, generator=generator, device=generator.device, dtype=x.dtype)
    else:
        fill = torch.zeros_like(x)
    return torch.where(mask, fill, x)


def cutout(x: torch.Tensor, generator: torch.Generator, *, size: float) -> torch.Tensor:
    """Zero a square of side `size` x image side at a uniform centre (may overhang the border)."""
    import torch

    b, c, h, w = x.shape
    dev = generator.device
    side_h = max(1, round(size * h))
    side_w = max(1, round(size * w))
    cy = (torch.rand(b, generator=generator, device=dev) * h).long()
    cx = (torch.rand(b, generator=generator, device=dev) * w).long()
    top, left = cy - side_h // 2, cx - side_w // 2
    mask = box_mask(h, w, top, left, torch.full_like(top, side_h), torch.full_like(left, side_w))
    return x.masked_fill(mask.unsqueeze(1), 0.0)


class ErasingParams(TrickParams):
    prob: float = Field(0.5, gt=0, le=1, description="probability that an image is erased")
    scale_min: float = Field(0.02, gt=0, lt=1, description="smallest box area (fraction of image)")
    scale_max: float = Field(0.33, gt=0, le=1, description="largest box area (fraction of image)")
    ratio: float = Field(0.3, gt=0, le=1, description="aspect ratios drawn in [ratio, 1/ratio]")
    value: str = Field("zero", pattern="^(zero|random)$", description="fill: zero (mean) or random")


@register_trick
class RandomErasing(Trick):
    name = "random_erasing"
    code = "RE"
    title = "Random erasing"
    paper = "Zhong et al. 2020, Random Erasing Data Augmentation (arXiv:1708.04896)"
    kind = "augmentation"
    Params = ErasingParams

    def check(self, params, spec: SpecView):
        if params.scale_min > params.scale_max:
            return (f"scale_min <= scale_max must hold, got scale_min={params.scale_min}, "
                    f"scale_max={params.scale_max}")
        return None

    def apply(self, params, proc):
        kw = dict(prob=params.prob, scale=(params.scale_min, params.scale_max),
                  ratio=(params.ratio, 1 / params.ratio), value=params.value)
        proc.batch_erasers.append(lambda x, generator: random_erasing(x, generator, **kw))


class CutoutParams(TrickParams):
    size: float = Field(0.5, gt=0, le=1, description="square side as a fraction of the image side")


@register_trick
class Cutout(Trick):
    name = "cutout"
    code = "CO"
    title = "Cutout"
    paper = "DeVries & Taylor 2017, Improved Regularization of CNNs with Cutout (arXiv:1708.04552)"
    kind = "augmentation"
    Params = CutoutParams

    def apply(self, params, proc):
        size = params.size
        proc.batch_erasers.append(lambda x, generator: cutout(x, generator, size=size))
