"""The run engine: trial sources decide what runs next, executors run trials and stream events,
the recorder (the only writer of the store) turns events into transitions.

The package is `ablate.runner` (not `ablate.run`, which is the API's function). Names load on
first use: importing one executor loads neither the others nor Ray.
"""

from __future__ import annotations

import importlib

_NAMES = {
    "Engine": "ablate.runner.engine", "RunSummary": "ablate.runner.engine", "run_trials": "ablate.runner.engine",
    "Progress": "ablate.runner.progress", "SilentProgress": "ablate.runner.progress",
    "environment": "ablate.runner.provenance",
    "InProcessExecutor": "ablate.runner.inprocess", "CommandExecutor": "ablate.runner.command",
    "FusedExecutor": "ablate.runner.fused",
    "DesignSource": "ablate.runner.sources", "AdaptiveSeedSource": "ablate.runner.sources",
}

__all__ = sorted(_NAMES)


def __getattr__(name: str):
    if name in _NAMES:
        return getattr(importlib.import_module(_NAMES[name]), name)
    raise AttributeError(f"module 'ablate.runner' has no attribute '{name}'")

