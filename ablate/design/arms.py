"""Which tricks each arm of a design has: pure functions of the spec's tricks and design.

Its own module (below both `ablate.design.spec` and `ablate.design.plan`) so that the spec's load-time
checks can ask which tricks share an arm without importing the planner (no import cycle).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from ablate.design.spec import Spec

LIFT_DESIGNS = ("explicit", "one_at_a_time", "cumulative", "full_factorial", "fractional_factorial",
                "plackett_burman")
FACTORIAL_DESIGNS = ("full_factorial", "fractional_factorial", "plackett_burman")


def two_level_design(spec: Spec):
    """The factorial design object for factorial kinds (None for the others)."""
    from ablate.design import factorial

    keys = list(spec.tricks)
    kind = spec.design.kind
    if kind == "full_factorial":
        return factorial.full_factorial(keys)
    if kind == "fractional_factorial":
        return factorial.fractional_factorial(keys, resolution=spec.design.resolution, runs=spec.design.runs)
    if kind == "plackett_burman":
        return factorial.plackett_burman(keys, foldover=spec.design.foldover)
    return None


def flipped_factors(matrix: np.ndarray) -> list[int]:
    """Columns `baseline_first` negates (none when the design already has an all-off run)."""
    m = np.asarray(matrix)
    if (m == -1).all(axis=1).any():
        return []
    return [int(i) for i in np.flatnonzero(m[0] == 1)]


def baseline_first(matrix: np.ndarray) -> np.ndarray:
    """Rows reordered so an all-off row comes first. Flipping a column's sign keeps a two-level
    design's balance, orthogonality and alias structure, so when no row is all -1 the columns
    that are +1 in row 0 are flipped (which trick level is called 'on' does not matter to the
    design, only that the baseline is run)."""
    m = np.array(matrix, dtype=np.int8)
    off = np.flatnonzero((m == -1).all(axis=1))
    if len(off) == 0:
        m[:, m[0] == 1] *= -1
        off = np.array([0])
    order = [int(off[0])] + [i for i in range(len(m)) if i != off[0]]
    return m[order]


def arm_tricks(spec: Spec) -> list[tuple[str, ...]]:
    """The trick keys of each arm, in design order (arm 0 first)."""
    keys = list(spec.tricks)
    kind = spec.design.kind
    if kind == "explicit":
        # an explicit arm is a tuple of keys or an ExplicitArm with `.tricks`
        return [tuple(getattr(a, "tricks", a)) for a in spec.design.arms]
    if kind == "one_at_a_time":
        return [()] + [(k,) for k in keys]
    if kind == "leave_one_out":
        return [tuple(keys)] + [tuple(x for x in keys if x != k) for k in keys]
    if kind == "cumulative":
        return [tuple(keys[:i]) for i in range(len(keys) + 1)]
    m = baseline_first(two_level_design(spec).matrix)
    return [tuple(k for k, v in zip(keys, row) if v > 0) for row in m]
