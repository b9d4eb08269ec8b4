"""What the dashboard shows, as plain JSON-ready data, read from the store (never written).

Every number comes from the functions `ablate report` uses: the lift table, verdict and footnotes
(`ablate.report.build_report`, `ablate.report.render`), the effects of a factorial design, the
learning-curve bands and the report's own plotly figures (`ablate.report.html`), and for
`--compare` the settings that differ (`ablate.report.compare`). Nothing here computes a
statistic of its own; this module only selects, words times, and turns frames into lists.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import json
import time

import numpy as np
import pandas as pd
import sqlalchemy as sa

from ablate.errors import AblateError, ReportError
from ablate.serve.jsonable import figure_data
from ablate.serve.search_view import search_view
from ablate.store_schema import attempts, epoch_metrics, experiments, trials

if TYPE_CHECKING:  # pragma: no cover
    from ablate.design.plan import Plan
    from ablate.store import Store

STATUS_ORDER = ("pending", "running", "complete", "failed", "diverged", "pruned")


# -- the experiments list ---------------------------------------------------------------------

def experiment_kind(spec: dict) -> str:
    """design (with its kind), adaptive, search or per-arm search, from a stored spec's JSON."""
    if spec.get("search"):
        return "per-arm search" if spec["search"].get("per_arm") else "search"
    if (spec.get("seeds") or {}).get("adaptive"):
        return f"adaptive ({spec['design']['kind'].replace('_', ' ')})"
    return f"design ({(spec.get('design') or {}).get('kind', '?').replace('_', ' ')})"


def running_trials(store: Store, experiment: str | None = None) -> list[dict]:
    """Running trials with their epoch (the last one stored), planned epochs, elapsed time and ETA."""
    q = sa.select(trials.c.experiment, trials.c.trial_id, trials.c.arm, trials.c.label, trials.c.seed,
                  trials.c.started, trials.c.attempts, trials.c.config).where(trials.c.status == "running")
    if experiment is not None:
        q = q.where(trials.c.experiment == experiment)
    now = time.time()
    with store.engine.connect() as c:
        rows = c.execute(q.order_by(trials.c.experiment, trials.c.started)).mappings().all()
        epochs: dict[tuple[str, str], int] = {}
        for exp in sorted({r["experiment"] for r in rows}):
            # by experiment first: the key's order, so the database reads these trials' rows only
            ids = [r["trial_id"] for r in rows if r["experiment"] == exp]
            eq = (sa.select(epoch_metrics.c.trial_id, sa.func.max(epoch_metrics.c.epoch))
                  .where(epoch_metrics.c.experiment == exp, epoch_metrics.c.trial_id.in_(ids))
                  .group_by(epoch_metrics.c.trial_id))
            epochs |= {(exp, t): int(n) for t, n in c.execute(eq)}
    out = []
    for r in rows:
        try:
            planned = int(json.loads(r["config"]).get("recipe", {}).get("epochs"))
        except (TypeError, ValueError, AttributeError):
            planned = None          # a command trial: its epochs are its own
        epoch = epochs.get((r["experiment"], r["trial_id"]), 0)
        elapsed = now - r["started"] if r["started"] else None
        eta = (elapsed / epoch * (planned - epoch)) if elapsed and epoch and planned else None
        out.append({"experiment": r["experiment"], "trial_id": r["trial_id"], "arm": r["arm"], "label": r["label"],
                    "seed": r["seed"], "epoch": epoch, "epochs": planned, "started": r["started"],
                    "elapsed_s": elapsed, "eta_s": eta, "attempt": r["attempts"]})
    return out


