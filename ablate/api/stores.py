"""Stores: the default, opening one (made on request), an experiment's plan from the store."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ablate.errors import ReportError, StoreError

if TYPE_CHECKING:
    from ablate.design.plan import Plan
    from ablate.store import Store


def default_store() -> str:
    """The store when none is given: $ABLATE_STORE, else ablate.db (read at each call)."""
    return os.environ.get("ABLATE_STORE") or "ablate.db"


def open_store(url: str | os.PathLike | None = None, *, create: bool = False) -> Store:
    """Open a store.

    Args:
        url: a SQLite path or a SQLAlchemy URL (``postgresql://...``); None: $ABLATE_STORE, else
            ablate.db.
        create: make the store (and its folders) when it does not exist.

    Returns:
        The `Store`; ``.label`` names it in messages (a URL without its password).

    Raises:
        StoreError: absent (without `create`), not an ablate database, unreachable, or a URL
            ablate cannot use.

    Example:
        >>> store = ablate.open_store("ablate.db")  # doctest: +SKIP
    """
    if url is not None and not isinstance(url, (str, os.PathLike)):
        raise StoreError(f"a store is a SQLite path or a SQLAlchemy URL string, got a {type(url).__name__}")
    target = default_store() if url is None else os.fspath(url)
    if not target.strip():
        raise StoreError("a store is a SQLite path or a SQLAlchemy URL; got an empty string")
    if create:
        return create_store(target)[0]
    from ablate.store import Store

    return Store(target, create=False)


def create_store(target: str) -> tuple[Store, str | None]:
    """The store at `target`, made if absent; and a note when it is new (which folders are made)."""
    from ablate.preflight import prepare_store_path
    from ablate.store import Store

    new_store = prepare_store_path(target)
    try:
        return Store(target, create=True), new_store
    except OSError as exc:
        from ablate.store_engine import display_name

        raise StoreError(f"cannot create store '{display_name(target)}': {exc}") from None


def as_store(store: Store | str | os.PathLike | None) -> Store:
    from ablate.store import Store

    return store if isinstance(store, Store) else open_store(store)


def load_experiment(store: Store | str | os.PathLike | None, experiment: str) -> Plan:
    """The plan of a stored experiment, from the spec saved with it.

    Raises:
        ReportError: no experiment of that name in the store (the message lists those there).
    """
    from ablate.report.frames import load_experiment as load

    if not isinstance(experiment, str):
        raise ReportError(f"an experiment is named by a string, got a {type(experiment).__name__}")
    return load(as_store(store), experiment)
