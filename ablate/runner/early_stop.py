"""The spec's `early_stop:` (ASHA, asynchronous successive halving) on every runner.

Rungs sit at epochs grace_epochs * reduction^k; a trial reaching a rung goes on only if its
metric is within the top 1/reduction of the values recorded at that rung so far (the first
trial at a rung always goes on; a trial that passed a rung is never judged there again).

The rule is Ray Tune's `ASHAScheduler`, built in one place (`asha_scheduler`). With `--runner
ray` it runs inside Tune's controller. On the local runners (in-process, `--jobs` threads,
command trials) the engine asks `AshaPruner` after every epoch report, and it feeds the same
(trial, epoch, metric) results to the same scheduler class, used on its own: both runners stop
the same trials when results arrive in the same order. Optuna's SuccessiveHalvingPruner is ASHA
too, but its promotion test (an index into the sorted rung values, the trial's own value
included) differs from Tune's percentile cutoff, and it takes only whole reduction factors, so
the two runners would stop different trials.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ablate.config.run import EarlyStop
from ablate.runner.events import MetricValue, Pruner
from ablate.design.trial import Trial

if TYPE_CHECKING:  # pragma: no cover
    from ablate.design.spec import Spec

STOPPED_BY_ASHA = "stopped early by ASHA after epoch {epoch}"


def asha_scheduler(early_stop: EarlyStop | None, *, metric: str, mode: str, epochs: int | None):
    """Tune's ASHA for `early_stop` on the per-epoch metric (early_stop.metric, else the spec's
    `metric` whose direction is `mode`), or None when nothing can stop early (no early_stop; one
    epoch). The last rung stays below the last epoch: a trial that got there finishes and reports."""
    if early_stop is None or (epochs is not None and epochs < 2):
        return None
    from ray.tune.schedulers import ASHAScheduler

    max_t = max(epochs - 1, 1) if epochs else 10**6
    return ASHAScheduler(time_attr="epoch", metric=early_stop.metric or metric,
                         mode=early_stop.direction(metric, mode), max_t=max_t,
                         grace_period=min(early_stop.grace_epochs, max_t),
                         reduction_factor=early_stop.reduction, stop_last_trials=False)


@dataclass(frozen=True)
class _TuneTrial:
    """What Tune's scheduler reads of a trial: its id."""
    trial_id: str


class AshaPruner:
    """The engine's Pruner for `early_stop:` on the local runners (see the module docstring).
    Called from the engine's thread only (the executor contract), so it needs no lock."""

    def __init__(self, early_stop: EarlyStop, *, metric: str, mode: str, epochs: int | None) -> None:
        self.metric = early_stop.metric or metric
        self.scheduler = asha_scheduler(early_stop, metric=metric, mode=mode, epochs=epochs)
        self._added: set[str] = set()

    def should_stop(self, trial: Trial, metrics: dict[str, MetricValue]) -> bool:
        from ray.tune.schedulers import TrialScheduler

        value, epoch = metrics.get(self.metric), metrics.get("epoch")
        # as on Ray, where only a finite number reaches Tune (ablate.runner.ray_worker.encode)
        if self.scheduler is None or not _finite(value) or not _finite(epoch):
            return False
        key = _TuneTrial(trial.id)
        if trial.id not in self._added:
            # one bracket: Tune's draw of a bracket (numpy's global RNG) has one outcome
            self.scheduler.on_trial_add(None, key)
            self._added.add(trial.id)
        result = {"epoch": epoch, self.metric: value}
        return self.scheduler.on_trial_result(None, key, result) == TrialScheduler.STOP

    def stop_message(self, metrics: dict[str, MetricValue]) -> str:
        return STOPPED_BY_ASHA.format(epoch=metrics.get("epoch"))


class AnyPruner:
    """Several pruners asked in order, each every time (a search's pruner also records the
    epoch in its study); stop when one says so, with that one's message."""

    def __init__(self, pruners: Sequence[Pruner]) -> None:
        self.pruners = list(pruners)
        self._why: str | None = None

    def should_stop(self, trial: Trial, metrics: dict[str, MetricValue]) -> bool:
        self._why, stop = None, False
        for pruner in self.pruners:
            if pruner.should_stop(trial, metrics) and not stop:
                stop = True
                message = getattr(pruner, "stop_message", None)
                self._why = message(metrics) if message is not None else None
        return stop

    def stop_message(self, metrics: dict[str, MetricValue]) -> str | None:
        return self._why


def local_early_stop(spec: Spec, executor) -> AshaPruner | None:
    """The pruner that makes the spec's `early_stop:` act on `executor`, or None when there is
    none or the executor stops trials early itself (Ray runs Tune's ASHA in its controller)."""
    if spec.early_stop is None or getattr(executor, "stops_early_itself", False):
        return None
    epochs = spec.recipe.epochs if spec.recipe is not None else None
    pruner = AshaPruner(spec.early_stop, metric=spec.metric.name, mode=spec.metric.direction, epochs=epochs)
    return pruner if pruner.scheduler is not None else None


def with_early_stop(pruner: Pruner | None, early: AshaPruner | None) -> Pruner | None:
    """`pruner` (a search's) and the early stop together."""
    if early is None or pruner is None:
        return early or pruner
    return AnyPruner([pruner, early])


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
