"""Report folders: never written through a symbolic link (a cloned repository may plant one in
`reports/`), a file only removed while its content is what ablate wrote, and the folder options'
bad input (a file, an empty format list) refused with exit 2 before anything is written."""

from __future__ import annotations

import os

import pytest

from ablate.cli import main
from tests.conftest import tiny_dict
from tests.report.test_report import VALS, cumulative_spec, filled_store


@pytest.fixture
def stored(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    filled_store(tmp_path, cumulative_spec(), VALS)
    return str(tmp_path / "r.db")


def _tree(root) -> dict[str, str]:
    return {str(p.relative_to(root)): (f"-> {os.readlink(p)}" if p.is_symlink() else p.read_text() if p.is_file() else "/")
            for p in sorted(root.rglob("*")) if p.name != "r.db" and "r.db-" not in p.name}


@pytest.mark.parametrize("link", ["reports/x/lift.md", "reports/x/lift.csv", "reports/x/.ablate-report.json",
                                  "reports/x", "reports"])
def test_a_planted_link_is_never_written_through(tmp_path, stored, capsys, link):
    (tmp_path / "victim").mkdir()
    (tmp_path / "victim.txt").write_text("precious")
    target = tmp_path / link
    target.parent.mkdir(parents=True, exist_ok=True)
    target.symlink_to(tmp_path / ("victim.txt" if "." in target.name else "victim"))
    before = _tree(tmp_path)
    assert main(["report", "tiny", "--store", stored, "--out", "reports/x"]) == 2
    err = capsys.readouterr().err
    assert "symbolic link" in err and link in err and "nothing was written" in err, err
    assert _tree(tmp_path) == before, "nothing written, inside the folder or out of it"


def test_lr_find_and_run_refuse_a_linked_output_before_the_work(tmp_path, spec_file, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "victim.txt").write_text("precious")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "lr_find.html").symlink_to(tmp_path / "victim.txt")
    path = spec_file(tiny_dict())
    assert main(["lr-find", str(path), "--steps", "5", "-o", "out"]) == 2
    assert "out/lr_find.html -> " in capsys.readouterr().err
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "tiny").symlink_to(tmp_path / "out")
    assert main(["run", str(path), "--store", "s.db"]) == 2
    assert "reports/tiny -> " in capsys.readouterr().err
    assert not (tmp_path / "s.db").exists(), "refused before the run"
    assert (tmp_path / "victim.txt").read_text() == "precious"


@pytest.mark.parametrize("argv", [["report", "tiny", "--out", "afile"], ["lr-find", "SPEC", "-o", "afile"],
                                  ["run", "SPEC", "--out", "afile"], ["report", "tiny", "--out", "afile/sub"]])
def test_an_output_folder_that_is_a_file_exits_2_before_the_work(tmp_path, stored, spec_file, capsys, argv):
    (tmp_path / "afile").write_text("mine")
    spec = str(spec_file(tiny_dict(name="other")))
    code = main([spec if a == "SPEC" else a for a in argv] + ([] if argv[0] == "lr-find" else ["--store", stored]))
    err = capsys.readouterr().err
    assert code == 2 and "afile" in err and "Traceback" not in err, err
    assert "is a file, not a folder" in err
    assert (tmp_path / "afile").read_text() == "mine"
    assert "lr range test" not in capsys.readouterr().out


@pytest.mark.parametrize("command", ["report", "run"])
def test_an_empty_format_list_exits_2(tmp_path, stored, spec_file, capsys, command):
    target = ["tiny"] if command == "report" else [str(spec_file(tiny_dict(name="other")))]
    with pytest.raises(SystemExit) as exit_:
        main([command, *target, "--store", stored, "--format", "", "--out", "new"])
    assert exit_.value.code == 2 and "give at least one format" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()


def test_one_number_formatter_for_every_report():
    """Design, search and comparison reports format numbers through `fmt_num` alone."""
    import ast
    from pathlib import Path

    import ablate
    from ablate.report.numbers import fmt_num

    assert fmt_num(-2.3749) == "\u22122.37" and fmt_num(0.5, sign=True) == "+0.50" and fmt_num(3, 1) == "3.0"
    assert fmt_num(float("nan")) == fmt_num(None) == "\u2013"
    assert fmt_num(3e-05, 4, general=True) == "3e-05" and fmt_num(64, 4, general=True) == "64"
    assert fmt_num("sgd", general=True) == "sgd"
    own = []   # no report module defines a number formatter of its own
    root = Path(ablate.__file__).parent
    for path in [*root.glob("report/*.py"), *root.glob("search/*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and node.name in ("_num", "_missing") and path.name != "numbers.py":
                body = ast.unparse(node)
                if "fmt_num" not in body:
                    own.append(f"{path.name}:{node.name}")
    assert own == []


def test_the_one_write_loop_refuses_an_unknown_format_before_writing_anything(tmp_path):
    from ablate.errors import ReportError
    from ablate.report.protocol import write_files

    class Fake:
        FILES = {"md": ("a.md",), "csv": ("a.csv", "b.csv")}
        name = "fake"

        def markdown(self):
            return "# fake\n"

        def format_error(self, bad):
            return f"no {bad[0]} here"

        def files(self, fmt):
            return [("a.md", self.markdown)] if fmt == "md" else [("a.csv", lambda: "x\n1\n")]

    with pytest.raises(ReportError, match="no latex here"):
        write_files(Fake(), tmp_path / "out", ("md", "latex"))
    assert not (tmp_path / "out").exists()
    paths = write_files(Fake(), tmp_path / "out", ("md", "csv", "md"))
    assert [p.name for p in paths] == ["a.md", "a.csv"] and (tmp_path / "out" / "a.md").read_text() == "# fake\n"
