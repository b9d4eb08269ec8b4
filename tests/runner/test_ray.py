"""The Ray executor: bad input refused before anything runs; on an in-process Ray (2 CPUs, a
200 MB object store, no dashboard, shut down after the module; slow: Ray takes seconds to
start) events become store records and ASHA prunes."""

from __future__ import annotations

import json
import socket
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from ablate.errors import AblateError, SpecError
from ablate.design.plan import plan
from ablate.results import metric_matrix, outcomes
from ablate.config.run import EarlyStop, Resources
from ablate.runner.engine import run_trials
from ablate.runner.inprocess import InProcessExecutor
from ablate.store import Store
from tests.conftest import tiny_dict, tiny_spec
from tests.runner.ray_helpers import local_ray_for

ray = pytest.importorskip("ray")
ROOT = Path(__file__).resolve().parents[2]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]       # closed again when the socket is


# -- no Ray needed ------------------------------------------------------------------------------

@pytest.mark.parametrize("gpu", [1.5, -0.25, 2.5])
def test_a_gpu_share_above_one_or_below_zero_is_refused_at_load(gpu):
    with pytest.raises(SpecError, match="fraction between 0 and 1") as err:
        tiny_spec(resources={"cpu": 1, "gpu": gpu})
    assert err.value.path == "resources.gpu"


def test_resources_and_early_stop_load():
    spec = tiny_spec(resources={"cpu": 2, "gpu": 0.25}, early_stop={"kind": "asha", "grace_epochs": 2})
    assert spec.resources == Resources(cpu=2, gpu=0.25)
    assert spec.early_stop == EarlyStop(grace_epochs=2, reduction=3)
    assert tiny_spec(resources={"gpu": 2}).resources.gpu == 2


def test_an_unreachable_address_fails_within_seconds_naming_it():
    from ablate.runner.ray import RayExecutor

    address = f"127.0.0.1:{closed_port()}"
    t0 = time.monotonic()
    with pytest.raises(AblateError, match=f"cannot reach the Ray cluster at --address '{address}'"):
        RayExecutor(address).check(())
    assert time.monotonic() - t0 < 10
    assert not ray.is_initialized()


def test_cli_unreachable_address_exits_2_and_writes_nothing(tmp_path, spec_file, capsys, monkeypatch):
    from ablate.cli import main

    monkeypatch.chdir(tmp_path)
    path = spec_file(tiny_dict())
    db = tmp_path / "x.db"
    address = f"127.0.0.1:{closed_port()}"
    assert main(["run", str(path), "--store", str(db), "--runner", "ray", "--address", address]) == 2
    assert f"cannot reach the Ray cluster at --address '{address}'" in capsys.readouterr().err
    assert not db.exists() and not (tmp_path / "reports").exists()
    assert not ray.is_initialized()


def test_address_without_ray_runner_is_refused():
    from ablate.runner.experiment import executor_for

    with pytest.raises(AblateError, match="--runner ray"):
        executor_for(tiny_spec(), address="127.0.0.1:6379")


# -- in-process Ray ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def local_ray():
    with local_ray_for(__name__):
        yield


def scored(trial, report, device=None):
    """A stand-in trainer: four epochs whose metric falls with the seed (seed 0 is best)."""
    for epoch in range(1, 5):
        report({"epoch": epoch, "val_acc": 50.0 - 10 * trial.seed + epoch})
    return {"val_acc": 54.0 - 10 * trial.seed}


@pytest.mark.slow
def test_resources_no_node_has_are_refused_naming_the_largest_node(local_ray):
    from ablate.runner.ray import RayExecutor

    with pytest.raises(SpecError, match=r"the largest node has \{cpu: 2, gpu: 0\}") as err:
        RayExecutor(resources=Resources(cpu=64), source="tiny.yaml").check(())
    assert err.value.path == "resources"
    with pytest.raises(SpecError, match="largest node"):
        RayExecutor(resources=Resources(cpu=1, gpu=0.25)).check(())


