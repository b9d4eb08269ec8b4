"""`--store postgresql://...` from the command line: a design end to end (the same table as on
SQLite), two drivers sharing one experiment, and every way the URL can be wrong (exit 2 within
seconds, the server, port and database named, the password never printed, nothing written)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from ablate.cli import main
from ablate.store import Store
from ablate.store_engine import CONNECT_TIMEOUT_S, engine_options
from tests.conftest import tiny_dict
from tests.pg import PASSWORD

ROOT = Path(__file__).resolve().parents[2]
# quickstart-sized, tiny: 2 tricks one at a time, 2 seeds, 1 epoch on digits
SMALL = tiny_dict(recipe={"epochs": 1}, seeds=2)


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]     # nothing listens there once closed


def _comparable(store: Store, experiment: str):
    cols = ["trial_id", "arm", "seed", "status", "attempts", "val_acc", "val_loss", "test_acc", "test_loss", "params"]
    return store.trials_frame(experiment)[cols].sort_values("trial_id").reset_index(drop=True)


def test_a_design_on_postgresql_gives_the_table_it_gives_on_sqlite(capsys, spec_file, tmp_path, pg_url, monkeypatch):
    from ablate.report import build_report

    monkeypatch.chdir(tmp_path)
    path = spec_file(SMALL)
    code, out, err = run(capsys, "run", str(path), "--store", pg_url, "--no-report")
    assert code == 0, err
    assert PASSWORD not in out + err and "***@127.0.0.1" in out
    code, out, err = run(capsys, "run", str(path), "--store", str(tmp_path / "s.db"), "--no-report")
    assert code == 0, err
    pg, lite = Store(pg_url), Store(tmp_path / "s.db")
    got, want = _comparable(pg, "tiny"), _comparable(lite, "tiny")
    assert len(got) == 6 and got.equals(want), f"{got}\n!=\n{want}"
    time_cols = [c for c in build_report(pg, "tiny").lift.frame.columns if "time" in c.lower() or "wall" in c.lower()]
    lift_pg = build_report(pg, "tiny").lift.frame.drop(columns=time_cols)
    lift_lite = build_report(lite, "tiny").lift.frame.drop(columns=time_cols)
    assert lift_pg.equals(lift_lite), f"{lift_pg}\n!=\n{lift_lite}"
    code, out, err = run(capsys, "status", "tiny", "--store", pg_url)
    assert code == 0 and "6 complete" in out and PASSWORD not in out + err
    code, out, err = run(capsys, "report", "tiny", "--store", pg_url, "--out", str(tmp_path / "rep"))
    assert code == 0 and "reference" in out and PASSWORD not in out + err


# A command trial that waits (up to 20 s) until trials of two different drivers run at once, so
# both drivers surely take part, then reports metrics from its parameters.
SHARED = """
import json, os, sys, time
p = json.load(open(os.environ["ABLATE_TRIAL"]))
marks = sys.argv[1]
open(os.path.join(marks, os.environ["TEST_DRIVER"]), "w").close()
end = time.monotonic() + 20
while len(os.listdir(marks)) < 2 and time.monotonic() < end:
    time.sleep(0.02)
