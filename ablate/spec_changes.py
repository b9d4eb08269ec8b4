"""What a changed spec means: a small edit of one experiment, or a different experiment."""

from __future__ import annotations

from typing import Any

# An edit of these sections makes a different experiment: its trials answer another question,
# so a spec that changes them under a stored name is refused (a new `name:` or `--replace`).
# Tricks, their parameters, seeds, arms and the metric are small edits: one experiment, and
# the trials whose resolved config did not change are reused.
EXPERIMENT_DEFINING = ("design", "data", "model", "recipe")

# Recipe fields that change how a trial runs but not what it computes (beyond floating point):
# not hashed into trial ids (ablate.trial), and toggling them keeps the experiment.
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
        if a != b:
            out.append(section)
    return out


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
    return [f"{k}: {a.get(k, '(unset)')!r} -> {b.get(k, '(unset)')!r}"
            for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]

