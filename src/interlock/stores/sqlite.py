"""SqliteStore: the embedded default. One file, WAL mode, group-committed writes.

Durability profiles:

* ``durable`` (default) — ``synchronous=FULL``: an acknowledged write survives
  power loss, not only a process crash.
* ``fast`` — ``synchronous=NORMAL``: in WAL mode a process crash loses nothing,
  but a power loss or OS crash can lose the transactions committed since the
  last checkpoint (at most ``wal_autocheckpoint`` pages, 1,000 by default,
  roughly the last second of work under load).
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from interlock.errors import ConfigurationError, NotFound, StoreCorrupt
from interlock.events import Event
from interlock.stores.base import (
    AttemptRow,
    AuditRow,
    Claimed,
    DeadFilter,
    DeliveryRow,
    EmitResult,
    Gauge,
    NewEvent,
    Outcome,
    Stats,
    StepRow,
    Trace,
)
from interlock.stores.retention_sql import prune_sqlite
from interlock.stores.rows import attempt_of, audit_of, delivery_of, event_of
from interlock.stores.sql import migrations
from interlock.stores.sqlite_admin import SqliteAdmin
from interlock.stores.sqlite_admin_tx import _lease_permits, _pause_permits
from interlock.stores.sqlite_analytics import SqliteAnalytics
from interlock.stores.sqlite_contracts import SqliteContracts
from interlock.stores.sqlite_tx import (
    Q,
    _claim,
    _discard,
    _emit,
    _heartbeat,
    _record_steps,
    _replay,
    _settle,
    _upgrade,
)
from interlock.stores.writer import GroupCommitWriter, LoopWriter, map_sqlite_error

DURABILITY = {"durable": "FULL", "fast": "NORMAL"}


def sqlite_path(url: str) -> str:
    """``sqlite:///relative.db`` or ``sqlite:////absolute.db`` → a file path."""
    if not url.startswith("sqlite:///"):
        raise ConfigurationError(
            f"not a SQLite URL: {url!r} (write sqlite:///relative/path.db or sqlite:////abs/path.db)"
        )
    path = url[len("sqlite:///") :].split("?", 1)[0]
    if not path or path == ":memory:":
        raise ConfigurationError(
            "interlock needs a SQLite file (durability, several processes); "
            "an in-memory database is not supported"
        )
    return path


