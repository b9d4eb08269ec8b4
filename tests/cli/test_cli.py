"""The command line: a thin shell; bad input exits 2 with one clear message and writes nothing."""

from __future__ import annotations

import sqlite3

import pytest

from ablate.cli import main
from tests.conftest import tiny_dict


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_tricks_lists_codes_params_and_papers(capsys):
    import itertools

    code, out, _ = run(capsys, "tricks")
    assert code == 0
    assert "mixup" in out and "alpha: float = 0.2 in (0, inf)" in out and "arXiv:1710.09412" in out
    for name, words in [("asam", "arXiv:2102.11600"), ("lookahead", "k: int = 5 in [1, 1000]"),
                        ("adabound", "final_lr: float = 0.1"), ("ricap", "beta: float = 0.3"),
                        ("shakedrop", "p_final"), ("stochastic_depth", "arXiv:1603.09382"),
                        ("color_jitter", "hue: float = 0.0 in [0, 0.5]"),
                        ("weight_standardization", "e-shifted L2"), ("evonorm_b0", "arXiv:2004.02967"),
                        ("evonorm_s0", "groups: int = 32"), ("init", "orthogonal"),
                        ("ghmc", "bins: int = 10 in [2, 1000]")]:
        lines = out.splitlines()
        first = next(i for i, line in enumerate(lines) if line.startswith(f"{name} "))
        block = [lines[first], *itertools.takewhile(lambda line: line.startswith(" "), lines[first + 1:])]
        assert words in "\n".join(block), name
    code, out, _ = run(capsys, "tricks", "cosine")
    assert code == 0 and "mixup" not in out
    code, _, err = run(capsys, "tricks", "mixpu")
    assert code == 2 and "did you mean 'mixup'" in err


def test_plan_prints_arms_and_cost_and_runs_nothing(capsys, spec_file, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = spec_file(tiny_dict(design={"kind": "cumulative"}))
    code, out, _ = run(capsys, "plan", str(path))
    assert code == 0
    assert "3 arms x 2 seeds = 6 trials" in out and "ResNet8-w8 + C + S" in out
    assert "estimate on cpu" in out and "training images" in out
    assert not list(tmp_path.glob("*.db"))


@pytest.mark.parametrize("changes, words", [
    ({"tricks": {"mixpu": {}}}, "unknown trick 'mixpu'"),
    ({"seeds": 0}, "seeds must be >= 1"),
    ({"recipe": {"epcohs": 2}}, "unknown key 'epcohs'"),
    ({"data": {"name": "cifar10", "root": "/nowhere"}}, "cifar10 files not found"),
])
def test_bad_spec_exits_2_and_writes_nothing(capsys, spec_file, tmp_path, changes, words):
    path = spec_file(tiny_dict(**changes))
    db = tmp_path / "runs.db"
    code, out, err = run(capsys, "run", str(path), "--store", str(db), "--out", str(tmp_path / "rep"))
    assert code == 2 and words in err and str(path) in err
    assert err.count("\n") == 1, "one paragraph"
    assert not db.exists() and not (tmp_path / "rep").exists()


def test_missing_spec_and_yaml_error(capsys, spec_file, tmp_path):
    code, _, err = run(capsys, "run", str(tmp_path / "none.yaml"), "--store", str(tmp_path / "x.db"))
    assert code == 2 and "no spec file" in err
    path = spec_file("name: [unclosed\n")
    code, _, err = run(capsys, "plan", str(path))
    assert code == 2 and "YAML syntax error" in err and f"{path}:2" in err


def test_foreign_store_exits_2_and_is_untouched(capsys, spec_file, tmp_path):
    db = tmp_path / "mine.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE notes (t TEXT)")
    con.commit()
    con.close()
    before = db.read_bytes()
    code, _, err = run(capsys, "run", str(spec_file(tiny_dict())), "--store", str(db))
    assert code == 2 and "not an ablate database" in err
    assert db.read_bytes() == before


