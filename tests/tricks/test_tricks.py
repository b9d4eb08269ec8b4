"""The trick contract: every registered trick trains on the CPU for a few batches with a finite
loss, is deterministic for a seed (whatever the global RNG holds), and changes what it claims,
checked against an independent statement of the paper's rule at a non-default parameter.
Distribution tests of the random tricks are in test_trick_rules.py."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from ablate.design.plan import plan
from ablate.train import prepare, run_trial
from ablate.tricks import all_tricks, lr_multiplier, trick_names
from tests.conftest import tiny_spec

# Per-trick spec changes: non-default parameters (a bug that ignores a parameter and uses its
# default must fail), and a model or recipe the trick needs.
NEEDS = {
    "warmup": {"tricks": {"warmup": {"epochs": 1, "start_factor": 0.25}}},
    "cosine": {"tricks": {"cosine": {"final_factor": 0.2}}},
    "step": {"recipe": {"schedule": "constant"}, "tricks": {"step": {"milestones": [0.3, 0.6], "gamma": 0.5}}},
    "label_smoothing": {"tricks": {"label_smoothing": {"eps": 0.3}}},
    "mixup": {"tricks": {"mixup": {"alpha": 0.7}}},
    "cutmix": {"tricks": {"cutmix": {"alpha": 0.6}}},
    "random_erasing": {"tricks": {"random_erasing": {"prob": 0.7, "scale_min": 0.1, "scale_max": 0.5}}},
    "cutout": {"tricks": {"cutout": {"size": 0.25}}},
    "randaugment": {"tricks": {"randaugment": {"num_ops": 3, "magnitude": 15}}},
    "resnet_b": {"model": {"name": "cifar_resnet", "depth": 11, "block": "bottleneck", "width": 8}},
    "resnet_d": {"model": {"name": "cifar_resnet", "depth": 8, "width": 8, "shortcut": "projection"}},
    "amp": {"tricks": {"amp": {"dtype": "bfloat16"}}},
    "sam": {"tricks": {"sam": {"rho": 0.2}}},
    "ema": {"tricks": {"ema": {"decay": 0.9}}},
    "adam": {"tricks": {"adam": {"lr": 3e-3}}},
    "adamw": {"tricks": {"adamw": {"lr": 2e-3}}},
    "radam": {"tricks": {"radam": {"lr": 4e-3}}},
    "se": {"tricks": {"se": {"reduction": 2}}},
    "asam": {"tricks": {"asam": {"rho": 0.3, "eta": 0.05}}},
    "adabound": {"tricks": {"adabound": {"lr": 2e-3, "final_lr": 0.05, "gamma": 0.01}}},
    "lookahead": {"tricks": {"lookahead": {"k": 3, "alpha": 0.6}}},
    "ricap": {"tricks": {"ricap": {"beta": 0.5}}},
    "shakedrop": {"tricks": {"shakedrop": {"p_final": 0.4}}},
    "stochastic_depth": {"tricks": {"stochastic_depth": {"rate": 0.3}}},
    "color_jitter": {"data": {"channels": 3},
                     "tricks": {"color_jitter": {"brightness": 0.3, "contrast": 0.3, "saturation": 0.5, "hue": 0.1}}},
    "weight_standardization": {"tricks": {"weight_standardization": {"shift": 0.01, "weight": 1e-3}}},
    "evonorm_s0": {"tricks": {"evonorm_s0": {"groups": 4}}},
    "init": {"tricks": {"init": {"scheme": "orthogonal"}}},
    "ghmc": {"tricks": {"ghmc": {"bins": 5, "momentum": 0.5}}},
}


def _distill_needs() -> dict:
    """A teacher file (a tiny digits ResNet's state dict) made once per test session."""
    import tempfile

    from ablate.models import build_model

    if "path" not in _TEACHER:
        model_cfg = {"name": "cifar_resnet", "depth": 8, "width": 4}
        torch.manual_seed(5)
        model = build_model(tiny_spec(model=model_cfg).model, in_channels=1, num_classes=10)
        path = f"{tempfile.mkdtemp()}/teacher.pt"
        torch.save(model.state_dict(), path)
        _TEACHER.update(path=path, model=model_cfg)
    return {"tricks": {"distill": {**_TEACHER, "temperature": 3.0, "alpha": 0.6}}}


_TEACHER: dict = {}
NEEDS["distill"] = _distill_needs


def trick_spec(name: str):
    needs = NEEDS.get(name, {})
    changes = dict(needs() if callable(needs) else needs)
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


# tiny: 2 epochs of 10 steps; the recipe's default schedule is step decay at 50% and 75%.
def check_warmup(base, trick):
    b, t = lr_curve(base), lr_curve(trick)
    assert t[:10] == pytest.approx([0.25 + 0.75 * s / 10 for s in range(10)])   # linear over epoch 1
    assert t[10:] == b[10:]


def check_cosine(base, trick):
    final, total = 0.2, 20
    expected = [final + (1 - final) * 0.5 * (1 + math.cos(math.pi * s / total)) for s in range(total)]
    assert lr_curve(trick) == pytest.approx(expected)
    assert lr_curve(base) != lr_curve(trick)


def check_step(base, trick):
    assert set(lr_curve(base)) == {1.0}
    # milestones at 30% and 60% of 20 steps: steps 6 and 12, each times 0.5
    assert lr_curve(trick) == pytest.approx([1.0] * 6 + [0.5] * 6 + [0.25] * 8)


def check_label_smoothing(base, trick):
    eps, classes = 0.3, trick.proc.num_classes
    g = torch.Generator().manual_seed(0)
    logits, y = torch.randn(6, classes, generator=g), torch.tensor([0, 1, 2, 3, 4, 9])
    target = (1 - eps) * torch.eye(classes)[y] + eps / classes     # Szegedy et al.'s smoothed target
    expected = -(target * logits.log_softmax(1)).sum(1).mean()
    assert torch.allclose(trick.criterion(logits, y), expected)
    assert torch.allclose(base.criterion(logits, y), -logits.log_softmax(1)[torch.arange(6), y].mean())


def _mixed(setup):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(16, 1, 8, 8, generator=g)
    y = torch.arange(16) % 10
    outs = [setup.proc.batch_mixers[0](x, y, g) for _ in range(5)]
    return x, y, outs


def check_mixup(base, trick):
    assert not base.proc.batch_mixers
    x, y, outs = _mixed(trick)
    for xm, t in outs:   # image and label mixed with the same lambda, partner = the batch rolled by 1
        lam = t[0, y[0]]
        assert torch.allclose(t.sum(1), torch.ones(16))
        assert torch.allclose(xm, lam * x + (1 - lam) * x.roll(1, 0), atol=1e-6)
    assert any((t.max(dim=1).values < 1).any() for _, t in outs), "targets become soft"


def check_cutmix(base, trick):
    assert not base.proc.batch_mixers
    x, y, outs = _mixed(trick)
    for xm, t in outs:
        pasted = (xm != x).flatten(1).float().mean(1)   # fraction of each image from its partner
        assert torch.allclose(t[:, y[0]][0], 1 - pasted[0])  # label weight is the area-corrected lambda
        pasted_region = xm != x
        assert torch.equal(xm[pasted_region], x.roll(1, 0)[pasted_region])
    assert any((t.max(dim=1).values < 1).any() for _, t in outs)


def _erased(setup):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(400, 1, 8, 8, generator=g) + 5.0   # no zeros before erasing
    return x, setup.proc.batch_erasers[0](x, g)


def check_random_erasing(base, trick):
    assert not base.proc.batch_erasers
    x, out = _erased(trick)
    erased = out != x
    assert ((out == 0) | (out == x)).all(), "erased pixels take the mean (0 after normalising)"
    frac = erased.flatten(1).float().mean(1)
    hit = frac > 0
    assert 0.6 < hit.float().mean() < 0.8, "prob 0.7 (every box fits within 10 draws here)"
    rows, cols = erased.any(3).sum(2).squeeze(1), erased.any(2).sum(2).squeeze(1)
    assert torch.equal((rows * cols)[hit], erased.flatten(1).sum(1)[hit]), "one rectangle per image"
    assert (rows < 8).all() and (cols < 8).all(), "no box spans the image (re-drawn, not clamped)"


def check_cutout(base, trick):
    x, out = _erased(trick)
    zeroed = (out == 0).flatten(1).sum(1)
    assert (zeroed > 0).all(), "every image loses a square"
    assert zeroed.max() == 4, "side 0.25 x 8 = 2 pixels, fully inside for central centres"


def _policy(base, trick):
    assert not base.proc.sample_policies
    x = _batch(16)
    out = trick.proc.sample_policies[0](x, torch.Generator().manual_seed(0))
    assert out.dtype == torch.uint8 and out.shape == x.shape
    assert not torch.equal(out, x)


check_autoaugment = check_randaugment = check_trivialaugment = _policy


def check_zero_gamma(base, trick):
    # Found by name from the architecture (cifar_resnet depth 8: layer{1,2,3}.0 are basic
    # post-activation blocks ending in bn2), not through the helper under test.
    def zero_weights(model):
        return {n for n, p in model.named_parameters() if n.endswith("weight") and not p.detach().any()}

    assert zero_weights(trick.model) == {f"layer{i}.0.bn2.weight" for i in (1, 2, 3)}
    assert zero_weights(base.model) == set()


def check_no_bias_decay(base, trick):
    assert len(base.optimizer.param_groups) == 1
    groups = trick.optimizer.param_groups
    wd = trick.proc.weight_decay
    assert wd > 0 and base.optimizer.param_groups[0]["weight_decay"] == wd
    assert [g["weight_decay"] for g in groups] == [wd, 0.0]
    no_decay = groups[1]
    assert all(p.ndim <= 1 for p in no_decay["params"]) and len(no_decay["params"]) > 0
    n_1d = sum(p.ndim <= 1 for p in trick.model.parameters())
    assert len(no_decay["params"]) == n_1d


def check_resnet_b(base, trick):
    for blocks in (trick.model.layer2, trick.model.layer3):
        b = blocks[0]
        assert b.conv1.stride == (1, 1) and b.conv2.stride == (2, 2) and b.conv2.kernel_size == (3, 3)
    assert base.model.layer2[0].conv1.stride == (2, 2) and base.model.layer2[0].conv2.stride == (1, 1)


def check_resnet_c(base, trick):
    assert isinstance(trick.model.conv1, nn.Sequential) and sum(
        isinstance(m, nn.Conv2d) for m in trick.model.conv1) == 3
    assert isinstance(base.model.conv1, nn.Conv2d)


def check_resnet_d(base, trick):
    for blocks in (trick.model.layer2, trick.model.layer3):
        down = blocks[0].downsample
        assert isinstance(down[0], nn.AvgPool2d) and down[0].kernel_size == 2 and down[0].stride == 2
        assert down[1].stride == (1, 1) and down[1].kernel_size == (1, 1)
    assert base.model.layer2[0].downsample[0].stride == (2, 2)


def _module(cls_name):
    def check(base, trick):
        names = {type(m).__name__ for m in trick.model.modules()}
        assert cls_name in names and cls_name not in {type(m).__name__ for m in base.model.modules()}
        assert sum(p.numel() for p in trick.model.parameters()) > sum(p.numel() for p in base.model.parameters())
    return check


check_cbam, check_sk = _module("CBAM"), _module("SelectiveKernelConv")
check_gc, check_bam = _module("GlobalContext"), _module("BAM")
check_sge, check_srm = _module("SpatialGroupEnhance"), _module("SRM")


def check_distill(base, trick):
    from ablate.tricks.distill import soft_target_loss

    assert base.distill is None
    d = trick.distill
    assert not d.teacher.training and not any(p.requires_grad for p in d.teacher.parameters())
    x = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 1, 2, 3])
    out = trick.model(x)
    ce = trick.criterion(out, y)
    with torch.no_grad():
        t = d.teacher(x)
    expected = 0.4 * ce + 0.6 * soft_target_loss(out, t, 3.0)
    assert torch.allclose(d(ce, out, x), expected)


