"""Retries through Ray Tune: Tune runs a failing trial again at most `retries.count` times, the
store's attempts are exactly the attempts Tune ran, and the engine's claim stays held across
Tune's retry (another driver sharing the store cannot take the trial in between). In-process
Ray (2 CPUs, a small object store, no dashboard, shut down after the module); slow: Ray takes
seconds to start."""

from __future__ import annotations

from pathlib import Path

import pytest

from ablate.design.plan import plan
from ablate.config.run import Retries
from ablate.runner.engine import run_trials
from ablate.runner.events import Failure
from ablate.store import Store
from tests.conftest import tiny_spec
from tests.runner.ray_helpers import local_ray_for

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local_ray():
    with local_ray_for(__name__, object_store_mb=80):
        yield


class FailingTrainer:
    """A stand-in trainer that fails its first `fails` calls (every call when None), counting
    its calls in a file (the worker processes share no memory with the test)."""

    def __init__(self, log: Path, fails: int | None = None) -> None:
        self.log, self.fails = str(log), fails

    def __call__(self, trial, report, device=None):
        with open(self.log, "a") as f:
            f.write("call\n")
        calls = len(Path(self.log).read_text().splitlines())
        if self.fails is None or calls <= self.fails:
            raise RuntimeError(f"planned failure {calls}")
        report({"epoch": 1, "val_acc": 50.0})
        return {"val_acc": 50.0}


def one_trial():
    return plan(tiny_spec(design={"kind": "explicit", "arms": [[]]}, seeds=1, recipe={"epochs": 1})).trials[0]


def test_an_always_failing_trial_runs_exactly_count_plus_one_times_then_is_failed(local_ray, tmp_path):
    from ablate.runner.ray import RayExecutor

    trial, log = one_trial(), tmp_path / "calls"
    store = Store(tmp_path / "s.db", create=True)
    retries = Retries(count=2)
    summary = run_trials([trial], store, RayExecutor(run_fn=FailingTrainer(log), retries=retries),
                         retries=retries)
    assert summary.outcomes == {"failed": 1}
    tries = store.attempts_frame("tiny")
    assert len(log.read_text().splitlines()) == 3 == len(tries), "the store's attempts are the ones Tune ran"
    assert list(tries.status) == ["failed"] * 3 and list(tries.attempt) == [1, 2, 3]
    row = store.trials_frame("tiny").iloc[0]
    assert row.status == "failed" and row.attempts == 3 and "planned failure 3" in row.error


def test_the_claim_stays_held_while_tune_retries_so_no_other_driver_takes_the_trial(local_ray, tmp_path):
    from ablate.runner.ray import RayExecutor

    trial = one_trial()
    store = Store(tmp_path / "s.db", create=True)
    stolen: list[bool] = []

    class OtherDriverTriesToClaim:
        """Wraps the executor: right after each failed attempt is recorded, a second driver
        sharing the store tries to claim the trial."""

        capacity = 1

        def __init__(self, inner) -> None:
            self.inner = inner

        def check(self, trials):
            self.inner.check(trials)

        def run(self, trials, emit):
            def spy(event):
                answer = emit(event)
                if isinstance(event, Failure):
                    stolen.append(store.claim("tiny", event.trial_id, "other-driver:1:x", 60.0))
                return answer

            self.inner.run(trials, spy)

    retries = Retries(count=1)
    inner = RayExecutor(run_fn=FailingTrainer(tmp_path / "calls", fails=1), retries=retries)
    summary = run_trials([trial], store, OtherDriverTriesToClaim(inner), retries=retries)
    assert stolen == [False], "another driver claimed a trial Tune was about to retry"
    assert summary.outcomes == {"complete": 1}
    assert list(store.attempts_frame("tiny").status) == ["failed", "complete"]


def test_failures_of_earlier_runs_count_tune_does_not_retry_past_the_spec(local_ray, tmp_path):
    """A driver that died after a failed attempt left one failure in the store; with count 1
    the next failure is final, even though Tune's own count starts again in the new run."""
    from ablate.runner.ray import RayExecutor

    trial, log = one_trial(), tmp_path / "calls"
    store = Store(tmp_path / "s.db", create=True)
    store.add_trials("tiny", [trial])
    assert store.claim("tiny", trial.id, "dead-driver:1:x", 60.0)
    store.start_trial("tiny", trial.id, {}, holder="dead-driver:1:x")
    store.finish_trial("tiny", trial.id, "failed", error="earlier run", kind="error", holder="dead-driver:1:x",
                       retry=True)
    retries = Retries(count=1)
    summary = run_trials([trial], store, RayExecutor(run_fn=FailingTrainer(log), retries=retries), retries=retries)
    assert summary.outcomes == {"failed": 1}
    tries = store.attempts_frame("tiny")
    assert list(tries.status) == ["failed", "failed"], "count 1: two attempts in all, the second final"
    assert store.trials_frame("tiny").iloc[0].attempts == 2
