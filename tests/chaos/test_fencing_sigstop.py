"""Fencing: a worker paused (SIGSTOP) past its lease cannot overwrite its successor's work.

Worker A claims two slow deliveries and is frozen inside them:

* ``j-step`` is frozen *inside* a step: A's late step write must be refused;
* ``j-body`` is frozen *after* its step was checkpointed, in the handler body: A's
  late outcome (succeeded) must be refused, and B must replay A's step, not re-run it.

Worker B takes both over once A's leases expire and completes them. Then A
is thawed (SIGCONT): it finishes its stale runs, finds its fencing tokens
superseded, logs the lost leases, records nothing, and goes on working.
"""

from __future__ import annotations

import json
import signal
import time

from .chaos_app import SlowJob
from .conftest import Chaos, WorkerProcess, wait_until

HOLD = 2.0
LEASE = 1.0


def freeze(chaos: Chaos, worker: WorkerProcess) -> None:
    """SIGSTOP ``worker`` at a moment it does not hold the database's write lock.

    A process frozen mid-transaction would block every other writer until thawed:
    that is SQLite's nature, not the fencing under test.
    """
    for _ in range(50):
        worker.signal(signal.SIGSTOP)
        time.sleep(0.02)
        if not chaos.write_locked():
            return
        worker.signal(signal.SIGCONT)
        time.sleep(0.01)
    raise AssertionError("worker kept holding the write lock")


def test_paused_worker_is_fenced_off(chaos: Chaos) -> None:
    app = chaos.app
    app.emit_sync(SlowJob(job="j-step", mode="step", hold_s=HOLD))
    app.emit_sync(SlowJob(job="j-body", mode="body", hold_s=HOLD))
    ids = dict(
        chaos.query(
            "SELECT json_extract(e.data, '$.job'), d.id FROM deliveries d "
            "JOIN events e ON e.seq = d.event_seq"
        )
    )

    settings = {"concurrency": 4, "lease": LEASE, "heartbeat": 0.3}
    a = chaos.spawn(**settings)
    a.wait_ready()

    def entered(pid: int) -> bool:
        marks = {
            (r[0], r[1]) for r in chaos.ledger() if r[0].startswith("enter") and int(r[2]) == pid
        }
        if not marks >= {("enter", "j-step"), ("enter-body", "j-body")}:
            return False
        # j-body's step returned; wait until its checkpoint is durable too (a step's write may
        # be queued behind the handler, for the next group commit).
        return bool(chaos.query("SELECT 1 FROM steps WHERE delivery_id = ?", (ids["j-body"],)))

    wait_until(lambda: entered(a.pid), timeout=15, what="worker A to be inside both handlers")
    freeze(chaos, a)
    frozen_at = time.monotonic()
    early = [
        r for r in chaos.ledger() if r[0] == "leave-body" or (r[0] == "effect" and r[2] == "j-step")
    ]
    assert not early, f"worker A stopped holding before it could be frozen: {early}"

    b = chaos.spawn(**settings)
    b.wait_ready()

    def statuses() -> dict[str, str]:
        rows = chaos.query(
            "SELECT json_extract(e.data, '$.job'), d.status FROM deliveries d "
            "JOIN events e ON e.seq = d.event_seq"
        )
        return dict(rows)

    wait_until(
        lambda: statuses() == {"j-step": "succeeded", "j-body": "succeeded"},
        timeout=20,
        what="worker B to complete both deliveries",
    )
    assert a.alive()
    assert time.monotonic() - frozen_at > LEASE  # A really was paused past its lease
    before_thaw = len(chaos.ledger())

    # Thaw A: its sleeps are long over, so it finishes both stale runs at once.
    a.signal(signal.SIGCONT)

    def refused() -> dict[int, str]:
        """delivery id → why A's write was refused (heartbeats log no detail)."""
        return {int(r["delivery_id"]): r["detail"] for r in a.logged("lease.lost") if "detail" in r}

    wait_until(
        lambda: set(refused()) >= {ids["j-step"], ids["j-body"]},
        timeout=10,
        what="worker A to log both refused writes",
    )
    # j-step: its step write is refused (reported as such, or with the outcome that carries
    # the same fencing token when step writes are queued behind); j-body: its outcome.
    assert "lease lost" in refused()[ids["j-step"]]
    assert "outcome succeeded dropped" in refused()[ids["j-body"]]
    wait_until(
        lambda: any(r[0] == "leave-body" and int(r[2]) == a.pid for r in chaos.ledger()),
        timeout=10,
        what="worker A to finish its stale j-body run",
    )

    # -- the store holds B's outcome and B's step result, and nothing of A's late writes ----
    assert statuses() == {"j-step": "succeeded", "j-body": "succeeded"}
    names = {a.pid: "A", b.pid: "B"}

    def who(worker_name: str | None) -> str:
        return names.get(int(str(worker_name).split(":")[1]), str(worker_name))

    for job in ("j-step", "j-body"):
        attempts = chaos.query(
            "SELECT worker, outcome FROM attempts WHERE delivery_id = ? ORDER BY id", (ids[job],)
        )
        assert [(who(w), o) for w, o in attempts] == [("A", "lease_expired"), ("B", "succeeded")]
        (fence, worker) = chaos.query(
            "SELECT fence, worker FROM deliveries WHERE id = ?", (ids[job],)
        )[0]
        assert (fence, worker) == (2, None)

    steps = {
        (did, name): json.loads(result)
        for did, name, result in chaos.query("SELECT delivery_id, name, result FROM steps")
    }
    # j-step's step was run again by B (A never checkpointed it); A's late write was refused.
    assert steps[(ids["j-step"], "work")] == {"pid": b.pid}
    # j-body's step was checkpointed by A before the pause, and B replayed it.
    assert steps[(ids["j-body"], "work")] == {"pid": a.pid}
    assert len(steps) == 2

    # -- the ledger: B's effect first; A's late duplicate carries the same idempotency key ---
    ledger = chaos.ledger()
    effects = [(r[1], r[2], int(r[3])) for r in ledger if r[0] == "effect"]
    first: dict[str, tuple[str, int]] = {}
    for step_key, job, pid in effects:
        first.setdefault(step_key, (job, pid))
    assert sorted(first.values()) == [("j-body", a.pid), ("j-step", b.pid)]
    resent = [(job, pid) for step_key, job, pid in effects if first[step_key] != (job, pid)]
    assert resent == [("j-step", a.pid)]  # the vendor drops it: same idempotency key
    assert all(r[0] != "effect" or int(r[3]) == a.pid for r in ledger[before_thaw:])

    # -- A keeps running normally: with B gone, A takes new work -----------------------------
    b.signal(signal.SIGTERM)
    assert b.proc.wait(timeout=15) == 0, b.tail()
    app.emit_sync(SlowJob(job="j-after", mode="step", hold_s=0.0))
    wait_until(
        lambda: statuses().get("j-after") == "succeeded",
        timeout=15,
        what="worker A to process new work after being fenced off",
    )
    after = [(r[2], int(r[3])) for r in chaos.ledger() if r[0] == "effect" and r[2] == "j-after"]
    assert after == [("j-after", a.pid)]
    assert a.alive()
    assert not a.logged("lane.crashed")
    a.signal(signal.SIGTERM)
    assert a.proc.wait(timeout=15) == 0, a.tail()
