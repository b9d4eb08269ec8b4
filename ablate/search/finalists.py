"""After the search: which configurations are finalists, and the trials that re-run them.

The validation round re-runs the top-k distinct configurations of a study over the spec's seeds
(the same seed values for every finalist, so the comparisons are paired); the winner is the one
with the best seed mean, not the best single run. `compare_to` (hand-picked values) runs on the
same seeds. The finalists are kept in the study's user attributes, so a report names the same
ones the run validated.
"""

from __future__ import annotations

import json

from ablate.search.source import make_trial

FINALISTS_ATTR = "ablate_finalists"


def top_configurations(study, metrics, k: int) -> list[dict]:
    """The values of the best `k` distinct configurations (one metric: by value; several: the
    Pareto front, in trial order, up to k)."""
    from optuna.trial import TrialState

    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    if len(metrics) > 1:
        ranked = study.best_trials
    else:
        sign = -1.0 if metrics[0].direction == "max" else 1.0
        ranked = sorted(done, key=lambda t: (sign * t.values[0], t.number))
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


def validation_trials(p, arm: int, finalists: list[dict], compare_to: dict | None, *, source=None):
    """Every finalist (and the hand-picked values) on every seed of the spec, paired."""
    out = []
    for rank, values in enumerate(finalists, 1):
        out += [make_trial(p, arm, s, values, reason=f"validation: finalist {rank}", source=source)
                for s in p.spec.seeds.values]
    if compare_to:
        out += [make_trial(p, arm, s, dict(compare_to), reason="validation: hand-picked", source=source)
                for s in p.spec.seeds.values]
    return out
