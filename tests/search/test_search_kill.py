"""SIGKILL `ablate run` in the middle of a search, then run it again: n_trials complete in all,
no finished trial run twice, the dead driver's running trial failed with its reason and asked
again, and the study's trial count consistent with that; killed in the selection stage, the
rerun finishes it and reports the winner the stored selection runs choose."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import optuna
import pytest
import yaml

from tests.conftest import complete_trials

ROOT = Path(__file__).resolve().parents[2]

# a command trial: its metric is a function of its searched value `lr`; each epoch takes a while
SCRIPT = """
import json, os, time
p = json.load(open(os.environ["ABLATE_TRIAL"]))
lr = p["values"]["lr"]
for e in (1, 2, 3):
    print(json.dumps({"epoch": e, "val_acc": 50 + 10 * lr * e}), flush=True)
    time.sleep(0.25)
print(json.dumps({"val_acc": 50 + 30 * lr + (p["seed"] * 7919 * lr) % 5}))
"""


def _spec(tmp_path: Path, **search) -> Path:
    (tmp_path / "train.py").write_text(textwrap.dedent(SCRIPT))
    raw = {"name": "killsearch", "data": {"name": "digits"},
           "trial": {"command": [sys.executable, "train.py"], "cwd": str(tmp_path)},
           "seeds": search.pop("seeds", 1),
           "search": {"params": {"params.lr": {"type": "float", "low": 0.01, "high": 1.0}},
                      "sampler": {"name": "random", "seed": 3}, "n_trials": 6, "validate": False, **search}}
    path = tmp_path / "killsearch.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.mark.slow
def test_a_killed_search_resumes_without_repeating_finished_trials(tmp_path):
    spec, db = _spec(tmp_path), tmp_path / "s.db"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "ablate", "run", str(spec), "--store", str(db), "--no-report"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 300
    while len(complete_trials(db)) < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    time.sleep(0.3)                        # into the next trial's epochs
    os.killpg(proc.pid, signal.SIGKILL)    # the driver and its running command
    proc.wait()
    before = complete_trials(db)
    assert 2 <= len(before) < 6
    study = optuna.load_study(study_name="killsearch", storage=f"sqlite:///{db}")
    assert any(t.state.name == "RUNNING" for t in study.trials), "killed while a trial ran"

    rerun = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    after = complete_trials(db)
    assert len(after) == 6
    assert all(after[tid] == t for tid, t in before.items()), "a finished trial ran again"

    study = optuna.load_study(study_name="killsearch", storage=f"sqlite:///{db}")
    states = [t.state.name for t in study.trials]
    requeued = [t for t in study.trials if t.user_attrs.get("ablate_requeued")]
    assert states.count("COMPLETE") == 6 and "RUNNING" not in states
    assert len(requeued) >= 1 and all(t.state.name == "FAIL" for t in requeued)
    assert all("driver stopped" in t.user_attrs["ablate_reason"] for t in requeued)
    assert len(study.trials) == 6 + len(requeued)
    ids = [t.user_attrs["ablate_trial_id"] for t in study.trials if t.state.name == "COMPLETE"]
    assert len(set(ids)) == 6 and set(ids) == set(after)
    # the re-asked trial is the one the dead driver left: same parameters, now complete
    for t in requeued:
        again = [u for u in study.trials if u.user_attrs.get("ablate_requeued_from") == t.number]
        assert len(again) == 1 and again[0].state.name == "COMPLETE" and again[0].params == t.params


def _rows(db: Path) -> list[tuple]:
    if not db.exists():
        return []
    con = sqlite3.connect(db, timeout=30)
    try:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "ablate_trials" not in tables:
            return []
        return list(con.execute("SELECT trial_id, status, reason, finished FROM ablate_trials"))
    finally:
        con.close()


@pytest.mark.slow
def test_a_search_killed_while_it_selects_finishes_the_stages_and_reports_the_stored_choice(tmp_path):
    from ablate.report.search import build_search_report
    from ablate.report.frames import load_experiment
    from ablate.store import Store

    spec = _spec(tmp_path, seeds=4, n_trials=4, validate={"top_k": 2, "select_seeds": 1})
    db = tmp_path / "s.db"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "ablate", "run", str(spec), "--store", str(db), "--no-report"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if any(st == "running" and reason.startswith("select") for _, st, reason, _ in _rows(db)):
            break
        time.sleep(0.05)
    time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = {tid: fin for tid, st, _, fin in _rows(db) if st == "complete"}
    assert any(st == "running" and r.startswith("select") for _, st, r, _ in _rows(db)), "killed while selecting"

    rerun = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    rows = _rows(db)
    assert all(st == "complete" for _, st, _, _ in rows), rows
    assert all(fin == before[tid] for tid, _, _, fin in rows if tid in before), "a finished trial ran again"
    reasons = sorted(r.split(":")[0] for _, _, r, _ in rows)
    assert reasons.count("select") == 2 and reasons.count("report") == 2 * 2 and reasons.count("search") == 4
    store = Store(db)
    r = build_search_report(store, load_experiment(store, "killsearch"))
    f = r.finalists[0]
    scores = f.table.set_index("config")["select_score"]
    best = scores.idxmax()
    assert f.table.set_index("config").at[best, "role"] == "winner", "the winner is the stored selection's best"
    assert f.table.query("role != ''")["n"].tolist() == [2, 2]
