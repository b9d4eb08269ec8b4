"""One spec, one table whatever the runner (in-process, `--jobs`, Ray), and the README's
command-trial examples (relative `trial.cwd`) under `--runner ray`: on an in-process Ray whose
workers run in Tune's trial folders, as on a cluster. Slow: Ray takes seconds to start."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import torch

from ablate.cli import main
from ablate.runner.experiment import executor_for
from ablate.api import run_experiment
from ablate.store import Store
from tests.conftest import tiny_spec
from tests.runner.ray_helpers import local_ray_for

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def local_ray():
    # the examples' `python` is the one on the PATH (a user's activated venv): this test's, which
    # Ray's workers inherit when Ray starts
    path = os.environ.get("PATH", "")
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), path])
    try:
        with local_ray_for(__name__):
            yield
    finally:
        os.environ["PATH"] = path


# big enough that torch splits its sums over threads (at 8x8 images and width 8 it does not, and
# 1 and 2 threads agree); mixup draws from the trial's own generators
RANDOM_TRICK = dict(data={"name": "digits", "image_size": 16, "train_size": 128},
                    model={"name": "cifar_resnet", "depth": 8, "width": 16}, recipe={"epochs": 1},
                    tricks={"mixup": {"alpha": 1.0}}, seeds=2)


def test_in_process_jobs_and_ray_give_the_same_table_bit_for_bit(local_ray, tmp_path):
    spec = tiny_spec(**RANDOM_TRICK)
    threads_before = torch.get_num_threads()
    got = {}
    for runner, options in {"in-process": {}, "--jobs 2": {"jobs": 2}, "ray": {"runner": "ray"}}.items():
        store = Store(tmp_path / f"{runner}.db", create=True)
        run_experiment(spec, store, executor=executor_for(spec, device="cpu", **options))
        frame = store.trials_frame("tiny").set_index("trial_id").sort_index()
        epochs = store.epochs_frame("tiny").set_index(["trial_id", "epoch"]).sort_index()
        assert (frame["status"] == "complete").all(), runner
        got[runner] = (frame[["val_acc", "val_loss", "test_acc", "test_loss"]], epochs[["train_loss", "val_loss"]],
                       {json.loads(e)["threads"] for e in frame["env"]})
    for runner in ("--jobs 2", "ray"):
        for a, b in zip(got["in-process"][:2], got[runner][:2]):
            assert a.equals(b), f"in-process != {runner}:\n{a}\n{b}"
    assert all(g[2] == {1} for g in got.values()), "resources.cpu 1: one thread, recorded with each trial"
    assert torch.get_num_threads() == threads_before, "the driver's own threads are restored"


@pytest.mark.parametrize("runner", [[], ["--jobs", "2"], ["--runner", "ray"]], ids=["in-process", "jobs", "ray"])
def test_the_examples_command_spec_runs_on_every_runner_with_one_table(local_ray, tmp_path, monkeypatch, capsys,
                                                                       runner, examples_tables):
    monkeypatch.chdir(ROOT)     # `cwd: examples` is relative to where ablate runs, as the README says
    store = tmp_path / "s.db"
    code = main(["run", "examples/digits_flags.yaml", *runner, "--store", str(store), "--out", str(tmp_path / "rep"),
                 "--override", "seeds=1", "--override", 'trial.command=[python, digits_train.py, --epochs, "2"]'])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    frame = Store(str(store)).trials_frame("digits_flags").set_index("trial_id").sort_index()
    assert len(frame) == 4 and (frame["status"] == "complete").all(), frame[["status", "error"]]
    assert {json.loads(e)["cwd"] for e in frame["env"]} == {str(ROOT / "examples")}
    assert {json.loads(e)["threads"] for e in frame["env"]} == {1}
    assert "Traceback" not in out + err
    examples_tables.append(frame[["val_acc", "val_loss", "test_acc", "test_loss"]])
    assert all(t.equals(examples_tables[0]) for t in examples_tables), f"not one table: {examples_tables}"


@pytest.fixture(scope="module")
def examples_tables():
    return []


def test_the_nni_example_runs_under_ray(local_ray, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)     # import-nni writes trial.cwd relative to here: tests/nni/nni_example
    store = tmp_path / "s.db"
    code = main(["run", "tests/nni/nni_example/config_v2.yml", "--runner", "ray", "--shrink", "--store", str(store),
                 "--no-report"])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    frame = Store(str(store)).trials_frame("digits_sgd-shrunk")
    assert (frame["status"] == "complete").any() and not (frame["status"] == "failed").any(), frame[["status", "error"]]
    assert "Traceback" not in out + err
