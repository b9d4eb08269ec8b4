"""Trial sources: what runs next, from what has finished. The design is a fixed list; adaptive
seeds add the seeds the pilot asks for (`adaptive_requests`: the one place that rule is
applied); an Optuna sampler is one more source (`ablate.search.source`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dataclasses import dataclass

import numpy as np

from ablate import stats
from ablate.design.plan import Plan
from ablate.design.trial import Trial
from ablate.results import metric_matrix, outcomes
from ablate.store import DONE

if TYPE_CHECKING:  # pragma: no cover
    from ablate.store import Store


class DesignSource:
    """A fixed list of trials (the design), handed out once."""

    def __init__(self, trials) -> None:
        self.trials: list[Trial] = list(trials)
        self.given = False

    def next_trials(self, store: Store) -> list[Trial]:
        if self.given:
            return []
        self.given = True
        return list(self.trials)


class AdaptiveSeedSource:
    """The design (the pilot); then adaptive trials an interrupted run added but did not finish;
    then the seeds `adaptive_requests` asks for, every arm's at once; then nothing (once they are
    all finished, the same request comes back done and the source stops)."""

    def __init__(self, p: Plan) -> None:
        self.plan = p
        self.stage = "design"

    def next_trials(self, store: Store) -> list[Trial]:
        p = self.plan
        if self.stage == "design":
            self.stage = "leftovers"
            return list(p.trials)
        if self.stage == "leftovers":
            self.stage = "rounds"
            leftovers = self._leftovers(store)
            if leftovers:
                return leftovers
        trials = [p.trial(r.arm, r.seed, origin="adaptive", reason=r.reason) for r in adaptive_requests(p, store)]
        statuses = store.trial_statuses(p.spec.name)
        if all(statuses.get(t.id) in DONE for t in trials):
            return []      # nothing could run (all already done): avoid looping
        return trials

    def _leftovers(self, store: Store) -> list[Trial]:
        p = self.plan
        out = outcomes(p, store.trials_frame(p.spec.name))
        base = {t.id for t in p.trials}
        return [p.trial(int(a), int(s), origin="adaptive", reason=str(r))
                for a, s, tid, st, r in zip(out["arm"], out["seed"], out["trial_id"], out["status"], out["reason"])
                if tid not in base and st not in DONE]


@dataclass(frozen=True)
class SeedRequest:
    arm: int
    seed: int
    reason: str


def adaptive_requests(p: Plan, store: Store) -> list[SeedRequest]:
    """The adaptive trials still to run, all at once: [] when the pilot needs no more seeds, they
    have all finished, or there are no lifts.

    The spec's seeds are the pilot. `stats.pilot_seed_count` turns their paired differences,
    pooled over every arm and blind to the lifts' signs, into one seed count n; every arm,
    baseline included, then runs the next n - pilot seeds, so every lift stays paired on the
    same seeds. Only the pilot seeds enter the rule: a rerun asks for the same seeds.
    """
    policy = p.spec.seeds.adaptive
    if policy is None or len(p.arms) < 2:
        return []
    out = outcomes(p, store.trials_frame(p.spec.name))
    values, seeds = metric_matrix(p, out, p.spec.metric.name)
    pilot = np.isin(seeds, p.seeds)
    diffs = values[1:][:, pilot] - values[0, pilot]
    n = int(stats.pilot_seed_count(diffs, max_seeds=policy.max_seeds, target_half_width=policy.target_half_width))
    extra = [max(p.seeds) + 1 + i for i in range(n - len(p.seeds))]
    if not extra:
        return []
    pairs = int(np.sum(~np.isnan(diffs)))
    sd = float(stats.pilot_sd(diffs))
    why = (f"adaptive: pilot RMS paired difference {sd:.3g} over {pairs} pair(s) -> {n} seeds per arm "
           f"for a lift CI of about ±{policy.target_half_width}" if pairs else
           f"adaptive: no pilot pair completed -> max_seeds = {n} seeds per arm")
    finished = store.trial_statuses(p.spec.name)
    return [SeedRequest(a.index, s, why) for s in extra for a in p.arms
            if finished.get(p.trial_id(a.index, s)) not in DONE]
