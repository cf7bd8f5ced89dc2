"""The PostgreSQL store's schema: numbered migrations under an advisory lock, and the
database health figures served on ``/metrics``."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import psycopg

from interlock.errors import StoreCorrupt
from interlock.stores.base import Gauge
from interlock.stores.postgres_writer import describe
from interlock.stores.sql import migrations, queries

Q = queries("postgres")
Read = Callable[[str, Sequence[Any]], list[Any]]

# Held for the whole upgrade: a second `interlock db upgrade` (or app start) waits for
# the first and then finds nothing left to apply.
_UPGRADE_LOCK = 0x696E746C6B000001

_VERSIONS = """
CREATE TABLE IF NOT EXISTS interlock_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at double precision NOT NULL
)
"""


def schema_version(read: Read) -> int:
    """The highest applied migration (0: none, or not an interlock database yet)."""
    # Two statements: PostgreSQL resolves every table a statement names before running
    # it, so one naming interlock_migrations fails on a fresh database whatever its CASE.
    if read("SELECT to_regclass('interlock_migrations') IS NULL", ())[0][0]:
        return 0
    rows = read("SELECT coalesce(max(version), 0) FROM interlock_migrations", ())
    return int(rows[0][0])


def upgrade(conn: psycopg.Connection[Any], url: str) -> list[str]:
    """Apply pending migrations in one transaction, under the upgrade lock."""
    applied: list[str] = []
    conn.autocommit = False
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_UPGRADE_LOCK,))
        fresh = conn.execute("SELECT to_regclass('interlock_migrations') IS NULL").fetchone()
        if fresh is not None and fresh[0]:
            clash = conn.execute(
                "SELECT to_regclass('events') IS NOT NULL OR to_regclass('deliveries') IS NOT NULL"
            ).fetchone()
            if clash is not None and clash[0]:
                raise StoreCorrupt(
                    f"{describe(url)}: this database already holds tables named like "
                    "interlock's (events, deliveries) but is not an interlock store; point "
                    "the database URL at a new database or schema"
                )
        conn.execute(_VERSIONS)
        row = conn.execute("SELECT coalesce(max(version), 0) FROM interlock_migrations").fetchone()
        current = 0 if row is None else int(row[0])
        for migration in migrations("postgres"):
            if migration.version <= current:
                continue
            conn.execute(migration.sql.encode())
            conn.execute(
                "INSERT INTO interlock_migrations (version, name, applied_at) VALUES (%s, %s, %s)",
                (migration.version, migration.name, time.time()),
            )
            applied.append(f"{migration.version:04d}_{migration.name}")
    return applied


def gauges(read: Read) -> list[Gauge]:
    out = [
        Gauge(
            "interlock_pg_oldest_transaction_seconds",
            "Age of the oldest transaction open on the PostgreSQL server: a long one holds "
            "back vacuum and slows the queue tables.",
            float(read(Q["oldest-transaction"], ())[0][0]),
        )
    ]
    for table, dead in read(Q["dead-tuples"], ()):
        out.append(
            Gauge(
                "interlock_pg_dead_tuples",
                "Dead row versions waiting for vacuum in interlock's tables.",
                float(dead),
                (("table", str(table)),),
            )
        )
    return out
