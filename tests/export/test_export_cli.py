"""`ablate export mlflow|tensorboard` on the command line: what it prints, and every bad input a
user can give exits 2 with one message and writes nothing."""

from __future__ import annotations

import json
import re
import socket
import sys

import pytest
import sqlalchemy as sa

from ablate.cli import main
from ablate.export.to_tensorboard import safe_name
from ablate.design.spec import spec_to_dict
from ablate.store import Store
from tests.export.export_helpers import design_spec, design_store


def _files(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _fails(capsys, argv, match):
    """Exit 2 and one line on stderr (no traceback) that matches `match`."""
    code = main(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("ablate: error: "), err
    assert re.search(match, lines[0]), lines[0]
    return lines[0]


def test_export_commands_print_what_they_did(tmp_path, capsys, tracking_uri):
    design_store(tmp_path / "s.db")
    assert main(["export", "mlflow", "tiny", "--store", str(tmp_path / "s.db"), "--tracking-uri", tracking_uri]) == 0
    out = capsys.readouterr().out
    assert "exported 'tiny' to MLflow experiment 'tiny'" in out and "8 runs created, 0 updated, 0 unchanged" in out
    assert "report: report/lift.md, report/lift.csv, report/report.html in run " in out
    assert main(["export", "mlflow", "tiny", "--store", str(tmp_path / "s.db"), "--tracking-uri", tracking_uri]) == 0
    assert "0 runs created, 0 updated, 8 unchanged" in capsys.readouterr().out
    assert main(["export", "tensorboard", "tiny", "--store", str(tmp_path / "s.db"), "--logdir",
                 str(tmp_path / "tb")]) == 0
    out = capsys.readouterr().out
    assert f"to TensorBoard logdir {tmp_path / 'tb'}: 8 run folders" in out
    assert f"tensorboard --logdir {tmp_path / 'tb'}" in out


def test_mlflow_defaults_to_mlflow_db_in_the_current_folder(tmp_path, capsys, monkeypatch, mlflow_template):
    import shutil

    design_store(tmp_path / "s.db")
    work = tmp_path / "work"
    work.mkdir()
    shutil.copyfile(mlflow_template, work / "mlflow.db")
    monkeypatch.chdir(work)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert main(["export", "mlflow", "tiny", "--store", str(tmp_path / "s.db")]) == 0
    assert f"at sqlite:///{work / 'mlflow.db'}" in capsys.readouterr().out
    assert (work / "mlruns" / "tiny").is_dir()      # artifacts beside the database


def test_unknown_and_empty_experiments(tmp_path, capsys):
    store, _ = design_store(tmp_path / "s.db")
    before = _files(tmp_path)
    for argv in (["mlflow", "tinny", "--tracking-uri", f"sqlite:///{tmp_path}/m.db"],
                 ["tensorboard", "tinny", "--logdir", str(tmp_path / "tb")]):
        _fails(capsys, ["export", *argv, "--store", str(tmp_path / "s.db")],
               r"no experiment 'tinny' in store .*did you mean 'tiny'.*experiments there: tiny$")
    empty = design_spec(name="empty")
    store.save_experiment("empty", json.dumps(spec_to_dict(empty)), None)
    _fails(capsys, ["export", "mlflow", "empty", "--store", str(tmp_path / "s.db"), "--tracking-uri",
                    f"sqlite:///{tmp_path}/m.db"], r"experiment 'empty' in store .* has no trials to export; run it")
    # every stored trial belongs to an earlier version of the spec
    store.save_experiment("tiny", json.dumps(spec_to_dict(design_spec(recipe={"epochs": 3}))), None)
    _fails(capsys, ["export", "tensorboard", "tiny", "--store", str(tmp_path / "s.db"), "--logdir",
                    str(tmp_path / "tb")], r"no trials to export; its 8 stored trials belong to earlier versions")
    assert _files(tmp_path) == before


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_tracking_uris_that_cannot_be_used(tmp_path, capsys):
    store, _ = design_store(tmp_path / "s.db")
    (tmp_path / "afile").write_text("x")
    (tmp_path / "notdb.db").write_text("not a database")
    (tmp_path / "adir").mkdir()
    tables = set(sa.inspect(store.engine).get_table_names())
    before = _files(tmp_path)
    cases = [
        (f"http://127.0.0.1:{_closed_port()}", r"cannot use MLflow tracking URI 'http://127.0.0.1:\d+': .*refused"),
        (f"sqlite:///{tmp_path}/s.db", r"is an ablate store, not an MLflow database; nothing was written"),
        (f"sqlite:///{tmp_path}/notdb.db", r"notdb.db is not an SQLite database"),
        (f"sqlite:///{tmp_path}/adir", r"names a directory"),
        (f"sqlite:///{tmp_path}/afile/m.db", r"afile is a file, not a folder"),
        ("nosuchscheme://x", r"cannot use MLflow tracking URI 'nosuchscheme://x'"),
        ("", r"the MLflow tracking URI is empty"),
        ("sqlite://", r"an in-memory database, which keeps nothing"),
        ("sqlite:///:memory:", r"an in-memory database, which keeps nothing"),
    ]
    for uri, match in cases:
        _fails(capsys, ["export", "mlflow", "tiny", "--store", str(tmp_path / "s.db"), "--tracking-uri", uri], match)
    assert _files(tmp_path) == before
    assert set(sa.inspect(store.engine).get_table_names()) == tables


def test_a_password_in_the_tracking_uri_is_not_shown(tmp_path, capsys):
    design_store(tmp_path / "s.db")
    line = _fails(capsys, ["export", "mlflow", "tiny", "--store", str(tmp_path / "s.db"), "--tracking-uri",
                           f"http://me:secret@127.0.0.1:{_closed_port()}"], r"cannot use MLflow tracking URI")
    assert "secret" not in line and "me:***@127.0.0.1" in line


def test_a_deleted_mlflow_experiment_is_named(tmp_path, capsys, tracking_uri):
    from mlflow import MlflowClient

    design_store(tmp_path / "s.db")
    client = MlflowClient(tracking_uri=tracking_uri)
    client.delete_experiment(client.create_experiment("tiny"))
    _fails(capsys, ["export", "mlflow", "tiny", "--store", str(tmp_path / "s.db"), "--tracking-uri", tracking_uri],
           r"MLflow experiment 'tiny' at .* is deleted; restore it \(mlflow experiments restore --experiment-id 1\)")


def test_logdirs_that_cannot_be_used(tmp_path, capsys):
    design_store(tmp_path / "s.db")
    (tmp_path / "afile").write_text("x")
    before = _files(tmp_path)
    _fails(capsys, ["export", "tensorboard", "tiny", "--store", str(tmp_path / "s.db"), "--logdir",
                    str(tmp_path / "afile")], r"--logdir .*afile is a file; give a folder")
    _fails(capsys, ["export", "tensorboard", "tiny", "--store", str(tmp_path / "s.db"), "--logdir",
                    str(tmp_path / "afile" / "tb")], r"cannot write to --logdir .*afile/tb")
    (tmp_path / "tb").mkdir()
    (tmp_path / "tb" / ".ablate-export.json").write_text("{not json")
    before = _files(tmp_path)
    _fails(capsys, ["export", "tensorboard", "tiny", "--store", str(tmp_path / "s.db"), "--logdir",
                    str(tmp_path / "tb")], r"tb/.ablate-export.json \(what an earlier ablate export wrote there\) "
                                           r"cannot be read .*; remove it with the folders it lists")
    assert _files(tmp_path) == before


@pytest.mark.parametrize("tracker, module, extra", [("mlflow", "mlflow", "mlflow"),
                                                    ("tensorboard", "tensorboard", "tensorboard")])
def test_a_missing_extra_names_the_pip_command(tmp_path, capsys, monkeypatch, tracker, module, extra):
    design_store(tmp_path / "s.db")
    monkeypatch.setitem(sys.modules, module, None)      # as if not installed: importing it fails
    before = _files(tmp_path)
    option = (["--tracking-uri", f"sqlite:///{tmp_path}/m.db"] if tracker == "mlflow"
              else ["--logdir", str(tmp_path / "tb")])
    _fails(capsys, ["export", tracker, "tiny", "--store", str(tmp_path / "s.db"), *option],
           rf"ablate export {tracker} needs .*not installed.*pip install 'ablate\[{extra}\]'$")
    assert _files(tmp_path) == before


def test_a_missing_store_is_said(tmp_path, capsys):
    _fails(capsys, ["export", "mlflow", "tiny", "--store", str(tmp_path / "none.db")], r"store .* does not exist")
    assert not (tmp_path / "none.db").exists()
    Store(tmp_path / "e.db", create=True)
    _fails(capsys, ["export", "tensorboard", "x", "--store", str(tmp_path / "e.db"), "--logdir", str(tmp_path / "tb")],
           r"no experiment 'x' .*experiments there: \(none\)")


@pytest.mark.slow
def test_a_real_run_exported_to_both(tmp_path, capsys, tracking_uri):
    """`ablate run` (the quickstart, shrunk: real training) then both exports of what it stored."""
    from mlflow import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    db = str(tmp_path / "q.db")
    assert main(["run", "quickstart", "--shrink", "--store", db, "--out", str(tmp_path / "rep")]) == 0
    capsys.readouterr()
    trials = Store(db).trials_frame("quickstart-shrunk")
    assert main(["export", "mlflow", "quickstart-shrunk", "--store", db, "--tracking-uri", tracking_uri]) == 0
    assert main(["export", "tensorboard", "quickstart-shrunk", "--store", db, "--logdir", str(tmp_path / "tb")]) == 0
    client = MlflowClient(tracking_uri=tracking_uri)
    exp = client.get_experiment_by_name("quickstart-shrunk")
    runs = [r for r in client.search_runs([exp.experiment_id]) if r.data.tags.get("ablate.kind") == "trial"]
    assert sorted(r.data.tags["ablate.trial_id"] for r in runs) == sorted(trials["trial_id"])
    for r in runs:
        row = trials[trials["trial_id"] == r.data.tags["ablate.trial_id"]].iloc[0]
        assert r.data.metrics["final.val_acc"] == pytest.approx(row["val_acc"])
        assert r.data.tags["ablate.env.device"] == "cpu"
        history = client.get_metric_history(r.info.run_id, "images_per_s")
        assert [m.step for m in history] == [1]
        ea = EventAccumulator(str(tmp_path / "tb" / safe_name(row["label"]) / f"seed{row['seed']}"))
        ea.Reload()
        assert ea.Scalars("final/val_acc")[0].value == pytest.approx(row["val_acc"], rel=1e-6)
