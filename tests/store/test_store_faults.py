"""Stores that break under a real run, with real faults: a read-only file or folder, a full disk
(a file-size limit, unprivileged; a small tmpfs where the test may mount one), the store's folder
deleted mid-run, pages overwritten with random bytes. Each: exit 2 with one line saying what
and where, no traceback; after the fault is undone, the rerun finishes with nothing lost."""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import json, os, time
p = json.load(open(os.environ["ABLATE_TRIAL"]))
wide = {f"m{i}": i for i in range(int(os.environ.get("WIDE", "0")))}    # many metrics: the store grows fast
for e in (1, 2):
    print(json.dumps({"epoch": e, "val_acc": 50 + e + p["seed"], **wide}), flush=True)
    time.sleep(float(os.environ.get("NAP", "0")))
print(json.dumps({"val_acc": 50 + p["seed"], "test_acc": 49 + p["seed"]}))
"""


def _spec(tmp_path: Path) -> Path:
    (tmp_path / "train.py").write_text(textwrap.dedent(SCRIPT))
    raw = {"name": "faults", "data": {"name": "digits"},
           "trial": {"command": [sys.executable, "train.py"], "cwd": str(tmp_path)},
           "tricks": {"a": {"x": 1}, "b": {"y": 2}}, "design": {"kind": "one_at_a_time"}, "seeds": 2}
    path = tmp_path / "faults.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def _ablate(tmp_path: Path, *args: str, nap: float = 0.0, limit_bytes: int | None = None, wait: bool = True,
            wide: int = 0):
    env = {**os.environ, "NAP": str(nap), "WIDE": str(wide),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}

    def file_size_limit():          # a full disk, unprivileged: writes past it fail with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    proc = subprocess.Popen([sys.executable, "-m", "ablate", *args], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=file_size_limit if limit_bytes else None)
    if not wait:
        return proc
    out, err = proc.communicate(timeout=300)
    return proc.returncode, out, err


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """(spec, store): the spec's 6 trials run once into a store that each test copies."""
    root = tmp_path_factory.mktemp("faults")
    spec = _spec(root)
    code, _, err = _ablate(root, "run", str(spec), "--store", str(root / "s.db"), "--no-report")
    assert code == 0, err
    return spec, root / "s.db"


def _copy(stored, to: Path) -> Path:
    to.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(stored[1], to)
    return to


def _one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err and err.strip().count("\n") == 0, err
    assert err.startswith("ablate: error: "), err
    for n in needles:
        assert n in err, err


def _complete(db: Path) -> dict[str, float]:
    con = sqlite3.connect(db)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return dict(con.execute("SELECT trial_id, finished FROM ablate_trials WHERE status='complete'"))
    finally:
        con.close()


def _wait_complete(db: Path, n: int, proc) -> None:
    end = time.monotonic() + 120
    while time.monotonic() < end and proc.poll() is None:
        with contextlib.suppress(sqlite3.Error, AssertionError):
            if db.exists() and len(_complete(db)) >= n:
                return
        time.sleep(0.05)
    pytest.fail(f"the run ended or stalled before {n} trials were complete: {proc.communicate()}")


@contextlib.contextmanager
def _read_only(*paths: Path):
    """Read-only for this user: chmod, or, as root (whom chmod does not stop), the immutable
    attribute; skipped where neither can be made."""
    if os.geteuid() != 0:
        modes = [p.stat().st_mode for p in paths]
        for p in paths:
            p.chmod(0o555 if p.is_dir() else 0o444)
        try:
            yield
        finally:
            for p, m in zip(paths, modes):
                p.chmod(m)
        return
    if shutil.which("chattr") is None:
        pytest.skip("running as root, and chattr (to make a file immutable) is not installed")
    made = []
    try:
        for p in paths:
            if subprocess.run(["chattr", "+i", str(p)], capture_output=True).returncode != 0:
                pytest.skip(f"running as root, and this file system does not take chattr +i ({p})")
            made.append(p)
        yield
    finally:
        for p in made:
            subprocess.run(["chattr", "-i", str(p)], check=True)


@pytest.mark.parametrize("what", ["file", "folder"])
def test_a_read_only_store_exits_2_in_one_line_and_the_rerun_after_is_clean(tmp_path, what, stored):
    spec, db = stored[0], _copy(stored, tmp_path / "st" / "s.db")
    before = _complete(db)
    assert len(before) == 6
    with _read_only(db if what == "file" else db.parent):
        code, _, err = _ablate(tmp_path, "run", str(spec), "--store", str(db), "--seeds", "3", "--no-report")
        _one_line_error(code, err, str(db))
        assert "read-only" in err or "cannot open" in err
        if what == "file":
            assert "read-only" in err
        code, out, err = _ablate(tmp_path, "status", "--store", str(db))
        assert code == 0 or ("Traceback" not in err and code == 2), err
    code, _, err = _ablate(tmp_path, "run", str(spec), "--store", str(db), "--seeds", "3", "--no-report")
    assert code == 0, err
    after = _complete(db)
    assert len(after) == 9 and {k: after[k] for k in before} == before, "nothing lost, nothing run twice"


