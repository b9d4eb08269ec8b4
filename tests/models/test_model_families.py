"""The model families added for the reference experiments: WideResNet, PyramidNet, Shake-Shake,
airbench-style, octave ResNet, the torchvision/timm zoos by name, and the attention blocks."""

from __future__ import annotations

import sys

import pytest
import torch

from ablate.errors import SpecError
from ablate.models import (
    AirbenchConfig,
    OctaveResNetConfig,
    PyramidNetConfig,
    ShakeShakeConfig,
    TimmConfig,
    TorchvisionConfig,
    WideResNetConfig,
    build_for_shapes,
    build_model,
    count_params,
    model_info,
)
from tests.conftest import tiny_spec

TINY = [
    WideResNetConfig(name="wide_resnet", depth=10, widen=1, dropout=0.1),
    PyramidNetConfig(name="pyramidnet", depth=8, alpha=8),
    PyramidNetConfig(name="pyramidnet", depth=11, alpha=8, bottleneck=True),
    ShakeShakeConfig(name="shake_shake", depth=8, width=8),
    AirbenchConfig(name="airbench", widths=(8, 16, 16), stem=4),
    OctaveResNetConfig(name="octave_resnet", depth=8, width=8, alpha=0.5),
]


@pytest.mark.parametrize("cfg", TINY, ids=lambda c: model_info(c).label)
@pytest.mark.parametrize("channels, size", [(1, 8), (3, 32), (1, 7)])
def test_each_family_builds_forwards_and_backwards_on_the_cpu(cfg, channels, size):
    torch.manual_seed(0)
    model = build_model(cfg, in_channels=channels, num_classes=4)
    x = torch.randn(3, channels, size, size)
    out = model(x)
    assert out.shape == (3, 4) and torch.isfinite(out).all()
    out.square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    model.eval()
    assert model(x).shape == (3, 4)


@pytest.mark.parametrize("cfg, millions", [
    (WideResNetConfig(name="wide_resnet", depth=28, widen=10), 36.5),        # Zagoruyko & Komodakis, Table 1
    (WideResNetConfig(name="wide_resnet", depth=16, widen=4), 2.7),
    (ShakeShakeConfig(name="shake_shake", depth=26, width=32), 2.9),          # Gastaldi, Table 1
    (ShakeShakeConfig(name="shake_shake", depth=26, width=96), 26.2),
    (PyramidNetConfig(name="pyramidnet", depth=110, alpha=48), 1.7),         # Han et al., Table 4
    (PyramidNetConfig(name="pyramidnet", depth=272, alpha=200, bottleneck=True), 26.0),
], ids=lambda c: model_info(c).label if not isinstance(c, float) else str(c))
def test_parameter_counts_match_the_papers(cfg, millions):
    model = build_for_shapes(cfg, in_channels=3, num_classes=10)   # meta device: no activations, no memory
    assert next(model.parameters()).device.type == "meta"
    assert count_params(model) / 1e6 == pytest.approx(millions, abs=0.05)


def test_pyramid_widths_grow_by_alpha_over_the_blocks():
    from ablate.models.pyramidnet import pyramid_widths

    w = pyramid_widths(110, 48, bottleneck=False)
    assert len(w) == 54 and w[0] == int(16 + 48 / 54) and w[-1] == 64
    assert all(b >= a for a, b in zip(w, w[1:]))


@pytest.mark.parametrize("kw, words", [
    ({"name": "wide_resnet", "depth": 27}, r"6n\+4"), ({"name": "pyramidnet", "depth": 112, "bottleneck": True}, r"9n\+2"),
    ({"name": "shake_shake", "depth": 25}, r"6n\+2"), ({"name": "airbench", "widths": [8, 0, 8]}, r"\[1, 4096\]"),
])
def test_bad_family_configs_say_what_is_allowed(kw, words):
    with pytest.raises(SpecError, match=words):
        tiny_spec(model=kw)


