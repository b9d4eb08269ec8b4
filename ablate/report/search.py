"""The report of a search: the seeds of each stage, the finalists with the winner measured on the
report seeds, hand-picked vs searched, per-arm tuned values and lift table, Pareto front,
importances (md, csv, json, html).

The content is built once as blocks (`search_blocks`: headings, paragraphs, tables, lists);
markdown and HTML (`ablate.report.search_figures`) render the same blocks, so the page has everything
the markdown has, plus figures and the trials table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ablate.errors import ReportError
from ablate.report import render
from ablate.report.numbers import MISSING, fmt_num
from ablate.report.protocol import write_files
from ablate.search import frames
from ablate.search.progress import sampler_text
from ablate.search.runner import load_arm_study, searched_arms, study_name
from ablate.config.search import search_metrics
from ablate.design.stages import stage_seeds
from ablate.design.changes import EXECUTION_ONLY_RECIPE

if TYPE_CHECKING:  # pragma: no cover
    from ablate.design.plan import Plan
    from ablate.design.spec import Spec
    from ablate.store import Store

TESTS = {"t": "paired t-test", "wilcoxon": "Wilcoxon signed-rank test",
         "permutation": "exact paired sign-flip (randomisation) test"}
IMPORTANCE_NOTE = ("Importances: the share of the search's variation in {metric} each parameter explains "
                   "(each column sums to 1), from the search trials (one run each on the search seed, pruned "
                   "trials left out): 'default' is Optuna's default evaluator, PED-ANOVA (Watanabe et al. 2023: how "
                   "much a parameter's values in the best trials differ from its values in all trials); 'fanova' is "
                   "fANOVA (Hutter et al. 2014: the share of the variance of a random-forest fit). A screening aid, "
                   "with no interval: it says where the search looked, not what a parameter is worth.")


@dataclass
class SearchReport:
    plan: object
    studies: list                           # one per searched arm
    history: list[pd.DataFrame]
    finalists: list[frames.Finalists]
    pareto: pd.DataFrame
    importances: pd.DataFrame
    lift: object = None                     # per-arm: ablate.report.frames.LiftTable over the report trials
    notes: list[str] = field(default_factory=list)
    confidence: float = 0.95
    test: str = "t"
    trials: pd.DataFrame | None = None      # every stored trial of the experiment

    @property
    def name(self) -> str:
        return self.plan.spec.name

    def markdown(self) -> str:
        return search_markdown(self)

    FILES = {"md": ("search.md",), "csv": ("finalists.csv", "history.csv", "lift.csv"), "json": ("search.json",),
             "html": ("report.html",)}

    def format_error(self, bad: list[str]) -> str:
        return f"format '{bad[0]}' is not written for a search report; use md, csv, json or html"

    def files(self, fmt: str) -> list:
        """The report protocol (`ablate.report.protocol`): the files of one format."""
        if fmt == "md":
            return [("search.md", self.markdown)]
        if fmt == "csv":
            arms = searched_arms(self.plan)
            made = [("finalists.csv", lambda: pd.concat([f.table.assign(arm=f.arm) for f in self.finalists],
                                                        ignore_index=True).to_csv(index=False, float_format="%.6g")),
                    ("history.csv", lambda: pd.concat([h.assign(arm=a) for a, h in zip(arms, self.history)],
                                                      ignore_index=True).to_csv(index=False, float_format="%.6g"))]
            if self.lift is not None:
                made.append(("lift.csv", lambda: render.lift_csv(self.lift)))
            return made
        if fmt == "json":
            return [("search.json", lambda: search_json(self))]
        from ablate.report.search_figures import search_html

        return [("report.html", lambda: search_html(self, search_blocks(self)))]

    def write(self, out_dir, formats: tuple[str, ...] = ("md", "csv")) -> list[Path]:
        """Write the files of `formats` into `out_dir` (`ablate.report.protocol.write_files`)."""
        return write_files(self, out_dir, formats)


def build_search_report(store: Store, p: Plan, *, confidence: float = 0.95, test: str = "t",
                        diverged: str = "worst") -> SearchReport:
    """`confidence`, `test` and `diverged` (the per-arm lift table's) as for a design's report."""
    from ablate.report.frames import check_options

    check_options(confidence, test, diverged)
    spec = p.spec
    trials = store.trials_frame(spec.name)
    studies, hist, fins = [], [], []
    for arm in searched_arms(p):
        study = load_arm_study(p, store, arm)
        if study is None:
            raise ReportError(f"'{spec.name}' has no search in {store.label} yet: study "
                              f"'{study_name(spec, arm if spec.search.per_arm else None)}' is not there "
                              f"(`ablate run` starts it)")
        studies.append(study)
        hist.append(frames.history(study))
        fins.append(frames.finalists(p, trials, study, arm=arm, confidence=confidence, test=test))
    report = SearchReport(p, studies, hist, fins, frames.pareto_front(studies[0]), frames.importances(studies[0]),
                          confidence=confidence, test=test, trials=trials)
    if spec.search.per_arm and all(f.winner is not None for f in fins):
        from ablate.report.frames import lift_table, outcomes

        tuned = frames.tuned_plan(p, [f.winner for f in fins])
        reported = trials[trials["seed"].isin(tuned.seeds)]   # the report seeds only, never the choosing runs
        try:
            report.lift = lift_table(tuned, outcomes(tuned, reported), confidence=confidence, test=test,
                                     diverged=diverged)
        except ReportError as exc:     # e.g. the report stage has not run yet
            report.notes.append(f"no lift table yet: {exc}")
    elif spec.search.per_arm:
        report.notes.append("no lift table yet: some arm has no winner")
    return report


# -- text pieces ---------------------------------------------------------------------------------

def values_text(values) -> str:
    """Searched values as a spec writes them ("recipe.lr = 0.1, tricks.mixup.alpha = 0.4")."""
    if isinstance(values, str):
        values = json.loads(values)
    return ", ".join(f"{k} = {_num(v)}" for k, v in values.items())


def _num(v) -> str:
    return fmt_num(v, 4, general=True)     # a searched value, as a spec writes it


def mean_ci_text(mean, low, high) -> str:
    """A mean and its interval, unsigned ("91.20 [90.80, 91.60]"); the mean alone without one."""
    if fmt_num(low) == MISSING:
        return fmt_num(mean)
    return f"{fmt_num(mean)} [{fmt_num(low)}, {fmt_num(high)}]"


def _lift_text(lift) -> str:
    if lift.n < 2:
        return f"{fmt_num(lift.mean, sign=True)} (n={lift.n}: no CI)"
    p = render.p_cell(lift.p_value, False, lift.zero_variance)
    return (f"{fmt_num(lift.mean, sign=True)} [{fmt_num(lift.ci_low, sign=True)}, {fmt_num(lift.ci_high, sign=True)}], "
            f"p = {p}, n = {lift.n}")


def _seeds_text(seeds) -> str:
    return ", ".join(map(str, seeds)) or "none"


def _pct(confidence: float) -> str:
    return f"{confidence * 100:.10g}%"


def current_value(spec: Spec, path: str):
    """The spec's own value of a searched path (what a trial gets when nothing is sampled)."""
    parts = path.split(".")
    if parts[0] == "recipe" and spec.recipe is not None:
        return getattr(spec.recipe, parts[1])
    if parts[0] == "tricks" and parts[1] in spec.tricks:
        return getattr(spec.tricks[parts[1]].params, parts[2], None)
    return None


def stages_text(spec: Spec) -> str:
    st = stage_seeds(spec)
    if not st.validates:
        return f"Seeds: search {_seeds_text(st.search)} (no validation round: nothing is measured over seeds)."
    select = (f"select {_seeds_text(st.select)} (the finalists' mean there chooses the winner and runner-up); "
              if st.select else "")
    return (f"Seeds: search {_seeds_text(st.search)} (each configuration once; the top {st.top_k} go on); "
            f"{select}report {_seeds_text(st.report)} (every mean, CI, lift and p below; these runs chose nothing).")


# -- blocks: ("h1"|"h2"|"p", text), ("table", header, rows, text_columns), ("ul", lines) ------------

def finalists_blocks(f: frames.Finalists, confidence: float) -> list[tuple]:
    st = f.stages
    head = ["config", "values", f"search ({f.metric}, seed {_seeds_text(st.search)})"]
    if not st.validates:
        rows = [[r["config"], values_text(r["values"]), mean_ci_text(r.get("search_value"), math.nan, math.nan)]
                for r in f.table.to_dict("records")]
        return [("table", head, rows, (0, 1)), ("ul", [f"note: {n}" for n in f.notes])]
    if st.select and len(f.table) > 1:
        head.append(f"select score (mean of seeds {_seeds_text(st.select)})")
    head += [f"report: mean [{_pct(confidence)} CI] (seeds {_seeds_text(st.report)})", "n", ""]
    rows = []
    for r in f.table.to_dict("records"):
        sv = r.get("search_value")
        row = [r["config"], values_text(r["values"]), fmt_num(sv)]
        if len(head) == 7:
            score = fmt_num(r["select_score"])
            row.append(score if score == MISSING else f"{score} ({r['select_n']})")
        row += [mean_ci_text(r["mean"], r["ci_low"], r["ci_high"]), str(r["n"]) if r["role"] else "",
                "**winner**" if r["role"] == "winner" else r["role"] if r["role"] != "hand-picked" else ""]
        rows.append(row)
    out: list[tuple] = [("table", head, rows, (0, 1, len(head) - 1))]
    lines = []
    if f.lift is not None:
        lines.append(f"Winner over the runner-up (paired over the report seeds): {_lift_text(f.lift)}")
    if f.compare is not None:
        lines.append(f"Searched (winner) over hand-picked (paired over the report seeds): {_lift_text(f.compare)}")
    if len(head) == 7:
        lines.append("The search and select scores chose the finalists and the winner; as the best of several "
                     "noisy runs they are biased upward, so they are not estimates.")
    out.append(("ul", lines + [f"note: {n}" for n in f.notes]))
    return out


def compare_blocks(f: frames.Finalists, spec: Spec, confidence: float) -> list[tuple]:
    """The hand-picked vs searched table of the reference write-up: each searched parameter,
    then the metric over the report seeds and the searched configuration's paired lift."""
    hand = dict(spec.search.compare_to or {})
    rows = [[path, _num(hand.get(path, current_value(spec, path))), _num(f.winner.get(path))]
            for path in spec.search.params]
    by = {r["role"]: r for r in f.table.to_dict("records")}
    win, hp = by["winner"], by["hand-picked"]
    rows.append([f"{f.metric}, mean [{_pct(confidence)} CI] over {hp['n']} report seeds",
                 mean_ci_text(hp["mean"], hp["ci_low"], hp["ci_high"]), mean_ci_text(win["mean"], win["ci_low"], win["ci_high"])])
    rows.append(["lift, searched - hand-picked (paired)", "", _lift_text(f.compare)])
    return [("table", ["", "hand-picked", "searched"], rows, (0,))]


def trial_counts(hist: pd.DataFrame) -> dict[str, int]:
    """A study's trials that count against its budget, by status."""
    counted = hist[~hist["requeued"]] if len(hist) else hist
    return counted["status"].value_counts().to_dict() if len(counted) else {}


def _counts_text(counts: dict, noun: str = "") -> str:
    """'16 trials (5 complete, 11 pruned)'; 'no trials' when there are none."""
    total = sum(counts.values())
    if not total:
        return f"no {noun}".strip() if noun else "0"
    return f"{total}{' ' + noun if noun else ''} (" + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) + ")"


