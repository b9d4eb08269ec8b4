"""Experiments side by side: rows matched by trick codes across models."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ablate.plan import plan
from ablate.report import build_report
from ablate.report.compare import compare_frame, compare_markdown, write_compare
from ablate.spec import spec_to_dict
from ablate.store import Store
from tests.conftest import tiny_spec
from tests.test_report import VALS


def two_reports(tmp_path):
    store = Store(tmp_path / "c.db", create=True)
    reports = []
    for name, depth, shift in (("small", 8, 0.0), ("deeper", 14, 1.5)):
        spec = tiny_spec(name=name, model={"depth": depth}, tricks={"cosine": {}, "label_smoothing": {}, "mixup": {}},
                         design={"kind": "cumulative"}, seeds=4)
        if name == "deeper":   # one more arm that the first experiment lacks
            spec = tiny_spec(name=name, model={"depth": depth},
                             tricks={"cosine": {}, "label_smoothing": {}, "mixup": {}, "ema": {}},
                             design={"kind": "cumulative"}, seeds=4)
        p = plan(spec)
        values = np.vstack([VALS + shift, VALS[-1:] + shift + 0.3])[: len(p.arms)]
        store.save_experiment(name, json.dumps(spec_to_dict(spec)), None)
        store.add_trials(name, list(p.trials))
        for t in p.trials:
            store.start_trial(name, t.id, {})
            v = values[t.arm, t.seed]
            store.finish_trial(name, t.id, "complete", metrics={"val_acc": v, "test_acc": v + 1})
        reports.append(build_report(store, name))
    return reports


def test_rows_match_by_codes_and_values_match_each_table(tmp_path):
    small, deeper = two_reports(tmp_path)
    f = compare_frame([small, deeper])
    assert f.row.tolist() == ["baseline", "C", "C + S", "C + S + M", "C + S + M + EMA"]
    for rep in (small, deeper):
        lf = rep.lift.frame
        got = f.set_index("row")[f"{rep.name} lift_value"].iloc[1:len(lf)].tolist()
        assert got == pytest.approx(lf.lift.iloc[1:].tolist())
    assert f.loc[4, "small val"] != f.loc[4, "small val"], "NaN where an experiment lacks the arm"


def test_markdown_and_files(tmp_path):
    reports = two_reports(tmp_path)
    md = compare_markdown(reports)
    assert "| Tricks | small val (%) | small test (%) | small lift (pp) | deeper val (%)" in md
    assert "| C + S + M + EMA | – | – | – |" in md
    assert "ResNet8-w8 on digits" in md and "ResNet14-w8 on digits" in md
    paths = write_compare(reports, tmp_path / "cmp", ("md", "csv", "html"))
    assert sorted(p.name for p in paths) == ["compare.csv", "compare.html", "compare.md"]
    assert "Plotly.newPlot" in (tmp_path / "cmp" / "compare.html").read_text()


def test_compare_needs_two(tmp_path):
    from ablate.errors import ReportError

    with pytest.raises(ReportError, match="at least two"):
        compare_frame(two_reports(tmp_path)[:1])
