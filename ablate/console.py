"""What `ablate run` prints while it runs: one counter over the whole run, one line per finished
trial (a failure in one line: its kind and why, never a traceback; `ablate logs` has the rest),
and at the end what failed and what to do about it.

A trial line is `[k/N] LABEL (seed S)  WHAT  (TOOK, ETA ...)`: k counts trials as they end, in
the order they end (with `--jobs` or Ray several run at once), N is what this run will run:
the trials the engines queued, or for a search its estimate (the studies' remaining budget and
the validation round). A search trial says which study trial it is out of `n_trials`, its
values, and the best so far; any other trial not from the design says why it runs (its reason,
as stored: a finalist, the hand-picked values, an adaptive seed).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import re
import sys
import time
from dataclasses import dataclass

from ablate.runner.logs import error_summary

if TYPE_CHECKING:  # pragma: no cover
    from ablate.design.spec import Spec
    from ablate.store import Store

_STUDY_TRIAL = re.compile(r"study trial (\d+)\s*$")


def fmt_s(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    m, s = divmod(seconds, 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m"


@dataclass(frozen=True)
class SearchLine:
    """What a search trial line needs: the budget per study, the metric and its direction."""

    n_trials: int | None
    metric: str
    direction: str


def _value(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _better(a: float, b: float, direction: str) -> bool:
    return a > b if direction == "max" else a < b


class ConsoleProgress:
    """The engine's progress callbacks, printed. On a terminal the running trial's epochs rewrite
    one line; otherwise one line per finished trial (logs stay readable)."""

    def __init__(self, stream=None, *, expected: int | None = None, search: SearchLine | None = None) -> None:
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty()
        self.expected, self.search = expected, search
        self.queued = 0
        self.finished = 0
        self.failed = 0
        self.started: dict[str, float] = {}      # trial id -> when its attempt started
        self.t_first: float | None = None
        self.best: dict[int, tuple[float, str]] = {}   # arm -> (best metric, which study trial)

    # -- counting ---------------------------------------------------------------------------

    @property
    def total(self) -> int:
        return max(self.expected or 0, self.queued, self.finished + len(self.started))

    def _eta(self, extra: float = 0.0) -> str:
        if not self.finished or self.t_first is None:
            return "ETA ?"
        rate = (time.perf_counter() - self.t_first) / self.finished
        return f"ETA {fmt_s(max(0.0, self.total - self.finished - extra) * rate)}"

    # -- the engine's callbacks -------------------------------------------------------------

    def trials_queued(self, trials) -> None:
        self.queued += len(trials)

    def trial_started(self, trial) -> None:
        now = time.perf_counter()
        self.t_first = self.t_first if self.t_first is not None else now
        self.started[trial.id] = now
        if self.tty:
            self._rewrite(f"[{self.finished + 1}/{self.total}] {self._name(trial)}  starting...")

    def epoch(self, trial, metrics) -> None:
        if not self.tty:
            return
        head = f"[{self.finished + 1}/{self.total}] {self._name(trial)}  epoch {metrics.get('epoch')}"
        if trial.recipe is None:   # a command trial: its epochs and metrics are its own
            self._rewrite(f"{head}  {self._eta()}")
            return
        frac = metrics["epoch"] / trial.recipe.epochs
        self._rewrite(f"{head}/{trial.recipe.epochs}  val_acc {metrics['val_acc']:.2f}%  "
                      f"{metrics['images_per_s']:,.0f} img/s  {self._eta(frac)}")

    def trial_finished(self, trial, status, metrics, error, *, kind=None) -> None:
        t0 = self.started.pop(trial.id, None)
        took = time.perf_counter() - t0 if t0 is not None else 0.0
        if status == "retrying":        # it runs again: still counted as running, its clock restarted
            self.started[trial.id] = time.perf_counter()
            self._line(f"  retrying {self._name(trial)} after its attempt failed ({kind}): "
                       f"{error_summary(error, kind)}  ({fmt_s(took)})")
            return
        self.finished += 1
        self.failed += status == "failed"
        detail = self._detail(trial, status, metrics or {}, error, kind)
        end = self._eta() if self.finished < self.total else "done"
        self._line(f"[{self.finished}/{self.total}] {self._name(trial)}  {detail}  ({fmt_s(took)}, {end})")

    # -- words ------------------------------------------------------------------------------

    def _name(self, trial) -> str:
        name = f"{trial.label} (seed {trial.seed})"
        reason = getattr(trial, "reason", "design") or "design"
        m = _STUDY_TRIAL.search(reason)
        if m and self.search is not None:
            budget = f"/{self.search.n_trials}" if self.search.n_trials else ""
            values = ", ".join(f"{k} {_value(v)}" for k, v in trial.values.items())
            return f"{name}  study trial {m.group(1)}{budget}" + (f": {values}" if values else "")
        if reason != "design":
            return f"{name}  [{reason}]"
        return name

    def _detail(self, trial, status, metrics, error, kind) -> str:
        if status == "complete":
            if "val_acc" in metrics and "test_acc" in metrics:
                text = f"val {metrics['val_acc']:.2f}%  test {metrics['test_acc']:.2f}%"
            else:
                text = "  ".join(f"{k} {v:.4g}" for k, v in list(metrics.items())[:4]
                                 if isinstance(v, (int, float)) and not isinstance(v, bool))
            return text + self._best(trial, metrics)
        why = error_summary(error, kind)
        shown = f" ({kind})" if kind and kind not in (status, "pruned", "diverged") else ""
        return f"{status.upper()}{shown}: {why}" if why else status.upper()

    def _best(self, trial, metrics) -> str:
        """A search trial: the best value so far of its study (in this run)."""
        s = self.search
        m = _STUDY_TRIAL.search(getattr(trial, "reason", "") or "")
        value = metrics.get(s.metric) if s is not None else None
        if m is None or not isinstance(value, (int, float)) or isinstance(value, bool):
            return ""
        best = self.best.get(trial.arm)
        if best is None or _better(float(value), best[0], s.direction):
            best = self.best[trial.arm] = (float(value), m.group(1))
        return f"  best so far {s.metric} {best[0]:.4g} (study trial {best[1]})"

    def _rewrite(self, text: str) -> None:
        self.stream.write(f"\r{text}\033[K")
        self.stream.flush()

    def _line(self, text: str) -> None:
        self.stream.write(("\r" + text + "\033[K\n") if self.tty else text + "\n")
        self.stream.flush()


def expected_trials(spec: Spec, store: Store) -> int | None:
    """A search's estimate of the trials this run will run: each study's budget not yet spent
    and its validation stages (`ablate.design.stages.stage_trials`: finalists on the selection
    seeds, the winner, runner-up and hand-picked values on the report seeds). None for a design:
    its engine queues exactly what it runs. An estimate: fewer finalists, a timeout or an
    exhausted grid end a search sooner."""
    s = spec.search
    if s is None or s.n_trials is None:
        return None
    from ablate.design.plan import plan
    from ablate.design.stages import stage_trials

    stages = stage_trials(spec, len(plan(spec).arms))
    searched = stages["search"]
    validation = stages["select"] + stages["report"]
    frame = store.trials_frame(spec.name)
    if len(frame):
        from ablate.store import DONE

        done = frame["status"].isin(DONE)
        sampled = frame["reason"].astype(str).str.contains(r"study trial \d+\s*$", regex=True)
        searched -= int((done & sampled).sum())
        validation -= int((done & ~sampled).sum())
    return max(0, searched) + max(0, validation)
