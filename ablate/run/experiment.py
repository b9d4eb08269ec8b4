"""Run a whole experiment: record the spec, plan, run what is missing through the engine, then
(optionally) add seeds adaptively where a lift is still undecided (`adaptive_requests`: the one
place that rule lives; `AdaptiveSeedSource` calls it)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from ablate import stats
from ablate.plan import Plan, plan
from ablate.run.engine import Engine, RunSummary
from ablate.run.events import Executor
from ablate.run.inprocess import InProcessExecutor
from ablate.run.progress import Progress
from ablate.run.sources import AdaptiveSeedSource, DesignSource
from ablate.errors import AblateError
from ablate.spec import Spec, spec_from_dict, spec_to_dict


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


def executor_for(spec: Spec, *, device: str | None = None, source: str | None = None):
    """The executor a spec asks for: its own command (`trial:`), else the built-in trainer here."""
    if spec.trial is not None:
        from ablate.run.command import CommandExecutor

        return CommandExecutor(spec.trial, source=source)
    return InProcessExecutor(device=device)


def run_experiment(spec: Spec, store, *, source: str | None = None, progress: Progress | None = None,
                   device: str | None = None, executor: Executor | None = None,
                   lease_s: float = 60.0) -> tuple[Plan, RunSummary]:
    """Save the spec, run every planned trial the store lacks, then adaptive rounds if asked.

    Bad input the executor can see (a command or folder that does not exist) is refused before
    anything is written."""
    p = plan(spec)
    executor = executor or executor_for(spec, device=device, source=source)
    executor.check(p.trials)
    # no sort_keys: the order of tricks is the order of a cumulative design
    text = json.dumps(spec_to_dict(spec))
    before = store.experiment(spec.name)
    store.save_experiment(spec.name, text, source)
    summary = RunSummary()
    if before is not None and not _same_spec(before["spec"], text):
        ids = {p.trial_id(a.index, s) for a in p.arms for s in set(store.trial_seeds(spec.name)) | set(p.seeds)}
        stale = sum(1 for tid in store.trial_statuses(spec.name) if tid not in ids)
        summary.notes.append(
            f"the spec of '{spec.name}' changed since it was last run; {stale} stored trial(s) of the old "
            f"version are kept in the store but not reported (unchanged trials are reused)")
    trials = AdaptiveSeedSource(p) if spec.seeds.adaptive is not None else DesignSource(p.trials)
    engine = Engine(store, spec.name, executor, retries=spec.retries, progress=progress,
                    metric=spec.metric.name, metric_source=source or f"spec '{spec.name}'", lease_s=lease_s)
    engine.run(trials, summary)
    return p, summary


def _same_spec(stored: str, text: str) -> bool:
    """Whether a stored spec is this one, also when an older ablate wrote it with fewer keys."""
    if stored == text:
        return True
    try:
        return json.dumps(spec_to_dict(spec_from_dict(json.loads(stored), check_files=False))) == text
    except (AblateError, ValueError):
        return False
