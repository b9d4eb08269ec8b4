"""The HTML report: one self-contained file (plotly's JavaScript embedded once, no network fetch).

Plain data first (`lift_points`, `seed_differences`, `curve_bands`, `effect_points`,
`interaction_matrix`, `trial_rows`), figures second; plotly is imported only when a page is built.
User text (names, labels, trick keys, errors) is escaped: `html.escape` in the page, and in the
figures too, since plotly renders a few HTML tags and decodes entities in its text.
"""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ablate.report import frames, render
from ablate.report.frames import FAILED, metric_matrix

if TYPE_CHECKING:
    from ablate.report.build import Report

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf"]
PLOT_CONFIG = {"displaylogo": False, "responsive": True}
TEMPLATE = "plotly_white"


# -- data ---------------------------------------------------------------------------------------

def lift_points(report: Report) -> pd.DataFrame:
    """One row per non-reference arm, design order: label, lift and its CI (and the step lift if
    cumulative), Holm p and significance: the values of the lift table."""
    f = report.lift.frame
    cols = ["arm", "label", "lift", "lift_low", "lift_high", "p_holm", "significant", "n_pairs"]
    cols += [c for c in ("step_lift", "step_low", "step_high", "step_p_holm") if c in f]
    return f.loc[f["arm"] > 0, cols].reset_index(drop=True)


def seed_differences(report: Report) -> pd.DataFrame:
    """Per arm and seed: metric(arm, seed) - metric(reference, seed) as the lift table pairs them
    (complete seeds, and diverged ones at their score unless the report excludes them)."""
    values, seeds = metric_matrix(report.plan, report.outcomes, report.lift.metric)
    if report.lift.values is not None:
        values = report.lift.values
    labels = dict(zip(report.lift.frame["arm"], report.lift.frame["label"]))
    rows = [{"arm": a.index, "label": labels.get(a.index, a.label), "seed": s, "difference": d}
            for a in report.plan.arms[1:] for j, s in enumerate(seeds)
            if not math.isnan(d := values[a.index, j] - values[0, j])]
    return pd.DataFrame(rows, columns=["arm", "label", "seed", "difference"])


def curve_bands(report: Report, metric: str) -> list[dict]:
    """Per arm (design order): epochs, mean, and the mean ± std band of `metric` over complete
    seeds (a single seed has no spread: its band is the line)."""
    c = report.curves
    if c.empty or f"{metric}_mean" not in c:
        return []
    out = []
    for arm, g in c.groupby("arm", sort=True):
        g = g.sort_values("epoch")
        mean = g[f"{metric}_mean"].to_numpy(dtype=float)
        std = np.nan_to_num(g[f"{metric}_std"].to_numpy(dtype=float))
        out.append({"arm": int(arm), "label": g["label"].iloc[0], "epoch": [int(e) for e in g["epoch"]],
                    "mean": mean.tolist(), "low": (mean - std).tolist(), "high": (mean + std).tolist()})
    return out


def effect_points(report: Report) -> pd.DataFrame:
    """The effects of a factorial design sorted by |estimate|, largest first (empty otherwise)."""
    eff = report.effects
    if eff is None or eff.empty:
        return pd.DataFrame(columns=["term", "estimate", "ci_low", "ci_high", "p_holm", "significant", "aliases"])
    order = eff["estimate"].abs().sort_values(ascending=False, kind="stable").index
    return eff.loc[order].reset_index(drop=True)


def interaction_matrix(report: Report) -> tuple[list[str], np.ndarray, list[list[str]]]:
    """Tricks x tricks: main effects on the diagonal, two-trick interactions off it, NaN where not
    estimated; and hover text per cell. A pair the design cannot separate from an estimated term
    (aliased) shows that term's estimate, which is of their sum, and says so."""
    keys, m, hover, _ = _interaction_cells(report)
    return keys, m, hover


