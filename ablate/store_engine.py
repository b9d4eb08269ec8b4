"""How a store reaches its database: the URL, the engine and its options per database, the write
transaction that lets many drivers share one store, and errors that name the server and the
database but never the password.

SQLite (the default) is one file: a write takes the file's lock up front (BEGIN IMMEDIATE).
PostgreSQL serves many drivers, on many hosts: each write transaction first takes one
transaction-scoped advisory lock, so writes from every driver run one at a time as they do on
SQLite, and a read-then-write (schema creation, planning, a claim) cannot interleave with
another driver's. Writes are short (one state change), so the lock costs drivers little.
"""

from __future__ import annotations

import contextlib
import importlib.util
from pathlib import Path
from urllib.parse import quote, quote_plus

import sqlalchemy as sa

from ablate.errors import StoreError

# pg_advisory_xact_lock key of the store's write lock (any constant: the lock is per database;
# this one is "ablate" in ASCII, so it does not collide with another tool's by chance)
PG_WRITE_LOCK = 0x61626C617465
# seconds to wait for a server before giving up (libpq's connect_timeout; the URL may set it)
CONNECT_TIMEOUT_S = 10
# extras to install per database driver the URL names
POSTGRES_EXTRA = "pip install 'ablate[postgres]' (or pip install psycopg2-binary)"
DRIVER_EXTRAS = {"psycopg2": POSTGRES_EXTRA, "psycopg": POSTGRES_EXTRA}


def parse_url(text: str):
    """SQLAlchemy's own parse of a store URL (`sqlalchemy.engine.make_url`), refusing what it
    would misread: StoreError saying what is wrong, with no part of the password in it.

    A password holding an unescaped '@' is the trap: the parser ends the password at the first
    '@', and the rest of it becomes the host (`u:P@ss@h` gives password `P`, host `ss@h`), so a
    message naming the host would print part of the password."""
    scheme = text.split("://", 1)[0]
    form = "dialect[+driver]://user:password@host:port/database"
    try:
        url = sa.engine.make_url(text)
    except (sa.exc.ArgumentError, ValueError) as exc:
        if isinstance(exc, sa.exc.ArgumentError):
            why = f"it is not a database URL of the form {form} (nor a file path)"
        else:                          # int(port) failed: the only ValueError make_url lets out
            why = "its host:port part cannot be read (the port must be a whole number)"
        raise StoreError(f"cannot use store {scheme}://(URL not shown): {why}; give a file path or a "
                         f"SQLAlchemy URL such as sqlite:///runs.db or postgresql://user@host/db") from None
    if url.host is not None and "@" in url.host:
        raise StoreError(f"cannot use store {scheme}://(URL not shown): it holds more than one '@' before the "
                         f"host, so its password (or user name) holds an '@', which a URL must write as %40 "
                         f"(in Python: urllib.parse.quote(password, safe='')); nothing of the URL is shown, "
                         f"since part of the password would be") from None
    if url.port is not None and not 0 < url.port < 65536:
        raise StoreError(f"cannot use store {url.render_as_string(hide_password=True)}: port {url.port} is not "
                         f"between 1 and 65535") from None
    return url


def store_url(target: str | Path) -> str:
    """A SQLAlchemy URL from a URL or a file path; a bare `postgresql://` names its driver (so an
    Optuna study given this URL connects the way the store does). StoreError for a URL that
    cannot be used (`parse_url`)."""
    text = str(target)
    if "://" not in text:
        return f"sqlite:///{Path(text).expanduser().resolve()}"
    url = parse_url(text)
    if text.startswith("postgresql://"):
        return with_driver(url).render_as_string(hide_password=False)
    return text


def display_name(target: str | Path) -> str:
    """How messages name a store: the path, or the URL with its password replaced by ***."""
    text = str(target)
    if "://" not in text:
        return text
    try:
        return parse_url(text).render_as_string(hide_password=True)
    except StoreError:
        return text.split("://", 1)[0] + "://(URL not shown)"


def scrub(text: str, url: str) -> str:
    """`text` with the URL's password (as written and URL-quoted) replaced by ***."""
    try:
        password = sa.engine.make_url(url).password
    except (sa.exc.ArgumentError, ValueError):
        return text
    if password:
        for form in {password, quote(password, safe=""), quote_plus(password)}:
            text = text.replace(form, "***")
    return text