def per_arm_blocks(r: SearchReport) -> list[tuple]:
    labels = [r.plan.arms[f.arm].label for f in r.finalists]
    counts = [sum(trial_counts(h).values()) for h in r.history]
    rows = [[lab, _counts_text(trial_counts(h)), values_text(f.winner) if f.winner else MISSING]
            for lab, h, f in zip(labels, r.history, r.finalists)]
    out: list[tuple] = [("h2", "Each arm's tuned values"),
                        ("table", ["arm", "search trials", "tuned values (the winner)"], rows, (0, 2))]
    if len(set(counts)) > 1:
        out.append(("p", "The arms' searches ran different numbers of trials (a timeout bounds each study's time, "
                         "not its trials): " + ", ".join(f"{lab} {n}" for lab, n in zip(labels, counts))
                         + ". A larger search can find a better configuration by itself; the lift table shows "
                           "each arm's count beside its lift."))
    if r.lift is None:
        return out
    t = r.lift
    header, rows = render.lift_rows(t, extra_columns=())
    header.append("Search trials")
    for row, arm in zip(rows, t.frame["arm"]):
        row.append(str(counts[int(arm)]))
    out += [("h2", "Lift table over each arm's tuned configuration (report seeds)"),
            ("table", header, rows, (0,)), ("p", f"**Verdict:** {render.verdict(t)}"),
            ("ul", per_arm_setup(r) + render.footnotes(t, None))]
    return out


