"""Statistics for seeded ablations: paired lifts, multiple testing, power, factorial effects.

Every arm of an ablation is trained with the same seeds as the baseline, so seed ``s`` of an
arm and seed ``s`` of the baseline share data order, initialisation and augmentation draws.
Seed-to-seed noise is large and mostly common to both, so we analyse the *paired differences*
``d_s = arm_s - baseline_s``: their spread excludes the shared seed effect, which makes the
interval for the mean lift much narrower than comparing two independent means would.

* Intervals are Student t intervals ``mean ± t_{(1+c)/2, n-1} * sd / sqrt(n)``.
* Tests are the paired t-test, the Wilcoxon (1945) signed-rank test (both delegated to SciPy so
  the numbers are the textbook ones), or the exact paired sign-flip randomisation test (Fisher
  1935), which assumes only that the differences are symmetric about 0 under H0 and can never
  give p = 0. With zero spread the t statistic is 0/0 or x/0: no p-value (NaN, `zero_variance`).
* Adaptive seeding stops on precision alone (`adaptive_wants_seed`); because the stopping still
  depends on the variance estimate, the t-test p-values of an adaptive experiment are
  calibrated by simulation of that same rule (`adaptive_p_values`).
* Many arms mean many tests; Holm's (1979) step-down procedure controls the family-wise error
  rate without assuming independence and is uniformly more powerful than Bonferroni.
* Power of the two-sided paired t-test uses the noncentral t distribution: under a true mean
  difference ``delta`` the statistic is ``nct(df=n-1, nc=delta*sqrt(n)/sd)``.
* Two-level factorial designs are fitted by OLS on ±1 contrasts with seed blocks; an effect is
  ``2 * coefficient`` (the +1 mean minus the -1 mean when the data are balanced).

Everything here is pure numpy/scipy and side-effect free (apart from one warning, see
`factorial_effects`).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from functools import lru_cache
from itertools import combinations

import numpy as np
from numpy.typing import ArrayLike
from scipy import optimize, stats

__all__ = [
    "Summary", "summarize", "summarize_rows", "PairedLift", "paired_lift", "paired_lifts", "holm", "min_detectable_lift",
    "seeds_for_ci_width", "Effect", "factorial_effects", "sign_flip_p_value", "smallest_p_value",
    "adaptive_wants_seed", "adaptive_p_values", "adaptive_level", "TESTS",
]

TESTS = ("t", "wilcoxon", "permutation")


# --------------------------------------------------------------------------- validation

def _check_confidence(confidence: float, name: str = "confidence") -> float:
    if not 0.0 < confidence < 1.0:   # also rejects nan
        raise ValueError(f"{name} must be in the open interval (0, 1), got {confidence!r}")
    return float(confidence)


def _as_1d(values: ArrayLike, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of per-seed values, got shape {arr.shape}")
    if np.isinf(arr).any():
        # NaN means "seed missing"; an infinite accuracy is a bug upstream, not missing data.
        raise ValueError(f"{name} contains infinite values; use NaN for missing seeds")
    return arr


def _t_interval(mean: float, sd: float, n: int, confidence: float) -> tuple[float, float]:
    """``mean ± t_{(1+c)/2, n-1} * sd / sqrt(n)``; nan for n < 2."""
    if n < 2:
        return math.nan, math.nan
    half = stats.t.ppf((1.0 + confidence) / 2.0, n - 1) * sd / math.sqrt(n)
    return float(mean - half), float(mean + half)


# --------------------------------------------------------------------------- one arm

@dataclass(frozen=True)
class Summary:
    """Distribution of one arm over seeds (NaN seeds dropped).

    ``std`` uses ddof=1 (nan if n < 2); ``[ci_low, ci_high]`` is the t interval of the mean,
    ``mean ± t_{(1+c)/2, n-1} * std / sqrt(n)`` (nan if n < 2).
    """

    n: int
    mean: float
    std: float
    ci_low: float
    ci_high: float


def summarize(values: ArrayLike, *, confidence: float = 0.95) -> Summary:
    """Mean, sample std and t confidence interval of the non-NaN ``values``."""
    confidence = _check_confidence(confidence)
    x = _as_1d(values, "values")
    x = x[~np.isnan(x)]
    n = int(x.size)
    mean = float(x.mean()) if n else math.nan
    std = float(x.std(ddof=1)) if n >= 2 else math.nan
    low, high = _t_interval(mean, std, n, confidence)
    return Summary(n=n, mean=mean, std=std, ci_low=low, ci_high=high)


# --------------------------------------------------------------------------- paired lift

@dataclass(frozen=True)
class PairedLift:
    """Lift of an arm over the baseline from seed-paired differences ``d = arm - baseline``.

    ``n`` pairs with both sides present; ``mean`` and ``std`` (ddof=1) of ``d``;
    ``[ci_low, ci_high] = mean ± t_{(1+c)/2, n-1} * std / sqrt(n)``; two-sided ``p_value``
    of ``test`` ("t" or "wilcoxon"). See `paired_lift` for the edge cases.
    """

    n: int
    mean: float
    std: float
    ci_low: float
    ci_high: float
    p_value: float
    test: str
    zero_variance: bool = False   # t-test not computable: every difference is the same


def _paired_p_value(d: np.ndarray, test: str) -> float:
    """Two-sided p-value of H0: the differences are centred on 0 (n >= 2); NaN for the t-test
    when every difference is the same (zero variance: t is 0/0 or x/0, not computable)."""
    if test == "t":
        if np.ptp(d) == 0.0:
            return math.nan
        return float(stats.ttest_rel(d, np.zeros_like(d)).pvalue)
    if not d.any():
        # Every seed gave exactly the same accuracy: no evidence of any lift. SciPy returns
        # nan for Wilcoxon with n > 13 (all zeros dropped).
        return 1.0
    if test == "permutation":
        return sign_flip_p_value(d)
    return float(stats.wilcoxon(d).pvalue)


def sign_flip_p_value(d: ArrayLike, *, exact_up_to: int = 16, resamples: int = 100_000,
                      seed: int = 0) -> float:
    """Two-sided paired randomisation (sign-flip) test of H0: d symmetric about 0.

    Statistic ``|sum(d)|``; the p-value is the share of the ``2**n`` sign patterns whose
    statistic is at least the observed one (the identity pattern included, so p >= 2 / 2**n
    when no difference is 0). Exact enumeration up to ``exact_up_to`` pairs; beyond, ``resamples``
    random patterns from a seeded generator with ``p = (k + 1) / (resamples + 1)`` (Phipson &
    Smyth 2010), which is never 0. SciPy's ``permutation_test`` does the same but is ~50x slower
    for the few-seed rows a report has thousands of, so the enumeration is done here with numpy.
    """
    x = _as_1d(d, "d")
    x = x[~np.isnan(x)]
    n = int(x.size)
    if n == 0:
        return math.nan
    observed = abs(float(x.sum()))
    tol = 1e-9 * max(float(np.abs(x).sum()), 1e-300)   # float sums of the same values differ in the last bits
    if n <= exact_up_to:
        patterns = np.arange(2 ** n)[:, None] >> np.arange(n)[None, :] & 1
        sums = np.abs((1 - 2 * patterns) @ x)
        return float(np.mean(sums >= observed - tol))
    rng = np.random.default_rng(seed)
    signs = rng.integers(0, 2, size=(resamples, n)) * 2 - 1
    k = int(np.sum(np.abs(signs @ x) >= observed - tol))
    return (k + 1) / (resamples + 1)


def smallest_p_value(test: str, n: int) -> float:
    """The smallest two-sided p-value ``test`` can give with ``n`` pairs (no zero differences):
    ``2 / 2**n`` for the sign-flip and the exact Wilcoxon test, 0 for the t-test."""
    if test not in TESTS:
        raise ValueError(f"test must be one of {TESTS}, got {test!r}")
    return 0.0 if test == "t" else min(1.0, 2.0 / 2.0 ** n)


def paired_lift(arm: ArrayLike, baseline: ArrayLike, *, confidence: float = 0.95,
                test: str = "t") -> PairedLift:
    """Mean paired lift ``arm - baseline`` with a t interval and a two-sided test.

    ``arm`` and ``baseline`` are aligned by seed; pairs with NaN on either side are dropped.

    * ``test="t"``: paired t-test, ``t = mean / (std / sqrt(n))`` on n-1 df
      (identical to ``scipy.stats.ttest_rel``).
    * ``test="permutation"``: exact paired sign-flip test (`sign_flip_p_value`).
    * ``test="wilcoxon"``: Wilcoxon signed-rank test, identical to ``scipy.stats.wilcoxon``
      with its defaults: zero differences are discarded (``zero_method="wilcox"``), tied
      absolute differences get average ranks, and SciPy's ``method="auto"`` picks the null
      distribution (SciPy 1.17: exact for n <= 50 without ties or zeros, an exact sign-flip
      permutation for n <= 13 with them, the normal approximation otherwise). The smallest
      attainable p-value is ``2 / 2**n`` (0.25 for n = 3), so Wilcoxon cannot reject at 5%
      with fewer than 6 pairs.

    The interval is the t interval for either test. Edge cases:

    * n == 0: everything nan. n == 1: ``mean`` is the single difference, the rest nan.
    * all differences identical (zero variance), t-test: ``std = 0``, CI ``[d, d]``, ``p_value``
      NaN and ``zero_variance`` True: the t statistic is not computable, and its limit (p = 0)
      would survive any correction although a few discrete accuracies tie by chance.
      Wilcoxon and the sign-flip test use signs and ranks only: their usual finite p-value
      (1.0 when every difference is 0).

    Raises ValueError for arrays of different lengths, ``confidence`` outside (0, 1) or an
    unknown ``test``.
    """
    confidence = _check_confidence(confidence)
    if test not in TESTS:
        raise ValueError(f"test must be one of {TESTS}, got {test!r}")
    a, b = _as_1d(arm, "arm"), _as_1d(baseline, "baseline")
    if a.shape != b.shape:
        raise ValueError(
            f"arm and baseline must be aligned by seed (same length), got {a.size} and {b.size}")
    d = (a - b)[~(np.isnan(a) | np.isnan(b))]
    n = int(d.size)
    mean = float(d.mean()) if n else math.nan
    if n < 2:
        return PairedLift(n=n, mean=mean, std=math.nan, ci_low=math.nan, ci_high=math.nan,
                          p_value=math.nan, test=test)
    std = float(d.std(ddof=1))
    low, high = _t_interval(mean, std, n, confidence)
    return PairedLift(n=n, mean=mean, std=std, ci_low=low, ci_high=high,
                      p_value=_paired_p_value(d, test), test=test, zero_variance=std == 0.0)


def paired_lifts(arms: ArrayLike, baseline: ArrayLike, *, confidence: float = 0.95,
                 test: str = "t") -> dict[str, np.ndarray]:
    """`paired_lift` of every row of ``arms`` (m, seeds) against ``baseline`` (seeds,), at once.

    Returns arrays of length m under the `PairedLift` field names (n, mean, std, ci_low,
    ci_high, p_value, zero_variance), with the same values and edge cases as calling `paired_lift` per row;
    the t-test path is vectorised (a report of a 2^10 factorial has 1,024 arms).
    """
    confidence = _check_confidence(confidence)
    if test not in TESTS:
        raise ValueError(f"test must be one of {TESTS}, got {test!r}")
    a = np.atleast_2d(np.asarray(arms, dtype=float))
    b = _as_1d(baseline, "baseline")
    if a.shape[1] != b.size:
        raise ValueError(f"arms have {a.shape[1]} seeds but baseline has {b.size}")
    if np.isinf(a).any():
        raise ValueError("arms contain infinite values; use NaN for missing seeds")
    d = a - b[None, :]
    ok = ~np.isnan(d)
    n = ok.sum(axis=1)
    d0 = np.where(ok, d, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, d0.sum(axis=1) / np.maximum(n, 1), np.nan)
        dev = np.where(ok, d - mean[:, None], 0.0)
        std = np.where(n >= 2, np.sqrt((dev ** 2).sum(axis=1) / np.maximum(n - 1, 1)), np.nan)
        df = np.maximum(n - 1, 1)
        half = stats.t.ppf((1.0 + confidence) / 2.0, df) * std / np.sqrt(np.maximum(n, 1))
        low, high = np.where(n >= 2, mean - half, np.nan), np.where(n >= 2, mean + half, np.nan)
        if test == "t":
            tstat = mean / (std / np.sqrt(n))
            p = 2 * stats.t.sf(np.abs(tstat), df)
            hi = np.where(ok, d, -np.inf).max(axis=1, initial=-np.inf)
            lo = np.where(ok, d, np.inf).min(axis=1, initial=np.inf)
            same = hi == lo   # all present differences identical (rows with n < 2 are masked below)
            p = np.where(same, np.nan, p)
        else:
            p = np.array([_paired_p_value(row[~np.isnan(row)], test) if k >= 2 else np.nan
                          for row, k in zip(d, n)])
        p = np.where(n >= 2, p, np.nan)
    return {"n": n, "mean": mean, "std": std, "ci_low": low, "ci_high": high, "p_value": p,
            "zero_variance": (n >= 2) & (std == 0)}


def summarize_rows(values: ArrayLike) -> dict[str, np.ndarray]:
    """n, mean and std (ddof=1) of every row of (m, seeds), NaN seeds dropped (vectorised)."""
    x = np.atleast_2d(np.asarray(values, dtype=float))
    ok = ~np.isnan(x)
    n = ok.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, np.where(ok, x, 0.0).sum(axis=1) / np.maximum(n, 1), np.nan)
        dev = np.where(ok, x - mean[:, None], 0.0)
        std = np.where(n >= 2, np.sqrt((dev ** 2).sum(axis=1) / np.maximum(n - 1, 1)), np.nan)
    return {"n": n, "mean": mean, "std": std}


# --------------------------------------------------------------------------- multiplicity

def holm(p_values: ArrayLike) -> np.ndarray:
    """Holm (1979) step-down adjusted p-values, in the input order and shape.

    With the m non-NaN p-values sorted ``p_(1) <= ... <= p_(m)``, the adjusted value is
    ``min(1, max_{j <= i} (m - j + 1) * p_(j))``: monotone in the sorted order and capped at
    1. NaN entries (tests that could not be computed) stay NaN and do not count in m.
    Equals ``statsmodels.stats.multitest.multipletests(p, method="holm")[1]``.
    """
    p = np.asarray(p_values, dtype=float)
    flat = p.ravel()
    ok = ~np.isnan(flat)
    if ((flat[ok] < 0.0) | (flat[ok] > 1.0)).any():
        raise ValueError("p_values must lie in [0, 1] (or be NaN)")
    out = np.full(flat.shape, np.nan)
    vals = flat[ok]
    m = vals.size
    if m:
        order = np.argsort(vals, kind="stable")
        scaled = (m - np.arange(m)) * vals[order]
        adjusted = np.minimum(np.maximum.accumulate(scaled), 1.0)
        res = np.empty(m)
        res[order] = adjusted
        out[ok] = res
    return out.reshape(p.shape)


# --------------------------------------------------------------------------- power, seeds

def _paired_t_power(effect_size: float, n: int, alpha: float) -> float:
    """Power of the two-sided one-sample/paired t-test at standardised effect ``delta/sd``.

    ``P(T > c) + P(T < -c)`` with ``T ~ nct(n-1, effect_size*sqrt(n))``, ``c = t_{1-alpha/2}``.
    The lower tail is computed as ``P(T' > c)`` with ``T' = -T ~ nct(n-1, -nc)``: SciPy's
    ``nct.cdf`` returns nan far in the left tail, its ``sf`` underflows cleanly to 0.
    """
    df = n - 1
    crit = stats.t.isf(alpha / 2.0, df)
    nc = effect_size * math.sqrt(n)
    return float(stats.nct.sf(crit, df, nc) + stats.nct.sf(crit, df, -nc))


def min_detectable_lift(sd_diff: float, n: int, *, alpha: float = 0.05,
                        power: float = 0.8) -> float:
    """Smallest true mean paired difference detected with probability ``power``.

    Solves ``power(delta) = P(|T| > t_{1-alpha/2, n-1})`` with
    ``T ~ nct(df=n-1, nc=delta*sqrt(n)/sd_diff)`` for ``delta`` by Brent's method (the normal
    approximation ``(z_{1-alpha/2} + z_power) * sd / sqrt(n)`` is too optimistic for the few
    seeds typical of ablations). nan if ``n < 2`` or ``sd_diff`` is nan; 0 if ``sd_diff == 0``.
    """
    _check_confidence(alpha, "alpha")
    _check_confidence(power, "power")
    if power <= alpha:
        # power(0) == alpha, so the question has no meaningful answer.
        raise ValueError(f"power must exceed alpha, got power={power} and alpha={alpha}")
    if math.isnan(sd_diff) or n < 2:
        return math.nan
    if sd_diff < 0 or math.isinf(sd_diff):
        raise ValueError(f"sd_diff must be a finite non-negative number, got {sd_diff!r}")
    if n != int(n):
        raise ValueError(f"n must be a whole number of pairs, got {n!r}")
    n = int(n)
    if sd_diff == 0:
        return 0.0

    def gap(es: float) -> float:
        return _paired_t_power(es, n, alpha) - power

    # power is increasing in the effect size; bracket the root by doubling.
    hi = 1.0
    while gap(hi) < 0.0:
        hi *= 2.0
        if hi > 1e6:   # pragma: no cover - would need alpha/power absurdly close to 0/1
            return math.inf
    es = optimize.brentq(gap, 0.0, hi, xtol=1e-14, rtol=1e-14, maxiter=500)
    return float(es * sd_diff)


def seeds_for_ci_width(sd_diff: float, target_half_width: float, *, confidence: float = 0.95,
                       max_seeds: int = 1000) -> int:
    """Smallest ``n >= 2`` with ``t_{(1+c)/2, n-1} * sd_diff / sqrt(n) <= target_half_width``.

    The half-width decreases with n, so this is the first n meeting the target. Returns
    ``max_seeds`` when even that many seeds do not meet it (callers cap adaptive seeding
    there anyway; recompute the width to tell the two apart). 2 when ``sd_diff == 0``.
    """
    confidence = _check_confidence(confidence)
    if math.isnan(sd_diff) or sd_diff < 0 or math.isinf(sd_diff):
        raise ValueError(f"sd_diff must be a finite non-negative number, got {sd_diff!r}")
    if not target_half_width > 0:
        raise ValueError(f"target_half_width must be > 0, got {target_half_width!r}")
    if max_seeds < 2:
        raise ValueError(f"max_seeds must be at least 2, got {max_seeds!r}")
    ns = np.arange(2, int(max_seeds) + 1)
    half = stats.t.ppf((1.0 + confidence) / 2.0, ns - 1) * sd_diff / np.sqrt(ns)
    hits = np.flatnonzero(half <= target_half_width)
    return int(ns[hits[0]]) if hits.size else int(max_seeds)


# --------------------------------------------------------------------------- adaptive seeding

def adaptive_wants_seed(differences: ArrayLike, tried: ArrayLike, *, target_half_width: float,
                        max_seeds: int, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Which arms get one more seed: the precision-only stopping rule of adaptive seeding.

    ``differences`` is (arms, seeds) of paired differences arm - baseline, NaN where a pair is
    missing; ``tried`` the seeds tried per arm (failed ones included). An arm gets another seed
    while its lift CI half-width ``t_{(1+c)/2, n-1} * sd / sqrt(n)`` is above
    ``target_half_width`` (or it has < 2 pairs, so no CI) and ``tried < max_seeds``. The rule
    never looks at the mean or the sign of the CI: stopping once a CI excludes 0 is optional
    stopping (at 3..10 seeds it makes 10-19% of null arms "significant" at a nominal 5%).
    Returns ``(more, half_width)``, both of length arms (half-width NaN under 2 pairs).
    """
    confidence = _check_confidence(confidence)
    d = np.atleast_2d(np.asarray(differences, dtype=float))
    rows = summarize_rows(d)
    n = rows["n"]
    # t quantiles per distinct n, not per arm: the rule runs on ~10^6 simulated arms in tests
    quantile = stats.t.ppf((1.0 + confidence) / 2.0, np.arange(1, max(int(n.max(initial=0)), 2)))
    with np.errstate(invalid="ignore", divide="ignore"):
        half = np.where(n >= 2, quantile[np.clip(n - 2, 0, None)] * rows["std"]
                        / np.sqrt(np.maximum(n, 1)), np.nan)
    precise = (n >= 2) & (half <= target_half_width)
    more = ~precise & (np.asarray(tried) < max_seeds)
    return more, half


