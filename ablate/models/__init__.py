"""Model registry: a typed config per model family, `build_model`, and `model_info`.

Add a model family by defining its config (a `Frozen` pydantic model with a `name` Literal)
under `@register_model(info=..., build=...)`: `info` gives its `ModelInfo` (family, block, label),
`build` the module; the spec, `model_info` and `build_model` pick it up by name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union, get_args

from pydantic import Field, field_validator, model_serializer, model_validator

from ablate.config import Frozen

if TYPE_CHECKING:  # torch is imported when a model is built, not when a spec is read
    from torch import nn


@dataclass(frozen=True)
class ModelInfo:
    family: str           # "resnet" (blocks the ResNet edits understand) or another family name
    block: str | None     # "basic" | "bottleneck" | None
    preact: bool
    projection_shortcuts: bool
    label: str            # short name for table labels, e.g. "ResNet20"


@dataclass(frozen=True)
class ModelFamily:
    config: type                                           # the family's config class
    info: Callable[[Any], ModelInfo]                        # config -> ModelInfo
    build: Callable[[Any, dict, int | None], nn.Module]     # (config, {in_channels, num_classes}, image_size)


FAMILIES: dict[type, ModelFamily] = {}   # config class -> its family, in registration order


def register_model(*, info: Callable[[Any], ModelInfo], build: Callable[[Any, dict, int | None], nn.Module]):
    """Register a model config class: `info(cfg)` its ModelInfo, `build(cfg, io, image_size)` its
    module (io: in_channels and num_classes; import torch inside `build`, not at module level)."""

    def register(cls: type) -> type:
        FAMILIES[cls] = ModelFamily(cls, info, build)
        return cls

    return register


# -- what each family's info and module are (referenced by its @register_model) ------------------

_TV_RESNETS = ("resnet", "resnext", "wide_resnet")


def _cifar_resnet_info(cfg) -> ModelInfo:
    label = ("PreResNet" if cfg.preact else "ResNet") + str(cfg.depth)
    if cfg.width != 16:
        label += f"-w{cfg.width}"
    return ModelInfo("resnet", cfg.block, cfg.preact, cfg.shortcut == "projection", label)


def _torchvision_info(cfg) -> ModelInfo:
    if cfg.arch.startswith(_TV_RESNETS):
        block = "basic" if cfg.arch in ("resnet18", "resnet34") else "bottleneck"
        return ModelInfo("resnet", block, False, True, cfg.arch)
    return ModelInfo("torchvision", None, False, False, cfg.arch)


def _build_cifar_resnet(cfg, io, image_size):
    from ablate.models.resnet import CifarResNet

    return CifarResNet(depth=cfg.depth, width=cfg.width, block=cfg.block, preact=cfg.preact, shortcut=cfg.shortcut,
                       **io)


def _build_torchvision_resnet(cfg, io, image_size):
    from ablate.models.resnet import torchvision_resnet

    return torchvision_resnet(cfg.name, **io)


def _build_convnet(cfg, io, image_size):
    from ablate.models.convnet import convnet

    return convnet(width=cfg.width, **io)


def _build_wide_resnet(cfg, io, image_size):
    from ablate.models import wide_resnet

    return wide_resnet.WideResNet(depth=cfg.depth, widen=cfg.widen, dropout=cfg.dropout, **io)


def _build_pyramidnet(cfg, io, image_size):
    from ablate.models import pyramidnet

    return pyramidnet.PyramidNet(depth=cfg.depth, alpha=cfg.alpha, bottleneck=cfg.bottleneck, **io)


def _build_shake_shake(cfg, io, image_size):
    from ablate.models import shake_shake

    return shake_shake.ShakeShakeResNet(depth=cfg.depth, width=cfg.width, **io)


def _build_airbench(cfg, io, image_size):
    from ablate.models import airbench

    return airbench.Airbench(widths=cfg.widths, stem=cfg.stem, **io)


def _build_octave(cfg, io, image_size):
    from ablate.models import octave

    return octave.OctaveResNet(depth=cfg.depth, width=cfg.width, alpha=cfg.alpha, **io)


def _build_torchvision(cfg, io, image_size):
    from ablate.models import zoo

    return zoo.torchvision_model(cfg.arch, **io)


def _build_timm(cfg, io, image_size):
    from ablate.models import zoo

    return zoo.timm_model(cfg.arch, image_size=image_size, **io)


class _ModelBase(Frozen):
    """Fields every model config shares. `weights` (a state-dict file, or `cache` for the
    torchvision/timm zoo's local cache) is left out of the dump while unset, so trial ids of
    specs written before it existed do not change."""

    weights: str | None = Field(None, min_length=1, description="state-dict file (.safetensors/.pt) or 'cache'")

    @model_serializer(mode="wrap")
    def _drop_unset_weights(self, handler):
        out = handler(self)
        if isinstance(out, dict) and out.get("weights") is None:
            out.pop("weights", None)
        return out

    @model_validator(mode="after")
    def _cache_only_in_a_zoo(self):
        if self.weights == "cache" and self.name not in ("torchvision", "timm"):
            raise ValueError(f"weights: cache reads torchvision's or timm's download cache, so it needs "
                             f"name: torchvision or name: timm with an arch; model '{self.name}' takes a "
                             f"file path (weights: path/to/model.safetensors)")
        return self


@register_model(info=_cifar_resnet_info,
                build=_build_cifar_resnet)
class CifarResNetConfig(_ModelBase):
    """3-stage CIFAR ResNet (He et al. 2016): depth 6n+2 (basic) or 9n+2 (bottleneck)."""

    name: Literal["cifar_resnet"]
    depth: int = Field(20, ge=8, le=1202, description="6n+2 for basic blocks, 9n+2 for bottlenecks")
    width: int = Field(16, ge=4, le=256, description="channels of the first stage")
    block: Literal["basic", "bottleneck"] = "basic"
    preact: bool = False
    shortcut: Literal["projection", "padding"] = "projection"

    @model_validator(mode="after")
    def _depth_fits_block(self):
        _check_depth(self.depth, 9 if self.block == "bottleneck" else 6, 2, self.block + " blocks")
        if self.preact and self.block == "bottleneck":
            raise ValueError("preact is available for basic blocks only; got block='bottleneck', preact=true")
        return self


def _check_depth(depth: int, per: int, extra: int, what: str) -> None:
    if (depth - extra) % per or depth - extra < per:
        ok = ", ".join(str(per * n + extra) for n in (1, 2, 3, 4, 5, 6, 9, 18))
        raise ValueError(f"depth must be {per}n+{extra} for {what} ({ok}, ...), got {depth}")


@register_model(info=lambda cfg: ModelInfo("resnet", "bottleneck" if cfg.name == "resnet50" else "basic", False, True,
                                          "ResNet" + cfg.name[len("resnet"):]),
                build=_build_torchvision_resnet)
class TorchvisionResNetConfig(_ModelBase):
    """torchvision ResNet-18/34/50 with a 3x3 stride-1 stem and no max-pool (small images)."""

    name: Literal["resnet18", "resnet34", "resnet50"]


@register_model(info=lambda cfg: ModelInfo("plain convnet", None, False, False, "ConvNet"),
                build=_build_convnet)
class ConvNetConfig(_ModelBase):
    """Plain 6-layer VGG-style ConvNet, no residual blocks."""

    name: Literal["convnet"]
    width: int = Field(32, ge=4, le=512, description="channels of the first stage")


@register_model(info=lambda cfg: ModelInfo("resnet", "basic", True, True, f"WRN-{cfg.depth}-{cfg.widen}"),
                build=_build_wide_resnet)
class WideResNetConfig(_ModelBase):
    """Wide ResNet WRN-depth-widen (Zagoruyko & Komodakis 2016): depth 6n+4, e.g. 28-10, 16-4."""

    name: Literal["wide_resnet"]
    depth: int = Field(16, ge=10, le=1000, description="6n+4: 10, 16, 22, 28, 40")
    widen: int = Field(4, ge=1, le=20, description="width multiplier k (stage widths 16k, 32k, 64k)")
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout between a block's two convs")

    @model_validator(mode="after")
    def _depth(self):
        _check_depth(self.depth, 6, 4, "a wide ResNet")
        return self


@register_model(info=lambda cfg: ModelInfo("pyramidnet", "bottleneck" if cfg.bottleneck else "basic", True, False,
                                          f"PyramidNet-{cfg.depth} a{cfg.alpha:g}"),
                build=_build_pyramidnet)
class PyramidNetConfig(_ModelBase):
    """PyramidNet (Han et al. 2017): widths grow by alpha over the network."""

    name: Literal["pyramidnet"]
    depth: int = Field(110, ge=8, le=1202, description="6n+2 (basic) or 9n+2 (bottleneck)")
    alpha: float = Field(48, gt=0, le=1000, description="total width increase over all blocks")
    bottleneck: bool = False

    @model_validator(mode="after")
    def _depth(self):
        _check_depth(self.depth, 9 if self.bottleneck else 6, 2,
                     "bottleneck blocks" if self.bottleneck else "basic blocks")
        return self


@register_model(info=lambda cfg: ModelInfo("shake-shake resnet", "basic", False, True,
                                          f"ShakeShake-{cfg.depth} 2x{cfg.width}d"),
                build=_build_shake_shake)
class ShakeShakeConfig(_ModelBase):
    """Shake-Shake ResNet (Gastaldi 2017): ResNet-26 2x32d, 2x64d, 2x96d."""

    name: Literal["shake_shake"]
    depth: int = Field(26, ge=8, le=200, description="6n+2; the paper uses 26")
    width: int = Field(32, ge=4, le=256, description="channels of each branch in the first stage (the d of 2xd)")

    @model_validator(mode="after")
    def _depth(self):
        _check_depth(self.depth, 6, 2, "shake-shake blocks")
        return self


@register_model(info=lambda cfg: ModelInfo("plain convnet", None, False, False, "Airbench"),
                build=_build_airbench)
class AirbenchConfig(_ModelBase):
    """airbench-style fast CIFAR net (Jordan 2024): conv-pool-BN-GELU blocks, widths 64/256/256."""

    name: Literal["airbench"]
    widths: tuple[int, int, int] = Field((64, 256, 256), description="channels of the three blocks")
    stem: int = Field(24, ge=1, le=512, description="channels of the 2x2 stem conv")

    @field_validator("widths")
    @classmethod
    def _positive(cls, v):
        if any(not 1 <= w <= 4096 for w in v):
            raise ValueError(f"widths must be in [1, 4096], got {list(v)}")
        return v


@register_model(info=lambda cfg: ModelInfo("octave resnet", "basic", False, True, f"OctResNet{cfg.depth} a{cfg.alpha:g}"),
                build=_build_octave)
class OctaveResNetConfig(_ModelBase):
    """CIFAR ResNet of octave convolutions (Chen et al. 2019): a fraction alpha of the channels
    at half resolution."""

    name: Literal["octave_resnet"]
    depth: int = Field(20, ge=8, le=1202, description="6n+2")
    width: int = Field(16, ge=4, le=256, description="channels of the first stage")
    alpha: float = Field(0.25, ge=0, lt=1, description="fraction of low-frequency channels")

    @model_validator(mode="after")
    def _depth(self):
        _check_depth(self.depth, 6, 2, "octave basic blocks")
        return self


@register_model(info=_torchvision_info,
                build=_build_torchvision)
class TorchvisionConfig(_ModelBase):
    """Any torchvision classification model by name (ImageNet architecture; the first conv takes
    the data's channels and the head its classes)."""

    name: Literal["torchvision"]
    arch: str = Field(description="a torchvision.models name, e.g. efficientnet_b0, regnet_y_1_6gf")

    @field_validator("arch")
    @classmethod
    def _known(cls, v):
        from ablate.models.zoo import check_torchvision_arch

        check_torchvision_arch(v)
        return v


@register_model(info=lambda cfg: ModelInfo("timm", None, False, False, cfg.arch),
                build=_build_timm)
class TimmConfig(_ModelBase):
    """Any timm model by name (needs `pip install 'ablate[timm]'`); ViTs get the data's image size."""

    name: Literal["timm"]
    arch: str = Field(description="a timm.list_models() name, e.g. vit_tiny_patch16_224, resnet26d")

    @field_validator("arch")
    @classmethod
    def _known(cls, v):
        from ablate.models.zoo import check_timm_arch

        check_timm_arch(v)
        return v


ModelConfig = Annotated[Union[tuple(FAMILIES)], Field(discriminator="name")]
MODEL_NAMES = sorted(n for cls in FAMILIES for n in get_args(cls.model_fields["name"].annotation))


def _family(cfg) -> ModelFamily:
    family = FAMILIES.get(type(cfg))
    if family is None:
        raise TypeError(f"not a model config: {cfg!r}")
    return family


def model_info(cfg) -> ModelInfo:
    return _family(cfg).info(cfg)


def build_model(cfg, *, in_channels: int, num_classes: int, image_size: int | None = None) -> nn.Module:
    """A freshly initialised model (uses the global torch RNG: seed before calling).

    `image_size` reaches the models that need it (timm's vision transformers)."""
    return _family(cfg).build(cfg, {"in_channels": in_channels, "num_classes": num_classes}, image_size)


def build_for_shapes(cfg, *, in_channels: int, num_classes: int, image_size: int | None = None) -> nn.Module:
    """The model for counting parameters and comparing shapes: on the meta device (no memory,
    no init cost), or on the CPU for builders that compute with tensors (torchvision's RegNet)."""
    import torch

    try:
        with torch.device("meta"):
            return build_model(cfg, in_channels=in_channels, num_classes=num_classes, image_size=image_size)
    except (NotImplementedError, RuntimeError):
        with torch.random.fork_rng(devices=[]):   # leave the caller's RNG as it was
            return build_model(cfg, in_channels=in_channels, num_classes=num_classes, image_size=image_size)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


__all__ = ["ModelConfig", "MODEL_NAMES", "ModelInfo", "ModelFamily", "FAMILIES", "register_model", "model_info", "build_model", "build_for_shapes",
           "count_params",
           "CifarResNetConfig", "TorchvisionResNetConfig", "ConvNetConfig", "WideResNetConfig",
           "PyramidNetConfig", "ShakeShakeConfig", "AirbenchConfig", "OctaveResNetConfig", "TorchvisionConfig",
           "TimmConfig"]
