"""Power and seed counts of the paired t-test."""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize, stats

from ablate.stats._checks import check_confidence


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
    check_confidence(alpha, "alpha")
    check_confidence(power, "power")
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
    confidence = check_confidence(confidence)
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


def seeds_to_detect(lift: float, sd_diff: float, *, alpha: float, power: float = 0.8,
                    max_seeds: int = 1000) -> int | None:
    """Smallest ``n >= 2`` whose two-sided paired t-test at ``alpha`` detects a true lift of
    ``lift`` with probability ``power`` when the paired differences have SD ``sd_diff``
    (noncentral t, as `min_detectable_lift`); None when even ``max_seeds`` pairs do not.

    Every n is evaluated at once (one vectorised noncentral-t call), not searched one by one.
    """
    check_confidence(alpha, "alpha")
    check_confidence(power, "power")
    if not (math.isfinite(lift) and lift > 0):
        raise ValueError(f"lift must be a finite number > 0, got {lift!r}")
    if math.isnan(sd_diff) or sd_diff < 0 or math.isinf(sd_diff):
        raise ValueError(f"sd_diff must be a finite non-negative number, got {sd_diff!r}")
    if max_seeds < 2:
        raise ValueError(f"max_seeds must be at least 2, got {max_seeds!r}")
    if sd_diff == 0:
        return 2
    ns = np.arange(2, int(max_seeds) + 1)
    df = ns - 1
    crit = stats.t.isf(alpha / 2.0, df)
    nc = lift / sd_diff * np.sqrt(ns)
    reached = stats.nct.sf(crit, df, nc) + stats.nct.sf(crit, df, -nc) >= power
    hits = np.flatnonzero(reached)
    return int(ns[hits[0]]) if hits.size else None