def make_engine(url: str, label: str):
    """The engine for `url`, with options that suit its database; StoreError for a URL that
    cannot be used (malformed, unknown dialect, driver not installed)."""
    try:
        parsed = parse_url(url)
        options = engine_options(parsed)
        return sa.create_engine(parsed, **options)
    except ModuleNotFoundError as exc:
        how = DRIVER_EXTRAS.get(exc.name or "", f"pip install {exc.name}")
        raise StoreError(f"store '{label}' needs the database driver '{exc.name}', which is not installed; "
                         f"install it with: {how}") from None
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as exc:
        raise StoreError(f"cannot use store '{label}': {scrub(str(exc), url)}; give a file path or a "
                         f"SQLAlchemy URL such as sqlite:///runs.db or postgresql://user@host/db") from None


def with_driver(url):
    """A bare `postgresql://` URL gets psycopg2, the driver `ablate[postgres]` installs
    (SQLAlchemy 2.1 would pick psycopg 3), or psycopg 3 where only that one is installed."""
    if url.drivername != "postgresql":
        return url
    if not _importable("psycopg2") and _importable("psycopg"):
        return url.set(drivername="postgresql+psycopg")
    return url.set(drivername="postgresql+psycopg2")


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):    # ValueError: a None entry in sys.modules
        return False


def engine_options(url) -> dict:
    """create_engine options for a parsed URL. On a server: check a pooled connection before
    using it (a driver runs for hours; the server may restart or drop idle connections), keep the
    pool small (a driver uses two connections, its main thread and its heartbeat, and a server
    accepts ~100 in all), and give up on an unreachable server after CONNECT_TIMEOUT_S."""
    if url.get_backend_name() == "sqlite":
        return {}
    options: dict = {"pool_pre_ping": True, "pool_size": 2, "max_overflow": 4}
    if url.get_backend_name() == "postgresql":
        # each statement sees what committed before it: a write reads after it took the write lock
        # (under a database default of REPEATABLE READ it would read a snapshot from before)
        options["isolation_level"] = "READ COMMITTED"
    if url.get_backend_name() == "postgresql" and url.get_driver_name() in ("psycopg2", "psycopg"):
        args = {"connect_timeout": CONNECT_TIMEOUT_S, "application_name": "ablate"}
        # connect_args would override the URL's own settings: keep those
        options["connect_args"] = {k: v for k, v in args.items() if k not in url.query}
    return options


def connect_error(url: str, label: str, exc: Exception) -> StoreError:
    """The error for a database that cannot be reached or opened: server, port, database, user
    and the server's reason, never the password."""
    reason = " ".join(str(getattr(exc, "orig", None) or exc).split())
    try:
        u = parse_url(url)
    except StoreError:
        return StoreError(f"cannot open store '{label}': {scrub(reason, url)}; nothing was written")
    default_port = {"postgresql": 5432, "mysql": 3306, "mariadb": 3306}.get(u.get_backend_name())
    host = u.host or "localhost (unix socket)"
    port = u.port or default_port
    user = f" as user '{u.username}'" if u.username else ""
    return StoreError(f"cannot open the store's {u.get_backend_name()} database '{u.database}' on host "
                      f"{host}, port {port}{user}: {scrub(reason, url)}. Check the --store URL and that the "
                      f"server is running; nothing was written")


def write_transaction(engine):
    """A write transaction (a context manager yielding the connection), one driver at a time."""
    backend = engine.dialect.name
    if backend == "sqlite":
        return _sqlite_immediate(engine)
    if backend == "postgresql":
        return _pg_locked(engine)
    return engine.begin()


@contextlib.contextmanager
def _pg_locked(engine):
    with engine.begin() as conn:
        # first statement of the transaction, so no row lock is taken before it (no deadlock)
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_WRITE_LOCK})
        yield conn


@contextlib.contextmanager
def _sqlite_immediate(engine):
    # BEGIN IMMEDIATE takes the write lock up front, so table creation and migrations are atomic
    # (a kill leaves all or nothing) and two processes opening a new store do not race
    conn = engine.connect()
    try:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.rollback()
            raise
        conn.commit()
    finally:
        conn.close()


