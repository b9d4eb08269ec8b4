"""The study side of `ablate run --retry-failed` on a search: a failed study trial whose ablate
trial the store put back to pending gets its values asked again.

Optuna never runs a finished trial again, and a finished trial's attributes cannot change. So
each such trial's values are enqueued (the next `ask` returns them: the same ablate trial id,
which the engine then runs), and its number is added to the study's `RETRIED_ATTR` list, which
keeps it out of the `n_trials` count (`SearchSource._used`) and out of `ablate status`'s counts
(`frames.history` marks it like a requeued trial). The failed trial itself stays in the study.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ablate.search.runner import open_arm_study, searched_arms
from ablate.search.source import OVER_BUDGET_ATTR, REQUEUED_ATTR, RETRIED_ATTR, TRIAL_ID_ATTR, retried_numbers

if TYPE_CHECKING:  # pragma: no cover
    from ablate.design.plan import Plan
    from ablate.store import Store


def retry_failed_study_trials(p: Plan, store: Store, trial_ids) -> int:
    """Ask again the values of every failed study trial of `trial_ids` (ablate trial ids put back
    to pending); returns how many study trials were enqueued."""
    from optuna.trial import TrialState

    ids = set(trial_ids)
    enqueued = 0
    for arm in searched_arms(p):
        study = open_arm_study(p, store, arm)
        retried = retried_numbers(study)
        new = []
        for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
            if t.number in retried or t.user_attrs.get(REQUEUED_ATTR) or t.user_attrs.get(OVER_BUDGET_ATTR):
                continue
            if t.user_attrs.get(TRIAL_ID_ATTR) in ids:
                study.enqueue_trial(t.params, user_attrs={"ablate_retry_of": t.number})
                new.append(t.number)
        if new:
            study.set_user_attr(RETRIED_ATTR, sorted(retried | set(new)))
            enqueued += len(new)
    return enqueued
