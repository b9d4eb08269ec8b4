"""Argument checks and the tie tolerance shared by the statistics modules."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

# Two metric values closer than TIE_RTOL x the largest |value| compared are the same value.
# Accuracies are stored as 100 * correct / n, so "one more image on every seed" gives paired
# differences that disagree in the last bits (~1e-14 pp), and a training script that reports a
# float32 accuracy rounds it at ~6e-8 of its size. A real difference is at least one test image
# (1e-3 pp on 100,000 images, 1e-5 of the value), so 1e-6 separates the two with room to spare.
TIE_RTOL = 1e-6


def check_confidence(confidence: float, name: str = "confidence") -> float:
    if not 0.0 < confidence < 1.0:   # also rejects nan
        raise ValueError(f"{name} must be in the open interval (0, 1), got {confidence!r}")
    return float(confidence)


def as_1d(values: ArrayLike, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of per-seed values, got shape {arr.shape}")
    if np.isinf(arr).any():
        # NaN means "seed missing"; an infinite accuracy is a bug upstream, not missing data.
        raise ValueError(f"{name} contains infinite values; use NaN for missing seeds")
    return arr


def t_interval(mean: float, sd: float, n: int, confidence: float) -> tuple[float, float]:
    """``mean ± t_{(1+c)/2, n-1} * sd / sqrt(n)``; nan for n < 2."""
    if n < 2:
        return math.nan, math.nan
    half = stats.t.ppf((1.0 + confidence) / 2.0, n - 1) * sd / math.sqrt(n)
    return float(mean - half), float(mean + half)


def tie_tolerance(*values: ArrayLike) -> float:
    """``TIE_RTOL`` times the largest finite |value| among ``values`` (0 when there is none)."""
    biggest = 0.0
    for v in values:
        a = np.abs(np.asarray(v, dtype=float))
        a = a[np.isfinite(a)]
        if a.size:
            biggest = max(biggest, float(a.max()))
    return TIE_RTOL * biggest


def snap_ties(d: np.ndarray, tol: float) -> np.ndarray:
    """``d`` with float noise removed from ties: |values| within ``tol`` of each other (chained)
    become one value, and those within ``tol`` of 0 become 0; signs are kept.

    Wilcoxon ranks |d| and drops zeros, and the sign-flip test compares sums: a tie broken in the
    last bits would change both."""
    d = np.asarray(d, dtype=float)
    if tol <= 0 or d.size == 0:
        return d.copy()
    a = np.abs(d)
    order = np.argsort(a, kind="stable")
    s = a[order]
    start = np.concatenate([[True], np.diff(s) > tol])
    rep = s[start][np.cumsum(start) - 1]      # each group's smallest |value|
    rep = np.where(rep <= tol, 0.0, rep)
    out = np.empty_like(d)
    out[order] = rep
    return np.sign(d) * out
