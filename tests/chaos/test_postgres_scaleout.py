"""Four worker processes on one PostgreSQL, SIGKILLed and restarted throughout, and every
database connection dropped once: nothing lost, doubled or reordered.

Four ``chaos_app.py`` worker processes run against a fresh database while 20,000 events
over 500 ordering keys are emitted into it; at seeded-random moments one of the workers is
killed with SIGKILL and a new one started in its place, and once, when about 30 % is done,
every session of the database is ended with ``pg_terminate_backend`` (the workers must
reconnect, not die). When the store shows nothing unfinished, the effect ledger — read the way a vendor
that deduplicates by idempotency key would — must hold every event exactly once, in
per-key order, and the store every delivery succeeded with its step recorded.
"""

from __future__ import annotations

import asyncio
import random
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from interlock.errors import StoreUnavailable

from .chaos_app import AccountBumped
from .conftest import WorkerProcess, dedup_effects, wait_until
from .pg import PgChaos, pg_chaos

EVENTS = 20_000
KEYS = 500
WORKERS = 4
KILLS = 12
SEED = 20_261_203
SETTINGS = {"concurrency": 64, "lease": 2.0, "heartbeat": 0.4, "latency": 0.002}


@pytest.fixture
def chaos(tmp_path: Path, request: pytest.FixtureRequest, pg_url: str) -> Iterator[PgChaos]:
    with pg_chaos(tmp_path, request, pg_url) as harness:
        yield harness


def _emit_all(chaos: PgChaos, events: list[AccountBumped], retries: list[str]) -> None:
    """Emit in chunks of 1,000 (each one transaction), in key-sequence order, as a careful
    producer does: each event with an idempotency key, a chunk that failed (the connection
    drop lands here too) sent again until it is acknowledged. The reasons go to ``retries``."""

    async def emit() -> None:
        for start in range(0, len(events), 1_000):
            chunk = [(e, f"{e.account}:{e.seq}") for e in events[start : start + 1_000]]
            for _ in range(50):
                try:
                    await chaos.app.emit_many(chunk)
                    break
                except StoreUnavailable as exc:
                    retries.append(str(exc))
                    await asyncio.sleep(0.2)
            else:
                raise AssertionError(f"chunk at {start} never stored: {retries[-1]}")

    asyncio.run(emit())


def _succeeded(chaos: PgChaos) -> int:
    return int(chaos.query("SELECT count(*) FROM deliveries WHERE status = 'succeeded'")[0][0])


@pytest.mark.slow
def test_four_workers_killed_and_disconnected_lose_nothing_double_nothing_keep_order(
    chaos: PgChaos,
) -> None:
    per_key = EVENTS // KEYS
    events = [
        AccountBumped(account=f"acct-{k:03d}", seq=s) for s in range(per_key) for k in range(KEYS)
    ]
    chaos.app.store  # noqa: B018 - migrate before the workers start
    rng = random.Random(SEED)
    workers: list[WorkerProcess] = [chaos.spawn(**SETTINGS) for _ in range(WORKERS)]
    for worker in workers:
        worker.wait_ready()
    # Events arrive while the workers run (and die): LISTEN/NOTIFY wakes them.
    retries: list[str] = []
    emitter = ThreadPoolExecutor(1, thread_name_prefix="emitter")
    emitting = emitter.submit(_emit_all, chaos, events, retries)
    emitter.shutdown(wait=False)

    kills = 0
    terminated = 0
    deadline = time.monotonic() + 120
    while kills < KILLS and time.monotonic() < deadline:
        time.sleep(rng.uniform(0.3, 1.0))
        done = _succeeded(chaos)
        if done >= EVENTS:
            break
        if not terminated and done >= EVENTS * 0.3:
            terminated = chaos.terminate_backends()  # every worker's connections at once
            continue
        victim = rng.randrange(WORKERS)
        assert workers[victim].kill() == -signal.SIGKILL, workers[victim].tail()
        kills += 1
        workers[victim] = chaos.spawn(**SETTINGS)
    if not terminated:
        terminated = chaos.terminate_backends()

    emitting.result(timeout=120)
    print(f"{kills} kills; {len(retries)} emit retries: {retries[:3]}")
    wait_until(lambda: chaos.unfinished() == 0, timeout=120, what="the workers to finish")
    # The connection drop was survived: no worker died of it; all stop cleanly on SIGTERM.
    assert terminated > 0
    for worker in workers:
        assert worker.alive(), worker.tail()
        worker.signal(signal.SIGTERM)
    for worker in workers:
        assert worker.proc.wait(timeout=30) == 0, worker.tail()
    assert kills >= KILLS // 2, kills

    # -- the store: every delivery succeeded, with its one step recorded -------------------
    assert chaos.status_counts() == {"succeeded": EVENTS}
    assert chaos.query("SELECT count(*) FROM lanes")[0][0] == 0
    (expired,) = chaos.query("SELECT count(*) FROM attempts WHERE outcome = 'lease_expired'")[0]
    assert expired > 0  # the kills did interrupt work
    rows = chaos.query("SELECT result FROM steps WHERE name = 'charge'")
    recorded_keys = {str(result).strip('"') for (result,) in rows}
    assert len(rows) == len(recorded_keys) == EVENTS

    # -- the ledger, deduplicated by step key as the vendor would ----------------------------
    records = chaos.ledger()
    first, order = dedup_effects(records)
    assert sorted(first.values()) == sorted((e.account, e.seq) for e in events)
    assert set(first) == recorded_keys  # the effects are the checkpointed steps
    for account, seqs in order.items():
        assert seqs == list(range(per_key)), f"{account} out of order: {seqs}"