class SqliteStore(SqliteAdmin, SqliteContracts, SqliteAnalytics):
    """The embedded store. Safe for several processes on one machine."""

    dialect = "sqlite"

    def __init__(
        self, url: str, *, durability: str = "durable", busy_timeout: float = 10.0
    ) -> None:
        if durability not in DURABILITY:
            raise ConfigurationError(
                f"durability must be one of {', '.join(DURABILITY)}, not {durability!r}"
            )
        self.url = url
        self.path = sqlite_path(url)
        self.durability = durability
        self._busy_ms = int(busy_timeout * 1000)
        self._local = threading.local()
        # Async callers (workers, async emits) share one loop-driven group commit;
        # sync callers (CLI, scripts) go through a small writer thread.
        self._async_writer = LoopWriter(
            self._connect_writer,
            url,
            busy_timeout=busy_timeout,
            synchronous=DURABILITY[durability],
            # Rate-limit leases are ephemeral too: a lost one only means permits unused.
            light_ops=frozenset({_claim, _heartbeat, _lease_permits, _pause_permits}),
        )
        self._writer = GroupCommitWriter(self._connect_writer, url, busy_timeout=busy_timeout)

    # -- connections ----------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        parent = Path(self.path).parent
        if not parent.exists():
            raise ConfigurationError(f"{self.url}: folder {parent} does not exist")
        conn: sqlite3.Connection | None = None
        try:
            conn = sqlite3.connect(
                self.path,
                isolation_level=None,
                check_same_thread=False,
                timeout=self._busy_ms / 1000,
            )
            conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
            # WAL: readers never block the writer, and one fsync per commit.
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode != "wal":
                raise StoreCorrupt(f"{self.url}: cannot switch to WAL mode (got {mode})")
            conn.execute(f"PRAGMA synchronous = {DURABILITY[self.durability]}")
            # Keep the lookup pages of a large backlog in memory (64 MiB).
            conn.execute("PRAGMA cache_size = -65536")
            conn.execute("PRAGMA temp_store = MEMORY")
        except BaseException as exc:
            if conn is not None:
                conn.close()
            raise map_sqlite_error(exc, self.url) from None
        return conn

    def _connect_writer(self) -> sqlite3.Connection:
        conn = self._connect()
        # Writers wait for the lock in begin_immediate(), in finer steps than SQLite's handler.
        conn.execute("PRAGMA busy_timeout = 0")
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
        return conn

    def _read(self, sql: str, args: Iterable[Any] = ()) -> list[Any]:
        try:
            return self._reader().execute(sql, tuple(args)).fetchall()
        except sqlite3.Error as exc:
            raise map_sqlite_error(exc, self.url) from None

    def close(self) -> None:
        self._async_writer.close()
        self._writer.close()
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- schema ---------------------------------------------------------------------
    def schema_version(self) -> int:
        return int(self._read("PRAGMA user_version")[0][0])

    def upgrade(self) -> list[str]:
        """Apply pending migrations; safe to run from several processes at once."""
        return list(self._writer.call(_upgrade, self.url))

    def ensure_schema(self) -> None:
        known = migrations("sqlite")[-1].version
        current = self.schema_version()
        if current < known:
            self.upgrade()
        elif current > known:
            raise StoreCorrupt(
                f"{self.url}: schema v{current} was written by a newer interlock (this one knows "
                f"v{known}); upgrade interlock"
            )

    # -- writes ---------------------------------------------------------------------
    async def emit(self, items: list[NewEvent]) -> list[EmitResult]:
        result: list[EmitResult] = await self._async_writer.submit(_emit, items)
        return result

    def emit_sync(self, items: list[NewEvent]) -> list[EmitResult]:
        result: list[EmitResult] = self._writer.call(_emit, items)
        return result

    async def claim(self, worker: str, limit: int, now: float, lease: float) -> list[Claimed]:
        result: list[Claimed] = await self._async_writer.submit(_claim, worker, limit, now, lease)
        return result

    async def record_step(
        self, delivery_id: int, fence: int, name: str, result_json: bytes, now: float
    ) -> None:
        await self.record_steps_nowait(delivery_id, fence, [(name, result_json, now)])

    def record_steps_nowait(
        self, delivery_id: int, fence: int, steps: list[tuple[str, bytes, float]]
    ) -> asyncio.Future[None]:
        """Queue checkpoints ``(name, result JSON, recorded at)`` for the next group commit."""
        return self._async_writer.submit(_record_steps, delivery_id, fence, steps)

    def settle(
        self, outcome: Outcome, *, worker: str, chain: bool, now: float, lease: float
    ) -> asyncio.Future[Claimed | None]:
        """Record an outcome (fenced). With ``chain``, the lane's next delivery is leased to
        ``worker`` in the same transaction and returned."""
        return self._async_writer.submit(_settle, outcome, worker, chain, now, lease)

    async def heartbeat(
        self, worker: str, leases: list[tuple[int, int]], until: float
    ) -> list[int]:
        result: list[int] = await self._async_writer.submit(_heartbeat, worker, leases, until)
        return result

    async def replay(self, ids: list[int], *, actor: str, reason: str, now: float) -> list[int]:
        result: list[int] = await self._async_writer.submit(_replay, ids, actor, reason, now)
        return result

    async def discard(self, ids: list[int], *, actor: str, reason: str, now: float) -> list[int]:
        result: list[int] = await self._async_writer.submit(_discard, ids, actor, reason, now)
        return result

    def replay_sync(self, ids: list[int], *, actor: str, reason: str, now: float) -> list[int]:
        result: list[int] = self._writer.call(_replay, ids, actor, reason, now)
        return result

    def discard_sync(self, ids: list[int], *, actor: str, reason: str, now: float) -> list[int]:
        result: list[int] = self._writer.call(_discard, ids, actor, reason, now)
        return result

    def write_backlog(self) -> int:
        """Writes from this process waiting for their transaction: the gateway sheds
        load (503) when this grows past its limit instead of queueing without bound."""
        return self._async_writer.backlog

    # -- reads ----------------------------------------------------------------------
    def wakeup_token(self) -> int:
        """Changes whenever any connection (any process) commits to the database."""
        return int(self._read("PRAGMA data_version")[0][0])

    def next_due_at(self) -> float | None:
        value = self._read(Q["next-due"])[0][0]
        return None if value is None else float(value)

    def get_event(self, event_id: str) -> Event:
        rows = self._read(Q["event-by-id"], (event_id,))
        if not rows:
            raise NotFound(f"no event with id {event_id!r}")
        return event_of(rows[0])

    def list_events(
        self,
        *,
        type: str | None = None,
        subject: str | None = None,
        correlation_id: str | None = None,
        since: float | None = None,
        until: float | None = None,
        before_seq: int | None = None,
        limit: int = 50,
    ) -> list[Event]:
        """Newest first. ``since``/``until`` bound ``received_at``; ``before_seq`` pages."""
        sql = Q["event-by-id"].split(" WHERE ")[0]
        where: list[str] = []
        args: list[Any] = []
        for column, value in (
            ("type = ?", type),
            ("correlation_id = ?", correlation_id),
            ("received_at >= ?", since),
            ("received_at < ?", until),
            ("seq < ?", before_seq),
        ):
            if value is not None:
                where.append(column)
                args.append(value)
        if subject is not None:  # order:1042, or 1042 for any prefix
            where.append("(subject = ? OR subject LIKE ? ESCAPE '\\')")
            args.extend((subject, _any_prefix(subject)))
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY seq DESC LIMIT ?"
        return [event_of(r) for r in self._read(sql, [*args, limit])]

    def get_delivery(self, delivery_id: int) -> DeliveryRow:
        rows = self._read(Q["delivery-columns"] + " WHERE d.id = ?", (delivery_id,))
        if not rows:
            raise NotFound(f"no delivery with id {delivery_id}")
        return delivery_of(rows[0])

    def deliveries_of(self, event_seqs: list[int]) -> list[DeliveryRow]:
        out: list[DeliveryRow] = []
        for seq in event_seqs:
            rows = self._read(
                Q["delivery-columns"] + " WHERE d.event_seq = ? ORDER BY d.id", (seq,)
            )
            out.extend(delivery_of(r) for r in rows)
        return out

    def trace(self, query: str) -> Trace:
        """Events matching an event id, a subject (``invoice:in_1`` or ``in_1``) or a correlation id,
        plus everything that followed from them (same correlation id)."""
        query = query.strip()
        events: list[Event] = []
        if query.startswith("evt_"):
            rows = self._read(Q["event-by-id"], (query,))
        else:
            rows = []
            number = query.removeprefix("dlv_")
            if number.isdigit():  # a delivery id
                found = self._read(Q["delivery-columns"] + " WHERE d.id = ?", (int(number),))
                if found:
                    rows = self._read(Q["event-by-id"], (found[0][1],))
            if not query.startswith("dlv_"):
                # A bare number may as well be a subject (order:1042 → "1042"): keep both.
                matches = self._read(Q["events-by-correlation"], (query,))
                if not matches:
                    matches = self._read(Q["events-by-subject"], (query, _any_prefix(query)))
                rows = [*rows, *matches]
        seen: dict[str, Event] = {}
        correlations = {r[7] for r in rows}
        for row in rows:
            seen[row[1]] = event_of(row)
        for correlation in sorted(correlations):
            for row in self._read(Q["events-by-correlation"], (correlation,)):
                seen.setdefault(row[1], event_of(row))
        events = sorted(seen.values(), key=lambda e: e.seq)
        deliveries = self.deliveries_of([e.seq for e in events])
        attempts: list[AttemptRow] = []
        steps: list[StepRow] = []
        audit: list[AuditRow] = []
        for d in deliveries:
            attempts.extend(attempt_of(r) for r in self._read(Q["attempts-of"], (d.id,)))
            steps.extend(
                StepRow(r[0], r[1], orjson.loads(r[2]), r[3])
                for r in self._read(Q["step-rows-of"], (d.id,))
            )
            audit.extend(
                audit_of(r) for r in self._read(Q["audit-for-target"], (f"delivery:{d.id}",))
            )
        return Trace(events, deliveries, attempts, steps, audit)

    def list_dead(self, selection: DeadFilter) -> list[DeliveryRow]:
        where: list[str] = ["d.status = 'dead'"]
        args: list[Any] = []
        if selection.ids:
            where.append(f"d.id IN ({','.join('?' * len(selection.ids))})")
            args.extend(selection.ids)
        if selection.flow:
            where.append("d.flow = ?")
            args.append(selection.flow)
        if selection.since is not None:
            where.append("d.finished_at >= ?")
            args.append(selection.since)
        if selection.error_class:
            where.append("d.error_class = ?")
            args.append(selection.error_class)
        sql = Q["delivery-columns"] + " WHERE " + " AND ".join(where) + " ORDER BY d.id LIMIT ?"
        return [delivery_of(r) for r in self._read(sql, [*args, selection.limit])]

    def list_deliveries(
        self,
        *,
        status: str | None = None,
        flow: str | None = None,
        before_id: int | None = None,
        limit: int = 100,
    ) -> list[DeliveryRow]:
        """Newest first; ``before_id`` pages."""
        sql = Q["delivery-columns"]
        where: list[str] = []
        args: list[Any] = []
        for column, value in (
            ("d.status = ?", status),
            ("d.flow = ?", flow),
            ("d.id < ?", before_id),
        ):
            if value is not None:
                where.append(column)
                args.append(value)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY d.id DESC LIMIT ?"
        return [delivery_of(r) for r in self._read(sql, [*args, limit])]

    def list_audit(
        self,
        limit: int = 100,
        *,
        action: str | None = None,
        actor: str | None = None,
        target: str | None = None,
        since: float | None = None,
        before_id: int | None = None,
    ) -> list[AuditRow]:
        """Newest first; ``before_id`` pages."""
        sql = Q["list-audit"].split(" ORDER BY ")[0]
        where: list[str] = []
        args: list[Any] = []
        for column, value in (
            ("action = ?", action),
            ("actor = ?", actor),
            ("target = ?", target),
            ("at >= ?", since),
            ("id < ?", before_id),
        ):
            if value is not None:
                where.append(column)
                args.append(value)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC LIMIT ?"
        return [audit_of(r) for r in self._read(sql, [*args, limit])]

    def stats(self, now: float) -> Stats:
        events = int(self._read(Q["count-events"])[0][0])
        by_status = {str(s): int(n) for s, n in self._read(Q["count-by-status"])}
        attempts, retries = self._read(Q["count-attempts"])[0]
        oldest = self._read(Q["oldest-due"], (now,))[0][0]
        return Stats(
            events=events,
            by_status=by_status,
            attempts=int(attempts),
            retries=int(retries),
            oldest_due_lag=None if oldest is None else max(0.0, now - float(oldest)),
        )

    async def prune(self, before: float, *, limit: int) -> int:
        """Delete up to ``limit`` finished deliveries (and unreferenced events) older than
        ``before``: see :mod:`interlock.retention`."""
        deleted: int = await self._async_writer.submit(prune_sqlite, before, limit)
        return deleted

    def gauges(self) -> list[Gauge]:
        """Figures about the database itself: none worth a gauge for one SQLite file."""
        return []

    def blocked_flows(self) -> set[str]:
        """Flows with a dead delivery that still holds its lane."""
        rows = self._read(
            "SELECT DISTINCT flow FROM deliveries WHERE status = 'dead' AND blocking = 1"
        )
        return {str(r[0]) for r in rows}

    def flow_counts(self) -> dict[str, dict[str, int]]:
        rows = self._read("SELECT flow, status, count(*) FROM deliveries GROUP BY flow, status")
        out: dict[str, dict[str, int]] = {}
        for flow, status, n in rows:
            out.setdefault(str(flow), {})[str(status)] = int(n)
        return out


def _any_prefix(subject: str) -> str:
    """A LIKE pattern for ``<any prefix>:subject``."""
    escaped = subject.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%:{escaped}"
