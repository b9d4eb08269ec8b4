"""Tests for ablate.stats, each checked against an independent computation (SciPy, statsmodels,
or a hand-written formula), never against the function itself."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from scipy import integrate, stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestPower

import ablate.stats as ab
from ablate.stats import (
    Effect,
    PairedLift,
    Summary,
    factorial_effects,
    holm,
    min_detectable_lift,
    paired_lift,
    seeds_for_ci_width,
    summarize,
)

BASE = np.array([71.2, 70.4, 72.0, 69.8, 70.9, 71.5, 70.1, 71.8])
ARM = np.array([72.0, 71.3, 72.4, 70.9, 71.2, 72.6, 70.5, 72.1])


# --------------------------------------------------------------------------- summarize

@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_summarize_matches_scipy_t_interval(confidence):
    s = summarize(BASE, confidence=confidence)
    low, high = stats.t.interval(confidence, BASE.size - 1, loc=BASE.mean(), scale=stats.sem(BASE))
    assert isinstance(s, Summary)
    assert s.n == 8
    assert s.mean == pytest.approx(np.mean(BASE), abs=1e-12)
    assert s.std == pytest.approx(np.std(BASE, ddof=1), abs=1e-12)
    assert (s.ci_low, s.ci_high) == pytest.approx((low, high), abs=1e-10)


def test_summarize_drops_nan_and_handles_tiny_samples():
    s = summarize([70.0, np.nan, 72.0, 74.0])
    assert (s.n, s.mean, s.std) == (3, 72.0, 2.0)
    half = stats.t.ppf(0.975, 2) * 2.0 / math.sqrt(3)
    assert (s.ci_low, s.ci_high) == pytest.approx((72.0 - half, 72.0 + half))
    one = summarize([np.nan, 70.0])
    assert one.n == 1 and one.mean == 70.0
    assert math.isnan(one.std) and math.isnan(one.ci_low) and math.isnan(one.ci_high)
    empty = summarize([np.nan, np.nan])
    assert empty.n == 0 and math.isnan(empty.mean)


# --------------------------------------------------------------------------- paired_lift

@pytest.mark.parametrize("confidence", [0.8, 0.95])
def test_paired_t_matches_scipy(confidence):
    r = paired_lift(ARM, BASE, confidence=confidence)
    d = ARM - BASE
    assert isinstance(r, PairedLift) and r.test == "t" and r.n == 8
    assert r.mean == pytest.approx(d.mean(), abs=1e-12)
    assert r.std == pytest.approx(d.std(ddof=1), abs=1e-12)
    assert r.p_value == pytest.approx(stats.ttest_rel(ARM, BASE).pvalue, rel=1e-10)
    low, high = stats.t.interval(confidence, d.size - 1, loc=d.mean(), scale=stats.sem(d))
    assert (r.ci_low, r.ci_high) == pytest.approx((low, high), abs=1e-10)


@pytest.mark.parametrize("arm, base", [
    (ARM, BASE),                                                         # exact, no ties
    ([1.0, 2.0, 2.0, 3.0, 5.0, 4.0], [0.0, 0.0, 0.0, 1.0, 0.0, 6.0]),   # tied |d|
    ([1.0, 2.0, 3.0, 3.0, 5.0], [1.0, 0.5, 2.0, 4.0, 1.0]),             # a zero difference
    (np.arange(20.0) % 7, np.zeros(20)),                                 # n > 13 with ties+zeros
])
def test_paired_wilcoxon_matches_scipy(arm, base):
    r = paired_lift(arm, base, test="wilcoxon")
    assert r.test == "wilcoxon"
    assert r.p_value == pytest.approx(stats.wilcoxon(arm, base).pvalue, rel=1e-10)
    d = np.asarray(arm, float) - np.asarray(base, float)
    # the interval stays the t interval of the mean difference
    low, high = stats.t.interval(0.95, d.size - 1, loc=d.mean(), scale=stats.sem(d))
    assert (r.ci_low, r.ci_high) == pytest.approx((low, high), abs=1e-10)


@pytest.mark.parametrize("test", ["t", "wilcoxon"])
def test_paired_lift_drops_pairs_with_nan_on_either_side(test):
    arm = np.array([72.0, np.nan, 72.4, 70.9, 71.2, 72.6, np.nan])
    base = np.array([71.2, 70.4, np.nan, 69.8, 70.9, 71.5, np.nan])
    r = paired_lift(arm, base, test=test)
    kept_a, kept_b = np.array([72.0, 70.9, 71.2, 72.6]), np.array([71.2, 69.8, 70.9, 71.5])
    ref = (stats.ttest_rel(kept_a, kept_b) if test == "t" else stats.wilcoxon(kept_a, kept_b))
    assert r.n == 4
    assert r.mean == pytest.approx(np.mean(kept_a - kept_b))
    assert r.p_value == pytest.approx(ref.pvalue, rel=1e-10)


@pytest.mark.parametrize("test", ["t", "wilcoxon"])
def test_paired_lift_too_few_pairs(test):
    none = paired_lift([np.nan, 1.0], [2.0, np.nan], test=test)
    assert none.n == 0
    assert all(math.isnan(v) for v in (none.mean, none.std, none.ci_low, none.p_value))
    one = paired_lift([72.0, np.nan], [70.5, 71.0], test=test)
    assert one.n == 1 and one.mean == 1.5
    assert all(math.isnan(v) for v in (one.std, one.ci_low, one.ci_high, one.p_value))


@pytest.mark.parametrize("test", ["wilcoxon", "permutation"])
@pytest.mark.parametrize("n", [3, 20])
def test_paired_lift_all_differences_zero_gives_p_one(test, n):
    x = np.linspace(70.0, 72.0, n)
    r = paired_lift(x, x.copy(), test=test)
    assert (r.n, r.mean, r.std, r.ci_low, r.ci_high, r.p_value) == (n, 0.0, 0.0, 0.0, 0.0, 1.0)


@pytest.mark.parametrize("shift", [0.0, 0.5])
def test_paired_t_with_zero_variance_has_no_p_value(shift):
    # Identical differences: t = x/0 or 0/0 is not computable. The old code said p = 0 for a
    # nonzero shift, which put a star that survives any correction on a tie of discrete accuracies.
    base = np.array([70.0, 71.0, 72.0, 69.0])
    r = paired_lift(base + shift, base)          # 0.5 is exact in binary: d == 0.5 exactly
    assert (r.mean, r.std, r.ci_low, r.ci_high) == (shift, 0.0, shift, shift)
    assert math.isnan(r.p_value) and r.zero_variance
    many = ab.paired_lifts([base + shift], base)
    assert math.isnan(many["p_value"][0]) and many["zero_variance"][0]
    w = paired_lift(base + 0.5, base, test="wilcoxon")
    assert w.p_value == pytest.approx(2 / 2**4)   # all four signs positive: exact 2 * (1/2)^n
    assert paired_lift(base + 0.5, base, test="permutation").p_value == pytest.approx(2 / 2**4)
    assert not paired_lift(ARM, BASE).zero_variance


def _brute_force_sign_flip(d):
    """p by listing every sign pattern with itertools (independent of the numpy bit trick)."""
    from itertools import product

    observed = abs(sum(d))
    hits = [abs(sum(s * x for s, x in zip(signs, d))) >= observed - 1e-9
            for signs in product((1, -1), repeat=len(d))]
    return sum(hits) / len(hits)


@pytest.mark.parametrize("d", [
    [0.4, 1.1, -0.2], [1.0, 2.0, 3.0, 4.0], [0.5, -0.5, 0.5, 0.25, 1.75, 0.0],
    [0.3, 0.3, 0.3, 0.3, 0.3], list(np.random.default_rng(3).normal(0.4, 1, 11)),
])
def test_sign_flip_matches_brute_force(d):
    assert ab.sign_flip_p_value(d) == pytest.approx(_brute_force_sign_flip(d), abs=1e-12)
    assert paired_lift(np.asarray(d) + 70, np.full(len(d), 70.0), test="permutation").p_value == \
        pytest.approx(_brute_force_sign_flip(d), abs=1e-12)


def test_sign_flip_never_zero_and_monte_carlo_beyond_16():
    d = np.linspace(1.0, 2.0, 20)               # all positive: exact p = 2 / 2**20
    p = ab.sign_flip_p_value(d, resamples=999, seed=1)
    assert p == pytest.approx(1 / 1000)         # (0 + 1) / (999 + 1): never 0
    assert ab.sign_flip_p_value(d, resamples=999, seed=1) == p   # seeded
    noisy = np.random.default_rng(0).normal(0.1, 1, 18)
    exact = ab.sign_flip_p_value(noisy, exact_up_to=18)
    mc = ab.sign_flip_p_value(noisy, resamples=20_000)
    assert mc == pytest.approx(exact, abs=4 * math.sqrt(exact * (1 - exact) / 20_000))
    assert ab.smallest_p_value("permutation", 3) == 0.25
    assert ab.smallest_p_value("wilcoxon", 5) == pytest.approx(1 / 16)
    assert ab.smallest_p_value("t", 3) == 0.0


@pytest.mark.parametrize("kwargs, message", [
    (dict(arm=[1.0, 2.0, 3.0], baseline=[1.0, 2.0]), "same length"),
    (dict(arm=[1.0, 2.0], baseline=[1.0, 2.0], confidence=1.0), "confidence"),
    (dict(arm=[1.0, 2.0], baseline=[1.0, 2.0], confidence=0.0), "confidence"),
    (dict(arm=[1.0, 2.0], baseline=[1.0, 2.0], confidence=float("nan")), "confidence"),
    (dict(arm=[1.0, 2.0], baseline=[1.0, 2.0], test="ttest"), "test must be one of"),
    (dict(arm=[[1.0, 2.0]], baseline=[[1.0, 2.0]]), "1-D"),
    (dict(arm=[1.0, np.inf], baseline=[1.0, 2.0]), "infinite"),
])
def test_paired_lift_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        paired_lift(**kwargs)


# --------------------------------------------------------------------------- holm

@pytest.mark.parametrize("p", [
    [0.01, 0.04, 0.03, 0.005],
    [0.2, 0.2, 0.01, 0.5, 1.0, 0.0],
    [0.04],
    list(np.random.default_rng(3).uniform(0, 0.2, size=15)),
])
def test_holm_matches_statsmodels(p):
    np.testing.assert_allclose(holm(p), multipletests(p, method="holm")[1], rtol=0, atol=1e-15)


def test_holm_passes_nan_through_without_counting_it():
    p = np.array([0.01, np.nan, 0.04, 0.03, np.nan])
    out = holm(p)
    assert np.isnan(out[[1, 4]]).all()
    np.testing.assert_allclose(out[[0, 2, 3]], multipletests([0.01, 0.04, 0.03], method="holm")[1])
    assert out[0] == pytest.approx(0.03)        # m = 3, not 5
    assert holm([]).shape == (0,)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        holm([0.5, 1.2])


# --------------------------------------------------------------------------- power and seeds

def power_by_integration(delta: float, sd: float, n: int, alpha: float) -> float:
    """Two-sided paired t power from first principles, without the noncentral t code.

    T = (Z + nc) / S with S = sqrt(chi2_df / df), so P(|T| > c) = E_S[Phi(nc - cS) + Phi(-nc - cS)],
    integrated over the density of S (a scaled chi distribution).
    """
    df, nc = n - 1, delta * math.sqrt(n) / sd
    c = stats.t.isf(alpha / 2, df)

    def integrand(s):
        density = stats.chi.pdf(s * math.sqrt(df), df) * math.sqrt(df)
        return density * (stats.norm.cdf(nc - c * s) + stats.norm.cdf(-nc - c * s))

    return integrate.quad(integrand, 0, np.inf, epsabs=1e-13, epsrel=1e-12, limit=200)[0]


@pytest.mark.parametrize("n, alpha, power", [
    (2, 0.05, 0.8), (3, 0.05, 0.8), (5, 0.05, 0.8), (10, 0.05, 0.8), (40, 0.05, 0.8),
    (5, 0.01, 0.9), (10, 0.01, 0.9), (40, 0.01, 0.9), (20, 0.1, 0.5),
])
def test_min_detectable_lift_matches_statsmodels(n, alpha, power):
    sd = 0.7
    got = min_detectable_lift(sd, n, alpha=alpha, power=power)
    es = TTestPower().solve_power(nobs=n, alpha=alpha, power=power)
    # statsmodels' solver stops early (its power is off by ~2e-6 at n=40), hence rel=1e-5
    assert got == pytest.approx(es * sd, rel=1e-5)
    # the normal approximation understates the lift needed with few seeds
    z = (stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)) * sd / math.sqrt(n)
    assert got > z


@pytest.mark.parametrize("n, alpha, power", [
    (2, 0.05, 0.8), (2, 0.01, 0.9), (3, 0.01, 0.9), (5, 0.05, 0.8), (30, 0.05, 0.95),
])
def test_min_detectable_lift_has_the_requested_power(n, alpha, power):
    # includes n=2,3 at alpha=0.01, where statsmodels' solve_power returns a wrong answer
    # (nan from nct.cdf far in the left tail) and so cannot serve as the reference
    sd = 1.3
    got = min_detectable_lift(sd, n, alpha=alpha, power=power)
    assert power_by_integration(got, sd, n, alpha) == pytest.approx(power, abs=1e-8)
    assert power_by_integration(0.99 * got, sd, n, alpha) < power


def test_min_detectable_lift_edge_cases():
    assert math.isnan(min_detectable_lift(1.0, 1))
    assert math.isnan(min_detectable_lift(float("nan"), 10))
    assert min_detectable_lift(0.0, 10) == 0.0
    with pytest.raises(ValueError, match="power must exceed alpha"):
        min_detectable_lift(1.0, 10, alpha=0.2, power=0.1)
    with pytest.raises(ValueError, match="sd_diff"):
        min_detectable_lift(-1.0, 10)
    with pytest.raises(ValueError, match="alpha"):
        min_detectable_lift(1.0, 10, alpha=1.5)


@pytest.mark.parametrize("sd, target, confidence", [
    (1.0, 0.5, 0.95), (0.3, 0.25, 0.95), (2.0, 0.4, 0.9), (1.0, 3.0, 0.95), (0.5, 0.01, 0.99),
])
def test_seeds_for_ci_width_is_smallest_sufficient_n(sd, target, confidence):
    n = seeds_for_ci_width(sd, target, confidence=confidence, max_seeds=100_000)

    def half(m):
        return stats.t.interval(confidence, m - 1, scale=sd / math.sqrt(m))[1]

    assert n >= 2 and half(n) <= target
    assert n == 2 or half(n - 1) > target


def test_seeds_for_ci_width_edge_cases():
    assert seeds_for_ci_width(0.0, 0.1) == 2
    assert seeds_for_ci_width(10.0, 0.01, max_seeds=50) == 50      # unreachable: capped
    for bad in (dict(sd_diff=float("nan"), target_half_width=1.0),
                dict(sd_diff=1.0, target_half_width=0.0),
                dict(sd_diff=1.0, target_half_width=1.0, max_seeds=1),
                dict(sd_diff=1.0, target_half_width=1.0, confidence=2.0)):
        with pytest.raises(ValueError):
            seeds_for_ci_width(**bad)


# --------------------------------------------------------------------------- factorial effects

def full_factorial(k: int) -> np.ndarray:
    # first factor alternates fastest (Yates order)
    return np.array([[-1 if (r >> j) & 1 == 0 else 1 for j in range(k)] for r in range(2**k)])


def simulate(design: np.ndarray, seeds: int, rng_seed: int = 0) -> np.ndarray:
    """A known structure: A +1.5 (effect 3.0), B -0.8, A*B +0.6, seed offsets, noise."""
    rng = np.random.default_rng(rng_seed)
    a, b = design[:, 0], design[:, 1]
    mean = 70.0 + 1.5 * a - 0.8 * b + 0.6 * a * b
    offsets = rng.normal(0.0, 1.0, size=seeds)
    return mean[:, None] + offsets[None, :] + rng.normal(0.0, 0.3, size=(len(design), seeds))


def long_frame(design: np.ndarray, y: np.ndarray) -> pd.DataFrame:
    # factor columns x0, x1, ... (a column named C would shadow patsy's C() in formulas)
    rows = [dict({f"x{j}": float(v) for j, v in enumerate(design[r])}, seed=s, y=y[r, s])
            for r in range(y.shape[0]) for s in range(y.shape[1]) if not np.isnan(y[r, s])]
    return pd.DataFrame(rows)


def by_term(effects: list[Effect]) -> dict[tuple[int, ...], Effect]:
    return {e.term: e for e in effects}


def assert_matches_ols(effects, fit, names: dict[tuple[int, ...], str]):
    got = by_term(effects)
    assert set(got) == set(names)
    ci = fit.conf_int(0.05)
    for term, name in names.items():
        e = got[term]
        assert e.estimate == pytest.approx(2 * fit.params[name], rel=1e-8, abs=1e-10)
        assert e.std_err == pytest.approx(2 * fit.bse[name], rel=1e-8)
        assert e.p_value == pytest.approx(fit.pvalues[name], rel=1e-8, abs=1e-14)
        assert (e.ci_low, e.ci_high) == pytest.approx(tuple(2 * ci.loc[name]), rel=1e-8)


FULL3_NAMES = {(0,): "x0", (1,): "x1", (2,): "x2",
               (0, 1): "x0:x1", (0, 2): "x0:x2", (1, 2): "x1:x2"}


def test_full_factorial_matches_statsmodels_formula_with_seed_blocks():
    design = full_factorial(3)
    y = simulate(design, seeds=3)
    effects = factorial_effects(design, y)
    fit = smf.ols("y ~ (x0 + x1 + x2)**2 + C(seed)", data=long_frame(design, y)).fit()
    assert fit.df_resid == 24 - 9
    assert_matches_ols(effects, fit, FULL3_NAMES)
    # sorted by |estimate| and, balanced, each estimate is the +1 mean minus the -1 mean
    assert [abs(e.estimate) for e in effects] == sorted((abs(e.estimate) for e in effects),
                                                        reverse=True)
    assert effects[0].term == (0,)
    a = design[:, 0]
    assert effects[0].estimate == pytest.approx(y[a == 1].mean() - y[a == -1].mean(), abs=1e-10)
    assert all(e.aliases == () for e in effects)
    # the simulated structure is recovered: A and B and A*B real, the rest noise
    assert by_term(effects)[(0, 1)].ci_low < 1.2 < by_term(effects)[(0, 1)].ci_high
    assert by_term(effects)[(0,)].p_value < 1e-6 and by_term(effects)[(1,)].p_value < 1e-6


def test_full_factorial_without_blocks_matches_plain_ols():
    design = full_factorial(3)
    y = simulate(design, seeds=3)
    effects = factorial_effects(design, y, block_by_seed=False, confidence=0.95)
    fit = smf.ols("y ~ (x0 + x1 + x2)**2", data=long_frame(design, y)).fit()
    assert_matches_ols(effects, fit, FULL3_NAMES)
    blocked = by_term(factorial_effects(design, y))
    # seed offsets (sd 1) dominate the noise (sd 0.3): blocking must shrink the standard errors
    assert blocked[(0,)].std_err < by_term(effects)[(0,)].std_err


def test_missing_cells_match_statsmodels_on_observed_rows():
    design = full_factorial(3)
    y = simulate(design, seeds=4, rng_seed=7)
    y[2, 0] = y[5, 1] = y[5, 3] = y[7, 2] = np.nan
    y[:, 3] = np.nan                     # a whole seed failed: no block for it
    frame = long_frame(design, y)
    assert len(frame) == 24 - 3
    fit = smf.ols("y ~ (x0 + x1 + x2)**2 + C(seed)", data=frame).fit()
    assert_matches_ols(factorial_effects(design, y), fit, FULL3_NAMES)


def fractional_2_4_1(sign: int = 1) -> np.ndarray:
    base = full_factorial(3)
    return np.column_stack([base, sign * base[:, 0] * base[:, 1] * base[:, 2]])   # D = ±ABC


@pytest.mark.parametrize("sign", [1, -1])   # -1: I = -ABCD, so AB = -CD (aliased up to sign)
def test_fractional_design_reports_aliases_and_matches_ols(sign):
    design = fractional_2_4_1(sign)
    y = simulate(design, seeds=3, rng_seed=1)
    effects = factorial_effects(design, y)
    got = by_term(effects)
    # I = ±ABCD: every two-factor interaction is aliased with its complement
    assert set(got) == {(0,), (1,), (2,), (3,), (0, 1), (0, 2), (0, 3)}
    assert got[(0, 1)].aliases == ((2, 3),)
    assert got[(0, 2)].aliases == ((1, 3),)
    assert got[(0, 3)].aliases == ((1, 2),)
    assert all(got[(i,)].aliases == () for i in range(4))   # aliases are 3FIs, above max_order
    frame = long_frame(design, y)
    X = pd.DataFrame({"const": 1.0, "A": frame.x0, "B": frame.x1, "C": frame.x2, "D": frame.x3,
                      "AB": frame.x0 * frame.x1, "AC": frame.x0 * frame.x2,
                      "AD": frame.x0 * frame.x3})
    X = X.join(pd.get_dummies(frame.seed, prefix="seed", drop_first=True, dtype=float))
    fit = sm.OLS(frame.y, X).fit()
    assert_matches_ols(effects, fit, {(0,): "A", (1,): "B", (2,): "C", (3,): "D",
                                      (0, 1): "AB", (0, 2): "AC", (0, 3): "AD"})


@pytest.mark.parametrize("sign", [1, -1])
def test_fractional_design_higher_order_aliases_and_intercept_confounding(sign):
    design = fractional_2_4_1(sign)
    y = simulate(design, seeds=2, rng_seed=2)
    got = by_term(factorial_effects(design, y, max_order=4))
    assert got[(0,)].aliases == ((1, 2, 3),)
    assert got[(3,)].aliases == ((0, 1, 2),)
    # ABCD is constant (the defining relation): confounded with the intercept, not reported
    assert (0, 1, 2, 3) not in got
    assert all((0, 1, 2, 3) not in e.aliases for e in got.values())


def test_saturated_fit_returns_estimates_with_nan_uncertainty():
    design = fractional_2_4_1()
    y = simulate(design, seeds=1, rng_seed=4)        # 8 cells, 8 columns: no residual df
    effects = factorial_effects(design, y)
    cols = {t: np.prod(design[:, list(t)], axis=1) for t in by_term(effects)}
    for e in effects:
        c = cols[e.term]
        assert e.estimate == pytest.approx(y[c == 1].mean() - y[c == -1].mean(), abs=1e-10)
        assert all(math.isnan(v) for v in (e.std_err, e.ci_low, e.ci_high, e.p_value))


def plackett_burman_12() -> np.ndarray:
    gen = np.array([1, 1, -1, 1, 1, 1, -1, -1, -1, 1, -1])
    rows = [np.roll(gen, i) for i in range(11)] + [-np.ones(11, dtype=int)]
    return np.array(rows)


def test_plackett_burman_main_effects_match_ols():
    design = plackett_burman_12()
    assert (design.T @ design == 12 * np.eye(11)).all()     # a valid orthogonal PB design
    y = simulate(design, seeds=3, rng_seed=5)
    y[4, 1] = np.nan
    effects = factorial_effects(design, y, max_order=1)
    frame = long_frame(design, y)
    fit = smf.ols("y ~ " + " + ".join(f"x{i}" for i in range(11)) + " + C(seed)",
                  data=frame).fit()
    assert_matches_ols(effects, fit, {(i,): f"x{i}" for i in range(11)})


def test_plackett_burman_with_interactions_falls_back_to_main_effects():
    design = plackett_burman_12()
    y = simulate(design, seeds=3, rng_seed=6)
    with pytest.warns(RuntimeWarning, match="main effects only"):
        effects = factorial_effects(design, y, max_order=2)
    ref = factorial_effects(design, y, max_order=1)
    assert [e.term for e in effects] == [e.term for e in ref]
    np.testing.assert_allclose([e.estimate for e in effects], [e.estimate for e in ref])


@pytest.mark.parametrize("design, y, kwargs, message", [
    ([[1, 0], [-1, 1]], [[1.0], [2.0]], {}, "-1 and \\+1"),
    ([[1, 1], [-1, 1]], [[1.0], [2.0], [3.0]], {}, "runs = 2"),
    ([[1, 1], [-1, 1]], [[1.0], [2.0]], dict(max_order=0), "max_order"),
    ([[1, 1], [-1, 1]], [[np.nan], [np.nan]], {}, "no observed values"),
    ([[1, 1], [-1, 1]], [[np.inf], [1.0]], {}, "infinite"),
    ([[1, 1], [-1, 1]], [[1.0], [2.0]], dict(confidence=95), "confidence"),
])
def test_factorial_effects_rejects_bad_arguments(design, y, kwargs, message):
    with pytest.raises(ValueError, match=message):
        factorial_effects(design, y, **kwargs)


def test_factorial_effects_raises_when_a_factor_level_is_entirely_missing():
    design = full_factorial(3)
    y = simulate(design, seeds=2)
    y[design[:, 0] == 1] = np.nan          # no run with A at +1 survived
    with pytest.raises(ValueError, match="not estimable"), pytest.warns(RuntimeWarning):
        factorial_effects(design, y)


def test_single_seed_one_dimensional_y():
    design = full_factorial(3)
    y = simulate(design, seeds=1, rng_seed=9)[:, 0]
    frame = long_frame(design, y[:, None])
    fit = smf.ols("y ~ x0 + x1 + x2", data=frame).fit()
    assert_matches_ols(factorial_effects(design, y, max_order=1), fit,
                       {(0,): "x0", (1,): "x1", (2,): "x2"})


# --------------------------------------------------------------------------- vectorised forms

def _rows_for_vectorised():
    rng = np.random.default_rng(7)
    base = rng.normal(90, 1, 6)
    arms = base + rng.normal(0.5, 0.7, (6, 6))
    arms[1, 2] = np.nan                      # a missing seed
    arms[2] = base                           # all differences 0
    arms[3] = base + 1.25                    # identical nonzero differences
    arms[4, :5] = np.nan                     # a single pair
    arms[5] = np.nan                         # no pair
    return arms, base


@pytest.mark.parametrize("test", ["t", "wilcoxon", "permutation"])
def test_paired_lifts_equals_paired_lift_row_by_row(test):
    arms, base = _rows_for_vectorised()
    many = ab.paired_lifts(arms, base, confidence=0.9, test=test)
    for i, row in enumerate(arms):
        one = ab.paired_lift(row, base, confidence=0.9, test=test)
        for field in ("n", "mean", "std", "ci_low", "ci_high", "p_value"):
            np.testing.assert_allclose(many[field][i], getattr(one, field), rtol=1e-10, atol=1e-12,
                                       err_msg=f"row {i} {field}")


def test_summarize_rows_equals_summarize():
    arms, _ = _rows_for_vectorised()
    rows = ab.summarize_rows(arms)
    for i, row in enumerate(arms):
        one = ab.summarize(row)
        assert rows["n"][i] == one.n
        np.testing.assert_allclose([rows["mean"][i], rows["std"][i]], [one.mean, one.std], rtol=1e-12)


# --------------------------------------------------------------------------- boundaries (issue 14)
# Two seeds is the smallest sample with a spread: every "n >= 2" guard is checked at n = 2 against
# scipy, and n = 1 gives no spread.

def test_two_seeds_have_a_spread_and_an_interval():
    s = summarize([1.0, 3.0], confidence=0.9)
    assert (s.n, s.mean, s.std) == (2, 2.0, pytest.approx(math.sqrt(2)))
    assert (s.ci_low, s.ci_high) == pytest.approx(stats.t.interval(0.9, 1, loc=2.0, scale=math.sqrt(2) / math.sqrt(2)))
    one = summarize([5.0])
    assert one.n == 1 and one.mean == 5.0 and math.isnan(one.std) and math.isnan(one.ci_low)
    none = summarize([np.nan])
    assert none.n == 0 and math.isnan(none.mean)


@pytest.mark.parametrize("test", ["t", "wilcoxon", "permutation"])
def test_two_pairs_get_a_lift_interval_and_p_value(test):
    arm, base = np.array([11.0, 14.0]), np.array([10.0, 12.0])
    d = arm - base
    p_ref = {"t": stats.ttest_rel(arm, base).pvalue, "wilcoxon": stats.wilcoxon(d).pvalue,
             "permutation": 0.5}[test]     # sign flips of (1, 2): |sums| 3, 1, 1, 3 -> 2 of 4 reach 3
    lo, hi = stats.t.interval(0.95, 1, loc=d.mean(), scale=stats.sem(d))
    single = paired_lift(arm, base, test=test)
    rows = ab.paired_lifts(np.vstack([arm, [np.nan, 13.0]]), base, test=test)
    assert (single.n, single.mean, single.std) == (2, 1.5, pytest.approx(d.std(ddof=1)))
    assert (single.ci_low, single.ci_high, single.p_value) == pytest.approx((lo, hi, p_ref))
    assert rows["n"].tolist() == [2, 1]
    assert [rows["mean"][0], rows["std"][0], rows["ci_low"][0], rows["ci_high"][0], rows["p_value"][0]] == \
        pytest.approx([1.5, d.std(ddof=1), lo, hi, p_ref])
    assert rows["mean"][1] == 1.0 and np.isnan([rows["std"][1], rows["ci_low"][1], rows["p_value"][1]]).all()
    assert rows["zero_variance"].tolist() == [False, False]
    short = paired_lift([1.0], [0.0], test=test)
    assert short.test == test and short.n == 1 and math.isnan(short.p_value)


def test_zero_variance_with_a_missing_seed_and_with_two_pairs():
    base = np.array([10.0, 11.0, 12.0])
    arms = np.array([[11.0, 12.0, np.nan],      # two identical differences, one seed missing
                     [12.0, 13.0, 14.0]])       # three identical differences
    r = ab.paired_lifts(arms, base)
    assert r["zero_variance"].tolist() == [True, True] and np.isnan(r["p_value"]).all()
    assert r["std"].tolist() == [0.0, 0.0] and r["ci_low"].tolist() == [1.0, 2.0]


def test_permutation_rows_use_the_sign_flip_test_not_wilcoxon():
    from itertools import product

    base = np.zeros(5)
    d = np.array([1.0, 2.0, 3.0, 4.0, -6.5])
    flips = [abs(np.dot(s, d)) >= abs(d.sum()) - 1e-12 for s in product((1, -1), repeat=5)]
    exact = np.mean(flips)
    assert exact != pytest.approx(stats.wilcoxon(d).pvalue), "the check tells the two tests apart"
    assert ab.paired_lifts(d[None, :], base, test="permutation")["p_value"][0] == pytest.approx(exact)
    assert paired_lift(d, base, test="permutation").p_value == pytest.approx(exact)


def test_sign_flip_edge_cases_and_ties():
    assert ab.sign_flip_p_value([2.0]) == 1.0            # one pair: both patterns reach |2|
    assert math.isnan(ab.sign_flip_p_value([np.nan]))
    # 20 pairs (Monte Carlo): every pattern's |sum| is >= the observed 0, so p = 1 exactly
    assert ab.sign_flip_p_value([1.0, -1.0] * 10) == 1.0
    # reproducible: the resampling generator is seeded
    d = np.linspace(-1, 2.5, 18)
    assert ab.sign_flip_p_value(d) == ab.sign_flip_p_value(d)
    assert ab.sign_flip_p_value(d, seed=0) == ab.sign_flip_p_value(d)
    # exact enumeration up to exact_up_to pairs, inclusive: 16 equal pairs give 2 / 2**16, not (k+1)/(B+1)
    assert ab.sign_flip_p_value(np.ones(16)) == 2 / 2 ** 16


def test_smallest_p_value_is_capped_at_one():
    assert ab.smallest_p_value("wilcoxon", 0) == 1.0 and ab.smallest_p_value("permutation", 1) == 1.0
    assert ab.smallest_p_value("permutation", 3) == 0.25 and ab.smallest_p_value("t", 3) == 0.0
    with pytest.raises(ValueError, match=r"test must be one of .*got 'z'"):
        ab.smallest_p_value("z", 3)


def test_holm_caps_at_one_and_keeps_the_shape():
    assert holm([0.6, 0.9]).tolist() == [1.0, 1.0]
    p = np.array([[0.01, 0.04], [0.03, np.nan]])
    got = holm(p)
    assert got.shape == (2, 2) and np.isnan(got[1, 1])
    assert got[~np.isnan(got)].tolist() == pytest.approx(multipletests([0.01, 0.04, 0.03], method="holm")[1])


def test_argument_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"power must be in the open interval"):
        min_detectable_lift(1.0, 10, power=1.0)
    with pytest.raises(ValueError, match="power must exceed alpha"):
        min_detectable_lift(1.0, 10, alpha=0.3, power=0.3)
    with pytest.raises(ValueError, match=r"n must be a whole number of pairs, got 2.5"):
        min_detectable_lift(1.0, 2.5)
    with pytest.raises(ValueError, match=r"sd_diff must be a finite non-negative number, got inf"):
        seeds_for_ci_width(float("inf"), 1.0)
    with pytest.raises(ValueError, match=r"target_half_width must be > 0, got 0.0"):
        seeds_for_ci_width(1.0, 0.0)
    with pytest.raises(ValueError, match=r"max_seeds must be at least 2, got 1"):
        seeds_for_ci_width(1.0, 1.0, max_seeds=1)
    with pytest.raises(ValueError, match=r"arms have 3 seeds but baseline has 2"):
        ab.paired_lifts(np.zeros((2, 3)), np.zeros(2))
    with pytest.raises(ValueError, match=r"arms contain infinite values; use NaN for missing seeds"):
        ab.paired_lifts([[np.inf, 1.0]], [0.0, 0.0])
    with pytest.raises(ValueError, match=r"arm contains infinite values"):
        paired_lift([np.inf, 1.0], [0.0, 0.0])
    with pytest.raises(ValueError, match=r"baseline must be a 1-D array"):
        paired_lift([1.0, 2.0], [[0.0, 0.0]])
    with pytest.raises(ValueError, match=r"values must be a 1-D array"):
        summarize([[1.0]])


def test_min_detectable_lift_at_one_sd_and_two_pairs():
    es = TTestPower().solve_power(nobs=2, alpha=0.05, power=0.8, alternative="two-sided")
    assert min_detectable_lift(1.0, 2) == pytest.approx(es, rel=1e-6)
    assert min_detectable_lift(2.0, 2) == pytest.approx(2 * es, rel=1e-6)


def test_seeds_for_ci_width_two_seeds_and_the_cap_itself():
    assert seeds_for_ci_width(0.1, 5.0) == 2                       # two seeds already narrow enough
    sd, conf = 1.0, 0.95
    half = lambda m: stats.t.ppf(0.975, m - 1) * sd / math.sqrt(m)   # noqa: E731
    target = half(9) * (1 + 1e-9)                                   # met first at 9 seeds
    assert seeds_for_ci_width(sd, target, confidence=conf, max_seeds=9) == 9
    assert seeds_for_ci_width(sd, target, confidence=conf, max_seeds=2) == 2
    assert seeds_for_ci_width(sd, 1e-6, max_seeds=2) == 2


def test_factorial_check_design_messages():
    for design in ([[]], [[1, 1]][:0], np.ones((2, 0)), np.ones(3)):
        with pytest.raises(ValueError, match=r"design must be a non-empty \(runs, factors\) array"):
            factorial_effects(design, [[1.0]])
    with pytest.raises(ValueError, match=r"design must be a non-empty"):
        factorial_effects(np.ones((1, 0)), [[1.0]])
    with pytest.raises(ValueError, match=r"with runs = 2, got shape \(3, 1\)"):
        factorial_effects([[1, 1, 1], [-1, 1, -1]], [[1.0], [2.0], [3.0]])
    with pytest.raises(ValueError, match=r"max_order must be an integer >= 1, got True"):
        factorial_effects([[1], [-1]], [[1.0], [2.0]], max_order=True)
    with pytest.raises(ValueError, match=r"max_order must be an integer >= 1, got 1.5"):
        factorial_effects([[1], [-1]], [[1.0], [2.0]], max_order=1.5)


def test_seed_blocks_remove_each_seeds_offset():
    design = full_factorial(2)
    rng = np.random.default_rng(8)
    base = (10 + 1.5 * design[:, 0] - 0.5 * design[:, 1])[:, None]
    y = base + np.array([0.0, 3.0, -2.0]) + rng.normal(0, 0.1, size=(4, 3))   # big seed offsets
    blocked = {e.term: e for e in factorial_effects(design, y, max_order=1)}
    frame = pd.DataFrame({"y": y.ravel(), "A": np.repeat(design[:, 0], 3), "B": np.repeat(design[:, 1], 3),
                          "seed": np.tile(["s0", "s1", "s2"], 4)})
    fit = smf.ols("y ~ A + B + C(seed)", data=frame).fit()
    assert blocked[(0,)].estimate == pytest.approx(2 * fit.params["A"])
    assert blocked[(0,)].std_err == pytest.approx(2 * fit.bse["A"])
    assert blocked[(1,)].p_value == pytest.approx(fit.pvalues["B"])
