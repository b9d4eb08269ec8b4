"""The HTML report: one self-contained file (plotly's JavaScript embedded, no network fetch).

Plain data first (`lift_points`, `seed_differences`, `curve_bands`, `interaction_matrix`),
figures second; plotly is imported only when a page is built.
"""

from __future__ import annotations

import html
import math

import numpy as np
import pandas as pd

from ablate.report import render

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf"]


# -- data ---------------------------------------------------------------------------------------

def lift_points(report) -> pd.DataFrame:
    """One row per non-reference arm: label, lift and its CI (and the step lift if cumulative)."""
    f = report.lift.frame
    cols = ["arm", "label", "lift", "lift_low", "lift_high", "p_holm", "significant", "n_pairs"]
    cols += [c for c in ("step_lift", "step_low", "step_high") if c in f]
    return f.loc[f["arm"] > 0, cols].reset_index(drop=True)


def seed_differences(report) -> pd.DataFrame:
    """Per arm and seed: metric(arm, seed) - metric(reference, seed), where both are complete."""
    from ablate.report.frames import metric_matrix

    values, seeds = metric_matrix(report.plan, report.outcomes, report.lift.metric)
    rows = []
    for a in report.plan.arms[1:]:
        for j, s in enumerate(seeds):
            d = values[a.index, j] - values[0, j]
            if not math.isnan(d):
                rows.append({"arm": a.index, "label": a.label, "seed": s, "difference": d})
    return pd.DataFrame(rows, columns=["arm", "label", "seed", "difference"])


def curve_bands(report, metric: str) -> list[dict]:
    """Per arm: epochs, mean, and the mean ± std band of `metric` over complete seeds."""
    c = report.curves
    out = []
    if c.empty or f"{metric}_mean" not in c:
        return out
    for arm, g in c.groupby("arm", sort=True):
        g = g.sort_values("epoch")
        mean = g[f"{metric}_mean"].to_numpy(dtype=float)
        std = np.nan_to_num(g[f"{metric}_std"].to_numpy(dtype=float))
        out.append({"arm": int(arm), "label": g["label"].iloc[0], "epoch": g["epoch"].tolist(),
                    "mean": mean.tolist(), "low": (mean - std).tolist(), "high": (mean + std).tolist()})
    return out


def interaction_matrix(report) -> tuple[list[str], np.ndarray, list[list[str]]]:
    """Tricks x tricks: main effects on the diagonal, two-trick interactions off it (NaN where
    not estimated), and hover text naming aliases."""
    keys = list(report.plan.spec.tricks)
    k = len(keys)
    m = np.full((k, k), np.nan)
    hover = [["not estimated" for _ in range(k)] for _ in range(k)]
    eff = report.effects
    if eff is None or eff.empty:
        return keys, m, hover
    index = {name: i for i, name in enumerate(keys)}
    for r in eff.itertuples():
        parts = r.term.split(" x ")
        ids = [index[p] for p in parts]
        text = f"{r.term}: {r.estimate:+.2f} [{r.ci_low:+.2f}, {r.ci_high:+.2f}]"
        if r.aliases:
            text += f"<br>aliased with {html.escape(r.aliases)}"
        if len(ids) == 1:
            m[ids[0], ids[0]] = r.estimate
            hover[ids[0]][ids[0]] = text
        elif len(ids) == 2:
            i, j = ids
            m[i, j] = m[j, i] = r.estimate
            hover[i][j] = hover[j][i] = text
    return keys, m, hover


# -- figures ------------------------------------------------------------------------------------