def _interaction_cells(report: Report):
    keys = list(report.plan.spec.tricks)
    k = len(keys)
    m = np.full((k, k), np.nan)
    by_alias = np.zeros((k, k), dtype=bool)     # filled from an aliased term
    hover = [["not estimated" for _ in range(k)] for _ in range(k)]
    eff = report.effects
    if eff is None or eff.empty:
        return keys, m, hover, by_alias
    # look names up whole instead of splitting them: a trick key may itself contain " x "
    cells = {key: (i, i) for i, key in enumerate(keys)}
    cells.update({f"{keys[i]} x {keys[j]}": (i, j) for i in range(k) for j in range(i + 1, k)})
    own: set[tuple[int, int]] = set()
    aliased: list[tuple[tuple[int, int], str, float, str]] = []
    for r in eff.itertuples():
        text = f"{html.escape(r.term)}: {r.estimate:+.2f} [{r.ci_low:+.2f}, {r.ci_high:+.2f}]"
        if r.aliases:
            text += f"<br>aliased with {html.escape(r.aliases)} (the estimate is of their sum)"
        cell = cells.get(r.term)
        if cell is not None:
            i, j = cell
            m[i, j] = m[j, i] = r.estimate
            hover[i][j] = hover[j][i] = text
            own.add(cell)
        for alias in (r.aliases or "").split("; "):
            if alias in cells:
                aliased.append((cells[alias], alias, r.estimate, r.term))
    for (i, j), alias, estimate, term in aliased:
        if (i, j) not in own:
            m[i, j] = m[j, i] = estimate
            by_alias[i, j] = by_alias[j, i] = True
            hover[i][j] = hover[j][i] = (f"{html.escape(alias)}: not separable from {html.escape(term)} "
                                         f"(aliased); their sum is {estimate:+.2f}")
    return keys, m, hover, by_alias


TRIAL_HEADER = ["Arm", "Label", "Seed", "Status", "Val acc (%)", "Test acc (%)", "Time (s)", "Attempts",
                "Why", "Error"]


def trial_rows(trials: pd.DataFrame) -> tuple[list[str], list[list[str]], list[str]]:
    """Header, cells and a row class per trial: 'bad' for failed, diverged or pruned trials,
    'waiting' for ones not finished."""
    def num(v, d=2):
        return "–" if v is None or pd.isna(v) else f"{v:.{d}f}"

    def text(v):
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return ""
        return str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)

    rows, classes = [], []
    for r in trials.to_dict("records"):
        rows.append([text(r.get("arm")), text(r.get("label")), text(r.get("seed")), text(r.get("status")),
                     num(r.get("val_acc")), num(r.get("test_acc")), num(r.get("wall_s"), 1),
                     text(r.get("attempts")), text(r.get("reason")), text(r.get("error"))])
        status = r.get("status")
        classes.append("bad" if status in FAILED else "" if status == "complete" else "waiting")
    return TRIAL_HEADER, rows, classes


FAILED_HEADER = ["Attempt", "Status", "Kind", "Host", "Started", "Took (s)", "Why"]


def failed_attempt_rows(report: Report) -> list[tuple[str, list[list[str]], list[str]]]:
    """Per failed trial (design order): its title, one row per attempt (as `ablate logs` shows
    them), and each attempt's whole error text (a command's stdout and stderr tails included)."""
    from ablate.runner.logs import error_summary

    out: list[tuple[str, list[list[str]], list[str]]] = []
    title, rows, errors = None, [], []
    for a in report.failed_attempts:
        head = f"{a.label}, seed {a.seed} (trial {a.trial_id})"
        if head != title:
            if title is not None:
                out.append((title, rows, errors))
            title, rows, errors = head, [], []
        when = pd.Timestamp(a.started, unit="s").strftime("%Y-%m-%d %H:%M:%S UTC") if a.started else ""
        rows.append([str(a.attempt), a.status, a.kind or "", a.host or "",
                     when, f"{a.took:.1f}" if a.took is not None else "", error_summary(a.error, a.kind)])
        errors.append(a.error or "")
    if title is not None:
        out.append((title, rows, errors))
    return out


