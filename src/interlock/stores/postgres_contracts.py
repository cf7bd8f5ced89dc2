"""The contracts part of :class:`~interlock.stores.postgres.PostgresStore`: drift profiles
and findings, payload samples and version markers (migration ``0005_contracts``), with
the meaning of ``sqlite_contracts.py``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from psycopg import AsyncConnection

from interlock.shapes import merge
from interlock.stores.contract_records import (
    DriftBatch,
    DriftFinding,
    Marker,
    Sample,
    StoredProfile,
)
from interlock.stores.postgres_writer import Call, Rows
from interlock.stores.sqlite_contracts import _finding

_FINDING_COLUMNS = (
    "SELECT id, source, event_type, kind, path, detail, example, count, first_seen, last_seen "
    "FROM drift_findings"
)


class PostgresContracts:
    """Mixed into PostgresStore; uses its reads and writers."""

    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        raise NotImplementedError  # PostgresStore's

    def _write(self, call: Call) -> Any:
        raise NotImplementedError  # PostgresStore's: an awaitable result

    def _call(self, call: Call) -> Any:
        raise NotImplementedError  # PostgresStore's: the result, for sync callers

    def drift_profiles(self) -> list[StoredProfile]:
        rows = self._read("SELECT source, event_type, profile FROM drift_profiles ORDER BY 1, 2")
        return [StoredProfile(r[0], r[1], orjson.loads(r[2])) for r in rows]

    def drift_findings(
        self,
        *,
        source: str | None = None,
        event_type: str | None = None,
        kind: str | None = None,
        limit: int = 500,
    ) -> list[DriftFinding]:
        """Findings, newest first."""
        where, args = [], []
        for column, value in (("source", source), ("event_type", event_type), ("kind", kind)):
            if value is not None:
                where.append(f"{column} = %s")
                args.append(value)
        sql = _FINDING_COLUMNS + (" WHERE " + " AND ".join(where) if where else "")
        rows = self._read(sql + " ORDER BY id DESC LIMIT %s", [*args, limit])
        return [_finding(r) for r in rows]

    async def save_drift(self, batch: DriftBatch, *, now: float) -> None:
        """Add a monitor's profile deltas, finding updates and samples (one transaction)."""
        await self._write(_save_drift_call(batch, now))

    def save_drift_sync(self, batch: DriftBatch, *, now: float) -> None:
        self._call(_save_drift_call(batch, now))

    def contract_samples(
        self, source: str, *, topic: str | None = None, limit: int = 50
    ) -> list[Sample]:
        """Recent payload samples of ``source`` (of one ``topic``), newest first."""
        sql = "SELECT id, source, topic, headers, payload, received_at FROM contract_samples"
        sql += " WHERE source = %s" + (" AND topic = %s" if topic is not None else "")
        args: list[Any] = [source] if topic is None else [source, topic]
        rows = self._read(sql + " ORDER BY id DESC LIMIT %s", [*args, limit])
        return [
            Sample(r[1], r[2], orjson.loads(r[3]), orjson.loads(r[4]), r[5], id=r[0]) for r in rows
        ]

    def marker_of(self, flow: str, entity: str) -> Marker | None:
        rows = self._read(
            "SELECT flow, entity, marker, event_id, updated_at FROM version_markers "
            "WHERE flow = %s AND entity = %s",
            (flow, entity),
        )
        return Marker(*rows[0]) if rows else None

    async def advance_marker(
        self, flow: str, entity: str, value: float, event_id: str, *, now: float
    ) -> bool:
        """Record ``value`` as the entity's last applied version unless a newer one is
        recorded already; True when it advanced."""
        advanced: bool = await self._write(
            Call(
                "INSERT INTO version_markers (flow, entity, marker, event_id, updated_at) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (flow, entity) DO UPDATE SET "
                "marker = excluded.marker, event_id = excluded.event_id, "
                "updated_at = excluded.updated_at "
                "WHERE excluded.marker > version_markers.marker RETURNING true",
                (flow, entity, value, event_id, now),
                _any_row,
            )
        )
        return advanced


async def _any_row(conn: AsyncConnection[Any], rows: Rows) -> bool:
    return bool(rows)


def _save_drift_call(batch: DriftBatch, now: float) -> Call:
    async def then(conn: AsyncConnection[Any], _: Rows) -> None:
        for source, event_type, delta in batch.profiles:
            cur = await conn.execute(
                "SELECT profile FROM drift_profiles WHERE source = %s AND event_type = %s "
                "FOR UPDATE",
                (source, event_type),
            )
            row = await cur.fetchone()
            merged = merge(None if row is None else orjson.loads(row[0]), delta)
            await conn.execute(
                "INSERT INTO drift_profiles (source, event_type, profile, updated_at) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT (source, event_type) "
                "DO UPDATE SET profile = excluded.profile, updated_at = excluded.updated_at",
                (source, event_type, orjson.dumps(merged).decode(), now),
            )
        for f in batch.findings:
            await conn.execute(
                "INSERT INTO drift_findings (source, event_type, kind, path, detail, example, "
                "count, first_seen, last_seen) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (source, event_type, kind, path, detail) DO UPDATE SET "
                "count = drift_findings.count + excluded.count, "
                "last_seen = greatest(drift_findings.last_seen, excluded.last_seen)",
                (
                    f.source,
                    f.event_type,
                    f.kind,
                    f.path,
                    f.detail,
                    orjson.dumps(f.example).decode(),
                    f.count,
                    f.first_seen,
                    f.last_seen,
                ),
            )
        kept: set[tuple[str, str | None]] = set()
        for s in batch.samples:
            await conn.execute(
                "INSERT INTO contract_samples (source, topic, headers, payload, received_at) "
                "VALUES (%s, %s, %s, %s, %s)",
                (
                    s.source,
                    s.topic,
                    orjson.dumps(s.headers).decode(),
                    orjson.dumps(s.payload).decode(),
                    s.received_at,
                ),
            )
            kept.add((s.source, s.topic))
        for source, topic in kept:
            await conn.execute(
                "DELETE FROM contract_samples WHERE source = %s "
                "AND topic IS NOT DISTINCT FROM %s AND id NOT IN "
                "(SELECT id FROM contract_samples WHERE source = %s "
                "AND topic IS NOT DISTINCT FROM %s ORDER BY id DESC LIMIT %s)",
                (source, topic, source, topic, batch.keep_samples),
            )

    return Call(None, (), then)
