"""The PostgreSQL store's hot-path writes, as pipelined :class:`Call` s.

Each builds one statement calling a function of ``postgres/0001_initial.sql`` (one
round trip per batch, not per write) and maps its rows. Waits for events are the
exception that needs a second look in the same transaction: an event whose type
someone waits for is matched here, in Python, exactly as the SQLite store does.
"""

from __future__ import annotations

from typing import Any

import orjson
from psycopg import AsyncConnection

from interlock.errors import LeaseLost
from interlock.events import Event
from interlock.stores.base import Claimed, EmitResult, NewEvent, Outcome, WaitSpec
from interlock.stores.postgres_writer import Batchable, Call, Rows
from interlock.stores.rows import event_of, matches
from interlock.stores.sql import queries

Q = queries("postgres")
Conn = AsyncConnection[Any]


def emit_call(item: NewEvent) -> Call:
    """Store one event and its deliveries; a run of these in one batch is one statement."""
    ev = item.event
    lease = item.lease
    # Lanes locked in (flow, lane) order (see postgres_writer._in_lock_order); which flow's
    # delivery of one event is inserted first does not matter.
    deliveries = sorted(item.deliveries, key=lambda d: (d.flow, d.lane))
    params = (
        ev.id,
        ev.type,
        ev.version,
        ev.source,
        ev.subject,
        ev.idempotency_key,
        ev.correlation_id,
        ev.causation_id,
        ev.occurred_at,
        ev.received_at,
        item.data_json.decode(),
        # One JSON text, not three arrays: psycopg adapts a text much faster than a list.
        orjson.dumps([(d.flow, d.lane, d.idem) for d in deliveries]).decode(),
        None if lease is None else lease.worker,
        None if lease is None else lease.until,
        0 if lease is None else lease.count,
    )

    async def then(conn: Conn, rows: Rows) -> EmitResult:
        event_id, created, seq, leased, flows, lanes, waits = rows[0]
        if not created:
            return EmitResult(event_id=event_id, created=False)
        woke = await _wake_waiters(conn, ev, item.data_json) if waits else 0
        return EmitResult(
            event_id=event_id,
            created=True,
            deliveries=len(item.deliveries),
            woke=woke,
            seq=int(seq),
            leased=tuple(zip(leased, flows, lanes, strict=True)),
        )

    first = (deliveries[0].flow, deliveries[0].lane) if deliveries else ("", "")
    return Call(
        Q["emit"], params, then, first, Batchable("emit", params, _emit_many, distinct_lanes=False)
    )


def _emit_many(items: list[tuple[Any, ...]]) -> tuple[str, tuple[Any, ...]]:
    """One statement for a run of emits (see interlock_emit_many): their arguments as one
    JSON text."""
    return Q["emit-many"], (orjson.dumps(items).decode(),)


async def _wake_waiters(conn: Conn, ev: Event, data_json: bytes) -> int:
    woke = 0
    cur = await conn.execute(Q["waits-for-type"], (ev.type,))
    for delivery_id, step, match_json in await cur.fetchall():
        if matches(ev, orjson.loads(match_json)):
            await _wake(conn, delivery_id, step, ev, ev.received_at)
            woke += 1
    return woke


async def _wake(conn: Conn, delivery_id: int, step: str, ev: Event, due: float) -> None:
    payload = orjson.dumps({"event": ev.to_cloudevent()}).decode()
    await conn.execute(Q["insert-step"], (delivery_id, step, payload, due))
    await conn.execute(Q["delete-wait"], (delivery_id,))
    await conn.execute(Q["wake-waiter"], (due, delivery_id))
    await conn.execute(Q["notify"])


async def _catch_up_wait(conn: Conn, delivery_id: int, wait: WaitSpec, now: float) -> None:
    """Take an event that arrived after the flow reached its wait but before the wait was
    recorded: the earliest match wins. The lock makes every emit of the type either
    finish before this looks, or look for waits after this commits."""
    if wait.since is None:
        return
    await conn.execute(Q["wait-lock"], (wait.event_type,))
    cur = await conn.execute(Q["events-of-type-since"], (wait.event_type, wait.since))
    found: Event | None = None
    for row in await cur.fetchall():
        ev = event_of(row)
        if matches(ev, wait.match):
            found = ev
    if found is not None:
        await _wake(conn, delivery_id, wait.step, found, now)


def claimed_of(row: Any) -> Claimed:
    steps = {} if row[9] is None else orjson.loads(row[9])
    return Claimed(
        row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8], event_of(row[10:]), steps
    )