def check_se(base, trick):
    _module("SqueezeExcite")(base, trick)
    se = trick.model.layer3[0].bn2[1]            # reduction 2 on 32 channels: 16 hidden units
    assert type(se).__name__ == "SqueezeExcite" and se.fc1.out_channels == 16


def check_nesterov(base, trick):
    assert trick.optimizer.defaults["nesterov"] and not base.optimizer.defaults["nesterov"]


def _optim(cls, lr):
    def check(base, trick):
        assert type(trick.optimizer) is cls and type(base.optimizer) is torch.optim.SGD
        assert trick.optimizer.param_groups[0]["base_lr"] == lr
    return check


check_adam = _optim(torch.optim.Adam, 3e-3)
check_adamw = _optim(torch.optim.AdamW, 2e-3)
check_radam = _optim(torch.optim.RAdam, 4e-3)


def check_amp(base, trick):
    assert trick.proc.autocast_dtype == "bfloat16" and base.proc.autocast_dtype is None


def check_ema(base, trick):
    assert base.ema is None and trick.ema is not None
    w = next(trick.model.parameters())
    trick.ema.update_parameters(trick.model)          # first update copies
    with torch.no_grad():
        w.add_(1.0)
    trick.ema.update_parameters(trick.model)          # second: decay min(0.9, 2/11)
    e = next(trick.ema.module.parameters())
    d = 2 / 11
    assert torch.allclose(e, (w - 1.0) * d + w * (1 - d))


