"""The store: every experiment, trial, epoch and failure, in SQLite (default) or any SQLAlchemy URL.

Tables (prefixed `ablate_` so a shared database stays readable):

- `ablate_meta`: the schema marker; a database without it is not touched;
- `ablate_experiments`: name, the validated spec (JSON), where it came from, timestamps;
- `ablate_trials`: one row per (experiment, trial id): arm, label, seed, why it was added,
  resolved config, status (pending | running | complete | failed | diverged | pruned), error
  text, final metrics, environment (versions, device, git revision), timings, attempts;
- `ablate_epochs`: per-epoch metrics of each trial.

Only the driver process writes. Every state change is its own transaction, so a crash or a
kill leaves finished trials intact; a trial left `running` by a killed driver is simply run
again by the next `ablate run`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import DatabaseError, OperationalError

from ablate.errors import StoreError

SCHEMA = "ablate-store/1"
DONE = ("complete", "diverged")            # final outcomes: never re-run
STATUSES = ("pending", "running", "complete", "failed", "diverged", "pruned")
EPOCH_COLUMNS = ("train_loss", "train_acc", "val_loss", "val_acc", "lr", "images_per_s", "epoch_s")
FINAL_COLUMNS = ("val_acc", "val_loss", "test_acc", "test_loss", "test_top5", "params", "gflops",
                 "peak_mem_mb", "wall_s")

metadata = sa.MetaData()
meta_table = sa.Table("ablate_meta", metadata,
                      sa.Column("key", sa.String(64), primary_key=True),
                      sa.Column("value", sa.Text, nullable=False))
experiments = sa.Table(
    "ablate_experiments", metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("spec", sa.Text, nullable=False),
    sa.Column("source", sa.Text),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("updated", sa.Float, nullable=False),
)
trials = sa.Table(
    "ablate_trials", metadata,
    sa.Column("experiment", sa.String(100), primary_key=True),
    sa.Column("trial_id", sa.String(32), primary_key=True),
    sa.Column("arm", sa.Integer, nullable=False),
    sa.Column("label", sa.Text, nullable=False),
    sa.Column("seed", sa.Integer, nullable=False),
    sa.Column("reason", sa.Text, nullable=False, default="design"),
    sa.Column("config", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, default="pending"),
    sa.Column("error", sa.Text),
    sa.Column("metrics", sa.Text),
    *(sa.Column(c, sa.Float) for c in FINAL_COLUMNS),
    sa.Column("env", sa.Text),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("started", sa.Float),
    sa.Column("finished", sa.Float),
    sa.Index("ix_trials_status", "experiment", "status"),
)
epochs = sa.Table(
    "ablate_epochs", metadata,
    sa.Column("experiment", sa.String(100), primary_key=True),
    sa.Column("trial_id", sa.String(32), primary_key=True),
    sa.Column("epoch", sa.Integer, primary_key=True),
    *(sa.Column(c, sa.Float) for c in EPOCH_COLUMNS),
)


def store_url(target: str | Path) -> str:
    """A SQLAlchemy URL from a URL or a file path."""
    text = str(target)
    if "://" in text:
        return text
    return f"sqlite:///{Path(text).expanduser().resolve()}"


class Store:
    """Open (or, with `create=True`, create) an ablate store.

    Refuses, without writing anything, a database that is not an ablate store, and a missing
    file when `create` is False.
    """

    def __init__(self, target: str | Path, *, create: bool = False) -> None:
        self.url = store_url(target)
        self.label = str(target)
        is_sqlite = self.url.startswith("sqlite")
        if is_sqlite:
            path = self.url.split("///", 1)[1] if "///" in self.url else ""
            if path and path != ":memory:":
                p = Path(path)
                if not p.exists() and not create:
                    raise StoreError(f"store '{target}' does not exist; run an experiment first "
                                     f"(ablate run SPEC --store {target})")
                if p.exists() and p.is_dir():
                    raise StoreError(f"store '{target}' is a directory; give a file path such as "
                                     f"{p / 'ablate.db'}")
                if create:
                    p.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.engine = sa.create_engine(self.url)
        except (sa.exc.ArgumentError, ModuleNotFoundError, sa.exc.NoSuchModuleError) as exc:
            raise StoreError(f"cannot use store '{target}': {exc}; give a file path or a SQLAlchemy "
                             f"URL such as sqlite:///runs.db or postgresql://user@host/db") from None
        if is_sqlite:
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        self._open(create)

    def _open(self, create: bool) -> None:
        try:
            names = set(sa.inspect(self.engine).get_table_names())
        except (DatabaseError, OperationalError) as exc:
            raise StoreError(f"store '{self.label}' is not an ablate database (not a readable "
                             f"database: {exc.orig}); nothing was written to it") from None
        if meta_table.name in names:
            with self.engine.connect() as c:
                row = c.execute(sa.select(meta_table.c.value).where(meta_table.c.key == "schema")).first()
            if row is None or not str(row[0]).startswith("ablate-store/"):
                raise StoreError(f"store '{self.label}' has an ablate_meta table without an ablate "
                                 f"schema marker; nothing was written to it")
            if row[0] != SCHEMA:
                raise StoreError(f"store '{self.label}' uses schema {row[0]}; this ablate reads {SCHEMA}")
            return
        if names:
            shown = ", ".join(sorted(names)[:8])
            raise StoreError(f"store '{self.label}' is not an ablate database: it has tables ({shown}) "
                             f"but no ablate_meta; nothing was written to it. Use another --store path")
        if not create:
            raise StoreError(f"store '{self.label}' is empty (no ablate tables); run an experiment first")
        if self.url.startswith("sqlite"):
            # WAL (persistent in the file): readers such as `ablate status` never block the
            # running driver. Set only on databases ablate creates.
            with self.engine.connect() as c:
                c.exec_driver_sql("PRAGMA journal_mode=WAL")
        metadata.create_all(self.engine)
        with self.engine.begin() as c:
            c.execute(meta_table.insert().values(key="schema", value=SCHEMA))

    # -- experiments ------------------------------------------------------------------------

    def save_experiment(self, name: str, spec_json: str, source: str | None) -> None:
        now = time.time()
        with self.engine.begin() as c:
            row = c.execute(sa.select(experiments.c.name).where(experiments.c.name == name)).first()
            if row is None:
                c.execute(experiments.insert().values(name=name, spec=spec_json, source=source,
                                                      created=now, updated=now))
            else:
                c.execute(experiments.update().where(experiments.c.name == name)
                          .values(spec=spec_json, source=source, updated=now))

    def experiment(self, name: str) -> dict[str, Any] | None:
        with self.engine.connect() as c:
            row = c.execute(sa.select(experiments).where(experiments.c.name == name)).mappings().first()
        return dict(row) if row else None

    def experiment_names(self) -> list[str]:
        with self.engine.connect() as c:
            return [r[0] for r in c.execute(sa.select(experiments.c.name).order_by(experiments.c.created))]

    def status_counts(self) -> dict[str, dict[str, int]]:
        """{experiment: {status: count}} for every experiment."""
        q = sa.select(trials.c.experiment, trials.c.status, sa.func.count()).group_by(
            trials.c.experiment, trials.c.status)
        out: dict[str, dict[str, int]] = {n: {} for n in self.experiment_names()}
        with self.engine.connect() as c:
            for exp, status, n in c.execute(q):
                out.setdefault(exp, {})[status] = n
        return out

    # -- trials -----------------------------------------------------------------------------

    def add_trials(self, experiment: str, planned: list, *, reason: str = "design") -> int:
        """Insert the trials not yet stored, as pending. Returns how many were new."""
        have = set(self.trial_statuses(experiment))
        now = time.time()
        rows = [dict(experiment=experiment, trial_id=t.id, arm=t.arm, label=t.label, seed=t.seed,
                     reason=reason, config=json.dumps(t.config, sort_keys=True), status="pending",
                     attempts=0, created=now)
                for t in planned if t.id not in have]
        if rows:
            with self.engine.begin() as c:
                c.execute(trials.insert(), rows)
        return len(rows)

    def trial_statuses(self, experiment: str) -> dict[str, str]:
        with self.engine.connect() as c:
            q = sa.select(trials.c.trial_id, trials.c.status).where(trials.c.experiment == experiment)
            return {tid: st for tid, st in c.execute(q)}

    def trial_seeds(self, experiment: str) -> list[int]:
        with self.engine.connect() as c:
            q = sa.select(trials.c.seed).where(trials.c.experiment == experiment).distinct()
            return [int(s) for (s,) in c.execute(q)]

    def start_trial(self, experiment: str, trial_id: str, env: dict[str, Any]) -> None:
        """Mark running, count the attempt, and drop epochs a previous attempt left behind."""
        key = _key(experiment, trial_id)
        with self.engine.begin() as c:
            c.execute(epochs.delete().where(epochs.c.experiment == experiment, epochs.c.trial_id == trial_id))
            c.execute(trials.update().where(*key).values(
                status="running", started=time.time(), finished=None, error=None,
                env=json.dumps(env, sort_keys=True), attempts=trials.c.attempts + 1))

    def add_epoch(self, experiment: str, trial_id: str, metrics: dict[str, Any]) -> None:
        row = {c: _num(metrics.get(c)) for c in EPOCH_COLUMNS}
        with self.engine.begin() as c:
            c.execute(epochs.insert().values(experiment=experiment, trial_id=trial_id,
                                             epoch=int(metrics["epoch"]), **row))

    def finish_trial(self, experiment: str, trial_id: str, status: str, *,
                     metrics: dict[str, Any] | None = None, error: str | None = None) -> None:
        if status not in STATUSES:
            raise ValueError(f"unknown trial status '{status}'")
        values: dict[str, Any] = {"status": status, "finished": time.time(), "error": error}
        if metrics is not None:
            values["metrics"] = json.dumps(metrics, sort_keys=True, default=str)
            values.update({c: _num(metrics.get(c)) for c in FINAL_COLUMNS})
        with self.engine.begin() as c:
            c.execute(trials.update().where(*_key(experiment, trial_id)).values(**values))

    def reset_trial(self, experiment: str, trial_id: str, note: str) -> None:
        """Back to pending (e.g. after Ctrl-C), keeping a note of why."""
        with self.engine.begin() as c:
            c.execute(epochs.delete().where(epochs.c.experiment == experiment, epochs.c.trial_id == trial_id))
            c.execute(trials.update().where(*_key(experiment, trial_id)).values(
                status="pending", error=note, finished=time.time()))

    # -- frames for reports ------------------------------------------------------------------

    def trials_frame(self, experiment: str):
        import pandas as pd

        cols = [trials.c[n] for n in ("trial_id", "arm", "label", "seed", "reason", "status", "error",
                                      *FINAL_COLUMNS, "attempts", "started", "finished", "env")]
        q = sa.select(*cols).where(trials.c.experiment == experiment).order_by(trials.c.arm, trials.c.seed)
        with self.engine.connect() as c:
            return pd.read_sql(q, c)

    def epochs_frame(self, experiment: str):
        import pandas as pd

        q = sa.select(epochs.c.trial_id, epochs.c.epoch, *(epochs.c[n] for n in EPOCH_COLUMNS)).where(
            epochs.c.experiment == experiment).order_by(epochs.c.trial_id, epochs.c.epoch)
        with self.engine.connect() as c:
            return pd.read_sql(q, c)

    def delete_trials(self, experiment: str) -> int:
        """Delete every trial of `experiment` and their epochs (for `ablate run --replace`), in
        one transaction; the experiment row stays. Returns how many trials were deleted."""
        with self.engine.begin() as c:
            c.execute(epochs.delete().where(epochs.c.experiment == experiment))
            return c.execute(trials.delete().where(trials.c.experiment == experiment)).rowcount


def _key(experiment: str, trial_id: str):
    return (trials.c.experiment == experiment, trials.c.trial_id == trial_id)


def _num(v: Any) -> float | None:
    if v is None:
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    # Per connection, no writes: NORMAL sync is safe with WAL (a power cut may lose the last
    # commit, never corrupt the file); wait rather than fail when a reader holds a lock.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()
