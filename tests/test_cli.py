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
    code, out, _ = run(capsys, "tricks")
    assert code == 0
    assert "mixup" in out and "alpha: float = 0.2 in (0, inf)" in out and "arXiv:1710.09412" in out
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

    code = ("import sys, ablate.cli, ablate.spec, ablate.plan, ablate.tricks, ablate.report; "
            "ablate.spec.load_spec('quickstart'); ablate.plan.plan(ablate.spec.load_spec('quickstart')); "
            "print(sorted(m for m in ('torch', 'torchvision', 'pandas', 'scipy', 'plotly') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
