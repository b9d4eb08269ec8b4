"""A command's whole process tree ends with its trial, with real processes: a background job that
keeps the command's stdout open does not hang the trial (it ends when the command exits), and
what the command started is killed then, at a timeout, and when the driver is SIGKILLed, also a
child that escaped into a new session or was double-forked away from the command."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from ablate.store import Store

ROOT = Path(__file__).resolve().parents[2]

# writes the pids of what it starts to PIDS (one a line) before it reports
START = """
import json, os, subprocess, sys, time
pids = open(os.environ["PIDS"], "a")
def note(pid):
    pids.write(f"{pid}\\n"); pids.flush()
"""
BACKGROUND = "note(subprocess.Popen(['sleep', '3305']).pid)\n"          # same group, holds stdout
NEW_SESSION = "note(subprocess.Popen(['sleep', '3306'], start_new_session=True).pid)\n"
DOUBLE_FORK = """
r, w = os.pipe()
if os.fork() == 0:                  # the middle process starts a new session, forks and exits
    os.setsid()
    if os.fork() == 0:
        os.write(w, str(os.getpid()).encode()); os._exit(os.execvp("sleep", ["sleep", "3307"]) or 0)
    os._exit(0)
os.close(w)
note(int(os.read(r, 32)))
"""
REPORT = "print(json.dumps({'val_acc': 90.0}), flush=True)\n"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"     # a zombie is dead
    except FileNotFoundError:
        return False


def _pids(tmp_path: Path) -> list[int]:
    path = tmp_path / "pids"
    return [int(x) for x in path.read_text().split()] if path.exists() else []


@pytest.fixture
def leftovers(tmp_path):
    """Kill whatever a failing test left running."""
    yield
    for pid in _pids(tmp_path):
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


def _spec(tmp_path: Path, body: str, **trial) -> Path:
    """One trial, never retried."""
    (tmp_path / "train.py").write_text(textwrap.dedent(START) + textwrap.dedent(body))
    raw = {"name": "tree", "data": {"name": "digits"},
           "trial": {"command": [sys.executable, "train.py"], "cwd": str(tmp_path),
                     "env": {"PIDS": str(tmp_path / "pids")}, **trial},
           "design": {"kind": "explicit", "arms": [[]]}, "seeds": 1, "retries": {"count": 0}}
    path = tmp_path / "tree.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def _driver(tmp_path: Path, spec: Path, **popen):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, "-m", "ablate", "run", str(spec), "--store", str(tmp_path / "s.db"),
                             "--no-report"], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, **popen)


def _gone(pids: list[int], within_s: float) -> list[int]:
    end = time.monotonic() + within_s
    while [p for p in pids if _alive(p)] and time.monotonic() < end:
        time.sleep(0.05)
    return [p for p in pids if _alive(p)]


@pytest.mark.parametrize("left", [BACKGROUND, NEW_SESSION, DOUBLE_FORK], ids=["group", "new-session", "double-fork"])
def test_the_trial_ends_when_the_command_exits_and_what_it_left_is_killed(tmp_path, leftovers, left):
    """No timeout: before, the background job held stdout and the trial waited for it forever."""
    driver = _driver(tmp_path, _spec(tmp_path, left + REPORT))
    try:
        out = driver.communicate(timeout=60)[0]
    except subprocess.TimeoutExpired:
        driver.kill()
        pytest.fail("the trial did not end when its command exited")
    assert driver.returncode == 0, out
    row = Store(tmp_path / "s.db").trials_frame("tree").iloc[0]
    assert row.status == "complete" and row.val_acc == pytest.approx(90.0)
    pids = _pids(tmp_path)
    assert len(pids) == 1 and not _gone(pids, 5), "what the command left running survived its trial"


def test_a_timeout_kills_a_child_in_a_new_session(tmp_path, leftovers):
    driver = _driver(tmp_path, _spec(tmp_path, NEW_SESSION + DOUBLE_FORK + "time.sleep(60)\n", timeout_s=3))
    out = driver.communicate(timeout=60)[0]
    assert driver.returncode == 3, out          # a failed trial: exit 3
    row = Store(tmp_path / "s.db").trials_frame("tree").iloc[0]
    assert row.status == "failed" and "timeout" in row.error
    pids = _pids(tmp_path)
    assert len(pids) == 2 and not _gone(pids, 5), "a child outside the command's group survived the timeout"


def test_a_sigkilled_driver_takes_the_whole_tree_down(tmp_path, leftovers):
    """The driver's own group is left alone (start_new_session): only the driver is killed."""
    driver = _driver(tmp_path, _spec(tmp_path, BACKGROUND + NEW_SESSION + DOUBLE_FORK + "time.sleep(60)\n"),
                     start_new_session=True)
    end = time.monotonic() + 60
    while len(_pids(tmp_path)) < 3:
        assert time.monotonic() < end and driver.poll() is None, driver.communicate()[0]
        time.sleep(0.05)
    driver.send_signal(signal.SIGKILL)
    driver.communicate()
    pids = _pids(tmp_path)
    assert not _gone(pids, 5), "a process of the command outlived its SIGKILLed driver"
