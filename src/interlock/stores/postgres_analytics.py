"""The PostgreSQL store's analytics: flow stats and series, SLO counts, samples and
alerts, with the meaning (and the id-range bisection) of ``sqlite_analytics.py``; the
queries are in ``sql/postgres_analytics.sql``."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from psycopg import AsyncConnection

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
from interlock.stores.postgres_writer import Call, Rows
from interlock.stores.sql import queries
from interlock.stores.sqlite_analytics import (
    ROLLUP_CHUNK,
    SETTLE,
    SLACK,
    _alerts,
    minute_ceil,
    minute_floor,
)

A = queries("postgres_analytics")
Conn = AsyncConnection[Any]


class PostgresAnalytics:
    """Analytics reads and alert writes; needs the host store's ``_read`` and ``_write``."""

    def _read(self, sql: str, args: Any = ()) -> list[Any]:
        raise NotImplementedError  # PostgresStore's

    def _write(self, call: Call) -> Any:
        raise NotImplementedError  # PostgresStore's

    def _first_id(self, bounds: str, probe: str, at: float) -> int:
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

    def _ids(self, table: str, since: float, until: float) -> tuple[int, int]:
        bounds, probe = (f"{table}-ids", f"{table}-at")
        return (
            self._first_id(bounds, probe, since - SLACK),
            self._first_id(bounds, probe, until + SLACK),
        )

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

        lo, hi = self._ids("delivery", since, until)
        args: dict[str, Any] = {"since": since, "until": until, "lo": lo, "hi": hi}
        for flow, n in self._read(A["created-by-flow"], args):
            of(flow).created(int(n))
        lo, hi = self._ids("attempt", since, until)
        args = {"since": since, "until": until, "lo": lo, "hi": hi}
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
        base = {"since": since, "until": until, "flow": flow, "bucket": bucket_seconds}
        lo, hi = self._ids("delivery", since, until)
        for i, n in self._read(A["created-series"], {**base, "lo": lo, "hi": hi}):
            builders[min(int(i), last)].created(int(n))
        lo, hi = self._ids("attempt", since, until)
        args = {**base, "lo": lo, "hi": hi}
        for i, outcome, error_class, n in self._read(A["ended-series"], args):
            builders[min(int(i), last)].ended(outcome, error_class, int(n))
        for i, lag in self._read(A["lags-series"], args):
            builders[min(int(i), last)].lags.append(float(lag))
        return [b.build(within) for b in builders]

    def slo_counts(
        self, flow: str, within: float, ranges: Sequence[tuple[float, float]], *, now: float
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
                    g, b = self._scan_slo(flow, within, start, stop)
                    good, bad = good + g, bad + b
            out.append(SloCounts(since, until, int(good), int(bad)))
        return out

    def _scan_slo(self, flow: str, within: float, since: float, until: float) -> tuple[int, int]:
        lo, hi = self._ids("delivery", since - within, until)
        args = {"within": within, "lo": lo, "hi": hi, "flow": flow, "since": since, "until": until}
        good, total = self._read(A["slo-counts"], args)[0]
        return int(good), int(total) - int(good)

    async def roll_up_slo(self, flow: str, within: float, *, now: float, keep: float) -> int:
        """Roll up ``flow``'s SLO counts per minute (see the SQLite store's twin)."""
        target = minute_floor(now - SETTLE)
        oldest = minute_floor(now - keep)
        found = self._read(A["slo-mark"], (flow, within))
        mark = (int(found[0][0]), int(found[0][1])) if found else None
        if mark is None or mark[1] < oldest or mark[0] > oldest + 60:
            since, begin = oldest, oldest
        else:
            since, begin = max(mark[0], oldest), mark[1]
        end = min(target, begin + ROLLUP_CHUNK)
        if end <= begin:
            return 0
        lo, hi = self._ids("delivery", begin - within, end)
        args = {"within": within, "lo": lo, "hi": hi, "flow": flow, "since": begin, "until": end}
        rows = await asyncio.to_thread(self._read, A["slo-minutes-raw"], args)
        minutes = [(int(m), int(g), int(t) - int(g)) for m, g, t in rows]
        written: int = await self._write(
            _roll_up_call(flow, within, mark, (since, begin, end), minutes)
        )
        return written

    def flow_samples(
        self, flow: str, since: float, until: float, *, limit: int = 10_000, data: bool = True
    ) -> list[FlowSample]:
        check_range(since, until)
        lo, hi = self._ids("delivery", since, until)
        args = {
            "since": since,
            "until": until,
            "lo": lo,
            "hi": hi,
            "flow": flow,
            "limit": limit,
            "data": data,
        }
        return [
            FlowSample(
                str(r[0]),
                float(r[1]),
                float(r[2]),
                r[3],
                {} if r[4] is None else orjson.loads(r[4]),
            )
            for r in self._read(A["flow-samples"], args)
        ]

    async def fire_alert(self, alert: NewAlert) -> tuple[AlertRow, bool]:
        """Record a firing alert; ``(row, True)`` when it newly fired, ``(row, False)`` when
        it was firing already (its burn rates refreshed)."""
        alert_id, fired = await self._write(_fire_alert_call(alert))
        return self._alert(alert_id), fired

    async def resolve_alert(self, flow: str, severity: str, *, now: float) -> AlertRow | None:
        """Resolve the firing alert of ``flow`` and ``severity``; None when none fires."""
        alert_id = await self._write(_resolve_alert_call(flow, severity, now))
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
        for clause, value in (("flow = %s", flow), ("severity = %s", severity)):
            if value is not None:
                where.append(clause)
                args.append(value)
        if since is not None:
            where.append("(resolved_at IS NULL OR resolved_at >= %s)")
            args.append(since)
        sql = A["alert-columns"]
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY fired_at DESC, id DESC LIMIT %s"
        return list(_alerts(self._read(sql, [*args, limit])))

    def _alert(self, alert_id: int) -> AlertRow:
        return next(_alerts(self._read(A["alert-columns"] + " WHERE id = %s", (alert_id,))))


def _roll_up_call(
    flow: str,
    within: float,
    expected: tuple[int, int] | None,
    span: tuple[int, int, int],
    minutes: list[tuple[int, int, int]],
) -> Call:
    since, begin, end = span

    async def then(conn: Conn, rows: Rows) -> int:
        if (None if not rows else (int(rows[0][0]), int(rows[0][1]))) != expected:
            return 0  # another process moved the mark: its work stands
        trim = 2**62 if begin == since else since
        await conn.execute(A["slo-minutes-trim"], (flow, within, trim))
        for minute, good, bad in minutes:
            await conn.execute(A["slo-minute-put"], (flow, within, minute, good, bad))
        await conn.execute(A["slo-mark-put"], (flow, within, since, end))
        return (end - begin) // 60

    return Call(A["slo-mark-for-update"], (flow, within), then)


def _fire_alert_call(a: NewAlert) -> Call:
    async def then(conn: Conn, rows: Rows) -> tuple[int, bool]:
        if rows:
            await conn.execute(
                A["refresh-alert"],
                (a.at, a.burn_long, a.burn_short, a.budget_remaining, a.summary, rows[0][0]),
            )
            return int(rows[0][0]), False
        cur = await conn.execute(
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
        row = await cur.fetchone()
        assert row is not None
        return int(row[0]), True

    return Call(A["open-alert"], (a.flow, a.severity), then)


def _resolve_alert_call(flow: str, severity: str, now: float) -> Call:
    async def then(conn: Conn, rows: Rows) -> int | None:
        if not rows:
            return None
        await conn.execute(A["resolve-alert"], (now, now, rows[0][0]))
        return int(rows[0][0])

    return Call(A["open-alert"], (flow, severity), then)
