"""Trial sources: what runs next, from what has finished. The design is a fixed list; adaptive
seeds add the seeds the pilot asks for; an Optuna sampler is one more source."""

from __future__ import annotations

from ablate.plan import Plan
from ablate.store import DONE
from ablate.trial import Trial


class DesignSource:
    """A fixed list of trials (the design), handed out once."""

    def __init__(self, trials) -> None:
        self.trials: list[Trial] = list(trials)
        self.given = False

    def next_trials(self, store) -> list[Trial]:
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

    def next_trials(self, store) -> list[Trial]:
        p = self.plan
        if self.stage == "design":
            self.stage = "leftovers"
            return list(p.trials)
        if self.stage == "leftovers":
            self.stage = "rounds"
            leftovers = self._leftovers(store)
            if leftovers:
                return leftovers
        from ablate.run.experiment import adaptive_requests   # the one place the rule lives

        trials = [p.trial(r.arm, r.seed, origin="adaptive", reason=r.reason) for r in adaptive_requests(p, store)]
        statuses = store.trial_statuses(p.spec.name)
        if all(statuses.get(t.id) in DONE for t in trials):
            return []      # nothing could run (all already done): avoid looping
        return trials

    def _leftovers(self, store) -> list[Trial]:
        from ablate.results import outcomes

        p = self.plan
        out = outcomes(p, store.trials_frame(p.spec.name))
        base = {t.id for t in p.trials}
        return [p.trial(int(a), int(s), origin="adaptive", reason=str(r))
                for a, s, tid, st, r in zip(out["arm"], out["seed"], out["trial_id"], out["status"], out["reason"])
                if tid not in base and st not in DONE]
