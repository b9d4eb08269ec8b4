"""Experiments side by side (`ablate report A B --compare`): the same tricks on two models or
data sets, validation and test columns per experiment, like the custom-data reference table.

Arms are matched by their trick codes (the label without the model prefix), so "ResNet20 + C + S"
and "ResNet50 + C + S" share the row "C + S"; the arm without tricks is the row "baseline". The
codes are matched as a set: "S + C" in a spec that lists the tricks the other way round is the
same configuration and lands on the row "C + S". Rows follow the first experiment's design order,
then the rows only later experiments have.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ablate.errors import ReportError
from ablate.report import render
from ablate.report.protocol import write_files

if TYPE_CHECKING:
    from ablate.design.plan import Arm
    from ablate.report.build import Report

COMPARE_FORMATS = ("md", "csv", "json", "html", "latex")
# per experiment: text columns (shown) and numeric columns (for csv/json and checks)
TEXT_COLUMNS = ("val", "test", "lift")
NUMBER_COLUMNS = ("n", "val_mean", "val_std", "test_mean", "test_std", "lift_value", "lift_low", "lift_high",
                  "p_holm", "significant")


def row_key(report: Report, arm: Arm) -> str:
    """The label of an arm without its model prefix: its trick codes, or 'baseline' for none."""
    codes = [report.plan.spec.tricks[k].code for k in arm.tricks]
    return " + ".join(codes) if codes else "baseline"


def _check(reports: list[Report]) -> None:
    if len(reports) < 2:
        raise ReportError(f"--compare needs at least two experiments, got {len(reports)}")
    names = [r.name for r in reports]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup is not None:
        raise ReportError(f"experiment '{dup}' is named twice; --compare needs distinct experiments")


def row_assignment(reports: list[Report]) -> tuple[list[str], list[dict[int, str]]]:
    """The rows in order, and per experiment which row each of its arms lands on.

    An arm's row is its set of trick codes, spelled as the first experiment that has it spells it.
    Two arms of one experiment with the same tricks (explicit designs) keep separate rows."""
    seen: dict[tuple, str] = {}
    per_report = []
    for rep in reports:
        mine: dict[int, str] = {}
        used: dict[frozenset, int] = {}
        for a in rep.plan.arms:
            codes = frozenset(rep.plan.spec.tricks[k].code for k in a.tricks)
            repeat = used[codes] = used.get(codes, -1) + 1
            key = row_key(rep, a) if not repeat else f"{row_key(rep, a)} ({a.label})"
            mine[a.index] = seen.setdefault((codes, repeat), key)
        per_report.append(mine)
    return list(seen.values()), per_report


def compare_frame(reports: list[Report]) -> pd.DataFrame:
    """One row per arm (matched by trick codes), per experiment `<name> val`, `<name> test`
    (mean ± std (n)) and `<name> lift` (lift [CI], * if significant) as text, and the numbers
    behind them (`<name> val_mean`, `<name> lift_value`, ...). NaN where an experiment lacks the arm."""
    _check(reports)
    order, assignment = row_assignment(reports)
    rows: dict[str, dict] = {key: {"row": key} for key in order}
    for rep, where in zip(reports, assignment):
        f = rep.lift.frame.set_index("arm")
        name = rep.name
        for a in rep.plan.arms:
            cell = rows[where[a.index]]
            r = f.loc[a.index]
            base = a.index == 0
            cell[f"{name} val"] = render.mean_std(r["val_mean"], r["val_std"], r["n"])
            cell[f"{name} test"] = render.mean_std(r["test_mean"], r["test_std"], r["n"])
            cell[f"{name} lift"] = ("reference" if base else render.ci_text(r["lift"], r["lift_low"], r["lift_high"])
                                    + (" *" if r["significant"] else ""))
            for col, v in (("n", r["n"]), ("val_mean", r["val_mean"]), ("val_std", r["val_std"]),
                           ("test_mean", r["test_mean"]), ("test_std", r["test_std"]), ("lift_value", r["lift"]),
                           ("lift_low", r["lift_low"]), ("lift_high", r["lift_high"]), ("p_holm", r["p_holm"]),
                           ("significant", bool(r["significant"]) if not base else np.nan)):
                cell[f"{name} {col}"] = v
    columns = ["row"] + [f"{rep.name} {c}" for rep in reports for c in TEXT_COLUMNS + NUMBER_COLUMNS]
    return pd.DataFrame(list(rows.values())).reindex(columns=columns)


def _text(row: dict, experiment: str, column: str) -> str:
    v = row.get(f"{experiment} {column}")
    return v if isinstance(v, str) else "–"   # NaN: the experiment has no such arm


def comparison_headers(reports: list[Report]) -> list[str]:
    header = ["Tricks"]
    for rep in reports:
        u = render.unit(rep.lift.metric)
        header += [f"{rep.name} val (%)", f"{rep.name} test (%)", f"{rep.name} lift ({u or rep.lift.metric})"]
    return header


def comparison_cells(reports: list[Report], frame: pd.DataFrame) -> list[list[str]]:
    return [[r["row"]] + [_text(r, rep.name, c) for rep in reports for c in TEXT_COLUMNS]
            for r in frame.to_dict("records")]


def _flat(prefix: str, value, out: dict) -> dict:
    if isinstance(value, dict):
        for k, v in value.items():
            _flat(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = value
    return out


def settings_differences(reports: list[Report]) -> list[tuple[str, list]]:
    """The settings (model, data, recipe, seeds, metric, design, and each trick's parameters by
    its code) whose values are not the same in every experiment: [(dotted name, values per
    experiment, None where absent)], in first-seen order."""
    flats = []
    for rep in reports:
        d = render.settings_dict(rep.plan.spec)
        tricks = {t["code"]: {"use": t["use"], **t["params"]} for t in d.pop("tricks").values()}
        flats.append(_flat("", {**d, "tricks": tricks}, {}))
    keys = list(dict.fromkeys(k for f in flats for k in f))
    return [(k, [f.get(k) for f in flats]) for k in keys if len({json.dumps(f.get(k)) for f in flats}) > 1]


def _differences_line(reports: list[Report]) -> str:
    diffs = settings_differences(reports)
    if not diffs:
        return "Settings: identical in every experiment apart from the name."
    names = [r.name for r in reports]
    parts = [f"{k} (" + ", ".join(f"{n}: {'–' if v is None else v}" for n, v in zip(names, vals)) + ")"
             for k, vals in diffs]
    return "Settings that differ: " + "; ".join(parts) + "."


def experiment_lines(reports: list[Report]) -> list[str]:
    """One line per experiment naming its model, data, design and codes; then how to read the table."""
    from ablate.report.render import subject

    lines = []
    for rep in reports:
        spec = rep.plan.spec
        codes = ", ".join(f"{t.code} = {k}" for k, t in spec.tricks.items())
        n = len(rep.plan.seeds)
        lines.append(f"{rep.name}: {subject(spec)}, "
                     f"{spec.design.kind.replace('_', ' ')} design, lift in {rep.lift.metric}, "
                     f"{n} seed{'s' if n != 1 else ''}" + (f"; {codes}" if codes else "") + ".")
    lines.append(_differences_line(reports))
    levels = sorted({int(round(r.lift.confidence * 100)) for r in reports})
    lines.append("Values are mean ± std (n seeds); lift is the paired mean difference vs each experiment's "
                 f"reference arm with its {'/'.join(map(str, levels))}% CI (not adjusted for multiplicity); "
                 "* = Holm-adjusted p < α = 1 − confidence; "
                 "– = the experiment has no such arm.")
    return lines


def compare_markdown(reports: list[Report]) -> str:
    frame = compare_frame(reports)
    header = comparison_headers(reports)
    lines = ["## " + " vs ".join(rep.name for rep in reports), "",
             render.markdown_table(header, comparison_cells(reports, frame), align=[":--"] + ["--:"] * (len(header) - 1)), ""]
    lines += [f"- {line}" for line in experiment_lines(reports)]
    return "\n".join(lines) + "\n"


def compare_json(reports: list[Report]) -> str:
    frame = compare_frame(reports)
    rows = []
    for r in frame.to_dict("records"):
        row = {"row": r["row"], "experiments": {}}
        for rep in reports:
            vals = {c: r[f"{rep.name} {c}"] for c in NUMBER_COLUMNS}
            if isinstance(vals["n"], float) and math.isnan(vals["n"]):
                continue
            row["experiments"][rep.name] = {c: (None if isinstance(v, float) and math.isnan(v) else
                                                v.item() if isinstance(v, np.generic) else v)
                                            for c, v in vals.items()}
        rows.append(row)
    doc = {"experiments": [{"name": rep.name, "design": rep.lift.design, "metric": rep.lift.metric,
                            "confidence": rep.lift.confidence, "seeds": rep.lift.seeds} for rep in reports],
           "notes": experiment_lines(reports), "rows": rows}
    return json.dumps(doc, indent=2)


def compare_latex(reports: list[Report]) -> str:
    from ablate.report.render import tex

    frame = compare_frame(reports)
    header = comparison_headers(reports)
    lines = [r"\begin{table}[t]", r"\centering", rf"\begin{{tabular}}{{l{'r' * (len(header) - 1)}}}", r"\toprule",
             " & ".join(tex(h) for h in header) + r" \\", r"\midrule"]
    lines += [" & ".join(tex(c) for c in r) + r" \\" for r in comparison_cells(reports, frame)]
    lines += [r"\bottomrule", r"\end{tabular}",
              rf"\caption{{{tex(' vs '.join(r.name for r in reports))}. {tex(experiment_lines(reports)[-1])}}}",
              r"\end{table}"]
    return "\n".join(lines) + "\n"


def lift_groups(reports: list[Report]) -> list[dict]:
    """Per experiment: its non-reference arms' rows (in table order) with lift and CI, for the
    grouped chart."""
    _check(reports)
    order, assignment = row_assignment(reports)
    out = []
    for rep, where in zip(reports, assignment):
        f = rep.lift.frame.set_index("arm")
        arms = sorted(rep.plan.arms[1:], key=lambda a: order.index(where[a.index]))
        out.append({"experiment": rep.name, "row": [where[a.index] for a in arms],
                    "lift": [float(f.loc[a.index, "lift"]) for a in arms],
                    "low": [float(f.loc[a.index, "lift_low"]) for a in arms],
                    "high": [float(f.loc[a.index, "lift_high"]) for a in arms]})
    return out


def compare_html(reports: list[Report]) -> str:
    """The table, the experiments' lines and a grouped lift chart, as one self-contained page."""
    import plotly.graph_objects as go

    from ablate.report.html import (
        PALETTE,
        TEMPLATE,
        bottom_legend,
        figure_html,
        page_html,
        table_html,
    )

    frame = compare_frame(reports)
    groups = lift_groups(reports)
    fig = go.Figure()
    for i, g in enumerate(groups):
        mid, low, high = (np.asarray(g[k], dtype=float) for k in ("lift", "low", "high"))
        fig.add_trace(go.Scatter(
            x=mid, y=[html.escape(r, quote=False) for r in g["row"]], mode="markers", orientation="h",
            name=html.escape(g["experiment"], quote=False), marker={"size": 10, "color": PALETTE[i % len(PALETTE)]},
            error_x={"type": "data", "symmetric": False, "array": (high - mid).tolist(),
                     "arrayminus": (mid - low).tolist(), "thickness": 2, "width": 5},
            hovertemplate=f"{html.escape(g['experiment'], quote=False)}<br>%{{y}}: %{{x:+.2f}}<extra></extra>"))
    fig.add_vline(x=0, line={"color": "#333", "width": 1})
    rows = [r for r in frame["row"] if any(r in g["row"] for g in groups)]
    metrics = {rep.lift.metric for rep in reports}
    unit = render.unit(next(iter(metrics))) if len(metrics) == 1 else ""
    height = 210 + len(rows) * (18 + 16 * len(reports))
    fig.update_layout(template=TEMPLATE, scattermode="group", scattergap=0.3, height=height,
                      title="Lift vs each experiment's reference arm, with CI",
                      xaxis={"title": f"lift in {html.escape(next(iter(metrics)))} ({unit})" if unit else "lift",
                             "zeroline": False},
                      yaxis={"autorange": "reversed", "categoryorder": "array",
                             "categoryarray": [html.escape(r, quote=False) for r in rows]},
                      **bottom_legend(height, 60))
    names = " vs ".join(r.name for r in reports)
    body = [f"<h1>{html.escape(names)}</h1>",
            table_html(comparison_headers(reports), comparison_cells(reports, frame)),
            "<ul class='notes'>" + "".join(f"<li>{html.escape(n)}</li>" for n in experiment_lines(reports)) + "</ul>",
            figure_html(fig),
            f"<p class='muted'>Regenerate this page: <code>ablate report "
            f"{html.escape(' '.join(r.name for r in reports))} --compare --format html --out DIR</code></p>"]
    return page_html(f"ablate: {names}", body)


