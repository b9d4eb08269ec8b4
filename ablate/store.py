"""The store: every experiment, trial, attempt and metric, in SQLite (default) or any SQLAlchemy URL.

Tables (prefixed `ablate_` so a shared database stays readable; schema `ablate-store/2`):

- `ablate_meta`: the schema marker; a database without it is not touched;
- `ablate_experiments`: name, the validated spec (JSON), where it came from, timestamps;
- `ablate_trials`: one row per (experiment, trial id): arm, label, seed, why it was added,
  resolved config, status, the last error and its kind, final metrics (JSON), environment,
  attempts, and the claim (holder and lease) of the driver running it;
- `ablate_attempts`: every attempt of every trial, with its outcome, failure kind and error (and
  a `requeued` row where `ablate run --retry-failed` put a failed trial back to pending);
- `ablate_epoch_metrics` / `ablate_final_metrics`: any numeric metric a trial reports, long
  format (one row per name), so a metric the code never heard of is kept too.

Statuses: pending -> running -> complete | diverged | pruned | failed, all four final (a failed
attempt the retry policy allows goes back to pending instead). Every state change is its own
transaction, so a crash or a kill leaves finished trials intact. Many drivers may share one
store: a driver runs a trial only after claiming it (a conditional update), keeps its lease
alive by heartbeat, and a claim whose lease ran out, or whose holder process is gone from this
host, may be taken over.
"""

from __future__ import annotations

import json
import math
import os
import socket
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import DatabaseError, OperationalError

from ablate.errors import StoreError
from ablate.store_engine import (
    connect_error,
    display_name,
    make_engine,
    sqlite_pragmas,
    store_url,
    watch_faults,
    write_transaction,
)
from ablate.store_schema import (
    FINAL,
    OLD_SCHEMAS,
    OPTUNA_TABLES,
    SCHEMA,
    STATUSES,
    attempts,
    columns_to_widen,
    create_schema,
    epoch_metrics,
    experiments,
    final_metrics,
    meta_table,
    migrate,
    trials,
    widen_server_columns,
)

DONE = FINAL                              # kept for callers of the first release
REQUEUED = "requeued"                     # an attempt row marking `retry_failed` (not a run)
EPOCH_COLUMNS = ("train_loss", "train_acc", "val_loss", "val_acc", "lr", "images_per_s", "epoch_s")
FINAL_COLUMNS = ("val_acc", "val_loss", "test_acc", "test_loss", "test_top5", "params", "gflops",
                 "peak_mem_mb", "wall_s")
_TRIAL_COLUMNS = ("trial_id", "arm", "label", "seed", "reason", "status", "kind", "error", "attempts",
                  "started", "finished", "env")


def new_holder() -> str:
    """A claim holder's name: host and pid (to tell a dead local holder) and a random tag."""
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(4).hex()}"


