"""ablate: which training tricks really help an image classifier, by how much, how surely.

The public API (its functions are documented in `ablate.api`, Google-style docstrings)::

    import ablate
    result = ablate.run("quickstart", store="ablate.db")
    result.lift          # the lift table as a DataFrame

Names load on first use (PEP 562): `import ablate` imports neither torch, optuna, ray, plotly
nor pandas.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_API = ("load_spec", "plan", "run", "open_store", "trials", "epochs", "lift_table", "effects", "finalists",
        "status", "build_report", "write_report", "RunResult")
_ERRORS = ("AblateError", "SpecError", "StoreError", "ReportError", "DesignError", "DataError", "CompileError",
           "MetricNotReported")
_NAMES = {**{n: "ablate.api" for n in _API}, **{n: "ablate.errors" for n in _ERRORS},
          "Interrupted": "ablate.api", "Spec": "ablate.design.spec", "Plan": "ablate.design.plan", "Store": "ablate.store"}

__all__ = ["__version__", *_NAMES]


def __getattr__(name: str):
    if name == "api":     # the module behind these names, for its other functions (tricks, lr_find, ...)
        return importlib.import_module("ablate.api")
    module = _NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'ablate' has no attribute '{name}'")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value     # the next look-up skips this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_NAMES))
