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


# -- structure: the modules and the order in which they run ------------------------------------

def call_order(model: torch.nn.Module, x: torch.Tensor, prefix: str = "") -> list[tuple[str, torch.nn.Module]]:
    """(qualified name, module) of every leaf module in the order the forward pass calls it."""
    calls, handles = [], []
    for name, m in model.named_modules():
        if not list(m.children()) and name.startswith(prefix):
            handles.append(m.register_forward_pre_hook(lambda mod, args, name=name: calls.append((name, mod))))
    try:
        model(x)
    finally:
        for h in handles:
            h.remove()
    return calls


def kinds(calls, prefix: str) -> list[str]:
    """Module kinds called inside `prefix`, e.g. ['Conv2d', 'BatchNorm2d', ...] (ReLU modules left out)."""
    return [type(m).__name__ for n, m in calls if n.startswith(prefix) and type(m).__name__ != "ReLU"]


def cifar(**kw):
    cfg = CifarResNetConfig(name="cifar_resnet", **{"depth": 8, "width": 8, **kw})
    return build_model(cfg, in_channels=1, num_classes=4)


X = torch.randn(2, 1, 8, 8)


def test_preact_flag_builds_pre_activation_blocks():
    post, pre = call_order(cifar(), X), call_order(cifar(preact=True), X)
    # post-activation (He et al. 2016a): conv-BN(-ReLU) twice, the branch ends in BN
    assert kinds(post, "layer1.0.") == ["Conv2d", "BatchNorm2d", "Conv2d", "BatchNorm2d"]
    # pre-activation (He et al. 2016b): BN(-ReLU)-conv twice, the branch ends in a conv
    assert kinds(pre, "layer1.0.") == ["BatchNorm2d", "Conv2d", "BatchNorm2d", "Conv2d"]
    assert [n for n, _ in pre][:1] == ["conv1"] and not any(n == "bn1" for n, m in pre
                                                              if isinstance(m, torch.nn.BatchNorm2d))
    assert [n for n, _ in pre][-3:] == ["final_bn.0", "final_bn.1", "fc"], "BN-ReLU before the classifier"
    # a projecting pre-activation block feeds its shortcut the pre-activated input
    assert kinds(pre, "layer2.0.") == ["BatchNorm2d", "Conv2d", "BatchNorm2d", "Conv2d", "BatchNorm2d", "Conv2d"]
    assert [n for n, _ in pre if n.startswith("layer2.0.")][1] == "layer2.0.downsample.0"


def _strided(calls, prefix):
    """(name, kernel, stride) of the convs inside prefix, in call order."""
    return [(n[len(prefix):], m.kernel_size[0], m.stride[0]) for n, m in calls
            if n.startswith(prefix) and isinstance(m, torch.nn.Conv2d)]


def test_resnet_b_moves_the_stride_into_the_3x3():
    from ablate.models.resnet import stride_in_3x3

    model = cifar(depth=11, block="bottleneck")
    assert _strided(call_order(model, X), "layer2.0.")[:3] == [("conv1", 1, 2), ("conv2", 3, 1), ("conv3", 1, 1)]
    stride_in_3x3(model)
    assert _strided(call_order(model, X), "layer2.0.")[:3] == [("conv1", 1, 1), ("conv2", 3, 2), ("conv3", 1, 1)]


def test_resnet_c_deep_stem_is_three_3x3_convs_with_bn_relu_between():
    from ablate.models.resnet import deep_stem

    model = cifar()
    deep_stem(model)
    calls = call_order(model, X)
    stem = [(type(m).__name__, getattr(m, "kernel_size", None)) for n, m in calls if n.startswith("conv1.")]
    assert stem == [("Conv2d", (3, 3)), ("BatchNorm2d", None), ("ReLU", None), ("Conv2d", (3, 3)),
                    ("BatchNorm2d", None), ("ReLU", None), ("Conv2d", (3, 3))]
    assert [n for n, _ in calls][7:9] == ["bn1", "relu"], "then the original stem BN-ReLU"


