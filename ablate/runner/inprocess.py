"""The in-process executor: `ablate.train.run_trial` in the driver's own process."""

from __future__ import annotations

import traceback
from collections.abc import Callable, Sequence

from ablate.errors import TrialDiverged, TrialPruned
from ablate.runner.provenance import environment
from ablate.runner.threads import concurrent_jobs, torch_threads
from ablate.runner.events import Emit, EpochMetrics, Failure, FinalMetrics, Started
from ablate.design.trial import Trial
from ablate.tricks.base import check_saved_weights, reads_saved_weights


class InProcessExecutor:
    """Runs trials here (CUDA if present, else CPU): one after another, or `jobs` at once in
    threads. `run_fn` replaces the trainer (benchmarks, tests); it is called as
    `run_fn(trial, report, device=...)`.

    Threads, not processes: a trial's data, model and torch stay loaded in this process (a
    process per trial pays torch's import, seconds, for trials that take seconds). torch's
    kernels release the GIL. Every trial computes with `threads` torch threads (the spec's
    `resources.cpu`, as on every runner: `ablate.runner.threads`), and at most as many jobs run at
    once as the cores hold at that count. Trials stay reproducible: the only global state a
    trial touches is torch's global CPU RNG, used under `ablate.tricks.base.GLOBAL_RNG_LOCK` on
    a forked, trial-seeded state.
    """

    def __init__(self, *, device: str | None = None, run_fn: Callable | None = None, jobs: int = 1,
                 weights_root=None, save_final: bool = False, threads: int = 1) -> None:
        self.device = device
        self.run_fn = run_fn
        self.threads = threads
        self.jobs_asked = jobs
        self.jobs = concurrent_jobs(jobs, threads)
        self.weights_root = weights_root    # saved weights: teachers are read, `save: final` writes
        self.save_final = save_final

    @property
    def capacity(self) -> int:
        """How many trials the engine may hand over in one `run` call."""
        return self.jobs

    def check(self, trials: Sequence[Trial]) -> None:
        check_saved_weights(trials, self.weights_root)

    def _weights_options(self, trial: Trial) -> dict:
        """What a trial that saves its weights or reads a teacher's needs (nothing for the rest,
        so a `run_fn` without these options still works)."""
        teacher = reads_saved_weights(trial.tricks)
        if self.weights_root is None or not (self.save_final or teacher):
            return {}
        return {"weights_root": self.weights_root, "save_final": self.save_final}

    def run(self, trials: Sequence[Trial], emit: Emit) -> None:
        # a stand-in trainer that does not use torch does not pay its import
        with torch_threads(self.threads, load=self.run_fn is None):
            if self.jobs == 1 or len(trials) == 1:
                for trial in trials:
                    self._run_one(trial, emit)
                return
            from ablate.runner.parallel import run_in_threads

            run_in_threads(list(trials), self._run_one, emit, jobs=self.jobs)

    def _run_one(self, trial: Trial, emit: Emit) -> None:
        if self.run_fn is None:
            from ablate.train import run_trial     # looked up per call: tests patch the trainer
        run = self.run_fn or run_trial
        emit(Started(trial.id, {**environment(self.device), "threads": self.threads}))

        def report(metrics) -> None:
            if emit(EpochMetrics(trial.id, dict(metrics))) == "stop":
                raise TrialPruned(f"pruned after epoch {metrics.get('epoch')}")

        try:
            metrics = run(trial, report, device=self.device, **self._weights_options(trial))
        except TrialDiverged as exc:
            emit(Failure(trial.id, "diverged", str(exc)))
        except TrialPruned as exc:
            emit(Failure(trial.id, "pruned", str(exc) or "pruned"))
        except Exception as exc:  # noqa: BLE001 -- any failure is recorded, the run goes on
            emit(Failure(trial.id, "error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))
        else:
            emit(FinalMetrics(trial.id, dict(metrics)))
