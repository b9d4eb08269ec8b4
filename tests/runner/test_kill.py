"""SIGKILL the driver at random moments, then finish: no complete trial lost or run twice, the
database intact, the final table equal to an uninterrupted run, and no command outlives it."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from ablate.errors import StoreError
from ablate.api import run_experiment
from ablate.design.spec import parse_spec
from ablate.store import Store
from tests.conftest import complete_trials, tiny_dict

ROOT = Path(__file__).resolve().parents[2]

# A command trial that does almost nothing: deterministic metrics from its parameters, and its
# pid left behind so the test can check that no command survives its driver.
SCRIPT = """
import json, os, sys, time
p = json.load(open(os.environ["ABLATE_TRIAL"]))
open(os.path.join(sys.argv[1], str(os.getpid())), "w").close()
score = 50 + 3 * p["seed"] + sum(len(k) for k in p["tricks"])
for e in (1, 2):
    print(json.dumps({"epoch": e, "val_acc": score - 2 + e}), flush=True)
    time.sleep(0.02)
print(json.dumps({"val_acc": score, "test_acc": score - 1}))
"""


def _command_spec_text(tmp_path: Path) -> str:
    (tmp_path / "pids").mkdir(exist_ok=True)
    (tmp_path / "train.py").write_text(textwrap.dedent(SCRIPT))
    raw = {"name": "killme", "data": {"name": "digits"},
           "trial": {"command": [sys.executable, "train.py", str(tmp_path / "pids")], "cwd": str(tmp_path)},
           "tricks": {"a": {"x": 1}, "bb": {"y": 2}, "ccc": {"z": 3}},
           "design": {"kind": "one_at_a_time"}, "seeds": 3}
    return yaml.safe_dump(raw, sort_keys=False)


def _drive(db: str, text: str) -> None:
    """A driver process: run the experiment into `db` (creating it), then exit."""
    run_experiment(parse_spec(text, source="killme.yaml"), Store(db, create=True))
    os._exit(0)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _snapshot(db: Path | str) -> dict[str, float]:
    """{trial id: finished time} of complete trials; checks the database's integrity (SQLite)."""
    if isinstance(db, str):
        return _server_snapshot(db)
    return complete_trials(db, integrity=True)


def _server_snapshot(url: str) -> dict[str, float]:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        if not sa.inspect(engine).has_table("ablate_trials"):
            return {}
        with engine.connect() as c:
            return dict(c.exec_driver_sql("SELECT trial_id, finished FROM ablate_trials WHERE status='complete'").all())
    finally:
        engine.dispose()


def _final_table(store: Store, experiment: str):
    cols = ["trial_id", "arm", "seed", "status", "val_acc", "test_acc"]
    return store.trials_frame(experiment)[cols].sort_values("trial_id").reset_index(drop=True)


def _check_finished(store: Store, experiment: str, reference: Store) -> None:
    got, want = _final_table(store, experiment), _final_table(reference, experiment)
    assert got.equals(want), f"{got}\n!=\n{want}"
    tries = store.attempts_frame(experiment)
    done = tries[tries.status == "complete"].groupby("trial_id").size()
    assert (done == 1).all() and len(done) == len(got), "every trial completed exactly once"
    assert set(tries.status) <= {"complete", "interrupted"}, "a killed driver's attempt was left running"
    epochs = store.epochs_frame(experiment)
    assert (epochs.groupby("trial_id").size() == 2).all(), "no duplicate or partial epochs"


