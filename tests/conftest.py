"""Shared fixtures: tiny specs that train in well under a second on the CPU."""

from __future__ import annotations

import copy
import sqlite3
from pathlib import Path

import pytest
import yaml

from ablate.design.spec import parse_spec

TINY = {
    "name": "tiny",
    "data": {"name": "digits", "image_size": 8, "train_size": 64},
    "model": {"name": "cifar_resnet", "depth": 8, "width": 8},
    "recipe": {"epochs": 2, "batch_size": 16, "lr": 0.05, "eval_batch_size": 512},
    "tricks": {"cosine": {}, "label_smoothing": {"eps": 0.1}},
    "design": {"kind": "one_at_a_time"},
    "seeds": 2,
}


def complete_trials(db: Path, *, integrity: bool = False) -> dict[str, float]:
    """{trial id: finished time} of the complete trials in a SQLite store that drivers may be
    writing (waits out their locks); {} before the store or its tables exist. `integrity`: also
    assert SQLite's integrity check (after a kill)."""
    if not db.exists():
        return {}
    con = sqlite3.connect(db, timeout=30)
    try:
        if integrity:
            assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "ablate_trials" not in tables:
            return {}
        return dict(con.execute("SELECT trial_id, finished FROM ablate_trials WHERE status='complete'"))
    finally:
        con.close()


def tiny_dict(**changes) -> dict:
    """TINY with top-level sections replaced (a mapping of the same name/kind is merged into it)."""
    d = copy.deepcopy(TINY)
    for key, value in changes.items():
        same_kind = all(value.get(t, d[key].get(t)) == d[key].get(t) for t in ("name", "kind")) \
            if isinstance(value, dict) and isinstance(d.get(key), dict) else False
        if same_kind and key != "tricks":
            d[key] = {**d[key], **value}
        else:
            d[key] = value
    return d


def tiny_spec(**changes):
    return parse_spec(yaml.safe_dump(tiny_dict(**changes), sort_keys=False), source="tiny.yaml")


@pytest.fixture
def spec_file(tmp_path):
    """Write a spec dict (or text) to tiny.yaml and return the path."""

    def write(content, name="tiny.yaml"):
        path = tmp_path / name
        path.write_text(content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False))
        return path

    return write


@pytest.fixture(scope="session")
def postgres_server():
    """A throwaway PostgreSQL server for the session (tests/pg.py); skipped when absent."""
    from tests.pg import start_server_or_skip

    server = start_server_or_skip()
    yield server
    server.stop()


@pytest.fixture
def pg_url(postgres_server):
    """A SQLAlchemy URL (with a password) of a new, empty database of its own for one test."""
    name = postgres_server.create_database()
    yield postgres_server.url(name)
    postgres_server.drop_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_target(request, tmp_path):
    """Where a test's store lives: a SQLite file, then a PostgreSQL database (the same test twice)."""
    if request.param == "sqlite":
        return tmp_path / "s.db"
    return request.getfixturevalue("pg_url")


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory):
    """An empty MLflow SQLite database for the export tests (made once: MLflow's migrations take
    seconds)."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments(max_results=1)
    return path


@pytest.fixture
def tracking_uri(tmp_path, mlflow_template):
    """A fresh MLflow SQLite tracking URI of this test's own (a copy of the empty template)."""
    import shutil

    target = tmp_path / "ml" / "mlflow.db"
    target.parent.mkdir()
    shutil.copyfile(mlflow_template, target)
    return f"sqlite:///{target}"
