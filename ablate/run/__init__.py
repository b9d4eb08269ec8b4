"""The run engine: trial sources decide what runs next, executors run trials and stream events,
the recorder (the only writer of the store) turns events into transitions.

Names load on first use, so `ablate.design.spec` can import `ablate.config.run` without the engine.
"""

from __future__ import annotations

import importlib

from ablate.callable_module import make_callable

_NAMES = {
    "Engine": "ablate.run.engine", "RunSummary": "ablate.run.engine", "run_trials": "ablate.run.engine",
    "Progress": "ablate.run.progress", "SilentProgress": "ablate.run.progress",
    "environment": "ablate.run.provenance",
    "InProcessExecutor": "ablate.run.inprocess", "CommandExecutor": "ablate.run.command",
    "FusedExecutor": "ablate.run.fused",
    "DesignSource": "ablate.run.sources", "AdaptiveSeedSource": "ablate.run.sources",
}

__all__ = sorted(_NAMES)


def __getattr__(name: str):
    if name in _NAMES:
        return getattr(importlib.import_module(_NAMES[name]), name)
    raise AttributeError(f"module 'ablate.run' has no attribute '{name}'")


make_callable(__name__)   # `ablate.run(spec)` is `ablate.api.run` (ablate/callable_module.py)
