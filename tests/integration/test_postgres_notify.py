"""LISTEN/NOTIFY: work made claimable by another process wakes an idle one at once,
without waiting for the fallback poll."""

from __future__ import annotations

import asyncio
import time

from interlock.events import Event
from interlock.stores.base import NewDelivery, NewEvent, Outcome
from interlock.stores.postgres import PostgresStore


def _event(n: int) -> NewEvent:
    now = time.time()
    ev = Event(
        id=f"evt_notify_{n}",
        type="job.requested",
        version=1,
        source="api",
        data={"n": n},
        correlation_id="cor_notify",
        occurred_at=now,
        received_at=now,
    )
    return NewEvent(ev, b'{"n": %d}' % n, (NewDelivery("flow", "lane"),))


async def _changes(store: PostgresStore, before: int, timeout: float = 5.0) -> float:
    start = time.monotonic()
    while store.wakeup_token() == before:
        if time.monotonic() - start > timeout:
            raise AssertionError("no wakeup")
        await asyncio.sleep(0.002)
    return time.monotonic() - start


async def test_an_emit_or_a_timer_elsewhere_wakes_an_idle_listener(pg_url: str) -> None:
    # The fallback poll is an hour: only a notification can change the token.
    idle = PostgresStore(pg_url, poll=3600.0)
    busy = PostgresStore(pg_url, poll=3600.0)
    try:
        idle.wakeup_token()
        deadline = time.monotonic() + 5
        while not (idle._listener and idle._listener.connected):
            assert time.monotonic() < deadline, "the listener did not connect"
            await asyncio.sleep(0.01)
        token = idle.wakeup_token()
        await busy.emit([_event(1)])
        assert await _changes(idle, token) < 1.0

        # A retry timer set by another process is news too (the idle worker re-reads
        # when the next delivery is due).
        (claimed,) = await busy.claim("w", 10, time.time(), 30.0)
        token = idle.wakeup_token()
        now = time.time()
        retry = Outcome(
            claimed.delivery_id,
            claimed.fence,
            claimed.flow,
            claimed.lane,
            "retry",
            now,
            now,
            error_class="retryable",
            due_at=now + 60,
            counts=True,
        )
        await busy.settle(retry, worker="w", chain=False, now=now, lease=30.0)
        assert await _changes(idle, token) < 1.0
        assert idle.next_due_at() == retry.due_at
    finally:
        idle.close()
        busy.close()