@pytest.mark.slow
def test_asha_stops_weak_trials_they_are_recorded_pruned_and_kept_out_of_lift_tables(local_ray, tmp_path):
    from ablate.runner.ray import RayExecutor

    spec = tiny_spec(design={"kind": "explicit", "arms": [[]]}, seeds=4, recipe={"epochs": 4})
    p = plan(spec)
    store = Store(tmp_path / "s.db", create=True)
    # one at a time, so ASHA's rungs fill in seed order: seed 0 sets the bar, worse seeds stop
    executor = RayExecutor(run_fn=scored, max_concurrent=1, early_stop=EarlyStop(grace_epochs=1, reduction=2),
                           metric="val_acc", mode="max", epochs=4)
    summary = run_trials(p.trials, store, executor)
    frame = store.trials_frame("tiny").set_index("seed")
    assert frame.loc[0, "status"] == "complete"
    pruned = frame[frame.status == "pruned"]
    assert summary.outcomes.get("pruned", 0) == len(pruned) >= 2
    assert all(e.startswith("stopped early by ASHA after epoch ") for e in pruned.error)
    values, _ = metric_matrix(p, outcomes(p, store.trials_frame("tiny")), "val_acc")
    assert (values[0][pruned.index.to_numpy()] != values[0][pruned.index.to_numpy()]).all(), "pruned: NaN, not a result"


@pytest.mark.slow
def test_a_design_through_ray_equals_the_in_process_runner(local_ray, tmp_path):
    from ablate.runner.ray import RayExecutor

    spec = tiny_spec(recipe={"epochs": 1}, seeds=1)
    trials = plan(spec).trials
    got = Store(tmp_path / "ray.db", create=True)
    assert run_trials(trials, got, RayExecutor(resources=Resources(cpu=1))).outcomes == {"complete": len(trials)}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)        # the Ray trials ran with one torch thread each (cpu: 1)
    try:
        want = Store(tmp_path / "local.db", create=True)
        run_trials(trials, want, InProcessExecutor(device="cpu"))
    finally:
        torch.set_num_threads(threads)
    cols = ["trial_id", "status", "val_acc", "val_loss", "test_acc"]
    a, b = (s.trials_frame("tiny")[cols].sort_values("trial_id").reset_index(drop=True) for s in (got, want))
    assert a.equals(b), f"{a}\n!=\n{b}"
    env = json.loads(got.trials_frame("tiny")["env"].iloc[0])
    assert env["runner"] == "ray" and env["ray_node"] and env["threads"] == 1 and env["device"] == "cpu"
    assert len(got.epochs_frame("tiny")) == len(trials)


class KillWorkerAtEpoch:
    """Wraps an executor: SIGKILLs the worker process of the trial's first attempt when it
    reports epoch `epoch` (the pid comes from its Started event)."""

    def __init__(self, inner, epoch: int) -> None:
        self.inner, self.epoch, self.capacity = inner, epoch, inner.capacity
        self.pids: dict[str, int] = {}
        self.killed: list[int] = []

    def check(self, trials):
        self.inner.check(trials)

    def run(self, trials, emit):
        import os
        import signal

        from ablate.runner.events import EpochMetrics, Started

        def spy(event):
            if isinstance(event, Started):
                self.pids[event.trial_id] = event.env["pid"]
            answer = emit(event)
            if isinstance(event, EpochMetrics) and event.metrics["epoch"] == self.epoch and not self.killed:
                self.killed.append(self.pids[event.trial_id])
                os.kill(self.pids[event.trial_id], signal.SIGKILL)
            return answer

        self.inner.run(trials, spy)


