"""`ablate lr-find`: the LR range test on digits (a tiny recipe, a few dozen batches)."""

from __future__ import annotations

import csv
import math
import sys

import pytest

from ablate.cli import main
from ablate.lrfind import LRFindResult, sweep_lrs
from tests.conftest import tiny_dict


def test_sweep_is_exponential_from_start_to_end():
    lrs = sweep_lrs(1e-4, 1.0, 5)
    assert lrs == pytest.approx([1e-4, 1e-3, 1e-2, 1e-1, 1.0])


def test_suggestions_steepest_and_min_over_10():
    lrs = sweep_lrs(1e-3, 10.0, 21)
    # a smoothed loss flat, then falling fastest around lrs[11], lowest at lrs[16], then diverging
    smoothed = [2.0] * 10 + [1.9, 1.6, 1.0, 0.8, 0.7, 0.65, 0.6, 0.9, 2.0, 3.0, 9.0]
    r = LRFindResult(lrs, smoothed, smoothed, stopped_early=True, label="x")
    # central differences (equal log steps): at 11, (1.0 - 1.9) / 2 is the largest drop; the
    # diverged last point, where the loss rises, is left out either way
    assert r.steepest_lr == lrs[11]
    assert r.min_over_10_lr == pytest.approx(lrs[16] / 10)


def test_lr_find_on_digits_writes_csv_figure_and_a_suggestion_in_range(spec_file, tmp_path, capsys):
    path = spec_file(tiny_dict(seeds=1))
    out = tmp_path / "lr"
    code = main(["lr-find", str(path), "--start", "1e-4", "--end", "50", "--steps", "20", "-o", str(out)])
    printed = capsys.readouterr().out
    assert code == 0
    rows = list(csv.DictReader((out / "lr_find.csv").open()))
    assert 2 <= len(rows) <= 20 and list(rows[0]) == ["lr", "loss", "smoothed"]
    lrs = [float(r["lr"]) for r in rows]
    assert lrs[0] == pytest.approx(1e-4) and all(b > a for a, b in zip(lrs, lrs[1:]))
    assert all(math.isfinite(float(r["loss"])) for r in rows[:-1])
    html = (out / "lr_find.html").read_text()
    assert "plotly" in html and len(html) > 1_000_000, "plotly.js inlined: the figure opens offline"
    line = next(x for x in printed.splitlines() if x.startswith("suggested lr:"))
    steepest = float(line.split()[2])
    min10 = float(line.split("; ")[1].split()[0])
    assert 1e-4 <= steepest <= 50 and 1e-5 <= min10 <= 5
    assert "steepest descent" in line and "min/10" in line


@pytest.mark.parametrize("args, words", [
    (["no_such_spec_xyz"], "no_such_spec_xyz"),
    (["SPEC", "--start", "1", "--end", "1"], "--end must be > --start, got start=1.0, end=1.0"),
    (["SPEC", "--start", "0"], "--start must be a finite lr > 0, got 0.0"),
    (["SPEC", "--steps", "4"], "--steps must be >= 5 (one mini-batch per lr), got 4"),
    (["COMMAND"], "runs a command ('trial:')"),
])
def test_bad_input_exits_2_and_writes_nothing(args, words, spec_file, tmp_path, capsys):
    spec = spec_file(tiny_dict(seeds=1))
    (tmp_path / "train.py").write_text("print(1)\n")
    command = spec_file({"name": "cmd", "data": {"name": "digits"},
                         "trial": {"command": [sys.executable, "train.py"], "cwd": str(tmp_path)},
                         "tricks": {"cos": {"cosine": True}}, "design": {"kind": "one_at_a_time"},
                         "seeds": 1},
                        name="cmd.yaml")
    args = [{"SPEC": str(spec), "COMMAND": str(command)}.get(a, a) for a in args]
    out = tmp_path / "out"
    assert main(["lr-find", *args, "-o", str(out)]) == 2
    assert words in capsys.readouterr().err
    assert not out.exists()
