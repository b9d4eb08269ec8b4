"""A search as a trial source of the engine: asks the Optuna study for up to `jobs` trials at a
time, turns each sample into an ablate Trial (values applied to the recipe / trick parameters and
hashed into the id), and tells the study how each ended, from the store.

Resume: a study trial left RUNNING by a driver that died is marked FAIL with the reason and its
parameters are asked again by the driver that found it; the re-asked sample has the same ablate
trial id, so the engine takes over the dead driver's claim and runs it. A sample whose trial the
store already finished is told from the store and never run again.

Several drivers may share one study (Optuna's distributed pattern, on one SQLite file or a
PostgreSQL store): each study trial records the driver that asked for it, written in the same
transaction that creates the trial (so no other driver ever sees a trial without its driver), and
a RUNNING trial is taken as abandoned only when that driver is gone (its process, on this host) or
the store's claim of its trial has lapsed (another host). Taking an abandoned trial over is a
compare-and-set: of drivers that find it together, one marks it failed and asks it again. `n_trials` counts the study's trials, whichever
driver asked for them, and a driver whose budget is spent waits for the trials others still run
before the validation round, so every driver validates the same finalists.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import json
import math
import time

from ablate.errors import SpecError
from ablate.config.search import trial_values
from ablate.design.search import apply_values
from ablate.store import DONE, holder_is_dead, new_holder
from ablate.design.trial import Trial

if TYPE_CHECKING:  # pragma: no cover
    from ablate.design.plan import Plan
    from ablate.store import Store

REQUEUED = "the driver stopped while this trial ran; its parameters were asked again"
TRIAL_ID_ATTR = "ablate_trial_id"
REASON_ATTR = "ablate_reason"
STATUS_ATTR = "ablate_status"
REQUEUED_ATTR = "ablate_requeued"
DRIVER_ATTR = "ablate_driver"
REQUEUED_FROM_ATTR = "ablate_requeued_from"
OVER_BUDGET_ATTR = "ablate_over_budget"
# a study attribute: the numbers of failed study trials whose values `ablate run --retry-failed`
# asked again (`ablate.search.retry`); like requeued ones they no longer count against n_trials
RETRIED_ATTR = "ablate_retried"
OVER_BUDGET = "not run: another driver sharing the study asked for the last trial of n_trials at the same time"
UNCLAIMED_GRACE_S = 300.0   # a trial asked by a driver on another host and never claimed: abandoned after this
POLL_S = 0.5


def make_trial(p: Plan, arm: int, seed: int, values: dict, *, reason: str, source: str | None = None) -> Trial:
    """The trial of design arm `arm` on `seed` with the searched `values` (dotted paths) applied."""
    spec = p.spec
    a = p.arms[arm]
    settings = {k: spec.tricks[k] for k in a.tricks}
    recipe = spec.recipe
    if spec.trial is None:
        try:
            recipe, settings = apply_values(spec.recipe, settings, values)
        except ValueError as exc:
            raise SpecError(f"the sampled values {values} cannot be applied: {exc}", source=source,
                            path="search.params") from None
    return Trial.create(experiment=spec.name, arm=arm, label=a.label, seed=seed, data=spec.data, model=spec.model,
                        recipe=recipe, tricks=settings.values(), command=spec.trial, values=trial_values(values),
                        origin="search", reason=reason)


class SearchSource:
    """Trials from study `study` for design arm `arm`, on the spec's first seed."""

    def __init__(self, p: Plan, study, *, arm: int = 0, metrics, n_trials: int | None, timeout_s: float | None,
                 jobs: int = 1, pruning: bool = False, source: str | None = None) -> None:
        from ablate.design.search import distributions

        self.plan, self.study, self.arm = p, study, arm
        self.metrics = tuple(metrics)
        self.n_trials, self.timeout_s, self.jobs = n_trials, timeout_s, max(1, jobs)
        self.pruning, self.source = pruning, source
        # Optuna keeps intermediate values for one objective only (and prunes only then)
        self.reporting = len(self.metrics) == 1
        self.dists = distributions(p.spec.search)
        self.seed = p.spec.seeds.values[0]
        self.asked: dict[str, list] = {}      # ablate trial id -> the study trials waiting for it
        self.finished = 0                      # study trials that count against n_trials
        self.deadline: float | None = None
        self.notes: list[str] = []
        self.driver = new_holder()             # who asked: other drivers leave our RUNNING trials alone
        self.reask: list[tuple[dict, int]] = []   # (params, number) of abandoned trials this driver took over

    # -- the engine's protocol ---------------------------------------------------------------

    def next_trials(self, store: Store) -> list[Trial]:
        if self.deadline is None:
            self.deadline = math.inf if self.timeout_s is None else time.monotonic() + self.timeout_s
            self._resume(store)
        self._tell_finished(store)
        if time.monotonic() >= self.deadline:
            self.notes.append(f"search timeout ({self.timeout_s:g} s) reached after {self.finished} trials")
            return []
        if getattr(self.study.sampler, "exhausted", False):
            self.notes.append(f"the grid is exhausted after {self.finished} trials")
            return []
        want = self.jobs if self.n_trials is None else min(self.jobs, self.n_trials - self._used())
        if want <= 0:
            self._wait_for_others(store)
            return []
        batch: list[Trial] = []
        for _ in range(want):
            ot = self._ask()
            if self.n_trials is not None and self._used(up_to=ot.number) > self.n_trials:
                # counting and asking are two steps: drivers asking together may overshoot by one
                # each; the trial with the later number gives way (told failed, not counted)
                ot.set_user_attr(OVER_BUDGET_ATTR, True)
                self._tell(ot.number, "failed", {}, OVER_BUDGET, requeued=True)
                break
            trial = self._trial_of(ot)
            ot.set_user_attr(TRIAL_ID_ATTR, trial.id)
            ot.set_user_attr(DRIVER_ATTR, self.driver)
            first = trial.id not in self.asked
            self.asked.setdefault(trial.id, []).append(ot)
            if first:
                batch.append(trial)
        if not batch and self.n_trials is not None and self._used() >= self.n_trials:
            # this driver's ask went over budget (another driver asked the last trial between
            # its count and its ask): an empty batch ends the engine, so wait here as above, or
            # the finalists would be chosen while that trial still runs
            self._wait_for_others(store)
        return batch

    def should_stop(self, trial: Trial, metrics: dict) -> bool:
        """The engine's Pruner: report the epoch's value to the study (its intermediate values)
        and, when the search prunes, ask its pruner."""
        ots = self.asked.get(trial.id)
        name = self.metrics[0].name
        if not self.reporting or not ots or not isinstance(metrics.get(name), (int, float)):
            return False
        step = int(metrics.get("epoch", 0))
        for ot in ots:
            ot.report(float(metrics[name]), step=step)
        return self.pruning and ots[0].should_prune()

    # -- asking the study --------------------------------------------------------------------

    def _ask(self):
        """Optuna's `Study.ask`, with this driver's name (and, for an abandoned trial this driver
        took over, its parameters) in the template of the new trial, so the trial is created
        with them in one transaction: another driver looking for abandoned trials never sees it
        without its driver. (`Study.ask` creates the trial first and takes no attributes; the
        body below is its own, less the queue of WAITING trials, which ablate does not use.)"""
        import datetime

        import optuna
        from optuna.trial import FrozenTrial, TrialState

        user = {DRIVER_ATTR: self.driver}
        system: dict = {}
        if self.reask:
            params, number = self.reask.pop(0)
            user[REQUEUED_FROM_ATTR] = number
            system["fixed_params"] = params      # what Study.enqueue_trial stores: Trial._suggest takes them
        template = FrozenTrial(number=-1, state=TrialState.RUNNING, value=None, values=None,
                               datetime_start=datetime.datetime.now(), datetime_complete=None, params={},
                               distributions={}, user_attrs=user, system_attrs=system, intermediate_values={},
                               trial_id=-1)
        study = self.study
        study._thread_local.cached_all_trials = None     # as Study.ask: the sampler sees every trial
        trial_id = study._storage.create_new_trial(study._study_id, template_trial=template)
        ot = optuna.Trial(study, trial_id)
        for name, dist in self.dists.items():
            ot._suggest(name, dist)                       # as Study.ask(fixed_distributions)
        return ot

    def _take_over(self, t, store: Store) -> bool:
        """Mark the abandoned study trial `t` failed and re-asked, unless another driver just did
        (then False); this driver asks its parameters again."""
        from ablate.search.study import fail_if_unfinished

        if not fail_if_unfinished(store, t._trial_id, {
                STATUS_ATTR: "fail", REASON_ATTR: REQUEUED, REQUEUED_ATTR: True}):
            return False
        # a WAITING trial (enqueued by `--retry-failed`) has its values in Optuna's "fixed_params"
        params = t.params or t.system_attrs.get("fixed_params") or {}
        self.reask.append((dict(params), t.number))
        return True

    # -- telling the study -------------------------------------------------------------------

    def _trial_of(self, ot) -> Trial:
        values = {k: _plain(v) for k, v in ot.params.items()}
        try:
            return make_trial(self.plan, self.arm, self.seed, values, reason=f"search: study trial {ot.number}",
                              source=self.source)
        except SpecError as exc:
            self._tell(ot.number, "fail", {}, str(exc))
            raise

    def _used(self, up_to: int | None = None) -> int:
        """Study trials that count against `n_trials`: ended or running, by any driver (a trial
        re-asked after its driver died counts once, as its re-asked copy); with `up_to`, only
        those numbered up to it."""
        from optuna.trial import TrialState

        states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING)
        retried = retried_numbers(self.study)
        return sum(1 for t in self.study.get_trials(deepcopy=False, states=states)
                   if not t.user_attrs.get(REQUEUED_ATTR) and t.number not in retried
                   and (up_to is None or t.number <= up_to))

    def _abandoned(self, t, store: Store) -> bool:
        """Whether a RUNNING study trial's driver is gone (see the module docstring)."""
        driver = t.user_attrs.get(DRIVER_ATTR)
        if driver == self.driver:
            return False
        tid = t.user_attrs.get(TRIAL_ID_ATTR)
        row = store.trial_row(self.plan.spec.name, tid) if tid is not None else None
        if row is not None and row["status"] == "running":
            lease = row.get("lease_until")
            return holder_is_dead(row.get("holder")) or lease is None or lease < time.time()
        if driver is None or holder_is_dead(driver):
            return True           # asked by a driver of this host that is gone (or by an older ablate)
        if driver.partition(":")[0] == new_holder().partition(":")[0]:
            return False          # a live driver on this host asked for it and has not claimed it yet
        started = t.datetime_start.timestamp() if t.datetime_start else 0.0
        return time.time() - started > UNCLAIMED_GRACE_S

    def _wait_for_others(self, store: Store) -> None:
        """The budget is spent: wait until the trials other drivers still run have ended (or
        their drivers died), so the finalists are chosen from every trial."""
        from optuna.trial import TrialState

        while True:
            running = [t for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                       if t.user_attrs.get(TRIAL_ID_ATTR) not in self.asked]
            if not running or all(self._abandoned(t, store) for t in running):
                return
            time.sleep(POLL_S)

    def _resume(self, store: Store) -> None:
        from optuna.trial import TrialState

        statuses = store.trial_statuses(self.plan.spec.name)
        retried = retried_numbers(self.study)
        for t in self.study.get_trials(deepcopy=False):
            if t.state == TrialState.RUNNING:
                if not self._abandoned(t, store):
                    continue                                       # a live driver runs it and tells it
                tid = t.user_attrs.get(TRIAL_ID_ATTR)
                if tid is not None and statuses.get(tid) in DONE:
                    self.asked.setdefault(tid, []).append(t)      # finished but not told: tell below
                else:
                    self._take_over(t, store)
            elif t.state == TrialState.WAITING:
                # queued by `--retry-failed` (ablate.search.retry) or an older ablate (Study.enqueue_trial):
                # taken over like an abandoned trial, its values asked again by this driver
                self._take_over(t, store)
            elif not t.user_attrs.get(REQUEUED_ATTR) and t.number not in retried:
                self.finished += 1

    def _tell_finished(self, store: Store) -> None:
        for tid, ots in list(self.asked.items()):
            row = store.trial_row(self.plan.spec.name, tid)
            if row is None or row["status"] not in DONE:
                continue
            metrics = json.loads(row["metrics"]) if row["metrics"] else {}
            for ot in ots:
                self._tell(ot.number, row["status"], metrics, row["error"] or "")
            del self.asked[tid]

    def _tell(self, number: int, status: str, metrics: dict, error: str, *, requeued: bool = False) -> None:
        from optuna.exceptions import UpdateFinishedTrialError
        from optuna.trial import TrialState

        storage, trial_id = self.study._storage, self.study._storage.get_trial_id_from_study_id_trial_number(
            self.study._study_id, number)
        if status == "complete":
            missing = [m.name for m in self.metrics if not isinstance(metrics.get(m.name), (int, float))]
            if missing:
                status, error = "failed", f"the trial did not report {', '.join(missing)}"
        try:
            if status != "complete":      # a complete trial's state says it (one write less per trial)
                storage.set_trial_user_attr(trial_id, STATUS_ATTR, status)
            if error:
                storage.set_trial_user_attr(trial_id, REASON_ATTR, error.strip()[-2000:])
            if requeued:
                storage.set_trial_user_attr(trial_id, REQUEUED_ATTR, True)
            if status == "complete":
                self.study.tell(number, [float(metrics[m.name]) for m in self.metrics], skip_if_finished=True)
            elif status == "pruned" and not self.study._is_multi_objective():
                self.study.tell(number, state=TrialState.PRUNED, skip_if_finished=True)
            else:
                self.study.tell(number, state=TrialState.FAIL, skip_if_finished=True)
        except UpdateFinishedTrialError:
            # another driver ended it first: one resuming after its driver died (which tells it
            # from the store, or asks it again and that copy is told from the store)
            return
        if not requeued:
            self.finished += 1


def retried_numbers(study) -> set[int]:
    """Numbers of the failed study trials `--retry-failed` asked again (`RETRIED_ATTR`)."""
    return set(study.user_attrs.get(RETRIED_ATTR, ()))


def _plain(v):
    """numpy scalars from a sampler as plain Python (hashed and JSON-stored)."""
    return v.item() if hasattr(v, "item") else v
