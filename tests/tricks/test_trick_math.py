"""The math of the tricks added for the reference write-ups (issue 10), each against an
independent statement of its paper's rule: pure functions first, without a model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import stats
from torch import nn

from ablate.errors import SpecError
from tests.conftest import tiny_spec

P_MIN = 1e-3


# -- ASAM ---------------------------------------------------------------------------------------

def _params_and_grads(seed=0):
    g = torch.Generator().manual_seed(seed)
    params = [torch.randn(4, 3, generator=g), torch.randn(5, generator=g)]
    grads = [torch.randn(4, 3, generator=g), torch.randn(5, generator=g)]
    return params, grads


def test_asam_offset_is_rho_t2_g_over_norm_t_g():
    from ablate.train import sam_offsets

    params, grads = _params_and_grads()
    rho, eta = 0.7, 0.1
    t = [p.abs() + eta for p in params]
    norm = torch.sqrt(sum(((ti * gi) ** 2).sum() for ti, gi in zip(t, grads)))
    expected = [rho * ti ** 2 * gi / norm for ti, gi in zip(t, grads)]
    for got, want in zip(sam_offsets(params, grads, rho, eta), expected):
        assert torch.allclose(got, want)


def test_asam_at_zero_weights_is_sam_with_radius_rho_eta():
    from ablate.train import sam_offsets

    _, grads = _params_and_grads()
    zeros = [torch.zeros_like(g) for g in grads]
    for a, s in zip(sam_offsets(zeros, grads, 0.5, 0.2), sam_offsets(zeros, grads, 0.5 * 0.2)):
        assert torch.allclose(a, s)


def test_asam_ascent_is_scale_invariant_and_sam_is_not():
    """Rescaling a layer w -> c w (its loss unchanged, so its gradient becomes g / c) rescales
    ASAM's (eta = 0) ascent by c: the perturbed network is the rescaled one. SAM's is not."""
    from ablate.train import sam_offsets

    params, grads = _params_and_grads()
    c = 3.0
    scaled_p, scaled_g = [params[0] * c, params[1]], [grads[0] / c, grads[1]]
    base, scaled = sam_offsets(params, grads, 0.4, 0.0), sam_offsets(scaled_p, scaled_g, 0.4, 0.0)
    assert torch.allclose(scaled[0], c * base[0]) and torch.allclose(scaled[1], base[1])
    sam_base, sam_scaled = sam_offsets(params, grads, 0.4), sam_offsets(scaled_p, scaled_g, 0.4)
    assert not torch.allclose(sam_scaled[0], c * sam_base[0])


# -- AdaBound and Lookahead ---------------------------------------------------------------------

def test_adabound_bounds_close_on_final_lr():
    from ablate.optim import adabound_bounds

    lo, hi = adabound_bounds(0.1, 1e-3, 1)
    assert lo == pytest.approx(0.1 * (1 - 1 / 1.001)) and hi == pytest.approx(0.1 * 1001)
    steps = [1, 10, 100, 10**4, 10**7]
    bounds = [adabound_bounds(0.1, 1e-3, t) for t in steps]
    assert all(a[0] < b[0] < 0.1 < b[1] < a[1] for a, b in zip(bounds, bounds[1:])), "monotone, around final_lr"
    assert bounds[-1] == pytest.approx((0.1, 0.1), rel=1e-3)


def _one_step(opt_cls, w0, grad, **kw):
    w = nn.Parameter(w0.clone())
    opt = opt_cls([w], **kw)
    w.grad = grad.clone()
    opt.step()
    return w.detach()


def test_adabound_with_open_bounds_is_adam_and_with_closed_bounds_is_sgd_on_the_average():
    from ablate.optim import AdaBound

    g = torch.Generator().manual_seed(1)
    w0, grad = torch.randn(6, generator=g), torch.randn(6, generator=g)
    adam = _one_step(torch.optim.Adam, w0, grad, lr=0.01, eps=1e-12)
    open_bounds = _one_step(AdaBound, w0, grad, lr=0.01, eps=1e-12, gamma=1e-12)
    assert torch.allclose(open_bounds, adam, atol=1e-7)
    closed = _one_step(AdaBound, w0, grad, lr=0.01, final_lr=0.3, gamma=1e9)
    assert torch.allclose(closed, w0 - 0.3 * (1 - 0.9) * grad, atol=1e-6), "lr final_lr on the first moment"


def test_adabound_final_lr_follows_the_schedule():
    from ablate.optim import AdaBound

    w0, grad = torch.ones(3), torch.full((3,), 2.0)
    w = nn.Parameter(w0.clone())
    opt = AdaBound([w], lr=0.01, final_lr=0.3, gamma=1e9)
    opt.param_groups[0]["lr"] = 0.005           # the schedule halves the lr: the bound halves too
    w.grad = grad
    opt.step()
    assert torch.allclose(w.detach(), w0 - 0.15 * 0.1 * grad, atol=1e-6)


def test_lookahead_pulls_back_every_k_steps():
    from ablate.optim import Lookahead

    w = nn.Parameter(torch.zeros(2))
    opt = Lookahead(torch.optim.SGD([w], lr=1.0), k=2, alpha=0.25)
    seen = []
    for _ in range(4):
        w.grad = torch.ones(2) * -1.0             # each fast step adds 1
        opt.step()
        seen.append(float(w.detach()[0]))
    # fast: 1, 2 -> slow 0 + 0.25 (2 - 0) = 0.5; fast restarts there: 1.5, 2.5 -> 0.5 + 0.25 * 2 = 1.0
    assert seen == [1.0, 0.5, 1.5, 1.0]


# -- RICAP --------------------------------------------------------------------------------------

@pytest.mark.parametrize("row, col", [(0, 0), (3, 5), (8, 2), (8, 8), (1, 7)])
def test_ricap_regions_tile_the_image_exactly(row, col):
    from ablate.tricks.mixing import ricap_regions

    cover = torch.zeros(8, 8, dtype=torch.int)
    for top, left, rows, cols in ricap_regions(8, 8, row, col):
        assert rows >= 0 and cols >= 0
        cover[top:top + rows, left:left + cols] += 1
    assert (cover == 1).all()


def test_ricap_crops_come_from_the_images_at_the_region_size():
    from ablate.tricks.mixing import ricap

    x = torch.arange(4 * 6 * 6, dtype=torch.float).view(4, 1, 6, 6)   # every pixel unique
    y = torch.tensor([0, 1, 2, 3])
    out, target = ricap(x, y, 4, 1.0, torch.Generator().manual_seed(3))
    assert torch.allclose(target.sum(1), torch.ones(4))
    for j in range(4):                          # each pixel of the output is some input pixel, and
        src = out[j].long().flatten()           # the label weights are the share of each source image
        share = torch.bincount(src // 36, minlength=4).float() / 36
        assert torch.allclose(target[j], share)


def test_ricap_boundary_is_a_rounded_beta_draw():
    from ablate.tricks.mixing import ricap_boundary

    beta, h, w = 0.5, 40, 24
    g = torch.Generator().manual_seed(4)
    rows, cols = zip(*(ricap_boundary(h, w, beta, g) for _ in range(1500)))
    rng = np.random.default_rng(0)
    for got, side in ((rows, h), (cols, w)):
        reference = np.round(rng.beta(beta, beta, 20_000) * side)
        assert 0 <= min(got) and max(got) <= side
        assert stats.ks_2samp(got, reference).pvalue > P_MIN


# -- ShakeDrop and stochastic depth -------------------------------------------------------------

def _shakedrop(p=0.4, alpha=(-1.0, 1.0), beta=(0.0, 1.0), seed=0):
    from ablate.models.branch_drop import ShakeDrop

    torch.manual_seed(seed)
    return ShakeDrop(p, alpha, beta)


def test_shakedrop_in_eval_scales_by_the_expected_factor():
    from ablate.models.branch_drop import shakedrop_eval_scale

    m = _shakedrop(0.4).eval()
    x = torch.randn(3, 2, 4, 4)
    assert torch.allclose(m(x), 0.6 * x)
    assert shakedrop_eval_scale(0.4, (-1.0, 1.0)) == pytest.approx(0.6)
    assert shakedrop_eval_scale(0.5, (0.0, 1.0)) == pytest.approx(0.75)   # (1 - p) + p E[alpha]


def test_shakedrop_forward_alpha_backward_beta_and_the_drop_rate():
    m = _shakedrop(0.3, alpha=(-1.0, 1.0), beta=(0.0, 1.0)).train()
    n, dropped, alphas, betas = 400, 0, [], []
    for _ in range(n):
        x = torch.ones(8, 1, 2, 2, requires_grad=True)
        out = m(x)
        out.sum().backward()
        fwd, bwd = out[:, 0, 0, 0].detach(), x.grad[:, 0, 0, 0]
        if torch.equal(fwd, torch.ones(8)):
            assert torch.equal(bwd, torch.ones(8)), "kept: identity both ways"
        else:
            dropped += 1
            alphas += fwd.tolist()
            betas += bwd.tolist()
    assert stats.binomtest(dropped, n, 0.3).pvalue > P_MIN, "one gate per batch, dropped with p"
    assert stats.kstest(alphas, stats.uniform(-1, 2).cdf).pvalue > P_MIN
    assert stats.kstest(betas, stats.uniform(0, 1).cdf).pvalue > P_MIN


def test_shakedrop_draws_are_fixed_by_the_build_seed_not_the_global_rng():
    a, b = _shakedrop(seed=5).train(), _shakedrop(seed=5).train()
    x = torch.ones(4, 1, 2, 2)
    torch.manual_seed(1)
    first = [a(x) for _ in range(10)]
    torch.manual_seed(2)
    before = torch.get_rng_state()
    second = [b(x) for _ in range(10)]
    assert torch.equal(torch.get_rng_state(), before)
    assert all(torch.equal(f, s) for f, s in zip(first, second))


def test_stochastic_depth_drops_whole_batches_at_the_rate_and_rescales():
    from ablate.models.branch_drop import BranchStochasticDepth

    torch.manual_seed(0)
    m = BranchStochasticDepth(0.25, "batch").train()
    x = torch.ones(4, 1, 2, 2)
    before = torch.get_rng_state()
    outs = [m(x) for _ in range(800)]
    assert torch.equal(torch.get_rng_state(), before), "the global RNG was used"
    dropped = sum(bool((o == 0).all()) for o in outs)
    assert all(bool((o == 0).all()) or torch.allclose(o, x / 0.75) for o in outs)
    assert stats.binomtest(dropped, 800, 0.25).pvalue > P_MIN
    assert torch.equal(m.eval()(x), x)


def test_linear_decay_rule():
    from ablate.models.branch_drop import linear_rate

    assert [linear_rate(i, 4, 0.5) for i in (1, 2, 3, 4)] == [0.125, 0.25, 0.375, 0.5]


# -- the residual-block protocol ----------------------------------------------------------------

class _OptInBlock(nn.Module):
    residual_branch_end = "end"

    def __init__(self):
        super().__init__()
        self.body = nn.Conv2d(2, 2, 3, padding=1)
        self.end = nn.BatchNorm2d(2)

    def forward(self, x):
        return x + self.end(self.body(x))


def test_a_new_family_opts_in_with_one_attribute():
    from ablate.models.blocks import residual_blocks, wrap_residual_branches

    model = nn.Sequential(nn.Conv2d(1, 2, 1), _OptInBlock(), _OptInBlock())
    assert residual_blocks(model) == [model[1], model[2]]
    seen = []
    assert wrap_residual_branches(model, lambda i, n: seen.append((i, n)) or nn.Identity()) == 2
    assert seen == [(1, 2), (2, 2)] and isinstance(model[2].end, nn.Sequential)
    assert model(torch.zeros(1, 1, 4, 4)).shape == (1, 2, 4, 4)
    with pytest.raises(ValueError, match="has no residual blocks"):
        wrap_residual_branches(nn.Sequential(nn.Conv2d(1, 2, 1)), lambda i, n: nn.Identity())


# -- GHM-C --------------------------------------------------------------------------------------

def test_ghmc_equals_cross_entropy_when_every_sample_falls_in_one_bin():
    from ablate.losses import GHMCLoss

    logits = torch.zeros(6, 4)                  # p_y = 1/4 for all: g = 3/4, one bin
    y = torch.tensor([0, 1, 2, 3, 0, 1])
    loss = GHMCLoss(bins=10, momentum=0.0)(logits, y)
    assert torch.allclose(loss, F.cross_entropy(logits, y))


def test_ghmc_weights_by_inverse_bin_density():
    from ablate.losses import GHMCLoss, gradient_norms

    # three easy samples (p_y ~ 1, g ~ 0) and one hard one (g ~ 1): bins of sizes 3 and 1
    logits = torch.tensor([[8.0, 0.0], [8.0, 0.0], [8.0, 0.0], [0.0, 8.0]])
    y = torch.tensor([0, 0, 0, 0])
    probs = logits.softmax(1)
    g = gradient_norms(probs, F.one_hot(y, 2).float())
    assert torch.allclose(g, 1 - probs[:, 0])
    ce = F.cross_entropy(logits, y, reduction="none")
    # beta_i = N / GD(g_i) / (non-empty bins) = 4/3/2 for the easy ones, 4/1/2 for the hard one
    w = torch.tensor([4 / 3 / 2] * 3 + [4 / 1 / 2])
    expected = (w * ce).sum() / 4
    assert torch.allclose(GHMCLoss(bins=10, momentum=0.0)(logits, y), expected)


def test_ghmc_momentum_averages_the_bin_counts():
    from ablate.losses import ghm_weights

    acc = torch.zeros(2)
    g = torch.tensor([0.1, 0.1, 0.9, 0.1])      # counts (3, 1)
    ghm_weights(g, 2, acc, 0.5)
    assert torch.allclose(acc, torch.tensor([1.5, 0.5]))
    w = ghm_weights(g, 2, acc, 0.5)             # acc -> (2.25, 0.75)
    assert torch.allclose(w, torch.tensor([4 / 2.25, 4 / 2.25, 4 / 0.75, 4 / 2.25]) / 2)


# -- weight standardisation and the e-shifted L2 ------------------------------------------------

def test_standardised_filters_have_zero_mean_unit_std_and_the_conv_is_scale_invariant():
    from ablate.models.normalization import WSConv2d, standardize_weight

    torch.manual_seed(0)
    conv = WSConv2d(3, 5, 3, padding=1, bias=False)
    w = standardize_weight(conv.weight).flatten(1)
    assert torch.allclose(w.mean(1), torch.zeros(5), atol=1e-6)
    assert torch.allclose(w.std(1), torch.ones(5), atol=1e-3)
    x = torch.randn(2, 3, 6, 6)
    out = conv(x)
    with torch.no_grad():
        conv.weight.mul_(7.0).add_(0.5)         # per-filter affine change of the weights
    assert torch.allclose(conv(x), out, rtol=1e-3, atol=1e-3)   # up to the eps added to the std


def test_shifted_l2_gradient_is_the_write_ups_update():
    from ablate.models.normalization import shifted_l2

    torch.manual_seed(0)
    w = (torch.randn(4, 3, 3, 3) * 0.2 + 0.05).requires_grad_()
    e = 0.03
    shifted_l2([w], e).backward()
    flat = w.detach().flatten(1)
    mean, std = flat.mean(1, keepdim=True), flat.std(1, keepdim=True)
    update = ((1 - e / std) * (flat - mean) + mean).view_as(w)    # d_p of the reference code (lam = 1)
    assert torch.allclose(w.grad, update, atol=1e-6)


def test_shifted_l2_without_shift_is_plain_l2():
    from ablate.models.normalization import shifted_l2

    w = torch.randn(3, 2, 3, 3)
    assert torch.allclose(shifted_l2([w], 0.0), 0.5 * (w ** 2).sum(), rtol=1e-5)


# -- EvoNorm and initialisation -----------------------------------------------------------------

@pytest.mark.parametrize("kind", ["b0", "s0"])
@pytest.mark.parametrize("build", ["resnet18", "convnet", "bottleneck_se"])
def test_evonorm_leaves_no_batchnorm_and_the_model_runs(kind, build):
    from ablate.models import CifarResNetConfig, ConvNetConfig, TorchvisionResNetConfig, build_model
    from ablate.models.normalization import count_batchnorms, replace_bn_relu
    from ablate.models.resnet import add_attention

    cfg = {"resnet18": TorchvisionResNetConfig(name="resnet18"), "convnet": ConvNetConfig(name="convnet", width=8),
           "bottleneck_se": CifarResNetConfig(name="cifar_resnet", depth=11, width=8, block="bottleneck")}[build]
    torch.manual_seed(0)
    model = build_model(cfg, in_channels=3, num_classes=10)
    if build == "bottleneck_se":
        add_attention(model, "se", 4)
    assert replace_bn_relu(model, kind, groups=8) > 0
    assert count_batchnorms(model) == 0
    assert not any(isinstance(m, nn.ReLU) for m in model.modules()
                   if build == "convnet"), "BN-ReLU pairs became one layer"
    out = model(torch.randn(2, 3, 8, 8))
    assert out.shape == (2, 10) and torch.isfinite(out).all()


@pytest.mark.parametrize("scheme, std", [
    ("kaiming_normal", (2 / 576) ** 0.5), ("kaiming_uniform", (2 / 576) ** 0.5),
    ("xavier_normal", (2 / (576 + 64 * 9)) ** 0.5), ("xavier_uniform", (2 / (576 + 64 * 9)) ** 0.5),
])
def test_init_schemes_give_their_standard_deviations(scheme, std):
    from ablate.tricks.initialization import initialize

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(64, 64, 3))
    assert initialize(model, scheme, "fan_in") == 1
    assert float(model[0].weight.detach().std()) == pytest.approx(std, rel=0.03)
    assert not model[0].bias.any()


# -- bad parameters are refused when the spec loads ---------------------------------------------

@pytest.mark.parametrize("changes, words", [
    ({"tricks": {"ricap": {"beta": 0}}}, "beta"),
    ({"tricks": {"shakedrop": {"alpha_min": 0.5, "alpha_max": 0.2}}}, "alpha_min <= alpha_max must hold"),
    ({"tricks": {"asam": {"eta": 2}}}, "eta"),
    ({"tricks": {"color_jitter": {"saturation": 0.3}}}, "saturation and hue need colour images"),
    ({"tricks": {"shakedrop": {}}, "model": {"name": "convnet", "width": 8}}, "has no residual blocks"),
    ({"tricks": {"stochastic_depth": {}}, "model": {"name": "convnet", "width": 8}}, "has no residual blocks"),
    ({"tricks": {"lookahead": {"k": 0}}}, "k"),
    ({"tricks": {"ghmc": {"bins": 1}}}, "bins"),
    ({"tricks": {"init": {"scheme": "lecun"}}}, "kaiming_normal"),
])
def test_bad_parameters_fail_at_load_with_the_field(changes, words):
    with pytest.raises(SpecError) as info:
        tiny_spec(**changes)
    msg = str(info.value)
    assert words in msg and "tricks" in msg


# -- the gradient contract of tests/models/test_models.py, for the model edits added here --------------

NEW_MODEL_TRICKS = ["shakedrop", "stochastic_depth", "weight_standardization", "evonorm_b0", "evonorm_s0", "init"]
NEW_EDIT_SETS = ([(t,) for t in NEW_MODEL_TRICKS] + [(t, "zero_gamma") for t in NEW_MODEL_TRICKS]
                 + [("se", "stochastic_depth"), ("resnet_d", "evonorm_b0"),
                    ("weight_standardization", "evonorm_s0", "shakedrop")])


@pytest.mark.parametrize("family", ["basic", "preact", "bottleneck",
                                    pytest.param("resnet18", marks=pytest.mark.slow)])
@pytest.mark.parametrize("tricks", NEW_EDIT_SETS, ids="+".join)
def test_every_parameter_gets_a_gradient_after_the_new_edits(family, tricks):
    """Within three steps (ten with stochastic depth, which may drop a block a few steps in a row)."""
    from tests.models.test_models import _edited_model

    model = _edited_model(family, tricks)
    if model is None:
        pytest.skip(f"{'+'.join(tricks)} refuses {family}")
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(8, 1, 8, 8, generator=g), torch.randint(0, 4, (8,), generator=g)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    trained = {n: False for n, p in model.named_parameters() if p.requires_grad}
    for _ in range(10 if "stochastic_depth" in tricks else 3):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        assert torch.isfinite(loss)
        loss.backward()
        for n, p in model.named_parameters():
            if p.grad is not None and p.grad.any():
                trained[n] = True
        opt.step()
    assert [n for n, ok in trained.items() if not ok] == []