def overview(store: Store) -> dict:
    """Every experiment: kind, status counts, running trials, mean trial time, ETA, last update."""
    with store.engine.connect() as c:
        exps = c.execute(sa.select(experiments.c.name, experiments.c.spec, experiments.c.created,
                                   experiments.c.updated).order_by(experiments.c.created)).mappings().all()
        counts = c.execute(sa.select(trials.c.experiment, trials.c.status, sa.func.count(),
                                     sa.func.max(trials.c.started), sa.func.max(trials.c.finished),
                                     sa.func.avg(trials.c.finished - trials.c.started))
                           .group_by(trials.c.experiment, trials.c.status)).all()
    running = running_trials(store)
    out = []
    for e in exps:
        spec = json.loads(e["spec"])
        mine = [r for r in counts if r[0] == e["name"]]
        by_status = {s: n for _, s, n, *_ in mine}
        last = max([e["updated"]] + [t for r in mine for t in r[3:5] if t is not None])
        complete = next((r for r in mine if r[1] == "complete"), None)
        mean_s = complete[5] if complete is not None else None
        live = [r for r in running if r["experiment"] == e["name"]]
        left = by_status.get("pending", 0) + len(live)
        # all that is left, at the mean time of a complete trial, as many at once as run now
        eta = left * mean_s / max(len(live), 1) if mean_s and left else None
        out.append({"name": e["name"], "kind": experiment_kind(spec), "description": spec.get("description", ""),
                    "counts": {s: by_status[s] for s in STATUS_ORDER if s in by_status},
                    "trials": sum(by_status.values()), "running": live, "mean_trial_s": mean_s, "eta_s": eta,
                    "created": e["created"], "last_update": last})
    return {"store": store.label, "now": time.time(), "experiments": out}


# -- one experiment --------------------------------------------------------------------------

def experiment_head(store: Store, name: str) -> dict:
    """What changes with every epoch: the running trials (cheap, read on every changed poll)."""
    row = store.experiment(name)
    if row is None:
        from ablate.report.frames import load_experiment

        load_experiment(store, name)            # the error with the experiments there
    return {"name": name, "kind": experiment_kind(json.loads(row["spec"])), "now": time.time(),
            "running": running_trials(store, name)}


def results_stamp(store: Store, name: str) -> str:
    """What the results part of an experiment's page depends on. A design's lift table, effects,
    curves and trial table change only when a trial starts, finishes or is retried, not with each
    epoch; a search's figures (intermediate values) change with each epoch: the store's stamp."""
    row = store.experiment(name)
    if row is None or json.loads(row["spec"]).get("search"):
        return store.stamp()
    with store.engine.connect() as c:
        agg = c.execute(sa.select(sa.func.count(), sa.func.sum(trials.c.attempts), sa.func.max(trials.c.started),
                                  sa.func.max(trials.c.finished),
                                  sa.func.sum(sa.case((trials.c.status == "complete", 1), else_=0)),
                                  sa.func.sum(sa.case((trials.c.status == "running", 1), else_=0)))
                        .where(trials.c.experiment == name)).one()
    return "-".join(str(v) for v in (row["updated"], *agg))


def experiment_results(store: Store, name: str) -> dict:
    """A design's lift table, effects, figures and trials, or a search's frames and figures."""
    from ablate.report.frames import load_experiment

    p = load_experiment(store, name)
    if p.spec.search is not None:
        return search_view(store, p)
    return design_view(store, p)


def experiment_view(store: Store, name: str) -> dict:
    """The whole page of one experiment (head and results), read now."""
    return experiment_head(store, name) | experiment_results(store, name)


# a page stays quick and readable at any design size: the figures draw at most this many arms'
# curves (the reference and the largest lifts), the trial table shows this many trials (running
# and failed first, then the latest); the lift table and the downloads always have everything
FIGURE_ARMS = 12
TRIAL_ROWS = 500
CURVE_METRICS = ("val_acc", "val_loss", "train_loss", "train_acc", "lr")


class WithoutEpochs:
    """The store, with no epochs: `build_report`'s curves read every epoch of every trial (millions
    of rows at 20,000 trials); the page reads only the epochs of the arms it draws (`shown_curves`)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def __getattr__(self, name):
        return getattr(self._store, name)

    def epochs_frame(self, experiment: str) -> pd.DataFrame:
        return pd.DataFrame(columns=["trial_id", "epoch", *CURVE_METRICS])


def shown_arms(report) -> list[int]:
    """The arms whose curves the page draws: all, or the reference and the largest |lift|."""
    f = report.lift.frame
    if len(f) <= FIGURE_ARMS:
        return [int(a) for a in f["arm"]]
    size = f["lift"].abs().fillna(-1.0)
    order = f.assign(size=size).iloc[1:].sort_values("size", ascending=False, kind="stable")["arm"]
    return [int(f["arm"].iloc[0])] + sorted(int(a) for a in order.iloc[:FIGURE_ARMS - 1])


def epochs_of(store: Store, experiment: str, trial_ids: list[str]) -> pd.DataFrame:
    """The curve metrics of these trials' epochs, one row per (trial, epoch)."""
    rows = []
    with store.engine.connect() as c:
        for i in range(0, len(trial_ids), 500):          # SQLite caps bound parameters per statement
            q = (sa.select(epoch_metrics.c.trial_id, epoch_metrics.c.epoch, epoch_metrics.c.name,
                           epoch_metrics.c.value)
                 .where(epoch_metrics.c.experiment == experiment, epoch_metrics.c.trial_id.in_(trial_ids[i:i + 500]),
                        epoch_metrics.c.name.in_(CURVE_METRICS)))
            rows += c.execute(q).all()
    long = pd.DataFrame(rows, columns=["trial_id", "epoch", "name", "value"])
    wide = long.pivot_table(index=["trial_id", "epoch"], columns="name", values="value", aggfunc="first")
    wide = wide.reset_index().rename_axis(columns=None)
    for m in CURVE_METRICS:
        if m not in wide:
            wide[m] = np.nan
    return wide