def _lift_figure(report):
    import plotly.graph_objects as go

    pts = lift_points(report)
    diffs = seed_differences(report)
    unit = render.unit(report.lift.metric) or report.lift.metric
    fig = go.Figure()
    labels = pts["label"].tolist()
    fig.add_trace(go.Scatter(
        x=pts["lift"], y=labels, mode="markers", name="lift vs reference",
        marker={"size": 11, "color": PALETTE[0], "symbol": "diamond"},
        error_x={"type": "data", "symmetric": False, "array": (pts["lift_high"] - pts["lift"]).tolist(),
                 "arrayminus": (pts["lift"] - pts["lift_low"]).tolist(), "thickness": 2},
        hovertemplate="%{y}<br>lift %{x:+.2f} " + unit + "<extra></extra>"))
    if "step_lift" in pts:
        fig.add_trace(go.Scatter(
            x=pts["step_lift"], y=labels, mode="markers", name="step vs previous row",
            marker={"size": 9, "color": PALETTE[1], "symbol": "circle-open"},
            error_x={"type": "data", "symmetric": False, "array": (pts["step_high"] - pts["step_lift"]).tolist(),
                     "arrayminus": (pts["step_lift"] - pts["step_low"]).tolist(), "thickness": 1},
            hovertemplate="%{y}<br>step %{x:+.2f} " + unit + "<extra></extra>"))
    if not diffs.empty:
        fig.add_trace(go.Scatter(
            x=diffs["difference"], y=diffs["label"], mode="markers", name="per-seed difference",
            marker={"size": 6, "color": "rgba(80,80,80,0.55)"}, text=[f"seed {s}" for s in diffs["seed"]],
            hovertemplate="%{y}, %{text}<br>%{x:+.2f}<extra></extra>"))
    fig.add_vline(x=0, line={"color": "#444", "width": 1})
    fig.update_layout(title=f"Lift in {report.lift.metric} ({unit}) with {int(report.lift.confidence * 100)}% CI",
                      yaxis={"autorange": "reversed", "categoryorder": "array", "categoryarray": labels},
                      height=140 + 42 * len(labels), margin={"l": 10, "r": 10, "t": 50, "b": 40},
                      legend={"orientation": "h", "y": -0.15})
    return fig


def _curves_figure(report):
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("validation accuracy (%)", "training loss"))
    for col, metric in ((1, "val_acc"), (2, "train_loss")):
        for band in curve_bands(report, metric):
            color = PALETTE[band["arm"] % len(PALETTE)]
            rgb = tuple(int(color[i:i + 2], 16) for i in (1, 3, 5))
            fig.add_trace(go.Scatter(x=band["epoch"] + band["epoch"][::-1], y=band["high"] + band["low"][::-1],
                                     fill="toself", fillcolor=f"rgba({rgb[0]},{rgb[1]},{rgb[2]},0.15)",
                                     line={"width": 0}, hoverinfo="skip", showlegend=False,
                                     legendgroup=band["label"]), row=1, col=col)
            fig.add_trace(go.Scatter(x=band["epoch"], y=band["mean"], mode="lines", name=band["label"],
                                     line={"color": color, "width": 2}, legendgroup=band["label"],
                                     showlegend=col == 1), row=1, col=col)
    fig.update_xaxes(title_text="epoch")
    fig.update_layout(title="Learning curves: mean over seeds, band = ± 1 std", height=430,
                      margin={"l": 10, "r": 10, "t": 70, "b": 40})
    return fig


def _effects_figures(report):
    import plotly.graph_objects as go

    eff = report.effects.iloc[::-1]
    bars = go.Figure(go.Scatter(
        x=eff["estimate"], y=eff["term"], mode="markers", marker={"size": 10, "color": PALETTE[2]},
        error_x={"type": "data", "symmetric": False, "array": (eff["ci_high"] - eff["estimate"]).tolist(),
                 "arrayminus": (eff["estimate"] - eff["ci_low"]).tolist()},
        text=[f"aliased with {html.escape(a)}" if a else "" for a in eff["aliases"]],
        hovertemplate="%{y}: %{x:+.2f}<br>%{text}<extra></extra>"))
    bars.add_vline(x=0, line={"color": "#444", "width": 1})
    bars.update_layout(title="Effects (on minus off), sorted by size, with CI", height=140 + 30 * len(eff),
                       margin={"l": 10, "r": 10, "t": 50, "b": 40})
    keys, m, hover = interaction_matrix(report)
    z = np.where(np.isnan(m), None, m).tolist()
    heat = go.Figure(go.Heatmap(z=z, x=keys, y=keys, text=hover, hovertemplate="%{text}<extra></extra>",
                                colorscale="RdBu", zmid=0, colorbar={"title": "effect"}))
    heat.update_layout(title="Main effects (diagonal) and two-trick interactions", height=160 + 40 * len(keys),
                       yaxis={"autorange": "reversed"}, margin={"l": 10, "r": 10, "t": 50, "b": 40})
    return [bars, heat]


