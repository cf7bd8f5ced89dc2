"""The deletes behind :mod:`interlock.retention`, for each store, in one transaction per
batch: the oldest finished deliveries with their attempts and steps, then the events
nothing refers to any more."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any

from interlock.stores.sql import queries

if TYPE_CHECKING:  # psycopg is the optional `postgres` extra: SQLite users need not have it
    from psycopg import AsyncConnection

    from interlock.stores.postgres_writer import Call, Rows


def prune_sqlite(conn: sqlite3.Connection, before: float, limit: int) -> int:
    q = queries("sqlite")
    ids = [r[0] for r in conn.execute(q["prunable-deliveries"], (before, limit))]
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for table in ("attempts", "steps"):
            conn.execute(f"DELETE FROM {table} WHERE delivery_id IN ({marks})", chunk)
        conn.execute(f"DELETE FROM deliveries WHERE id IN ({marks})", chunk)
    events = conn.execute(q["prune-events"], (before, limit)).rowcount
    return len(ids) + events


def prune_call(before: float, limit: int) -> Call:
    from interlock.stores.postgres_writer import Call

    q = queries("postgres")

    async def then(conn: AsyncConnection[Any], rows: Rows) -> int:
        ids = [r[0] for r in rows]
        if ids:
            await conn.execute(q["prune-attempts"], (ids,))
            await conn.execute(q["prune-steps"], (ids,))
            await conn.execute(q["prune-deliveries"], (ids,))
        cur = await conn.execute(q["prune-events"], (before, limit))
        return len(ids) + cur.rowcount

    return Call(q["prunable-deliveries"], (before, limit), then)
