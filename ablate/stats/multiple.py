"""Multiple testing: Holm's step-down adjustment."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def holm(p_values: ArrayLike, *, untestable: ArrayLike | None = None, axis: int | None = None) -> np.ndarray:
    """Holm (1979) step-down adjusted p-values, in the input order and shape.

    With the m non-NaN p-values of a family sorted ``p_(1) <= ... <= p_(m)``, the adjusted value
    is ``min(1, max_{j <= i} (m - j + 1) * p_(j))``: monotone in the sorted order and capped at
    1. Holm controls the family-wise error rate without assuming independence and is uniformly
    more powerful than Bonferroni. Equals
    ``statsmodels.stats.multitest.multipletests(p, method="holm")[1]``.

    * NaN entries (tests that could not be computed) stay NaN and do not count in m, except
      those marked ``untestable`` (a boolean mask of the same shape): they count in m as p = 1
      and come back NaN. A zero-variance t-test has no p-value, but dropping it from the family
      after seeing the data would loosen every other arm's threshold.
    * ``axis=None`` adjusts all entries as one family; ``axis=k`` adjusts each 1-D slice along
      axis k as its own family (vectorised: a simulation adjusts thousands of families at once).
    """
    p = np.asarray(p_values, dtype=float)
    finite = p[~np.isnan(p)]
    if ((finite < 0.0) | (finite > 1.0)).any():
        raise ValueError("p_values must lie in [0, 1] (or be NaN)")
    mask = np.zeros(p.shape, dtype=bool) if untestable is None else np.asarray(untestable, dtype=bool)
    if mask.shape != p.shape:
        raise ValueError(f"untestable must have the shape of p_values {p.shape}, got {mask.shape}")
    filled = np.where(mask & np.isnan(p), 1.0, p)
    if axis is None:
        flat = _holm_rows(filled.reshape(1, -1))
        out = flat.reshape(p.shape)
    else:
        moved = np.moveaxis(filled, axis, -1)
        out = np.moveaxis(_holm_rows(moved.reshape(-1, moved.shape[-1])).reshape(moved.shape), -1, axis)
    return np.where(np.isnan(p), np.nan, out)


def _holm_rows(p: np.ndarray) -> np.ndarray:
    """Holm within each row of a 2-D array; NaN entries are left out of their row's family."""
    rows, width = p.shape
    out = np.full(p.shape, np.nan)
    if width == 0:
        return out
    m = (~np.isnan(p)).sum(axis=1, keepdims=True)
    order = np.argsort(np.where(np.isnan(p), np.inf, p), axis=1, kind="stable")
    ranked = np.take_along_axis(p, order, axis=1)
    scaled = (m - np.arange(width)[None, :]) * ranked          # NaN sorts last and stays NaN
    adjusted = np.minimum(np.fmax.accumulate(scaled, axis=1), 1.0)
    np.put_along_axis(out, order, adjusted, axis=1)
    return np.where(np.isnan(p), np.nan, out)
