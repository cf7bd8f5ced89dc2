"""Durable ``ctx.sleep`` and ``ctx.wait_for_event`` survive a SIGKILLed worker.

Parked deliveries live in the store, not in the worker: killing the worker
while they are parked loses nothing, and a new worker resumes them — the
sleep when its time comes, a wait when its matching event arrives or, when
none does, once its timeout has passed (even if it passed while no worker ran).
"""

from __future__ import annotations

import json
import signal

from .chaos_app import OrderApproved, OrderPlaced, TrialStarted
from .conftest import Chaos, wait_until

NAP = 2.0
TIMEOUT = 2.5


def test_sleep_and_wait_survive_kill_9(chaos: Chaos) -> None:
    app = chaos.app
    app.emit_sync(TrialStarted(trial="t-1", nap_s=NAP))
    app.emit_sync(OrderPlaced(order="o-1"))
    app.emit_sync(OrderPlaced(order="o-2"))  # waits for an approval that never comes
    app.emit_sync(OrderPlaced(order="o-3", timeout_s=TIMEOUT))  # ... and gives up

    def parked() -> bool:
        sleeping = chaos.query(
            "SELECT count(*) FROM deliveries d JOIN attempts a ON a.delivery_id = d.id "
            "WHERE d.flow = 'nap' AND d.status = 'pending' AND a.outcome = 'sleep'"
        )[0][0]
        waiting = chaos.query("SELECT count(*) FROM waits")[0][0]
        return sleeping == 1 and waiting == 3

    first = chaos.spawn(lease=1.0, heartbeat=0.3)
    first.wait_ready()
    wait_until(parked, timeout=15, what="the sleep and the waits to be parked")
    assert first.kill() == -signal.SIGKILL
    assert chaos.query("SELECT count(*) FROM deliveries WHERE status = 'running'")[0][0] == 0

    second = chaos.spawn(lease=1.0, heartbeat=0.3)
    second.wait_ready()

    # A non-matching approval wakes nobody; the matching one wakes exactly its waiter.
    def waits_of(order: str) -> int:
        return chaos.query(
            "SELECT count(*) FROM waits w JOIN deliveries d ON d.id = w.delivery_id "
            "JOIN events e ON e.seq = d.event_seq WHERE json_extract(e.data, '$.order') = ?",
            (order,),
        )[0][0]

    app.emit_sync(OrderApproved(order="o-9", by="mallory"))
    assert (waits_of("o-1"), waits_of("o-2")) == (1, 1)
    app.emit_sync(OrderApproved(order="o-1", by="alice"))

    def done() -> bool:
        nap = chaos.query("SELECT status FROM deliveries WHERE flow = 'nap'")
        waits = chaos.query(
            "SELECT status FROM deliveries WHERE flow = 'await_approval' ORDER BY id"
        )
        return nap == [("succeeded",)] and waits == [
            ("succeeded",),
            ("waiting",),
            ("succeeded",),
        ]

    wait_until(done, timeout=20, what="the sleep and two of the waits to complete")
    second.signal(signal.SIGTERM)
    assert second.proc.wait(timeout=15) == 0, second.tail()

    ledger = chaos.ledger()
    by_kind: dict[str, list[list[str]]] = {}
    for record in ledger:
        by_kind.setdefault(record[0], []).append(record)

    # The step before the sleep ran once, in the first worker; the rest ran in the second.
    ((_, trial, before_at, before_pid),) = by_kind["before"]
    ((_, _, after_at, after_pid),) = by_kind["after"]
    assert trial == "t-1"
    assert int(before_pid) == first.pid
    assert int(after_pid) == second.pid
    slept = float(after_at) - float(before_at)
    assert NAP <= slept < NAP + 5.0, slept
    (until,) = chaos.query("SELECT result FROM steps WHERE name = 'sleep'")[0]
    assert float(after_at) >= json.loads(until)["until"]

    # The waits were registered once each, by the first worker. o-1 got alice's approval
    # (not mallory's, which matched nobody); o-3 timed out; o-2 is still waiting.
    asked = sorted((r[1], int(r[3])) for r in by_kind["asked"])
    assert asked == [("o-1", first.pid), ("o-2", first.pid), ("o-3", first.pid)]
    approved = sorted((r[1], r[2], int(r[4])) for r in by_kind["approved"])
    assert approved == [("o-1", "alice", second.pid), ("o-3", "timeout", second.pid)]
    ((o3_asked_at,),) = [(float(r[2]),) for r in by_kind["asked"] if r[1] == "o-3"]
    ((o3_done_at,),) = [(float(r[3]),) for r in by_kind["approved"] if r[1] == "o-3"]
    assert o3_done_at - o3_asked_at >= TIMEOUT
    assert chaos.query("SELECT count(*) FROM waits")[0][0] == waits_of("o-2") == 1

    # Parked deliveries held no lease: the kill cost no attempt.
    outcomes = chaos.query("SELECT outcome FROM attempts ORDER BY id")
    assert ("lease_expired",) not in outcomes