async def _claimed_rows(conn: Conn, rows: Rows) -> list[Claimed]:
    return [claimed_of(row) for row in rows]


def claim_call(worker: str, limit: int, now: float, lease: float) -> Call:
    return Call(Q["claim"], (worker, limit, now, lease), _claimed_rows)


def settle_call(o: Outcome, worker: str, chain: bool, now: float, lease: float) -> Call:
    wait = o.wait
    steps = o.steps
    params = (
        o.delivery_id,
        o.fence,
        o.flow,
        o.lane,
        o.kind,
        worker,
        chain,
        now,
        lease,
        o.started_at,
        o.finished_at,
        o.error_class,
        o.reason,
        o.delay,
        o.due_at,
        1 if o.counts else 0,
        o.skip_lane,
        None if o.context is None else orjson.dumps(o.context).decode(),
        None if wait is None else wait.step,
        None if wait is None else wait.event_type,
        None if wait is None else orjson.dumps(wait.match).decode(),
        None if wait is None else wait.deadline,
        orjson.dumps([(s[0], s[1].decode(), s[2]) for s in steps]).decode() if steps else None,
        o.number,
        o.chain,
        None if not o.calls else orjson.dumps(o.calls).decode(),
    )

    async def then(conn: Conn, rows: Rows) -> Claimed | LeaseLost | None:
        row = rows[0]
        if not row[0]:
            if o.kind == "released":
                return LeaseLost(f"delivery {o.delivery_id}: lease lost")
            return LeaseLost(f"delivery {o.delivery_id}: lease lost; outcome {o.kind} dropped")
        if wait is not None:
            await _catch_up_wait(conn, o.delivery_id, wait, now)
        return None if row[1] is None else claimed_of(row)

    batch = None
    if (
        o.kind == "succeeded"
        and o.number > 0
        and not o.counts
        and o.error_class is None
        and o.reason is None
        and o.context is None
    ):
        # The common outcome: the writer may settle a batch of these in one statement.
        item = (
            {
                "id": o.delivery_id,
                "fence": o.fence,
                "flow": o.flow,
                "lane": o.lane,
                "started": o.started_at,
                "finished": o.finished_at,
                "number": o.number,
                "chain": o.chain,
                "steps": params[22],  # JSON text
                "calls": params[25],  # JSON text
            },
            now,
            worker,
            chain,
            lease,
        )
        batch = Batchable(("settle-succeeded", worker, chain, lease), item, _settle_succeeded)
    return Call(Q["settle"], params, then, (o.flow, o.lane), batch)


def _settle_succeeded(items: list[tuple[Any, ...]]) -> tuple[str, tuple[Any, ...]]:
    """One statement for many succeeded outcomes (see interlock_settle_succeeded); every
    item has the same worker, chain and lease (the batch key)."""
    _, _, worker, chain, lease = items[0]
    rows = orjson.dumps([item[0] for item in items]).decode()
    return Q["settle-succeeded"], (rows, worker, chain, max(item[1] for item in items), lease)


def record_steps_call(delivery_id: int, fence: int, steps: list[tuple[str, bytes, float]]) -> Call:
    params = (
        delivery_id,
        fence,
        [s[0] for s in steps],
        [s[1].decode() for s in steps],
        [s[2] for s in steps],
    )

    async def then(conn: Conn, rows: Rows) -> LeaseLost | None:
        if rows[0][0]:
            return None
        name = steps[0][0] if steps else "?"
        return LeaseLost(f"delivery {delivery_id}: lease lost before step {name!r} was recorded")

    return Call(Q["record-steps"], params, then)


def heartbeat_call(worker: str, leases: list[tuple[int, int]], until: float) -> Call:
    ids = [d for d, _ in leases]
    params = (until, ids, [f for _, f in leases], worker)

    async def then(conn: Conn, rows: Rows) -> list[int]:
        alive = {r[0] for r in rows}
        return [d for d in ids if d not in alive]

    return Call(Q["heartbeat"], params, then)


def emit_many_call(items: list[NewEvent]) -> Call:
    """Several events in one call: all stored or none (a batch retried call by call must
    not split them)."""
    calls = [emit_call(item) for item in items]

    async def then(conn: Conn, _: Rows) -> list[EmitResult]:
        async with conn.pipeline() as pipeline:
            cursors = [await conn.execute(c.sql or "", c.params) for c in calls]
            await pipeline.sync()
            rows = [await cur.fetchall() for cur in cursors]
        return [await c.then(conn, r) for c, r in zip(calls, rows, strict=True)]

    return Call(None, (), then)
