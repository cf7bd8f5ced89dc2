"""SIGTERM drains: in-flight work finishes within the grace period or is released.

The worker stops claiming, lets in-flight deliveries finish for up to
``grace`` seconds, releases what is still running (back to ``pending``, due
now, no attempt spent) and exits 0. Nothing is left ``running``, and a new
worker finishes the released deliveries on their first attempt, replaying
the steps they had checkpointed instead of running them again.
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import subprocess
import time

import pytest

from .chaos_app import AccountBumped, Chore, SlowJob
from .conftest import Chaos, dedup_effects, wait_until

GRACE = 1.5
LONG = 60.0  # far beyond the grace period: these runs must be cut short and released
ROUNDS = 6  # SIGTERMs under load (each catches a mid-settle cancellation most of the time)


def chores(chaos: Chaos) -> dict[str, tuple[int, str, int, int]]:
    """chore or job name → (delivery id, status, attempts, runs)."""
    rows = chaos.query(
        "SELECT coalesce(json_extract(e.data, '$.name'), json_extract(e.data, '$.job')), "
        "d.id, d.status, d.attempts, d.runs FROM deliveries d JOIN events e ON e.seq = d.event_seq"
    )
    return {name: (did, status, attempts, runs) for name, did, status, attempts, runs in rows}


def started(chaos: Chaos) -> set[str]:
    """Chores inside their step, and jobs past their step (held in the handler body)."""
    return {r[1] for r in chaos.ledger() if r[0] in ("start", "enter-body")}


@pytest.mark.parametrize(
    ("concurrency", "short", "long", "queued"),
    [
        # Every slot busy with long work: the stop must not wait for a free slot.
        pytest.param(2, 0, 1, 3, id="saturated"),
        # Short runs finish inside the grace period; long ones are released.
        pytest.param(8, 3, 3, 0, id="mixed"),
    ],
)
def test_sigterm_finishes_or_releases_in_flight_work(
    chaos: Chaos, concurrency: int, short: int, long: int, queued: int
) -> None:
    app = chaos.app
    in_flight = [f"short-{i}" for i in range(short)] + [f"long-{i}" for i in range(long)]
    for name in in_flight:
        app.emit_sync(Chore(name=name, hold_s=0.6 if name.startswith("short") else LONG))
    # One more long run, held after its step was checkpointed (its effect is done).
    app.emit_sync(SlowJob(job="held", mode="body", hold_s=LONG))
    in_flight.append("held")
    behind = [f"later-{i}" for i in range(queued)]  # emitted once every slot is taken
    worker = chaos.spawn(concurrency=concurrency, lease=1.0, heartbeat=0.3, grace=GRACE)
    worker.wait_ready()
    wait_until(lambda: started(chaos) == set(in_flight), timeout=15, what="all chores to start")
    for name in behind:
        app.emit_sync(Chore(name=name, hold_s=0.0))

    # -- SIGTERM with everything in flight ---------------------------------------------------
    signalled = time.monotonic()
    worker.signal(signal.SIGTERM)
    try:
        code = worker.proc.wait(timeout=GRACE + 10)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"worker did not exit after SIGTERM:\n{worker.tail()}") from None
    took = time.monotonic() - signalled
    assert code == 0, worker.tail()
    assert took < GRACE + 2.0, f"exit took {took:.2f}s with a {GRACE}s grace period"

    state = chores(chaos)
    statuses = {name: status for name, (_, status, _, _) in state.items()}
    assert "running" not in statuses.values(), statuses
    for name in in_flight:
        _, status, attempts, runs = state[name]
        if name.startswith("short"):
            assert (status, attempts, runs) == ("succeeded", 0, 1), (name, state[name])
        else:
            # Released: claimable again at once, with no attempt spent or recorded.
            assert (status, attempts, runs) == ("pending", 0, 0), (name, state[name])
    for name in behind:
        assert statuses[name] == "pending", (name, statuses[name])  # never claimed
    released = [state[n][0] for n in in_flight if not n.startswith("short")]
    marks = ",".join("?" * len(released))
    assert chaos.query(
        f"SELECT count(*) FROM attempts WHERE delivery_id IN ({marks})", released
    ) == [(0,)]
    now = time.time()
    (late,) = chaos.query(
        f"SELECT count(*) FROM deliveries WHERE id IN ({marks}) AND (due_at IS NULL OR due_at > ?)",
        (*released, now),
    )[0]
    assert late == 0  # due now, not after some backoff
    assert worker.logged("chaos.stopped")

    # -- a new worker finishes everything, each on its first attempt -------------------------
    again = chaos.spawn(concurrency=concurrency, grace=GRACE, max_hold=0.05)
    again.wait_ready()
    wait_until(lambda: chaos.unfinished() == 0, timeout=20, what="the next worker to finish")
    again.signal(signal.SIGTERM)
    assert again.proc.wait(timeout=GRACE + 10) == 0, again.tail()
    state = chores(chaos)
    assert {status for _, status, _, _ in state.values()} == {"succeeded"}
    assert {(attempts, runs) for _, _, attempts, runs in state.values()} == {(0, 1)}
    outcomes = chaos.query("SELECT outcome, count(*) FROM attempts GROUP BY outcome")
    assert outcomes == [("succeeded", len(in_flight) + len(behind))]

    # The held job's checkpointed step was replayed, not run (and its effect sent) again.
    held = [r for r in chaos.ledger() if r[-2] == "held"]
    assert [(r[0], int(r[-1])) for r in held] == [
        ("enter", worker.pid),
        ("effect", worker.pid),
        ("enter-body", worker.pid),
        ("enter-body", again.pid),
        ("leave-body", again.pid),
    ]
    steps = chaos.query("SELECT name, result FROM steps WHERE delivery_id = ?", (state["held"][0],))
    assert [(name, json.loads(result)) for name, result in steps] == [("work", {"pid": worker.pid})]


def test_sigterm_under_load_leaves_nothing_running(chaos: Chaos) -> None:
    """Busy lanes chain each next delivery to the worker as it settles the previous one.

    ``grace=0`` cancels every lane at once, many of them mid-settle: a next delivery
    chained by such a settle must be released too, not left leased to a worker that
    has exited (stuck ``running`` until its lease expires, which then costs an attempt).
    """
    keys, per_key = 80, 50
    events = [
        AccountBumped(account=f"acct-{k:02d}", seq=s) for s in range(per_key) for k in range(keys)
    ]
    asyncio.run(chaos.app.emit_many(events))
    rng = random.Random(7)
    settings = {"concurrency": 32, "lease": 30.0, "latency": 0.005}
    mid_work = 0
    for _ in range(ROUNDS):
        worker = chaos.spawn(grace=0, **settings)
        worker.wait_ready()
        time.sleep(rng.uniform(0.1, 0.3))
        mid_work += chaos.unfinished() > 0
        signalled = time.monotonic()
        worker.signal(signal.SIGTERM)
        assert worker.proc.wait(timeout=10) == 0, worker.tail()
        assert time.monotonic() - signalled < 3.0
        counts = chaos.status_counts()
        assert "running" not in counts, counts
    assert mid_work >= ROUNDS - 1, mid_work  # the stops landed while the lanes were busy

    final = chaos.spawn(grace=0, **settings)
    final.wait_ready()
    wait_until(lambda: chaos.unfinished() == 0, timeout=30, what="the final worker to finish")
    final.signal(signal.SIGTERM)
    assert final.proc.wait(timeout=10) == 0, final.tail()

    # No attempt was lost to a lease left behind: every delivery succeeded on its first run.
    assert chaos.status_counts() == {"succeeded": len(events)}
    assert chaos.query("SELECT outcome, count(*) FROM attempts GROUP BY outcome") == [
        ("succeeded", len(events))
    ]
    first, order = dedup_effects(chaos.ledger())
    assert sorted(first.values()) == sorted((e.account, e.seq) for e in events)
    assert all(seqs == list(range(per_key)) for seqs in order.values())