def check_sam(base, trick):
    assert trick.proc.sam_rho == 0.2 and base.proc.sam_rho is None


def check_asam(base, trick):
    assert (trick.proc.sam_rho, trick.proc.sam_eta) == (0.3, 0.05)
    assert base.proc.sam_rho is None and base.proc.sam_eta is None


def check_adabound(base, trick):
    from ablate.optim import AdaBound

    _optim(AdaBound, 2e-3)(base, trick)
    group = trick.optimizer.param_groups[0]
    assert (group["final_lr"], group["gamma"]) == (0.05, 0.01)


def check_lookahead(base, trick):
    from ablate.optim import Lookahead

    opt = trick.optimizer
    assert isinstance(opt, Lookahead) and type(opt.inner) is torch.optim.SGD and type(base.optimizer) is torch.optim.SGD
    for g in opt.param_groups:
        g["weight_decay"] = 0.0              # so the gradient is exactly the one set below
    w = next(trick.model.parameters())
    start = w.detach().clone()
    fast = []
    for _ in range(3):                       # k = 3 SGD steps with a constant gradient of 1
        w.grad = torch.ones_like(w)
        opt.step()
        fast.append(w.detach().clone())
    lr = opt.param_groups[0]["lr"]
    m = trick.proc.momentum                  # heavy-ball SGD: the fast weights after 3 steps
    fast3 = start - lr * (1 + (1 + m) + (1 + m + m * m))
    assert torch.allclose(fast[1], start - lr * (2 + m))
    assert torch.allclose(w, start + 0.6 * (fast3 - start), atol=1e-6), "slow weights move alpha of the way"