# Calibration grid of sd / target_half_width: the null law of the final t statistic depends on
# the true spread only through this ratio (the t statistic and the rule are scale-free), so
# the sup over a wide grid bounds the false-positive rate whatever the spread.
_RATIO_GRID = np.geomspace(0.05, 20.0, 25)
_CALIBRATION_REPS = 20_000


@lru_cache(maxsize=8)
def _adaptive_null_p(initial: int, max_seeds: int, confidence: float) -> np.ndarray:
    """(ratios, reps) sorted nominal t-test p-values of null arms run through the adaptive rule.

    Why a simulation: under precision-only stopping the mean of the differences is independent
    of every variance estimate (normal data), but the final sd is not: arms stop when their sd
    happens to be small, so the nominal t-test rejects too often (up to ~9% at 5% for 3..10
    seeds). Simulating the same rule gives the null distribution of the nominal p-value.
    """
    rng = np.random.default_rng(20241124)
    k, reps = _RATIO_GRID.size, _CALIBRATION_REPS
    x = rng.standard_normal((k * reps, max_seeds)) * np.repeat(_RATIO_GRID, reps)[:, None]
    n = _run_adaptive(x, initial, max_seeds, 1.0, confidence)
    p = _nominal_t_p(x, n)
    return np.sort(np.nan_to_num(p, nan=1.0).reshape(k, reps), axis=1)


