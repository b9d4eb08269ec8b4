"""Ties that float arithmetic hides (issue 19, item 2), and the small tests that rest on them.

Accuracies are stored as ``100.0 * correct / n``: "+1 image on every seed" gives differences that
disagree in the last bits. Judged by exact equality, such an arm has sd ~1e-14 and p ~1e-42, a
star that survives any Holm correction. The simulations run the report's own path:
`stats.paired_lifts` on stored-style accuracies, then `stats.holm` with zero-variance arms
counted as p = 1.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import stats as st
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.weightstats import ttost_paired

from ablate import stats

ALPHA = 0.05


def upper(rate: float, reps: int) -> float:
    return st.binom.ppf(0.9995, reps, rate) / reps


def test_a_one_image_tie_is_a_tie():
    correct = np.array([341, 349, 337])
    base, arm = 100.0 * correct / 360, 100.0 * (correct + 1) / 360
    d = arm - base
    assert np.ptp(d) > 0, "the premise: float noise breaks the tie"
    r = stats.paired_lift(arm, base)
    assert r.zero_variance and np.isnan(r.p_value) and r.std == 0.0
    assert (r.ci_low, r.ci_high) == (r.mean, r.mean)
    many = stats.paired_lifts(np.stack([arm, arm + [0.0, 0.5, 0.0]]), base)
    assert many["zero_variance"].tolist() == [True, False]
    assert np.isnan(many["p_value"][0]) and many["std"][0] == 0.0 and many["p_value"][1] > 0
    # the rank and sign tests see the tie too: 3 equal positive differences, exact 2 / 2**3
    assert stats.paired_lift(arm, base, test="permutation").p_value == pytest.approx(0.25)
    assert stats.paired_lift(arm, base, test="wilcoxon").p_value == pytest.approx(0.25)


def test_snap_ties_merges_float_noise_and_keeps_real_differences():
    one = 100.0 / 360
    d = np.array([100.0 * 342 / 360 - 100.0 * 341 / 360, -(100.0 * 350 / 360 - 100.0 * 349 / 360),
                  100.0 * 7 / 360 - 100.0 * 7 / 360 + 1e-14, 2 * one])
    snapped = stats.snap_ties(d, stats.tie_tolerance([100.0]))
    assert snapped[0] == -snapped[1] and snapped[2] == 0.0 and snapped[3] == pytest.approx(2 * one)
    assert np.abs(snapped - d).max() < 1e-9
    assert stats.snap_ties(d, 0.0).tolist() == d.tolist()


@pytest.mark.parametrize("accuracy", [0.97, 0.99])
def test_family_wise_error_with_127_null_arms_on_360_images(accuracy):
    """The issue's case: 127 null arms, 3 seeds, Holm. It measured 19.3% (97%) and 39.3% (99%)."""
    rng = np.random.default_rng(11)
    reps = 4_000
    acc = 100.0 * rng.binomial(360, accuracy, size=(reps, 128, 3)) / 360
    stars, float_ties = 0, 0
    for x in acc:
        r = stats.paired_lifts(x[1:], x[0])
        stars += bool((stats.holm(r["p_value"], untestable=r["zero_variance"]) < ALPHA).any())
        d = x[1:] - x[0]
        float_ties += int((r["zero_variance"] & (np.ptp(d, axis=1) > 0)).sum())
    assert float_ties > reps / 10, "the premise: exact equality would miss many ties"
    assert stars / reps <= upper(ALPHA, reps), stars / reps


def test_factorial_exact_fit_gives_no_star():
    """Null 2^3 designs, one seed, 360-image accuracies: with main effects and two-factor
    interactions fitted, the one residual df is the three-factor contrast, and where its image
    count is 0 the fit is exact (residual ~1e-14). The issue measured 2.65% of such experiments
    starring every effect there (p = 0)."""
    from ablate.design.factorial import full_factorial

    design = full_factorial(["a", "b", "c"]).matrix
    abc = design.prod(axis=1)
    rng = np.random.default_rng(12)
    reps, stars, exact, exact_stars = 4_000, 0, 0, 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(reps):
            counts = rng.binomial(360, 0.97, size=8)
            effects = stats.factorial_effects(design, 100.0 * counts / 360)
            p = np.array([e.p_value for e in effects])
            starred = bool((stats.holm(p, untestable=[e.zero_variance for e in effects]) < ALPHA).any())
            stars += starred
            if abc @ counts == 0:      # exact fit, judged on the counts themselves
                exact += 1
                exact_stars += starred
                assert all(e.zero_variance for e in effects)
    assert exact > reps / 100, "the premise: exact fits happen"
    assert exact_stars == 0
    assert stars / reps <= upper(ALPHA, reps)