def sqlite_pragmas(dbapi_conn, _record) -> None:
    # Per connection, no writes: NORMAL sync is safe with WAL (a power cut may lose the last
    # commit, never corrupt the file); wait rather than fail when another driver holds the lock.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


# -- faults of a store in use: one clear StoreError instead of a driver's traceback -------------

_STORES: dict[str, str] = {}     # URL (password included) -> the label messages name it by

FAULT_TAIL = "finished trials in it are kept; fix this and run the same command again"


def watch_faults(url: str, label: str) -> None:
    """Turn the database faults of every engine on `url` (the store's own, and the Optuna study's
    on the same database) into one StoreError saying what and where (`fault_message`)."""
    _STORES[url] = label
    if not sa.event.contains(sa.engine.Engine, "handle_error", _on_error):
        sa.event.listen(sa.engine.Engine, "handle_error", _on_error)


def _on_error(ctx) -> None:
    if ctx.is_pre_ping or ctx.engine is None:
        return                      # the pool reconnects a dropped connection by itself
    if not isinstance(ctx.original_exception, Exception):
        return                      # Ctrl-C / SIGTERM inside a query: an interrupt (exit 130), not a fault
    url = ctx.engine.url.render_as_string(hide_password=False)
    label = _STORES.get(url)
    if label is None or (ctx.connection is None and ctx.engine.dialect.name != "sqlite"):
        return                      # a server that cannot be reached: Store says where (connect_error)
    message = fault_message(label, ctx.original_exception, disconnected=ctx.is_disconnect)
    if message is not None:
        raise StoreError(scrub(message, url)) from None


def fault_message(label: str, exc: BaseException, *, disconnected: bool = False) -> str | None:
    """What a database fault means for the store `label`, or None for an error that is not a
    fault of the store (a bug, a constraint another driver raced for: handled by the caller)."""
    reason = " ".join(str(exc).split())
    name = getattr(exc, "sqlite_errorname", None)
    if name is not None:
        if name.startswith("SQLITE_READONLY"):
            return (f"cannot write to store '{label}': its file or its folder is read-only ({reason}); "
                    f"make both writable; {FAULT_TAIL}")
        if name == "SQLITE_FULL":
            return f"cannot write to store '{label}': the disk is full ({reason}); free some space; {FAULT_TAIL}"
        if name.startswith("SQLITE_IOERR"):
            return (f"cannot write to store '{label}': a disk I/O error ({reason}): the disk may be full, a "
                    f"file-size limit reached, or the file gone; {FAULT_TAIL}")
        if name == "SQLITE_NOTADB":
            return f"store '{label}' is not an ablate database (not a readable database: {reason}); nothing was written to it"
        if name.startswith("SQLITE_CORRUPT"):
            return (f"store '{label}' is not a usable ablate database (malformed: {reason}); nothing more "
                    f"was written to it. Restore it from a copy, or give another --store")
        if name.startswith("SQLITE_CANTOPEN"):
            return (f"cannot open store '{label}' ({reason}): its file or folder is missing or not "
                    f"accessible (SQLite needs the folder writable, even to read, for the store's -shm "
                    f"file); {FAULT_TAIL}")
        return None                 # e.g. SQLITE_BUSY_SNAPSHOT, which Optuna retries
    code = getattr(exc, "pgcode", None) or getattr(exc, "sqlstate", None)
    if code == "25006":
        return f"cannot write to store '{label}': the database is read-only ({reason}); {FAULT_TAIL}"
    if code in ("53100", "53200", "53300"):
        what = {"53100": "the server's disk is full", "53200": "the server is out of memory",
                "53300": "the server has too many connections"}[code]
        return f"cannot write to store '{label}': {what} ({reason}); {FAULT_TAIL}"
    if code in ("XX001", "XX002"):
        return (f"store '{label}' is not a usable ablate database (malformed: {reason}); restore it from "
                f"a copy, or give another --store")
    if disconnected:
        return (f"lost the connection to store '{label}' ({reason}); check that the server is running; "
                f"{FAULT_TAIL}")
    return None