def test_shake_shake_mixes_with_its_own_generator_and_splits_the_gradient_by_beta():
    from ablate.models.shake_shake import shake

    x1, x2 = torch.ones(2, 1, 1, 1, requires_grad=True), torch.ones(2, 1, 1, 1, requires_grad=True)
    alpha, beta = torch.full((2, 1, 1, 1), 0.25), torch.full((2, 1, 1, 1), 0.75)
    out = shake(x1 * 2, x2 * 4, alpha, beta)
    assert torch.allclose(out, torch.full_like(out, 0.25 * 2 + 0.75 * 4))
    out.sum().backward()
    assert torch.allclose(x1.grad, torch.full_like(x1, 2 * 0.75)) and torch.allclose(x2.grad, torch.full_like(x2, 4 * 0.25))

    torch.manual_seed(1)
    a = build_model(ShakeShakeConfig(name="shake_shake", depth=8, width=8), in_channels=1, num_classes=3)
    torch.manual_seed(1)
    b = build_model(ShakeShakeConfig(name="shake_shake", depth=8, width=8), in_channels=1, num_classes=3)
    x = torch.randn(4, 1, 8, 8)
    state = torch.get_rng_state()
    ya, yb = a(x), b(x)
    assert torch.equal(torch.get_rng_state(), state), "the global RNG is not used in training"
    assert torch.equal(ya, yb), "same build seed, same coefficients"
    assert not torch.equal(a(x), ya), "new coefficients every forward"
    a.eval()
    assert torch.equal(a(x), a(x)), "0.5 / 0.5 at evaluation"


@pytest.mark.parametrize("kind", ["se", "cbam", "gc", "bam", "sge", "srm"])
@pytest.mark.parametrize("size", [1, 5])
def test_attention_blocks_keep_the_shape(kind, size):
    from ablate.models.resnet import ATTENTION

    block = ATTENTION[kind](16)
    x = torch.randn(3, 16, size, size)
    assert block(x).shape == x.shape


def test_new_attention_blocks_sit_at_the_end_of_every_branch():
    from ablate.models.resnet import add_attention, iter_blocks

    for kind, cls in [("gc", "GlobalContext"), ("bam", "BAM"), ("sge", "SpatialGroupEnhance"), ("srm", "SRM")]:
        model = build_model(WideResNetConfig(name="wide_resnet", depth=10, widen=1), in_channels=1, num_classes=3)
        assert add_attention(model, kind) == 3
        assert [type(b.conv2[1]).__name__ for b in iter_blocks(model)] == [cls] * 3


def test_sge_starts_as_a_constant_gate_and_uses_a_divisor_of_the_channels():
    from ablate.models.attention import SpatialGroupEnhance

    sge = SpatialGroupEnhance(12, groups=8)
    assert sge.groups == 6
    x = torch.randn(2, 12, 4, 4)
    assert torch.allclose(sge(x), x * torch.sigmoid(torch.tensor(1.0)), atol=1e-6)


def test_octave_conv_keeps_alpha_of_the_channels_at_half_resolution():
    from ablate.models.octave import OctaveConv

    conv = OctaveConv(8, 16, 3, alpha_in=0.0, alpha_out=0.25)
    hi, lo = conv((torch.randn(2, 8, 8, 8), None))
    assert hi.shape == (2, 12, 8, 8) and lo.shape == (2, 4, 4, 4)


def test_new_families_report_params_and_gflops_in_final_metrics():
    from ablate.train import run_trial
    from ablate.design.plan import plan

    spec = tiny_spec(model={"name": "airbench", "widths": [8, 8, 8], "stem": 4}, tricks={},
                     design={"kind": "explicit", "arms": [[]]}, seeds=1, recipe={"epochs": 1})
    final = run_trial(plan(spec).trials[0])
    assert final["params"] > 0 and final["gflops"] > 0


# -- the zoos by name -----------------------------------------------------------------------

@pytest.mark.parametrize("arch", ["shufflenet_v2_x0_5", pytest.param("mobilenet_v2", marks=pytest.mark.slow)])
def test_torchvision_by_name_adapts_channels_and_head(arch):
    model = build_model(TorchvisionConfig(name="torchvision", arch=arch), in_channels=1, num_classes=4)
    assert model(torch.randn(2, 1, 16, 16)).shape == (2, 4)


