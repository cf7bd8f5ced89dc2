"""What the SQLite store does with events and deliveries inside one group-commit transaction.

Every function here takes the writer's connection, runs in an open
``BEGIN IMMEDIATE`` transaction, and reports an expected refusal (a lost
lease) by returning the exception instead of raising it, so that it fails
only its own caller and not the whole batch (see ``writer.py``).
"""

from __future__ import annotations

import sqlite3
from typing import Any

import orjson

from interlock.errors import LeaseLost, StoreCorrupt
from interlock.events import Event
from interlock.stores.base import (
    Claimed,
    EmitResult,
    NewEvent,
    Outcome,
    WaitSpec,
)
from interlock.stores.rows import event_of, matches
from interlock.stores.sql import migrations, queries

Q = queries("sqlite")


# -- operations run by the writer thread, inside one transaction -------------------------


def _upgrade(conn: sqlite3.Connection, url: str) -> list[str]:
    current = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if current == 0:
        # Checked inside the write transaction: another process may be creating the schema.
        tables = [r[0] for r in conn.execute(Q["user-tables"])]
        if tables:
            raise StoreCorrupt(
                f"{url}: this SQLite file is not an interlock store (it already holds tables "
                f"{', '.join(tables[:5])}); point the database URL at a new or interlock file"
            )
    applied = []
    for migration in migrations("sqlite"):
        if migration.version <= current:
            continue
        for statement in _split_sql(migration.sql):
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {migration.version}")
        applied.append(f"{migration.version:04d}_{migration.name}")
    return applied


def _split_sql(script: str) -> list[str]:
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def _emit(conn: sqlite3.Connection, items: list[NewEvent]) -> list[EmitResult]:
    results: list[EmitResult] = []
    execute = conn.execute
    wait_types = {row[0] for row in execute(Q["wait-types"])}
    for item in items:
        ev = item.event
        cur = execute(
            Q["insert-event"],
            (
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
            ),
        )
        if not cur.rowcount:
            first = execute(
                Q["find-event-by-idempotency"], (ev.source, ev.idempotency_key)
            ).fetchone()
            results.append(EmitResult(event_id=first[0], created=False))
            continue
        seq = cur.lastrowid
        lease = item.lease
        to_lease = lease.count if lease is not None else 0
        leased: list[tuple[int, str, str]] = []
        for d in item.deliveries:
            reason = None
            idem = d.idem
            if idem is not None:
                dup = execute(Q["find-delivery-by-idempotency"], (d.flow, idem)).fetchone()
                if dup is not None:
                    execute(
                        Q["insert-delivery"],
                        (
                            seq,
                            d.flow,
                            d.lane,
                            None,
                            "skipped",
                            None,
                            ev.received_at,
                            f"duplicate of delivery {dup[0]} (idempotency key {idem!r})",
                        ),
                    )
                    continue
            if not execute(Q["lane-open"], (d.flow, d.lane)).rowcount:
                status, due = "queued", None
            elif to_lease and lease is not None:
                to_lease -= 1
                cur = execute(
                    Q["insert-delivery-leased"],
                    (
                        seq,
                        d.flow,
                        d.lane,
                        idem,
                        lease.until,
                        ev.received_at,
                        lease.worker,
                        ev.received_at,
                    ),
                )
                leased.append((int(cur.lastrowid or 0), d.flow, d.lane))
                continue
            else:
                status, due = "pending", ev.received_at
            execute(
                Q["insert-delivery"],
                (seq, d.flow, d.lane, idem, status, due, ev.received_at, reason),
            )
        woke = _wake_waiters(conn, ev, item.data_json) if ev.type in wait_types else 0
        results.append(
            EmitResult(
                event_id=ev.id,
                created=True,
                deliveries=len(item.deliveries),
                woke=woke,
                seq=int(seq or 0),
                leased=tuple(leased),
            )
        )
    return results


def _wake_waiters(conn: sqlite3.Connection, ev: Event, data_json: bytes) -> int:
    woke = 0
    for delivery_id, step, match_json in conn.execute(Q["waits-for-type"], (ev.type,)).fetchall():
        if matches(ev, orjson.loads(match_json)):
            _wake(conn, delivery_id, step, ev, ev.received_at)
            woke += 1
    return woke


def _catch_up_wait(conn: sqlite3.Connection, delivery_id: int, wait: WaitSpec, now: float) -> None:
    """Take an event that arrived after the flow reached its wait but before the wait was
    recorded (``_wake_waiters`` could not see it yet): the earliest match wins."""
    if wait.since is None:
        return
    found: Event | None = None
    for row in conn.execute(Q["events-of-type-newest-first"], (wait.event_type,)):
        ev = event_of(row)
        if ev.received_at < wait.since:
            break
        if matches(ev, wait.match):
            found = ev
    if found is not None:
        _wake(conn, delivery_id, wait.step, found, now)


