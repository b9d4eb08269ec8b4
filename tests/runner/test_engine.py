"""The run engine: trial identity and the trainer's numbers survive the refactor; sources,
executors and the recorder plug together; retries, pruning and open metrics."""

from __future__ import annotations

import pytest

from ablate.design.plan import plan
from ablate.api import run_experiment
from ablate.design.spec import parse_spec, spec_from_dict, spec_to_dict
from ablate.store import Store

# The quickstart of ablate 0.1.0, verbatim (the bundled one has changed since): the ids of its
# 15 trials as that release (store schema ablate-store/1) computed them must not change, so stores
# made by that release keep resuming.
QUICKSTART_0_1 = """
name: quickstart
description: Cumulative ablation of four tricks on a ResNet-8, handwritten digits, 3 seeds.
data: {name: digits, image_size: 16, train_size: 300}
model: {name: cifar_resnet, depth: 8}
recipe: {epochs: 30, batch_size: 64, optimizer: sgd, lr: 0.1, momentum: 0.9,
         weight_decay: 5.0e-4, schedule: step, milestones: [0.5, 0.75]}
tricks:
  cosine: {}
  label_smoothing: {eps: 0.1}
  nesterov: {}
  mixup: {alpha: 0.2}
design: {kind: cumulative}
seeds: 3
metric: {name: val_acc}
"""

QUICKSTART_IDS = [
    "35529a64a4465d8a", "922beb8b7d6afa46", "8357a0c88102f31d", "fefd4c8417934f2c", "5fa41a33941105d9",
    "59f1b02da85b01cd", "7b3871446f6fbcda", "9de6b3b0e8ea8934", "b538a89263441b57", "733d17e6762d79d6",
    "30e769ca68b131fe", "643d46d1d6135f6a", "fb111458052f6af3", "4a1fb79c9383edde", "00ee547a1b158aa0",
]

# Per-trial metrics of the shrunk quickstart below, computed on the CPU by the runner before the
# engine refactor (commit 22f1e04). Only tricks that draw no randomness, so that routing the
# tricks' draws through their own generators does not move them.
PINNED = {
    "e622316a435b5f3b": {"val_acc": 12.256267409470752, "val_loss": 2.3030898750326427,
                         "test_acc": 10.86350974930362, "test_loss": 2.298699934170439,
                         "epoch_train_loss": [2.3813188870747886, 2.3004074096679688]},
    "038676c09da37950": {"val_acc": 8.913649025069638, "val_loss": 2.3045275164845926,
                         "test_acc": 10.30640668523677, "test_loss": 2.2998934349973887,
                         "epoch_train_loss": [2.3864596684773765, 2.295950253804525]},
}


def shrunk_quickstart():
    raw = spec_to_dict(quickstart_0_1())
    raw["tricks"] = {k: v for k, v in raw["tricks"].items() if k != "mixup"}
    raw["recipe"]["epochs"] = 2
    raw["data"] = {**raw["data"], "train_size": 96, "image_size": 8}
    raw["seeds"] = [0]
    raw["design"] = {"kind": "explicit", "arms": [[], ["cosine", "label_smoothing", "nesterov"]]}
    # the pins were computed with torch's default threads on this project's 2-core CPU: 2; a trial's
    # threads now come from resources.cpu on every runner (ablate.runner.threads)
    raw["resources"] = {"cpu": 2}
    return spec_from_dict(raw, check_files=False)


def quickstart_0_1():
    return parse_spec(QUICKSTART_0_1, source="quickstart-0.1.yaml", check_files=False)


def test_quickstart_trial_ids_are_unchanged():
    assert [t.id for t in plan(quickstart_0_1()).trials] == QUICKSTART_IDS


def test_quickstart_metrics_are_pinned_bit_for_bit_on_the_cpu(tmp_path):
    store = Store(tmp_path / "s.db", create=True)
    spec = shrunk_quickstart()
    run_experiment(spec, store, device="cpu")
    frame = store.trials_frame(spec.name).set_index("trial_id")
    epochs = store.epochs_frame(spec.name)
    assert sorted(frame.index) == sorted(PINNED)
    for tid, want in PINNED.items():
        for col in ("val_acc", "val_loss", "test_acc", "test_loss"):
            assert frame.loc[tid, col] == want[col], (tid, col)
        got = epochs[epochs.trial_id == tid].sort_values("epoch").train_loss.tolist()
        assert got == want["epoch_train_loss"], tid