def shown_curves(store: Store, report, arms: list[int]) -> pd.DataFrame:
    """`frames.curves` (the report's function) over the epochs of the shown arms' trials."""
    from ablate.report.frames import curves

    out = report.outcomes
    mine = out[out["arm"].isin(arms)]
    ids = list(mine.loc[mine["status"] == "complete", "trial_id"])
    return curves(report.plan, mine, epochs_of(store, report.name, ids))


def design_view(store: Store, p: Plan) -> dict:
    from ablate.report import build_report, render
    from ablate.report.frames import outcomes

    name = p.spec.name
    try:
        report = build_report(WithoutEpochs(store), name)
    except ReportError as exc:          # e.g. no complete trial yet: the trials are still shown
        out = outcomes(p, store.trials_frame(name))
        return {"lift": None, "lift_message": str(exc), "effects": None, "figures": [],
                "settings": render.settings_lines(p.spec), "trials": trial_list(store, name, out),
                "status_counts": out["status"].value_counts().to_dict()}
    arms = shown_arms(report)
    report.curves = shown_curves(store, report, arms)
    header, rows = render.lift_rows(report.lift, extra_columns=report.columns)
    lift = {"title": f"{report.lift.design.replace('_', ' ')} design, {report.lift.metric}, "
                     f"{len(report.lift.seeds)} seed{'s' if len(report.lift.seeds) != 1 else ''} per arm",
            "header": header, "rows": rows, "verdict": render.verdict(report.lift),
            "notes": render.footnotes(report.lift, p.spec)}
    n_arms = len(report.lift.frame)
    shown = None if len(arms) == n_arms else (f"The learning curves show {len(arms)} of {n_arms} arms: the "
                                              f"reference and the largest lifts; the table has every arm.")
    return {"lift": lift, "lift_message": None, "effects": effects_rows(report), "figures": design_figures(report),
            "figures_note": shown, "settings": [], "trials": trial_list(store, name, report.outcomes),
            "status_counts": report.lift.status_counts}


def effects_rows(report) -> dict | None:
    """The effects table of a factorial design as header and cells, worded by `render`."""
    from ablate.report import render

    eff = report.effects
    if eff is None or not len(eff):
        return None
    u = render.unit(report.lift.metric)
    pct = f"{report.lift.confidence * 100:.10g}"
    header = ["Term", f"Effect ({u}) [{pct}% CI]" if u else f"Effect [{pct}% CI]", "p (Holm)", "Aliased with"]
    rows = [[r["term"], render.ci_text(r["estimate"], r["ci_low"], r["ci_high"]),
             render.p_cell(r.get("p_holm"), r.get("significant")), r.get("aliases") or ""]
            for r in eff.to_dict("records")]
    return {"header": header, "rows": rows}


def design_figures(report) -> list[dict]:
    """The HTML report's figures (lift with CIs, learning curves with seed bands, effects)."""
    from ablate.report.html import curves_figure, effects_figure, lift_figure

    makers = [("lift", lift_figure), ("curves", curves_figure)]
    if report.effects is not None and len(report.effects):
        makers.append(("effects", effects_figure))
    out = []
    for key, make in makers:
        if key == "lift" and len(report.plan.arms) < 2:
            continue
        if key == "curves" and report.curves.empty:
            continue
        out.append({"key": key, "figure": figure_data(make(report))})
    return out


