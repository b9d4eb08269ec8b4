"""The store on PostgreSQL (a throwaway server, tests/pg.py): what SQLite forgave (lengths, 32-bit
integers, NUL characters, identifiers over 63 characters), many drivers at once (schema creation,
planning, claims), and a database shared with an Optuna study."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from ablate.errors import StoreError
from ablate.design.plan import plan
from ablate.store import Store
from ablate.design.trial import Trial
from tests.conftest import tiny_spec


def _together(n: int, work):
    """Run `work(i)` in `n` threads released at the same moment; their results (or errors)."""
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def run(i):
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as exc:  # noqa: BLE001 -- reported by the test
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


# -- what SQLite forgave -----------------------------------------------------------------------

def test_seeds_up_to_the_spec_limit_are_kept(store_target):
    from ablate.config.sections import MAX_SEED_VALUE

    spec = tiny_spec(seeds=[0, MAX_SEED_VALUE])
    store = Store(store_target, create=True)
    trials = list(plan(spec).trials)
    store.add_trials("tiny", trials)
    assert sorted(store.trial_seeds("tiny")) == [0, MAX_SEED_VALUE]
    assert MAX_SEED_VALUE in set(store.trials_frame("tiny").seed)


def test_long_metric_names_are_kept_whole(store_target):
    store = Store(store_target, create=True)
    t = plan(tiny_spec()).trials[0]
    store.add_trials("tiny", [t])
    store.start_trial("tiny", t.id, {})
    long_a = "validation/" + "a" * 60 + "/top1"            # over PostgreSQL's 63-character identifiers
    long_b = "validation/" + "a" * 60 + "/top5"            # the same first 63 characters as long_a
    longest = "m" * 300                                     # over the 100 the first schema declared
    store.add_epoch("tiny", t.id, {"epoch": 1, long_a: 1.0, long_b: 2.0, longest: 3.0})
    store.finish_trial("tiny", t.id, "complete", metrics={"val_acc": 5.0, long_a: 4.0, long_b: 6.0, longest: 7.0})
    epochs = store.epochs_frame("tiny").iloc[0]
    assert (epochs[long_a], epochs[long_b], epochs[longest]) == (1.0, 2.0, 3.0)
    row = store.trials_frame("tiny").iloc[0]
    assert (row[long_a], row[long_b], row[longest], row.val_acc) == (4.0, 6.0, 7.0, 5.0)


def test_errors_with_nul_characters_are_kept(store_target):
    store = Store(store_target, create=True)
    t = plan(tiny_spec()).trials[0]
    store.add_trials("tiny", [t])
    store.start_trial("tiny", t.id, {})
    assert store.finish_trial("tiny", t.id, "failed", error="binary junk \x00\x01 from a command", kind="error")
    row = store.trial_row("tiny", t.id)
    assert row["status"] == "failed" and row["error"].startswith("binary junk ") and "command" in row["error"]
    assert "junk" in store.attempts_frame("tiny").error.iloc[0]
    store.reset_trial("tiny", t.id, "note \x00 too")


def test_special_floats_and_big_integers_in_metrics(store_target):
    store = Store(store_target, create=True)
    t = plan(tiny_spec()).trials[0]
    store.add_trials("tiny", [t])
    store.start_trial("tiny", t.id, {})
    store.add_epoch("tiny", t.id, {"epoch": 1, "train_loss": float("nan"), "grad": float("inf")})
    store.finish_trial("tiny", t.id, "complete", metrics={"val_acc": 1.0, "params": 10 ** 12, "flops": 2 ** 70,
                                                            "lost": float("-inf")})
    row = store.trials_frame("tiny").iloc[0]
    assert row.params == 1e12 and row.flops == float(2 ** 70) and row.lost == float("-inf")
    assert store.trial_row("tiny", t.id)["metrics"] == '{"flops": 1180591620717411303424, "lost": -Infinity, ' \
                                                        '"params": 1000000000000, "val_acc": 1.0}'
    epoch = store.epochs_frame("tiny").iloc[0]
    assert epoch.train_loss != epoch.train_loss and epoch.grad == float("inf")


def test_many_epochs_of_many_metrics_come_back_as_one_wide_frame(store_target):
    store = Store(store_target, create=True)
    trials = list(plan(tiny_spec()).trials)[:2]
    store.add_trials("tiny", trials)
    names = [f"layer{j}.grad_norm" for j in range(40)]
    for k, t in enumerate(trials):
        store.start_trial("tiny", t.id, {})
        for epoch in range(1, 26):
            store.add_epoch("tiny", t.id, {"epoch": epoch, **{n: k * 1e4 + epoch * 100 + j for j, n in enumerate(names)}})
    frame = store.epochs_frame("tiny")
    assert len(frame) == 50 and set(names) <= set(frame.columns)
    row = frame[(frame.trial_id == trials[1].id) & (frame.epoch == 17)].iloc[0]
    assert [row[n] for n in names] == [1e4 + 1700 + j for j in range(40)]


# -- many drivers at once ----------------------------------------------------------------------

def test_drivers_creating_one_store_at_once_all_succeed(pg_url):
    results = _together(6, lambda i: Store(pg_url, create=True))
    assert all(isinstance(r, Store) for r in results), results
    with results[0].engine.connect() as c:
        assert c.exec_driver_sql("SELECT value FROM ablate_meta").all() == [("ablate-store/2",)]


@pytest.mark.parametrize("default_isolation", ["read committed", "repeatable read"])
def test_drivers_planning_one_experiment_at_once_store_each_trial_once(pg_url, default_isolation):
    engine = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as c:     # a database whose administrator chose another default
        database = sa.engine.make_url(pg_url).database
        c.exec_driver_sql(f"ALTER DATABASE {database} SET default_transaction_isolation = '{default_isolation}'")
    engine.dispose()
    Store(pg_url, create=True)
    spec = tiny_spec()
    trials = list(plan(spec).trials)
    stores = [Store(pg_url) for _ in range(6)]

    def work(i):
        stores[i].save_experiment("tiny", "{}", None)
        return stores[i].add_trials("tiny", trials)

    results = _together(6, work)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sum(results) == len(trials), "each trial inserted by exactly one driver"
    assert len(stores[0].trial_statuses("tiny")) == len(trials)


def test_exactly_one_of_many_drivers_claims_a_trial(pg_url):
    Store(pg_url, create=True)
    stores = [Store(pg_url) for _ in range(8)]
    trials: list[Trial] = list(plan(tiny_spec()).trials)
    stores[0].add_trials("tiny", trials)
    for t in trials:
        won = _together(8, lambda i: stores[i].claim("tiny", t.id, f"elsewhere:{i}:x", lease_s=60))
        assert won.count(True) == 1 and won.count(False) == 7, won


# -- a database shared with an Optuna study ----------------------------------------------------

def test_a_database_holding_an_optuna_study_takes_the_store_and_keeps_the_study(store_target):
    import optuna

    from ablate.store import store_url

    url = store_url(store_target)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="shared", storage=url)
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2)
    store = Store(store_target, create=True)
    t = plan(tiny_spec()).trials[0]
    store.add_trials("tiny", [t])
    store.start_trial("tiny", t.id, {})
    store.finish_trial("tiny", t.id, "complete", metrics={"val_acc": 1.0})
    again = optuna.load_study(study_name="shared", storage=url)
    again.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=1)
    assert len(again.trials) == 3
    second = optuna.create_study(study_name="after the store", storage=url)    # and the other way round
    second.optimize(lambda trial: trial.suggest_float("y", 0, 1), n_trials=1)
    assert Store(store_target).trial_statuses("tiny") == {t.id: "complete"}


def test_a_database_with_tables_that_are_not_optunas_is_still_refused(pg_url):
    engine = sa.create_engine(pg_url)
    with engine.begin() as c:
        c.exec_driver_sql("CREATE TABLE invoices (x INTEGER)")
    engine.dispose()
    with pytest.raises(StoreError, match="not an ablate database.*invoices"):
        Store(pg_url, create=True)
    engine = sa.create_engine(pg_url)
    assert sa.inspect(engine).get_table_names() == ["invoices"], "nothing was written"
    engine.dispose()


def test_without_postgresql_the_tests_skip_with_the_reason_unless_required(monkeypatch):
    import tests.pg as pg

    monkeypatch.setattr(pg, "pg_bin_dir", lambda: None)
    monkeypatch.delenv("ABLATE_REQUIRE_POSTGRES", raising=False)
    with pytest.raises(pytest.skip.Exception, match="PostgreSQL is not installed"):
        pg.start_server_or_skip()
    monkeypatch.setenv("ABLATE_REQUIRE_POSTGRES", "1")
    with pytest.raises(pytest.fail.Exception, match="ABLATE_REQUIRE_POSTGRES=1 but PostgreSQL is not installed"):
        pg.start_server_or_skip()


def test_a_store_made_with_the_narrow_columns_of_earlier_versions_is_widened_on_open(pg_url):
    from ablate.config.sections import MAX_SEED_VALUE

    store = Store(pg_url, create=True)
    with store.engine.begin() as c:    # as ablate before this version created them
        c.exec_driver_sql("ALTER TABLE ablate_trials ALTER COLUMN seed TYPE INTEGER")
        for table in ("ablate_epoch_metrics", "ablate_final_metrics"):
            c.exec_driver_sql(f"ALTER TABLE {table} ALTER COLUMN name TYPE VARCHAR(100)")
    store.engine.dispose()
    store = Store(pg_url)
    t = plan(tiny_spec(seeds=[MAX_SEED_VALUE])).trials[0]
    store.add_trials("tiny", [t])
    store.start_trial("tiny", t.id, {})
    store.finish_trial("tiny", t.id, "complete", metrics={"val_acc": 1.0, "x" * 150: 2.0})
    assert store.trial_seeds("tiny") == [MAX_SEED_VALUE] and store.trials_frame("tiny").iloc[0]["x" * 150] == 2.0


def test_a_store_of_the_first_release_on_postgresql_is_migrated(pg_url):
    from tests.store.test_store import V1_DDL

    engine = sa.create_engine(pg_url)
    with engine.begin() as c:
        for statement in filter(str.strip, V1_DDL.split(";")):
            c.exec_driver_sql(statement)
        c.exec_driver_sql("INSERT INTO ablate_experiments VALUES ('tiny', '{}', NULL, 1.0, 1.0)")
        c.exec_driver_sql(
            "INSERT INTO ablate_trials (experiment, trial_id, arm, label, seed, reason, config, status, metrics, "
            "val_acc, env, attempts, created, started, finished) VALUES ('tiny', 'abc', 0, 'base', 0, 'design', "
            "'{}', 'complete', '{\"val_acc\": 77.0}', 77.0, '{}', 1, 1.0, 2.0, 3.0)")
        c.exec_driver_sql(
            "INSERT INTO ablate_epochs (experiment, trial_id, epoch, val_acc) VALUES ('tiny', 'abc', 1, 70.0)")
    engine.dispose()
    store = Store(pg_url)
    with store.engine.connect() as c:
        assert c.exec_driver_sql("SELECT value FROM ablate_meta").scalar() == "ablate-store/2"
    assert store.trials_frame("tiny").val_acc.tolist() == [77.0]
    assert store.epochs_frame("tiny").val_acc.tolist() == [70.0]
    assert store.attempts_frame("tiny").status.tolist() == ["complete"]


def test_a_user_without_the_create_privilege_gets_a_clear_error_and_nothing_is_written(pg_url):
    engine = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as c:     # PostgreSQL 15's default: only the owner creates in schema public
        c.exec_driver_sql("DROP ROLE IF EXISTS reader")
        c.exec_driver_sql("CREATE ROLE reader LOGIN PASSWORD 'reader-pw-99'")
        c.exec_driver_sql("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    limited = sa.engine.make_url(pg_url).set(username="reader", password="reader-pw-99")
    with pytest.raises(StoreError, match=r"cannot create the ablate tables.*permission denied.*GRANT CREATE ON "
                                         r"SCHEMA public TO reader") as err:
        Store(limited.render_as_string(hide_password=False), create=True)
    assert "reader-pw-99" not in str(err.value)
    assert sa.inspect(engine).get_table_names() == [], "nothing was written"
    engine.dispose()
