"""After the search: which configurations are finalists, and the trials of the stages that follow.

The top-k distinct configurations of a study are the finalists. They run on the selection seeds
(`select_trials`), where the best mean chooses the winner and the runner-up (`chosen_order`,
from the stored results, so every driver and every resumed run chooses the same); the winner, the
runner-up and the hand-picked values (`compare_to`) then run on the report seeds
(`report_trials`), which the report is measured on (`ablate.design.stages`). The finalists are
kept in the study's user attributes, so a report names the same ones the run chose from.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import json
import math

import numpy as np
import pandas as pd

from ablate.search.selection import finalist_order, search_order
from ablate.search.source import make_trial

if TYPE_CHECKING:  # pragma: no cover
    from ablate.design.plan import Plan

FINALISTS_ATTR = "ablate_finalists"


def top_configurations(study, metrics, k: int) -> list[dict]:
    """The values of the best `k` distinct configurations (one metric: by value, ties in trial
    order; several: the Pareto front, in trial order, up to k)."""
    from optuna.trial import TrialState

    done = sorted(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)), key=lambda t: t.number)
    if len(metrics) > 1:
        ranked = study.best_trials
    else:
        order = search_order([t.values[0] for t in done], direction=metrics[0].direction) if done else []
        ranked = [done[i] for i in order]
    out, seen = [], set()
    for t in ranked:
        key = json.dumps(t.params, sort_keys=True)
        if key in seen:
            continue
        seen.add(key)
        out.append(dict(t.params))
        if len(out) == k:
            break
    return out


def record_finalists(study, finalists: list[dict]) -> None:
    study.set_user_attr(FINALISTS_ATTR, finalists)


def stored_finalists(study) -> list[dict]:
    return list(study.user_attrs.get(FINALISTS_ATTR, []))


def select_trials(p: Plan, arm: int, finalists: list[dict], seeds, *, source=None) -> list:
    """Every finalist on every selection seed (paired): what chooses the winner."""
    return [make_trial(p, arm, s, values, reason=f"select: finalist {rank}", source=source)
            for rank, values in enumerate(finalists, 1) for s in seeds]


def report_trials(p: Plan, arm: int, finalists: list[dict], order, compare_to: dict | None, seeds, *,
                  source=None) -> list:
    """The winner, the runner-up and the hand-picked values on every report seed (paired)."""
    roles = [("winner", finalists[order[0]])]
    if len(finalists) > 1:
        roles.append(("runner-up", finalists[order[1]]))
    if compare_to:
        roles.append(("hand-picked", dict(compare_to)))
    out, ids = [], set()
    for role, values in roles:
        for s in seeds:
            t = make_trial(p, arm, s, values, reason=f"report: {role}", source=source)
            if t.id not in ids:      # hand-picked values equal to the winner's: one trial
                ids.add(t.id)
                out.append(t)
    return out


def stage_values(p: Plan, store_frame: pd.DataFrame, arm: int, values: dict, metric: str, seeds) -> np.ndarray:
    """`metric` of configuration `values` on each of `seeds` (NaN where not complete)."""
    by_id = store_frame.set_index("trial_id") if len(store_frame) else store_frame
    out = []
    for s in seeds:
        tid = make_trial(p, arm, s, values, reason="").id
        ok = (len(by_id) and tid in by_id.index and by_id.at[tid, "status"] == "complete"
              and metric in by_id.columns)
        out.append(float(pd.to_numeric(by_id.at[tid, metric], errors="coerce")) if ok else math.nan)
    return np.array(out, dtype=float)


def chosen_order(p: Plan, store_frame: pd.DataFrame, arm: int, finalists: list[dict], seeds, metric) -> np.ndarray:
    """The finalists ranked by their stored mean over the selection seeds `seeds` (the search's
    order when none completed): entry 0 is the winner, entry 1 the runner-up."""
    select = np.array([stage_values(p, store_frame, arm, v, metric.name, seeds) for v in finalists])
    return finalist_order(select.reshape(len(finalists), len(seeds)), direction=metric.direction)
