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
from ablate.plan import Plan
from ablate.search.finalists import stored_finalists
from ablate.search.source import REASON_ATTR, REQUEUED_ATTR, STATUS_ATTR, TRIAL_ID_ATTR, make_trial, retried_numbers
from ablate.search.space import search_metrics


@dataclass(frozen=True)
class TunedPlan(Plan):
    """The design with each arm's tuned values applied: its trials are the validation trials of a
    per-arm search, so the usual lift table (`ablate.report.frames`) is built over them."""

    arm_values: tuple = ()

    @cached_property
    def _tuned(self) -> dict:
        return {}

    def _trial_of(self, arm: int, seed: int):
        key = (arm, seed)
        if key not in self._tuned:
            self._tuned[key] = make_trial(self, arm, seed, dict(self.arm_values[arm]), reason="validation: finalist 1")
        return self._tuned[key]

    def trial_id(self, arm: int, seed: int) -> str:
        return self._trial_of(arm, seed).id

    def trial(self, arm: int, seed: int, *, experiment=None, origin="search", reason="validation"):
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


def _seed_values(p, store_frame: pd.DataFrame, arm: int, values: dict, metric: str) -> np.ndarray:
    """`metric` of `values` on every seed of the spec (NaN where not complete)."""
    by_id = store_frame.set_index("trial_id")
    out = []
    for s in p.spec.seeds.values:
        tid = make_trial(p, arm, s, values, reason="").id
        ok = tid in by_id.index and by_id.at[tid, "status"] == "complete" and metric in by_id.columns
        out.append(float(pd.to_numeric(by_id.at[tid, metric], errors="coerce")) if ok else math.nan)
    return np.array(out)


@dataclass
class Finalists:
    arm: int
    metric: str
    direction: str
    table: pd.DataFrame                     # one row per finalist (and the hand-picked values)
    winner: dict | None
    lift: stats.PairedLift | None           # winner - runner-up, paired over seeds
    compare: stats.PairedLift | None        # winner - hand-picked, paired over seeds
    notes: list[str] = field(default_factory=list)


def finalists(p, store_frame: pd.DataFrame, study, *, arm: int = 0, confidence: float = 0.95) -> Finalists:
    """The finalists over the spec's seeds; the winner on the seed mean (not its search score)."""
    metric = search_metrics(p.spec)[0]
    sign = 1.0 if metric.direction == "max" else -1.0
    chosen = stored_finalists(study)
    search_value = _search_values(study)
    rows, seeds = [], []
    for rank, values in enumerate(chosen, 1):
        x = _seed_values(p, store_frame, arm, values, metric.name)
        seeds.append(x)
        rows.append(_row(f"finalist {rank}", values, x, confidence, search_value.get(_key(values))))
    hand = p.spec.search.compare_to
    hand_x = _seed_values(p, store_frame, arm, dict(hand), metric.name) if hand else None
    table = pd.DataFrame(rows)
    out = Finalists(arm, metric.name, metric.direction, table, None, None, None)
    if not rows:
        out.notes.append("no finalists: the search has no complete trial")
        return out
    means = np.array([np.nanmean(x) if np.isfinite(x).any() else np.nan for x in seeds])
    if np.isnan(means).all():
        out.notes.append("the finalists have no complete validation trial yet")
        return out
    order = np.argsort(-sign * np.where(np.isnan(means), -sign * np.inf, means), kind="stable")
    best = int(order[0])
    table["winner"] = [i == best for i in range(len(rows))]
    table["rank_by_mean"] = np.argsort(order) + 1
    out.winner = dict(chosen[best])
    if len(rows) > 1:
        out.lift = stats.paired_lift(seeds[best], seeds[int(order[1])], confidence=confidence)
        if best != 0:
            out.notes.append(f"the best single search run (finalist 1) is not the winner over seeds: finalist "
                             f"{best + 1} has the better seed mean")
    if hand_x is not None:
        table = pd.concat([table, pd.DataFrame([_row("hand-picked", dict(hand), hand_x, confidence, None)])],
                          ignore_index=True)
        out.compare = stats.paired_lift(seeds[best], hand_x, confidence=confidence)
    out.table = table
    return out


def _key(values: dict) -> str:
    return json.dumps(values, sort_keys=True)


def _search_values(study) -> dict:
    from optuna.trial import TrialState

    out = {}
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        out.setdefault(_key(t.params), t.values[0])
    return out


def _row(name: str, values: dict, x: np.ndarray, confidence: float, search_value) -> dict:
    s = stats.summarize(x, confidence=confidence)
    return {"config": name, "values": _key(values), "search_value": search_value, "n": s.n, "mean": s.mean,
            "std": s.std, "ci_low": s.ci_low, "ci_high": s.ci_high,
            **{f"seed_{i}": v for i, v in enumerate(x)}}


def tuned_plan(p: Plan, arm_values: list[dict]) -> TunedPlan:
    return TunedPlan(p.spec, p.arms, p.design, tuple(tuple(sorted(v.items())) for v in arm_values))


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