def _wake(conn: sqlite3.Connection, delivery_id: int, step: str, ev: Event, due: float) -> None:
    payload = {"event": ev.to_cloudevent()}
    conn.execute(Q["insert-step"], (delivery_id, step, orjson.dumps(payload).decode(), due))
    conn.execute(Q["delete-wait"], (delivery_id,))
    conn.execute(Q["wake-waiter"], (due, delivery_id))


def _claim(
    conn: sqlite3.Connection, worker: str, limit: int, now: float, lease: float
) -> list[Claimed]:
    due = conn.execute(Q["due"], (now, limit)).fetchall()
    for delivery_id, status in due:
        if status == "waiting":
            # The wait timed out: record its step as None so the flow sees the timeout.
            wait = conn.execute(Q["wait-of"], (delivery_id,)).fetchone()
            if wait is not None:
                conn.execute(Q["insert-step"], (delivery_id, wait[0], "null", now))
                conn.execute(Q["delete-wait"], (delivery_id,))
        elif status == "running":
            # Its worker crashed or was paused past the lease: that run counts as a failed attempt.
            lost_worker, reason = conn.execute(Q["expire-lease"], (delivery_id,)).fetchone()
            conn.execute(
                Q["insert-attempt"],
                (
                    lost_worker,
                    now,
                    now,
                    "lease_expired",
                    "retryable",
                    reason,
                    0.0,
                    None,
                    delivery_id,
                ),
            )
    ids = [delivery_id for delivery_id, _ in due]
    claimed: list[Claimed] = []
    # Lease the whole batch with two statements per chunk, not two per delivery.
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        marks = ",".join("?" * len(chunk))
        conn.execute(Q["lease-many"].format(ids=marks), (worker, now + lease, now, *chunk))
        rows = {row[0]: row for row in conn.execute(Q["leased-many"].format(ids=marks), chunk)}
        claimed.extend(_claimed(conn, rows[delivery_id]) for delivery_id in chunk)
    return claimed


_CHUNK = 500  # ids per statement, well under SQLite's limit on bound parameters


def _lease(
    conn: sqlite3.Connection, delivery_id: int, worker: str, now: float, lease: float
) -> Claimed:
    conn.execute(Q["lease"], (worker, now + lease, now, delivery_id))
    return _claimed(conn, conn.execute(Q["leased"], (delivery_id,)).fetchone())


def _claimed(conn: sqlite3.Connection, row: Any) -> Claimed:
    (did, flow, lane, fence, attempts, runs, chain, first_attempt_at) = row[:8]
    event = event_of(row[8:])
    # A delivery never leased before has no steps yet: skip the lookup on the hot path.
    # (A released run counts no run but may have checkpointed steps: the fence tells.)
    steps = (
        {name: orjson.loads(result) for name, result in conn.execute(Q["steps-of"], (did,))}
        if runs or chain > 1 or fence > 1
        else {}
    )
    return Claimed(did, flow, lane, fence, attempts, runs, chain, first_attempt_at, event, steps)


def _record_step(
    conn: sqlite3.Connection,
    delivery_id: int,
    fence: int,
    name: str,
    result_json: bytes,
    now: float,
) -> LeaseLost | None:
    args = (delivery_id, name, result_json.decode(), now, delivery_id, fence)
    if conn.execute(Q["insert-step-fenced"], args).rowcount:
        return None
    if conn.execute(Q["check-fence"], (delivery_id, fence)).fetchone() is None:
        return LeaseLost(f"delivery {delivery_id}: lease lost before step {name!r} was recorded")
    return None  # already recorded (a replayed write): the first result stands


def _record_steps(
    conn: sqlite3.Connection, delivery_id: int, fence: int, steps: list[tuple[str, bytes, float]]
) -> LeaseLost | None:
    for name, result_json, now in steps:
        refused = _record_step(conn, delivery_id, fence, name, result_json, now)
        if refused is not None:
            return refused
    return None


