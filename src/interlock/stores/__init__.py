"""Stores: all durable state. :func:`open_store` picks one from a URL."""

from __future__ import annotations

import os

from interlock.errors import ConfigurationError
from interlock.stores.base import Store
from interlock.stores.sqlite import SqliteStore

DEFAULT_URL = "sqlite:///interlock.db"


def open_store(url: str, *, durability: str = "durable") -> Store:
    """Open the store at ``url`` (``sqlite:///file.db`` or ``postgresql://…``).

    ``INTERLOCK_SQLITE_BUSY_TIMEOUT`` (seconds, default 10) bounds how long a write
    waits for another process's lock before failing with ``StoreUnavailable``. The
    PostgreSQL settings are read by :func:`~interlock.stores.postgres_settings.open_postgres`.
    """
    if url.startswith("sqlite:"):
        raw = os.environ.get("INTERLOCK_SQLITE_BUSY_TIMEOUT", "10")
        try:
            busy = float(raw)
        except ValueError:
            raise ConfigurationError(
                f"INTERLOCK_SQLITE_BUSY_TIMEOUT={raw!r} is not a number of seconds"
            ) from None
        return SqliteStore(url, durability=durability, busy_timeout=busy)
    if url.startswith(("postgres://", "postgresql://")):
        try:
            from interlock.stores.postgres_settings import open_postgres
        except ImportError as exc:
            raise ConfigurationError(
                f"the PostgreSQL store needs psycopg, which is not installed ({exc}): "
                "pip install 'interlock[postgres]'"
            ) from None

        return open_postgres(url)
    raise ConfigurationError(
        f"unknown database URL {url.split('@')[-1]!r}: expected sqlite:///path/to/file.db "
        "or postgresql://user@host/database"
    )


__all__ = ["DEFAULT_URL", "SqliteStore", "Store", "open_store"]
