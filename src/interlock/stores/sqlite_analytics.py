"""The SQLite store's analytics: flow stats and series, SLO counts, samples and alerts.

Mixed into :class:`~interlock.stores.sqlite.SqliteStore`; the queries are in
``sql/sqlite_analytics.sql``. Time ranges become id ranges by bisecting the
primary key (ids grow with time), so these reads need no index on the hot
tables and cost nothing on the write path.
"""

from __future__ import annotations

import asyncio
import math
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import orjson

from interlock.stores.analytics import (
    AlertRow,
    FlowSample,
    FlowStats,
    NewAlert,
    SloCounts,
    StatsBuilder,
    check_range,
    series_builders,
)
from interlock.stores.sql import queries
from interlock.stores.writer import LoopWriter

A = queries("sqlite_analytics")

# A minute of SLO decisions is rolled up once it ended this long ago (commits that land
# late, clocks a little apart), and at most this much time is rolled up per call.
SETTLE = 120.0
ROLLUP_CHUNK = 7 * 86400

# Commits may land a little out of clock order (group commits, several processes):
# id ranges are widened by this much and then filtered on the exact times.
SLACK = 120.0


class SqliteAnalytics:
    """Analytics reads and alert writes; needs the host store's ``_read`` and writer."""

    _read: Callable[..., list[Any]]
    _async_writer: LoopWriter
    _memo = threading.local()  # per thread: id bisections shared within one call

    # -- id ranges ---------------------------------------------------------------------
    def _first_id(self, bounds: str, probe: str, at: float) -> int:
        """The first id whose time is at or after ``at`` (max id + 1 when none is)."""
        memo: dict[tuple[str, float], int] | None = getattr(self._memo, "ids", None)
        if memo is not None and (probe, at) in memo:
            return memo[(probe, at)]
        found_id = self._bisect(bounds, probe, at)
        if memo is not None:
            memo[(probe, at)] = found_id
        return found_id

    def _bisect(self, bounds: str, probe: str, at: float) -> int:
        low, high = self._read(A[bounds])[0]
        if low is None:
            return 0
        lo, hi = int(low), int(high) + 1
        while lo < hi:
            mid = (lo + hi) // 2
            found = self._read(A[probe], (mid,))
            if not found or found[0][1] >= at:
                hi = mid
            else:
                lo = int(found[0][0]) + 1
        return lo

    def _delivery_ids(self, since: float, until: float) -> tuple[int, int]:
        return (
            self._first_id("delivery-ids", "delivery-at", since - SLACK),
            self._first_id("delivery-ids", "delivery-at", until + SLACK),
        )

    def _attempt_ids(self, since: float, until: float) -> tuple[int, int]:
        return (
            self._first_id("attempt-ids", "attempt-at", since - SLACK),
            self._first_id("attempt-ids", "attempt-at", until + SLACK),
        )

    # -- stats and series --------------------------------------------------------------
    def flow_stats(
        self, since: float, until: float, *, within: Mapping[str, float] | None = None
    ) -> dict[str, FlowStats]:
        check_range(since, until)
        within = within or {}
        builders: dict[str, StatsBuilder] = {}

        def of(flow: str) -> StatsBuilder:
            found = builders.get(flow)
            if found is None:
                found = builders[flow] = StatsBuilder(flow, since, until)
            return found

        d_lo, d_hi = self._delivery_ids(since, until)
        for flow, n in self._read(A["created-by-flow"], (since, until, d_lo, d_hi)):
            of(flow).created(int(n))
        a_lo, a_hi = self._attempt_ids(since, until)
        args = (since, until, a_lo, a_hi)
        for flow, outcome, error_class, n in self._read(A["ended-by-flow"], args):
            of(flow).ended(outcome, error_class, int(n))
        for flow, lag in self._read(A["lags-by-flow"], args):
            of(flow).lags.append(float(lag))
        return {name: b.build(within.get(name)) for name, b in sorted(builders.items())}

    def flow_series(
        self,
        flow: str,
        since: float,
        until: float,
        bucket_seconds: float,
        *,
        within: float | None = None,
    ) -> list[FlowStats]:
        check_range(since, until, bucket_seconds)
        builders = series_builders(flow, since, until, bucket_seconds)
        last = len(builders) - 1
        d_lo, d_hi = self._delivery_ids(since, until)
        for i, n in self._read(
            A["created-series"], (since, until, d_lo, d_hi, flow, bucket_seconds)
        ):
            builders[min(int(i), last)].created(int(n))
        a_lo, a_hi = self._attempt_ids(since, until)
        args = (since, until, a_lo, a_hi, flow, bucket_seconds)
        for i, outcome, error_class, n in self._read(A["ended-series"], args):
            builders[min(int(i), last)].ended(outcome, error_class, int(n))
        for i, lag in self._read(A["lags-series"], args):
            builders[min(int(i), last)].lags.append(float(lag))
        return [b.build(within) for b in builders]

    # -- SLOs and business metrics ---------------------------------------------------------
    def slo_counts(
        self, flow: str, within: float, ranges: Sequence[tuple[float, float]], *, now: float
    ) -> list[SloCounts]:
        self._memo.ids = {}  # ranges share their ends: bisect each end once
        try:
            return self._slo_counts(flow, within, ranges, now)
        finally:
            self._memo.ids = None

    def _slo_counts(
        self, flow: str, within: float, ranges: Sequence[tuple[float, float]], now: float
    ) -> list[SloCounts]:
        mark = self._read(A["slo-mark"], (flow, within))
        out = []
        for since, until in ranges:
            end = min(until, now)
            good = bad = 0
            pieces = [(since, end)]
            if mark:  # whole minutes already rolled up are summed, the edges counted
                m0 = max(minute_ceil(since), int(mark[0][0]))
                m1 = min(minute_floor(end), int(mark[0][1]))
                if m1 > m0:
                    good, bad = self._read(A["slo-minutes-sum"], (flow, within, m0, m1))[0]
                    pieces = [(since, m0), (m1, end)]
            for start, stop in pieces:
                if stop > start:
                    lo, hi = self._delivery_ids(start - within, stop)
                    g, total = self._read(A["slo-counts"], (within, lo, hi, flow, start, stop))[0]
                    good, bad = good + g, bad + total - g
            out.append(SloCounts(since, until, int(good), int(bad)))
        return out

    async def roll_up_slo(self, flow: str, within: float, *, now: float, keep: float) -> int:
        """Roll up ``flow``'s SLO counts per minute, for the minutes that can no longer
        change (ended ``SETTLE`` seconds ago), as far back as ``keep`` seconds; at most
        ``ROLLUP_CHUNK`` seconds of them per call. Returns the minutes rolled up."""
        target = minute_floor(now - SETTLE)
        oldest = minute_floor(now - keep)
        found = self._read(A["slo-mark"], (flow, within))
        mark = (int(found[0][0]), int(found[0][1])) if found else None
        if mark is None or mark[1] < oldest or mark[0] > oldest + 60:
            since, begin = oldest, oldest  # new, stale, or asked to keep more: start over
        else:
            since, begin = max(mark[0], oldest), mark[1]
        end = min(target, begin + ROLLUP_CHUNK)
        if end <= begin:
            return 0
        lo, hi = self._delivery_ids(begin - within, end)
        rows = await asyncio.to_thread(
            self._read, A["slo-minutes-raw"], (within, lo, hi, flow, begin, end)
        )
        minutes = [(int(m), int(g), int(t) - int(g)) for m, g, t in rows]
        written: int = await self._async_writer.submit(
            _roll_up, flow, within, mark, (since, begin, end), minutes
        )
        return written

    def flow_samples(
        self, flow: str, since: float, until: float, *, limit: int = 10_000, data: bool = True
    ) -> list[FlowSample]:
        check_range(since, until)
        lo, hi = self._delivery_ids(since, until)
        rows = self._read(A["flow-samples"], (since, until, lo, hi, flow, limit, int(data)))
        return [
            FlowSample(
                str(r[0]),
                float(r[1]),
                float(r[2]),
                r[3],
                {} if r[4] is None else orjson.loads(r[4]),
            )
            for r in rows
        ]

    # -- alerts ------------------------------------------------------------------------
    async def fire_alert(self, alert: NewAlert) -> tuple[AlertRow, bool]:
        """Record a firing alert; ``(row, True)`` when it newly fired, ``(row, False)`` when
        it was firing already (its burn rates refreshed)."""
        alert_id, fired = await self._async_writer.submit(_fire_alert, alert)
        return self._alert(alert_id), fired

    async def resolve_alert(self, flow: str, severity: str, *, now: float) -> AlertRow | None:
        """Resolve the firing alert of ``flow`` and ``severity``; None when none fires."""
        alert_id = await self._async_writer.submit(_resolve_alert, flow, severity, now)
        return None if alert_id is None else self._alert(alert_id)

    def list_alerts(
        self,
        *,
        firing: bool | None = None,
        flow: str | None = None,
        severity: str | None = None,
        since: float | None = None,
        limit: int = 100,
    ) -> list[AlertRow]:
        """Newest first; ``since`` keeps alerts firing then or fired later."""
        where: list[str] = []
        args: list[Any] = []
        if firing is not None:
            where.append("resolved_at IS NULL" if firing else "resolved_at IS NOT NULL")
        for clause, value in (("flow = ?", flow), ("severity = ?", severity)):
            if value is not None:
                where.append(clause)
                args.append(value)
        if since is not None:
            where.append("(resolved_at IS NULL OR resolved_at >= ?)")
            args.append(since)
        sql = A["alert-columns"]
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY fired_at DESC, id DESC LIMIT ?"
        return list(_alerts(self._read(sql, [*args, limit])))

    def _alert(self, alert_id: int) -> AlertRow:
        return next(_alerts(self._read(A["alert-columns"] + " WHERE id = ?", (alert_id,))))


