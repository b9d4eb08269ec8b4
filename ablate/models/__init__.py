"""Model registry: a typed config per model family, `build_model`, and `model_info`.

Add a model by defining its config (a `Frozen` pydantic model with a `name` Literal), a builder,
and an entry in `MODELS`; the spec picks it up by name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Literal, Union

from pydantic import Field, model_validator

from ablate.config import Frozen

if TYPE_CHECKING:  # torch is imported when a model is built, not when a spec is read
    from torch import nn


class CifarResNetConfig(Frozen):
    """3-stage CIFAR ResNet (He et al. 2016): depth 6n+2 (basic) or 9n+2 (bottleneck)."""

    name: Literal["cifar_resnet"]
    depth: int = Field(20, ge=8, le=1202, description="6n+2 for basic blocks, 9n+2 for bottlenecks")
    width: int = Field(16, ge=4, le=256, description="channels of the first stage")
    block: Literal["basic", "bottleneck"] = "basic"
    preact: bool = False
    shortcut: Literal["projection", "padding"] = "projection"

    @model_validator(mode="after")
    def _depth_fits_block(self):
        per = 9 if self.block == "bottleneck" else 6
        if (self.depth - 2) % per:
            ok = ", ".join(str(per * n + 2) for n in (1, 2, 3, 5, 6, 9, 18))
            raise ValueError(f"depth must be {per}n+2 for {self.block} blocks ({ok}, ...), got {self.depth}")
        if self.preact and self.block == "bottleneck":
            raise ValueError("preact is available for basic blocks only; got block='bottleneck', preact=true")
        return self


class TorchvisionResNetConfig(Frozen):
    """torchvision ResNet-18/34/50 with a 3x3 stride-1 stem and no max-pool (small images)."""

    name: Literal["resnet18", "resnet34", "resnet50"]


class ConvNetConfig(Frozen):
    """Plain 6-layer VGG-style ConvNet, no residual blocks."""

    name: Literal["convnet"]
    width: int = Field(32, ge=4, le=512, description="channels of the first stage")


ModelConfig = Annotated[Union[CifarResNetConfig, TorchvisionResNetConfig, ConvNetConfig],
                        Field(discriminator="name")]
MODEL_NAMES = ["cifar_resnet", "convnet", "resnet18", "resnet34", "resnet50"]


@dataclass(frozen=True)
class ModelInfo:
    family: str           # "resnet" or "plain convnet"
    block: str | None     # "basic" | "bottleneck" | None
    preact: bool
    projection_shortcuts: bool
    label: str            # short name for table labels, e.g. "ResNet20"


def model_info(cfg) -> ModelInfo:
    if isinstance(cfg, CifarResNetConfig):
        label = ("PreResNet" if cfg.preact else "ResNet") + str(cfg.depth)
        if cfg.width != 16:
            label += f"-w{cfg.width}"
        return ModelInfo("resnet", cfg.block, cfg.preact, cfg.shortcut == "projection", label)
    if isinstance(cfg, TorchvisionResNetConfig):
        block = "bottleneck" if cfg.name == "resnet50" else "basic"
        return ModelInfo("resnet", block, False, True, "ResNet" + cfg.name[len("resnet"):])
    if isinstance(cfg, ConvNetConfig):
        return ModelInfo("plain convnet", None, False, False, "ConvNet")
    raise TypeError(f"not a model config: {cfg!r}")


def build_model(cfg, *, in_channels: int, num_classes: int) -> nn.Module:
    """A freshly initialised model (uses the global torch RNG: seed before calling)."""
    from ablate.models.convnet import convnet
    from ablate.models.resnet import CifarResNet, torchvision_resnet

    builders: dict[type, Callable[[], nn.Module]] = {
        CifarResNetConfig: lambda: CifarResNet(depth=cfg.depth, width=cfg.width, block=cfg.block,
                                               preact=cfg.preact, shortcut=cfg.shortcut,
                                               in_channels=in_channels, num_classes=num_classes),
        TorchvisionResNetConfig: lambda: torchvision_resnet(cfg.name, in_channels=in_channels,
                                                            num_classes=num_classes),
        ConvNetConfig: lambda: convnet(width=cfg.width, in_channels=in_channels, num_classes=num_classes),
    }
    return builders[type(cfg)]()


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


__all__ = ["ModelConfig", "MODEL_NAMES", "ModelInfo", "model_info", "build_model", "count_params",
           "CifarResNetConfig", "TorchvisionResNetConfig", "ConvNetConfig"]