def check_ricap(base, trick):
    assert not base.proc.batch_mixers
    x = torch.arange(10.0).view(10, 1, 1, 1).expand(10, 1, 8, 8).contiguous()   # image i is all i
    y = torch.arange(10)
    g = torch.Generator().manual_seed(0)
    mixed = 0
    for _ in range(10):
        xm, t = trick.proc.batch_mixers[0](x, y, g)
        area = torch.stack([(xm == c).flatten(1).float().mean(1) for c in range(10)], 1)
        assert torch.allclose(t, area), "label weights are the area fractions of each source image"
        mixed += int((t.max(1).values < 1).any())
    assert mixed > 5


def _branch_wrappers(model, cls_name):
    return [m for m in model.modules() if type(m).__name__ == cls_name]


def check_shakedrop(base, trick):
    drops = _branch_wrappers(trick.model, "ShakeDrop")
    assert [d.p for d in drops] == pytest.approx([0.4 / 3, 0.8 / 3, 0.4]), "linear in depth, 3 blocks"
    assert all(d.alpha_range == (-1, 1) and d.beta_range == (0, 1) for d in drops)
    assert not _branch_wrappers(base.model, "ShakeDrop")
    assert trick.model.layer3[0].bn2[1] is drops[2], "at the end of the residual branch"


def check_stochastic_depth(base, trick):
    drops = _branch_wrappers(trick.model, "StochasticDepth")
    assert [d.p for d in drops] == pytest.approx([0.1, 0.2, 0.3]) and {d.mode for d in drops} == {"batch"}
    assert not _branch_wrappers(base.model, "StochasticDepth")


def check_color_jitter(base, trick):
    _policy(base, trick)
    x = _batch(16, channels=3)
    out = trick.proc.sample_policies[0](x, torch.Generator().manual_seed(0))
    # saturation/hue act: channels move apart differently from a pure brightness/contrast change
    assert not torch.equal(out, x)