def per_arm_setup(r: SearchReport) -> list[str]:
    """What the per-arm lift table was measured with: the base settings less what was searched,
    each arm's tuned values, and the seeds of each stage."""
    spec = r.plan.spec
    searched = set(spec.search.params)
    if spec.trial is not None:
        base = f"Setup: command `{' '.join(spec.trial.command)}`; metric {spec.metric.name}."
    else:
        recipe = ", ".join(f"{k} {v}" for k, v in spec.recipe.model_dump(mode="json").items()
                           if f"recipe.{k}" not in searched and k not in EXECUTION_ONLY_RECIPE)
        model, data = (", ".join(f"{k} {v}" for k, v in x.model_dump(mode="json").items()
                                 if k != "name" and v is not None) for x in (spec.model, spec.data))
        base = (f"Setup: model {spec.model.name} ({model}); data {spec.data.name} ({data}); recipe: {recipe}; "
                f"metric {spec.metric.name}.")
    tuned = "; ".join(f"{r.plan.arms[f.arm].label}: {values_text(f.winner)}" for f in r.finalists if f.winner)
    lines = [base, f"Tuned per arm (each arm's own search, its winner chosen on the selection seeds): {tuned}."]
    if spec.tricks:
        parts = []
        for k, s in spec.tricks.items():
            fixed = [f"{n}={v}" for n, v in s.params.model_dump(mode="json").items()
                     if f"tricks.{k}.{n}" not in searched]
            parts.append(f"{s.code} = {s.use if k == s.use else f'{s.use} (as {k!r})'}"
                         + (f" [{', '.join(fixed)}]" if fixed else ""))
        lines.append("Codes: " + ", ".join(parts) + " (searched parameters as tuned above).")
    lines.append(stages_text(spec))
    return lines