def test_run_status_report_round_trip(capsys, spec_file, tmp_path):
    path = spec_file(tiny_dict(recipe={"epochs": 1}))
    db, out_dir = tmp_path / "runs.db", tmp_path / "rep"
    code, out, err = run(capsys, "run", str(path), "--store", str(db), "--out", str(out_dir))
    assert code == 0, err
    assert "[6/6]" in out and "6 complete" in out and "| Arm |" in out
    assert (out_dir / "lift.md").exists() and (out_dir / "lift.csv").exists()
    code, out, _ = run(capsys, "run", str(path), "--store", str(db), "--no-report")
    assert code == 0 and "6 already in the store; this run: nothing to run" in out
    code, out, _ = run(capsys, "status", "--store", str(db))
    assert code == 0 and "tiny: 6 trials (6 complete)" in out
    code, out, _ = run(capsys, "status", "tiny", "--store", str(db))
    assert code == 0 and out.count("complete") >= 6
    code, out, _ = run(capsys, "report", "tiny", "--store", str(db), "--format", "md,json", "--out", str(out_dir))
    assert code == 0 and (out_dir / "report.json").exists()
    code, _, err = run(capsys, "report", "tiyn", "--store", str(db))
    assert code == 2 and "did you mean 'tiny'" in err
    code, _, err = run(capsys, "report", "tiny", "--store", str(tmp_path / "absent.db"))
    assert code == 2 and "does not exist" in err and not (tmp_path / "absent.db").exists()


def test_bad_format_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(["report", "x", "--format", "pdf"])
    assert info.value.code == 2
    assert "unknown format pdf" in capsys.readouterr().err


def test_compare_and_html_from_the_command_line(capsys, spec_file, tmp_path):
    db, out_dir = tmp_path / "runs.db", tmp_path / "cmp"
    for name, depth in (("a", 8), ("b", 14)):
        path = spec_file(tiny_dict(name=name, model={"depth": depth}, recipe={"epochs": 1}, seeds=1), name=f"{name}.yaml")
        assert run(capsys, "run", str(path), "--store", str(db), "--no-report")[0] == 0
    code, out, err = run(capsys, "report", "a", "b", "--compare", "--store", str(db), "--out", str(out_dir),
                         "--format", "md,html")
    assert code == 0, err
    assert "## a vs b" in out and (out_dir / "compare.html").exists()
    code, out, err = run(capsys, "report", "a", "--store", str(db), "--out", str(tmp_path / "h"), "--format", "html")
    assert code == 0 and (tmp_path / "h" / "report.html").stat().st_size > 1_000_000


def test_command_line_starts_without_torch_pandas_or_scipy():
    """Reading specs, planning and listing tricks stay fast: heavy libraries load on first use."""
    import subprocess
    import sys

    code = ("import sys, ablate.cli, ablate.design.spec, ablate.design.plan, ablate.tricks, ablate.report; "
            "ablate.design.spec.load_spec('quickstart'); ablate.design.plan.plan(ablate.design.spec.load_spec('quickstart')); "
            "print(sorted(m for m in ('torch', 'torchvision', 'pandas', 'scipy', 'plotly') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# -- every option's effect (issue 14), bad options and stores (issues 7 and 13) ------------------

import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import yaml  # noqa: E402

from ablate.store import Store  # noqa: E402


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    """One real run of the tiny spec (3 seeds, 1 epoch) into a store in folders that do not exist
    yet, with every report format but html; shared by the report and status tests."""
    root = tmp_path_factory.mktemp("ran")
    path = root / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_dict(recipe={"epochs": 1}, seeds=3), sort_keys=False))
    db, rep = root / "new" / "sub" / "runs.db", root / "rep"
    argv = ["run", str(path), "--store", str(db), "--out", str(rep), "--format", "md,csv,json,latex",
            "--device", "cpu"]
    from contextlib import redirect_stdout
    from io import StringIO

    buf = StringIO()
    with redirect_stdout(buf):
        code = main(argv)
    assert code == 0
    return {"root": root, "spec": path, "db": db, "rep": rep, "out": buf.getvalue()}


