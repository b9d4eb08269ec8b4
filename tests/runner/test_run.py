"""Running experiments: resume, failures recorded, interrupts and kills lose nothing finished."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from ablate.design.plan import plan
from ablate.runner.sources import adaptive_requests
from ablate.api import run_experiment
from ablate.store import Store
from tests.conftest import tiny_dict, tiny_spec

ROOT = Path(__file__).resolve().parents[2]


def test_rerun_resumes_and_repeats_nothing(tmp_path):
    store = Store(tmp_path / "s.db", create=True)
    spec = tiny_spec()
    p, first = run_experiment(spec, store)
    assert first.outcomes == {"complete": len(p.trials)}
    _, second = run_experiment(spec, store)
    assert second.ran == 0 and second.already_done == len(p.trials)
    # one more seed: only the new trials run
    _, third = run_experiment(spec.with_changes(seeds=3), store)
    assert third.outcomes == {"complete": len(p.arms)}
    assert (store.trials_frame("tiny")["attempts"] == 1).all()


def test_a_crashing_trial_is_retried_per_policy_then_final_and_the_run_goes_on(tmp_path, monkeypatch):
    import ablate.train as train

    real = train._train

    def broken(trial, report, dev, start):
        if trial.arm == 1 and trial.seed == 0:
            raise RuntimeError("CUDA out of memory (simulated)")
        return real(trial, report, dev, start)

    monkeypatch.setattr(train, "_train", broken)
    store = Store(tmp_path / "s.db", create=True)
    p, summary = run_experiment(tiny_spec(), store)    # default retries: count 1
    assert summary.outcomes == {"complete": len(p.trials) - 1, "failed": 1}
    frame = store.trials_frame("tiny")
    failed = frame[frame.status == "failed"].iloc[0]
    assert failed.arm == 1 and failed.seed == 0 and "CUDA out of memory (simulated)" in failed.error
    assert failed.attempts == 2 and failed.kind == "error"
    tries = store.attempts_frame("tiny")
    tries = tries[tries.trial_id == failed.trial_id]
    assert list(tries.status) == ["failed", "failed"] and tries.error.str.contains("simulated").all()
    # failed is final: the next run does not run it again
    monkeypatch.setattr(train, "_train", real)
    _, again = run_experiment(tiny_spec(), store)
    assert again.ran == 0


def test_a_flaky_trial_is_retried_and_every_attempt_kept(tmp_path, monkeypatch):
    import ablate.train as train

    real = train._train
    calls = {"n": 0}

    def flaky(trial, report, dev, start):
        if trial.arm == 1 and trial.seed == 0:
            calls["n"] += 1
            if calls["n"] == 1:
                raise RuntimeError("node lost (simulated)")
        return real(trial, report, dev, start)

    monkeypatch.setattr(train, "_train", flaky)
    store = Store(tmp_path / "s.db", create=True)
    p, summary = run_experiment(tiny_spec(), store)
    assert summary.outcomes == {"complete": len(p.trials)}
    tries = store.attempts_frame("tiny")
    row = store.trials_frame("tiny").query("arm == 1 and seed == 0").iloc[0]
    mine = tries[tries.trial_id == row.trial_id]
    assert list(mine.status) == ["failed", "complete"] and "node lost" in mine.error.iloc[0]
    # with no retries the same failure is final at once
    calls["n"] = 0
    store2 = Store(tmp_path / "s2.db", create=True)
    _, summary = run_experiment(tiny_spec(retries={"count": 0}), store2)
    assert summary.outcomes == {"complete": len(p.trials) - 1, "failed": 1}


def test_ctrl_c_puts_the_trial_back_and_keeps_finished_ones(tmp_path, monkeypatch):
    import ablate.train as train

    real = train._train
    calls = {"n": 0}

    def interrupted(trial, report, dev, start):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(trial, report, dev, start)

    monkeypatch.setattr(train, "_train", interrupted)
    store = Store(tmp_path / "s.db", create=True)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(tiny_spec(), store)
    statuses = sorted(store.trial_statuses("tiny").values())
    assert statuses.count("complete") == 2 and "running" not in statuses
    frame = store.trials_frame("tiny")
    assert (frame[frame.status == "pending"].error.fillna("").str.contains("interrupted")).sum() == 1


def _wait_for(predicate, timeout=120.0):
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_driver_loses_nothing_and_rerun_finishes(tmp_path, sig):
    spec_path = tmp_path / "tiny.yaml"
    spec_path.write_text(yaml.safe_dump(tiny_dict(recipe={"epochs": 4}, seeds=3), sort_keys=False))
    db = tmp_path / "k.db"
    cmd = [sys.executable, "-m", "ablate", "run", str(spec_path), "--store", str(db), "--no-report"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def two_done():
        if not db.exists():
            return False
        try:
            return list(Store(db).trial_statuses("tiny").values()).count("complete") >= 2
        except Exception:  # noqa: BLE001 -- tables may not exist yet
            return False

    assert _wait_for(two_done), proc.communicate()[0]
    proc.send_signal(sig)
    out = proc.communicate(timeout=60)[0].decode()
    if sig == signal.SIGTERM:
        assert proc.returncode == 130, out
        assert "run the same command again" in out
    done_before = {k for k, v in Store(db).trial_statuses("tiny").items() if v == "complete"}
    rerun = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    store = Store(db)
    frame = store.trials_frame("tiny")
    assert (frame.status == "complete").all() and len(frame) == len(plan(tiny_spec(seeds=3)).trials)
    again = frame[frame.trial_id.isin(done_before)]
    assert (again.attempts == 1).all(), "finished trials were not repeated"
    epochs = store.epochs_frame("tiny")
    assert (epochs.groupby("trial_id").size() == 4).all(), "no duplicate or partial epochs"


def test_adaptive_seeds_added_where_the_lift_is_undecided(tmp_path):
    spec = tiny_spec(tricks={"label_smoothing": {}}, seeds={"count": 2, "adaptive": {"max_seeds": 4,
                                                                                    "target_half_width": 0.01}})
    store = Store(tmp_path / "s.db", create=True)
    p, summary = run_experiment(spec, store)
    frame = store.trials_frame("tiny")
    # the pilot (seeds 0-1) is far too noisy for a CI of ±0.01, so every arm, the baseline
    # included, runs to the cap: seeds 2 and 3, asked for once, with one reason
    assert frame.groupby("arm").seed.apply(sorted).to_dict() == {0: [0, 1, 2, 3], 1: [0, 1, 2, 3]}
    added = frame[frame.seed >= 2]
    assert added.reason.str.contains("-> 4 seeds per arm for a lift CI of about ±0.01").all()
    assert added.reason.nunique() == 1
    assert (frame[frame.seed < 2].reason == "design").all()
    assert adaptive_requests(p, store) == []
    assert summary.outcomes == {"complete": 8}


def test_a_changed_spec_is_noted_and_unchanged_trials_reused(tmp_path):
    store = Store(tmp_path / "s.db", create=True)
    run_experiment(tiny_spec(), store)
    changed = tiny_spec(tricks={"cosine": {}, "label_smoothing": {"eps": 0.2}})
    _, summary = run_experiment(changed, store)
    assert summary.outcomes == {"complete": 2}, "only the arm whose config changed runs"
    assert any("changed since it was last run; 2 stored trial(s)" in n for n in summary.notes)


def test_a_spec_stored_by_the_first_release_is_not_reported_as_changed(tmp_path):
    import json

    from ablate.design.spec import spec_to_dict

    store = Store(tmp_path / "s.db", create=True)
    spec = tiny_spec(seeds=1, recipe={"epochs": 1})
    run_experiment(spec, store)
    old = spec_to_dict(spec)
    del old["trial"], old["retries"]          # the keys ablate 0.1.0 did not write
    store.save_experiment("tiny", json.dumps(old), None)
    _, summary = run_experiment(spec, store)
    assert summary.notes == [] and summary.ran == 0