@pytest.mark.slow
def test_two_driver_processes_share_the_work_without_overlap(tmp_path):
    import os
    import subprocess
    import sys
    import textwrap
    from pathlib import Path

    import yaml

    (tmp_path / "train.py").write_text(textwrap.dedent("""
        import json, os, time
        p = json.load(open(os.environ["ABLATE_TRIAL"]))
        time.sleep(0.3)
        print(json.dumps({"val_acc": 50 + p["seed"]}))
    """))
    raw = {"name": "shared", "data": {"name": "digits"},
           "trial": {"command": [sys.executable, "train.py"], "cwd": str(tmp_path)},
           "tricks": {"a": {"x": 1}, "b": {"y": 1}, "c": {"z": 1}}, "design": {"kind": "one_at_a_time"},
           "seeds": 2}
    spec = tmp_path / "shared.yaml"
    spec.write_text(yaml.safe_dump(raw, sort_keys=False))
    db = tmp_path / "s.db"
    Store(db, create=True)
    root = Path(__file__).resolve().parents[2]
    cmd = [sys.executable, "-m", "ablate", "run", str(spec), "--store", str(db), "--no-report"]
    env = {**os.environ, "PYTHONPATH": str(root)}
    drivers = [subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True) for _ in range(2)]
    outs = [d.communicate(timeout=300)[0] for d in drivers]
    assert [d.returncode for d in drivers] == [0, 0], outs
    store = Store(db)
    frame = store.trials_frame("shared")
    assert len(frame) == 8 and (frame.status == "complete").all() and (frame.attempts == 1).all()
    tries = store.attempts_frame("shared")
    assert len(tries) == 8, "no trial ran twice"
    assert tries.holder.nunique() == 2, "both drivers ran trials"


def _zero_work(trial, report, device=None):
    import time

    report({"epoch": 1, "val_acc": float(trial.seed)})
    time.sleep(0.01)
    return {"val_acc": float(trial.seed), "test_acc": 1.0}


