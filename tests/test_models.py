"""Models: CIFAR ResNets of every documented depth, torchvision ResNets for small images."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from ablate.models import (
    CifarResNetConfig,
    ConvNetConfig,
    TorchvisionResNetConfig,
    build_model,
    count_params,
    model_info,
)


@pytest.mark.parametrize("depth, params", [(20, 0.27), (32, 0.47), (44, 0.66), (56, 0.86), (110, 1.73)])
def test_cifar_resnet_depths_match_the_paper(depth, params):
    cfg = CifarResNetConfig(name="cifar_resnet", depth=depth, shortcut="padding")
    m = build_model(cfg, in_channels=3, num_classes=10)
    assert count_params(m) / 1e6 == pytest.approx(params, abs=0.01)
    assert m(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert model_info(cfg).label == f"ResNet{depth}"


def test_preact_and_bottleneck():
    m = build_model(CifarResNetConfig(name="cifar_resnet", depth=8, preact=True), in_channels=1, num_classes=4)
    assert m(torch.randn(2, 1, 16, 16)).shape == (2, 4)
    m = build_model(CifarResNetConfig(name="cifar_resnet", depth=29, block="bottleneck"), in_channels=3,
                    num_classes=10)
    assert m(torch.randn(2, 3, 16, 16)).shape == (2, 10)


@pytest.mark.parametrize("kw, words", [
    ({"depth": 21}, "6n\\+2"), ({"depth": 23, "block": "bottleneck"}, "9n\\+2"),
    ({"depth": 29, "block": "bottleneck", "preact": True}, "preact is available for basic blocks only"),
])
def test_bad_depths(kw, words):
    with pytest.raises(ValidationError, match=words):
        CifarResNetConfig(name="cifar_resnet", **kw)


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_torchvision_resnets_for_small_images(name):
    m = build_model(TorchvisionResNetConfig(name=name), in_channels=3, num_classes=100)
    assert m.conv1.stride == (1, 1) and isinstance(m.maxpool, torch.nn.Identity)
    assert m(torch.randn(2, 3, 32, 32)).shape == (2, 100)
    if name == "resnet50":   # the original ResNet strides in the first 1x1 (ResNet-B moves it)
        assert m.layer2[0].conv1.stride == (2, 2) and m.layer2[0].conv2.stride == (1, 1)


def test_convnet_is_not_a_resnet():
    cfg = ConvNetConfig(name="convnet", width=8)
    assert model_info(cfg).family != "resnet"
    assert build_model(cfg, in_channels=1, num_classes=3)(torch.randn(2, 1, 16, 16)).shape == (2, 3)