def _run_adaptive(x: np.ndarray, initial: int, max_seeds: int, target: float,
                  confidence: float) -> np.ndarray:
    """Seeds each row of ``x`` (rows: arms, columns: seeds in order) ends with under the rule."""
    n = np.full(x.shape[0], min(initial, x.shape[1]))
    active = np.arange(x.shape[0])     # a row that stopped keeps its data, so it stays stopped
    cols = np.arange(x.shape[1])[None, :]
    while active.size:
        seen = np.where(cols < n[active, None], x[active], np.nan)
        more, _ = adaptive_wants_seed(seen, n[active], target_half_width=target,
                                      max_seeds=max_seeds, confidence=confidence)
        active = active[more]
        n[active] += 1
    return n


def _nominal_t_p(x: np.ndarray, n: np.ndarray) -> np.ndarray:
    seen = np.where(np.arange(x.shape[1])[None, :] < n[:, None], x, np.nan)
    return paired_lifts(seen, np.zeros(x.shape[1]))["p_value"]


def adaptive_p_values(p_nominal: ArrayLike, *, initial: int, max_seeds: int,
                      confidence: float = 0.95) -> np.ndarray:
    """Paired t-test p-values corrected for adaptive seeding (`adaptive_wants_seed`).

    ``p_adj = max over sd/target ratios of P(nominal p <= observed p)`` under H0, from a seeded
    simulation of the rule started at ``initial`` seeds, capped at ``max_seeds``, stopping at
    CI level ``confidence``; estimated as ``(k + 1) / (B + 1)`` so never 0. A valid p-value for
    any true spread (up to Monte Carlo error of ~1/B); NaN stays NaN.
    """
    p = np.asarray(p_nominal, dtype=float)
    sims = _adaptive_null_p(int(initial), int(max_seeds), float(confidence))
    reps = sims.shape[1]
    flat = p.ravel()
    ok = ~np.isnan(flat)
    out = np.full(flat.shape, np.nan)
    if ok.any():
        k = np.stack([np.searchsorted(row, flat[ok], side="right") for row in sims])
        out[ok] = np.minimum(1.0, (k.max(axis=0) + 1) / (reps + 1))
    return out.reshape(p.shape)