def minute_floor(at: float) -> int:
    return math.floor(at / 60.0) * 60


def minute_ceil(at: float) -> int:
    return math.ceil(at / 60.0) * 60


def _roll_up(
    conn: sqlite3.Connection,
    flow: str,
    within: float,
    expected: tuple[int, int] | None,
    span: tuple[int, int, int],
    minutes: list[tuple[int, int, int]],
) -> int:
    """Store rolled-up minutes ``[begin, end)`` and the new mark, unless another process
    moved the mark since it was read (then its work stands and this is dropped)."""
    since, begin, end = span
    found = conn.execute(A["slo-mark"], (flow, within)).fetchone()
    if (None if found is None else (int(found[0]), int(found[1]))) != expected:
        return 0
    if begin == since:  # starting over: nothing older counts
        conn.execute(A["slo-minutes-trim"], (flow, within, 2**62))
    else:
        conn.execute(A["slo-minutes-trim"], (flow, within, since))
    for minute, good, bad in minutes:
        conn.execute(A["slo-minute-put"], (flow, within, minute, good, bad))
    conn.execute(A["slo-mark-put"], (flow, within, since, end))
    return (end - begin) // 60


def _alerts(rows: Iterable[Any]) -> Iterator[AlertRow]:
    for r in rows:
        yield AlertRow(
            int(r[0]),
            r[1],
            r[2],
            "firing" if r[4] is None else "resolved",
            *r[3:],
        )


def _fire_alert(conn: sqlite3.Connection, a: NewAlert) -> tuple[int, bool]:
    found = conn.execute(A["open-alert"], (a.flow, a.severity)).fetchone()
    if found is not None:
        conn.execute(
            A["refresh-alert"],
            (a.at, a.burn_long, a.burn_short, a.budget_remaining, a.summary, found[0]),
        )
        return int(found[0]), False
    cur = conn.execute(
        A["insert-alert"],
        (
            a.flow,
            a.severity,
            a.at,
            a.at,
            a.burn_long,
            a.burn_short,
            a.long_s,
            a.short_s,
            a.factor,
            a.budget_remaining,
            a.summary,
        ),
    )
    return int(cur.lastrowid or 0), True


def _resolve_alert(conn: sqlite3.Connection, flow: str, severity: str, now: float) -> int | None:
    found = conn.execute(A["open-alert"], (flow, severity)).fetchone()
    if found is None:
        return None
    conn.execute(A["resolve-alert"], (now, now, found[0]))
    return int(found[0])
