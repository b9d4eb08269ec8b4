"""The recorder directly: events in, store transitions and outcomes out (no executor, no engine)."""

from __future__ import annotations

from ablate.design.plan import plan
from ablate.config.run import Retries
from ablate.runner.events import EpochMetrics, Failure, FinalMetrics, Started
from ablate.runner.progress import SilentProgress
from ablate.runner.recorder import Recorder
from ablate.store import Store
from tests.conftest import tiny_spec

HOLDER = "here:1:aa"


def _setup(tmp_path, retries=Retries(), pruner=None):
    store = Store(tmp_path / "r.db", create=True)
    trial = plan(tiny_spec()).trials[0]
    store.add_trials("tiny", [trial])
    assert store.claim("tiny", trial.id, HOLDER, lease_s=60)
    rec = Recorder(store, "tiny", HOLDER, retries=retries, progress=SilentProgress(), pruner=pruner)
    rec.expect(trial)
    return store, trial, rec


def test_a_complete_attempt_is_recorded_with_its_epochs_and_metrics(tmp_path):
    store, trial, rec = _setup(tmp_path)
    assert rec(Started(trial.id, {"host": "h"})) == "continue"
    assert rec(EpochMetrics(trial.id, {"epoch": 1, "val_acc": 40.0})) == "continue"
    assert rec(FinalMetrics(trial.id, {"val_acc": 41.0})) == "continue"
    assert rec.ended(trial) == "complete" and rec.final[trial.id] == {"val_acc": 41.0}
    assert store.trial_statuses("tiny")[trial.id] == "complete"
    assert list(store.epochs_frame("tiny")["val_acc"]) == [40.0]


def test_a_failure_is_retried_within_the_policy_then_final(tmp_path):
    store, trial, rec = _setup(tmp_path, Retries(count=1))
    rec(Started(trial.id))
    assert rec(Failure(trial.id, "error", "boom")) == "continue"      # retried: back to pending
    assert rec.ended(trial) == "retry" and store.trial_statuses("tiny")[trial.id] == "pending"
    assert store.claim("tiny", trial.id, HOLDER, lease_s=60)
    rec.expect(trial)
    rec(Started(trial.id))
    assert rec(Failure(trial.id, "error", "boom again")) == "stop"    # the one retry is spent
    assert rec.ended(trial) == "failed" and rec.failure[trial.id] == ("error", "boom again")
    assert store.trial_statuses("tiny")[trial.id] == "failed"


def test_a_kind_outside_the_policy_and_a_divergence_are_not_retried(tmp_path):
    store, trial, rec = _setup(tmp_path, Retries(count=3, kinds=("exit",)))
    rec(Started(trial.id))
    assert rec(Failure(trial.id, "diverged", "loss is nan")) == "stop"
    assert rec.ended(trial) == "diverged" and store.trial_statuses("tiny")[trial.id] == "diverged"


def test_a_pruner_stops_a_trial_and_its_words_are_the_error(tmp_path):
    class Stop:
        def should_stop(self, trial, metrics):
            return metrics["epoch"] >= 2

        def stop_message(self, metrics):
            return f"stopped early after epoch {metrics['epoch']}"

    store, trial, rec = _setup(tmp_path, pruner=Stop())
    rec(Started(trial.id))
    assert rec(EpochMetrics(trial.id, {"epoch": 1, "val_acc": 1.0})) == "continue"
    assert rec(EpochMetrics(trial.id, {"epoch": 2, "val_acc": 2.0})) == "stop"
    rec(Failure(trial.id, "pruned", "StopTrial"))
    assert rec.ended(trial) == "pruned"
    assert store.trial_row("tiny", trial.id)["error"] == "stopped early after epoch 2"


def test_an_executor_that_returns_without_an_outcome_fails_the_trial_and_an_interrupt_resets_it(tmp_path):
    store, trial, rec = _setup(tmp_path)
    rec(Started(trial.id))
    assert rec.ended(trial) == "failed"
    assert "without reporting an outcome" in store.trial_row("tiny", trial.id)["error"]

    store2, trial2, rec2 = _setup(tmp_path / "b")
    rec2(Started(trial2.id))
    rec2.interrupted(trial2, "interrupted")
    assert store2.trial_statuses("tiny")[trial2.id] == "pending"
