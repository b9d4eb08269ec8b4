"""What `ablate models` lists: every model family with its variants, paper, and parameter
counts at the digits (1 channel) and CIFAR-10 (3 channels) shapes, counted on the meta device
(no memory, no weights)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TV_PAPERS = {
    "resnet": "He et al. 2016, Deep Residual Learning (arXiv:1512.03385)",
    "resnext": "Xie et al. 2017, Aggregated Residual Transformations (arXiv:1611.05431)",
    "efficientnet": "Tan & Le 2019, EfficientNet (arXiv:1905.11946)",
    "regnet": "Radosavovic et al. 2020, Designing Network Design Spaces (arXiv:2003.13678)",
    "mobilenet_v2": "Sandler et al. 2018, MobileNetV2 (arXiv:1801.04381)",
    "shufflenet": "Ma et al. 2018, ShuffleNet V2 (arXiv:1807.11164)",
    "densenet": "Huang et al. 2017, Densely Connected Convolutional Networks (arXiv:1608.06993)",
}


@dataclass(frozen=True)
class Entry:
    config: dict[str, Any]
    paper: str
    needs_timm: bool = False

    @property
    def name(self) -> str:
        c = self.config
        extra = ", ".join(f"{k}={v}" for k, v in c.items() if k != "name")
        return f"{c['name']}" + (f" ({extra})" if extra else "")


ENTRIES = [
    Entry({"name": "cifar_resnet", "depth": 20}, "He et al. 2016, Deep Residual Learning (arXiv:1512.03385)"),
    Entry({"name": "cifar_resnet", "depth": 56}, "He et al. 2016 (arXiv:1512.03385)"),
    Entry({"name": "cifar_resnet", "depth": 20, "preact": True}, "He et al. 2016, Identity Mappings (arXiv:1603.05027)"),
    Entry({"name": "resnet18"}, "He et al. 2016 (arXiv:1512.03385), small-image stem"),
    Entry({"name": "resnet34"}, "He et al. 2016 (arXiv:1512.03385), small-image stem"),
    Entry({"name": "resnet50"}, "He et al. 2016 (arXiv:1512.03385), small-image stem"),
    Entry({"name": "convnet"}, "plain VGG-style baseline (Simonyan & Zisserman 2015, arXiv:1409.1556)"),
    Entry({"name": "wide_resnet", "depth": 16, "widen": 4}, "Zagoruyko & Komodakis 2016, Wide Residual Networks (arXiv:1605.07146)"),
    Entry({"name": "wide_resnet", "depth": 28, "widen": 10}, "Zagoruyko & Komodakis 2016 (arXiv:1605.07146)"),
    Entry({"name": "pyramidnet", "depth": 110, "alpha": 48}, "Han et al. 2017, Deep Pyramidal Residual Networks (arXiv:1610.02915)"),
    Entry({"name": "pyramidnet", "depth": 272, "alpha": 200, "bottleneck": True}, "Han et al. 2017 (arXiv:1610.02915)"),
    Entry({"name": "shake_shake", "depth": 26, "width": 32}, "Gastaldi 2017, Shake-Shake regularization (arXiv:1705.07485)"),
    Entry({"name": "shake_shake", "depth": 26, "width": 64}, "Gastaldi 2017 (arXiv:1705.07485)"),
    Entry({"name": "airbench"}, "Jordan 2024, 94% on CIFAR-10 in 3.29 Seconds on a Single GPU (arXiv:2404.00498)"),
    Entry({"name": "octave_resnet", "depth": 20, "alpha": 0.25}, "Chen et al. 2019, Drop an Octave (arXiv:1904.05049)"),
    *[Entry({"name": "torchvision", "arch": a}, TV_PAPERS[next(k for k in TV_PAPERS if a.startswith(k))])
      for a in ("efficientnet_b0", "efficientnet_b1", "efficientnet_b2", "regnet_y_1_6gf", "mobilenet_v2",
                "shufflenet_v2_x1_0", "densenet121", "resnext50_32x4d", "resnet18", "resnet50")],
    Entry({"name": "timm", "arch": "vit_tiny_patch16_224"},
          "Dosovitskiy et al. 2021, An Image is Worth 16x16 Words (arXiv:2010.11929); any timm.list_models() name",
          needs_timm=True),
    Entry({"name": "timm", "arch": "deit_tiny_patch16_224"},
          "Touvron et al. 2021, Training data-efficient image transformers (arXiv:2012.12877)", needs_timm=True),
]

SHAPES = {"digits": (1, 16, 10), "cifar": (3, 32, 10)}   # channels, image size, classes


def param_count(config: dict[str, Any], shape: str) -> int | None:
    """Parameters of `config` built for a data shape, or None when it cannot be built here
    (timm not installed)."""
    from pydantic import TypeAdapter

    from ablate.errors import AblateError
    from ablate.models import ModelConfig, build_for_shapes, count_params

    channels, size, classes = SHAPES[shape]
    try:
        cfg = TypeAdapter(ModelConfig).validate_python(config)
        return count_params(build_for_shapes(cfg, in_channels=channels, num_classes=classes, image_size=size))
    except (AblateError, ValueError):
        return None


def model_rows() -> list[dict[str, Any]]:
    from ablate.models import model_info
    from pydantic import TypeAdapter, ValidationError

    from ablate.models import ModelConfig

    rows = []
    for e in ENTRIES:
        try:
            label = model_info(TypeAdapter(ModelConfig).validate_python(e.config)).label
        except ValidationError:   # timm absent
            label = e.config.get("arch", e.config["name"])
        rows.append({"model": e.name, "label": label, "digits_params": param_count(e.config, "digits"),
                     "cifar_params": param_count(e.config, "cifar"), "paper": e.paper, "needs_timm": e.needs_timm})
    return rows
