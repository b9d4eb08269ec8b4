"""The one metric-direction rule, used by the spec's `metric`, a search's `metrics` and
`early_stop`: whether larger or smaller is better, and whether a given `mode` may say so."""

from __future__ import annotations

BUILTIN_METRICS = {"val_acc": "max", "val_loss": "min"}
DEFAULT_MIN_LIFT_PP = 1.0   # metric.min_lift of an accuracy metric when the spec gives none


def is_accuracy(metric: str) -> bool:
    """Whether a metric is an accuracy in percent (its lifts are in pp)."""
    return metric.endswith("acc") or "accuracy" in metric


def metric_direction(name: str, mode: str | None, *, known: str | None = None) -> str | None:
    """'max' or 'min' for metric `name`: `mode` when given, else what is known of the metric (a
    built-in metric's own direction, else `known`: e.g. the spec metric's mode for the metric it
    names); None when nothing says. ValueError when `mode` contradicts what is known."""
    right = BUILTIN_METRICS.get(name) or known
    if mode is not None and right is not None and mode != right:
        basis = "" if name in BUILTIN_METRICS else " (the spec metric says so)"
        raise ValueError(f"metric '{name}' is better when {'larger' if right == 'max' else 'smaller'}{basis}: "
                         f"mode must be '{right}' (or left out), got '{mode}'")
    return mode or right


def required_direction(name: str, mode: str | None, *, example: str = "max") -> str:
    """`metric_direction` of a metric that must have one: ValueError saying how to give it."""
    direction = metric_direction(name, mode)
    if direction is None:
        raise ValueError(f"metric '{name}' is not built in ({', '.join(BUILTIN_METRICS)}): give its "
                         f"direction, e.g. {{name: {name}, mode: {example}}}")
    return direction
