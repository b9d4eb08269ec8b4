"""The store: refuses what is not an ablate database (untouched), keeps every outcome."""

from __future__ import annotations

import sqlite3

import pytest

from ablate.errors import StoreError
from ablate.plan import plan
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


def test_trial_lifecycle(tmp_path):
    store = Store(tmp_path / "s.db", create=True)
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