def last_line(text: str | None) -> str:
    """An error's last non-empty line: a traceback's exception, a command's last words."""
    if not isinstance(text, str):
        return ""                       # None, or NaN from a frame
    lines = [x.strip() for x in text.strip().splitlines() if x.strip()]
    return lines[-1] if lines else ""


def trial_list(store: Store, name: str, out: pd.DataFrame) -> dict:
    """The trials of the current spec (at most TRIAL_ROWS: running and failed first, then the
    latest): arm, seed, status, metrics, duration, attempts, the last line of its error and
    whether it has a log (an attempt)."""
    total = len(out)
    if len(out) > TRIAL_ROWS:
        rank = out["status"].map({"running": 0, "failed": 1, "diverged": 1, "pruned": 1}).fillna(2)
        latest = -out["finished"].fillna(out["started"]).fillna(0.0)
        pick = out.assign(_rank=rank, _latest=latest).sort_values(["_rank", "_latest"], kind="stable")
        out = pick.iloc[:TRIAL_ROWS].sort_values(["arm", "seed"], kind="stable")
    with store.engine.connect() as c:
        ids = list(out["trial_id"])
        logged = set()
        for i in range(0, len(ids), 500):
            logged |= {t for (t,) in c.execute(sa.select(attempts.c.trial_id).where(
                attempts.c.experiment == name, attempts.c.trial_id.in_(ids[i:i + 500])).distinct())}
    now = time.time()
    metric_cols = [c for c in ("val_acc", "test_acc", "val_loss") if c in out]
    items = []
    for r in out.to_dict("records"):
        started, finished = r["started"], r["finished"]
        if started is None or pd.isna(started):
            took = None
        elif r["status"] == "running" or finished is None or pd.isna(finished):
            took = now - started
        else:
            took = finished - started
        items.append({"trial_id": r["trial_id"], "arm": r["arm"], "label": r["label"], "seed": r["seed"],
                      "status": r["status"], **{m: r.get(m) for m in metric_cols}, "duration_s": took,
                      "attempts": r.get("attempts"), "error": last_line(r.get("error")),
                      "log": r["trial_id"] in logged})
    return {"metrics": metric_cols, "rows": items, "total": total}


def trial_log(store: Store, name: str, trial_id: str) -> str:
    """Every attempt of one trial as text: outcome, failure kind, host, times and the whole error."""
    with store.engine.connect() as c:
        row = c.execute(sa.select(trials.c.label, trials.c.seed, trials.c.status)
                        .where(trials.c.experiment == name, trials.c.trial_id == trial_id)).first()
        if row is None:
            raise AblateError(f"no trial '{trial_id}' in experiment '{name}' of store '{store.label}'")
        tries = c.execute(sa.select(attempts).where(attempts.c.experiment == name, attempts.c.trial_id == trial_id)
                          .order_by(attempts.c.attempt)).mappings().all()
    lines = [f"{name}: trial {trial_id}, {row.label}, seed {row.seed}: {row.status}", ""]
    if not tries:
        lines.append("no attempt yet")
    for a in tries:
        when = " -> ".join(time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) for t in (a["started"], a["finished"])
                           if t is not None)
        lines.append(f"attempt {a['attempt']}: {a['status']}" + (f" ({a['kind']})" if a["kind"] else "")
                     + (f" on {a['holder']}" if a["holder"] else "") + (f", {when}" if when else ""))
        if a["error"]:
            lines += ["", a["error"].rstrip(), ""]
    return "\n".join(lines) + "\n"


# -- two experiments side by side -------------------------------------------------------------

def compare_view(store: Store, names: list[str]) -> dict:
    """`ablate report A B --compare` as data: its table (same cells) and the settings that differ."""
    from ablate.report import build_report
    from ablate.report.compare import comparison_cells, comparison_headers, compare_frame, experiment_lines, settings_differences

    reports = [build_report(store, n) for n in names]
    frame = compare_frame(reports)
    diffs = [{"setting": k, "values": [None if v is None else str(v) for v in vals]}
             for k, vals in settings_differences(reports)]
    return {"names": names, "header": comparison_headers(reports), "rows": comparison_cells(reports, frame),
            "notes": experiment_lines(reports), "differences": diffs}