def failed_trials_html(report: Report) -> list[str]:
    """The report's section on failed trials: each attempt, its whole error in a fold."""
    trials = failed_attempt_rows(report)
    if not trials:
        return []
    name = report.plan.spec.name
    body = ["<h2>Failed trials</h2>",
            f"<p class='muted'>Every attempt of each trial that ended failed (not averaged into the accuracies). "
            f"<code>ablate logs {html.escape(name)}</code> prints the same; after fixing the cause, "
            f"<code>ablate run SPEC --retry-failed</code> runs them again, keeping these attempts.</p>"]
    for title, rows, errors in trials:
        body.append(f"<h3>{html.escape(title)}</h3>" + table_html(FAILED_HEADER, rows, text_columns=(1, 2, 3, 4, 6),
                                                                  cell_classes={6: "err"}))
        body += [f"<details><summary>attempt {html.escape(r[0])}: full error</summary><pre>{html.escape(e)}</pre>"
                 f"</details>" for r, e in zip(rows, errors) if e.strip()]
    return body


# -- figures ------------------------------------------------------------------------------------

def _esc(s) -> str:
    return html.escape(str(s), quote=False)


def _rgba(color: str, alpha: float) -> str:
    r, g, b = (int(color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def bottom_legend(height: int, top: int, bottom: int = 95) -> dict:
    """Layout entries for a horizontal legend under the x-axis title, whatever the figure height."""
    return {"margin": {"l": 10, "r": 20, "t": top, "b": bottom},
            "legend": {"orientation": "h", "x": 0, "y": -62 / max(height - top - bottom, 1), "yanchor": "top"}}


def _error_x(mid, low, high, thickness=2) -> dict:
    mid, low, high = (np.asarray(v, dtype=float) for v in (mid, low, high))
    return {"type": "data", "symmetric": False, "array": (high - mid).tolist(),
            "arrayminus": (mid - low).tolist(), "thickness": thickness, "width": 5}


def lift_figure(report: Report):
    """Lift (and step) per arm with its CI, and the per-seed paired differences as dots."""
    import plotly.graph_objects as go

    pts = lift_points(report)
    diffs = seed_differences(report)
    metric = report.lift.metric
    u = render.unit(metric)
    labels = [_esc(x) for x in pts["label"]]
    sig = pts["significant"].fillna(False).astype(bool)
    hover = [f"p (Holm) {render.p_text(p)}" for p in pts["p_holm"]]
    fig = go.Figure()
    fig.add_trace(go.Scatter(
        x=pts["lift"], y=labels, mode="markers", orientation="h", name="lift vs reference, CI",
        marker={"size": 12, "color": PALETTE[0], "symbol": ["diamond" if s else "diamond-open" for s in sig],
                "line": {"width": 2, "color": PALETTE[0]}},
        error_x=_error_x(pts["lift"], pts["lift_low"], pts["lift_high"]), text=hover,
        hovertemplate=f"%{{y}}<br>lift %{{x:+.2f}} {u}<br>%{{text}}<extra></extra>"))
    if "step_lift" in pts:
        fig.add_trace(go.Scatter(
            x=pts["step_lift"], y=labels, mode="markers", orientation="h", name="step vs previous row, CI",
            marker={"size": 9, "color": PALETTE[1], "symbol": "circle"},
            error_x=_error_x(pts["step_lift"], pts["step_low"], pts["step_high"], 1.5),
            hovertemplate=f"%{{y}}<br>step %{{x:+.2f}} {u}<extra></extra>"))
    if not diffs.empty:
        fig.add_trace(go.Scatter(
            x=diffs["difference"], y=[_esc(x) for x in diffs["label"]], mode="markers", orientation="h",
            name="per-seed difference", marker={"size": 7, "color": "rgba(70,70,70,0.6)"},
            text=[f"seed {s}" for s in diffs["seed"]], hovertemplate="%{y}, %{text}<br>%{x:+.2f}<extra></extra>"))
    fig.add_vline(x=0, line={"color": "#333", "width": 1})
    pct = int(round(report.lift.confidence * 100))
    height = 190 + len(labels) * (18 + 16 * len(fig.data))
    fig.update_layout(
        template=TEMPLATE, scattermode="group", scattergap=0.35, height=height,
        title=f"Lift in {_esc(metric)} vs the reference arm, {pct}% CI (filled: significant after Holm)",
        xaxis={"title": f"lift ({u})" if u else "lift", "zeroline": False},
        yaxis={"autorange": "reversed", "categoryorder": "array", "categoryarray": labels},
        **bottom_legend(height, 60))
    return fig


def curves_figure(report: Report):
    """Validation accuracy and training loss per epoch: mean line and mean ± std band per arm."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("validation accuracy (%)", "training loss"),
                        horizontal_spacing=0.08)
    last = 1
    for col, metric in ((1, "val_acc"), (2, "train_loss")):
        for band in curve_bands(report, metric):
            color = PALETTE[band["arm"] % len(PALETTE)]
            name = _esc(band["label"])
            last = max(last, band["epoch"][-1])
            fig.add_trace(go.Scatter(
                x=band["epoch"] + band["epoch"][::-1], y=band["high"] + band["low"][::-1], mode="lines",
                fill="toself", fillcolor=_rgba(color, 0.13), line={"width": 0}, hoverinfo="skip",
                showlegend=False, legendgroup=name), row=1, col=col)
            fig.add_trace(go.Scatter(
                x=band["epoch"], y=band["mean"], mode="lines+markers" if len(band["epoch"]) < 12 else "lines",
                name=name, line={"color": color, "width": 2}, marker={"size": 5}, legendgroup=name,
                showlegend=col == 1, hovertemplate=f"{name}<br>epoch %{{x}}: %{{y:.3f}}<extra></extra>"),
                row=1, col=col)
    fig.update_xaxes(title_text="epoch", tick0=1, dtick=max(1, math.ceil(last / 10)))
    n_arms = len(curve_bands(report, "val_acc")) or len(report.plan.arms)
    fig.update_layout(template=TEMPLATE, title="Learning curves: mean over complete seeds, band = ± 1 std",
                      height=max(440, 160 + 20 * n_arms), margin={"l": 10, "r": 10, "t": 80, "b": 40},
                      legend={"tracegroupgap": 2})
    return fig


def effects_figure(report: Report):
    """Effects sorted by size with CI whiskers; significant ones coloured."""
    import plotly.graph_objects as go

    eff = effect_points(report)
    colors = [PALETTE[2] if s else "#888" for s in eff["significant"].fillna(False)]
    text = [f"p (Holm) {render.p_text(p)}" + (f"<br>aliased with {_esc(a)}" if a else "")
            for p, a in zip(eff["p_holm"], eff["aliases"])]
    fig = go.Figure(go.Scatter(
        x=eff["estimate"], y=[_esc(t) for t in eff["term"]], mode="markers", marker={"size": 10, "color": colors},
        error_x={**_error_x(eff["estimate"], eff["ci_low"], eff["ci_high"]), "color": "#555"}, text=text,
        hovertemplate="%{y}: %{x:+.2f}<br>%{text}<extra></extra>", showlegend=False))
    fig.add_vline(x=0, line={"color": "#333", "width": 1})
    u = render.unit(report.lift.metric)
    fig.update_layout(template=TEMPLATE, title="Effects (trick on minus off), largest first, with CI; "
                                               "green: significant after Holm",
                      xaxis={"title": f"effect ({u})" if u else "effect", "zeroline": False},
                      yaxis={"autorange": "reversed"}, height=150 + 28 * len(eff),
                      margin={"l": 10, "r": 20, "t": 60, "b": 50})
    return fig


def interaction_figure(report: Report):
    """Heatmap of main effects (diagonal) and two-trick interactions; aliased cells in brackets."""
    import plotly.graph_objects as go

    keys, m, hover, by_alias = _interaction_cells(report)
    names = [_esc(k) for k in keys]
    text = [["" if math.isnan(v) else (f"({v:+.2f})" if a else f"{v:+.2f}") for v, a in zip(row, arow)]
            for row, arow in zip(m, by_alias)]
    lim = float(np.nanmax(np.abs(m))) if np.isfinite(m).any() else 1.0
    fig = go.Figure(go.Heatmap(
        z=np.where(np.isnan(m), None, m).tolist(), x=names, y=names, text=text, customdata=hover,
        texttemplate="%{text}", hovertemplate="%{customdata}<extra></extra>", colorscale="RdBu",
        zmin=-lim, zmax=lim, xgap=2, ygap=2, colorbar={"title": {"text": "effect"}}))
    side = 90 + 60 * len(keys)
    fig.update_layout(template=TEMPLATE, title="Main effects (diagonal), two-trick interactions",
                      yaxis={"autorange": "reversed", "scaleanchor": "x"}, height=side + 120,
                      width=max(480, side + 300), margin={"l": 10, "r": 10, "t": 60, "b": 40})
    return fig


# -- page ----------------------------------------------------------------------------------------

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:24px auto;max-width:1180px;
color:#222;padding:0 16px;line-height:1.4}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.15em;margin-top:1.8em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.88em;margin:.6em 0}th,td{padding:4px 9px;border-bottom:1px solid #e4e4e4}
th{background:#f4f4f4;text-align:left;vertical-align:bottom}td.num{text-align:right;white-space:nowrap;
font-variant-numeric:tabular-nums}tr.sig td{background:#eaf6ea}tr.bad td{background:#fdecea}
tr.bad td.status{color:#b3261e;font-weight:600}tr.waiting td{color:#888}td.err{font-family:ui-monospace,monospace;
font-size:.92em;color:#b3261e}.muted{color:#666;font-size:.9em}ul.notes{font-size:.9em;color:#333}
code{background:#f4f4f4;padding:1px 4px;border-radius:3px}.plot{overflow-x:auto}
h3{font-size:1em;margin-bottom:.2em}pre{background:#f7f7f7;padding:8px;overflow-x:auto;font-size:.85em}
"""


def table_html(header: list[str], rows: list[list[str]], *, row_classes: list[str] | None = None,
               text_columns: tuple[int, ...] = (0,), cell_classes: dict[int, str] | None = None) -> str:
    """An escaped HTML table; columns not in `text_columns` are right-aligned numbers."""
    cell_classes = cell_classes or {}
    out = ["<table><thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr></thead><tbody>"]
    for i, r in enumerate(rows):
        cls = f' class="{row_classes[i]}"' if row_classes and row_classes[i] else ""
        cells = []
        for j, c in enumerate(r):
            names = " ".join(x for x in ("" if j in text_columns else "num", cell_classes.get(j, "")) if x)
            cells.append(f'<td class="{names}">{html.escape(c)}</td>' if names else f"<td>{html.escape(c)}</td>")
        out.append(f"<tr{cls}>{''.join(cells)}</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def figure_html(fig) -> str:
    """A figure's div and script, without plotly.js (the page embeds it once) and without MathJax."""
    import plotly.io as pio

    return "<div class='plot'>" + pio.to_html(fig, include_plotlyjs=False, full_html=False,
                                               include_mathjax=False, config=PLOT_CONFIG) + "</div>"


def page_html(title: str, body: list[str]) -> str:
    """A complete offline page: inline CSS and plotly.js in one <script>, nothing fetched."""
    from plotly.offline import get_plotlyjs

    return "\n".join([
        "<!DOCTYPE html>", "<html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{html.escape(title)}</title><style>{CSS}</style>",
        f"<script type='text/javascript'>{get_plotlyjs()}</script>", "</head><body>",
        *body, "</body></html>"])


def report_html(report: Report) -> str:
    """The whole report as one self-contained HTML page."""
    from ablate.report.render import subject

    spec = report.plan.spec
    lift = report.lift
    n_seeds = len(report.plan.seeds)
    body = [f"<h1>{html.escape(spec.name)}</h1>",
            f"<p class='muted'>{html.escape(subject(spec))} · "
            f"{html.escape(spec.design.kind.replace('_', ' '))} design · metric {html.escape(lift.metric)} · "
            f"{n_seeds} seed{'s' if n_seeds != 1 else ''} per arm"
            + (f" (up to {len(lift.seeds)} with adaptive seeds)" if len(lift.seeds) > n_seeds else "")
            + f" · {len(report.plan.arms)} arms</p>"]
    if spec.description:
        body.append(f"<p>{html.escape(spec.description)}</p>")

    header, rows = render.lift_rows(lift, extra_columns=report.columns)
    sig = ["sig" if s else "" for s in lift.frame["significant"].fillna(False)]
    body.append("<h2>Lift table</h2>" + table_html(header, rows, row_classes=sig))
    body.append(f"<p><strong>Verdict:</strong> {html.escape(render.verdict(lift))}</p>")
    notes = render.footnotes(lift, spec) + ["Green rows: lift significant after the Holm adjustment."]
    body.append("<ul class='notes'>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>")
    if len(lift_points(report)):
        body += ["<h2>Lift</h2>", figure_html(lift_figure(report))]
    if not report.curves.empty:
        body += ["<h2>Learning curves</h2>", figure_html(curves_figure(report))]
    if report.effects is not None and not report.effects.empty:
        e = effect_points(report)
        partial = "partial_aliases" in e and e["partial_aliases"].astype(bool).any()
        eh = ["Term", "Effect [CI]", "p (Holm)", "Aliased with"] + (["Partially aliased with (r)"] if partial else [])
        er = [[r["term"], render.ci_text(r["estimate"], r["ci_low"], r["ci_high"]),
               render.p_cell(r["p_holm"], r.get("significant"), r.get("zero_variance", False)), r["aliases"] or ""]
              + ([r["partial_aliases"] or ""] if partial else []) for r in e.to_dict("records")]
        warning = frames.effects_warning(report.plan)
        body += ["<h2>Effects</h2>", table_html(eh, er, row_classes=["sig" if s else "" for s in e["significant"]],
                                                text_columns=(0, 3, 4) if partial else (0, 3)),
                 "<p class='muted'>Effect: mean of the metric with the trick on minus off. Interaction A x B: half "
                 "the difference between A's effect with B on and with B off. Aliased terms cannot be told apart "
                 "by this design: the estimate is of their sum"
                 + ("; a partially aliased one adds r times its effect" if partial else "") + ".</p>"
                 + (f"<p class='muted'>{html.escape(warning)}</p>" if warning else ""),
                 figure_html(effects_figure(report)),
                 "<h2>Interactions</h2>", figure_html(interaction_figure(report)),
                 "<p class='muted'>A bracketed value is shared by aliased terms (the design estimates their "
                 "sum); an empty cell was not estimated. Hover a cell for its CI and aliases.</p>"]
    th, tr, tc = trial_rows(report.trials)
    body.append("<h2>Trials</h2>" + table_html(th, tr, row_classes=tc, text_columns=(1, 3, 8, 9),
                                               cell_classes={3: "status", 9: "err"}))
    body += failed_trials_html(report)
    body.append(f"<p class='muted'>Regenerate this page: <code>ablate report {html.escape(spec.name)} "
                f"--format html</code> (add <code>--store PATH</code> if the experiment is not in the default "
                f"store).</p>")
    return page_html(f"ablate: {spec.name}", body)
