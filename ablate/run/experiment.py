"""Run a whole experiment: record the spec, plan, run what is missing, then (optionally) add
seeds adaptively where a lift is still undecided."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from ablate import stats
from ablate.plan import Plan, plan
from ablate.run.common import Progress
from ablate.run.local import RunSummary, run_local
from ablate.spec import Spec, spec_to_dict
from ablate.store import DONE


@dataclass(frozen=True)
class SeedRequest:
    arm: int
    seed: int
    reason: str


def adaptive_requests(p: Plan, store) -> list[SeedRequest]:
    """The next round of adaptive seeds, or [] when every lift is decided or capped.

    An arm gets one more seed while its lift CI straddles 0, the CI half-width is above the
    target, and fewer than `max_seeds` seeds were tried for it. The new seed is shared by all
    arms of the round and added to the baseline too, so every lift stays paired.
    """
    from ablate.report.frames import metric_matrix, outcomes

    policy = p.spec.seeds.adaptive
    if policy is None:
        return []
    out = outcomes(p, store.trials_frame(p.spec.name))
    values, _ = metric_matrix(p, out, p.spec.metric.name)
    tried = out.groupby("arm")["seed"].nunique().to_dict()
    used = set(int(s) for s in out["seed"]) | set(p.seeds)
    new_seed = max(used) + 1
    needy: list[SeedRequest] = []
    for a in p.arms[1:]:
        if tried.get(a.index, 0) >= policy.max_seeds:
            continue
        lift = stats.paired_lift(values[a.index], values[0])
        if lift.n < 2:
            why = f"only {lift.n} paired seed(s), no CI yet"
        else:
            half = (lift.ci_high - lift.ci_low) / 2
            if not (lift.ci_low < 0 < lift.ci_high) or half <= policy.target_half_width:
                continue
            why = (f"lift CI [{lift.ci_low:+.2f}, {lift.ci_high:+.2f}] straddles 0 and its half-width "
                   f"{half:.2f} > {policy.target_half_width}")
        needy.append(SeedRequest(a.index, new_seed, f"adaptive: {why} (n={lift.n})"))
    if needy and np.isnan(values[0, :]).all():
        return []
    if needy:
        arms = ", ".join(str(r.arm) for r in needy)
        needy.insert(0, SeedRequest(0, new_seed, f"adaptive: paired baseline seed for arm(s) {arms}"))
    return needy


def run_experiment(spec: Spec, store, *, source: str | None = None, progress: Progress | None = None,
                   device: str | None = None) -> tuple[Plan, RunSummary]:
    """Save the spec, run every planned trial the store lacks, then adaptive rounds if asked."""
    p = plan(spec)
    # no sort_keys: the order of tricks is the order of a cumulative design
    text = json.dumps(spec_to_dict(spec))
    before = store.experiment(spec.name)
    store.save_experiment(spec.name, text, source)
    store.add_trials(spec.name, list(p.trials))
    summary = RunSummary()
    if before is not None and before["spec"] != text:
        ids = {p.trial_id(a.index, s) for a in p.arms for s in set(store.trial_seeds(spec.name)) | set(p.seeds)}
        stale = sum(1 for tid in store.trial_statuses(spec.name) if tid not in ids)
        summary.notes.append(
            f"the spec of '{spec.name}' changed since it was last run; {stale} stored trial(s) of the old "
            f"version are kept in the store but not reported (unchanged trials are reused)")
    run_local(p.trials, store, progress=progress, device=device, summary=summary)
    if spec.seeds.adaptive is None:
        return p, summary
    # Adaptive trials an earlier, interrupted run added but did not finish come back first.
    from ablate.report.frames import outcomes

    out = outcomes(p, store.trials_frame(spec.name))
    base_ids = {t.id for t in p.trials}
    leftovers = [p.trial(int(a), int(s)) for a, s, tid, st in
                 zip(out["arm"], out["seed"], out["trial_id"], out["status"])
                 if tid not in base_ids and st not in DONE]
    if leftovers:
        run_local(leftovers, store, progress=progress, device=device, summary=summary)
    while True:
        requests = adaptive_requests(p, store)
        if not requests:
            break
        trials = [p.trial(r.arm, r.seed) for r in requests]
        for r, t in zip(requests, trials):
            store.add_trials(spec.name, [t], reason=r.reason)
        before = summary.ran
        run_local(trials, store, progress=progress, device=device, summary=summary)
        if summary.ran == before:
            break   # nothing could run (all already done): avoid looping
    return p, summary
