"""Models by name from torchvision's and timm's zoos, with the data's channels and classes.

torchvision: any `torchvision.models.list_models()` classification name (EfficientNet-B0..B7,
RegNet, MobileNet, ShuffleNet, DenseNet, ResNeXt, ResNet, ViT...), the ImageNet architecture
as-is; the first conv is rebuilt for 1-channel data and the head for the data's classes.
timm (an optional extra, `pip install 'ablate[timm]'`): `timm.create_model(arch, in_chans=...,
num_classes=..., img_size=...)`, the image size passed where the model takes one (ViTs).

Weights are never downloaded here: models are built with random weights, and `weights:` (a
file, or `cache` for the zoo's local download cache) is loaded by `ablate.models.weights`.
"""

from __future__ import annotations

import difflib
import functools
from pathlib import Path

from ablate.errors import AblateError

TIMM_INSTALL = "pip install 'ablate[timm]'"


def _nearest(name: str, names: list[str], n: int = 3) -> str:
    near = difflib.get_close_matches(name, names, n=n, cutoff=0.5)
    return f" (did you mean {', '.join(repr(x) for x in near)}?)" if near else ""


@functools.lru_cache(maxsize=1)
def torchvision_archs() -> tuple[str, ...]:
    import torchvision

    return tuple(torchvision.models.list_models(module=torchvision.models))


def check_torchvision_arch(arch: str) -> None:
    names = list(torchvision_archs())
    if arch not in names:
        raise ValueError(f"unknown torchvision model '{arch}'{_nearest(arch, names)}; allowed: any "
                         f"torchvision.models.list_models() name, e.g. efficientnet_b0, regnet_y_1_6gf, "
                         f"mobilenet_v2, shufflenet_v2_x1_0, densenet121, resnext50_32x4d, resnet50")


def timm_module():
    """timm, or an error saying how to install it."""
    try:
        import timm
    except ImportError:
        raise AblateError(f"model name 'timm' needs the timm package, which is not installed; "
                          f"install it with: {TIMM_INSTALL}") from None
    return timm


def check_timm_arch(arch: str) -> None:
    try:
        timm = timm_module()
    except AblateError as exc:
        raise ValueError(str(exc)) from None
    base = arch.split(".", 1)[0]
    if not timm.is_model(base):
        raise ValueError(f"unknown timm model '{arch}'{_nearest(base, timm.list_models())}; allowed: any "
                         f"timm.list_models() name (optionally with a .tag), e.g. vit_tiny_patch16_224")


def _first_conv(model):
    """(parent module, attribute name, conv) of the first Conv2d in registration order."""
    from torch import nn

    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            parent = model
            *path, attr = name.split(".")
            for p in path:
                parent = getattr(parent, p)
            return parent, attr, module
    raise TypeError(f"{type(model).__name__} has no Conv2d to adapt to the data's channels")


def torchvision_model(arch: str, *, in_channels: int, num_classes: int):
    import torchvision
    from torch import nn

    model = torchvision.models.get_model(arch, weights=None, num_classes=num_classes)
    if in_channels != 3:
        parent, attr, conv = _first_conv(model)
        new = nn.Conv2d(in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                        conv.dilation, conv.groups, conv.bias is not None, conv.padding_mode)
        setattr(parent, attr, new)
    return model


def timm_model(arch: str, *, in_channels: int, num_classes: int, image_size: int | None = None):
    timm = timm_module()
    kwargs = {"pretrained": False, "num_classes": num_classes, "in_chans": in_channels}
    if image_size is not None:
        try:   # the models with a fixed input size (ViTs and kin) take img_size; others refuse it
            return timm.create_model(arch, img_size=image_size, **kwargs)
        except TypeError as exc:
            if "img_size" not in str(exc):
                raise
    return timm.create_model(arch, **kwargs)


# -- the zoos' local caches ------------------------------------------------------------------

def torchvision_cache_file(arch: str) -> Path:
    """Where torchvision keeps `arch`'s default weights once downloaded (torch.hub's dir)."""
    import torch
    import torchvision

    try:
        url = torchvision.models.get_model_weights(arch).DEFAULT.url
    except (ValueError, AttributeError, KeyError):
        raise AblateError(f"torchvision has no pretrained weights for '{arch}', so weights: cache cannot "
                          f"be used; give weights: path/to/file") from None
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]


def timm_cache_files(arch: str) -> list[Path]:
    """Where timm keeps `arch`'s pretrained weights once downloaded: the Hugging Face hub cache
    (models--<org>--<name>/snapshots/*/model.safetensors or pytorch_model.bin), or torch.hub's
    checkpoints folder for weights with a plain URL. Existing files first."""
    import torch

    timm = timm_module()
    cfg = timm.models.get_pretrained_cfg(arch)
    if cfg is None:
        raise AblateError(f"timm has no pretrained weights for '{arch}', so weights: cache cannot be used")
    candidates: list[Path] = []
    if cfg.hf_hub_id:
        from huggingface_hub.constants import HF_HUB_CACHE

        folder = Path(HF_HUB_CACHE) / ("models--" + cfg.hf_hub_id.replace("/", "--")) / "snapshots"
        names = [cfg.hf_hub_filename] if cfg.hf_hub_filename else ["model.safetensors", "pytorch_model.bin"]
        found = sorted(p for n in names for p in folder.glob(f"*/{n}"))
        candidates += found or [folder / "<revision>" / n for n in names]
    if cfg.url and cfg.url.endswith((".pth", ".pt", ".bin", ".safetensors")):
        candidates.append(Path(torch.hub.get_dir()) / "checkpoints" / cfg.url.rsplit("/", 1)[-1])
    return sorted(candidates, key=lambda p: not p.is_file())


def cache_file(cfg) -> Path:
    """The cached weights file of a torchvision/timm config; an error naming every path looked at
    when none is there (nothing is downloaded)."""
    paths = [torchvision_cache_file(cfg.arch)] if cfg.name == "torchvision" else timm_cache_files(cfg.arch)
    for p in paths:
        if p.is_file():
            return p
    raise AblateError(f"weights: cache, but no cached weights of {cfg.name} '{cfg.arch}' were found (looked "
                      f"at {', '.join(str(p) for p in paths)}); ablate never downloads: fetch them once "
                      f"elsewhere or give weights: path/to/file")
