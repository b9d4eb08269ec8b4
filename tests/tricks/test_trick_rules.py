"""Each random trick against an independent statement of its paper's rule, at non-default
parameters: distribution tests (KS, chi-square) with enough draws that a wrong parameter, an
inverted probability or a clamped box fails, and a fixed seed so the tests are repeatable."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from ablate.tricks import Procedure, get_trick
from ablate.tricks.erasing import ERASING_ATTEMPTS, erasing_boxes

N_DRAWS = 1500
P_MIN = 1e-3        # a correct implementation fails a test about once in a thousand seeds


def procedure(**tricks) -> Procedure:
    proc = Procedure(epochs=1, batch_size=8, optimizer="sgd", lr=0.1, momentum=0.9, nesterov=False,
                     weight_decay=0.0, num_classes=10)
    for name, params in tricks.items():
        trick = get_trick(name)
        trick.apply(trick.Params(**params), proc)
    return proc


def _two_images(size=16):
    """Image 0 all zeros, image 1 all ones, labels 0 and 1: the mix is readable from the output."""
    x = torch.stack([torch.zeros(1, size, size), torch.ones(1, size, size)])
    return x, torch.tensor([0, 1])


@pytest.mark.parametrize("alpha", [0.4, 3.0])
def test_mixup_lambda_is_beta_alpha_alpha(alpha):
    mix = procedure(mixup={"alpha": alpha}).batch_mixers[0]
    g = torch.Generator().manual_seed(11)
    x, y = _two_images(2)
    lams = []
    for _ in range(N_DRAWS):
        xm, t = mix(x, y, g)
        lam = float(t[0, 0])
        assert float(xm[0].mean()) == pytest.approx(1 - lam, abs=1e-6)   # image 0 takes (1-lam) of image 1
        lams.append(lam)
    assert stats.kstest(lams, stats.beta(alpha, alpha).cdf).pvalue > P_MIN


def _cutmix_reference(alpha: float, size: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """Yun et al.'s rule (their Algorithm A1 and code): lambda ~ Beta(alpha, alpha); a box of
    sides size * sqrt(1 - lambda) at a uniform centre, clipped to the image; the label weight is
    the area-corrected lambda, 1 - box area / image area."""
    lam = rng.beta(alpha, alpha, n)
    half = (0.5 * np.sqrt(1 - lam) * size).astype(int)
    cx, cy = rng.integers(0, size, n), rng.integers(0, size, n)
    w = np.clip(cx + half, 0, size) - np.clip(cx - half, 0, size)
    h = np.clip(cy + half, 0, size) - np.clip(cy - half, 0, size)
    return 1 - w * h / size**2


@pytest.mark.parametrize("alpha", [0.5, 2.0])
def test_cutmix_lambda_is_the_area_of_a_beta_box(alpha):
    size = 32
    mix = procedure(cutmix={"alpha": alpha}).batch_mixers[0]
    g = torch.Generator().manual_seed(12)
    x, y = _two_images(size)
    lams = []
    for _ in range(N_DRAWS):
        xm, t = mix(x, y, g)
        lam = float(t[0, 0])
        assert float(xm[0].mean()) == pytest.approx(1 - lam, abs=1e-6), "label weight = kept area"
        lams.append(lam)
    reference = _cutmix_reference(alpha, size, 20_000, np.random.default_rng(0))
    assert stats.ks_2samp(lams, reference).pvalue > P_MIN


@pytest.mark.parametrize("name", ["mixup", "cutmix"])
def test_mixing_probability_is_the_chance_a_batch_is_mixed(name):
    prob = 0.3
    mix = procedure(**{name: {"prob": prob, "alpha": 1.0}}).batch_mixers[0]
    g = torch.Generator().manual_seed(13)
    x, y = _two_images(64)   # large enough that CutMix's box is never empty
    mixed = 0
    for _ in range(N_DRAWS):
        xm, t = mix(x, y, g)
        mixed += bool(t[0, 0] < 1)   # lambda = 1 exactly has probability ~0 (and the box > 0 px)
    assert stats.binomtest(mixed, N_DRAWS, prob).pvalue > P_MIN


def _erasing_reference(n: int, h: int, w: int, scale, ratio, rng: np.random.Generator):
    """Zhong et al.'s rule as a plain loop: draw area and aspect ratio, keep the first box that
    fits inside the image, give up after 10 draws."""
    boxes = []
    for _ in range(n):
        for _ in range(ERASING_ATTEMPTS):
            area = rng.uniform(*scale) * h * w
            r = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
            bh, bw = round(math.sqrt(area * r)), round(math.sqrt(area / r))
            if 0 < bh < h and 0 < bw < w:
                boxes.append((bh, bw))
                break
        else:
            boxes.append(None)
    return boxes


def test_random_erasing_boxes_follow_the_papers_rejection_rule():
    h = w = 8
    scale, ratio, n = (0.1, 0.8), (0.3, 1 / 0.3), 6000   # many oversized draws to reject
    found, top, left, bh, bw = erasing_boxes(n, h, w, scale=scale, ratio=ratio,
                                             generator=torch.Generator().manual_seed(14))
    ref = _erasing_reference(n, h, w, scale, ratio, np.random.default_rng(0))
    ref_found = [b for b in ref if b is not None]
    # the chance that all 10 draws fail is the same
    assert stats.fisher_exact([[int(found.sum()), n - int(found.sum())],
                               [len(ref_found), n - len(ref_found)]]).pvalue > P_MIN
    ours = list(zip(bh[found].tolist(), bw[found].tolist()))
    # the joint distribution of accepted (height, width): a homogeneity test over the cells
    cells = sorted(set(ours) | set(ref_found))
    table = np.array([[ours.count(c) for c in cells], [ref_found.count(c) for c in cells]])
    assert stats.chi2_contingency(table).pvalue > P_MIN
    # every box lies inside its image, at a uniform position
    assert ((top >= 0) & (left >= 0) & (top + bh <= h) & (left + bw <= w))[found].all()
    assert stats.chisquare(np.bincount(top[found & (bh == 2)].numpy(), minlength=h - 1)).pvalue > P_MIN


def test_random_erasing_fill_and_probability():
    proc = procedure(random_erasing={"prob": 0.35, "scale_min": 0.05, "scale_max": 0.2, "value": "random"})
    x = torch.full((2000, 1, 16, 16), 7.0)
    out = proc.batch_erasers[0](x, torch.Generator().manual_seed(15))
    erased = (out != 7.0).flatten(1).any(1)
    assert stats.binomtest(int(erased.sum()), 2000, 0.35).pvalue > P_MIN   # every small box fits
    noise = out[out != 7.0]
    assert abs(float(noise.mean())) < 0.05 and abs(float(noise.std()) - 1) < 0.05   # N(0, 1) fill


def test_randaugment_magnitude_changes_the_output():
    x = torch.randint(0, 256, (64, 3, 16, 16), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)

    def augmented(magnitude, seed=16):
        proc = procedure(randaugment={"num_ops": 2, "magnitude": magnitude})
        return proc.sample_policies[0](x, torch.Generator().manual_seed(seed))

    strong, again, weak = augmented(25), augmented(25), augmented(5)
    assert torch.equal(strong, again), "deterministic for a generator seed"
    assert not torch.equal(strong, weak)
    # the same ops at a higher magnitude move the pixels further from the input, on average
    change = [(a.float() - x.float()).abs().mean() for a in (strong, weak)]
    assert change[0] > change[1]


def test_mixer_choice_draws_from_the_generator():
    proc = procedure(mixup={"alpha": 1.0}, cutmix={"alpha": 1.0})
    from ablate.train import Streams, prepare_batch

    x = torch.randint(0, 256, (8, 1, 8, 8), dtype=torch.uint8)
    y = torch.arange(8)
    mean, std = torch.zeros(1), torch.ones(1)

    def kinds(seed):
        streams = Streams.for_seed(seed, torch.device("cpu"))
        out = []
        for _ in range(60):
            xb, _ = prepare_batch(x, y, proc, streams, mean=mean, std=std, pad=0, flip=False)
            plain = x.float() / 255.0
            cut = ((xb == plain) | (xb == plain.roll(1, 0))).all()
            out.append("cutmix" if cut else "mixup")
        return out

    first = kinds(3)
    assert first == kinds(3) and 15 < first.count("cutmix") < 45


def _cutout_reference(n: int, h: int, w: int, size: float, rng: np.random.Generator) -> np.ndarray:
    """DeVries & Taylor's rule: a square of side size x image side (rounded) centred at a uniform
    pixel, clipped at the border. Returns each box's (first row, rows, first column, columns)."""
    side_h, side_w = max(1, round(size * h)), max(1, round(size * w))
    cy, cx = rng.integers(0, h, n), rng.integers(0, w, n)
    y0, x0 = cy - side_h // 2, cx - side_w // 2
    y1, x1 = np.clip(y0 + side_h, 0, h), np.clip(x0 + side_w, 0, w)
    y0, x0 = np.clip(y0, 0, h), np.clip(x0, 0, w)
    return np.stack([y0, y1 - y0, x0, x1 - x0], axis=1)