@pytest.fixture(params=["sqlite", "postgresql"])
def kill_store(request, tmp_path):
    """The store the killed drivers share: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return tmp_path / "k.db"
    return request.getfixturevalue("pg_url")


def test_sigkill_the_driver_ten_times_then_finish(tmp_path, kill_store):
    text = _command_spec_text(tmp_path)
    reference = Store(tmp_path / "ref.db", create=True)
    run_experiment(parse_spec(text, source="killme.yaml"), reference)
    for pid in os.listdir(tmp_path / "pids"):
        os.remove(tmp_path / "pids" / pid)

    db = kill_store
    rng = random.Random(20261124)
    ctx = multiprocessing.get_context("fork")    # a driver without the interpreter start-up
    done: dict[str, float] = {}
    for _ in range(10):
        driver = ctx.Process(target=_drive, args=(str(db), text))
        driver.start()
        time.sleep(rng.uniform(0.02, 0.7))
        os.kill(driver.pid, signal.SIGKILL)
        driver.join()
        now = _snapshot(db)
        assert {k: now.get(k) for k in done} == done, "a complete trial was lost or run again"
        done = now
        end = time.monotonic() + 3
        pids = [int(p) for p in os.listdir(tmp_path / "pids")]
        while any(_alive(p) for p in pids) and time.monotonic() < end:
            time.sleep(0.02)
        assert not [p for p in pids if _alive(p)], "a command outlived its killed driver"
    assert 0 < len(done), "the kills left some finished work (otherwise they tested little)"
    store = Store(db)
    _, summary = run_experiment(parse_spec(text, source="killme.yaml"), store)
    assert summary.already_done == len(done)
    assert {k: v for k, v in _snapshot(db).items() if k in done} == done
    _check_finished(store, "killme", reference)


@pytest.mark.slow
def test_sigkill_an_in_process_driver_twenty_times_then_finish(tmp_path):
    spec_path = tmp_path / "tiny.yaml"
    spec_path.write_text(yaml.safe_dump(tiny_dict(recipe={"epochs": 2}, seeds=3), sort_keys=False))
    reference = Store(tmp_path / "ref.db", create=True)
    run_experiment(parse_spec(spec_path.read_text(), source=str(spec_path)), reference)
    db = tmp_path / "k.db"
    cmd = [sys.executable, "-m", "ablate", "run", str(spec_path), "--store", str(db), "--no-report"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    rng = random.Random(7)
    done: dict[str, float] = {}
    for _ in range(20):
        proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.5, 5.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        now = _snapshot(db)
        assert {k: now.get(k) for k in done} == done, "a complete trial was lost or run again"
        done = now
    rerun = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert {k: v for k, v in _snapshot(db).items() if k in done} == done
    store = Store(db)
    got, want = _final_table(store, "tiny"), _final_table(reference, "tiny")
    assert got.equals(want), "bit-for-bit the same table as an uninterrupted run (CPU)"


def test_a_sigkilled_drivers_attempt_is_closed_by_the_next_run(tmp_path):
    """The killed driver's attempt row was left `running` forever; the next run closes it as
    interrupted (as a stopped driver does)."""
    (tmp_path / "train.py").write_text("import time\ntime.sleep(60)\n")
    raw = {"name": "hang", "data": {"name": "digits"},
           "trial": {"command": [sys.executable, "train.py"], "cwd": str(tmp_path), "timeout_s": 1},
           "design": {"kind": "explicit", "arms": [[]]}, "seeds": 1, "retries": {"count": 0}}
    spec = tmp_path / "hang.yaml"
    spec.write_text(yaml.safe_dump(raw, sort_keys=False))
    db = tmp_path / "s.db"
    cmd = [sys.executable, "-m", "ablate", "run", str(spec), "--store", str(db), "--no-report"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    driver = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    end = time.monotonic() + 60

    def attempts():
        try:
            return set(Store(db).attempts_frame("hang").status)
        except StoreError:          # the file exists, its tables not yet
            return set()

    while not (db.exists() and "running" in attempts()):
        assert time.monotonic() < end and driver.poll() is None
        time.sleep(0.05)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    assert list(Store(db).attempts_frame("hang").status) == ["running"]
    rerun = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 3, rerun.stdout + rerun.stderr      # the rerun's attempt times out: failed
    tries = Store(db).attempts_frame("hang")
    assert list(tries.status) == ["interrupted", "failed"], tries
    assert "stopped (killed?)" in tries.error[0] and "timeout" in tries.error[1]
