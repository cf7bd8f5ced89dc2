"""The contracts part of :class:`~interlock.stores.sqlite.SqliteStore`: drift profiles and
findings, payload samples and version markers (migration ``0005_contracts``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

import orjson

from interlock.shapes import merge
from interlock.stores.contract_records import (
    DriftBatch,
    DriftFinding,
    Marker,
    Sample,
    StoredProfile,
)
from interlock.stores.writer import GroupCommitWriter, LoopWriter

_FINDING_COLUMNS = (
    "SELECT id, source, event_type, kind, path, detail, example, count, first_seen, last_seen "
    "FROM drift_findings"
)


class SqliteContracts:
    """Mixed into SqliteStore; uses its reader and writers."""

    _async_writer: LoopWriter
    _writer: GroupCommitWriter

    def _read(self, sql: str, args: Iterable[Any] = ()) -> list[Any]:
        raise NotImplementedError  # SqliteStore's

    # -- drift ------------------------------------------------------------------------
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
                where.append(f"{column} = ?")
                args.append(value)
        sql = _FINDING_COLUMNS + (" WHERE " + " AND ".join(where) if where else "")
        rows = self._read(sql + " ORDER BY id DESC LIMIT ?", [*args, limit])
        return [_finding(r) for r in rows]

    async def save_drift(self, batch: DriftBatch, *, now: float) -> None:
        """Add a monitor's profile deltas, finding updates and samples (one transaction)."""
        await self._async_writer.submit(_save_drift, batch, now)

    def save_drift_sync(self, batch: DriftBatch, *, now: float) -> None:
        self._writer.call(_save_drift, batch, now)

    def contract_samples(
        self, source: str, *, topic: str | None = None, limit: int = 50
    ) -> list[Sample]:
        """Recent payload samples of ``source`` (of one ``topic``), newest first."""
        sql = "SELECT id, source, topic, headers, payload, received_at FROM contract_samples"
        sql += " WHERE source = ?" + (" AND topic = ?" if topic is not None else "")
        args: list[Any] = [source] if topic is None else [source, topic]
        rows = self._read(sql + " ORDER BY id DESC LIMIT ?", [*args, limit])
        return [
            Sample(r[1], r[2], orjson.loads(r[3]), orjson.loads(r[4]), r[5], id=r[0]) for r in rows
        ]

    # -- version markers ----------------------------------------------------------------
    def marker_of(self, flow: str, entity: str) -> Marker | None:
        rows = self._read(
            "SELECT flow, entity, marker, event_id, updated_at FROM version_markers "
            "WHERE flow = ? AND entity = ?",
            (flow, entity),
        )
        return Marker(*rows[0]) if rows else None

    async def advance_marker(
        self, flow: str, entity: str, value: float, event_id: str, *, now: float
    ) -> bool:
        """Record ``value`` as the entity's last applied version unless a newer one is
        recorded already; True when it advanced."""
        advanced: bool = await self._async_writer.submit(
            _advance_marker, flow, entity, value, event_id, now
        )
        return advanced


def _save_drift(conn: sqlite3.Connection, batch: DriftBatch, now: float) -> None:
    for source, event_type, delta in batch.profiles:
        row = conn.execute(
            "SELECT profile FROM drift_profiles WHERE source = ? AND event_type = ?",
            (source, event_type),
        ).fetchone()
        merged = merge(None if row is None else orjson.loads(row[0]), delta)
        conn.execute(
            "INSERT INTO drift_profiles (source, event_type, profile, updated_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (source, event_type) "
            "DO UPDATE SET profile = excluded.profile, updated_at = excluded.updated_at",
            (source, event_type, orjson.dumps(merged).decode(), now),
        )
    for f in batch.findings:
        conn.execute(
            "INSERT INTO drift_findings "
            "(source, event_type, kind, path, detail, example, count, first_seen, last_seen) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (source, event_type, kind, path, detail) DO UPDATE SET "
            "count = count + excluded.count, last_seen = max(last_seen, excluded.last_seen)",
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
        conn.execute(
            "INSERT INTO contract_samples (source, topic, headers, payload, received_at) "
            "VALUES (?, ?, ?, ?, ?)",
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
        conn.execute(
            "DELETE FROM contract_samples WHERE source = ? AND topic IS ? AND id NOT IN "
            "(SELECT id FROM contract_samples WHERE source = ? AND topic IS ? "
            "ORDER BY id DESC LIMIT ?)",
            (source, topic, source, topic, batch.keep_samples),
        )


def _advance_marker(
    conn: sqlite3.Connection, flow: str, entity: str, value: float, event_id: str, now: float
) -> bool:
    cur = conn.execute(
        "INSERT INTO version_markers (flow, entity, marker, event_id, updated_at) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (flow, entity) DO UPDATE SET "
        "marker = excluded.marker, event_id = excluded.event_id, updated_at = excluded.updated_at "
        "WHERE excluded.marker > version_markers.marker",
        (flow, entity, value, event_id, now),
    )
    return bool(cur.rowcount)


def _finding(row: Any) -> DriftFinding:
    return DriftFinding(
        id=int(row[0]),
        source=row[1],
        event_type=row[2],
        kind=row[3],
        path=row[4],
        detail=row[5],
        example=orjson.loads(row[6]),
        count=int(row[7]),
        first_seen=float(row[8]),
        last_seen=float(row[9]),
    )