def test_run_says_new_store_and_folders_first_and_writes_every_format(ran):
    first = ran["out"].splitlines()[0]
    assert f"new store at {ran['db']}" in first and f"(creating folder {ran['db'].parent})" in first
    assert sorted(p.name for p in ran["rep"].iterdir()) == [".ablate-report.json", "lift.csv", "lift.md", "lift.tex", "report.json"]
    env = Store(ran["db"]).trials_frame("tiny")["env"]
    assert {json.loads(e)["device"] for e in env} == {"cpu"}, "--device cpu reached the trials"


def test_report_test_confidence_columns_format_and_out(capsys, ran, tmp_path):
    db = str(ran["db"])
    code, out, err = run(capsys, "report", "tiny", "--store", db, "--out", str(tmp_path / "a"), "--format", "json")
    assert code == 0, err
    base = json.loads((tmp_path / "a" / "report.json").read_text())
    assert base["test"] == "t" and base["confidence"] == 0.95
    code, out, err = run(capsys, "report", "tiny", "--store", db, "--out", str(tmp_path / "b"), "--format",
                         "md,json", "--test", "wilcoxon", "--confidence", "0.9", "--columns", "gflops,memory")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == [".ablate-report.json", "lift.md", "report.json"]
    other = json.loads((tmp_path / "b" / "report.json").read_text())
    assert other["test"] == "wilcoxon" and "Wilcoxon" in out
    assert "[90% CI]" in out and "[95% CI]" not in out
    assert "GFLOPs/image" in out and "Peak GPU mem" in out and "Params (M)" not in out
    code, out, err = run(capsys, "report", "tiny", "--store", db, "--out", str(tmp_path / "c"), "--columns", "top5")
    assert code == 0, err
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if "Test top-5 (%)" in line)
    row = lines[at + 2]                                     # the baseline, under the separator
    top5 = float(row.rstrip(" |").rsplit("|", 1)[-1])      # digits has 10 classes: top-5 is recorded
    assert 0 < top5 <= 100
    spread = [(a, b) for a, b in zip(base["arms"][1:], other["arms"][1:]) if (a["lift_std"] or 0) > 1e-9]
    assert spread, "at least one arm with a CI of non-zero width to compare"
    for a, b in spread:
        assert b["lift_high"] - b["lift_low"] < a["lift_high"] - a["lift_low"], "a 90% CI is narrower"


def test_report_default_out_is_reports_of_the_experiment(capsys, ran, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "report", "tiny", "--store", str(ran["db"]))
    assert code == 0, err
    assert (tmp_path / "reports" / "tiny" / "lift.md").exists() and (tmp_path / "reports" / "tiny" / "lift.csv").exists()


def test_ablate_store_environment_variable_is_the_default_store(capsys, ran, tmp_path, monkeypatch):
    monkeypatch.setenv("ABLATE_STORE", str(ran["db"]))
    code, out, err = run(capsys, "status")
    assert code == 0 and "tiny: 9 trials (9 complete)" in out, err
    monkeypatch.setenv("ABLATE_STORE", str(tmp_path / "elsewhere.db"))
    code, out, err = run(capsys, "status")
    assert code == 2 and "elsewhere.db" in err and "does not exist" in err


def test_status_of_named_experiments_lists_every_trial(capsys, ran):
    code, out, _ = run(capsys, "status", "tiny", "--store", str(ran["db"]))
    assert code == 0 and "plan: 3 arms x 3 seeds = 9 trials" in out
    rows = [line.split() for line in out.splitlines() if " arm " in line and "complete" in line]
    assert len(rows) == 9 and all(len(r[0]) == 8 for r in rows), "each line starts with its trial id (for logs)"