def adaptive_level(alpha: float, *, initial: int, max_seeds: int, confidence: float = 0.95) -> float:
    """The nominal level whose t-test rejects with probability <= ``alpha`` after adaptive
    seeding: the CI at ``1 - adaptive_level`` excludes 0 exactly when ``adaptive_p_values``
    is below ``alpha``, so interval and star agree."""
    sims = _adaptive_null_p(int(initial), int(max_seeds), float(confidence))
    reps = sims.shape[1]
    # largest nominal p whose corrected value (k+1)/(B+1) stays below alpha, for every ratio
    k_max = int(math.floor(alpha * (reps + 1) - 1))
    if k_max < 1:
        return 0.0
    return float(sims[:, k_max - 1].min())


# --------------------------------------------------------------------------- factorial designs

@dataclass(frozen=True)
class Effect:
    """One estimable factorial effect.

    ``term`` holds factor indices: ``(i,)`` main effect, ``(i, j)`` two-factor interaction.
    ``estimate = 2 * beta`` where ``beta`` is the OLS coefficient of the term's ±1 contrast
    column; with balanced data this is ``mean(y | +1) - mean(y | -1)``. ``std_err = 2 * se(beta)``
    with ``se`` from ``sigma^2 (X^T X)^-1``; ``ci = estimate ± t_{(1+c)/2, df} * std_err`` and a
    two-sided t ``p_value`` on the residual df (all nan when df == 0). ``aliases`` are the other
    terms (order <= max_order) whose contrast equals ± this one's over the design's runs: the
    estimate is of their signed sum.
    """

    term: tuple[int, ...]
    estimate: float
    std_err: float
    ci_low: float
    ci_high: float
    p_value: float
    aliases: tuple[tuple[int, ...], ...]