# -- page ----------------------------------------------------------------------------------------

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px auto;max-width:1180px;
color:#222;padding:0 16px}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.88em;margin:.6em 0}th,td{padding:4px 9px;border-bottom:1px solid #e4e4e4}
th{background:#f4f4f4;text-align:left}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.sig td{background:#eef7ee}tr.bad td{background:#fdecea}.muted{color:#666;font-size:.9em}
ul.notes{font-size:.9em;color:#333}code{background:#f4f4f4;padding:1px 4px;border-radius:3px}
"""


def _table(header: list[str], rows: list[list[str]], row_classes: list[str] | None = None) -> str:
    out = ["<table><thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr></thead><tbody>"]
    for i, r in enumerate(rows):
        cls = f' class="{row_classes[i]}"' if row_classes and row_classes[i] else ""
        cells = "".join(f'<td class="num">{html.escape(c)}</td>' if j else f"<td>{html.escape(c)}</td>"
                        for j, c in enumerate(r))
        out.append(f"<tr{cls}>{cells}</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _trial_rows(trials: pd.DataFrame) -> tuple[list[str], list[list[str]], list[str]]:
    header = ["arm", "label", "seed", "status", "val acc", "test acc", "time (s)", "attempts", "why", "error"]
    rows, classes = [], []

    def num(v, d=2):
        return "–" if v is None or pd.isna(v) else f"{v:.{d}f}"

    for r in trials.itertuples():
        rows.append([str(r.arm), str(r.label), str(r.seed), str(r.status), num(r.val_acc), num(r.test_acc),
                     num(r.wall_s, 1), str(r.attempts), str(r.reason), str(r.error or "")])
        classes.append("bad" if r.status in ("failed", "diverged", "pruned") else "")
    return header, rows, classes


def report_html(report) -> str:
    import plotly.io as pio
    from plotly.offline import get_plotlyjs

    spec = report.plan.spec
    lift = report.lift
    header, rows = render.lift_rows(lift, extra_columns=report.columns)
    sig = ["sig" if s else "" for s in lift.frame["significant"].fillna(False)]
    figs = [("Lift", _lift_figure(report))]
    if not report.curves.empty:
        figs.append(("Learning curves", _curves_figure(report)))
    if report.effects is not None and not report.effects.empty:
        bars, heat = _effects_figures(report)
        figs += [("Effects", bars), ("Interactions", heat)]
    config = {"displaylogo": False, "responsive": True}
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>ablate: {html.escape(spec.name)}</title><style>{CSS}</style>",
        f"<script type='text/javascript'>{get_plotlyjs()}</script></head><body>",
        f"<h1>{html.escape(spec.name)}</h1>",
        f"<p class='muted'>{html.escape(spec.design.kind.replace('_', ' '))} design · metric "
        f"{html.escape(lift.metric)} · {len(lift.seeds)} seed(s) per arm · {len(report.plan.arms)} arms</p>",
    ]
    if spec.description:
        parts.append(f"<p>{html.escape(spec.description)}</p>")
    parts.append("<h2>Lift table</h2>" + _table(header, rows, sig))
    parts.append("<ul class='notes'>" + "".join(f"<li>{html.escape(n)}</li>"
                                                for n in render.footnotes(lift, spec)) + "</ul>")
    if report.effects is not None and not report.effects.empty:
        e = report.effects
        eh = ["term", "effect [CI]", "p (Holm)", "aliased with"]
        er = [[t, render.ci_text(v, lo, hi), render.p_text(p), a or ""]
              for t, v, lo, hi, p, a in zip(e["term"], e["estimate"], e["ci_low"], e["ci_high"], e["p_holm"], e["aliases"])]
        parts.append("<h2>Effects</h2>" + _table(eh, er, ["sig" if s else "" for s in e["significant"]]))
    for title, fig in figs:
        parts.append(f"<h2>{html.escape(title)}</h2>")
        parts.append(pio.to_html(fig, include_plotlyjs=False, full_html=False, include_mathjax=False,
                                 config=config))
    th, tr, tc = _trial_rows(report.trials)
    parts.append("<h2>Trials</h2>" + _table(th, tr, tc))
    parts.append(f"<p class='muted'>Regenerate: <code>ablate report {html.escape(spec.name)} --format html</code>"
                 f" (store holding the experiment: <code>--store</code>).</p></body></html>")
    return "\n".join(parts)
