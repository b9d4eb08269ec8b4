"""`nni.utils.merge_parameter`, which NNI's examples use to lay tuned values over argparse defaults."""

from __future__ import annotations

from typing import Any


def merge_parameter(base_params: Any, override_params: dict | None) -> Any:
    """Set each tuned value on `base_params` (an argparse Namespace, or a dict) in place and return
    it. NNI's rules: a name the base lacks is an error (a typo in the search space); a value must
    have the type of the one it replaces, except that an int may replace a float (it becomes one)."""
    if override_params is None:
        return base_params
    is_dict = isinstance(base_params, dict)
    for key, value in override_params.items():
        present = key in base_params if is_dict else hasattr(base_params, key)
        if not present:
            raise ValueError(f"key '{key}' of the tuned parameters is not among the base parameters")
        old = base_params[key] if is_dict else getattr(base_params, key)
        if old is not None and not isinstance(value, type(old)):
            if isinstance(old, float) and isinstance(value, int):
                value = float(value)
            else:
                raise ValueError(f"parameter '{key}' must be a {type(old).__name__} like its default, got "
                                 f"{type(value).__name__} {value!r}")
        if is_dict:
            base_params[key] = value
        else:
            setattr(base_params, key, value)
    return base_params