def test_cutout_boxes_follow_the_papers_rule():
    n, h, w, size = 4000, 12, 20, 0.25         # a non-square image: sides 3 and 5
    proc = procedure(cutout={"size": size})
    out = proc.batch_erasers[0](torch.ones(n, 1, h, w), torch.Generator().manual_seed(17))
    zero = (out[:, 0] == 0)
    rows, cols = zero.any(2), zero.any(1)
    n_rows, n_cols = rows.sum(1), cols.sum(1)
    assert torch.equal(n_rows * n_cols, zero.flatten(1).sum(1)), "one rectangle per image"
    ours = np.stack([rows.int().argmax(1), n_rows, cols.int().argmax(1), n_cols], axis=1)
    ref = _cutout_reference(20_000, h, w, size, np.random.default_rng(0))
    assert n_rows.max() == 3 and n_cols.max() == 5
    for axis in ((0, 1), (2, 3)):          # (first row, rows) and (first column, columns)
        cells = sorted({tuple(r) for r in ours[:, axis]} | {tuple(r) for r in ref[:, axis]})
        table = np.array([[sum(tuple(r) == c for r in ours[:, axis]) for c in cells],
                          [sum(tuple(r) == c for r in ref[:, axis]) for c in cells]])
        assert stats.chi2_contingency(table).pvalue > P_MIN



