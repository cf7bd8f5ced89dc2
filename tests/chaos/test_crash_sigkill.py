"""SIGKILL a worker at random moments, over and over: nothing lost, doubled or reordered.

5,000 events over 200 ordering keys are emitted up front. A worker process runs
them, and is killed with SIGKILL at seeded-random moments (at least 20 times),
each time restarted. A final worker then finishes everything. The effect
ledger, read the way a vendor that deduplicates by idempotency key would,
must show every event exactly once, in per-key order; the store must show
every delivery succeeded.
"""

from __future__ import annotations

import asyncio
import random
import signal
import time

import pytest

from .chaos_app import AccountBumped
from .conftest import Chaos, dedup_effects, wait_until

EVENTS = 5_000
KEYS = 200
KILLS = 20
SEED = 20_240_611


@pytest.mark.slow
def test_sigkill_loses_nothing_doubles_nothing_keeps_key_order(chaos: Chaos) -> None:
    per_key = EVENTS // KEYS
    events = [
        AccountBumped(account=f"acct-{k:03d}", seq=s) for s in range(per_key) for k in range(KEYS)
    ]
    asyncio.run(chaos.app.emit_many(events))
    assert chaos.status_counts() == {"pending": KEYS, "queued": EVENTS - KEYS}

    rng = random.Random(SEED)
    settings = {"concurrency": 8, "lease": 1.0, "heartbeat": 0.3, "latency": 0.005}
    kills_mid_work = 0
    for _ in range(KILLS):
        worker = chaos.spawn(**settings)
        worker.wait_ready()
        time.sleep(rng.uniform(0.05, 0.4))
        if chaos.unfinished():
            kills_mid_work += 1
        assert worker.kill() == -signal.SIGKILL, worker.tail()

    final = chaos.spawn(**settings)
    final.wait_ready()
    wait_until(lambda: chaos.unfinished() == 0, timeout=60, what="the final worker to finish")
    final.signal(signal.SIGTERM)
    assert final.proc.wait(timeout=15) == 0, final.tail()

    # The kills landed while there was work to interrupt, and did interrupt some.
    assert kills_mid_work >= KILLS // 2, kills_mid_work
    (expired,) = chaos.query("SELECT count(*) FROM attempts WHERE outcome = 'lease_expired'")[0]
    assert expired > 0

    # -- the store: every delivery succeeded, with its one step recorded -------------------
    assert chaos.status_counts() == {"succeeded": EVENTS}
    assert chaos.query("SELECT count(*) FROM lanes")[0][0] == 0  # no lane left counted open
    rows = chaos.query(
        "SELECT e.data, s.result FROM deliveries d JOIN events e ON e.seq = d.event_seq "
        "JOIN steps s ON s.delivery_id = d.id AND s.name = 'charge'"
    )
    assert len(rows) == EVENTS
    recorded_keys = {result.strip('"') for _, result in rows}
    assert len(recorded_keys) == EVENTS

    # -- the ledger, deduplicated by step key as the vendor would ----------------------------
    records = chaos.ledger()
    first, order = dedup_effects(records)
    effects = sorted(first.values())
    expected = sorted((e.account, e.seq) for e in events)
    assert effects == expected  # every event exactly once: none missing, none doubled
    assert set(first) == recorded_keys  # the effects are the checkpointed steps
    for account, seqs in order.items():
        assert seqs == list(range(per_key)), f"{account} out of order: {seqs}"

    resent = len(records) - len(first)
    print(
        f"kills={KILLS} mid_work={kills_mid_work} lease_expired={expired} "
        f"ledger={len(records)} resent={resent}"
    )
