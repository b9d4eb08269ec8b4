"""The fused executor: trials that can share one model train as one (`ablate.fused`).

The engine hands it up to `capacity` claimed trials in one `run` call. It groups them by
`ablate.fused.rules.fusion_key`; each group of two or more trains fused
(`ablate.fused.loop.train_group`), every member reporting its own events (started, every
epoch, final metrics with the trainer's keys, or a failure: "diverged" for a member whose loss
stopped being finite, "pruned" for one the engine stopped). Trials that do not fuse, a group of
one, and a group whose model the fused form cannot express (`NotFusable`) run through the
in-process executor, one at a time (or `jobs` at once).
"""

from __future__ import annotations

import traceback
from collections.abc import Sequence

from ablate.runner.events import Emit, EpochMetrics, Failure, FinalMetrics, Started
from ablate.runner.inprocess import InProcessExecutor
from ablate.runner.provenance import environment
from ablate.runner.threads import torch_threads
from ablate.design.trial import Trial

DEFAULT_CAPACITY = 16
"""Trials handed over at once, so the largest fused group (each member adds its activations to
the device's memory). Not tuned: no GPU was available to measure where the gain levels off."""


class FusedExecutor:
    """Runs trials here (CUDA if present, else CPU), fusing those `fusion_key` groups."""

    def __init__(self, *, device: str | None = None, capacity: int = DEFAULT_CAPACITY, jobs: int = 1,
                 single: InProcessExecutor | None = None) -> None:
        if not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"capacity must be a whole number >= 1, got {capacity!r}")
        self.device = device
        self._capacity = capacity
        # what runs the trials that do not fuse (and checks them: teachers, ...)
        self.single = single or InProcessExecutor(device=device, jobs=jobs)

    @property
    def capacity(self) -> int:
        """How many trials the engine may hand over in one `run` call."""
        return self._capacity

    def check(self, trials: Sequence[Trial]) -> None:
        self.single.check(trials)

    def groups(self, trials: Sequence[Trial]) -> tuple[list[list[Trial]], list[Trial]]:
        """(fused groups of two or more trials, trials to run on their own), in the given order."""
        from ablate.fused.rules import fusion_key

        by_key: dict[str, list[Trial]] = {}
        alone: list[Trial] = []
        for trial in trials:
            key = fusion_key(trial)
            if key is None:
                alone.append(trial)
            else:
                by_key.setdefault(key, []).append(trial)
        fused = [g for g in by_key.values() if len(g) > 1]
        alone += [g[0] for g in by_key.values() if len(g) == 1]
        return fused, alone

    def run(self, trials: Sequence[Trial], emit: Emit) -> None:
        fused, alone = self.groups(trials)
        with torch_threads(self.single.threads):     # the spec's threads, as every runner's trials
            for group in fused:
                alone += self._run_group(group, emit)
        if alone:
            self.single.run(alone, emit)

    def _run_group(self, group: list[Trial], emit: Emit) -> list[Trial]:
        """Train `group` fused; returns the trials to run one at a time instead (not fusable)."""
        from ablate.fused.loop import train_group
        from ablate.fused.model import NotFusable

        env = {**environment(self.device), "threads": self.single.threads, "fused_members": len(group)}
        open_members: set[int] = set()
        began: list[bool] = []

        def on_fused() -> None:
            began.append(True)
            for k, trial in enumerate(group):
                emit(Started(trial.id, dict(env)))
                open_members.add(k)

        def report(k: int, metrics) -> bool:
            return emit(EpochMetrics(group[k].id, dict(metrics))) != "stop"

        def ended(k: int, outcome: str, payload) -> None:
            open_members.discard(k)
            if outcome == "final":
                emit(FinalMetrics(group[k].id, dict(payload)))
            else:
                emit(Failure(group[k].id, outcome, payload))

        try:
            train_group(group, report, ended, device=self.device, on_fused=on_fused)
        except NotFusable:
            if began:            # pragma: no cover - raised only before the members start
                raise
            return group
        except Exception as exc:  # noqa: BLE001 -- a failure of the group ends its open members
            message = f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"
            if not began:            # it failed while building: every member starts and fails
                on_fused()
            for k in sorted(open_members):
                emit(Failure(group[k].id, "error", message))
        return []