def test_resnet_d_average_pools_before_a_stride_1_projection():
    from ablate.models.resnet import avgpool_shortcut

    model = cifar()
    avgpool_shortcut(model)
    calls = call_order(model, X)
    down = [(type(m).__name__, getattr(m, "stride", None)) for n, m in calls if n.startswith("layer2.0.downsample")]
    assert down == [("AvgPool2d", 2), ("Conv2d", (1, 1)), ("BatchNorm2d", None)]


@pytest.mark.parametrize("preact", [False, True])
@pytest.mark.parametrize("kind, modules", [("se", ["Conv2d", "Conv2d"]), ("cbam", ["Conv2d", "Conv2d", "Conv2d",
                                                                                    "Conv2d", "Conv2d"])])
def test_attention_runs_at_the_end_of_the_branch(kind, modules, preact):
    from ablate.models.resnet import add_attention

    model = cifar(preact=preact)
    add_attention(model, kind, 4)
    branch = kinds(call_order(model, X), "layer1.0.")
    plain = ["BatchNorm2d", "Conv2d", "BatchNorm2d", "Conv2d"] if preact else \
        ["Conv2d", "BatchNorm2d", "Conv2d", "BatchNorm2d"]
    assert branch == plain + modules


@pytest.mark.parametrize("preact", [False, True])
def test_sk_replaces_a_3x3_conv_with_two_dilated_branches(preact):
    from ablate.models.resnet import add_attention

    model = cifar(preact=preact)
    add_attention(model, "sk", 4)
    calls = call_order(model, X)
    sk = "layer1.0.conv1." if preact else "layer1.0.conv2."
    dil = [m.dilation[0] for n, m in calls if n.startswith(sk) and isinstance(m, torch.nn.Conv2d)
           and m.kernel_size == (3, 3)]
    assert dil == [1, 2]
    block = kinds(calls, "layer1.0.")
    # SK: branch conv-BN x2, squeeze conv-BN, select conv; then the block's own BN (and conv)
    sk_kinds = ["Conv2d", "BatchNorm2d", "Conv2d", "BatchNorm2d", "Conv2d", "BatchNorm2d", "Conv2d"]
    assert block == (["BatchNorm2d"] + sk_kinds + ["BatchNorm2d", "Conv2d"] if preact
                     else ["Conv2d", "BatchNorm2d"] + sk_kinds + ["BatchNorm2d"])


# -- every trainable parameter trains after every model-editing trick ---------------------------

MODEL_TRICKS = ["zero_gamma", "resnet_b", "resnet_c", "resnet_d", "se", "cbam", "sk", "gc", "bam", "sge", "srm"]
FAMILIES = {
    "basic": {"name": "cifar_resnet", "depth": 8, "width": 8},
    "basic-padding": {"name": "cifar_resnet", "depth": 8, "width": 8, "shortcut": "padding"},
    "preact": {"name": "cifar_resnet", "depth": 8, "width": 8, "preact": True},
    "bottleneck": {"name": "cifar_resnet", "depth": 11, "width": 8, "block": "bottleneck"},
    "resnet18": {"name": "resnet18"},
    "wide_resnet": {"name": "wide_resnet", "depth": 10, "widen": 2},
    "pyramidnet": {"name": "pyramidnet", "depth": 8, "alpha": 8},
    "shake_shake": {"name": "shake_shake", "depth": 8, "width": 8},
    "airbench": {"name": "airbench", "widths": [8, 16, 16], "stem": 4},
    "octave": {"name": "octave_resnet", "depth": 8, "width": 8, "alpha": 0.5},
}
# the family alone, each edit alone, and zero-gamma on top of every other edit (edits compose)
EDIT_SETS = [()] + [(t,) for t in MODEL_TRICKS] + [(t, "zero_gamma") for t in MODEL_TRICKS if t != "zero_gamma"]


