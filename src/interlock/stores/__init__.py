"""Stores: all durable state. :func:`open_store` picks one from a URL."""

from __future__ import annotations

from interlock.errors import ConfigurationError
from interlock.stores.base import Store
from interlock.stores.sqlite import SqliteStore

DEFAULT_URL = "sqlite:///interlock.db"


def open_store(url: str, *, durability: str = "durable") -> SqliteStore:
    """Open the store at ``url`` (``sqlite:///file.db``)."""
    if url.startswith("sqlite:"):
        return SqliteStore(url, durability=durability)
    if url.startswith(("postgres://", "postgresql://")):
        raise ConfigurationError(
            f"{url.split('@')[-1]}: the PostgreSQL store is not part of this version; "
            "use a sqlite:/// URL"
        )
    raise ConfigurationError(f"unknown database URL {url!r}: expected sqlite:///path/to/file.db")


__all__ = ["DEFAULT_URL", "SqliteStore", "Store", "open_store"]
