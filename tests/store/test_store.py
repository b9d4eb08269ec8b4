"""The store: refuses what is not an ablate database (untouched), keeps every outcome."""

from __future__ import annotations

import socket
import sqlite3

import pytest

from ablate.errors import StoreError
from ablate.design.plan import plan
from ablate.store import Store
from tests.conftest import tiny_spec


def test_creates_and_reopens(tmp_path):
    path = tmp_path / "runs.db"
    Store(path, create=True)
    assert path.exists()
    Store(path)   # reopen read-only style
    Store(f"sqlite:///{path}")


def test_missing_store_is_not_created_by_readers(tmp_path):
    with pytest.raises(StoreError, match="does not exist"):
        Store(tmp_path / "nope.db")
    assert not (tmp_path / "nope.db").exists()


def test_foreign_sqlite_database_is_refused_and_untouched(tmp_path):
    path = tmp_path / "other.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE results (x INTEGER)")
    con.execute("INSERT INTO results VALUES (42)")
    con.commit()
    con.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match="not an ablate database.*results"):
        Store(path, create=True)
    assert path.read_bytes() == before


def test_non_database_file_is_refused_and_untouched(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("my precious notes\n" * 100)
    with pytest.raises(StoreError, match="not an ablate database"):
        Store(path, create=True)
    assert path.read_text() == "my precious notes\n" * 100


def test_directory_is_refused(tmp_path):
    with pytest.raises(StoreError, match="is a directory"):
        Store(tmp_path, create=True)


def test_bad_url_is_refused():
    with pytest.raises(StoreError, match="cannot use store"):
        Store("nosuchdriver://x/y", create=True)


def test_trial_lifecycle(store_target):
    store = Store(store_target, create=True)
    p = plan(tiny_spec())
    assert store.add_trials("tiny", list(p.trials)) == len(p.trials)
    assert store.add_trials("tiny", list(p.trials)) == 0, "adding again adds nothing"
    t = p.trials[0]
    store.start_trial("tiny", t.id, {"torch": "x"})
    store.add_epoch("tiny", t.id, {"epoch": 1, "val_acc": 50.0, "train_loss": 1.0})
    store.finish_trial("tiny", t.id, "complete", metrics={"val_acc": 50.0, "test_acc": 48.0, "extra": [1]})
    frame = store.trials_frame("tiny")
    row = frame[frame.trial_id == t.id].iloc[0]
    assert row.status == "complete" and row.val_acc == 50.0 and row.attempts == 1
    assert len(store.epochs_frame("tiny")) == 1
    # a second attempt drops the first attempt's epochs
    store.start_trial("tiny", t.id, {})
    assert len(store.epochs_frame("tiny")) == 0
    store.reset_trial("tiny", t.id, "interrupted")
    assert store.trial_statuses("tiny")[t.id] == "pending"
    with pytest.raises(ValueError):
        store.finish_trial("tiny", t.id, "weird")


# -- schema 2: open metrics, attempts, claims, migration ----------------------------------------

# The tables ablate 0.1.0 created (schema ablate-store/1), verbatim from its SQLite file.
V1_DDL = """
CREATE TABLE ablate_meta ("key" VARCHAR(64) NOT NULL, value TEXT NOT NULL, PRIMARY KEY ("key"));
CREATE TABLE ablate_experiments (name VARCHAR(100) NOT NULL, spec TEXT NOT NULL, source TEXT,
    created FLOAT NOT NULL, updated FLOAT NOT NULL, PRIMARY KEY (name));
CREATE TABLE ablate_trials (experiment VARCHAR(100) NOT NULL, trial_id VARCHAR(32) NOT NULL,
    arm INTEGER NOT NULL, label TEXT NOT NULL, seed INTEGER NOT NULL, reason TEXT NOT NULL,
    config TEXT NOT NULL, status VARCHAR(16) NOT NULL, error TEXT, metrics TEXT, val_acc FLOAT,
    val_loss FLOAT, test_acc FLOAT, test_loss FLOAT, test_top5 FLOAT, params FLOAT, gflops FLOAT,
    peak_mem_mb FLOAT, wall_s FLOAT, env TEXT, attempts INTEGER NOT NULL, created FLOAT NOT NULL,
    started FLOAT, finished FLOAT, PRIMARY KEY (experiment, trial_id));
CREATE INDEX ix_trials_status ON ablate_trials (experiment, status);
CREATE TABLE ablate_epochs (experiment VARCHAR(100) NOT NULL, trial_id VARCHAR(32) NOT NULL,
    epoch INTEGER NOT NULL, train_loss FLOAT, train_acc FLOAT, val_loss FLOAT, val_acc FLOAT,
    lr FLOAT, images_per_s FLOAT, epoch_s FLOAT, PRIMARY KEY (experiment, trial_id, epoch));
INSERT INTO ablate_meta VALUES ('schema', 'ablate-store/1');
"""


def _v1_store(path, spec):
    import json

    from ablate.design.spec import spec_to_dict

    p = plan(spec)
    con = sqlite3.connect(path)
    con.executescript(V1_DDL)
    con.execute("INSERT INTO ablate_experiments VALUES (?, ?, NULL, 1.0, 1.0)",
                (spec.name, json.dumps(spec_to_dict(spec))))
    for i, t in enumerate(p.trials):
        status = {0: "complete", 1: "failed"}.get(i, "pending")
        metrics = json.dumps({"val_acc": 77.0, "test_acc": 75.5, "best_val_acc": 78.0, "device": "cpu"}) \
            if status == "complete" else None
        con.execute("INSERT INTO ablate_trials (experiment, trial_id, arm, label, seed, reason, config, status, "
                    "error, metrics, val_acc, test_acc, env, attempts, created, started, finished) "
                    "VALUES (?, ?, ?, ?, ?, 'design', ?, ?, ?, ?, ?, ?, '{}', ?, 1.0, 2.0, 3.0)",
                    (spec.name, t.id, t.arm, t.label, t.seed, json.dumps(t.config), status,
                     "RuntimeError: boom" if status == "failed" else None, metrics,
                     77.0 if metrics else None, 75.5 if metrics else None, 0 if status == "pending" else 1))
    for epoch, acc in ((1, 70.0), (2, 77.0)):
        con.execute("INSERT INTO ablate_epochs (experiment, trial_id, epoch, val_acc, train_loss) "
                    "VALUES (?, ?, ?, ?, 0.5)", (spec.name, p.trials[0].id, epoch, acc))
    con.commit()
    con.close()
    return p


def test_a_store_of_the_first_release_is_migrated_and_resumes(tmp_path):
    from ablate.api import run_experiment

    path = tmp_path / "old.db"
    spec = tiny_spec()
    p = _v1_store(path, spec)
    store = Store(path)
    con = sqlite3.connect(path)
    assert con.execute("SELECT value FROM ablate_meta").fetchone()[0] == "ablate-store/2"
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    frame = store.trials_frame("tiny").set_index("trial_id")
    first = p.trials[0].id
    assert frame.loc[first, "val_acc"] == 77.0 and frame.loc[first, "best_val_acc"] == 78.0
    assert frame.loc[p.trials[1].id, "status"] == "pending", "the first release ran failed trials again"
    epochs = store.epochs_frame("tiny")
    assert list(epochs.val_acc) == [70.0, 77.0] and list(epochs.train_loss) == [0.5, 0.5]
    tries = store.attempts_frame("tiny")
    assert sorted(tries.status) == ["complete", "failed"]
    _, summary = run_experiment(spec, store)
    assert summary.outcomes == {"complete": len(p.trials) - 1} and summary.already_done == 1
    after = store.trials_frame("tiny").set_index("trial_id")
    assert after.loc[first, "val_acc"] == 77.0 and after.loc[first, "attempts"] == 1, "not run again"
    assert after.loc[p.trials[1].id, "attempts"] == 2
    Store(path)   # opening a migrated store again changes nothing


def test_any_numeric_metric_is_kept_per_epoch_and_final(store_target):
    store = Store(store_target, create=True)
    t = plan(tiny_spec()).trials[0]
    store.add_trials("tiny", [t])
    store.start_trial("tiny", t.id, {})
    store.add_epoch("tiny", t.id, {"epoch": 1, "val_acc": 40.0, "grad_norm": 3.5, "note": "text is not a metric"})
    store.add_epoch("tiny", t.id, {"epoch": 1, "val_acc": 41.0, "grad_norm": 3.0})   # a repeat replaces
    store.finish_trial("tiny", t.id, "complete", metrics={"val_acc": 41.0, "top1": 0.41, "device": "cpu"})
    epochs = store.epochs_frame("tiny")
    assert len(epochs) == 1 and epochs.grad_norm.iloc[0] == 3.0 and epochs.val_acc.iloc[0] == 41.0
    assert "note" not in epochs and epochs.train_loss.isna().all()
    row = store.trials_frame("tiny").iloc[0]
    assert row.top1 == 0.41 and row.val_acc == 41.0 and "device" not in row


def test_claims_are_exclusive_and_expire(store_target, monkeypatch):
    import ablate.store as store_mod

    store = Store(store_target, create=True)
    t = plan(tiny_spec()).trials[0]
    store.add_trials("tiny", [t])
    a, b = "elsewhere:1:aa", "elsewhere:2:bb"     # holders on another host: only the lease counts
    assert store.claim("tiny", t.id, a, lease_s=60)
    assert not store.claim("tiny", t.id, b, lease_s=60), "a live claim is exclusive"
    assert store.trial_row("tiny", t.id)["holder"] == a, "the first claim holds the trial"
    now = store_mod.time.time()
    monkeypatch.setattr(store_mod.time, "time", lambda: now + 61)
    assert store.claim("tiny", t.id, b, lease_s=60), "an expired claim is taken over"
    assert store.heartbeat(b, lease_s=600) == 1 and store.heartbeat(a, lease_s=600) == 0
    assert store.trial_row("tiny", t.id)["lease_until"] == now + 61 + 600, "the heartbeat renews the lease"
    store.start_trial("tiny", t.id, {}, holder=b)
    assert not store.finish_trial("tiny", t.id, "complete", metrics={"val_acc": 1.0}, holder=a), \
        "the old holder cannot record over the new one"
    assert store.finish_trial("tiny", t.id, "complete", metrics={"val_acc": 2.0}, holder=b)
    assert not store.claim("tiny", t.id, a, lease_s=60), "complete is final"


def test_a_dead_local_holder_loses_its_claim_at_once(store_target):
    import socket
    import subprocess
    import sys

    store = Store(store_target, create=True)
    t = plan(tiny_spec()).trials[0]
    store.add_trials("tiny", [t])
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    assert store.claim("tiny", t.id, f"{socket.gethostname()}:{gone}:x", lease_s=3600)
    assert store.claim("tiny", t.id, "me:1:y", lease_s=60)


def test_delete_trials_removes_every_row_of_the_experiment_only(store_target):
    store = Store(store_target, create=True)
    for name in ("tiny", "other"):
        t = plan(tiny_spec()).trials[0]
        store.add_trials(name, [t])
        store.start_trial(name, t.id, {})
        store.add_epoch(name, t.id, {"epoch": 1, "val_acc": 40.0})
        store.finish_trial(name, t.id, "complete", metrics={"val_acc": 41.0})
    assert store.delete_trials("tiny") == 1
    with store.engine.connect() as con:
        for table in ("ablate_trials", "ablate_epoch_metrics", "ablate_final_metrics", "ablate_attempts"):
            left = dict(con.exec_driver_sql(f"SELECT experiment, COUNT(*) FROM {table} GROUP BY experiment").all())
            assert "tiny" not in left and left.get("other", 0) >= 1, table


def test_a_dead_drivers_running_attempt_is_closed_as_interrupted(tmp_path):
    """A driver SIGKILLed mid-trial leaves trial and attempt running: the next run's sweep puts
    the trial back to pending and closes the attempt; a live driver's trial is left alone."""
    import subprocess
    import sys

    from ablate.store import new_holder

    store = Store(tmp_path / "s.db", create=True)
    spec = tiny_spec()
    trials = plan(spec).trials[:2]
    store.add_trials("tiny", trials)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    dead, live = f"{socket.gethostname()}:{gone}:dead", new_holder()
    for t, holder in zip(trials, (dead, live)):
        assert store.claim("tiny", t.id, holder, 60.0)
        store.start_trial("tiny", t.id, {}, holder=holder)
    assert store.close_dead_claims("tiny") == 1
    rows = store.trials_frame("tiny").set_index("trial_id")
    assert rows.status[trials[0].id] == "pending" and "stopped (killed?)" in rows.error[trials[0].id]
    assert rows.status[trials[1].id] == "running"
    tries = store.attempts_frame("tiny").set_index("trial_id")
    assert tries.status[trials[0].id] == "interrupted" and tries.status[trials[1].id] == "running"
    # a claim taken over without the sweep (a lease that ran out mid-run): the new attempt closes the old
    assert store.claim("tiny", trials[1].id, "otherhost:1:x", 60.0) is False
    store.heartbeat(live, -1.0)                              # its lease runs out
    assert store.claim("tiny", trials[1].id, "otherhost:1:x", 60.0)
    store.start_trial("tiny", trials[1].id, {}, holder="otherhost:1:x")
    tries = store.attempts_frame("tiny").query(f"trial_id == '{trials[1].id}'")
    assert list(tries.status) == ["interrupted", "running"]
