"""The tiny client a command trial may use (it is optional: printing JSON lines does the same).

    from ablate import client
    p = client.params()                     # {"seed": 0, "tricks": {...}, "values": {...}, ...}
    for epoch in range(1, epochs + 1):
        ...
        client.report(epoch=epoch, val_acc=acc, train_loss=loss)   # one JSON line on stdout
        if client.should_stop():            # the engine pruned this trial
            break
    client.report(val_acc=acc, test_acc=test)                      # final metrics (no epoch)

Outside `ablate run` (no ABLATE_TRIAL), `params()` returns {} and the rest still works, so
the script runs on its own too. Imports nothing but the standard library.
"""

from __future__ import annotations

import json
import os
import sys
from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1)
def params() -> dict[str, Any]:
    """This trial's parameters: the JSON file ablate names in ABLATE_TRIAL ({} when run alone)."""
    path = os.environ.get("ABLATE_TRIAL")
    if not path:
        return {}
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def report(**metrics: float) -> None:
    """Report metrics: with `epoch=` one epoch's (the pruning hook), without it final ones."""
    for name, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"metric '{name}' must be a number, got {value!r}")
    sys.stdout.write(json.dumps({k: float(v) if k != "epoch" else int(v) for k, v in metrics.items()}) + "\n")
    sys.stdout.flush()


def should_stop() -> bool:
    """True once the engine has pruned this trial: stop training and exit."""
    path = os.environ.get("ABLATE_STOP")
    return bool(path) and os.path.exists(path)
