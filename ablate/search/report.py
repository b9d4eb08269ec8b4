"""The report of a search: best configuration, finalists over seeds, hand-picked vs searched,
per-arm tuned values and lift table, Pareto front, importances (md, csv, json, html)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ablate.report import render
from ablate.search import frames
from ablate.search.runner import open_arm_study, searched_arms
from ablate.search.space import search_metrics


@dataclass
class SearchReport:
    plan: object
    studies: list                           # one per searched arm
    history: list[pd.DataFrame]
    finalists: list[frames.Finalists]
    pareto: pd.DataFrame
    importances: pd.DataFrame
    lift: object = None                     # per-arm: ablate.report.frames.LiftTable over validated trials
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.plan.spec.name

    def markdown(self) -> str:
        return search_markdown(self)


def build_search_report(store, p, *, confidence: float = 0.95) -> SearchReport:
    spec = p.spec
    trials = store.trials_frame(spec.name)
    studies, hist, fins = [], [], []
    for arm in searched_arms(p):
        study = open_arm_study(p, store, arm)
        studies.append(study)
        hist.append(frames.history(study))
        fins.append(frames.finalists(p, trials, study, arm=arm, confidence=confidence))
    report = SearchReport(p, studies, hist, fins, frames.pareto_front(studies[0]), frames.importances(studies[0]))
    if spec.search.per_arm and all(f.winner is not None for f in fins):
        from ablate.report.frames import lift_table, outcomes

        tuned = frames.tuned_plan(p, [f.winner for f in fins])
        report.lift = lift_table(tuned, outcomes(tuned, trials), confidence=confidence)
    elif spec.search.per_arm:
        report.notes.append("no lift table yet: some arm has no validated winner")
    return report


def _values_text(values) -> str:
    if isinstance(values, str):
        values = json.loads(values)
    return ", ".join(f"{k} = {_num(v)}" for k, v in values.items())


def _num(v, digits: int = 4) -> str:
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return str(v)


def _ci(mean, low, high) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "—"
    if isinstance(low, float) and math.isnan(low):
        return f"{mean:.2f}"
    return f"{mean:.2f} [{low:.2f}, {high:.2f}]"


def finalists_markdown(f: frames.Finalists, confidence: float) -> list[str]:
    pct = int(round(confidence * 100))
    out = [f"| config | values | search ({f.metric}, 1 seed) | mean over seeds [{pct}% CI] | n | |",
           "| --- | --- | ---: | ---: | ---: | --- |"]
    for r in f.table.to_dict("records"):
        sv = "—" if r.get("search_value") is None or pd.isna(r.get("search_value")) else f"{r['search_value']:.2f}"
        mark = "**winner**" if r.get("winner") is True else ""
        out.append(f"| {r['config']} | {_values_text(r['values'])} | {sv} | "
                   f"{_ci(r['mean'], r['ci_low'], r['ci_high'])} | {r['n']} | {mark} |")
    if f.lift is not None:
        out.append("")
        out.append(f"Winner over the runner-up (paired over seeds): {_lift_text(f.lift)}")
    if f.compare is not None:
        out.append(f"Searched (winner) over hand-picked (paired over seeds): {_lift_text(f.compare)}")
    out += [f"note: {n}" for n in f.notes]
    return out


def current_value(spec, path: str):
    """The spec's own value of a searched path (what a trial gets when nothing is sampled)."""
    parts = path.split(".")
    if parts[0] == "recipe" and spec.recipe is not None:
        return getattr(spec.recipe, parts[1])
    if parts[0] == "tricks" and parts[1] in spec.tricks:
        return getattr(spec.tricks[parts[1]].params, parts[2], None)
    return None


def compare_markdown(f: frames.Finalists, spec) -> list[str]:
    """The hand-picked vs searched table of the reference write-up: each searched parameter,
    then the metric over the paired seeds and the searched configuration's lift."""
    hand = dict(spec.search.compare_to or {})
    rows = [[path, _num(hand.get(path, current_value(spec, path))), _num(f.winner.get(path))]
            for path in spec.search.params]
    by = {r["config"]: r for r in f.table.to_dict("records")}
    win = next(r for r in f.table.to_dict("records") if r.get("winner") is True)
    hp = by["hand-picked"]
    rows.append([f"{f.metric}, mean [95% CI] over {hp['n']} seeds", _ci(hp["mean"], hp["ci_low"], hp["ci_high"]),
                 _ci(win["mean"], win["ci_low"], win["ci_high"])])
    rows.append(["lift, searched - hand-picked (paired)", "", _lift_text(f.compare)])
    return [render.markdown_table(["", "hand-picked", "searched"], rows)]


def _lift_text(lift) -> str:
    if lift.n < 2:
        return f"{lift.mean:+.2f} (n={lift.n}: no CI)"
    return f"{lift.mean:+.2f} [{lift.ci_low:+.2f}, {lift.ci_high:+.2f}], p = {render.p_text(lift.p_value)}, n = {lift.n}"