@pytest.mark.slow
def test_a_sigkilled_worker_is_retried_resumes_from_its_checkpoint_and_loses_nothing(local_ray, tmp_path):
    from ablate.runner.ray import RayExecutor
    from ablate.train import run_trial

    spec = tiny_spec(design={"kind": "explicit", "arms": [["cosine"]]}, seeds=1, recipe={"epochs": 3})
    trial = plan(spec).trials[-1]
    store = Store(tmp_path / "s.db", create=True)
    executor = KillWorkerAtEpoch(RayExecutor(retries=spec.retries), epoch=2)
    summary = run_trials([trial], store, executor)
    assert executor.killed and summary.outcomes == {"complete": 1}
    tries = store.attempts_frame("tiny")
    assert list(tries.status) == ["failed", "complete"] and tries.kind.iloc[0] == "exit", tries.error.iloc[0]
    second = json.loads(tries.env.iloc[1])
    assert second["pid"] != executor.killed[0], "a new worker process ran the retry"
    assert second["resumed_after_epoch"] in (1, 2), "the retry resumed from a checkpoint, not from scratch"
    assert "resumed_after_epoch" not in json.loads(tries.env.iloc[0])

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        whole: list[dict] = []
        want = run_trial(trial, whole.append, device="cpu")
    finally:
        torch.set_num_threads(threads)
    epochs = store.epochs_frame("tiny").sort_values("epoch")
    assert list(epochs.epoch) == [1, 2, 3], "every epoch kept, none twice"
    assert list(epochs.val_acc) == [m["val_acc"] for m in whole]
    assert list(epochs.train_loss) == [m["train_loss"] for m in whole]
    got = store.trials_frame("tiny").iloc[0]
    for name in ("val_acc", "val_loss", "test_acc", "train_loss"):
        assert got[name] == want[name], name


def test_the_report_marks_trials_asha_stopped_and_leaves_them_out_of_the_lift_table(tmp_path):
    from ablate.errors import TrialPruned
    from ablate.report import build_report
    from ablate.api import run_experiment

    def stopped_on_seed_2(trial, report, device=None):
        report({"epoch": 1, "val_acc": 50.0 + trial.seed})
        if trial.seed == 2 and trial.tricks:
            raise TrialPruned("stopped early by ASHA after epoch 1")
        return {"val_acc": 50.0 + trial.seed + len(trial.tricks), "test_acc": 1.0}

    store = Store(tmp_path / "s.db", create=True)
    run_experiment(tiny_spec(seeds=3), store, executor=InProcessExecutor(run_fn=stopped_on_seed_2))
    report = build_report(store, "tiny")
    text = report.markdown()
    assert "Trials: 7 complete, 2 pruned." in text
    assert "seed 2: pruned (stopped early by ASHA after epoch 1)" in text
    assert "not averaged into the accuracies" in text
    assert report.lift.frame["n"].tolist()[1:] == [2, 2], "a stopped seed is not a finished one"


COMMAND_SCRIPT = """
import json, os
p = json.load(open(os.environ["ABLATE_TRIAL"]))
score = 50 + 3 * p["seed"] + sum(len(k) for k in p["tricks"])
for e in (1, 2):
    print(json.dumps({"epoch": e, "val_acc": score - 2 + e}), flush=True)
print(json.dumps({"val_acc": score, "test_acc": score - 1}))
"""


