"""One arm over seeds, and the paired lift of an arm over the baseline: t interval, tests, TOST."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from ablate.stats._checks import TIE_RTOL, as_1d, check_confidence, snap_ties, t_interval, tie_tolerance

TESTS = ("t", "wilcoxon", "permutation")


def _check_test(test: str) -> None:
    if test not in TESTS:
        raise ValueError(f"test must be one of {TESTS}, got {test!r}")


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
    confidence = check_confidence(confidence)
    x = as_1d(values, "values")
    x = x[~np.isnan(x)]
    n = int(x.size)
    mean = float(x.mean()) if n else math.nan
    std = float(x.std(ddof=1)) if n >= 2 else math.nan
    low, high = t_interval(mean, std, n, confidence)
    return Summary(n=n, mean=mean, std=std, ci_low=low, ci_high=high)


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


# --------------------------------------------------------------------------- paired lift

@dataclass(frozen=True)
class PairedLift:
    """Lift of an arm over the baseline from seed-paired differences ``d = arm - baseline``.

    ``n`` pairs with both sides present; ``mean`` and ``std`` (ddof=1) of ``d``;
    ``[ci_low, ci_high] = mean ± t_{(1+c)/2, n-1} * std / sqrt(n)``; two-sided ``p_value``
    of ``test``. See `paired_lift` for the edge cases.
    """

    n: int
    mean: float
    std: float
    ci_low: float
    ci_high: float
    p_value: float
    test: str
    zero_variance: bool = False   # every difference is the same (to the tie tolerance)


def _paired_p_value(d: np.ndarray, test: str, tol: float) -> float:
    """Two-sided p-value of H0: the differences are centred on 0 (n >= 2). The t-test has none
    (NaN) when every difference is the same to ``tol``: t is 0/0 or x/0, not computable."""
    if test == "t":
        if np.ptp(d) <= tol:
            return math.nan
        return float(stats.ttest_rel(d, np.zeros_like(d)).pvalue)
    d = snap_ties(d, tol)
    if not d.any():
        # Every seed gave the same value: no evidence of any lift. SciPy returns nan for
        # Wilcoxon with n > 13 (all zeros dropped).
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
    x = as_1d(d, "d")
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


def smallest_p_value(test: str, n: int, *, zeros: int = 0) -> float:
    """The smallest two-sided p-value ``test`` can give with ``n`` pairs of which ``zeros`` have
    a zero difference: ``2 / 2**(n - zeros)`` for the sign-flip and the exact Wilcoxon test (a
    zero difference flips to itself, and Wilcoxon drops it), 0 for the t-test."""
    _check_test(test)
    if isinstance(zeros, bool) or int(zeros) != zeros or not 0 <= zeros <= max(n, 0):
        raise ValueError(f"zeros must be a whole number in [0, n={n}], got {zeros!r}")
    return 0.0 if test == "t" else min(1.0, 2.0 / 2.0 ** (n - int(zeros)))


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
      distribution. The smallest attainable p-value is ``2 / 2**n`` (0.25 for n = 3), so
      Wilcoxon cannot reject at 5% with fewer than 6 non-zero pairs.

    Ties are judged with a tolerance (``TIE_RTOL`` times the largest |value| of the pairs):
    accuracies stored as ``100 * correct / n`` make equal-count differences disagree in the
    last bits, and exact equality would miss those ties. Differences that equal each other (or
    0) to that tolerance are ranked, dropped and flipped as equal by Wilcoxon and the sign-flip test.

    Edge cases:

    * n == 0: everything nan. n == 1: ``mean`` is the single difference, the rest nan.
    * all differences the same to the tolerance (zero variance): ``std = 0``, CI
      ``[mean, mean]`` and ``zero_variance`` True. The t-test's ``p_value`` is NaN: its
      statistic is not computable, and its limit (p = 0) would survive any correction although
      a few discrete accuracies tie by chance. Wilcoxon and the sign-flip test use signs and
      ranks only: their usual finite p-value (1.0 when every difference is 0).

    Raises ValueError for arrays of different lengths, ``confidence`` outside (0, 1) or an
    unknown ``test``.
    """
    confidence = check_confidence(confidence)
    _check_test(test)
    a, b = as_1d(arm, "arm"), as_1d(baseline, "baseline")
    if a.shape != b.shape:
        raise ValueError(
            f"arm and baseline must be aligned by seed (same length), got {a.size} and {b.size}")
    ok = ~(np.isnan(a) | np.isnan(b))
    d = (a - b)[ok]
    n = int(d.size)
    mean = float(d.mean()) if n else math.nan
    if n < 2:
        return PairedLift(n=n, mean=mean, std=math.nan, ci_low=math.nan, ci_high=math.nan,
                          p_value=math.nan, test=test)
    tol = tie_tolerance(a[ok], b[ok])
    tied = bool(np.ptp(d) <= tol)
    std = 0.0 if tied else float(d.std(ddof=1))
    low, high = t_interval(mean, std, n, confidence)
    return PairedLift(n=n, mean=mean, std=std, ci_low=low, ci_high=high,
                      p_value=_paired_p_value(d, test, tol), test=test, zero_variance=tied)


