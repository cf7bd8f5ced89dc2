"""The chaos harness on PostgreSQL, and an *empty* database of its own for a test.

Most tests take ``pg_url`` (tests/conftest.py: a clone of a migrated template).
:func:`fresh_database` is for a test about what processes do to a database nobody has
migrated yet. ``INTERLOCK_TEST_POSTGRES_URL`` names the server (default: the local one,
user postgres); a test is skipped, with the reason shown, when it cannot be reached — and
fails instead when ``INTERLOCK_REQUIRE_SERVICES=1`` (CI sets it). Each database is named
``interlock_t_<hex>`` and dropped, with its sessions, at the end.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from .conftest import UNFINISHED, Chaos

SERVER_URL = os.environ.get(
    "INTERLOCK_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def _unavailable(why: str) -> None:
    if os.environ.get("INTERLOCK_REQUIRE_SERVICES") == "1":
        pytest.fail(f"PostgreSQL is required here (INTERLOCK_REQUIRE_SERVICES=1): {why}")
    pytest.skip(f"PostgreSQL not available: {why}")


@contextlib.contextmanager
def fresh_database() -> Iterator[str]:
    """Create an empty database on the test server; yield its URL; drop it afterwards."""
    try:
        import psycopg
    except ImportError:
        _unavailable("psycopg is not installed (pip install -e '.[postgres]')")
        raise  # unreachable: skip/fail raised
    name = f"interlock_t_{secrets.token_hex(6)}"
    try:
        with psycopg.connect(SERVER_URL, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        _unavailable(f"{urlsplit(SERVER_URL).netloc}: {exc}".strip())
    try:
        yield urlunsplit(urlsplit(SERVER_URL)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(SERVER_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class PgChaos(Chaos):
    """The chaos harness with its store on PostgreSQL instead of a SQLite file."""

    def __init__(self, tmp_path: Path, database_url: str) -> None:
        super().__init__(tmp_path)
        self.database_url = database_url

    def query(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        import psycopg

        with psycopg.connect(self.database_url, autocommit=True) as conn:
            return conn.execute(sql.replace("?", "%s"), args).fetchall()

    def unfinished(self) -> int:
        rows = self.query(
            "SELECT count(*) FROM deliveries WHERE status = ANY(%s)", (list(UNFINISHED),)
        )
        return int(rows[0][0])

    def terminate_backends(self) -> int:
        """``pg_terminate_backend`` every other session of this database: a connection drop."""
        rows = self.query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return sum(1 for (ok,) in rows if ok)


@contextlib.contextmanager
def pg_chaos(tmp_path: Path, request: pytest.FixtureRequest, url: str) -> Iterator[PgChaos]:
    """A :class:`PgChaos` on the database at ``url``; its workers are reaped at the end, and
    a failing test prints their log tails."""
    harness = PgChaos(tmp_path, url)
    try:
        yield harness
    finally:
        harness.cleanup()
        rep = getattr(request.node, "rep_call", None)
        if rep is not None and rep.failed:
            print(harness.report())