def test_unknown_torchvision_name_suggests_the_nearest():
    with pytest.raises(SpecError, match=r"model.arch.*unknown torchvision model 'efficientnet_b9'.*"
                                        r"did you mean 'efficientnet_b[0-7]'"):
        tiny_spec(model={"name": "torchvision", "arch": "efficientnet_b9"})


def test_timm_by_name_gets_the_image_size():
    # built for 224x224 images and refusing any other size: img_size makes it take 32x32
    model = build_model(TimmConfig(name="timm", arch="vit_tiny_patch16_224"), in_channels=1, num_classes=4,
                        image_size=32)
    assert model(torch.randn(2, 1, 32, 32)).shape == (2, 4)
    assert model_info(TimmConfig(name="timm", arch="test_vit")).label == "test_vit"


def test_unknown_timm_name_suggests_the_nearest():
    with pytest.raises(SpecError, match=r"unknown timm model 'vit_tiny_patch16_2244'.*vit_tiny_patch16_224"):
        tiny_spec(model={"name": "timm", "arch": "vit_tiny_patch16_2244"})


def test_timm_missing_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)    # `import timm` raises ImportError
    with pytest.raises(SpecError, match=r"pip install 'ablate\[timm\]'"):
        tiny_spec(model={"name": "timm", "arch": "vit_tiny_patch16_224"})


def test_model_catalog_counts_parameters_at_both_shapes():
    from ablate.models.catalog import SHAPES, param_count

    assert param_count({"name": "wide_resnet", "depth": 28, "widen": 10}, "cifar") / 1e6 == pytest.approx(36.48, abs=0.01)
    assert param_count({"name": "cifar_resnet", "depth": 20}, "digits") != param_count(
        {"name": "cifar_resnet", "depth": 20}, "cifar"), "the stem sees 1 vs 3 channels"
    assert set(SHAPES) == {"digits", "cifar"}


@pytest.mark.slow
def test_ablate_models_lists_every_family(capsys):
    from ablate.cli import main

    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in ("wide_resnet", "pyramidnet", "shake_shake", "airbench", "octave_resnet", "efficientnet_b2",
                 "regnet_y_1_6gf", "vit_tiny_patch16_224", "36.48M", "arXiv:1605.07146"):
        assert name in out


def test_plan_measures_a_vit_at_the_datas_image_size():
    from ablate.design.plan import plan
    from ablate.train import measure_throughput

    spec = tiny_spec(model={"name": "timm", "arch": "vit_tiny_patch16_224"}, data={"image_size": 16}, tricks={},
                     design={"kind": "explicit", "arms": [[]]}, seeds=1)
    images_per_s, params = measure_throughput(plan(spec).trials[0], steps=1)   # built for 224 px otherwise
    assert images_per_s > 0 and params > 0


def test_shakedrop_and_stochastic_depth_wrap_every_pyramidnet_branch():
    # ShakeDrop's paper trains PyramidNet: the block opts in to the residual-block protocol
    from ablate.models import build_model
    from ablate.models.blocks import residual_blocks
    from ablate.design.spec import parse_spec
    from tests.conftest import tiny_dict

    import yaml

    for trick in ("shakedrop", "stochastic_depth"):
        raw = tiny_dict(model={"name": "pyramidnet", "depth": 8, "alpha": 8}, tricks={trick: {}},
                        design={"kind": "one_at_a_time"})
        spec = parse_spec(yaml.safe_dump(raw, sort_keys=False), source="t.yaml")   # check() accepts it
        model = build_model(spec.model, in_channels=1, num_classes=10)
        assert len(residual_blocks(model)) == 3            # depth 8: one block per stage
    import torch
    from torch import nn

    from ablate.models.blocks import wrap_residual_branches

    assert wrap_residual_branches(model, lambda i, n: nn.Identity()) == 3
    assert all(isinstance(b.branch, nn.Sequential) and isinstance(b.branch[-1], nn.Identity)
               for b in residual_blocks(model))
    assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