score = 50 + 3 * p["seed"] + sum(len(k) for k in p["tricks"])
print(json.dumps({"epoch": 1, "val_acc": score - 1}), flush=True)
print(json.dumps({"val_acc": score, "test_acc": score - 1}))
"""


def test_two_drivers_share_one_experiment_without_running_a_trial_twice(tmp_path, pg_url):
    (tmp_path / "marks").mkdir()
    (tmp_path / "train.py").write_text(textwrap.dedent(SHARED))
    raw = {"name": "shared", "data": {"name": "digits"},
           "trial": {"command": [sys.executable, "train.py", str(tmp_path / "marks")], "cwd": str(tmp_path)},
           "tricks": {"a": {"x": 1}, "bb": {"y": 2}, "ccc": {"z": 3}}, "design": {"kind": "one_at_a_time"},
           "seeds": 3}
    (tmp_path / "shared.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    cmd = [sys.executable, "-m", "ablate", "run", "shared.yaml", "--store", pg_url, "--no-report"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    drivers = [subprocess.Popen(cmd, cwd=tmp_path, env={**env, "TEST_DRIVER": str(i)}, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True) for i in range(2)]
    outputs = [d.communicate(timeout=300)[0] for d in drivers]
    assert [d.returncode for d in drivers] == [0, 0], outputs
    assert not any(PASSWORD in o for o in outputs)
    store = Store(pg_url)
    frame = store.trials_frame("shared")
    assert len(frame) == 12 and (frame.status == "complete").all() and (frame.attempts == 1).all()
    tries = store.attempts_frame("shared")
    assert len(tries) == 12 and (tries.status == "complete").all(), "no trial ran twice"
    assert tries.holder.nunique() == 2, "both drivers ran trials"
    assert len(os.listdir(tmp_path / "marks")) == 2


# -- a URL that cannot be used: exit 2, within seconds, no password, nothing written ------------

@pytest.mark.parametrize("command", ["run", "status", "report"])
def test_an_unreachable_server_exits_2_naming_it_without_the_password(capsys, spec_file, tmp_path, monkeypatch,
                                                                      command):
    monkeypatch.chdir(tmp_path)
    path = spec_file(SMALL)
    port = _closed_port()
    url = f"postgresql://ablate:{PASSWORD}@127.0.0.1:{port}/results"
    argv = {"run": ["run", str(path)], "status": ["status"], "report": ["report", "tiny"]}[command]
    code, out, err = run(capsys, *argv, "--store", url)
    assert code == 2, out + err
    assert PASSWORD not in out + err
    assert "127.0.0.1" in err and f"port {port}" in err and "'results'" in err and "nothing was written" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.yaml"], "nothing written"


def test_a_database_that_does_not_exist_exits_2_and_is_not_created(capsys, spec_file, tmp_path, monkeypatch,
                                                                   postgres_server):
    monkeypatch.chdir(tmp_path)
    url = postgres_server.url("no_such_db")
    code, out, err = run(capsys, "run", str(spec_file(SMALL)), "--store", url)
    assert code == 2 and PASSWORD not in out + err
    assert "'no_such_db'" in err and f"port {postgres_server.port}" in err and "does not exist" in err
    engine = sa.create_engine(postgres_server.url("postgres"))
    with engine.connect() as c:
        names = {n for (n,) in c.exec_driver_sql("SELECT datname FROM pg_database")}
    engine.dispose()
    assert "no_such_db" not in names


def test_a_wrong_password_exits_2_without_printing_either(capsys, postgres_server):
    url = postgres_server.url("postgres").replace(PASSWORD, "wrong-pw-1234")
    code, out, err = run(capsys, "status", "--store", url)
    assert code == 2 and "wrong-pw-1234" not in out + err and "password authentication failed" in err


def test_a_server_that_never_answers_gives_up_after_the_connect_timeout(tmp_path):
    # a socket that listens but never accepts: the TCP connection opens, the server never speaks
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"postgresql://ablate:{PASSWORD}@127.0.0.1:{silent.getsockname()[1]}/db?connect_timeout=2"
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.run([sys.executable, "-m", "ablate", "status", "--store", url], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "timeout" in proc.stderr and PASSWORD not in proc.stdout + proc.stderr


def test_server_connections_time_out_check_before_use_and_keep_the_urls_own_settings():
    opts = engine_options(sa.engine.make_url("postgresql://u:p@db.example/results"))
    assert opts["connect_args"]["connect_timeout"] == CONNECT_TIMEOUT_S and opts["pool_pre_ping"]
    assert opts["isolation_level"] == "READ COMMITTED"
    own = engine_options(sa.engine.make_url("postgresql+psycopg2://u@h/r?connect_timeout=3"))
    assert "connect_timeout" not in own["connect_args"], "the URL's own timeout wins"
    assert engine_options(sa.engine.make_url("sqlite:///x.db")) == {}


def test_a_postgresql_url_without_its_driver_exits_2_with_the_pip_command(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg2", None)       # as if psycopg2 were not installed
    code, out, err = run(capsys, "status", "--store", f"postgresql://ablate:{PASSWORD}@127.0.0.1:5432/results")
    assert code == 2 and "pip install 'ablate[postgres]'" in err and "psycopg2" in err
    assert PASSWORD not in out + err


def test_a_bare_postgresql_url_uses_the_driver_the_extra_installs(capsys, pg_url):
    bare = pg_url.replace("postgresql+psycopg2://", "postgresql://")
    store = Store(bare, create=True)
    assert store.url == pg_url, "the URL handed on (e.g. to an Optuna study) names the driver"
    code, out, err = run(capsys, "status", "--store", bare)
    assert code == 0 and "no experiments in postgresql://ablate:***@" in out and PASSWORD not in out + err


@pytest.mark.parametrize("command", ["run", "status", "report"])
@pytest.mark.parametrize("url, words", [
    (f"postgresql://ablate:Pa@{PASSWORD}@127.0.0.1:5432/results", "%40"),          # an unescaped '@'
    (f"postgresql://ablate:{PASSWORD}@127.0.0.1:54x2/results", "port must be a whole number"),
    (f"postgresql://ablate:{PASSWORD}@127.0.0.1:99999/results", "port 99999 is not between 1 and 65535"),
    (f"postgresql://ablate:{PASSWORD}@[::1/results", "cannot be read"),
])
def test_a_store_url_that_cannot_be_used_exits_2_without_any_part_of_the_password(
        capsys, spec_file, tmp_path, monkeypatch, command, url, words):
    """Before: the part of the password after an '@' was printed as the host, and a port typo
    gave a traceback."""
    monkeypatch.chdir(tmp_path)
    argv = {"run": ["run", str(spec_file(SMALL))], "status": ["status"], "report": ["report", "tiny"]}[command]
    code, out, err = run(capsys, *argv, "--store", url)
    assert code == 2 and words in err and "Traceback" not in err, err
    for part in (PASSWORD, PASSWORD[:6], PASSWORD[-6:], "Pa@"):
        assert part not in out + err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.yaml"], "nothing written"


def test_a_password_with_an_escaped_at_sign_connects_and_is_never_shown(capsys, postgres_server, tmp_path):
    from urllib.parse import quote

    password = "P@ss:w/rd?#1-" + PASSWORD
    user = "atuser"
    admin = sa.create_engine(postgres_server.url("postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.exec_driver_sql(f"CREATE ROLE {user} LOGIN PASSWORD '{password}'")
        c.exec_driver_sql(f"CREATE DATABASE at_db OWNER {user}")
    admin.dispose()
    url = f"postgresql://{user}:{quote(password, safe='')}@127.0.0.1:{postgres_server.port}/at_db"
    try:
        code, out, err = run(capsys, "run", str(Path(tmp_path / "t.yaml")), "--store", url)
        assert code == 2 and "t.yaml" in err            # no such spec: the URL itself was fine so far
        Store(url, create=True)
        code, out, err = run(capsys, "status", "--store", url)
        assert code == 0 and f"no experiments in postgresql://{user}:***@127.0.0.1" in out
        for part in (password, quote(password, safe=""), "P@ss", PASSWORD):
            assert part not in out + err
    finally:
        postgres_server.drop_database("at_db")
