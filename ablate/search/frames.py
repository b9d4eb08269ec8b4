"""A search's results as tidy frames (figures and tables are drawn from these): the study's
history, the finalists over seeds with the winner's paired lift over the runner-up, hand-picked
vs searched, each arm's tuned values and the lift table over the validated trials (per-arm), the
Pareto front, parameter importances."""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from ablate import stats
from ablate.design.plan import Plan
from ablate.search.finalists import stage_values, stored_finalists
from ablate.search.selection import choose_and_report
from ablate.search.source import REASON_ATTR, REQUEUED_ATTR, STATUS_ATTR, TRIAL_ID_ATTR, make_trial, retried_numbers
from ablate.config.search import search_metrics
from ablate.design.stages import StageSeeds, stage_seeds


@dataclass(frozen=True)
class TunedPlan(Plan):
    """The design with each arm's tuned values applied, on the report seeds: its trials are the
    report trials of a per-arm search, so the usual lift table (`ablate.report.frames`) is built
    over them and over nothing else (not the runs that chose the values)."""

    arm_values: tuple = ()
    report_seeds: tuple = ()

    @property
    def seeds(self) -> tuple[int, ...]:
        return self.report_seeds

    @cached_property
    def _tuned(self) -> dict:
        return {}

    def _trial_of(self, arm: int, seed: int):
        key = (arm, seed)
        if key not in self._tuned:
            self._tuned[key] = make_trial(self, arm, seed, dict(self.arm_values[arm]), reason="report: winner")
        return self._tuned[key]

    def trial_id(self, arm: int, seed: int) -> str:
        return self._trial_of(arm, seed).id

    def trial(self, arm: int, seed: int, *, experiment=None, origin="search", reason="report: winner"):
        return self._trial_of(arm, seed)


def history(study) -> pd.DataFrame:
    """One row per study trial: number, state, value(s), parameters, ablate trial id, reason."""
    rows = []
    retried = retried_numbers(study)     # failed ones asked again by --retry-failed: like requeued ones
    for t in study.get_trials(deepcopy=False):
        row = {"number": t.number, "state": t.state.name.lower(), "ablate_trial_id": t.user_attrs.get(TRIAL_ID_ATTR),
               "reason": t.user_attrs.get(REASON_ATTR, ""),
               "requeued": bool(t.user_attrs.get(REQUEUED_ATTR)) or t.number in retried,
               "status": t.user_attrs.get(STATUS_ATTR, t.state.name.lower())}
        for i, v in enumerate(t.values or []):
            row[f"value_{i}"] = v
        row["epochs_reported"] = len(t.intermediate_values)
        row.update({f"param:{k}": v for k, v in t.params.items()})
        rows.append(row)
    return pd.DataFrame(rows)


@dataclass
class Finalists:
    """A study's finalists: `table` has one row per finalist (and the hand-picked values) with its
    search value, its selection score (mean over the selection seeds: what chose; not an
    estimate) and, for the winner, the runner-up and the hand-picked values, the mean, std and
    t interval over the report seeds (`ablate.design.stages`). `lift` (winner - runner-up) and
    `compare` (winner - hand-picked) are paired over the report seeds."""

    arm: int
    metric: str
    direction: str
    table: pd.DataFrame
    winner: dict | None
    lift: stats.PairedLift | None
    compare: stats.PairedLift | None
    stages: StageSeeds | None = None
    runner_up: dict | None = None
    notes: list[str] = field(default_factory=list)


def _lift(r: dict | None, test: str) -> stats.PairedLift | None:
    if r is None:
        return None
    v = {k: np.asarray(x).item() for k, x in r.items()}
    return stats.PairedLift(n=int(v["n"]), mean=float(v["mean"]), std=float(v["std"]), ci_low=float(v["ci_low"]),
                            ci_high=float(v["ci_high"]), p_value=float(v["p_value"]), test=test,
                            zero_variance=bool(v["zero_variance"]))


