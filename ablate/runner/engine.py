"""The engine: asks a trial source what runs next, claims each trial in the store, hands it to
an executor, and feeds the executor's events to the recorder.

The recorder writes every outcome; the engine itself writes only what coordinates drivers: the
planned trials (pending) and its claims. Several drivers may run the same experiment on one store: each runs only trials it claimed, and
waits for the trials others hold before asking the source for more (so an adaptive round sees
every result). A heartbeat thread keeps this driver's claims alive; the claims of a driver that
died expire (at once when it ran on this host) and its trials run again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from ablate.errors import MetricNotReported, SpecError
from ablate.config.run import Retries
from ablate.runner.events import Executor, Pruner, TrialSource
from ablate.runner.progress import Progress, SilentProgress
from ablate.runner.recorder import Recorder
from ablate.store import DONE, new_holder
from ablate.design.trial import Trial

if TYPE_CHECKING:  # pragma: no cover
    from ablate.store import Store

INTERRUPTED = "interrupted (Ctrl-C or SIGTERM); will run again"


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


class Engine:
    """Run the trials of `experiment` that `source` yields on `executor`.

    `metric` (when given) must be among the first complete trial's final metrics, else the run
    stops with a SpecError naming `metric_source` (the spec) after that trial; when trials fail
    for not reporting it (kind no_metric, a command's) before any reported it, the run stops
    after the first with MetricNotReported. `lease_s` is how
    long a claim lives without a heartbeat; `poll_s` how often to look at trials others run.
    """

    def __init__(self, store: Store, experiment: str, executor: Executor, *, retries: Retries = Retries(),
                 progress: Progress | None = None, pruner: Pruner | None = None, metric: str | None = None,
                 metric_source: str | None = None, lease_s: float = 60.0, poll_s: float = 0.5) -> None:
        self.store, self.experiment, self.executor = store, experiment, executor
        self.progress = progress or SilentProgress()
        self.metric, self.metric_source = metric, metric_source
        self.lease_s, self.poll_s = lease_s, poll_s
        self.holder = new_holder()
        self.recorder = Recorder(store, experiment, self.holder, retries=retries, progress=self.progress,
                                 pruner=pruner)
        self._metric_checked = metric is None

    def run(self, source: TrialSource, summary: RunSummary | None = None) -> RunSummary:
        summary = summary or RunSummary()
        # a driver SIGKILLed mid-trial left its trial (and attempt) running: closed as interrupted
        self.store.close_dead_claims(self.experiment)
        stop = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(stop,), daemon=True, name="ablate-heartbeat")
        beat.start()
        try:
            while True:
                batch = source.next_trials(self.store)
                if not batch:
                    return summary
                self.store.add_trials(self.experiment, batch)
                self._run_batch(batch, summary)
        finally:
            stop.set()
            beat.join(timeout=5)

    def _heartbeat(self, stop: threading.Event) -> None:
        while not stop.wait(self.lease_s / 4):
            try:
                self.store.heartbeat(self.holder, self.lease_s)
            except Exception:  # noqa: BLE001 -- a busy database now and then: the next beat renews
                pass

    def _run_batch(self, batch: Sequence[Trial], summary: RunSummary) -> None:
        statuses = self.store.trial_statuses(self.experiment)
        todo = {t.id: t for t in batch if statuses.get(t.id) not in DONE}
        summary.planned += len(batch)
        summary.already_done += len(batch) - len(todo)
        self.progress.trials_queued(list(todo.values()))
        # how many trials the executor runs at once (`--jobs`, Ray's slots, a fused group)
        capacity = max(1, int(self.executor.capacity))
        while todo:
            statuses = self.store.trial_statuses(self.experiment)
            claimed: list[Trial] = []
            for tid, trial in list(todo.items()):
                if len(claimed) == capacity:
                    break
                if statuses.get(tid) in DONE:
                    del todo[tid]          # another driver finished it
                    continue
                if not self.store.claim(self.experiment, tid, self.holder, self.lease_s):
                    continue
                claimed.append(trial)
                self.progress.trial_started(trial)
            if not claimed:
                if todo:
                    time.sleep(self.poll_s)    # the rest run elsewhere: wait for them, or their claims to lapse
                continue
            unreported = None
            for trial, outcome in zip(claimed, self._execute(claimed)):
                if outcome == "retry":
                    continue               # back to pending: the next pass claims it again
                del todo[trial.id]
                if outcome != "lost":
                    summary.outcomes[outcome] = summary.outcomes.get(outcome, 0) + 1
                if outcome == "complete":
                    self._check_metric(trial)
                elif outcome == "failed" and self.recorder.failure.get(trial.id, ("",))[0] == "no_metric":
                    unreported = unreported or trial
            if unreported is not None and not self._metric_checked:
                self._stop_unreported(unreported)

    def _execute(self, trials: Sequence[Trial]) -> list[str]:
        for trial in trials:
            self.recorder.expect(trial)
        try:
            self.executor.run(list(trials), self.recorder)
        except BaseException:
            # Ctrl-C, SIGTERM or a broken executor: the attempts do not count, nothing is lost
            for trial in trials:
                self.recorder.interrupted(trial, INTERRUPTED)
            raise
        return [self.recorder.ended(trial) for trial in trials]

    def _check_metric(self, trial: Trial) -> None:
        if self._metric_checked:
            return
        self._metric_checked = True
        reported = self.recorder.final.get(trial.id, {})
        if self.metric not in reported:
            names = ", ".join(sorted(k for k, v in reported.items() if isinstance(v, (int, float)))) or "(none)"
            raise SpecError(f"metric '{self.metric}' was not reported by the first trial ({trial.label}, "
                            f"seed {trial.seed}); it reported: {names}. Set 'metric.name' to one of those "
                            f"(the finished trial is kept in the store)",
                            source=self.metric_source, path="metric.name")


    def _stop_unreported(self, trial: Trial) -> None:
        """No trial has reported the metric yet and this one could not: every other would fail
        the same way, so the run stops here (the failed trial is kept; the CLI exits 3)."""
        from ablate.runner.logs import error_summary

        why = error_summary(self.recorder.failure[trial.id][1], "no_metric")
        raise MetricNotReported(f"trial {trial.label} (seed {trial.seed}) ran but its metric could not be "
                                f"recorded: {why}. The run stopped there, since the other trials would fail "
                                f"the same way; fix the command or metric.name, then run again with "
                                f"--retry-failed", source=self.metric_source, path="metric.name")


def run_trials(trials, store: Store, executor: Executor, **engine_options) -> RunSummary:
    """Run a fixed list of trials of one experiment (already named in each trial)."""
    from ablate.runner.sources import DesignSource

    trials = list(trials)
    if not trials:
        return RunSummary()
    return Engine(store, trials[0].experiment, executor, **engine_options).run(DesignSource(trials))
