"""Experiments side by side: rows matched by trick codes across models."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest

from ablate.errors import ReportError
from ablate.design.plan import plan
from ablate.report import build_report
from ablate.report.compare import (
    compare_frame,
    compare_markdown,
    lift_groups,
    row_assignment,
    settings_differences,
    write_compare,
)
from ablate.report.render import lift_rows
from ablate.design.spec import spec_to_dict
from ablate.store import Store
from tests.conftest import tiny_spec
from tests.report.test_report import VALS

THREE = {"cosine": {}, "label_smoothing": {}, "mixup": {}}


def stored_report(store, name, spec, values):
    p = plan(spec)
    store.save_experiment(name, json.dumps(spec_to_dict(spec)), None)
    store.add_trials(name, list(p.trials))
    for t in p.trials:
        store.start_trial(name, t.id, {})
        v = values[t.arm, t.seed]
        store.finish_trial(name, t.id, "complete", metrics={"val_acc": v, "test_acc": v + 1})
    return build_report(store, name)


def two_reports(tmp_path):
    """The same cumulative tricks on ResNet8 and ResNet14; the deeper one stacks one more trick."""
    store = Store(tmp_path / "c.db", create=True)
    small = stored_report(store, "small", tiny_spec(name="small", model={"depth": 8}, tricks=THREE,
                                                    design={"kind": "cumulative"}, seeds=4), VALS)
    deeper_values = np.vstack([VALS + 1.5, VALS[-1:] + 1.8]) + np.array([[0.0], [0.3], [-0.2], [0.1], [0.0]])
    deeper = stored_report(store, "deeper", tiny_spec(name="deeper", model={"depth": 14},
                                                      tricks={**THREE, "ema": {}}, design={"kind": "cumulative"},
                                                      seeds=4), deeper_values)
    return [small, deeper]


def test_rows_match_by_codes_and_values_match_each_table(tmp_path):
    small, deeper = two_reports(tmp_path)
    f = compare_frame([small, deeper]).set_index("row")
    assert f.index.tolist() == ["baseline", "C", "C + S", "C + S + M", "C + S + M + EMA"]
    for rep in (small, deeper):
        lf = rep.lift.frame
        rows = f.index[: len(lf)]
        for ours, theirs in (("val_mean", "val_mean"), ("test_mean", "test_mean"), ("lift_value", "lift"),
                             ("lift_low", "lift_low"), ("lift_high", "lift_high"), ("n", "n")):
            got = f.loc[rows, f"{rep.name} {ours}"].to_numpy(dtype=float)
            assert got == pytest.approx(lf[theirs].to_numpy(dtype=float), nan_ok=True), (rep.name, ours)
        # the text cells are the lift table's own cells
        _, cells = lift_rows(rep.lift)
        assert f.loc[rows, f"{rep.name} val"].tolist() == [c[1] for c in cells]
        assert f.loc[rows, f"{rep.name} test"].tolist() == [c[2] for c in cells]
        assert [x.removesuffix(" *") for x in f.loc[rows, f"{rep.name} lift"]] == [c[3] for c in cells]
    assert pd.isna(f.loc["C + S + M + EMA", "small val"]), "NaN where an experiment lacks the arm"
    assert f.loc["C + S + M + EMA", "deeper lift_value"] == pytest.approx(deeper.lift.frame.lift[4])


def test_codes_match_in_any_order(tmp_path):
    small, _ = two_reports(tmp_path)
    store = Store(tmp_path / "o.db", create=True)
    flipped = stored_report(store, "flipped", tiny_spec(name="flipped", tricks={"label_smoothing": {}, "cosine": {}},
                                                        design={"kind": "cumulative"}, seeds=4), VALS[:3])
    order, where = row_assignment([small, flipped])
    assert order == ["baseline", "C", "C + S", "C + S + M", "S"]
    assert where[1] == {0: "baseline", 1: "S", 2: "C + S"}, "'S + C' is the configuration 'C + S'"
    f = compare_frame([small, flipped]).set_index("row")
    assert f.loc["C + S", "flipped lift_value"] == pytest.approx(flipped.lift.frame.lift[2])
    assert pd.isna(f.loc["C", "flipped val_mean"]) and pd.isna(f.loc["S", "small val_mean"])


def test_lift_groups_are_the_tables_lifts(tmp_path):
    small, deeper = two_reports(tmp_path)
    g_small, g_deeper = lift_groups([small, deeper])
    assert g_small["row"] == ["C", "C + S", "C + S + M"] and len(g_deeper["row"]) == 4
    assert g_deeper["lift"] == pytest.approx(deeper.lift.frame.lift[1:].tolist())
    assert g_small["low"] == pytest.approx(small.lift.frame.lift_low[1:].tolist())


def test_markdown(tmp_path):
    reports = two_reports(tmp_path)
    md = compare_markdown(reports)
    assert ("| Tricks | small val (%) | small test (%) | small lift (pp) | deeper val (%) | deeper test (%) "
            "| deeper lift (pp) |") in md
    assert "| C + S + M + EMA | – | – | – | 93.97 ± 0.95 (4) | 94.97 ± 0.95 (4) | +2.05 [+1.56, +2.54] * |" \
        in md
    assert "| C | 91.30 ± 0.61 (4) | 92.30 ± 0.61 (4) | +0.88 [+0.42, +1.33] * | 93.10 ± 0.61 (4) |" in md
    assert "small: ResNet8-w8 on digits" in md and "deeper: ResNet14-w8 on digits" in md


def test_files(tmp_path):
    reports = two_reports(tmp_path)
    out = tmp_path / "cmp"
    paths = write_compare(reports, out, ("md", "csv", "json", "html", "latex"))
    assert [p.name for p in paths] == ["compare.md", "compare.csv", "compare.json", "compare.html", "compare.tex"]
    csv = pd.read_csv(io.StringIO((out / "compare.csv").read_text()))
    assert csv["row"].tolist()[-1] == "C + S + M + EMA"
    lifts = reports[1].lift.frame.lift[1:].to_numpy()
    assert csv["deeper lift_value"].iloc[1:].to_numpy() == pytest.approx(lifts, rel=1e-5)
    doc = json.loads((out / "compare.json").read_text())
    assert [e["name"] for e in doc["experiments"]] == ["small", "deeper"]
    last = doc["rows"][-1]
    assert last["row"] == "C + S + M + EMA" and list(last["experiments"]) == ["deeper"]
    assert doc["rows"][0]["experiments"]["small"]["lift_value"] is None
    page = (out / "compare.html").read_text()
    assert page.count("Plotly.newPlot") == 1 and "<table>" in page and "<script src" not in page
    assert "\\toprule" in (out / "compare.tex").read_text()
    with pytest.raises(ReportError, match="unknown format.*pdf"):
        write_compare(reports, out, ("pdf",))


def test_compare_needs_two_distinct(tmp_path):
    small, _ = two_reports(tmp_path)
    with pytest.raises(ReportError, match="at least two"):
        compare_frame([small])
    with pytest.raises(ReportError, match="'small' is named twice"):
        compare_frame([small, small])


@pytest.mark.browser
def test_compare_page_draws_in_headless_chromium(tmp_path):
    from tests.report.test_report_html import assert_not_blank, open_pages

    path = write_compare(two_reports(tmp_path), tmp_path / "cmp", ("html",))[0]
    (seen,) = open_pages([path], [1])
    assert seen["errors"] == [] and seen["requests"] == [] and seen["dialogs"] == [], seen
    (plot,) = seen["plots"]
    assert plot["points"] == 3 + 4 and sorted(plot["yticks"]) == ["C", "C + S", "C + S + M", "C + S + M + EMA"]
    assert_not_blank(seen["png"])


def test_compare_names_the_settings_that_differ(tmp_path):
    small, deeper = two_reports(tmp_path)
    diffs = dict(settings_differences([small, deeper]))
    assert diffs["model.depth"] == [8, 14]
    assert diffs["tricks.EMA.use"] == [None, "ema"]
    assert "recipe.lr" not in diffs and "data.name" not in diffs
    store = Store(tmp_path / "eps.db", create=True)
    a = stored_report(store, "eps01", tiny_spec(name="eps01", tricks={"label_smoothing": {"eps": 0.1}}), VALS[:2, :2])
    b = stored_report(store, "eps02", tiny_spec(name="eps02", tricks={"label_smoothing": {"eps": 0.2}},
                                                recipe={"lr": 0.1}), VALS[:2, :2])
    md = compare_markdown([a, b])
    assert "Settings that differ: recipe.lr (eps01: 0.05, eps02: 0.1); tricks.S.eps (eps01: 0.1, eps02: 0.2)." in md
    same = compare_markdown([a, stored_report(store, "eps01b", tiny_spec(name="eps01b", tricks={
        "label_smoothing": {"eps": 0.1}}), VALS[:2, :2])])
    assert "Settings: identical in every experiment apart from the name." in same