def finalists(p: Plan, store_frame: pd.DataFrame, study, *, arm: int = 0, confidence: float = 0.95,
              test: str = "t") -> Finalists:
    """The finalists, the winner chosen on the selection seeds and its figures on the report seeds."""
    metric = search_metrics(p.spec)[0]
    st = stage_seeds(p.spec)
    chosen = stored_finalists(study)
    search_value = _search_values(study)
    out = Finalists(arm, metric.name, metric.direction, pd.DataFrame(), None, None, None, st)
    if not chosen:
        out.notes.append("no finalists: the search has no complete trial")
        return out
    k = len(chosen)
    if not st.validates:
        out.table = pd.DataFrame([{"config": "finalist 1", "values": _key(chosen[0]), "role": "",
                                   "search_value": search_value.get(_key(chosen[0])), "n": 0}])
        out.winner = dict(chosen[0])
        out.notes.append("no validation round (validate: false): the search's best single run, not measured "
                         "over seeds")
        return out
    select = np.array([stage_values(p, store_frame, arm, v, metric.name, st.select) for v in chosen]).reshape(
        k, len(st.select))
    report = np.array([stage_values(p, store_frame, arm, v, metric.name, st.report) for v in chosen]).reshape(
        k, len(st.report))
    hand = p.spec.search.compare_to
    hand_x = stage_values(p, store_frame, arm, dict(hand), metric.name, st.report) if hand else None
    c = choose_and_report(select, report, hand_x, direction=metric.direction, confidence=confidence, test=test)
    win, run = int(c.winner), int(c.runner_up)
    role = {win: "winner", run: "runner-up"} if k > 1 else {win: "winner"}
    measured = {win: c.winner_mean, run: c.runner_up_mean}     # over the report seeds
    rows = []
    for i, values in enumerate(chosen):
        sel = select[i][~np.isnan(select[i])]
        rows.append({"config": f"finalist {i + 1}", "values": _key(values),
                     "search_value": search_value.get(_key(values)), "select_n": int(sel.size),
                     "select_score": float(sel.mean()) if sel.size else math.nan, "role": role.get(i, ""),
                     **_summary(report[i] if i in role else np.full(len(st.report), np.nan), st.report,
                                measured.get(i) if i in role else None, confidence)})
    if hand_x is not None:
        rows.append({"config": "hand-picked", "values": _key(dict(hand)), "search_value": None, "select_n": 0,
                     "select_score": math.nan, "role": "hand-picked", **_summary(hand_x, st.report, None, confidence)})
    out.table = pd.DataFrame(rows)
    out.table["winner"] = out.table["role"] == "winner"
    out.winner, out.runner_up = dict(chosen[win]), (dict(chosen[run]) if k > 1 else None)
    if k > 1:
        out.lift = _lift(c.over_runner_up, test)
        if np.isnan(select).all():
            out.notes.append("no finalist has a complete selection trial: the winner is the search's best")
        elif win != 0:
            out.notes.append(f"the best single search run (finalist 1) is not the winner on the selection seeds: "
                             f"finalist {win + 1} has the better mean there")
    out.compare = _lift(c.over_hand, test)
    missing = int(np.isnan(report[win]).sum())
    if missing:
        out.notes.append(f"the winner has {missing} of {len(st.report)} report seed(s) without a complete trial")
    return out


def _key(values: dict) -> str:
    return json.dumps(values, sort_keys=True)


def _search_values(study) -> dict:
    from optuna.trial import TrialState

    out = {}
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        out.setdefault(_key(t.params), t.values[0])
    return out


def _summary(x: np.ndarray, seeds, measured: dict | None, confidence: float) -> dict:
    """n, mean, std and t interval of `x` over the report seeds (`measured`: as the selection
    functions computed them), and each seed's value."""
    if measured is not None:
        fig = {k: np.asarray(measured[k]).item() for k in ("n", "mean", "std", "ci_low", "ci_high")}
        fig["n"] = int(fig["n"])
    else:
        s = stats.summarize(x, confidence=confidence)
        fig = {"n": s.n, "mean": s.mean, "std": s.std, "ci_low": s.ci_low, "ci_high": s.ci_high}
    return {**fig, **{f"seed_{seed}": v for seed, v in zip(seeds, x)}}


def tuned_plan(p: Plan, arm_values: list[dict]) -> TunedPlan:
    return TunedPlan(p.spec, p.arms, p.design, tuple(tuple(sorted(v.items())) for v in arm_values),
                     stage_seeds(p.spec).report)


def pareto_front(study) -> pd.DataFrame:
    """The non-dominated trials of a multi-objective study (empty for one objective)."""
    if not study._is_multi_objective():
        return pd.DataFrame()
    rows = [{"number": t.number, **{f"value_{i}": v for i, v in enumerate(t.values)},
             **{f"param:{k}": v for k, v in t.params.items()}} for t in study.best_trials]
    return pd.DataFrame(rows)


def importances(study) -> pd.DataFrame:
    """Parameter importances by Optuna's default evaluator (PED-ANOVA in Optuna 5) and fANOVA;
    empty when the study has too few complete trials to tell."""
    import optuna.importance as imp

    out = {}
    for name, evaluator in (("default", None), ("fanova", imp.FanovaImportanceEvaluator(seed=0))):
        try:
            kwargs = {"target": (lambda t: t.values[0])} if study._is_multi_objective() else {}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")   # Optuna's notes on few or tied trials
                out[name] = imp.get_param_importances(study, evaluator=evaluator, **kwargs)
        except (ValueError, RuntimeError, ZeroDivisionError):
            continue
    if not out:
        return pd.DataFrame(columns=["param"])
    frame = pd.DataFrame(out)
    frame.index.name = "param"
    return frame.reset_index()
