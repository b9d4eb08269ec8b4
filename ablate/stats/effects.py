"""Two-level factorial designs: main effects and interactions by OLS with seed blocks."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from itertools import combinations

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from ablate.stats._checks import TIE_RTOL, check_confidence


@dataclass(frozen=True)
class Effect:
    """One estimable factorial effect.

    ``term`` holds factor indices: ``(i,)`` main effect, ``(i, j)`` two-factor interaction.
    ``estimate = 2 * beta`` where ``beta`` is the OLS coefficient of the term's ±1 contrast
    column; with balanced data this is ``mean(y | +1) - mean(y | -1)``. ``std_err = 2 * se(beta)``
    with ``se`` from ``sigma^2 (X^T X)^-1``; ``ci = estimate ± t_{(1+c)/2, df} * std_err`` and a
    two-sided t ``p_value`` on the residual df (all nan when df == 0). ``aliases`` are the other
    terms (order <= max_order) whose contrast equals ± this one's over the design's runs: the
    estimate is of their signed sum. ``zero_variance``: the model fits the observations exactly
    (to the tie tolerance), so there is no error estimate: ``std_err`` 0, CI ``[estimate,
    estimate]`` and ``p_value`` NaN (counted as 1 in Holm), as a paired lift with zero spread.
    """

    term: tuple[int, ...]
    estimate: float
    std_err: float
    ci_low: float
    ci_high: float
    p_value: float
    aliases: tuple[tuple[int, ...], ...]
    zero_variance: bool = False


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
    confidence = check_confidence(confidence)
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
    exact = False
    if df > 0:
        resid = response - X @ beta
        sigma2 = float(resid @ resid) / df
        # Accuracies of 100 * correct / n leave residuals of ~1e-14 where the fit is exact (2.65%
        # of null 2^3 designs with one seed at 360 images): that is no error estimate, not p = 0.
        exact = math.sqrt(sigma2) <= TIE_RTOL * float(np.abs(response).max())
        se = np.zeros(X.shape[1]) if exact else np.sqrt(np.diag(np.linalg.pinv(X.T @ X)) * sigma2)
        t_crit = stats.t.ppf((1.0 + confidence) / 2.0, df)
    est = 2.0 * beta[1:len(classes) + 1]
    if df > 0:
        err = 2.0 * se[1:len(classes) + 1]
        low, high = est - t_crit * err, est + t_crit * err
        with np.errstate(invalid="ignore", divide="ignore"):   # one vectorised call: simulations fit 10^4 designs
            p = np.full(est.shape, np.nan) if exact else 2.0 * stats.t.sf(np.abs(est / err), df)
    else:
        err = low = high = p = np.full(est.shape, np.nan)
    effects = [Effect(term=term, estimate=float(est[j]), std_err=float(err[j]), ci_low=float(low[j]),
                      ci_high=float(high[j]), p_value=float(p[j]), aliases=aliases, zero_variance=exact)
               for j, (term, _, aliases) in enumerate(classes)]
    # stable sort: ties keep the order-then-lexicographic term order
    return sorted(effects, key=lambda e: -abs(e.estimate))
