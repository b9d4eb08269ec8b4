"""The MLflow tracking URI of an export: its default, and the checks that refuse one MLflow cannot
use before anything is written (a server that does not answer, an SQLite file that is not an
MLflow database, an in-memory database, a folder in the way). Passwords are never shown."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from ablate.export.trials import ExportError, require

# what a tracking URI gets to answer the first request before it counts as unusable
PROBE_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}


def shown_uri(uri: str) -> str:
    """A URI without its password."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return uri
    if parts.password is None:
        return uri
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


def _without_password(text: str, uri: str) -> str:
    """`text` (e.g. a backend's error, which may quote the URI) with the URI's password starred."""
    from urllib.parse import unquote

    try:
        password = urlsplit(uri).password
    except ValueError:
        return text
    for secret in {password, unquote(password or "")} - {None, ""}:
        text = text.replace(secret, "***")
    return text


def open_client(tracking_uri: str | None):
    """(client, uri) for `tracking_uri` (default: $MLFLOW_TRACKING_URI, else MLflow's own default,
    mlflow.db in the current folder). Refuses, having written nothing, a URI MLflow cannot use
    and an SQLite file that is not an MLflow database."""
    mlflow = require("mlflow", "mlflow", "MLflow")
    from mlflow import MlflowClient

    uri = mlflow.get_tracking_uri() if tracking_uri is None else tracking_uri
    if not isinstance(uri, str) or not uri.strip():
        raise ExportError("the MLflow tracking URI is empty; give one, e.g. --tracking-uri sqlite:///mlflow.db")
    if uri.startswith("sqlite:") and (sqlite_path(uri) is None or ":memory:" in uri):
        raise ExportError(f"MLflow tracking URI '{uri}' is an in-memory database, which keeps nothing after the "
                          f"export; give a file, e.g. sqlite:///mlflow.db")
    path = sqlite_path(uri)
    if path is not None:
        check_sqlite_file(uri, path)
    saved = {k: os.environ.get(k) for k in PROBE_ENV}
    os.environ.update({k: v for k, v in PROBE_ENV.items() if saved[k] is None})
    try:
        client = MlflowClient(tracking_uri=uri)
        client.search_experiments(max_results=1)
    except Exception as exc:   # noqa: BLE001 -- whatever the backend raises, the URI cannot be used
        first = _without_password(" ".join(str(exc).split()), uri)[:800]
        raise ExportError(f"cannot use MLflow tracking URI '{shown_uri(uri)}': {type(exc).__name__}: {first}; "
                          f"give another --tracking-uri (e.g. sqlite:///mlflow.db, or http://HOST:PORT of a "
                          f"running MLflow server)") from None
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
    return client, uri


def sqlite_path(uri: str) -> Path | None:
    """The file of a `sqlite:///PATH` URI (None for other URIs and in-memory databases)."""
    if not uri.startswith("sqlite:"):
        return None
    rest = uri[len("sqlite:"):]
    if not rest.startswith("///"):
        return None
    path = rest[3:].split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


def check_sqlite_file(uri: str, path: Path) -> None:
    """An existing SQLite tracking file must hold MLflow's tables (or none); its folder is made."""
    import sqlite3

    shown = shown_uri(uri)
    if path.is_dir():
        raise ExportError(f"MLflow tracking URI '{shown}' names a directory ({path}); give a database file, "
                          f"e.g. sqlite:///{path / 'mlflow.db'}")
    if not path.exists():
        parent = path.parent
        if parent.exists() and not parent.is_dir():
            raise ExportError(f"cannot use MLflow tracking URI '{shown}': {parent} is a file, not a folder")
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ExportError(f"cannot use MLflow tracking URI '{shown}': cannot make folder {parent}: "
                              f"{exc.strerror or exc}") from None
        return
    try:
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        raise ExportError(f"cannot use MLflow tracking URI '{shown}': {path} is not an SQLite database ({exc}); "
                          f"nothing was written to it") from None
    if names and not {"experiments", "runs"} <= names:
        what = ("an ablate store" if "ablate_meta" in names
                else f"a database with other tables ({', '.join(sorted(names)[:6])})")
        raise ExportError(f"MLflow tracking URI '{shown}' is {what}, not an MLflow database; nothing was "
                          f"written to it. Give another file, e.g. sqlite:///{path.with_name('mlflow.db')}")


def artifact_location(uri: str, experiment: str) -> str | None:
    """Where a new MLflow experiment keeps its artifacts: beside a local SQLite tracking file,
    in mlruns/<experiment> (MLflow's default is ./mlruns of whatever folder the export ran in);
    other URIs: the server's default."""
    path = sqlite_path(uri)
    if path is None:
        return None
    return (path.resolve().parent / "mlruns" / experiment).as_uri()