def test_plan_no_estimate_reads_no_data_and_times_nothing(capsys, spec_file):
    path = spec_file(tiny_dict(data={"name": "cifar10", "root": "/no/such/cifar"}))
    code, out, err = run(capsys, "plan", str(path), "--no-estimate")
    assert code == 0, err
    assert "3 arms x 2 seeds = 6 trials" in out and "estimate" not in out and "cost:" not in out
    code, _, err = run(capsys, "plan", str(path))
    assert code == 2 and "cifar10 files not found" in err


def test_plan_of_a_fractional_design_maps_letters_to_codes(capsys):
    code, out, _ = run(capsys, "plan", "digits_screening", "--no-estimate")
    assert code == 0
    assert "tricks: factor letter (generators, aliases) / code (arm labels) / name" in out
    assert "   C  N     nesterov" in out and "   A  C     cosine" in out
    assert "codes:" not in out and "  C = nesterov" not in out


@pytest.mark.parametrize("device, words", [
    ("tpu", ["'tpu' is not a device", "allowed: cpu, cuda, cuda:N"]),
    ("cpu:1", ["'cpu:1' is not a device"]),
    ("cuda", ["no CUDA GPU"]),
    ("cuda:3", ["no CUDA GPU"]),
    ("mps", ["MPS backend is not available"]),
])
def test_an_unavailable_device_exits_2_before_anything_is_written(capsys, spec_file, tmp_path, monkeypatch,
                                                                   device, words):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    db = tmp_path / "runs.db"
    code, out, err = run(capsys, "run", str(spec_file(tiny_dict())), "--store", str(db), "--device", device)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    for w in words:
        assert w in err, err
    assert not db.exists() and out == ""


def test_a_missing_gpu_index_is_named(monkeypatch):
    import torch

    from ablate.preflight import check_device
    from ablate.errors import AblateError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    check_device("cuda:1")
    with pytest.raises(AblateError, match="2 CUDA GPU"):
        check_device("cuda:2")


def test_a_failed_start_never_switches_the_stored_spec(capsys, ran):
    store = Store(ran["db"])
    before = store.experiment("tiny")["spec"]
    code, _, err = run(capsys, "run", str(ran["spec"]), "--store", str(ran["db"]), "--epochs", "3",
                       "--device", "tpu")
    assert code == 2
    assert store.experiment("tiny")["spec"] == before and len(store.trial_statuses("tiny")) == 9


@pytest.mark.parametrize("option", ["--epochs", "--seeds"])
def test_non_positive_overrides_exit_2(capsys, spec_file, tmp_path, option):
    db = tmp_path / "runs.db"
    code, _, err = run(capsys, "run", str(spec_file(tiny_dict())), "--store", str(db), option, "0")
    assert code == 2 and f"{option} must be >= 1, got 0" in err and not db.exists()


def test_absurd_seed_override_is_refused(capsys, spec_file, tmp_path):
    db = tmp_path / "runs.db"
    code, _, err = run(capsys, "run", str(spec_file(tiny_dict())), "--store", str(db), "--seeds", "1000000000")
    assert code == 2 and "limit is 1,000" in err and not db.exists()


def test_a_python_script_given_to_run(capsys, tmp_path):
    (tmp_path / "train.py").write_text("print('hi')\n")
    code, _, err = run(capsys, "run", str(tmp_path / "train.py"), "--store", str(tmp_path / "x.db"))
    assert code == 2 and "Python script" in err and "trial: {command:" in err
    assert not (tmp_path / "x.db").exists()