def _alias_classes(design: np.ndarray, max_order: int
                   ) -> list[tuple[tuple[int, ...], np.ndarray, tuple[tuple[int, ...], ...]]]:
    """``(representative, contrast column, aliases)`` for every estimable alias class.

    Terms are enumerated by order then lexicographically, so the first term of a class is its
    representative. Terms whose contrast is constant are confounded with the intercept (for
    example ABCD in a 2^(4-1) design with I = ABCD) and are not estimable at all: dropped.
    """
    runs, k = design.shape
    classes: dict[bytes, list] = {np.ones(runs, dtype=np.int8).tobytes(): [(), None, []]}
    for order in range(1, max_order + 1):
        for term in combinations(range(k), order):
            col = np.prod(design[:, term], axis=1).astype(np.int8)
            key = (col * col[0]).tobytes()   # sign-normalised: equal up to ± <=> equal keys
            if key in classes:
                classes[key][2].append(term)
            else:
                classes[key] = [term, col, []]
    return [(rep, col, tuple(al)) for rep, col, al in classes.values() if rep != ()]


def _check_design(design: ArrayLike, y: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    d = np.asarray(design, dtype=float)
    if d.ndim != 2 or d.shape[0] == 0 or d.shape[1] == 0:
        raise ValueError(f"design must be a non-empty (runs, factors) array, got shape {d.shape}")
    if not np.isin(d, (-1.0, 1.0)).all():
        raise ValueError("design must contain only -1 and +1 (two-level coding)")
    obs = np.asarray(y, dtype=float)
    if obs.ndim == 1:
        obs = obs[:, None]   # a single seed
    if obs.ndim != 2 or obs.shape[0] != d.shape[0]:
        raise ValueError(
            f"y must have shape (runs, seeds) with runs = {d.shape[0]}, got shape {obs.shape}")
    if np.isinf(obs).any():
        raise ValueError("y contains infinite values; use NaN for missing or failed trials")
    return d.astype(np.int8), obs


def factorial_effects(design: ArrayLike, y: ArrayLike, *, max_order: int = 2,
                      block_by_seed: bool = True, confidence: float = 0.95) -> list[Effect]:
    """Main effects and interactions of a two-level design, by OLS with seed blocks.

    ``design`` is (runs, k) of ±1 (full or fractional factorial, Plackett-Burman); ``y`` is
    (runs, seeds) with NaN for missing or failed trials (a 1-D ``y`` is one seed). The model is
    ``y_rs = mu + sum_T beta_T x_T(r) [+ gamma_s] + e_rs`` over the observed cells, with one
    column per alias class of terms up to ``max_order`` (see `Effect`). Seed fixed effects
    ``gamma_s`` (reference: first seed with data) are included when ``block_by_seed`` and more
    than one seed has data: every run is trained with the same seeds, so the seed offset is
    removed from the error instead of inflating it. Missing cells just leave the fit
    unbalanced; least squares handles that. ``df = observations - columns``; with ``df == 0``
    (saturated) the estimates are returned with nan std_err/CI/p.

    If the interaction columns make the fit rank-deficient (Plackett-Burman designs, where
    interactions are partially confounded with many main effects, or runs lost to NaN), the
    interactions are dropped, a RuntimeWarning says so, and only main effects are fitted.
    Raises ValueError if even the main effects are not estimable from the observed cells.

    Returns the effects sorted by ``|estimate|``, largest first.
    """
    confidence = _check_confidence(confidence)
    if isinstance(max_order, bool) or int(max_order) != max_order or max_order < 1:
        raise ValueError(f"max_order must be an integer >= 1, got {max_order!r}")
    d, obs = _check_design(design, y)
    classes = _alias_classes(d, min(int(max_order), d.shape[1]))

    run_idx, seed_idx = np.nonzero(~np.isnan(obs))
    if run_idx.size == 0:
        raise ValueError("y has no observed values (all NaN)")
    response = obs[run_idx, seed_idx]
    seeds = np.unique(seed_idx)
    blocks = [(seed_idx == s).astype(float) for s in seeds[1:]] if block_by_seed else []

    def model(cls: list) -> np.ndarray:
        cols = [np.ones(run_idx.size)] + [col[run_idx].astype(float) for _, col, _ in cls]
        return np.column_stack(cols + blocks)

    X = model(classes)
    if np.linalg.matrix_rank(X) < X.shape[1]:
        mains = [c for c in classes if len(c[0]) == 1]
        if len(mains) < len(classes):
            warnings.warn(
                "interaction columns make the factorial fit rank-deficient (Plackett-Burman "
                "design or missing runs); fitting main effects only", RuntimeWarning,
                stacklevel=2)
            classes, X = mains, model(mains)
        if np.linalg.matrix_rank(X) < X.shape[1]:
            raise ValueError(
                "main effects are not estimable from the observed cells (too many missing "
                "runs for this design)")

    beta, *_ = np.linalg.lstsq(X, response, rcond=None)
    df = run_idx.size - X.shape[1]
    if df > 0:
        resid = response - X @ beta
        sigma2 = float(resid @ resid) / df
        se = np.sqrt(np.diag(np.linalg.pinv(X.T @ X)) * sigma2)
        t_crit = stats.t.ppf((1.0 + confidence) / 2.0, df)
    effects = []
    for j, (term, _, aliases) in enumerate(classes, start=1):
        est = 2.0 * float(beta[j])
        if df > 0:
            err = 2.0 * float(se[j])
            low, high = est - t_crit * err, est + t_crit * err
            if err > 0:
                p = float(2.0 * stats.t.sf(abs(est / err), df))
            else:   # exact fit: same convention as paired_lift with zero spread
                p = 0.0 if est != 0 else 1.0
        else:
            err = low = high = p = math.nan
        effects.append(Effect(term=term, estimate=est, std_err=err, ci_low=low, ci_high=high,
                              p_value=p, aliases=aliases))
    # stable sort: ties keep the order-then-lexicographic term order
    return sorted(effects, key=lambda e: -abs(e.estimate))
