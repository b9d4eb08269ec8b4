"""What a changed spec means: a small edit of one experiment, or a different experiment."""

from __future__ import annotations

from typing import Any

# An edit of these sections makes a different experiment: its trials answer another question,
# so a spec that changes them under a stored name is refused (a new `name:` or `--replace`).
# Tricks, their parameters, seeds, arms and the metric are small edits: one experiment, and
# the trials whose resolved config did not change are reused. Of a search, what its study was
# created with is defining: the searched parameters (an Optuna study keeps their distributions:
# a widened range would continue the old study) and the metrics it optimises; its budget,
# sampler or validation round are edits (a longer search goes on where it stopped).
EXPERIMENT_DEFINING = ("design", "data", "model", "recipe", "search")

# Recipe fields that change how a trial runs but not what it computes (beyond floating point):
# not hashed into trial ids (ablate.design.trial), and toggling them keeps the experiment.
EXECUTION_ONLY_RECIPE = frozenset({"compile"})


def spec_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The experiment-defining sections that differ between two specs as plain data
    (`spec_to_dict` output): of `design` only its kind counts."""
    out = []
    for section in EXPERIMENT_DEFINING:
        a, b = old.get(section), new.get(section)
        if section == "design":
            a, b = (a or {}).get("kind"), (b or {}).get("kind")
        if section == "recipe":
            a, b = _defining_recipe(a), _defining_recipe(b)
        if section == "search":
            a, b = _defining_search(old), _defining_search(new)
        if a != b:
            out.append(section)
    return out


def _defining_search(spec: dict[str, Any]) -> dict[str, Any] | None:
    """What a spec's study is made of: its parameters' distributions and its metrics with their
    directions (the spec's `metric` when the search names none)."""
    search = spec.get("search")
    if not search:
        return None
    metric = spec.get("metric") or {}
    metrics = search.get("metrics") or [{"name": metric.get("name", "val_acc"), "mode": metric.get("mode")}]
    return {"params": search.get("params"), "metrics": [(m.get("name"), m.get("mode")) for m in metrics]}


def _defining_recipe(recipe: dict[str, Any] | None) -> dict[str, Any] | None:
    """A recipe without the fields that change only how trials run (`compile`)."""
    if recipe is None:
        return None
    return {k: v for k, v in recipe.items() if k not in EXECUTION_ONLY_RECIPE}


def section_differences(old: dict[str, Any], new: dict[str, Any], section: str) -> list[str]:
    """'field: old -> new' for each field of `section` that differs (for messages)."""
    a, b = old.get(section) or {}, new.get(section) or {}
    if section == "design":
        return [f"kind: {a.get('kind')} -> {b.get('kind')}"]
    if section == "search":
        a, b = _defining_search(old) or {}, _defining_search(new) or {}
        if not a or not b:
            return ["a search -> no search" if a else "no search -> a search"]
        pa, pb = a["params"] or {}, b["params"] or {}
        out = [f"params.{k}: {pa.get(k, '(unset)')} -> {pb.get(k, '(unset)')}"
               for k in sorted(set(pa) | set(pb)) if pa.get(k) != pb.get(k)]
        return out + ([f"metrics: {a['metrics']} -> {b['metrics']}"] if a["metrics"] != b["metrics"] else [])
    return [f"{k}: {a.get(k, '(unset)')!r} -> {b.get(k, '(unset)')!r}"
            for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]