def _settle(
    conn: sqlite3.Connection, o: Outcome, worker: str, chain: bool, now: float, lease: float
) -> Claimed | LeaseLost | None:
    counts = 1 if o.counts else 0
    if o.kind in ("succeeded", "dead", "skipped"):
        blocking = 1 if o.kind == "dead" and not o.skip_lane else 0
        context = None if o.context is None else orjson.dumps(o.context).decode()
        cur = conn.execute(
            Q["finish"],
            (
                o.kind,
                o.finished_at,
                counts,
                o.error_class,
                o.reason,
                context,
                blocking,
                o.delivery_id,
                o.fence,
            ),
        )
    elif o.kind == "wait":
        assert o.wait is not None
        cur = conn.execute(
            Q["reschedule"],
            ("waiting", o.wait.deadline, 1, 0, None, o.reason, o.delivery_id, o.fence),
        )
        if cur.rowcount:
            conn.execute(
                Q["insert-wait"],
                (
                    o.delivery_id,
                    o.wait.step,
                    o.wait.event_type,
                    orjson.dumps(o.wait.match).decode(),
                    now,
                    o.wait.deadline,
                ),
            )
            _catch_up_wait(conn, o.delivery_id, o.wait, now)
    elif o.kind == "released":
        cur = conn.execute(
            Q["reschedule"], ("pending", o.due_at, 0, 0, None, None, o.delivery_id, o.fence)
        )
        return None if cur.rowcount else LeaseLost(f"delivery {o.delivery_id}: lease lost")
    else:  # retry, sleep
        cur = conn.execute(
            Q["reschedule"],
            ("pending", o.due_at, 1, counts, o.error_class, o.reason, o.delivery_id, o.fence),
        )
    if not cur.rowcount:
        return LeaseLost(f"delivery {o.delivery_id}: lease lost; outcome {o.kind} dropped")
    # The fenced update above succeeded, so the checkpoints that came with the outcome
    # belong to the lease holder: no per-step fence check needed.
    for name, result_json, recorded_at in o.steps:
        conn.execute(Q["insert-step"], (o.delivery_id, name, result_json.decode(), recorded_at))
    if o.kind in ("sleep", "wait"):
        # Time parked on purpose is not time spent retrying: Retry.max_elapsed restarts.
        conn.execute(Q["restart-elapsed"], (o.delivery_id,))
    calls = None if not o.calls else orjson.dumps(o.calls).decode()
    if o.number:  # the worker knows the attempt's number and chain: no lookup needed
        conn.execute(
            Q["insert-attempt-values"],
            (
                o.delivery_id,
                o.number,
                o.chain,
                worker,
                o.started_at,
                o.finished_at,
                o.kind,
                o.error_class,
                o.reason,
                o.delay,
                calls,
            ),
        )
    else:
        conn.execute(
            Q["insert-attempt"],
            (
                worker,
                o.started_at,
                o.finished_at,
                o.kind,
                o.error_class,
                o.reason,
                o.delay,
                calls,
                o.delivery_id,
            ),
        )
    if o.kind in ("succeeded", "skipped") or (o.kind == "dead" and o.skip_lane):
        return _advance_lane(conn, o.flow, o.lane, worker, chain, now, lease)
    return None


def _advance_lane(
    conn: sqlite3.Connection,
    flow: str,
    lane: str,
    worker: str,
    chain: bool,
    now: float,
    lease: float,
) -> Claimed | None:
    nxt = conn.execute(Q["next-in-lane"], (flow, lane)).fetchone()
    if nxt is None:
        conn.execute(Q["lane-close"], (flow, lane))
        return None
    if chain:
        return _lease(conn, nxt[0], worker, now, lease)
    conn.execute(Q["promote"], (now, nxt[0]))
    return None


def _heartbeat(
    conn: sqlite3.Connection, worker: str, leases: list[tuple[int, int]], until: float
) -> list[int]:
    lost = []
    for delivery_id, fence in leases:
        if not conn.execute(Q["heartbeat"], (until, delivery_id, fence, worker)).rowcount:
            lost.append(delivery_id)
    return lost


def _dead(conn: sqlite3.Connection, delivery_id: int) -> tuple[str, str, bool] | None:
    """(flow, lane, blocking) of a dead delivery; None when it is not dead (or unknown)."""
    row = conn.execute(Q["delivery-for-replay"], (delivery_id,)).fetchone()
    if row is None or row[3] != "dead":
        return None
    return row[1], row[2], bool(row[4])


def _audited(
    conn: sqlite3.Connection,
    now: float,
    actor: str,
    action: str,
    delivery_id: int,
    reason: str,
    flow: str,
) -> None:
    detail = orjson.dumps({"flow": flow}).decode()
    target = f"delivery:{delivery_id}"
    conn.execute(Q["insert-audit"], (now, actor, action, target, reason, detail))


def _replay(
    conn: sqlite3.Connection, ids: list[int], actor: str, reason: str, now: float
) -> list[int]:
    done = []
    for delivery_id in ids:
        dead = _dead(conn, delivery_id)
        if dead is None:
            continue
        flow, lane, blocking = dead
        due: float | None
        if blocking:
            status, due = "pending", now  # it still heads its lane
        else:
            opened = conn.execute(Q["lane-open"], (flow, lane)).rowcount
            status, due = ("pending", now) if opened else ("queued", None)
        conn.execute(Q["replay-delivery"], (status, due, delivery_id))
        _audited(conn, now, actor, "dlq.replay", delivery_id, reason, flow)
        done.append(delivery_id)
    return done


def _discard(
    conn: sqlite3.Connection, ids: list[int], actor: str, reason: str, now: float
) -> list[int]:
    done = []
    for delivery_id in ids:
        dead = _dead(conn, delivery_id)
        if dead is None:
            continue
        flow, lane, blocking = dead
        conn.execute(Q["discard-delivery"], (f"discarded by {actor}: {reason}", now, delivery_id))
        if blocking:
            _advance_lane(conn, flow, lane, actor, False, now, 0.0)
        _audited(conn, now, actor, "dlq.discard", delivery_id, reason, flow)
        done.append(delivery_id)
    return done
