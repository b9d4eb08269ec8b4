"""The store as `ablate serve` opens it: read-only, and a cheap stamp of "has anything changed".

Read-only twice over: every write path of `Store` is refused (`_write` raises, so an old schema
is never migrated from here), and the database connection itself cannot write: SQLite is opened
with `mode=ro` (a reader never checkpoints the WAL into the file either), PostgreSQL sessions
start with `default_transaction_read_only`.

The change stamp is what the page's poll compares (its ETag): on SQLite `PRAGMA data_version`,
which changes when any other connection commits and costs microseconds; on PostgreSQL the WAL
position (any committed write moves it); elsewhere a few aggregates over the store's tables.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

import sqlalchemy as sa

from ablate.errors import StoreError
from ablate.store import Store
from ablate.store_engine import sqlite_pragmas
from ablate.store_schema import attempts, epoch_metrics, experiments, trials


class ReadOnlyStore(Store):
    """A `Store` that cannot write: opened without create, never migrated, read-only connections."""

    def __init__(self, target) -> None:
        self.boot = os.urandom(3).hex()     # ETags of one server process never match another's
        self._stamp_lock = threading.Lock()
        self._stamp_conn: sqlite3.Connection | None = None
        super().__init__(target, create=False)

    def _open(self, create: bool) -> None:
        if self.is_sqlite:
            path = self.url.split("///", 1)[1]
            self.path = Path(path)
            self.engine.dispose()
            # uri=true: the path is a file: URI, so mode=ro reaches SQLite (no write, no checkpoint)
            self.engine = sa.create_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
            sa.event.listen(self.engine, "connect", sqlite_pragmas)
        elif self.engine.dialect.name == "postgresql":
            sa.event.listen(self.engine, "connect", _pg_read_only)
        super()._open(False)

    def _write(self):
        raise StoreError(f"store '{self.label}' was made by an older ablate and needs an upgrade, which "
                         f"`ablate serve` (read-only) does not do; run `ablate status --store {self.label}` "
                         f"once to upgrade it")

    def stamp(self) -> str:
        """A short text that changes whenever anything is committed to the store."""
        if self.is_sqlite:
            with self._stamp_lock:
                if self._stamp_conn is None:
                    self._stamp_conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True,
                                                       check_same_thread=False)
                version = self._stamp_conn.execute("PRAGMA data_version").fetchone()[0]
            return f"{self.boot}-{version}"
        with self.engine.connect() as c:
            if self.engine.dialect.name == "postgresql":
                try:
                    return f"{self.boot}-{c.exec_driver_sql('SELECT pg_current_wal_insert_lsn()').scalar()}"
                except sa.exc.DBAPIError:
                    c.rollback()    # a standby has no current WAL position: count rows instead
            parts = [c.execute(sa.select(sa.func.max(experiments.c.updated), sa.func.count())).one(),
                     c.execute(sa.select(sa.func.count(), sa.func.sum(trials.c.attempts),
                                         sa.func.max(trials.c.started), sa.func.max(trials.c.finished))).one(),
                     c.execute(sa.select(sa.func.count()).select_from(epoch_metrics)).one(),
                     c.execute(sa.select(sa.func.count()).select_from(attempts)).one()]
        return f"{self.boot}-" + "-".join(str(v) for row in parts for v in row)

    def close(self) -> None:
        with self._stamp_lock:
            if self._stamp_conn is not None:
                self._stamp_conn.close()
                self._stamp_conn = None
        self.engine.dispose()


def _pg_read_only(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
    cur.close()
    dbapi_conn.commit()
