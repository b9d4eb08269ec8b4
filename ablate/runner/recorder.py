"""The recorder: on the driver, the only writer of trial outcomes. It turns an executor's events
into store transitions and decides, per the retry policy, whether a failed attempt runs again."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ablate.config.run import Retries
from ablate.runner.events import Answer, EpochMetrics, Event, Failure, FinalMetrics, Pruner, Started
from ablate.runner.progress import Progress
from ablate.design.trial import Trial

if TYPE_CHECKING:  # pragma: no cover
    from ablate.store import Store

# failure kinds that are outcomes of their own, not errors
_STATUS_OF = {"diverged": "diverged", "pruned": "pruned"}


class Recorder:
    def __init__(self, store: Store, experiment: str, holder: str, *, retries: Retries, progress: Progress,
                 pruner: Pruner | None = None) -> None:
        self.store, self.experiment, self.holder = store, experiment, holder
        self.retries, self.progress, self.pruner = retries, progress, pruner
        self.trials: dict[str, Trial] = {}
        self.outcome: dict[str, str] = {}         # trial id -> final status, "retry" or "lost"
        self.final: dict[str, dict] = {}          # trial id -> final metrics of complete trials
        # trial id -> (error, kind) of a failed attempt the executor itself runs again: the claim
        # is kept until that attempt starts (or released, if it never does)
        self.retrying_here: dict[str, tuple[str, str]] = {}
        self.stopped_why: dict[str, str] = {}     # trial id -> why the pruner stopped it (its message)
        self.failure: dict[str, tuple[str, str]] = {}   # trial id -> (kind, error) of its last failed attempt

    def expect(self, trial: Trial) -> None:
        self.trials[trial.id] = trial
        self.outcome.pop(trial.id, None)

    def __call__(self, event: Event) -> Answer:
        trial = self.trials[event.trial_id]
        exp, tid = self.experiment, event.trial_id
        if isinstance(event, Started):
            self.retrying_here.pop(tid, None)
            self.store.start_trial(exp, tid, dict(event.env), holder=self.holder)
        elif isinstance(event, EpochMetrics):
            self.store.add_epoch(exp, tid, event.metrics)
            self.progress.epoch(trial, event.metrics)
            if self.pruner is not None and self.pruner.should_stop(trial, event.metrics):
                why = getattr(self.pruner, "stop_message", None)
                if why is not None and why(event.metrics):
                    self.stopped_why[tid] = why(event.metrics)
                return "stop"
        elif isinstance(event, FinalMetrics):
            self._end(trial, "complete", metrics=dict(event.metrics))
        elif isinstance(event, Failure):
            status = _STATUS_OF.get(event.kind, "failed")
            retry = status == "failed" and self._may_retry(tid, event.kind)
            here = retry and event.retried_here
            # a trial the pruner stopped: the pruner's words ("stopped early by ASHA after epoch 2")
            why = self.stopped_why.pop(tid, None)
            message = why if why and event.kind == "pruned" else event.message
            self._end(trial, status, error=message, kind=event.kind, retry=retry, keep_claim=here)
            if here and self.outcome.get(tid) == "retry":
                # not ended: the executor's next attempt of it comes (no other driver may claim it)
                del self.outcome[tid]
                self.retrying_here[tid] = (event.message, event.kind)
            return "continue" if retry else "stop"
        return "continue"

    def interrupted(self, trial: Trial, note: str) -> None:
        """The driver is stopping mid-attempt: back to pending (unless the attempt had ended)."""
        if trial.id in self.retrying_here:
            self._release_retry(trial)
        elif trial.id not in self.outcome:
            self.store.reset_trial(self.experiment, trial.id, note, holder=self.holder)

    def ended(self, trial: Trial) -> str:
        """How the trial's attempt ended: a final status, "retry" or "lost" (recorded as failed
        when the executor returned without ending it)."""
        if trial.id in self.retrying_here:      # the executor did not run its retry after all
            self._release_retry(trial)
        if trial.id not in self.outcome:
            self._end(trial, "failed", error="the executor returned without reporting an outcome", kind="error")
        return self.outcome[trial.id]

    def _release_retry(self, trial: Trial) -> None:
        """A retry kept under this driver's claim goes back to pending (its failed attempt stays)."""
        error, kind = self.retrying_here.pop(trial.id)
        self._end(trial, "failed", error=error, kind=kind, retry=True)

    def _may_retry(self, trial_id: str, kind: str) -> bool:
        """A failure of a listed kind runs again while the trial's failed attempts (this run's
        and earlier runs') stay within `retries.count`."""
        if kind not in self.retries.kinds:
            return False
        return self.store.failed_attempts(self.experiment, trial_id) < self.retries.count     # this attempt is not yet marked failed

    def _end(self, trial: Trial, status: str, *, metrics=None, error=None, kind=None, retry=False,
             keep_claim=False) -> None:
        ok = self.store.finish_trial(self.experiment, trial.id, status, metrics=metrics, error=error,
                                     kind=kind, holder=self.holder, retry=retry, keep_claim=keep_claim)
        if not ok:   # our lease ran out and another driver took the trial over: it records it
            self.outcome[trial.id] = "lost"
            return
        self.outcome[trial.id] = "retry" if retry else status
        if metrics is not None:
            self.final[trial.id] = metrics
        if status != "complete":
            self.failure[trial.id] = (kind or status, error or "")
        self.progress.trial_finished(trial, "retrying" if retry else status, metrics,
                                     None if status == "complete" else error, kind=kind)
