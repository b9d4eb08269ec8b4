"""Experiments side by side (`ablate report A B --compare`): the same tricks on two models or
data sets, validation and test columns per experiment, like the custom-data reference table.

Arms are matched by their trick codes (the label without the model prefix), so "ResNet20 + C + S"
and "ResNet50 + C + S" share the row "C + S"; every reference arm is the row "baseline".
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ablate.errors import ReportError
from ablate.models import model_info
from ablate.report import render


def row_key(report, arm) -> str:
    """The label of an arm without its model prefix ('baseline' for no tricks)."""
    codes = [report.plan.spec.tricks[k].code for k in arm.tricks]
    return " + ".join(codes) if codes else "baseline"


def compare_frame(reports: list) -> pd.DataFrame:
    if len(reports) < 2:
        raise ReportError("--compare needs at least two experiments")
    rows: dict[str, dict] = {}
    for rep in reports:
        f = rep.lift.frame.set_index("arm")
        for a in rep.plan.arms:
            key = row_key(rep, a)
            r = f.loc[a.index]
            cell = rows.setdefault(key, {"row": key})
            name = rep.name
            cell[f"{name} val"] = render.mean_std(r["val_mean"], r["val_std"], r["n"])
            cell[f"{name} test"] = render.mean_std(r["test_mean"], r["test_std"], r["n"])
            cell[f"{name} lift"] = ("reference" if a.index == 0
                                    else render.ci_text(r["lift"], r["lift_low"], r["lift_high"])
                                    + (" *" if r["significant"] else ""))
            for col, v in (("val_mean", r["val_mean"]), ("test_mean", r["test_mean"]), ("lift_value", r["lift"])):
                cell[f"{name} {col}"] = v
    frame = pd.DataFrame(list(rows.values()))
    return frame


def _text(row: dict, experiment: str, column: str) -> str:
    v = row.get(f"{experiment} {column}")
    return v if isinstance(v, str) else "–"   # NaN: the experiment has no such arm


def compare_markdown(reports: list) -> str:
    frame = compare_frame(reports)
    header = ["Tricks"]
    for rep in reports:
        header += [f"{rep.name} val (%)", f"{rep.name} test (%)", f"{rep.name} lift (pp)"]
    cells = [[r["row"]] + [_text(r, rep.name, c) for rep in reports for c in ("val", "test", "lift")]
             for r in frame.to_dict("records")]
    lines = ["## " + " vs ".join(rep.name for rep in reports), "",
             render.markdown_table(header, cells, align=[":--"] + ["--:"] * (len(header) - 1)), ""]
    for rep in reports:
        spec = rep.plan.spec
        codes = ", ".join(f"{t.code} = {k}" for k, t in spec.tricks.items())
        lines.append(f"- {rep.name}: {model_info(spec.model).label} on {spec.data.name}, "
                     f"{spec.design.kind.replace('_', ' ')} design, {len(rep.lift.seeds)} seeds; {codes}.")
    lines.append("- Values are mean ± std (n seeds); lift is the paired mean difference vs each experiment's "
                 "reference arm with its 95% CI; * = Holm-adjusted p < 0.05.")
    return "\n".join(lines) + "\n"


def compare_html(reports: list) -> str:
    import html

    import plotly.graph_objects as go
    import plotly.io as pio
    from plotly.offline import get_plotlyjs

    from ablate.report.html import CSS, PALETTE

    frame = compare_frame(reports)
    fig = go.Figure()
    for i, rep in enumerate(reports):
        f = rep.lift.frame
        keys = [row_key(rep, a) for a in rep.plan.arms][1:]
        fig.add_trace(go.Scatter(
            x=f["lift"].iloc[1:], y=keys, mode="markers", name=rep.name,
            marker={"size": 10, "color": PALETTE[i % len(PALETTE)]},
            error_x={"type": "data", "symmetric": False, "array": (f["lift_high"] - f["lift"]).iloc[1:].tolist(),
                     "arrayminus": (f["lift"] - f["lift_low"]).iloc[1:].tolist()}))
    fig.add_vline(x=0, line={"color": "#444", "width": 1})
    fig.update_layout(title="Lift vs each experiment's reference, 95% CI", yaxis={"autorange": "reversed"},
                      height=160 + 40 * len(frame), scattermode="group")
    md_rows = compare_markdown(reports)
    table = ["<table><thead><tr><th>Tricks</th>"]
    for rep in reports:
        table += [f"<th>{html.escape(rep.name)} {c}</th>" for c in ("val (%)", "test (%)", "lift (pp)")]
    table.append("</tr></thead><tbody>")
    for r in frame.to_dict("records"):
        cells = [f"<td>{html.escape(r['row'])}</td>"]
        for rep in reports:
            cells += [f"<td class='num'>{html.escape(_text(r, rep.name, c))}</td>" for c in ("val", "test", "lift")]
        table.append("<tr>" + "".join(cells) + "</tr>")
    table.append("</tbody></table>")
    notes = [line[2:] for line in md_rows.splitlines() if line.startswith("- ")]
    return "\n".join([
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>ablate: {html.escape(' vs '.join(r.name for r in reports))}</title><style>{CSS}</style>",
        f"<script type='text/javascript'>{get_plotlyjs()}</script></head><body>",
        f"<h1>{html.escape(' vs '.join(r.name for r in reports))}</h1>", "".join(table),
        "<ul class='notes'>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>",
        pio.to_html(fig, include_plotlyjs=False, full_html=False, include_mathjax=False,
                    config={"displaylogo": False}),
        "</body></html>"])


def write_compare(reports: list, out_dir: str | Path, formats: tuple[str, ...]) -> list[Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        if fmt == "md":
            path = out / "compare.md"
            path.write_text(compare_markdown(reports), encoding="utf-8")
        elif fmt == "csv":
            path = out / "compare.csv"
            path.write_text(compare_frame(reports).to_csv(index=False, float_format="%.6g"), encoding="utf-8")
        elif fmt == "html":
            path = out / "compare.html"
            path.write_text(compare_html(reports), encoding="utf-8")
        else:
            raise ReportError(f"--compare writes md, csv or html; got '{fmt}'")
        paths.append(path)
    return paths