def test_two_engines_on_one_store_never_run_the_same_trial(tmp_path):
    import threading

    from ablate.runner.engine import Engine
    from ablate.runner.inprocess import InProcessExecutor
    from ablate.runner.sources import DesignSource
    from tests.conftest import tiny_spec

    spec = tiny_spec(seeds=8)
    trials = plan(spec).trials
    Store(tmp_path / "s.db", create=True)
    summaries = []

    def drive():
        engine = Engine(Store(tmp_path / "s.db"), spec.name, InProcessExecutor(run_fn=_zero_work), poll_s=0.02)
        summaries.append(engine.run(DesignSource(trials)))

    threads = [threading.Thread(target=drive) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    store = Store(tmp_path / "s.db")
    tries = store.attempts_frame(spec.name)
    assert len(tries) == len(trials) and tries.trial_id.is_unique, "no trial ran twice"
    assert sum(s.ran for s in summaries) == len(trials)
    assert (store.trials_frame(spec.name).status == "complete").all()


class StopAtEpochTwo:
    def should_stop(self, trial, metrics):
        return metrics["epoch"] >= 2


def test_an_epoch_answered_with_stop_prunes_the_in_process_trial_for_good(tmp_path):
    from ablate.runner.engine import Engine
    from ablate.runner.inprocess import InProcessExecutor
    from ablate.runner.sources import DesignSource
    from tests.conftest import tiny_spec

    spec = tiny_spec(recipe={"epochs": 4}, seeds=1)
    trial = plan(spec).trials[0]
    store = Store(tmp_path / "s.db", create=True)
    summary = Engine(store, spec.name, InProcessExecutor(), pruner=StopAtEpochTwo()).run(DesignSource([trial]))
    assert summary.outcomes == {"pruned": 1}
    assert list(store.epochs_frame(spec.name).epoch) == [1, 2]
    again = Engine(store, spec.name, InProcessExecutor()).run(DesignSource([trial]))
    assert again.ran == 0 and again.already_done == 1


def test_the_heartbeat_keeps_a_long_trial_claimed(tmp_path):
    import threading
    import time

    from ablate.runner.engine import Engine
    from ablate.runner.inprocess import InProcessExecutor
    from ablate.runner.sources import DesignSource
    from tests.conftest import tiny_spec

    def slow(trial, report, device=None):
        time.sleep(1.2)
        return {"val_acc": 1.0}

    spec = tiny_spec(seeds=1)
    trial = plan(spec).trials[0]
    store = Store(tmp_path / "s.db", create=True)
    engine = Engine(store, spec.name, InProcessExecutor(run_fn=slow), lease_s=0.4)
    driver = threading.Thread(target=engine.run, args=(DesignSource([trial]),))
    driver.start()
    time.sleep(0.8)                      # two leases long: alive only through the heartbeat
    taken = store.claim(spec.name, trial.id, "elsewhere:1:other", lease_s=60)
    driver.join()
    assert not taken, "a running trial's claim lapsed while its driver was alive"
    assert store.trial_statuses(spec.name)[trial.id] == "complete"


# -- several trials at once (`--jobs`) ---------------------------------------------------------


def test_jobs_run_trials_at_the_same_time_and_record_every_event(tmp_path):
    import threading

    from ablate.runner.engine import Engine
    from ablate.runner.inprocess import InProcessExecutor
    from ablate.runner.sources import DesignSource
    from tests.conftest import tiny_spec

    spec = tiny_spec(seeds=2)
    trials = plan(spec).trials
    barrier = threading.Barrier(2, timeout=10)   # breaks (an error) unless two trials overlap

    def paired(trial, report, device=None):
        barrier.wait()
        report({"epoch": 1, "val_acc": 1.0})
        return {"val_acc": 50.0 + trial.seed}

    store = Store(tmp_path / "s.db", create=True)
    summary = Engine(store, spec.name, InProcessExecutor(run_fn=paired, jobs=2)).run(DesignSource(trials))
    assert summary.outcomes == {"complete": len(trials)}
    assert len(store.epochs_frame(spec.name)) == len(trials)
    frame = store.trials_frame(spec.name)
    assert sorted(frame.val_acc) == sorted(50.0 + t.seed for t in trials)


def test_jobs_give_the_same_metrics_as_one_at_a_time(tmp_path):
    import os

    import torch

    from ablate.runner.engine import Engine
    from ablate.runner.inprocess import InProcessExecutor
    from ablate.runner.sources import DesignSource
    from tests.conftest import tiny_spec

    spec = tiny_spec(seeds=2)
    trials = plan(spec).trials
    results = {}
    threads = torch.get_num_threads()
    # one at a time on each job's share of the threads: the same kernels, the same sums
    torch.set_num_threads(max(1, min(threads, os.cpu_count() or 1) // 2))
    try:
        for jobs in (1, 2):
            store = Store(tmp_path / f"s{jobs}.db", create=True)
            executor = InProcessExecutor(jobs=jobs)
            if jobs == 2:
                torch.set_num_threads(threads)     # the executor gives each job its share
            Engine(store, spec.name, executor).run(DesignSource(trials))
            frame = store.trials_frame(spec.name).set_index("trial_id").sort_index()
            results[jobs] = frame[["val_acc", "val_loss", "train_loss"]]
    finally:
        torch.set_num_threads(threads)
    # model init and torchvision's transforms fork torch's global RNG: under GLOBAL_RNG_LOCK,
    # threads cannot draw from each other's state
    assert results[1].equals(results[2])


def test_jobs_answer_stop_prunes_each_trial(tmp_path):
    from ablate.runner.engine import Engine
    from ablate.runner.inprocess import InProcessExecutor
    from ablate.runner.sources import DesignSource
    from tests.conftest import tiny_spec

    def epochs(trial, report, device=None):
        for e in range(1, 5):
            report({"epoch": e, "val_acc": 1.0})
        return {"val_acc": 1.0}

    spec = tiny_spec(seeds=2)
    trials = plan(spec).trials
    store = Store(tmp_path / "s.db", create=True)
    summary = Engine(store, spec.name, InProcessExecutor(run_fn=epochs, jobs=3),
                     pruner=StopAtEpochTwo()).run(DesignSource(trials))
    assert summary.outcomes == {"pruned": len(trials)}
    assert (store.epochs_frame(spec.name).groupby("trial_id").epoch.max() == 2).all()


def test_an_interrupted_parallel_batch_goes_back_to_pending(tmp_path):
    import pytest

    from ablate.runner.engine import Engine
    from ablate.runner.inprocess import InProcessExecutor
    from ablate.runner.sources import DesignSource
    from tests.conftest import tiny_spec

    def interrupt(trial, report, device=None):
        report({"epoch": 1, "val_acc": 1.0})
        return {"val_acc": 1.0}

    class CtrlC:
        def should_stop(self, trial, metrics):
            raise KeyboardInterrupt

    spec = tiny_spec(seeds=2)
    trials = plan(spec).trials
    store = Store(tmp_path / "s.db", create=True)
    with pytest.raises(KeyboardInterrupt):
        Engine(store, spec.name, InProcessExecutor(run_fn=interrupt, jobs=2),
               pruner=CtrlC()).run(DesignSource(trials))
    statuses = store.trial_statuses(spec.name)
    assert set(statuses.values()) == {"pending"}, statuses
    again = Engine(store, spec.name, InProcessExecutor(run_fn=interrupt, jobs=2)).run(DesignSource(trials))
    assert again.outcomes == {"complete": len(trials)}


def test_capacity_is_part_of_the_executor_protocol_and_every_executor_has_it(tmp_path):
    """The engine claims `executor.capacity` trials per run call: the protocol says so, and an
    executor without it is refused instead of silently running one trial at a time."""
    from ablate.runner.engine import Engine, RunSummary
    from ablate.runner.events import Executor
    from ablate.runner.inprocess import InProcessExecutor
    from ablate.runner.sources import DesignSource
    from tests.conftest import tiny_spec

    assert "capacity" in Executor.__dict__
    assert InProcessExecutor(jobs=2).capacity >= 1

    class NoCapacity:
        def check(self, trials):
            pass

        def run(self, trials, emit):   # pragma: no cover (never reached)
            raise AssertionError

    p = plan(tiny_spec())
    store = Store(tmp_path / "a.db", create=True)
    with pytest.raises(AttributeError, match="capacity"):
        Engine(store, "tiny", NoCapacity()).run(DesignSource(p.trials[:1]), RunSummary())
