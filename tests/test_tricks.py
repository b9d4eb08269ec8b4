"""The trick contract: every registered trick trains on the CPU for a few batches with a finite
loss, is deterministic for a seed, and observably changes what it claims to change."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from ablate.models.resnet import iter_blocks, last_branch_bn
from ablate.plan import plan
from ablate.train import prepare, run_trial
from ablate.tricks import all_tricks, lr_multiplier, trick_names
from tests.conftest import tiny_spec

# Per-trick spec changes: parameters, and a model or recipe the trick needs.
NEEDS = {
    "warmup": {"tricks": {"warmup": {"epochs": 1}}},
    "step": {"recipe": {"schedule": "constant"}},
    "resnet_b": {"model": {"name": "cifar_resnet", "depth": 11, "block": "bottleneck", "width": 8}},
    "amp": {"tricks": {"amp": {"dtype": "bfloat16"}}},
}


def trick_spec(name: str):
    changes = dict(NEEDS.get(name, {}))
    changes.setdefault("tricks", {name: {}})
    return tiny_spec(design={"kind": "one_at_a_time"}, seeds=1, **changes)


def pair(name: str):
    """(baseline trial, trick trial) of the same seed."""
    p = plan(trick_spec(name))
    return p.trials[0], p.trials[1]


def _batch(n=8, size=8, channels=1):
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (n, channels, size, size), generator=g, dtype=torch.uint8)


# -- what each trick claims ------------------------------------------------------------------

def lr_curve(setup, steps=20):
    return [lr_multiplier(setup.proc, s, steps // setup.proc.epochs) for s in range(steps)]


def check_warmup(base, trick):
    b, t = lr_curve(base), lr_curve(trick)
    assert t[0] == 0.0 and b[0] == 1.0
    assert all(x < y for x, y in zip(t[:10], t[1:10]))   # rises linearly during epoch 1
    assert t[10:] == b[10:]


def check_cosine(base, trick):
    t = lr_curve(trick)
    assert t[0] == 1.0 and all(x > y for x, y in zip(t, t[1:]))
    assert lr_curve(base) != t


def check_step(base, trick):
    assert set(lr_curve(base)) == {1.0}
    assert sorted(set(lr_curve(trick))) == pytest.approx([0.01, 0.1, 1.0])


def check_label_smoothing(base, trick):
    logits, y = torch.randn(4, 10), torch.tensor([0, 1, 2, 3])
    assert trick.criterion.label_smoothing == 0.1 and base.criterion.label_smoothing == 0.0
    assert trick.criterion(logits, y) != base.criterion(logits, y)


def _mixed(setup):
    torch.manual_seed(0)
    x = torch.randn(16, 1, 8, 8)
    y = torch.arange(16) % 10
    outs = [setup.proc.batch_mixers[0](x, y) for _ in range(5)]
    return x, outs


def check_mixup(base, trick):
    assert not base.proc.batch_mixers
    x, outs = _mixed(trick)
    assert any((t.max(dim=1).values < 1).any() for _, t in outs), "targets become soft"
    assert any(not torch.equal(xm, x) for xm, _ in outs), "images are mixed"


check_cutmix = check_mixup


def _erased(setup):
    torch.manual_seed(0)
    x = torch.randn(32, 1, 8, 8) + 5.0   # no zeros before erasing
    return x, setup.proc.batch_erasers[0](x)


def check_random_erasing(base, trick):
    assert not base.proc.batch_erasers
    x, out = _erased(trick)
    changed = (out != x).flatten(1).any(1)
    assert 0 < changed.sum() < 32 or changed.all()
    assert ((out == 0) | (out == x)).all(), "erased pixels take the mean (0 after normalising)"


def check_cutout(base, trick):
    x, out = _erased(trick)
    assert (out == 0).flatten(1).any(1).all(), "every image loses a square"


def _policy(base, trick):
    assert not base.proc.sample_policies
    torch.manual_seed(0)
    x = _batch(16)
    out = trick.proc.sample_policies[0](x)
    assert out.dtype == torch.uint8 and out.shape == x.shape
    assert not torch.equal(out, x)


check_autoaugment = check_randaugment = check_trivialaugment = _policy


def check_zero_gamma(base, trick):
    assert all((last_branch_bn(b).weight == 0).all() for b in iter_blocks(trick.model))
    assert all((last_branch_bn(b).weight == 1).all() for b in iter_blocks(base.model))


def check_no_bias_decay(base, trick):
    assert len(base.optimizer.param_groups) == 1
    groups = trick.optimizer.param_groups
    no_decay = [g for g in groups if g["weight_decay"] == 0.0][0]
    assert all(p.ndim <= 1 for p in no_decay["params"]) and len(no_decay["params"]) > 0
    n_1d = sum(p.ndim <= 1 for p in trick.model.parameters())
    assert len(no_decay["params"]) == n_1d


def check_resnet_b(base, trick):
    down = [b for b in iter_blocks(trick.model) if b.downsample is not None and b.conv2.stride == (2, 2)]
    assert down and all(b.conv1.stride == (1, 1) for b in down)
    assert all(b.conv2.stride == (1, 1) for b in iter_blocks(base.model))


def check_resnet_c(base, trick):
    assert isinstance(trick.model.conv1, nn.Sequential) and sum(
        isinstance(m, nn.Conv2d) for m in trick.model.conv1) == 3
    assert isinstance(base.model.conv1, nn.Conv2d)


def check_resnet_d(base, trick):
    pools = [b.downsample[0] for b in iter_blocks(trick.model) if isinstance(b.downsample, nn.Sequential)
             and isinstance(b.downsample[0], nn.AvgPool2d)]
    assert pools and all(b.downsample[1].stride == (1, 1) for b in iter_blocks(trick.model)
                         if b.downsample is not None)


def _module(cls_name):
    def check(base, trick):
        names = {type(m).__name__ for m in trick.model.modules()}
        assert cls_name in names and cls_name not in {type(m).__name__ for m in base.model.modules()}
        assert sum(p.numel() for p in trick.model.parameters()) > sum(p.numel() for p in base.model.parameters())
    return check


check_se, check_cbam, check_sk = _module("SqueezeExcite"), _module("CBAM"), _module("SelectiveKernelConv")


def check_nesterov(base, trick):
    assert trick.optimizer.defaults["nesterov"] and not base.optimizer.defaults["nesterov"]


def _optim(cls, lr):
    def check(base, trick):
        assert type(trick.optimizer) is cls and type(base.optimizer) is torch.optim.SGD
        assert trick.optimizer.param_groups[0]["base_lr"] == lr
    return check


check_adam = _optim(torch.optim.Adam, 1e-3)
check_adamw = _optim(torch.optim.AdamW, 1e-3)
check_radam = _optim(torch.optim.RAdam, 1e-3)


def check_amp(base, trick):
    assert trick.proc.autocast_dtype == "bfloat16" and base.proc.autocast_dtype is None


def check_ema(base, trick):
    assert base.ema is None and trick.ema is not None
    w = next(trick.model.parameters())
    trick.ema.update_parameters(trick.model)          # first update copies
    with torch.no_grad():
        w.add_(1.0)
    trick.ema.update_parameters(trick.model)          # second: decay min(0.999, 2/11)
    e = next(trick.ema.module.parameters())
    d = 2 / 11
    assert torch.allclose(e, (w - 1.0) * d + w * (1 - d))


def check_sam(base, trick):
    assert trick.proc.sam_rho == 0.05 and base.proc.sam_rho is None


CHECKS = {name[len("check_"):]: fn for name, fn in globals().items() if name.startswith("check_")}


def test_every_registered_trick_has_a_check():
    assert set(CHECKS) == set(trick_names())


@pytest.mark.parametrize("name", trick_names())
def test_trick_changes_what_it_claims(name):
    base_trial, trick_trial = pair(name)
    CHECKS[name](prepare(base_trial), prepare(trick_trial))


@pytest.mark.parametrize("name", trick_names())
def test_trick_trains_finite_and_deterministic(name):
    _, trial = pair(name)
    first, second = run_trial(trial), run_trial(trial)
    for key in ("train_loss", "val_loss", "val_acc", "test_acc"):
        assert math.isfinite(first[key])
        assert first[key] == second[key], f"{key} differs between two runs of seed {trial.seed}"


def test_sam_takes_two_forward_passes_per_batch():
    base_trial, trick_trial = pair("sam")
    counts = {}
    for label, trial in (("base", base_trial), ("sam", trick_trial)):
        n = [0]

        def hook(module, args, out):
            if module.training and type(module).__name__ == "CifarResNet":
                n[0] += 1

        handle = nn.modules.module.register_module_forward_hook(hook)
        try:
            run_trial(trial)
        finally:
            handle.remove()
        counts[label] = n[0]
    assert counts["sam"] == 2 * counts["base"]


def test_amp_runs_convolutions_in_bfloat16():
    _, trial = pair("amp")
    seen = set()

    def hook(module, args, out):
        if isinstance(module, nn.Conv2d) and module.training:
            seen.add(out.dtype)

    handle = nn.modules.module.register_module_forward_hook(hook)
    try:
        run_trial(trial)
    finally:
        handle.remove()
    assert seen == {torch.bfloat16}


def test_registry_metadata_is_complete():
    codes = [t.code for t in all_tricks().values()]
    assert len(codes) == len(set(codes))
    for name, t in all_tricks().items():
        assert t.paper and t.title and t.kind, name
