"""The Optuna study of a search (its sampler and pruner: `ablate.design.search`), kept in the store's
own database through Optuna's RDBStorage (same SQLite file or URL), so `optuna.load_study` and
`optuna-dashboard <store URL>` see every trial."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ablate.config.search import SearchConfig
from ablate.design.search import make_pruner, make_sampler

if TYPE_CHECKING:  # pragma: no cover
    from ablate.store import Store


def storage_for(store: Store, *, attempts: int = 5):
    """Optuna's RDBStorage on the store's database (its tables beside ablate's).

    Drivers started together race to create Optuna's tables: the loser's insert of the schema
    version fails on a unique constraint while the winner's tables are already there, so it
    tries again (and then finds them)."""
    import time

    import optuna
    from sqlalchemy.exc import IntegrityError, OperationalError

    kwargs = {"connect_args": {"timeout": 60}} if store.is_sqlite else {}
    for attempt in range(attempts):
        try:
            return optuna.storages.RDBStorage(store.url, engine_kwargs=kwargs)
        except (IntegrityError, OperationalError):
            if attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))


def open_study(store: Store, name: str, search: SearchConfig, directions: list[str], *, pruning: bool):
    """Create or load the study `name`; the sampler is seeded past the trials it already has."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = storage_for(store)
    try:
        have = len(storage.get_all_trials(storage.get_study_id_from_name(name), deepcopy=False))
    except KeyError:
        have = 0
    pruner = make_pruner(search.pruner) if pruning else optuna.pruners.NopPruner()
    return optuna.create_study(storage=storage, study_name=name, sampler=make_sampler(search, seed_offset=have),
                               pruner=pruner, directions=[_optuna_direction(d) for d in directions],
                               load_if_exists=True)


def load_stored_study(store: Store, name: str):
    """The study `name` as stored, or None when the store has none. Nothing is created: neither
    Optuna's tables nor the study (a report reads; only a run writes)."""
    import optuna
    import sqlalchemy as sa

    if not sa.inspect(store.engine).has_table("studies"):     # Optuna's tables: no search has started
        return None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        return optuna.load_study(study_name=name, storage=storage_for(store))
    except KeyError:
        return None


def _optuna_direction(mode: str) -> str:
    return "maximize" if mode == "max" else "minimize"


def fail_if_unfinished(store: Store, trial_id: int, user_attrs: dict) -> bool:
    """Mark the study trial `trial_id` (Optuna's id) FAIL with `user_attrs`, only if it is still
    RUNNING or WAITING; True when this call did it.

    A compare-and-set, in one of the store's write transactions on Optuna's own tables (through
    Optuna's table definitions): Optuna's storage API has none, and two drivers that find the same
    abandoned trial would both fail it and both ask it again (on SQLite, Optuna reads the state
    before its write transaction begins)."""
    import datetime
    import json

    from optuna.storages._rdb.models import TrialModel, TrialUserAttributeModel
    from optuna.trial import TrialState

    from ablate.store_engine import write_transaction

    trials_t, attrs_t = TrialModel.__table__, TrialUserAttributeModel.__table__
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)   # Optuna keeps naive UTC
    with write_transaction(store.engine) as c:
        done = c.execute(trials_t.update().where(
            trials_t.c.trial_id == trial_id, trials_t.c.state.in_([TrialState.RUNNING, TrialState.WAITING]))
            .values(state=TrialState.FAIL, datetime_complete=now))
        if done.rowcount != 1:
            return False
        c.execute(attrs_t.delete().where(attrs_t.c.trial_id == trial_id, attrs_t.c.key.in_(list(user_attrs))))
        c.execute(attrs_t.insert(), [dict(trial_id=trial_id, key=k, value_json=json.dumps(v))
                                     for k, v in user_attrs.items()])
    return True
