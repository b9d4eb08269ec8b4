"""Secrets a command trial needs: passed from the driver's environment by name (`trial.pass_env`),
never stored, never part of a trial's id; a secret-looking name in `trial.env` is refused; store
files are readable by their owner only."""

from __future__ import annotations

import os
import stat
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from ablate.cli import main
from ablate.store import Store

SECRET = "sk-live-5ec2e7-value"

SCRIPT = """
import json, os
key = os.environ["MY_API_KEY"]
print(json.dumps({"val_acc": 50.0 + len(key) % 7, "saw_key": int(key.startswith("sk-"))}))
"""


def _spec(tmp_path: Path, **trial) -> Path:
    (tmp_path / "train.py").write_text(textwrap.dedent(SCRIPT))
    raw = {"name": "keyed", "data": {"name": "digits"},
           "trial": {"command": [sys.executable, "train.py"], "cwd": str(tmp_path), **trial},
           "design": {"kind": "explicit", "arms": [[]]}, "seeds": 2}
    path = tmp_path / "keyed.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def _store_bytes(db: Path) -> bytes:
    return b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))


def test_pass_env_reaches_the_command_and_is_never_stored_nor_hashed(tmp_path, monkeypatch, capsys):
    spec, db = _spec(tmp_path, pass_env=["MY_API_KEY"]), tmp_path / "s.db"
    monkeypatch.setenv("MY_API_KEY", SECRET)
    assert main(["run", str(spec), "--store", str(db), "--no-report"]) == 0
    frame = Store(db).trials_frame("keyed")
    assert list(frame.status) == ["complete", "complete"] and (frame.saw_key == 1).all()
    assert SECRET.encode() not in _store_bytes(db), "the secret's value is in the store"
    assert b"MY_API_KEY" in _store_bytes(db), "the spec keeps the name"
    ids = set(frame.trial_id)
    monkeypatch.setenv("MY_API_KEY", "sk-rotated-other-value")     # rotating the key reruns nothing
    capsys.readouterr()
    assert main(["run", str(spec), "--store", str(db), "--no-report"]) == 0
    assert "2 already in the store; this run: nothing to run" in capsys.readouterr().out
    assert set(Store(db).trials_frame("keyed").trial_id) == ids


def test_a_pass_env_name_not_set_is_refused_before_anything_is_written(tmp_path, monkeypatch, capsys):
    spec, db = _spec(tmp_path, pass_env=["MY_API_KEY"]), tmp_path / "s.db"
    monkeypatch.delenv("MY_API_KEY", raising=False)
    assert main(["run", str(spec), "--store", str(db)]) == 2
    err = capsys.readouterr().err
    assert "keyed.yaml" in err and "trial.pass_env" in err and "MY_API_KEY" in err and "not set" in err
    assert not db.exists()


@pytest.mark.parametrize("trial, field, words", [
    ({"env": {"MY_API_KEY": SECRET}}, "trial.env", "looks like a secret"),
    ({"env": {"HF_TOKEN": SECRET}}, "trial.env", "pass_env: [HF_TOKEN]"),
    ({"env": {"AWS_SECRET_ACCESS_KEY": SECRET}}, "trial.env", "looks like a secret"),
    ({"pass_env": [f"MY_API_KEY={SECRET}"]}, "trial.pass_env", "names only"),
    ({"pass_env": ["1BAD"]}, "trial.pass_env", "not an environment variable name"),
    ({"pass_env": {"MY_API_KEY": 1}}, "trial.pass_env", "list of environment variable names"),
    ({"env": {"MY_API_KEY": "x"}, "pass_env": ["OTHER"]}, "trial.env", "looks like a secret"),
    ({"env": {"A": "x"}, "pass_env": ["A"]}, "trial", "both in env"),
    ({"pass_env": ["ABLATE_TRIAL"]}, "trial", "set by ablate"),
])
def test_secrets_in_the_spec_are_refused_with_the_field_and_never_echoed(tmp_path, capsys, trial, field, words):
    spec, db = _spec(tmp_path, **trial), tmp_path / "s.db"
    assert main(["run", str(spec), "--store", str(db)]) == 2
    err = capsys.readouterr().err
    assert f"field '{field}" in err and words in err and "keyed.yaml:" in err, err
    assert SECRET not in err
    assert not db.exists()


def test_a_harmless_name_with_token_in_a_word_is_not_a_secret(tmp_path, capsys):
    spec = _spec(tmp_path, env={"TOKENIZERS_PARALLELISM": "false", "MY_API_KEY": "y"})
    assert main(["plan", str(spec), "--no-estimate"]) == 2           # MY_API_KEY is
    spec = _spec(tmp_path, env={"TOKENIZERS_PARALLELISM": "false", "KEYBOARD_LAYOUT": "us"})
    assert main(["plan", str(spec), "--no-estimate"]) == 0


def test_store_files_are_readable_by_their_owner_only(tmp_path):
    import sqlalchemy as sa

    old = os.umask(0o022)
    try:
        store = Store(tmp_path / "new" / "s.db", create=True)
        with store.engine.connect() as c:        # a reader holds the WAL open: -wal and -shm exist
            c.execute(sa.text("SELECT 1"))
            store.save_experiment("x", "{}", None)
            files = sorted((tmp_path / "new").iterdir())
            assert [f.name for f in files] == ["s.db", "s.db-shm", "s.db-wal"]
            assert {stat.S_IMODE(f.stat().st_mode) for f in files} == {0o600}
    finally:
        os.umask(old)