def _edited_model(family: str, tricks: tuple[str, ...]):
    """The family's model with the tricks' edits, or None when a trick refuses the family."""
    from ablate.tricks import Procedure, get_trick
    from tests.conftest import tiny_spec

    spec = tiny_spec(model=FAMILIES[family])
    proc = Procedure(epochs=1, batch_size=8, optimizer="sgd", lr=0.1, momentum=0.9, nesterov=False,
                     weight_decay=0.0, num_classes=4)
    for name in tricks:
        trick = get_trick(name)
        if trick.check(trick.Params(), spec) is not None:
            return None
        trick.apply(trick.Params(), proc)
    torch.manual_seed(0)
    model = build_model(spec.model, in_channels=1, num_classes=4)
    for edit in proc.model_edits + proc.init_edits:
        edit(model)
    return model


@pytest.mark.parametrize("family", [f for f in FAMILIES if f != "resnet18"] +
                         [pytest.param("resnet18", marks=pytest.mark.slow)])
@pytest.mark.parametrize("tricks", EDIT_SETS, ids=lambda t: "+".join(t) or "plain")
def test_every_parameter_gets_a_gradient_within_three_steps(family, tricks):
    model = _edited_model(family, tricks)
    if model is None:
        pytest.skip(f"{'+'.join(tricks)} refuses {family}")
    g = torch.Generator().manual_seed(0)
    # ResNet-18 halves 8 px down to 1x1 in layer4, where GC's softmax over positions and SGE's
    # spatial normalisation have nothing to weigh (no gradient, correctly): 16 px leaves 2x2
    size = 16 if family == "resnet18" else 8
    x, y = torch.randn(8, 1, size, size, generator=g), torch.randint(0, 4, (8,), generator=g)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    trained = {n: False for n, p in model.named_parameters() if p.requires_grad}
    for _ in range(3):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        for n, p in model.named_parameters():
            if p.grad is not None and p.grad.any():
                trained[n] = True
        opt.step()
    assert [n for n, ok in trained.items() if not ok] == []


@pytest.mark.parametrize("family, zeroed", [
    ("basic", r"layer\d\.0\.bn2\.weight"), ("bottleneck", r"layer\d\.0\.bn3\.weight"),
    ("preact", r"layer\d\.0\.conv2\.weight"),
])
def test_zero_gamma_zeroes_what_ends_each_branch(family, zeroed):
    import re

    model = _edited_model(family, ("zero_gamma",))
    zero = sorted(n for n, p in model.named_parameters() if n.endswith("weight") and not p.detach().any())
    assert len(zero) == 3 and all(re.fullmatch(zeroed, n) for n in zero)
    # every block starts as its shortcut
    model.eval()
    block = model.layer2[0]
    x = torch.randn(2, block.conv1.in_channels, 8, 8)
    if family == "preact":
        expected = block.downsample(torch.relu(block.bn1(x)))
    else:
        expected = torch.relu(block.downsample(x))
    assert torch.allclose(block(x), expected, atol=1e-6)


def test_a_model_family_is_one_registered_class(monkeypatch):
    """The config union, MODEL_NAMES, model_info and build_model all read `@register_model`."""
    from typing import get_args

    import torch

    import ablate.models as models

    union = get_args(get_args(models.ModelConfig)[0])
    assert list(union) == list(models.FAMILIES) and len(union) == 10
    names = sorted(n for cls in union for n in get_args(cls.model_fields["name"].annotation))
    assert names == models.MODEL_NAMES

    class Tiny(models.ConvNetConfig):
        pass

    monkeypatch.setattr(models, "FAMILIES", dict(models.FAMILIES))
    models.register_model(info=lambda cfg: models.ModelInfo("tiny", None, False, False, f"Tiny{cfg.width}"),
                          build=lambda cfg, io, size: torch.nn.Linear(io["in_channels"], io["num_classes"]))(Tiny)
    cfg = Tiny(name="convnet", width=8)
    assert models.model_info(cfg).label == "Tiny8"
    assert models.count_params(models.build_model(cfg, in_channels=3, num_classes=2)) == 8
    with pytest.raises(TypeError, match="not a model config"):
        models.model_info(object())
