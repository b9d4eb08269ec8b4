"""Progress callbacks the engine calls (the CLI prints them; tests stay silent).

One object sees the whole run, whichever engines it takes (a search runs one per study and one
per validation round), so it can count over all of them: `trials_queued` says what an engine
is about to run (the trials of a batch the store lacks), `trial_started` that one was claimed
and handed to the executor, `trial_finished` how an attempt ended: a final status, or
"retrying" when the retry policy runs it again (`kind` is the failure kind).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol


class Progress(Protocol):
    def trials_queued(self, trials: Sequence) -> None: ...
    def trial_started(self, trial) -> None: ...
    def epoch(self, trial, metrics: dict[str, Any]) -> None: ...
    def trial_finished(self, trial, status: str, metrics: dict[str, Any] | None, error: str | None, *,
                       kind: str | None = None) -> None: ...


class SilentProgress:
    def trials_queued(self, trials):
        pass

    def trial_started(self, trial):
        pass

    def epoch(self, trial, metrics):
        pass

    def trial_finished(self, trial, status, metrics, error, *, kind=None):
        pass
