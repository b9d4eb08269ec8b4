"""Selection apart from inference: the winner is chosen on the selection seeds and measured on the
report seeds (ablate.design.stages). Vectorised simulations (4,000 searches each) through
ablate's own search order, finalist choice and report functions check the error rates the report
promises, and that the old flow (the winner chosen and reported on the same runs, the search
trial reused) breaks them; plus the tie rule every driver decides by."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ablate import stats
from ablate.search.selection import TIE_RTOL, choose_and_report, finalist_order, rank, search_order

REPS = 4000
ALPHA = 0.05
TRIALS, TOP_K = 50, 3          # the setting: 50 search trials, the top 3 go on
SEED_SD, NOISE_SD = 0.6, 0.5   # pp: a seed moves every configuration alike (paired); plus each run's own noise


def se(p: float) -> float:
    """Monte Carlo standard error of a rate p over REPS replications."""
    return math.sqrt(p * (1 - p) / REPS)


class Runs:
    """y[rep, config, seed] = config mean + seed effect (shared by every configuration and arm on
    that seed) + noise: one draw per (rep, seed), reused wherever a flow reuses a run."""

    def __init__(self, rng: np.random.Generator, mu: np.ndarray, n_seeds: int):
        self.mu = mu                                                   # (reps, configs)
        self.seed = rng.normal(0, SEED_SD, (REPS, 1, n_seeds))
        self.y = mu[..., None] + self.seed + rng.normal(0, NOISE_SD, (*mu.shape, n_seeds))

    def of(self, configs: np.ndarray, seeds: slice) -> np.ndarray:
        """(reps, len(configs), seeds) runs of the chosen configurations."""
        return np.take_along_axis(self.y[..., seeds], configs[..., None], axis=1)


def search_then_finalists(runs: Runs) -> np.ndarray:
    """The search stage on seed 0: the top 3 of 50 trials by their one run (ablate's search order)."""
    return search_order(runs.y[..., 0], direction="max")[..., :TOP_K]


def new_flow(runs: Runs, hand=None, *, select=slice(1, 4), report=slice(4, 7)):
    """Seed 0 searches, seeds 1-3 select, seeds 4-6 report (a spec with `seeds: 7`)."""
    fin = search_then_finalists(runs)
    return fin, choose_and_report(runs.of(fin, select), runs.of(fin, report),
                                  None if hand is None else hand[..., report], direction="max")


def old_flow(runs: Runs, hand=None):
    """Before the fix: `seeds: 3`; the finalists re-run on seeds 0-2, seed 0's run being the search
    trial itself, and the winner chosen and reported on those same runs."""
    fin = search_then_finalists(runs)
    v = runs.of(fin, slice(0, 3))
    return fin, choose_and_report(v, v, None if hand is None else hand[..., 0:3], direction="max")


def test_the_winners_interval_covers_its_true_mean_when_the_finalists_are_equal():
    rng = np.random.default_rng(19)
    runs = Runs(rng, np.zeros((REPS, TRIALS)), 7)      # every configuration is equally good: 0
    for flow, holds in ((new_flow, True), (old_flow, False)):
        fin, c = flow(runs)
        m = c.winner_mean
        coverage = np.mean((m["ci_low"] <= 0.0) & (0.0 <= m["ci_high"]))
        bias = float(np.mean(m["mean"]))
        if holds:
            assert coverage >= 0.95 - 3 * se(0.95), coverage
            assert abs(bias) < 3 * (SEED_SD + NOISE_SD) / math.sqrt(3 * REPS), bias   # unbiased
        else:   # the old flow reports the best of three on the runs that chose it
            assert coverage < 0.95 - 3 * se(0.95), coverage
            assert bias > 0.2, bias


def test_searched_over_hand_picked_keeps_alpha_with_no_true_difference():
    rng = np.random.default_rng(20)
    runs = Runs(rng, np.zeros((REPS, TRIALS + 1)), 7)  # the last configuration is the hand-picked one
    hand = runs.y[:, TRIALS, :]
    runs.y, runs.mu = runs.y[:, :TRIALS], runs.mu[:, :TRIALS]
    rates = {}
    for flow in (new_flow, old_flow):
        _, c = flow(runs, hand)
        rates[flow.__name__] = float(np.mean(c.over_hand["p_value"] < ALPHA))
    assert rates["new_flow"] <= ALPHA + 3 * se(ALPHA), rates
    assert rates["old_flow"] > ALPHA + 3 * se(ALPHA), rates


def test_per_arm_lift_keeps_alpha_when_one_arm_has_a_clear_optimum_and_the_other_is_flat():
    """The reference arm has one clearly best configuration (the search finds it; no winner's
    curse), the other arm is flat (its winner is the luckiest): both are truly equal at their best,
    so the lift of the flat arm is null. The lift is the lift table's paired test of the arms'
    report runs (`stats.paired_lifts`, which `ablate.report.frames.lift_table` calls)."""
    rng = np.random.default_rng(21)
    clear = np.full((REPS, TRIALS), -3.0)
    clear[:, 0] = 0.0
    ref = Runs(rng, clear, 7)
    flat = Runs(rng, np.zeros((REPS, TRIALS)), 7)
    flat.seed, flat.y = ref.seed, flat.y - flat.seed + ref.seed    # paired: one seed effect per seed
    rates, bias = {}, {}
    for name in ("new", "old"):
        rows = []
        for arm in (ref, flat):
            fin, c = new_flow(arm) if name == "new" else old_flow(arm)
            seeds = slice(4, 7) if name == "new" else slice(0, 3)
            rows.append(arm.of(np.take_along_axis(fin, c.winner[:, None], axis=1), seeds)[:, 0])
        lift = stats.paired_lifts(rows[1] - rows[0], np.zeros(rows[0].shape[1]), confidence=1 - ALPHA)
        rates[name] = float(np.mean(lift["p_value"] < ALPHA))
        bias[name] = float(np.mean(lift["mean"]))
    assert rates["new"] <= ALPHA + 3 * se(ALPHA), rates
    assert abs(bias["new"]) < 0.02, bias
    assert rates["old"] > ALPHA + 3 * se(ALPHA) and bias["old"] > 0.2, (rates, bias)


def test_report_rows_are_the_chosen_finalists_paired_over_the_report_seeds():
    select = np.array([[70.0, 71.0], [72.0, 73.0], [71.0, 72.5]])
    report = np.array([[np.nan] * 3, [80.0, 81.0, 82.0], [79.0, 81.0, 80.0]])   # finalist 1 not re-run
    hand = np.array([78.0, 80.0, 79.0])
    c = choose_and_report(select, report, hand, direction="max", confidence=0.9, test="t")
    assert int(c.winner) == 1 and int(c.runner_up) == 2
    s = stats.summarize(report[1], confidence=0.9)
    assert float(c.winner_mean["mean"]) == pytest.approx(s.mean)
    assert float(c.winner_mean["ci_low"]) == pytest.approx(s.ci_low)
    lift = stats.paired_lift(report[1], report[2], confidence=0.9)
    assert float(c.over_runner_up["mean"]) == pytest.approx(lift.mean)
    assert float(c.over_runner_up["p_value"]) == pytest.approx(lift.p_value)
    assert float(c.over_hand["mean"]) == pytest.approx(2.0)
    # smaller is better (a loss): the other end wins
    assert int(choose_and_report(select, report, direction="min").winner) == 0


def test_ties_within_tolerance_go_to_the_finalist_the_search_ranked_higher():
    a = 100.0 * 331 / 359
    tied = np.array([a - 4e-14, a, a + 3e-14])        # the same accuracy, float sums in other orders
    assert rank(tied, direction="max").tolist() == [0, 1, 2]
    assert rank(tied, direction="min").tolist() == [0, 1, 2]
    apart = np.array([a, a + 1e-6 * a])               # a real difference, however small, is not a tie
    assert rank(apart, direction="max").tolist() == [1, 0]
    assert abs(tied[2] - tied[0]) < TIE_RTOL * a < 1e-6 * a
    # a finalist with no complete selection run ranks last; with none at all, the search's order
    sel = np.array([[np.nan, np.nan], [90.0, 91.0], [92.0, np.nan]])
    assert finalist_order(sel, direction="max").tolist() == [2, 1, 0]
    assert finalist_order(np.full((3, 2), np.nan), direction="max").tolist() == [0, 1, 2]
    assert finalist_order(np.empty((3, 0)), direction="max").tolist() == [0, 1, 2]
    # vectorised over searches: the same rule row by row
    batch = np.stack([tied, tied[::-1], apart.tolist() + [np.nan]])
    assert rank(batch, direction="max").tolist() == [[0, 1, 2], [0, 1, 2], [1, 0, 2]]
