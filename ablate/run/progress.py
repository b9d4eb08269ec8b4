"""Progress callbacks the engine calls (the CLI prints them; tests stay silent)."""

from __future__ import annotations

from typing import Any, Protocol


class Progress(Protocol):
    def trial_started(self, index: int, total: int, trial) -> None: ...
    def epoch(self, trial, metrics: dict[str, Any]) -> None: ...
    def trial_finished(self, trial, status: str, metrics: dict[str, Any] | None, error: str | None) -> None: ...


class SilentProgress:
    def trial_started(self, index, total, trial):
        pass

    def epoch(self, trial, metrics):
        pass

    def trial_finished(self, trial, status, metrics, error):
        pass