def write_compare(reports: list[Report], out_dir: str | Path, formats: tuple[str, ...]) -> list[Path]:
    """Write compare.md / .csv / .json / .html / .tex for the requested formats; returns the paths."""
    return Comparison(reports).write(out_dir, formats)


class Comparison:
    """Experiments side by side, on the report protocol (`name`, `markdown()`, `write()`)."""

    def __init__(self, reports: list[Report]) -> None:
        self.reports = reports

    @property
    def name(self) -> str:
        return "_vs_".join(r.name for r in self.reports)

    def markdown(self) -> str:
        return compare_markdown(self.reports)

    FILES = {"md": ("compare.md",), "csv": ("compare.csv",), "json": ("compare.json",), "html": ("compare.html",),
             "latex": ("compare.tex",)}

    def format_error(self, bad: list[str]) -> str:
        return f"unknown format(s) {', '.join(bad)} for --compare; allowed: {', '.join(COMPARE_FORMATS)}"

    def files(self, fmt: str) -> list:
        """The report protocol (`ablate.report.protocol`): the files of one format."""
        make = {"md": compare_markdown, "csv": lambda r: compare_frame(r).to_csv(index=False, float_format="%.6g"),
                "json": compare_json, "html": compare_html, "latex": compare_latex}[fmt]
        return [(self.FILES[fmt][0], lambda: make(self.reports))]

    def write(self, out_dir: str | Path, formats: tuple[str, ...] = ("md", "csv")) -> list[Path]:
        """Write the files of `formats` into `out_dir` (`ablate.report.protocol.write_files`)."""
        bad = [f for f in formats if f not in self.FILES]
        if bad:
            raise ReportError(self.format_error(bad))
        _check(self.reports)
        return write_files(self, out_dir, formats)