_G = torch.Generator().manual_seed(99)
_FLOATS, _LABELS = torch.rand(4, 1, 8, 8, generator=_G), torch.tensor([0, 1, 2, 3])
_UINT8 = torch.randint(0, 256, (4, 3, 8, 8), generator=_G, dtype=torch.uint8)
RANDOM_TRICK_CALLS = {
    "mixup": lambda p, g: p.batch_mixers[0](_FLOATS, _LABELS, g),
    "cutmix": lambda p, g: p.batch_mixers[0](_FLOATS, _LABELS, g),
    "random_erasing": lambda p, g: (p.batch_erasers[0](_FLOATS, g),),
    "cutout": lambda p, g: (p.batch_erasers[0](_FLOATS, g),),
    "autoaugment": lambda p, g: (p.sample_policies[0](_UINT8, g),),
    "randaugment": lambda p, g: (p.sample_policies[0](_UINT8, g),),
    "trivialaugment": lambda p, g: (p.sample_policies[0](_UINT8, g),),
    "color_jitter": lambda p, g: (p.sample_policies[0](_UINT8, g),),
    "ricap": lambda p, g: p.batch_mixers[0](_FLOATS, _LABELS, g),
}
PARAMS = {"mixup": {"prob": 0.5}, "cutmix": {"prob": 0.5}, "random_erasing": {"value": "random"},
          "ricap": {"prob": 0.5}}


@pytest.mark.parametrize("name", sorted(RANDOM_TRICK_CALLS))
def test_random_tricks_draw_only_from_the_generator_they_are_given(name):
    proc = procedure(**{name: PARAMS.get(name, {})})
    runs = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        before = torch.get_rng_state()
        g = torch.Generator().manual_seed(5)
        runs.append([RANDOM_TRICK_CALLS[name](proc, g) for _ in range(6)])
        assert torch.equal(torch.get_rng_state(), before), "the global RNG was used"
    for first, second in zip(*runs):
        assert all(torch.equal(a, b) for a, b in zip(first, second))
    assert any(not torch.equal(a[0], b[0]) for a, b in zip(runs[0], runs[0][1:])), "draws vary"


def test_warmup_then_cosine_closed_form():
    proc = procedure(warmup={"epochs": 1, "start_factor": 0.1}, cosine={"final_factor": 0.05})
    proc.epochs = 3                        # 30 steps: 10 of warmup, then cosine over 20
    from ablate.tricks import lr_multiplier

    got = [lr_multiplier(proc, s, 10) for s in range(30)]
    cosine = [0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * max(s - 10, 0) / 20)) for s in range(30)]
    warm = [0.1 + 0.9 * s / 10 if s < 10 else 1.0 for s in range(30)]
    assert got == pytest.approx([c * w for c, w in zip(cosine, warm)])


def test_randaugment_applies_num_ops_operations():
    x = torch.randint(0, 256, (32, 3, 16, 16), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    one, three = (procedure(randaugment={"num_ops": n, "magnitude": 9}).sample_policies[0](
        x, torch.Generator().manual_seed(3)) for n in (1, 3))
    assert not torch.equal(one, three)


def test_ema_decay_without_warmup_is_constant():
    from ablate.tricks.training import ema_decay_at

    assert [ema_decay_at(0.9, s, warmup=False) for s in (0, 5, 100)] == [0.9, 0.9, 0.9]
    assert [ema_decay_at(0.9, s, warmup=True) for s in (0, 5, 100)] == pytest.approx([0.1, 6 / 15, 0.9])


def test_unmixed_batches_get_one_hot_targets_over_all_classes():
    mix = procedure(mixup={"prob": 0.01}).batch_mixers[0]
    x, t = mix(_FLOATS, _LABELS, torch.Generator().manual_seed(0))
    assert torch.equal(x, _FLOATS) and t.dtype == _FLOATS.dtype
    assert torch.equal(t, torch.eye(10)[_LABELS])


def test_unknown_trick_names_the_nearest_and_all():
    with pytest.raises(KeyError, match=r"unknown trick 'mixpu' \(did you mean 'mixup'\?\); registered "
                                       r"tricks: adabound, adam, adamw, amp, asam, autoaugment"):
        get_trick("mixpu")