def test_exact_factorial_fit_has_no_error_estimate():
    from ablate.design.factorial import full_factorial

    design = full_factorial(["a", "b"]).matrix
    y = 100.0 * np.array([[300, 302], [301, 303], [310, 312], [311, 313]]) / 360   # additive: exact
    effects = {e.term: e for e in stats.factorial_effects(design, y, max_order=1)}
    assert all(e.zero_variance and np.isnan(e.p_value) and e.std_err == 0.0 for e in effects.values())
    assert effects[(1,)].estimate == pytest.approx(100 * 10 / 360) and effects[(0,)].estimate == pytest.approx(100 / 360)
    noisy = y + np.array([[0.0, 0.1], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    assert not any(e.zero_variance for e in stats.factorial_effects(design, noisy, max_order=1))


# --------------------------------------------------------------------------- Holm with untestable arms

def test_holm_counts_untestable_entries_as_one_and_adjusts_rows_apart():
    p = np.array([0.01, np.nan, 0.04, np.nan])
    untestable = np.array([False, True, False, False])
    adj = stats.holm(p, untestable=untestable)
    expect = multipletests([0.01, 1.0, 0.04], method="holm")[1]
    assert np.isnan(adj[[1, 3]]).all() and adj[[0, 2]] == pytest.approx(expect[[0, 2]])
    rows = np.array([[0.01, 0.02, 0.9], [0.2, 0.001, 0.04]])
    by_row = stats.holm(rows, axis=1)
    for got, row in zip(by_row, rows):
        assert got == pytest.approx(multipletests(row, method="holm")[1])
    assert stats.holm(rows.T, axis=0) == pytest.approx(by_row.T)
    assert stats.holm(rows) == pytest.approx(multipletests(rows.ravel(), method="holm")[1].reshape(2, 3))
    with pytest.raises(ValueError, match=r"untestable must have the shape of p_values \(4,\), got \(2,\)"):
        stats.holm(p, untestable=[True, False])


# --------------------------------------------------------------------------- item 6: the smallest p

def test_smallest_p_value_counts_zero_differences():
    assert stats.smallest_p_value("permutation", 8, zeros=3) == pytest.approx(0.0625)
    assert stats.smallest_p_value("wilcoxon", 8, zeros=3) == pytest.approx(0.0625)
    assert stats.smallest_p_value("permutation", 8) == pytest.approx(2 / 256)
    assert stats.smallest_p_value("t", 8, zeros=3) == 0.0
    # the bound is the real one: 5 equal non-zero differences and 3 zeros
    d = np.array([1.0] * 5 + [0.0] * 3)
    assert stats.sign_flip_p_value(d) == pytest.approx(0.0625)
    for bad in (-1, 9, 1.5, True):
        with pytest.raises(ValueError, match=r"zeros must be a whole number in \[0, n=8\]"):
            stats.smallest_p_value("permutation", 8, zeros=bad)
    r = stats.paired_lifts(np.array([[1.0, 2.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]]), np.zeros(4))
    assert r["n_nonzero"].tolist() == [2, 4]


# --------------------------------------------------------------------------- TOST

def test_equivalence_p_values_match_statsmodels():
    rng = np.random.default_rng(13)
    for _ in range(20):
        base = rng.normal(90, 1, 6)
        arm = base + rng.normal(rng.uniform(-1, 1), 0.5, 6)
        d = arm - base
        ours = stats.equivalence_p_values(d.mean(), d.std(ddof=1), 6, 0.8)
        theirs = ttost_paired(arm, base, -0.8, 0.8)[0]
        assert float(ours) == pytest.approx(theirs, rel=1e-9)
    # below alpha exactly when the 1 - 2 alpha interval lies inside the margin
    mean, sd, n = 0.2, 0.5, 5
    half = st.t.ppf(0.95, n - 1) * sd / np.sqrt(n)
    margin = mean + half
    assert stats.equivalence_p_values(mean, sd, n, margin * 1.001) < 0.05 <= stats.equivalence_p_values(
        mean, sd, n, margin * 0.999)
    out = stats.equivalence_p_values([0.1, 0.1, 0.1], [0.0, np.nan, 1.0], [4, 4, 1], 1.0)
    assert np.isnan(out).all()
    with pytest.raises(ValueError, match=r"margin must be a finite number > 0, got 0"):
        stats.equivalence_p_values(0.1, 1.0, 4, 0)


def test_seeds_to_detect_is_the_first_n_with_the_power():
    from statsmodels.stats.power import TTestPower

    n = stats.seeds_to_detect(1.0, 1.3, alpha=0.01)
    power = TTestPower()
    assert power.power(1.0 / 1.3, n, 0.01) >= 0.8 > power.power(1.0 / 1.3, n - 1, 0.01)
    assert stats.seeds_to_detect(1.0, 0.0, alpha=0.05) == 2
    assert stats.seeds_to_detect(0.01, 50.0, alpha=0.01) is None
    with pytest.raises(ValueError, match=r"lift must be a finite number > 0"):
        stats.seeds_to_detect(0.0, 1.0, alpha=0.05)
