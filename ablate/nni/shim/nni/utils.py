"""`nni.utils.merge_parameter`, which NNI's examples use to lay tuned values over argparse defaults."""

from __future__ import annotations

from typing import Any


def merge_parameter(base_params: Any, override_params: dict) -> Any:
    """Set each tuned value on `base_params` (an argparse Namespace, or a dict), converted to the
    type of the value it replaces (an int default stays an int). A name the base lacks is an error,
    as in NNI: it is a typo in the search space."""
    if override_params is None:
        return base_params
    is_dict = isinstance(base_params, dict)
    for key, value in override_params.items():
        present = key in base_params if is_dict else hasattr(base_params, key)
        if not present:
            raise ValueError(f"key '{key}' of the tuned parameters is not among the base parameters")
        old = base_params[key] if is_dict else getattr(base_params, key)
        if old is not None and value is not None and not isinstance(value, type(old)):
            if isinstance(old, bool):
                raise TypeError(f"parameter '{key}': a true/false default cannot take {value!r}")
            value = type(old)(value)
        if is_dict:
            base_params[key] = value
        else:
            setattr(base_params, key, value)
    return base_params
