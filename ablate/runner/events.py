"""What an executor tells the engine about a trial, in order: started, epochs, then one end
(final metrics or a failure). The engine answers each epoch with "continue" or "stop" (prune),
and each failure with "continue" (the trial runs again) or "stop" (its failure is final)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol, Union

from ablate.design.trial import Trial

if TYPE_CHECKING:  # pragma: no cover
    from ablate.store import Store

FailureKind = Literal["error", "exit", "timeout", "no_metric", "diverged", "pruned"]
Answer = Literal["continue", "stop"]
MetricValue = Union[float, int, str, bool, None]


@dataclass(frozen=True)
class Started:
    trial_id: str
    env: dict[str, MetricValue] = field(default_factory=dict)   # versions, device, host, git revision


@dataclass(frozen=True)
class EpochMetrics:
    trial_id: str
    metrics: dict[str, MetricValue]           # has "epoch"; any other numeric metric is kept


@dataclass(frozen=True)
class FinalMetrics:
    trial_id: str
    metrics: dict[str, MetricValue]


@dataclass(frozen=True)
class Failure:
    trial_id: str
    kind: FailureKind
    message: str
    # the executor runs the trial again itself (Ray Tune's FailureConfig) when the engine answers
    # "continue": the engine then keeps its claim across the retry instead of releasing the trial
    retried_here: bool = False


Event = Union[Started, EpochMetrics, FinalMetrics, Failure]
Emit = Callable[[Event], Answer]


class Executor(Protocol):
    """Where trials run. `run` gets trials the engine has claimed and calls `emit` for each
    event, from the thread that called `run`; it ends every trial with FinalMetrics or Failure
    (a trial's own error is a Failure, not an exception). An exception out of `run` means the
    executor itself broke: the engine puts the trials back to pending and stops."""

    @property
    def capacity(self) -> int:
        """The most claimed trials one `run` call takes (the engine claims up to this many)."""

    def check(self, trials: Sequence[Trial]) -> None:
        """Refuse bad input (raise an AblateError) before anything runs or is written."""

    def run(self, trials: Sequence[Trial], emit: Emit) -> None: ...


class TrialSource(Protocol):
    """What runs next. The engine calls `next_trials` until it returns []; each call sees the
    store after every trial of the previous batch has ended (in this or another driver)."""

    def next_trials(self, store: Store) -> list[Trial]: ...


class Pruner(Protocol):
    def should_stop(self, trial: Trial, metrics: dict[str, MetricValue]) -> bool: ...
