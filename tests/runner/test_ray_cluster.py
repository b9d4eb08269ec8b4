"""A real two-node Ray cluster on this machine (runners/local-cluster.sh: a head and a worker
node, one CPU each): the quickstart, shrunk, runs through `ablate run --runner ray --address`
with trials on both nodes and the lift table of the in-process runner; a driver SIGKILLed mid-run
leaves nothing lost and a second `ablate run` finishes the rest. Slow: Ray nodes take seconds
to start."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from ablate.report import build_report
from ablate.store import Store

pytest.importorskip("ray")
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "runners" / "local-cluster.sh"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**more) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **more}
    if Path(os.environ.get("RAY_AUTH_TOKEN_PATH", Path.home() / ".ray" / "auth_token")).is_file():
        env.setdefault("RAY_AUTH_MODE", "token")      # as local-cluster.sh starts the nodes
    return env


@pytest.fixture(scope="module")
def cluster():
    port = _free_port()
    folder = tempfile.mkdtemp(prefix="abr", dir="/tmp")     # short: Ray's socket paths live under it
    env = _env(ABLATE_RAY_PORT=str(port), ABLATE_RAY_TMP=folder, ABLATE_RAY_CPUS="1", ABLATE_RAY_STORE_MB="80")
    try:
        started = subprocess.run(["bash", str(SCRIPT), "start"], env=env, capture_output=True, text=True,
                                 timeout=300)
        assert started.returncode == 0, started.stdout + started.stderr
        yield started.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop"], env=env, capture_output=True, timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def shrunk(tmp_path_factory):
    """The quickstart at 1 epoch, 2 seeds, 2 tricks (3 arms, 6 trials)."""
    raw = yaml.safe_load((ROOT / "search_spaces" / "quickstart.yaml").read_text())
    raw["recipe"]["epochs"] = 1
    raw["seeds"] = 2
    raw["tricks"] = {k: raw["tricks"][k] for k in ("cosine", "label_smoothing")}
    raw["resources"] = {"cpu": 1}     # the local cluster's nodes have 1 CPU; every runner then uses 1 thread
    folder = tmp_path_factory.mktemp("spec")
    path = folder / "quickstart.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    reference = folder / "local.db"
    done = subprocess.run([sys.executable, "-m", "ablate", "run", str(path), "--store", str(reference), "--no-report"],
                          cwd=folder, env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return path, Store(reference)


def _ablate_ray(spec: Path, db: Path, address: str, **popen):
    cmd = [sys.executable, "-m", "ablate", "run", str(spec), "--store", str(db), "--runner", "ray",
           "--address", address, "--no-report"]
    return subprocess.Popen(cmd, cwd=spec.parent, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, **popen)


def _lift(store: Store):
    frame = build_report(store, "quickstart").lift.frame
    return frame[[c for c in frame.columns if not c.endswith("_s") and "time" not in c]]


def _trials(store: Store):
    cols = ["trial_id", "arm", "seed", "status", "val_acc", "val_loss", "test_acc"]
    return store.trials_frame("quickstart")[cols].sort_values("trial_id").reset_index(drop=True)


def _complete(db: Path) -> int:
    if not db.exists():
        return 0
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT count(*) FROM ablate_trials WHERE status='complete'").fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        con.close()


def test_trials_land_on_both_nodes_and_the_lift_table_equals_the_in_process_runner(cluster, shrunk, tmp_path):
    spec, reference = shrunk
    db = tmp_path / "ray.db"
    proc = _ablate_ray(spec, db, cluster)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    store = Store(db)
    nodes = {json.loads(e)["ray_node"] for e in store.trials_frame("quickstart")["env"]}
    assert len(nodes) == 2, f"trials ran on {len(nodes)} node(s)"
    assert _trials(store).equals(_trials(reference))
    assert _lift(store).equals(_lift(reference)), f"{_lift(store)}\n!=\n{_lift(reference)}"


def test_a_sigkilled_driver_loses_nothing_and_a_rerun_finishes_the_rest(cluster, shrunk, tmp_path):
    spec, reference = shrunk
    db = tmp_path / "killed.db"
    driver = _ablate_ray(spec, db, cluster)
    end = time.monotonic() + 300
    while _complete(db) < 1 and time.monotonic() < end and driver.poll() is None:
        time.sleep(0.2)
    driver.send_signal(signal.SIGKILL)
    driver.communicate()
    before = _complete(db)
    assert 1 <= before < 6, f"{before} trials were complete when the driver was killed"
    rerun = _ablate_ray(spec, db, cluster)
    out, _ = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, out
    store = Store(db)
    assert _trials(store).equals(_trials(reference))
    done = store.attempts_frame("quickstart")
    assert (done[done.status == "complete"].groupby("trial_id").size() == 1).all(), "no trial completed twice"