def check_weight_standardization(base, trick):
    from ablate.models.normalization import WSConv2d

    convs = [m for m in trick.model.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(isinstance(m, WSConv2d) for m in convs)
    assert not any(isinstance(m, WSConv2d) for m in base.model.modules())
    # the objective's extra term: 1e-3 x 1/2 sum over filters of (n-1)(std - 0.01)^2 + n mean^2
    expected = sum(0.5 * ((w.flatten(1).shape[1] - 1) * (w.flatten(1).std(1) - 0.01) ** 2
                          + w.flatten(1).shape[1] * w.flatten(1).mean(1) ** 2).sum()
                   for w in (m.weight for m in convs))
    assert torch.allclose(trick.proc.regularisers[0](trick.model), 1e-3 * expected)
    zero_decay = [p for g in trick.optimizer.param_groups if g["weight_decay"] == 0 for p in g["params"]]
    assert {id(p) for p in zero_decay} == {id(m.weight) for m in convs}, "conv weights leave weight decay"


def _evonorm(cls_name):
    def check(base, trick):
        norms = _branch_wrappers(trick.model, cls_name)
        assert norms and not any(isinstance(m, nn.BatchNorm2d) for m in trick.model.modules())
        assert any(isinstance(m, nn.BatchNorm2d) for m in base.model.modules())
        block = trick.model.layer1[0]
        # BN-ReLU inside the branch became one EvoNorm with its nonlinearity, the branch end one
        # without, and the ReLU after the addition is kept
        assert block[0].bn1.v.requires_grad and isinstance(block[1], nn.ReLU)
        assert not block[0].bn2.v.requires_grad and not block[0].bn2.v.any(), "linear (v = 0), still normalising"
        assert isinstance(block[0].relu, nn.Identity)
        return norms
    return check


check_evonorm_b0 = _evonorm("EvoNorm2dB0")


def check_evonorm_s0(base, trick):
    norms = _evonorm("EvoNorm2dS0")(base, trick)
    assert {n.groups for n in norms} == {4}


def check_init(base, trick):
    w = trick.model.layer2[0].conv1.weight.detach().flatten(1)    # 16 x 72: orthonormal rows
    assert torch.allclose(w @ w.T, torch.eye(16), atol=1e-5)
    wb = base.model.layer2[0].conv1.weight.detach().flatten(1)
    assert not torch.allclose(wb @ wb.T, torch.eye(16), atol=1e-2)


def check_ghmc(base, trick):
    from ablate.losses import GHMCLoss

    c = trick.criterion
    assert isinstance(c, GHMCLoss) and (c.bins, c.momentum) == (5, 0.5)
    assert isinstance(base.criterion, nn.CrossEntropyLoss)


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
    torch.manual_seed(1)            # the global RNG must not matter
    first = run_trial(trial)
    torch.manual_seed(2)
    second = run_trial(trial)
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


# -- each trick's refusals: the condition at its boundary, and a message naming the values -------

CONVNET = {"name": "convnet", "width": 8}


@pytest.mark.parametrize("name, params, changes, words", [
    ("nesterov", {}, {"recipe": {"optimizer": "adam"}}, "applies to SGD, but recipe.optimizer is 'adam'"),
    ("nesterov", {}, {"recipe": {"nesterov": True}}, "recipe.nesterov is already true"),
    ("nesterov", {}, {"recipe": {"momentum": 0.0}}, "needs recipe.momentum > 0"),
    ("nesterov", {}, {}, None),
    ("adam", {}, {"recipe": {"optimizer": "adam"}}, "recipe.optimizer is already 'adam'"),
    ("adam", {}, {}, None),
    ("warmup", {"epochs": 2.0}, {}, "warmup epochs must be < recipe.epochs, got epochs=2.0 with recipe.epochs=2"),
    ("warmup", {"epochs": 1.9}, {}, None),
    ("cosine", {}, {"recipe": {"schedule": "cosine"}}, "recipe.schedule is already 'cosine'"),
    ("cosine", {}, {}, None),
    ("step", {"milestones": [0.6, 0.3]}, {"recipe": {"schedule": "constant"}},
     "milestones must be increasing fractions in (0, 1), got [0.6, 0.3]"),
    ("step", {"milestones": [0.5, 1.0]}, {"recipe": {"schedule": "constant"}}, "got [0.5, 1.0]"),
    ("step", {"milestones": [0.0, 0.5]}, {"recipe": {"schedule": "constant"}}, "got [0.0, 0.5]"),
    ("step", {"milestones": [0.3, 0.6]}, {}, "recipe.schedule is already 'step'"),
    ("step", {"milestones": [0.3, 0.6]}, {"recipe": {"schedule": "constant"}}, None),
    ("no_bias_decay", {}, {"recipe": {"weight_decay": 0.0}}, "recipe.weight_decay is 0"),
    ("no_bias_decay", {}, {"recipe": {"weight_decay": 1e-4}}, None),
    ("random_erasing", {"scale_min": 0.3, "scale_max": 0.2}, {}, "scale_min <= scale_max must hold, got "
                                                                   "scale_min=0.3, scale_max=0.2"),
    ("random_erasing", {"scale_min": 0.2, "scale_max": 0.2}, {}, None),
    ("sam", {}, {"tricks": {"fp16": {"use": "amp", "dtype": "float16"}}}, "('fp16')"),
    ("sam", {}, {"tricks": {"bf16": {"use": "amp", "dtype": "bfloat16"}}}, None),
    ("zero_gamma", {}, {"model": CONVNET}, "'zero_gamma' needs a ResNet with residual blocks, but model "
                                           "'convnet' is a plain convnet"),
    ("resnet_b", {}, {}, "moves the stride inside bottleneck blocks, but model 'cifar_resnet' uses basic"),
    ("resnet_b", {}, {"model": {"name": "resnet50"}}, None),
    ("resnet_d", {}, {"model": {"name": "cifar_resnet", "depth": 8, "shortcut": "padding"}}, "shortcut is 'padding'"),
    ("resnet_d", {}, {}, None),
    ("color_jitter", {}, {}, "saturation and hue need colour images, but data 'digits' has 1 channel "
                             "(got saturation=0.4)"),
    ("color_jitter", {"saturation": 0.0, "hue": 0.1}, {}, "(got hue=0.1)"),
    ("color_jitter", {"saturation": 0.0}, {}, None),
    ("color_jitter", {}, {"data": {"channels": 3}}, None),
    ("color_jitter", {"brightness": 0, "contrast": 0, "saturation": 0}, {"data": {"channels": 3}},
     "all 0, so colour jitter would change nothing"),
    ("shakedrop", {}, {"model": CONVNET}, "model 'convnet' has no residual blocks"),
    ("shakedrop", {}, {"model": {"name": "resnet18"}}, None),
    ("stochastic_depth", {}, {"model": CONVNET}, "model 'convnet' has no residual blocks"),
    ("stochastic_depth", {}, {"model": {"name": "cifar_resnet", "depth": 8, "preact": True}}, None),
    ("evonorm_b0", {}, {"model": {"name": "cifar_resnet", "depth": 8, "preact": True}}, "use preact: false"),
    ("evonorm_s0", {}, {"model": CONVNET}, None),
    ("init", {"scheme": "xavier_normal", "mode": "fan_out"}, {}, "mode applies to the Kaiming schemes only"),
    ("init", {"scheme": "kaiming_uniform", "mode": "fan_out"}, {}, None),
    ("lookahead", {"k": 1}, {}, "use k >= 2, got k=1"),
    ("lookahead", {"k": 2}, {}, None),
    ("asam", {}, {"tricks": {"fp16": {"use": "amp", "dtype": "float16"}}}, "ASAM's two-pass step"),
    ("adabound", {}, {"recipe": {"optimizer": "adam"}}, None),
])
def test_trick_check_refuses_exactly_what_it_cannot_do(name, params, changes, words):
    from ablate.tricks import get_trick

    trick = get_trick(name)
    # the spec holds another trick, so that the one under test is checked here, not at load
    spec = tiny_spec(**{"tricks": {"label_smoothing": {}}, **changes})
    reason = trick.check(trick.Params(**params), spec)
    if words is None:
        assert reason is None
    else:
        assert reason is not None and words in reason


def test_registering_a_name_or_code_twice_is_refused():
    from ablate.tricks import Trick, register_trick

    class Again(Trick):
        name, code, title, paper, kind = "mixup", "ZZZ", "t", "p", "loss"

    class SameCode(Trick):
        name, code, title, paper, kind = "brand_new", "M", "t", "p", "loss"

    with pytest.raises(RuntimeError, match="trick 'mixup' registered twice"):
        register_trick(Again)
    with pytest.raises(RuntimeError, match="trick code 'M' of 'brand_new' already used by 'mixup'"):
        register_trick(SameCode)
    assert "brand_new" not in trick_names()
