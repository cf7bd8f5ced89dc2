"""Test doubles shipped with interlock, for its own tests and for users' tests.

clock = FakeClock()
app = Interlock("test", "sqlite:///" + str(tmp_path / "t.db"), clock=clock)
...
await app.emit(OrderShipped(...))
await drain(app)                 # run everything due now
await drain(app, advance=True)   # also jump the clock through backoffs and sleeps
"""

from __future__ import annotations

import asyncio
import time

from interlock.app import Interlock
from interlock.worker import Worker, WorkerConfig


class FakeClock:
    """A clock that moves only when told to. Starts at a fixed, realistic instant."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._now = float(start)

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time does not run backwards")
        self._now += seconds

    def set(self, when: float) -> None:
        self._now = max(self._now, float(when))

    async def sleep(self, seconds: float) -> None:
        target = self._now + max(0.0, seconds)
        while self._now < target:
            await asyncio.sleep(0.001)


async def drain(
    app: Interlock,
    *,
    advance: bool = False,
    max_rounds: int = 100_000,
    timeout: float = 60.0,
    worker: Worker | None = None,
    concurrency: int = 64,
) -> Worker:
    """Run the app's flows until nothing is due.

    With ``advance=True`` (a :class:`FakeClock` is required), the clock jumps to
    the next due time — a backoff, a durable sleep, a wait's timeout — and
    draining goes on until nothing is scheduled at all. Returns the worker,
    whose ``counters`` tell what happened.
    """
    worker = worker or Worker(app, WorkerConfig(concurrency=concurrency))
    clock = app.clock
    if advance and not isinstance(clock, FakeClock):
        raise TypeError("drain(advance=True) needs the app to use a FakeClock")
    deadline = time.monotonic() + timeout
    for _ in range(max_rounds):
        if time.monotonic() > deadline:
            raise TimeoutError(f"drain did not finish within {timeout}s")
        started = await worker.fill()
        if started > 0 or started < 0:
            continue
        if worker._tasks:
            await asyncio.wait(list(worker._tasks), return_when=asyncio.FIRST_COMPLETED)
            continue
        if not advance:
            return worker
        next_due = app.store.next_due_at()
        if next_due is None:
            return worker
        assert isinstance(clock, FakeClock)
        clock.set(next_due)
    raise RuntimeError(f"drain gave up after {max_rounds} rounds; is a flow re-emitting forever?")