def _frame_rows(df: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    return list(df.columns), [[_num(v) for v in row] for row in df.itertuples(index=False)]


def search_blocks(r: SearchReport) -> list[tuple]:
    spec = r.plan.spec
    s = spec.search
    metrics = search_metrics(spec)
    budget = ", ".join(x for x in (f"n_trials {s.n_trials}" if s.n_trials else "",
                                   f"timeout {s.timeout_s:g} s" if s.timeout_s else "") if x)
    out: list[tuple] = [("h1", f"{spec.name}: search"),
                        ("p", f"{sampler_text(s)}, pruner {s.pruner.name}, {budget} per study; "
                              f"{' and '.join(f'{m.direction} {m.name}' for m in metrics)}."),
                        ("p", stages_text(spec)),
                        ("p", f"Intervals: {_pct(r.confidence)} t intervals; p: {TESTS[r.test]}, two-sided.")]
    for arm, study, hist, f in zip(searched_arms(r.plan), r.studies, r.history, r.finalists):
        out.append(("h2", r.plan.arms[arm].label if s.per_arm else "Finalists"))
        out.append(("p", f"study '{study.study_name}': {_counts_text(trial_counts(hist), 'trials')}"))
        if f.winner is not None:
            out.append(("p", f"winner (chosen on the selection seeds): {values_text(f.winner)}"))
        out += finalists_blocks(f, r.confidence) if len(f.table) else [("ul", [f"note: {n}" for n in f.notes])]
    for f in r.finalists:
        if f.compare is not None:
            where = f" ({r.plan.arms[f.arm].label})" if s.per_arm else ""
            out += [("h2", f"Hand-picked vs searched{where}")] + compare_blocks(f, spec, r.confidence)
    if s.per_arm:
        out += per_arm_blocks(r)
    if len(r.pareto):
        out += [("h2", "Pareto front"), ("table", *_frame_rows(r.pareto), (0,))]
    if len(r.importances) and len(r.importances.columns) > 1:
        where = f" ({r.plan.arms[searched_arms(r.plan)[0]].label}'s study)" if s.per_arm else ""
        out += [("h2", f"Parameter importances{where}"), ("table", *_frame_rows(r.importances), (0,)),
                ("p", IMPORTANCE_NOTE.format(metric=metrics[0].name))]
    if r.notes:
        out.append(("ul", [f"note: {n}" for n in r.notes]))
    return out


def search_markdown(r: SearchReport) -> str:
    lines: list[str] = []
    for block in search_blocks(r):
        kind = block[0]
        if kind == "h1":
            lines += [f"# {block[1]}", ""]
        elif kind == "h2":
            lines += [f"## {block[1]}", ""]
        elif kind == "p":
            lines += [block[1], ""]
        elif kind == "table":
            align = [":--" if i in block[3] else "--:" for i in range(len(block[1]))]
            lines += [render.markdown_table(block[1], block[2], align=align), ""]
        elif block[1]:
            lines += [f"- {x}" for x in block[1]] + [""]
    return "\n".join(lines).rstrip("\n") + "\n"


def search_json(r: SearchReport) -> str:
    def clean(df):
        return json.loads(df.to_json(orient="records"))

    st = stage_seeds(r.plan.spec)
    return json.dumps({
        "experiment": r.name, "confidence": r.confidence, "test": r.test,
        "seeds": {"search": list(st.search), "select": list(st.select), "report": list(st.report)},
        "arms": [{"arm": f.arm, "metric": f.metric, "winner": f.winner, "runner_up": f.runner_up,
                  "finalists": clean(f.table), "winner_over_runner_up": _lift_dict(f.lift),
                  "searched_over_hand_picked": _lift_dict(f.compare), "search_trials": trial_counts(h),
                  "notes": f.notes, "history": clean(h)} for f, h in zip(r.finalists, r.history)],
        "pareto_front": clean(r.pareto), "importances": clean(r.importances), "notes": r.notes,
    }, indent=1, allow_nan=False, default=str)


def _lift_dict(lift):
    if lift is None:
        return None
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in vars(lift).items()}


def write_search_report(r: SearchReport, out_dir, formats=("md", "csv")) -> list[Path]:
    """Write the search report's files (`ablate.report.protocol.write_files`); returns the paths."""
    return write_files(r, out_dir, formats)