def test_bad_store_targets_exit_2_and_write_nothing(capsys, spec_file, tmp_path):
    path = str(spec_file(tiny_dict()))
    (tmp_path / "folder").mkdir()
    code, _, err = run(capsys, "run", path, "--store", str(tmp_path / "folder"))
    assert code == 2 and "is a directory" in err
    (tmp_path / "afile").write_text("x")
    code, _, err = run(capsys, "run", path, "--store", str(tmp_path / "afile" / "sub" / "r.db"))
    assert code == 2 and "is a file, not a folder" in err
    text = tmp_path / "notes.txt"
    text.write_text("not a database\n" * 100)
    code, _, err = run(capsys, "run", path, "--store", str(text))
    assert code == 2 and "not an ablate database" in err and text.read_text() == "not a database\n" * 100
    code, _, err = run(capsys, "run", path, "--store", "nosuchdriver://host/db")
    assert code == 2 and "cannot use store" in err and "sqlite:///" in err
    for e in (err,):
        assert "Traceback" not in e
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "folder", "notes.txt", "tiny.yaml"]


@pytest.mark.slow
def test_a_reused_name_small_edits_other_experiments_and_replace(capsys, spec_file, tmp_path):
    """A small edit stays one experiment (unchanged trials reused); another recipe/model/design
    kind under the same name is refused until --replace, which deletes the old trials."""
    db = str(tmp_path / "runs.db")
    path = spec_file(tiny_dict(recipe={"epochs": 1}))
    code, out, err = run(capsys, "run", str(path), "--store", db, "--seeds", "1", "--no-report")
    assert code == 0, err
    assert "3 complete" in out and not (tmp_path / "reports").exists()
    store = Store(db)
    frame = store.trials_frame("tiny")
    assert len(frame) == 3 and set(frame["seed"]) == {0}, "--seeds 1"
    # another recipe (via --epochs) or model under the same name: refused, nothing changed
    before = store.experiment("tiny")["spec"]
    code, out, err = run(capsys, "run", str(path), "--store", db, "--seeds", "1", "--epochs", "2")
    assert code == 2 and "different recipe" in err and "epochs: 1 -> 2" in err
    assert "new 'name:'" in err and "--replace" in err and "3 trial(s)" in err
    path2 = spec_file(tiny_dict(recipe={"epochs": 1}, model={"name": "convnet", "width": 4}), name="m.yaml")
    code, _, err = run(capsys, "run", str(path2), "--store", db, "--seeds", "1")
    assert code == 2 and "different model" in err
    assert store.experiment("tiny")["spec"] == before and len(store.trial_statuses("tiny")) == 3
    # a trick parameter edit: one experiment, the unchanged arms reused
    path3 = spec_file(tiny_dict(recipe={"epochs": 1}, tricks={"cosine": {}, "label_smoothing": {"eps": 0.2}}),
                      name="edit.yaml")
    code, out, err = run(capsys, "run", str(path3), "--store", db, "--seeds", "1", "--no-report")
    assert code == 0, err
    assert "2 already in the store; this run: 1 complete" in out
    code, out, _ = run(capsys, "status", "--store", db)
    assert "tiny: 3 trials (3 complete); 1 more from earlier versions of its spec" in out
    # --replace: says how many it deletes, then runs the new experiment from scratch
    code, out, err = run(capsys, "run", str(path3), "--store", db, "--seeds", "1", "--epochs", "2",
                         "--replace", "--no-report")
    assert code == 0, err
    assert "deleted the 4 stored trial(s) of 'tiny'" in out and "0 already in the store" in out
    frame = Store(db).trials_frame("tiny")
    assert len(frame) == 3 and (frame["status"] == "complete").all()
    assert json.loads(Store(db).experiment("tiny")["spec"])["recipe"]["epochs"] == 2
    assert len(Store(db).epochs_frame("tiny")) == 3 * 2, "2 epochs per trial: --epochs took effect"


