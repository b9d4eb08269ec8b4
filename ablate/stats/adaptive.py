"""Adaptive seeds as an internal pilot: one seed count for every arm, chosen once, blind to the lifts.

The spec's seeds are a pilot. From their paired differences ``d = arm - baseline`` the rule
takes one number, the root mean square of every pilot difference of every arm,

    s = sqrt(mean over arms and pilot seeds of d^2),

and gives every arm the smallest n whose t interval would be ``target_half_width`` wide at
that SD (`pilot_seed_count`), capped at ``max_seeds``. It then runs the same n seeds on every
arm, baseline included, and the report analyses them as a fixed design of n seeds.

Why this rule (Wittes & Brittain 1990, "The role of internal pilot studies in increasing the
efficiency of clinical trials"; Kieser & Friede 2003, "Simple procedures for blinded sample
size adjustment that do not affect the type I error rate"):

* ``s`` uses the differences' magnitudes only, never their signs, so it is blind to every
  lift: under no effect (noise symmetric about 0) the signs are fair coins whatever n the
  rule picks, and the sign-flip test stays exact. The t-test's own SD is not what picks n:
  re-estimating n from each arm's sample SD (or stopping an arm when its CI is narrow) makes
  arms stop when their SD happens to be small, and the t-test then rejects up to 8% of null
  arms at a nominal 5%. Simulated with this rule, the t-test rejects at most 5.1-5.3% of null
  arms at a nominal 5% (normal differences, the worst case of a single arm, 2-5 pilot seeds,
  10^5 replications each) and at most alpha within Monte Carlo error for t3 and 360-image
  accuracy differences (tests/runner/test_adaptive.py). Under skewed differences the t-test itself
  rejects more than alpha at any fixed n (6.5% for Gamma(4)); the rule adds nothing to that.
* One n for all arms keeps every lift paired on the same seeds (the baseline runs them once),
  so step lifts of a cumulative design and the Holm family need no correction.
* It is decided once, from the pilot alone: a rerun recomputes the same n.

Memory is O(max_seeds) for the rule, whatever the cap.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from ablate.stats._checks import check_confidence


def pilot_sd(differences: ArrayLike) -> np.ndarray:
    """Root mean square of the pilot paired differences, pooled over arms and seeds: the last
    two axes of ``differences`` (..., arms, pilot seeds); NaN pairs are left out (NaN when
    none is left). Signs never enter: the estimate is blind to the lifts."""
    d = np.asarray(differences, dtype=float)
    if d.ndim < 2:
        raise ValueError(f"differences must be (..., arms, pilot seeds), got shape {d.shape}")
    if np.isinf(d).any():
        raise ValueError("differences contain infinite values; use NaN for missing pairs")
    ok = ~np.isnan(d)
    count = ok.sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, np.sqrt(np.where(ok, d * d, 0.0).sum(axis=(-2, -1)) / count), np.nan)


def pilot_seed_count(differences: ArrayLike, *, max_seeds: int, target_half_width: float,
                     confidence: float = 0.95) -> np.ndarray:
    """The seed count every arm runs to: the smallest n with
    ``t_{(1+c)/2, n-1} * s / sqrt(n) <= target_half_width`` for the blind pilot SD ``s``
    (`pilot_sd`), at least the pilot's seeds (and 2), at most ``max_seeds``; ``max_seeds``
    when the pilot has no pair at all.

    ``differences`` is (..., arms, pilot seeds); the result has the leading shape (an int for
    one experiment). Vectorised over the leading axes so simulations run the rule itself.
    """
    confidence = check_confidence(confidence)
    d = np.asarray(differences, dtype=float)
    if isinstance(max_seeds, bool) or int(max_seeds) != max_seeds or max_seeds < 2:
        raise ValueError(f"max_seeds must be a whole number >= 2, got {max_seeds!r}")
    if not (np.isfinite(target_half_width) and target_half_width > 0):
        raise ValueError(f"target_half_width must be a finite number > 0, got {target_half_width!r}")
    s = pilot_sd(d)
    initial = d.shape[-1]
    if initial > max_seeds:
        raise ValueError(f"the pilot has {initial} seeds, more than max_seeds={max_seeds}")
    ns = np.arange(2, int(max_seeds) + 1)
    # half-width per unit SD, decreasing in n: the count of n still too wide is the index of the first fit
    per_sd = stats.t.ppf((1.0 + confidence) / 2.0, ns - 1) / np.sqrt(ns)
    with np.errstate(invalid="ignore", divide="ignore"):
        too_wide = np.searchsorted(-per_sd, -(target_half_width / np.where(np.isnan(s), 1.0, s)), side="left")
    n = np.where(np.isnan(s), int(max_seeds), ns[np.minimum(too_wide, ns.size - 1)])
    n = np.where(too_wide >= ns.size, int(max_seeds), n)
    return np.clip(n, max(initial, 2), int(max_seeds)).astype(int)[()]
