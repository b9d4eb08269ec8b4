"""The local runner: trials one after another in this process (CUDA if present, else CPU)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ablate.run.common import Progress, SilentProgress, execute
from ablate.store import DONE


@dataclass
class RunSummary:
    planned: int = 0
    already_done: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def ran(self) -> int:
        return sum(self.outcomes.values())

    def describe(self) -> str:
        parts = [f"{n} {s}" for s, n in sorted(self.outcomes.items())]
        ran = ", ".join(parts) if parts else "nothing to run"
        text = f"{self.planned} trials planned, {self.already_done} already in the store; this run: {ran}"
        return "\n".join([text] + [f"note: {n}" for n in self.notes])


def pending(plan_trials, store, experiment: str) -> list:
    """Trials of the plan not yet complete or diverged (failed, pruned, interrupted: run again)."""
    statuses = store.trial_statuses(experiment)
    return [t for t in plan_trials if statuses.get(t.id) not in DONE]


def run_local(trials, store, *, progress: Progress | None = None, device: str | None = None,
              summary: RunSummary | None = None) -> RunSummary:
    """Run `trials` (already added to the store) that are not done; skip the rest."""
    progress = progress or SilentProgress()
    summary = summary or RunSummary()
    trials = list(trials)
    todo = pending(trials, store, trials[0].experiment) if trials else []
    summary.planned += len(trials)
    summary.already_done += len(trials) - len(todo)
    for i, trial in enumerate(todo, 1):
        progress.trial_started(i, len(todo), trial)
        status = execute(store, trial, progress=progress, device=device)
        summary.outcomes[status] = summary.outcomes.get(status, 0) + 1
    return summary