def search_markdown(r: SearchReport) -> str:
    spec = r.plan.spec
    s = spec.search
    metrics = search_metrics(spec)
    lines = [f"# {spec.name}: search", "",
             f"{s.sampler.name} sampler, pruner {s.pruner.name}, "
             f"{'n_trials ' + str(s.n_trials) if s.n_trials else ''}"
             f"{', ' if s.n_trials and s.timeout_s else ''}{'timeout ' + str(s.timeout_s) + ' s' if s.timeout_s else ''}; "
             f"{' and '.join(f'{m.direction} {m.name}' for m in metrics)}; seeds {list(spec.seeds.values)}"]
    for arm, study, hist, f in zip(searched_arms(r.plan), r.studies, r.history, r.finalists):
        counts = hist["status"].value_counts().to_dict() if len(hist) else {}
        head = f"## {r.plan.arms[arm].label}" if s.per_arm else "## Finalists"
        lines += ["", head, "",
                  f"study '{study.study_name}': {len(hist)} trials ("
                  + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) + ")"]
        if f.winner is not None:
            lines.append(f"best configuration (seed mean): {_values_text(f.winner)}")
        lines += [""] + finalists_markdown(f, 0.95)
    for f in r.finalists:
        if f.compare is not None:
            lines += ["", "## Hand-picked vs searched", ""] + compare_markdown(f, spec)
    if s.per_arm:
        lines += ["", "## Each arm's tuned values", "",
                  render.markdown_table(["arm", "tuned values (winner on the seed mean)"],
                                        [[r.plan.arms[f.arm].label, _values_text(f.winner) if f.winner else "—"]
                                         for f in r.finalists])]
    if r.lift is not None:
        lines += ["", "## Lift table over each arm's tuned configuration (validation trials)", "",
                  render.lift_markdown(r.lift, spec, title=False)]
    if len(r.pareto):
        lines += ["", "## Pareto front", "", _frame_markdown(r.pareto)]
    if len(r.importances) and len(r.importances.columns) > 1:
        lines += ["", "## Parameter importances", "", _frame_markdown(r.importances)]
    lines += [f"note: {n}" for n in r.notes]
    return "\n".join(lines) + "\n"


def _frame_markdown(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    rows = [[_num(v) for v in row] for row in df.itertuples(index=False)]
    return render.markdown_table(cols, rows)


def search_json(r: SearchReport) -> str:
    def clean(df):
        return json.loads(df.to_json(orient="records"))

    return json.dumps({
        "experiment": r.name,
        "arms": [{"arm": f.arm, "metric": f.metric, "winner": f.winner, "finalists": clean(f.table),
                  "winner_over_runner_up": _lift_dict(f.lift), "searched_over_hand_picked": _lift_dict(f.compare),
                  "notes": f.notes, "history": clean(h)} for f, h in zip(r.finalists, r.history)],
        "pareto_front": clean(r.pareto), "importances": clean(r.importances), "notes": r.notes,
    }, indent=1, allow_nan=False, default=str)


def _lift_dict(lift):
    if lift is None:
        return None
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in vars(lift).items()}


def write_search_report(r: SearchReport, out_dir, formats=("md", "csv")) -> list[Path]:
    from ablate.report.build import clear_earlier_writes
    from ablate.report.files import ReportFolder

    out = Path(out_dir)
    # checks the folder and refuses links among the files it writes (ablate.report.files)
    ReportFolder(out, ["search.md", "finalists.csv", "history.csv", "lift.csv", "search.json", "report.html"])
    paths = []
    for fmt in formats:
        if fmt == "md":
            paths.append(out / "search.md")
            paths[-1].write_text(r.markdown(), encoding="utf-8")
        elif fmt == "csv":
            fin = pd.concat([f.table.assign(arm=f.arm) for f in r.finalists], ignore_index=True)
            paths.append(out / "finalists.csv")
            fin.to_csv(paths[-1], index=False, float_format="%.6g")
            paths.append(out / "history.csv")
            pd.concat([h.assign(arm=a) for a, h in zip(searched_arms(r.plan), r.history)],
                      ignore_index=True).to_csv(paths[-1], index=False, float_format="%.6g")
            if r.lift is not None:
                paths.append(out / "lift.csv")
                paths[-1].write_text(render.lift_csv(r.lift), encoding="utf-8")
        elif fmt == "json":
            paths.append(out / "search.json")
            paths[-1].write_text(search_json(r), encoding="utf-8")
        elif fmt == "html":
            from ablate.search.figures import search_html

            paths.append(out / "report.html")
            paths[-1].write_text(search_html(r), encoding="utf-8")
        else:
            from ablate.errors import ReportError

            raise ReportError(f"format '{fmt}' is not written for a search report; use md, csv, json or html")
    clear_earlier_writes(out, paths)
    return paths
