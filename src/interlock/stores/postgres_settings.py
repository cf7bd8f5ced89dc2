"""The PostgreSQL store's settings, read from the environment."""

from __future__ import annotations

import os

from interlock.errors import ConfigurationError
from interlock.stores.postgres import PostgresStore

SETTINGS = {
    # name: (default, what it is)
    "INTERLOCK_PG_POOL_SIZE": (4.0, "read connections per process"),
    "INTERLOCK_PG_CONNECT_TIMEOUT": (5.0, "seconds to wait for a connection"),
    "INTERLOCK_PG_RECONNECT_TIMEOUT": (10.0, "seconds a write retries while unreachable"),
    "INTERLOCK_PG_POLL": (1.0, "seconds between fallback polls for work"),
}


def _number(name: str) -> float:
    default, what = SETTINGS[name]
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} is not a number ({what})") from None
    if value <= 0:
        raise ConfigurationError(f"{name}={raw!r} must be positive ({what})")
    return value


def open_postgres(url: str) -> PostgresStore:
    """A :class:`PostgresStore` at ``url`` with the settings of the environment."""
    try:
        import psycopg  # noqa: F401
    except ImportError:  # pragma: no cover - depends on the installation
        raise ConfigurationError(
            "the PostgreSQL store needs psycopg: pip install 'interlock[postgres]'"
        ) from None
    return PostgresStore(
        url,
        pool_size=int(_number("INTERLOCK_PG_POOL_SIZE")),
        connect_timeout=_number("INTERLOCK_PG_CONNECT_TIMEOUT"),
        reconnect_timeout=_number("INTERLOCK_PG_RECONNECT_TIMEOUT"),
        poll=_number("INTERLOCK_PG_POLL"),
    )