@pytest.mark.slow
def test_a_full_disk_mid_run_exits_2_in_one_line_and_the_rerun_after_is_clean(tmp_path):
    """RLIMIT_FSIZE: the store (and its WAL) may not grow past 600 kB; the run dies after a few
    dozen trials, as on a full disk."""
    spec, db = _spec(tmp_path), tmp_path / "s.db"
    code, _, err = _ablate(tmp_path, "run", str(spec), "--store", str(db), "--seeds", "8", "--no-report",
                           limit_bytes=600_000, wide=300)
    _one_line_error(code, err, "s.db", "cannot write to store")
    assert "disk" in err
    _rerun_finishes_what_was_left(tmp_path, spec, db)


def _rerun_finishes_what_was_left(tmp_path, spec, db) -> None:
    """Some trials were kept before the fault; a rerun with the fault gone finishes the 24, the
    kept ones unchanged."""
    before = _complete(db)
    assert 0 < len(before) < 24
    code, _, err = _ablate(tmp_path, "run", str(spec), "--store", str(db), "--seeds", "8", "--no-report", wide=300)
    assert code == 0, err
    after = _complete(db)
    assert len(after) == 24 and {k: after[k] for k in before} == before


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 600 kB tmpfs (a real full disk); skipped where mounting needs privileges this run lacks."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(mnt)], capture_output=True,
                          text=True) if shutil.which("mount") else None
    if made is None or made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {made.stderr.strip() if made else 'no mount'}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


@pytest.mark.slow
def test_a_really_full_disk_exits_2_and_after_space_is_freed_the_rerun_is_clean(tmp_path, small_tmpfs):
    spec, db = _spec(tmp_path), small_tmpfs / "s.db"
    code, _, err = _ablate(tmp_path, "run", str(spec), "--store", str(db), "--seeds", "8", "--no-report",
                           wide=300)
    _one_line_error(code, err, str(db), "the disk is full")
    subprocess.run(["mount", "-o", "remount,size=20m", str(small_tmpfs)], check=True)
    _rerun_finishes_what_was_left(tmp_path, spec, db)


def test_the_store_folder_deleted_mid_run_stops_the_run_and_says_so(tmp_path):
    """Before: exit 0, "8 complete", and every result written into the deleted file."""
    spec, db = _spec(tmp_path), tmp_path / "st" / "s.db"
    proc = _ablate(tmp_path, "run", str(spec), "--store", str(db), "--seeds", "4", "--no-report", nap=0.3,
                   wait=False)
    _wait_complete(db, 2, proc)
    shutil.rmtree(db.parent)
    out, err = proc.communicate(timeout=120)
    _one_line_error(proc.returncode, err, "st/s.db", "was deleted or replaced")
    assert "complete (" not in out, "no summary of results that went nowhere"


@pytest.mark.parametrize("command", [["status"], ["report", "faults"], ["run", "SPEC", "--no-report"]])
def test_overwritten_pages_exit_2_as_not_a_usable_database(tmp_path, command, stored):
    spec, db = stored[0], _copy(stored, tmp_path / "s.db")
    assert db.stat().st_size >= 8 * 4096
    with open(db, "r+b") as f:           # two pages of the data, overwritten with random bytes
        for page in (3, 7):
            f.seek(page * 4096)
            f.write(os.urandom(4096))
    damaged = db.read_bytes()
    args = [str(spec) if a == "SPEC" else a for a in command]
    code, _, err = _ablate(tmp_path, *args, "--store", str(db), "--out", str(tmp_path / "r")) \
        if command[0] == "report" else _ablate(tmp_path, *args, "--store", str(db))
    _one_line_error(code, err, "s.db", "is not a usable ablate database (malformed")
    assert db.read_bytes() == damaged, "nothing written to it"


def test_a_read_only_postgresql_database_exits_2_in_one_line_without_the_password(tmp_path, stored, pg_url):
    import sqlalchemy as sa

    from tests.pg import PASSWORD

    spec = stored[0]
    code, _, err = _ablate(tmp_path, "run", str(spec), "--store", pg_url, "--no-report")
    assert code == 0, err
    database = sa.engine.make_url(pg_url).database
    admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            c.exec_driver_sql(f"ALTER DATABASE {database} SET default_transaction_read_only = on")
        code, _, err = _ablate(tmp_path, "run", str(spec), "--store", pg_url, "--seeds", "3", "--no-report")
        _one_line_error(code, err, "the database is read-only", "127.0.0.1")
        assert PASSWORD not in err
        with admin.connect() as c:
            c.exec_driver_sql("SET default_transaction_read_only = off")
            c.exec_driver_sql(f"ALTER DATABASE {database} SET default_transaction_read_only = off")
    finally:
        admin.dispose()
    code, _, err = _ablate(tmp_path, "run", str(spec), "--store", pg_url, "--seeds", "3", "--no-report")
    assert code == 0, err


def test_an_interrupt_inside_a_query_stays_an_interrupt_not_a_lost_connection(tmp_path):
    """SQLAlchemy reports a KeyboardInterrupt (Ctrl-C, or ablate's SIGTERM handler) raised during a
    query as a disconnect; the fault hook turned it into "lost the connection to store ... ()",
    exit 2 instead of 130 for a driver stopped mid-query."""
    import sqlalchemy as sa

    from ablate.store import Store

    store = Store(tmp_path / "s.db", create=True)

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    sa.event.listen(store.engine, "before_cursor_execute", interrupt)
    try:
        with pytest.raises(KeyboardInterrupt):
            store.trials_frame("any")
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", interrupt)
    assert store.trials_frame("any").empty