@pytest.mark.slow
def test_command_trials_run_through_ray_with_the_command_executors_logic(local_ray, tmp_path):
    from ablate.runner.command import CommandExecutor
    from ablate.config.run import CommandTrial
    from ablate.runner.ray import RayExecutor

    (tmp_path / "train.py").write_text(COMMAND_SCRIPT)
    raw = {"name": "cmd", "data": {"name": "digits"},
           "trial": {"command": [sys.executable, "train.py"], "cwd": str(tmp_path)},
           "tricks": {"a": {"x": 1}, "bb": {"y": 2}}, "design": {"kind": "one_at_a_time"}, "seeds": 2}
    from ablate.design.spec import parse_spec

    spec = parse_spec(yaml.safe_dump(raw), source="cmd.yaml")
    trials = plan(spec).trials
    got, want = Store(tmp_path / "ray.db", create=True), Store(tmp_path / "local.db", create=True)
    assert run_trials(trials, got, RayExecutor(command=spec.trial)).outcomes == {"complete": len(trials)}
    run_trials(trials, want, CommandExecutor(CommandTrial(**raw["trial"])))
    cols = ["trial_id", "status", "val_acc", "test_acc", "epochs"]
    a, b = (s.trials_frame("cmd")[cols].sort_values("trial_id").reset_index(drop=True) for s in (got, want))
    assert a.equals(b), f"{a}\n!=\n{b}"
    assert len(got.epochs_frame("cmd")) == 2 * len(trials)
    env = json.loads(got.trials_frame("cmd")["env"].iloc[0])
    assert env["runner"] == "ray" and env["command"].endswith("train.py")


def test_asha_rungs_stay_below_the_last_epoch_and_one_epoch_has_no_scheduler(monkeypatch):
    from ablate.runner.ray import RayExecutor, storage_uri

    early = EarlyStop(grace_epochs=1, reduction=3)
    assert RayExecutor(early_stop=early, epochs=1)._scheduler() is None
    asha = RayExecutor(early_stop=early, epochs=10)._scheduler()
    assert asha._max_t == 9 and asha._time_attr == "epoch" and asha._metric == "val_acc"
    assert RayExecutor(early_stop=EarlyStop(metric="val_loss"), mode="min", epochs=5)._scheduler()._metric == "val_loss"
    assert RayExecutor(epochs=10)._scheduler() is None
    monkeypatch.setenv("ABLATE_RAY_STORAGE", "s3://bucket/ablate")
    assert RayExecutor().storage_path == "s3://bucket/ablate" and storage_uri("s3://bucket/ablate") == "s3://bucket/ablate"


@pytest.mark.slow
def test_save_final_through_ray_writes_the_weights_and_records_their_path_like_the_local_runner(local_ray, tmp_path):
    from ablate.models.weights import trial_weights_path
    from ablate.runner.experiment import executor_for
    from ablate.api import run_experiment

    spec = tiny_spec(design={"kind": "explicit", "arms": [[]]}, seeds=1, recipe={"epochs": 1}, save="final")
    got = Store(tmp_path / "ray" / "s.db", create=True)
    executor = executor_for(spec, runner="ray", weights_root=tmp_path / "ray" / "weights")
    p, summary = run_experiment(spec, got, executor=executor)
    assert summary.outcomes == {"complete": 1}
    want = Store(tmp_path / "local" / "s.db", create=True)
    run_experiment(spec, want)          # the local runner: weights beside its store
    for store, root in ((got, tmp_path / "ray" / "weights"), (want, tmp_path / "local" / "weights")):
        path = trial_weights_path(root, "tiny", p.trials[0].id)
        assert path.is_file()
        assert json.loads(store.trial_row("tiny", p.trials[0].id)["metrics"])["weights"] == str(path)


@pytest.mark.slow
def test_a_teacher_named_by_trial_is_found_by_ray_workers(local_ray, tmp_path):
    from ablate.runner.experiment import executor_for
    from ablate.api import run_experiment

    store = Store(tmp_path / "s.db", create=True)
    root = tmp_path / "weights"
    one = {"design": {"kind": "explicit", "arms": [[]]}, "tricks": {}, "seeds": 1, "recipe": {"epochs": 1}}
    teacher = tiny_spec(name="teacher", save="final", **one)
    tp, _ = run_experiment(teacher, store, executor=executor_for(teacher, runner="ray", weights_root=root))
    student = tiny_spec(name="student", tricks={"distill": {"trial": f"teacher/{tp.trials[0].label}@0"}},
                        design={"kind": "one_at_a_time"}, seeds=1, recipe={"epochs": 1})
    _, summary = run_experiment(student, store, executor=executor_for(student, runner="ray", weights_root=root))
    frame = store.trials_frame("student")
    assert summary.outcomes == {"complete": 2}, frame["error"].tolist()
    assert frame["train_loss"].nunique() == 2, "the distilled arm trained with its teacher"


