"""Adaptive seeding keeps its error rate: the runner's stopping rule, simulated under H0.

The simulation runs `stats.adaptive_wants_seed` (the function `run.experiment.adaptive_requests`
calls) on null paired differences, then the report's test (`paired_lifts` + `adaptive_p_values`)
and counts stars. It also runs the rule adaptive seeding used before (more seeds only while the
CI straddles 0) to show that it fails the same check.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as st

from ablate import stats

ALPHA = 0.05
INITIAL, MAX_SEEDS, TARGET = 3, 10, 0.5
SDS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0)      # pp: realistic spreads of paired accuracy differences
REPS = 10_000                             # null arms per sd


def simulate(rule: str, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Null arms (rows) per sd: final seed count and nominal t-test p-value."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((len(SDS) * REPS, MAX_SEEDS)) * np.repeat(SDS, REPS)[:, None]
    n = np.full(x.shape[0], INITIAL)
    cols = np.arange(MAX_SEEDS)[None, :]
    for _ in range(MAX_SEEDS):
        seen = np.where(cols < n[:, None], x, np.nan)
        more, half = stats.adaptive_wants_seed(seen, n, target_half_width=TARGET, max_seeds=MAX_SEEDS)
        if rule == "old":   # the replaced rule: also stop as soon as the CI excludes 0
            mean = np.nanmean(seen, axis=1)
            more &= np.abs(mean) < half
        n = n + more
    seen = np.where(cols < n[:, None], x, np.nan)
    p = stats.paired_lifts(seen, np.zeros(MAX_SEEDS))["p_value"]
    return n.reshape(len(SDS), REPS), p.reshape(len(SDS), REPS)


def band(reps: int) -> tuple[float, float]:
    """Binomial 99.9% band of a rejection rate whose true value is ALPHA."""
    lo, hi = st.binom.ppf([0.0005, 0.9995], reps, ALPHA) / reps
    return lo, hi


def test_precision_rule_never_looks_at_the_sign():
    d = np.array([[0.1, 0.2, 0.3], [-0.1, -0.2, -0.3], [5.0, -5.0, 0.0], [3.0, 3.5, np.nan]])
    more, half = stats.adaptive_wants_seed(d, np.array([3, 3, 3, 3]), target_half_width=0.5, max_seeds=10)
    assert half[:2] == pytest.approx([st.t.ppf(0.975, 2) * 0.1 / np.sqrt(3)] * 2)
    assert more.tolist() == [False, False, True, True]   # narrow CIs stop; wide CI (with 0 in or not) goes on
    capped, _ = stats.adaptive_wants_seed(d, np.array([3, 3, 10, 10]), target_half_width=0.5, max_seeds=10)
    assert capped.tolist() == [False, False, False, False]
    one, _ = stats.adaptive_wants_seed([[1.0, np.nan, np.nan]], [1], target_half_width=0.5, max_seeds=10)
    assert one.tolist() == [True]                         # no CI yet


def test_adaptive_false_positive_rate_is_alpha():
    n, p = simulate("new")
    p_adj = stats.adaptive_p_values(p, initial=INITIAL, max_seeds=MAX_SEEDS)
    rate = (p_adj < ALPHA).mean(axis=1)
    lo, hi = band(REPS)
    assert (rate <= hi).all(), dict(zip(SDS, rate))
    # the correction is not just conservative: at the worst spread the rate is alpha
    assert rate.max() >= lo, dict(zip(SDS, rate))
    # the uncorrected t-test after precision stopping is too liberal: why the correction exists
    assert (p < ALPHA).mean(axis=1).max() > hi
    assert 3 <= n.min() and n.max() == MAX_SEEDS and (n > INITIAL).any()


def test_old_rule_fails_the_same_check():
    _, p = simulate("old")
    _, hi = band(REPS)
    assert (p < ALPHA).mean(axis=1).max() > max(hi, 0.12)   # the issue measured 10-19%


def test_adaptive_level_agrees_with_adjusted_p():
    level = stats.adaptive_level(ALPHA, initial=INITIAL, max_seeds=MAX_SEEDS)
    assert 0.01 < level < ALPHA
    p = np.array([level * 0.999, level * 1.001])
    adj = stats.adaptive_p_values(p, initial=INITIAL, max_seeds=MAX_SEEDS)
    assert adj[0] < ALPHA <= adj[1] + 1e-4
    assert np.isnan(stats.adaptive_p_values([np.nan], initial=INITIAL, max_seeds=MAX_SEEDS)).all()
    assert stats.adaptive_p_values([0.0], initial=INITIAL, max_seeds=MAX_SEEDS)[0] > 0


# --------------------------------------------------------------------------- the runner's round

def _store_with(tmp_path, values, adaptive):
    from tests.conftest import tiny_spec
    from tests.test_report import filled_store

    spec = tiny_spec(tricks={"cosine": {}, "label_smoothing": {}, "mixup": {}},
                     seeds={"count": values.shape[1], "adaptive": adaptive})
    return filled_store(tmp_path, spec, values)


def test_adaptive_round_asks_seeds_on_precision_not_on_sign(tmp_path):
    from ablate.run.experiment import adaptive_requests

    base = np.array([90.0, 91.0, 89.5])
    values = np.stack([base,
                       base + [3.0, 5.0, 4.0],      # CI excludes 0 but half-width 2.5 > 0.5: more seeds
                       base + [0.1, 0.2, 0.15],     # narrow CI: done
                       base + [-1.0, 1.2, 0.1]])    # wide CI around 0: more seeds
    store, p = _store_with(tmp_path, values, {"max_seeds": 5, "target_half_width": 0.5})
    req = adaptive_requests(p, store)
    assert [(r.arm, r.seed) for r in req] == [(0, 3), (1, 3), (3, 3)]
    half = st.t.ppf(0.975, 2) * np.std([3.0, 5.0, 4.0], ddof=1) / np.sqrt(3)
    assert f"half-width {half:.2f} > target 0.5" in req[1].reason
    assert "paired baseline seed for arm(s) 1, 3" in req[0].reason


def test_adaptive_round_stops_at_max_seeds(tmp_path):
    from ablate.run.experiment import adaptive_requests

    base = np.array([90.0, 91.0, 89.5])
    values = np.stack([base, base + [3.0, -5.0, 4.0], base + [1, 2, 3], base + [1, 2, 3]])
    store, p = _store_with(tmp_path, values, {"max_seeds": 3, "target_half_width": 0.5})
    assert adaptive_requests(p, store) == []


# --------------------------------------------------------------------------- the calibration's parts
# `_adaptive_null_p` is cached, so its parts are checked directly (small inputs, exact answers).

def test_run_adaptive_matches_a_seed_by_seed_loop():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((400, 7)) * rng.choice([0.2, 1.0, 3.0], size=400)[:, None]
    target, conf = 1.0, 0.9
    expect = []
    for row in x:       # one arm at a time: add a seed while the CI half-width exceeds the target
        n = 3
        while n < 7:
            half = st.t.ppf((1 + conf) / 2, n - 1) * row[:n].std(ddof=1) / np.sqrt(n)
            if half <= target:
                break
            n += 1
        expect.append(n)
    got = stats._run_adaptive(x, 3, 7, target, conf)
    assert got.tolist() == expect
    assert 3 < np.mean(expect) < 7, "the check exercises both stopping reasons"


def test_nominal_t_p_is_the_t_test_on_each_arms_seeds():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((5, 6))
    n = np.array([2, 3, 4, 5, 6])
    got = stats._nominal_t_p(x, n)
    assert got == pytest.approx([st.ttest_1samp(x[i, :k], 0.0).pvalue for i, k in enumerate(n)])


def test_adjusted_p_is_the_worst_ratios_tail_share(monkeypatch):
    """p_adj = max over ratio rows of (#{sims <= p} + 1) / (B + 1), capped at 1; the level is the
    largest p whose p_adj stays below alpha."""
    sims = np.sort(np.random.default_rng(5).uniform(size=(3, 99)) ** np.array([[1.0], [1.3], [0.8]]), axis=1)
    calls = []
    monkeypatch.setattr(stats, "_adaptive_null_p", lambda *a: calls.append(a) or sims)
    p = np.array([[0.001, 0.05], [0.3, np.nan]])
    got = stats.adaptive_p_values(p, initial=3, max_seeds=8, confidence=0.9)
    expect = [max(((row <= q).sum() + 1) / 100 for row in sims) for q in (0.001, 0.05, 0.3)]
    assert got.shape == (2, 2) and np.isnan(got[1, 1])
    assert [got[0, 0], got[0, 1], got[1, 0]] == pytest.approx(expect)
    assert calls[0] == (3, 8, 0.9)
    assert stats.adaptive_p_values([1.0], initial=3, max_seeds=8)[0] == 1.0
    level = stats.adaptive_level(0.1, initial=3, max_seeds=8)
    # a nominal p is starred (p_adj < 0.1) exactly when it is below the level: the level is the
    # smallest simulated p whose adjusted value reaches 0.1 (10 = k + 1 sims at or below it)
    adj = lambda q: max(((row <= q).sum() + 1) / 100 for row in sims)   # noqa: E731
    assert level == pytest.approx(min(q for q in np.unique(sims) if adj(q) >= 0.1))
    assert adj(np.nextafter(level, 0)) < 0.1 <= adj(level)
    assert stats.adaptive_level(0.01, initial=3, max_seeds=8) == 0.0, "alpha below 2/(B+1): nothing passes"