def paired_lifts(arms: ArrayLike, baseline: ArrayLike, *, confidence: float = 0.95,
                 test: str = "t") -> dict[str, np.ndarray]:
    """`paired_lift` of every row of ``arms`` (m, seeds) against ``baseline`` (seeds,), at once.

    Returns arrays of length m under the `PairedLift` field names (n, mean, std, ci_low,
    ci_high, p_value, zero_variance), with the same values and edge cases as calling
    `paired_lift` per row, plus ``n_nonzero``: the pairs whose difference is not 0 (to the tie
    tolerance). The t-test path is vectorised (a report of a 2^10 factorial has 1,024 arms, a
    simulation 10^6).
    """
    confidence = check_confidence(confidence)
    _check_test(test)
    a = np.atleast_2d(np.asarray(arms, dtype=float))
    b = as_1d(baseline, "baseline")
    if a.shape[1] != b.size:
        raise ValueError(f"arms have {a.shape[1]} seeds but baseline has {b.size}")
    if np.isinf(a).any():
        raise ValueError("arms contain infinite values; use NaN for missing seeds")
    d = a - b[None, :]
    ok = ~np.isnan(d)
    n = ok.sum(axis=1)
    tol = TIE_RTOL * np.where(ok, np.maximum(np.abs(a), np.abs(b)[None, :]), 0.0).max(axis=1, initial=0.0)
    hi = np.where(ok, d, -np.inf).max(axis=1, initial=-np.inf)
    lo = np.where(ok, d, np.inf).min(axis=1, initial=np.inf)
    tied = (n >= 2) & (hi - lo <= tol)
    d0 = np.where(ok, d, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, d0.sum(axis=1) / np.maximum(n, 1), np.nan)
        dev = np.where(ok, d - mean[:, None], 0.0)
        std = np.where(n >= 2, np.sqrt((dev ** 2).sum(axis=1) / np.maximum(n - 1, 1)), np.nan)
        std = np.where(tied, 0.0, std)
        df = np.maximum(n - 1, 1)
        half = stats.t.ppf((1.0 + confidence) / 2.0, df) * std / np.sqrt(np.maximum(n, 1))
        low, high = np.where(n >= 2, mean - half, np.nan), np.where(n >= 2, mean + half, np.nan)
        if test == "t":
            p = 2 * stats.t.sf(np.abs(mean / (std / np.sqrt(n))), df)
            p = np.where(tied, np.nan, p)
        else:
            p = np.array([_paired_p_value(row[~np.isnan(row)], test, t) if k >= 2 else np.nan
                          for row, k, t in zip(d, n, tol)])
        p = np.where(n >= 2, p, np.nan)
    nonzero = (ok & (np.abs(d) > tol[:, None])).sum(axis=1)
    return {"n": n, "mean": mean, "std": std, "ci_low": low, "ci_high": high, "p_value": p,
            "zero_variance": tied, "n_nonzero": nonzero}


# --------------------------------------------------------------------------- equivalence

def equivalence_p_values(mean: ArrayLike, std: ArrayLike, n: ArrayLike, margin: float) -> np.ndarray:
    """Two one-sided t-tests (Schuirmann 1987) of H0: |true lift| >= ``margin``, vectorised.

    With ``se = std / sqrt(n)`` on n-1 df: ``p_low = P(T >= (mean + margin) / se)`` tests
    lift <= -margin, ``p_high = P(T <= (mean - margin) / se)`` tests lift >= margin, and the
    p-value is ``max(p_low, p_high)``. It is below alpha exactly when the ``1 - 2 alpha`` t
    interval lies inside ``(-margin, margin)``. NaN where n < 2 or std is 0 or NaN (no test).
    """
    if not (isinstance(margin, (int, float)) and math.isfinite(margin) and margin > 0):
        raise ValueError(f"margin must be a finite number > 0, got {margin!r}")
    m, s = np.asarray(mean, dtype=float), np.asarray(std, dtype=float)
    k = np.asarray(n, dtype=float)
    ok = (k >= 2) & (s > 0) & np.isfinite(m) & np.isfinite(s)
    with np.errstate(invalid="ignore", divide="ignore"):
        se = s / np.sqrt(np.where(ok, k, 2.0))
        df = np.where(ok, k - 1, 1.0)
        p = np.maximum(stats.t.sf((m + margin) / se, df), stats.t.cdf((m - margin) / se, df))
    return np.where(ok, p, np.nan)