@pytest.mark.slow
def test_a_weights_folder_some_node_does_not_see_is_refused_naming_it(local_ray, tmp_path, monkeypatch):
    from ablate.runner import ray_nodes

    (tmp_path / "here").write_text("x")
    assert ray_nodes.nodes_missing(tmp_path / "here") == []          # the one node shares this disk
    assert len(ray_nodes.nodes_missing(tmp_path / "absent")) == 1
    ray_nodes.check_folder_on_every_node(tmp_path / "weights", "the weights folder")
    assert [f.name for f in tmp_path.iterdir()] == ["here"], "the probe leaves nothing behind"
    # a node on other storage: the driver's marker is not there
    monkeypatch.setattr(ray_nodes, "nodes_missing", lambda path: ["abc (10.0.0.9)"])
    with pytest.raises(AblateError, match=r"the weights folder is .*weights, but Ray node\(s\) abc \(10.0.0.9\)"):
        ray_nodes.check_folder_on_every_node(tmp_path / "weights", "the weights folder")


def zigzag(trial, report, device=None):
    """Six epochs of a deterministic metric that ranks the seeds differently at each epoch."""
    for epoch in range(1, 7):
        report({"epoch": epoch, "val_acc": float((trial.seed * 7 + epoch * 3) % 11 + epoch)})
    return {"val_acc": 1.0}


@pytest.mark.slow
def test_the_local_runner_and_ray_stop_the_same_trials(local_ray, tmp_path):
    from ablate.runner.experiment import executor_for
    from ablate.api import run_experiment

    spec = tiny_spec(design={"kind": "explicit", "arms": [[]]}, seeds=8, recipe={"epochs": 6},
                     early_stop={"grace_epochs": 1, "reduction": 2})
    stores = {}
    for runner in ("local", "ray"):
        stores[runner] = Store(tmp_path / f"{runner}.db", create=True)
        executor = executor_for(spec, runner=runner)
        if runner == "ray":
            executor.run_fn, executor.max_concurrent = zigzag, 1     # one at a time: results in trial order
        else:
            executor.run_fn = zigzag
        run_experiment(spec, stores[runner], executor=executor)
    def stops(store):
        frame = store.trials_frame("tiny").set_index("trial_id")
        frame["epochs_run"] = store.epochs_frame("tiny").groupby("trial_id").size()
        return frame.set_index("seed")[["status", "error", "epochs_run"]].sort_index()

    local, on_ray = stops(stores["local"]), stops(stores["ray"])
    assert 0 < (local.status == "pruned").sum() < 8, local
    assert local.equals(on_ray), f"{local}\n!=\n{on_ray}"


def torch_free(trial, report, device=None):
    """A stand-in trainer that says whether its worker process has imported torch."""
    import sys as _sys

    imported = float("torch" in _sys.modules)
    report({"epoch": 1, "torch_imported": imported})
    return {"val_acc": 1.0, "torch_imported": imported}


@pytest.mark.slow
def test_a_stand_in_trainer_on_ray_does_not_pay_torchs_import(local_ray, tmp_path):
    """torch's import costs seconds in each new worker process: the benchmark's zero-work trials
    (and a plain Tune loop) do not pay it, so ablate's worker must not either."""
    from ablate.runner.ray import RayExecutor

    trials = plan(tiny_spec(design={"kind": "explicit", "arms": [[]]}, seeds=2)).trials
    store = Store(tmp_path / "s.db", create=True)
    assert run_trials(trials, store, RayExecutor(run_fn=torch_free)).outcomes == {"complete": 2}
    assert store.trials_frame("tiny")["torch_imported"].tolist() == [0.0, 0.0]