def holder_is_dead(holder: str | None) -> bool:
    """True when `holder` ran on this host and its process is gone (its lease may not be out yet)."""
    if not holder:
        return True
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class Store:
    """Open (or, with `create=True`, create) an ablate store.

    Refuses, without writing anything, a database that is not an ablate store (tables of an
    Optuna study beside it are fine), a missing file when `create` is False, and a server that
    cannot be reached. A store of an older schema is migrated in one transaction. `label` names
    the store in messages: the path, or the URL without its password.
    """

    def __init__(self, target: str | Path, *, create: bool = False) -> None:
        self.url = store_url(target)
        self.label = display_name(target)
        self.is_sqlite = self.url.startswith("sqlite")
        self.path: Path | None = None          # a SQLite store's file
        self._file_id: tuple[int, int] | None = None
        if self.is_sqlite:
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
                    _create_private(p)
                self.path = p
        self.engine = make_engine(self.url, self.label)
        if self.is_sqlite:
            sa.event.listen(self.engine, "connect", sqlite_pragmas)
        watch_faults(self.url, self.label)
        self._open(create)
        if self.path is not None:
            st = self.path.stat()
            self._file_id = (st.st_dev, st.st_ino)

    def _open(self, create: bool) -> None:
        try:
            names = set(sa.inspect(self.engine).get_table_names())
        except (DatabaseError, OperationalError) as exc:
            if not self.is_sqlite:
                raise connect_error(self.url, self.label, exc) from None
            raise StoreError(f"store '{self.label}' is not an ablate database (not a readable "
                             f"database: {exc.orig}); nothing was written to it") from None
        if meta_table.name in names:
            with self.engine.connect() as c:
                row = c.execute(sa.select(meta_table.c.value).where(meta_table.c.key == "schema")).first()
            if row is None or not str(row[0]).startswith("ablate-store/"):
                raise StoreError(f"store '{self.label}' has an ablate_meta table without an ablate "
                                 f"schema marker; nothing was written to it")
            if row[0] in OLD_SCHEMAS:
                with self._write() as c:
                    migrate(c)
            elif row[0] != SCHEMA:
                raise StoreError(f"store '{self.label}' uses schema {row[0]}; this ablate reads {SCHEMA} "
                                 f"(and migrates {', '.join(OLD_SCHEMAS)}); use a newer ablate")
            elif not self.is_sqlite:
                with self.engine.connect() as c:
                    narrow = columns_to_widen(c)
                if narrow:
                    with self._write() as c:
                        widen_server_columns(c)
            return
        foreign = names - OPTUNA_TABLES
        if foreign:
            shown = ", ".join(sorted(foreign)[:8])
            raise StoreError(f"store '{self.label}' is not an ablate database: it has tables ({shown}) "
                             f"but no ablate_meta; nothing was written to it. Use another --store path")
        if not create:
            raise StoreError(f"store '{self.label}' is empty (no ablate tables); run an experiment first")
        if self.is_sqlite:
            # WAL (persistent in the file): readers such as `ablate status` never block the
            # running driver. Set only on databases ablate creates.
            with self.engine.connect() as c:
                c.exec_driver_sql("PRAGMA journal_mode=WAL")
        try:
            with self._write() as c:
                create_schema(c)
        except DatabaseError as exc:
            if self.is_sqlite:
                raise
            # e.g. PostgreSQL 15+ grants CREATE on schema public to the database's owner only
            reason = " ".join(str(exc.orig).split())
            raise StoreError(f"cannot create the ablate tables in store '{self.label}': {reason}; nothing was "
                             f"written. The user needs the CREATE privilege there (GRANT CREATE ON SCHEMA "
                             f"public TO {self.engine.url.username or 'USER'}), or give a database it owns") from None

    def _write(self):
        """A write transaction that no other driver's write interleaves with (store_engine)."""
        self.check_file()
        return write_transaction(self.engine)

    def check_file(self) -> None:
        """Refuse to write on when a SQLite store's file was deleted (or replaced) under the open
        connection: SQLite would go on writing into the deleted file, and every result would be
        gone when the run ends, with nothing said. A stat per write (microseconds)."""
        if self._file_id is None:
            return
        try:
            st = self.path.stat()
            same = (st.st_dev, st.st_ino) == self._file_id
        except OSError:
            same = False
        if not same:
            raise StoreError(f"store '{self.label}' was deleted or replaced while this run was writing to it "
                             f"(no file {self.path} any more, or another one); stopped here rather than write "
                             f"results into a deleted file. What was in it went with it; run again to start "
                             f"a new store there")

    # -- experiments ------------------------------------------------------------------------

    def save_experiment(self, name: str, spec_json: str, source: str | None) -> None:
        now = time.time()
        with self._write() as c:
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

    def add_trials(self, experiment: str, planned: list, *, reason: str | None = None) -> int:
        """Insert the trials not yet stored, as pending (`reason`, else each trial's own).
        Returns how many were new."""
        now = time.time()
        with self._write() as c:
            q = sa.select(trials.c.trial_id).where(trials.c.experiment == experiment)
            have = {tid for (tid,) in c.execute(q)}
            rows, seen = [], set()
            for t in planned:
                if t.id in have or t.id in seen:
                    continue
                seen.add(t.id)
                rows.append(dict(experiment=experiment, trial_id=t.id, arm=t.arm, label=t.label, seed=t.seed,
                                 reason=reason or getattr(t, "reason", "design"),
                                 config=json.dumps(t.config, sort_keys=True), status="pending",
                                 attempts=0, created=now))
            if rows:
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

    def trial_row(self, experiment: str, trial_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as c:
            row = c.execute(sa.select(trials).where(*_key(experiment, trial_id))).mappings().first()
        return dict(row) if row else None

    # -- claims -----------------------------------------------------------------------------

    def claim(self, experiment: str, trial_id: str, holder: str, lease_s: float) -> bool:
        """Take `trial_id` for `holder` if it is pending, or running under a claim that expired
        (or whose holder died on this host). True if this holder now runs it."""
        now = time.time()
        with self._write() as c:
            row = c.execute(sa.select(trials.c.status, trials.c.holder, trials.c.lease_until)
                            .where(*_key(experiment, trial_id))).first()
            if row is None or row.status in FINAL:
                return False
            if row.status == "running" and row.lease_until is not None and row.lease_until >= now \
                    and row.holder != holder and not holder_is_dead(row.holder):
                return False
            same = trials.c.holder.is_(None) if row.holder is None else trials.c.holder == row.holder
            done = c.execute(trials.update().where(*_key(experiment, trial_id), trials.c.status == row.status,
                                                   same).values(
                status="running", holder=holder, lease_until=now + lease_s))
            return done.rowcount == 1

    def close_dead_claims(self, experiment: str) -> int:
        """Trials of `experiment` left running by a driver that is gone (its process on this
        host, or its lease ran out): back to pending, their attempt kept as interrupted, as a
        stopped driver leaves them. A driver SIGKILLed mid-trial cannot record that itself; the
        next run does, before it plans. Returns how many were closed."""
        now = time.time()
        with self.engine.connect() as c:
            rows = c.execute(sa.select(trials.c.trial_id, trials.c.holder, trials.c.lease_until).where(
                trials.c.experiment == experiment, trials.c.status == "running")).all()
        closed = 0
        for r in rows:
            if not (holder_is_dead(r.holder) or r.lease_until is None or r.lease_until < now):
                continue
            with self._write() as c:
                same = trials.c.holder.is_(None) if r.holder is None else trials.c.holder == r.holder
                if c.execute(trials.update().where(*_key(experiment, r.trial_id), trials.c.status == "running", same)
                             .values(status="pending", kind="interrupted", error=_dead_note(r.holder),
                                     finished=now, holder=None, lease_until=None)).rowcount != 1:
                    continue               # another driver took it over meanwhile
                _close_running_attempts(c, experiment, r.trial_id, r.holder, now)
                c.execute(epoch_metrics.delete().where(epoch_metrics.c.experiment == experiment,
                                                       epoch_metrics.c.trial_id == r.trial_id))
            closed += 1
        return closed

    def heartbeat(self, holder: str, lease_s: float) -> int:
        """Extend the lease of every trial `holder` runs. Returns how many it still holds."""
        with self._write() as c:
            done = c.execute(trials.update().where(trials.c.holder == holder, trials.c.status == "running")
                             .values(lease_until=time.time() + lease_s))
            return done.rowcount

    # -- one attempt ------------------------------------------------------------------------

    def start_trial(self, experiment: str, trial_id: str, env: dict[str, Any], *,
                    holder: str | None = None) -> int:
        """Mark running, count and record the attempt, and drop epochs a previous attempt left
        behind. Returns the attempt number."""
        key = _key(experiment, trial_id)
        now = time.time()
        with self._write() as c:
            n = c.execute(sa.select(trials.c.attempts).where(*key)).scalar_one() + 1
            # an attempt still open here was a driver's that died mid-trial (its claim taken over)
            _close_running_attempts(c, experiment, trial_id, None, now)
            c.execute(epoch_metrics.delete().where(epoch_metrics.c.experiment == experiment,
                                                   epoch_metrics.c.trial_id == trial_id))
            c.execute(final_metrics.delete().where(final_metrics.c.experiment == experiment,
                                                   final_metrics.c.trial_id == trial_id))
            env_text = json.dumps(env, sort_keys=True, default=str)
            values = dict(status="running", started=now, finished=None, error=None, kind=None,
                          env=env_text, attempts=n, metrics=None)
            if holder is not None:
                values["holder"] = holder
            c.execute(trials.update().where(*key).values(**values))
            c.execute(attempts.insert().values(experiment=experiment, trial_id=trial_id, attempt=n,
                                               holder=holder, started=now, status="running", env=env_text))
        return n

    def add_epoch(self, experiment: str, trial_id: str, metrics: dict[str, Any]) -> None:
        """Keep every numeric metric of one epoch (a repeated epoch replaces the earlier one)."""
        epoch = int(metrics["epoch"])
        rows = [dict(experiment=experiment, trial_id=trial_id, epoch=epoch, name=k, value=v)
                for k, v in numeric_metrics(metrics).items() if k != "epoch"]
        with self._write() as c:
            c.execute(epoch_metrics.delete().where(epoch_metrics.c.experiment == experiment,
                                                   epoch_metrics.c.trial_id == trial_id,
                                                   epoch_metrics.c.epoch == epoch))
            if rows:
                c.execute(epoch_metrics.insert(), rows)

    def finish_trial(self, experiment: str, trial_id: str, status: str, *,
                     metrics: dict[str, Any] | None = None, error: str | None = None,
                     kind: str | None = None, holder: str | None = None, retry: bool = False,
                     keep_claim: bool = False) -> bool:
        """Record an attempt's outcome. With `retry`, a failed attempt puts the trial back to
        pending (the error stays in its attempt row); with `keep_claim` too it stays running under
        its holder's claim (the executor itself runs it again, e.g. Ray Tune's retries), so no
        other driver takes it in between. With `holder`, only if that holder still holds the
        claim: False (nothing written) when another driver took the trial over."""
        if status not in STATUSES:
            raise ValueError(f"unknown trial status '{status}'")
        now = time.time()
        key = _key(experiment, trial_id)
        error = _text(error)
        where = [*key] + ([trials.c.holder == holder] if holder is not None else [])
        values: dict[str, Any] = {"status": "pending" if retry else status, "finished": now, "error": error,
                                  "kind": kind, "holder": None, "lease_until": None}
        if retry and keep_claim:
            values["status"] = "running"
            del values["holder"], values["lease_until"]     # the heartbeat keeps renewing the lease
        if metrics is not None:
            values["metrics"] = json.dumps(metrics, sort_keys=True, default=str)
        with self._write() as c:
            if c.execute(trials.update().where(*where).values(**values)).rowcount != 1:
                return False
            n = c.execute(sa.select(trials.c.attempts).where(*key)).scalar_one()
            c.execute(attempts.update().where(attempts.c.experiment == experiment, attempts.c.trial_id == trial_id,
                                              attempts.c.attempt == n)
                      .values(status=status, kind=kind, error=error, finished=now))
            if metrics is not None:
                rows = [dict(experiment=experiment, trial_id=trial_id, name=k, value=v)
                        for k, v in numeric_metrics(metrics).items()]
                c.execute(final_metrics.delete().where(final_metrics.c.experiment == experiment,
                                                       final_metrics.c.trial_id == trial_id))
                if rows:
                    c.execute(final_metrics.insert(), rows)
        return True

    def reset_trial(self, experiment: str, trial_id: str, note: str, *, holder: str | None = None) -> None:
        """Back to pending (e.g. after Ctrl-C), keeping a note of why; the attempt is kept as
        'interrupted' and its partial epochs dropped."""
        key = _key(experiment, trial_id)
        where = [*key] + ([trials.c.holder == holder] if holder is not None else [])
        now = time.time()
        note = _text(note)
        with self._write() as c:
            if c.execute(trials.update().where(*where).values(
                    status="pending", error=note, kind="interrupted", finished=now, holder=None,
                    lease_until=None)).rowcount != 1:
                return
            c.execute(epoch_metrics.delete().where(epoch_metrics.c.experiment == experiment,
                                                   epoch_metrics.c.trial_id == trial_id))
            n = c.execute(sa.select(trials.c.attempts).where(*key)).scalar_one()
            c.execute(attempts.update().where(attempts.c.experiment == experiment, attempts.c.trial_id == trial_id,
                                              attempts.c.attempt == n)
                      .values(status="interrupted", kind="interrupted", error=note, finished=now))

    def failed_attempts(self, experiment: str, trial_id: str) -> int:
        """Failed attempts of a trial since it was last put back by `retry_failed` (all of them
        if never): what the retry policy counts."""
        mine = (attempts.c.experiment == experiment, attempts.c.trial_id == trial_id)
        with self.engine.connect() as c:
            since = c.execute(sa.select(sa.func.max(attempts.c.attempt)).where(
                *mine, attempts.c.status == REQUEUED)).scalar_one() or 0
            return c.execute(sa.select(sa.func.count()).where(
                *mine, attempts.c.status == "failed", attempts.c.attempt > since)).scalar_one()

    def retry_failed(self, experiment: str, trial_ids, note: str) -> list[str]:
        """Put the failed trials among `trial_ids` back to pending (`ablate run --retry-failed`),
        each in its own transaction, keeping every earlier attempt. The requeue is recorded as an
        attempt row of status `requeued` (error: `note`), so `ablate logs` shows it and the retry
        policy counts failed attempts afresh after it. Returns the ids put back."""
        done = []
        for tid in trial_ids:
            key = _key(experiment, tid)
            now = time.time()
            with self._write() as c:
                row = c.execute(sa.select(trials.c.status, trials.c.attempts).where(*key)).first()
                if row is None or row.status != "failed":
                    continue
                n = row.attempts + 1
                c.execute(trials.update().where(*key, trials.c.status == "failed").values(
                    status="pending", error=None, kind=None, attempts=n, holder=None, lease_until=None))
                c.execute(attempts.insert().values(experiment=experiment, trial_id=tid, attempt=n, started=now,
                                                   finished=now, status=REQUEUED, kind=REQUEUED, error=_text(note)))
            done.append(tid)
        return done

    # -- frames for reports ------------------------------------------------------------------

    def trials_frame(self, experiment: str):
        """One row per trial; every final metric a column (the usual ones always present)."""
        import pandas as pd

        names = self._metric_names(final_metrics, experiment, FINAL_COLUMNS, _TRIAL_COLUMNS)
        wide = _pivot(final_metrics, experiment, ["trial_id"], names).subquery()
        metric_cols = (wide.c[f"_metric_{i}"] for i in range(len(names)))
        q = (sa.select(*(trials.c[n] for n in _TRIAL_COLUMNS[:8]), *metric_cols,
                       *(trials.c[n] for n in _TRIAL_COLUMNS[8:]))
             .select_from(trials.outerjoin(wide, trials.c.trial_id == wide.c.trial_id))
             .where(trials.c.experiment == experiment).order_by(trials.c.arm, trials.c.seed))
        with self.engine.connect() as c:
            frame = _named(pd.read_sql(q, c), names)
        return _order(frame, _TRIAL_COLUMNS[:8], FINAL_COLUMNS, _TRIAL_COLUMNS[8:])

    def epochs_frame(self, experiment: str):
        """One row per (trial, epoch); every epoch metric a column (the usual ones always present)."""
        import pandas as pd

        names = self._metric_names(epoch_metrics, experiment, EPOCH_COLUMNS, ("trial_id", "epoch"))
        q = _pivot(epoch_metrics, experiment, ["trial_id", "epoch"], names)
        with self.engine.connect() as c:
            frame = _named(pd.read_sql(q, c), names)
        frame = frame.sort_values(["trial_id", "epoch"], kind="stable").reset_index(drop=True)
        return _order(frame, ("trial_id", "epoch"), EPOCH_COLUMNS, ())

    def _metric_names(self, table, experiment: str, usual: tuple[str, ...], reserved: tuple[str, ...]) -> list[str]:
        q = sa.select(table.c.name).where(table.c.experiment == experiment).distinct()
        with self.engine.connect() as c:
            found = {n for (n,) in c.execute(q)} - set(reserved)
        return list(usual) + sorted(found - set(usual))

    def attempts_frame(self, experiment: str):
        """Every attempt of every trial: outcome, failure kind, error, where it ran."""
        import pandas as pd

        q = sa.select(attempts).where(attempts.c.experiment == experiment).order_by(
            attempts.c.trial_id, attempts.c.attempt)
        with self.engine.connect() as c:
            return pd.read_sql(q, c)

    def delete_trials(self, experiment: str) -> int:
        """Delete every trial of `experiment` with its epochs, metrics and attempts (for `ablate
        run --replace`), in one transaction; the experiment row stays. Returns how many trials
        were deleted."""
        with self._write() as c:
            for table in (epoch_metrics, final_metrics, attempts):
                c.execute(table.delete().where(table.c.experiment == experiment))
            return c.execute(trials.delete().where(trials.c.experiment == experiment)).rowcount


def _pivot(table, experiment: str, keys: list[str], names: list[str]):
    """Long (keys, name, value) rows as one column per name, pivoted by the database (fast in C,
    where pandas would first have to read every long row). Column i is labelled `_metric_i`
    (`_named` gives the names back): PostgreSQL cuts identifiers at 63 characters, a metric name
    may be longer or hold any character."""
    # names inlined as SQL literals (quotes doubled): with bound parameters SQLite runs it ~1.5x slower
    cols = [sa.func.max(table.c.value).filter(table.c.name == sa.literal_column("'" + n.replace("'", "''") + "'"))
            .label(f"_metric_{i}") for i, n in enumerate(names)]
    return sa.select(*(table.c[k] for k in keys), *cols).where(table.c.experiment == experiment).group_by(
        *(table.c[k] for k in keys))


def _named(frame, names: list[str]):
    return frame.rename(columns={f"_metric_{i}": n for i, n in enumerate(names)})


def _order(frame, lead: tuple[str, ...], usual: tuple[str, ...], tail: tuple[str, ...]):
    """Columns in a stable order: `lead`, the usual metrics (float), `tail`, other metrics by name."""
    for col in usual:
        frame[col] = frame[col].astype(float)
    extra = sorted(c for c in frame.columns if c not in lead + usual + tail)
    return frame[list(lead) + list(usual) + list(tail) + extra]


def numeric_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """The finite-or-not numeric values of `metrics` (bools and text are not metrics)."""
    out = {}
    for k, v in metrics.items():
        if isinstance(v, bool) or v is None:
            continue
        try:
            f = float(v)
        except (TypeError, ValueError):
            continue
        out[str(k)] = f if not math.isnan(f) else float("nan")
    return out


def _text(text: str | None) -> str | None:
    """Error text as a database keeps it: PostgreSQL refuses NUL characters in text (a command's
    output may hold any bytes), so they are written as the four characters \\x00."""
    return text.replace("\x00", "\\x00") if text else text


def _create_private(path: Path) -> None:
    """Create an empty SQLite store file readable and writable by its owner only (0600): SQLite
    gives its -wal and -shm files the database file's permissions, and a store holds the spec and
    every trial's config. An existing file is left as it is."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


def _dead_note(holder: str | None) -> str:
    who = f"driver {holder}" if holder else "the driver"
    return (f"interrupted: {who} stopped (killed?) before this attempt ended; the next run closed it "
            f"and the trial runs again")


def _close_running_attempts(c, experiment: str, trial_id: str, holder: str | None, now: float) -> None:
    """Mark the trial's attempts still `running` as interrupted (in the caller's transaction)."""
    c.execute(attempts.update().where(attempts.c.experiment == experiment, attempts.c.trial_id == trial_id,
                                      attempts.c.status == "running")
              .values(status="interrupted", kind="interrupted", error=_dead_note(holder), finished=now))


def _key(experiment: str, trial_id: str):
    return (trials.c.experiment == experiment, trials.c.trial_id == trial_id)