def _ablate(*args, cwd):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (os.getcwd(), os.environ.get("PYTHONPATH")) if p)}
    return subprocess.Popen([sys.executable, "-m", "ablate", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=cwd, env=env)


def test_status_into_a_closed_pipe_stops_quietly(ran):
    proc = _ablate("status", "tiny", "--store", str(ran["db"]), cwd=ran["root"])
    proc.stdout.close()            # the reader is gone before the first line, like `| head -0`
    err = proc.stderr.read().decode()
    assert proc.wait() == 0, err
    assert "Traceback" not in err and "BrokenPipe" not in err


@pytest.mark.slow
def test_a_run_into_a_closed_pipe_keeps_running_and_recording(spec_file, tmp_path):
    path = spec_file(tiny_dict(recipe={"epochs": 1}, seeds=1))
    db = tmp_path / "runs.db"
    proc = _ablate("run", str(path), "--store", str(db), "--out", str(tmp_path / "rep"), cwd=tmp_path)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait() == 0, err
    assert "Traceback" not in err and "BrokenPipe" not in err
    frame = Store(db).trials_frame("tiny")
    assert len(frame) == 3 and (frame["status"] == "complete").all()
    assert (tmp_path / "rep" / "lift.md").exists(), "the run went on to write its report"


def test_a_field_added_since_the_stored_spec_is_no_difference(tmp_path):
    from ablate.preflight import check_spec_change
    from ablate.errors import SpecError
    from ablate.design.spec import spec_to_dict
    from tests.conftest import tiny_spec

    store = Store(tmp_path / "s.db", create=True)
    old = spec_to_dict(tiny_spec())
    del old["recipe"]["nesterov"]      # as a release without that field stored it (default False)
    store.save_experiment("tiny", json.dumps(old), None)
    assert check_spec_change(store, tiny_spec(), replace=False) is None
    with pytest.raises(SpecError, match=r"different recipe: recipe \(epochs: 2 -> 3\)"):
        check_spec_change(store, tiny_spec(recipe={"epochs": 3}), replace=False)


def test_report_permutation_test_and_diverged_rule(capsys, ran, tmp_path):
    db = tmp_path / "copy.db"   # a copy (the WAL included, by SQLite's backup), not the shared store
    with sqlite3.connect(ran["db"]) as src, sqlite3.connect(db) as dst:
        src.backup(dst)
    con = sqlite3.connect(db)   # one seed of arm 1 diverged: its lift is charged chance accuracy
    con.execute("UPDATE ablate_trials SET status='diverged' WHERE experiment='tiny' AND arm=1 AND seed=0")
    con.commit()
    con.close()
    reports = {}
    for rule in ("worst", "exclude"):
        code, out, err = run(capsys, "report", "tiny", "--store", str(db), "--out", str(tmp_path / rule),
                             "--format", "json", "--test", "permutation", "--diverged", rule)
        assert code == 0, err
        reports[rule] = json.loads((tmp_path / rule / "report.json").read_text())
    assert reports["worst"]["test"] == "permutation"
    worst, excluded = reports["worst"]["arms"][1], reports["exclude"]["arms"][1]
    assert worst["n_pairs"] == 3 and excluded["n_pairs"] == 2, "exclude drops the diverged pair, worst keeps it"
    frame = Store(db).trials_frame("tiny")
    acc = {(a, s): v for a, s, v in zip(frame["arm"], frame["seed"], frame["val_acc"])}
    # chance on digits is 10%, but a completed seed of this tiny run can score below it: a diverged
    # seed scores the worse of the two, never better than a seed that finished
    worst_score = min(10.0, min(v for (a, s), v in acc.items() if (a, s) != (1, 0)))
    assert worst["n_pairs"] == 3 and reports["worst"]["diverged_score"] == pytest.approx(worst_score)
    charged = [(worst_score if s == 0 else acc[1, s]) - acc[0, s] for s in (0, 1, 2)]
    assert worst["lift"] == pytest.approx(sum(charged) / 3)
    assert excluded["lift"] == pytest.approx(sum(charged[1:]) / 2)
    assert "diverged" in (excluded["warning"] or "")
    with pytest.raises(SystemExit) as info:
        main(["report", "tiny", "--store", str(db), "--diverged", "nan"])
    assert info.value.code == 2 and "invalid choice: 'nan'" in capsys.readouterr().err
