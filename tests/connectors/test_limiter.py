"""The rate limiter: the bucket never grants more than its rate (hypothesis, under random
concurrent schedules across simulated processes), permits are leased in batches, and the
store-backed bucket holds the rate for calls to the simulator."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Coroutine
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interlock import Interlock
from interlock.clock import SYSTEM_CLOCK
from interlock.connectors import Rate
from interlock.connectors.limiter import Limiter
from interlock.connectors.memory import MemoryShared
from interlock.errors import ConfigurationError, RateLimited
from interlock.sandbox import GenericSimulator
from interlock.stores.base import take_permits

from .conftest import ConnectorFactory

WINDOWS = (0.05, 0.25, 1.0, 3.0)


def assert_within(times: list[float], rate: float, burst: float, slack: float = 0.0) -> None:
    """No half-open window [t, t + T) holds more than burst + rate·(T + slack) grants."""
    times = sorted(times)
    for i, start in enumerate(times):
        for span in WINDOWS:
            inside = sum(1 for t in times[i:] if t < start + span)
            assert inside <= burst + rate * (span + slack) + 1e-6, (start, span, inside)


@given(
    st.lists(st.tuples(st.floats(0, 0.5), st.integers(1, 8)), max_size=120),
    st.floats(0.5, 50),
    st.integers(1, 10),
    st.sampled_from([0.0, 0.1, 0.25, 1.0]),
)
def test_the_bucket_never_reserves_more_than_its_rate(
    requests: list[tuple[float, int]], rate: float, burst: int, horizon: float
) -> None:
    tokens: float | None = None
    at, now = 0.0, 0.0
    slots: list[float] = []
    for gap, want in requests:
        now += gap
        grant, tokens, at = take_permits(tokens, at, want, rate, burst, now, horizon)
        assert grant.granted == len(grant.slots) <= want
        assert grant.granted or grant.wait > 0
        assert all(now <= slot <= now + horizon + 1e-9 for slot in grant.slots)
        slots += grant.slots
    assert_within(slots, rate, burst)


class VirtualClock:
    """Time that moves only when every task waits for it: concurrency without sleeping."""

    def __init__(self) -> None:
        self.t = 0.0
        self._timers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._timers, (self.t + max(0.0, seconds), next(self._seq), future))
        await future

    async def run(self, coros: list[Coroutine[Any, Any, None]]) -> None:
        tasks = [asyncio.create_task(c) for c in coros]
        while not all(t.done() for t in tasks):
            for _ in range(30):
                await asyncio.sleep(0)
            if self._timers:
                when, _, future = heapq.heappop(self._timers)
                self.t = max(self.t, when)
                future.set_result(None)
        for task in tasks:
            task.result()


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.lists(st.floats(0, 2), min_size=1, max_size=25), min_size=1, max_size=3),
    st.floats(1, 40),
    st.integers(1, 5),
)
def test_concurrent_callers_in_several_processes_stay_under_the_rate(
    arrivals: list[list[float]], rate: float, burst: int
) -> None:
    """Each inner list is one process (its own Limiter) with callers arriving at random;
    they share one bucket, as worker processes share the store's. The bound is the
    limiter's: a permit reserved ahead may be used up to ``lease_ttl`` late."""

    async def play() -> list[float]:
        clock = VirtualClock()
        shared = MemoryShared()
        granted: list[float] = []
        limiters = [
            Limiter("k", Rate(rate, per="1s", burst=burst), shared, clock, max_wait=1e9)
            for _ in arrivals
        ]

        async def caller(limiter: Limiter, arrival: float) -> None:
            await clock.sleep(arrival)
            await limiter.acquire()
            granted.append(clock.now())

        await clock.run(
            [caller(lim, a) for lim, times in zip(limiters, arrivals, strict=True) for a in times]
        )
        return granted

    granted = asyncio.run(play())
    assert len(granted) == sum(len(times) for times in arrivals)
    assert_within(granted, rate, burst, slack=0.05)


async def test_a_caller_that_would_wait_too_long_is_rate_limited() -> None:
    limiter = Limiter("k", Rate(1, per="1s"), MemoryShared(), SYSTEM_CLOCK, max_wait=0.2)
    assert await limiter.acquire() == 0.0
    with pytest.raises(RateLimited) as limited:
        await limiter.acquire()
    assert 0.5 < limited.value.retry_after <= 1.0


def test_rates_from_settings() -> None:
    assert Rate.parse("600/1m") == Rate(600.0, "1m")
    assert Rate.parse("2/1s burst 40").burst == 40
    assert str(Rate(2, "1s", burst=40)) == "2/1s burst 40"
    assert Rate(600, "1m").per_second == 10
    with pytest.raises(ConfigurationError, match="cannot read rate"):
        Rate.parse("fast")
    with pytest.raises(ConfigurationError):
        Rate(0)


async def test_the_store_bucket_holds_the_rate_with_few_writes(
    connector: ConnectorFactory, generic: GenericSimulator, real_app: Interlock
) -> None:
    """60 concurrent calls at 100/s through the store: about 0.6 s, never faster than the
    rate, and permits leased in batches (one store write per wave of callers, not per call)."""
    crm = real_app.connector(connector(rate=Rate(100, per="1s", burst=5)))
    started = asyncio.get_running_loop().time()
    await asyncio.gather(*(crm.get("/v1/customers") for _ in range(60)))
    elapsed = asyncio.get_running_loop().time() - started
    assert elapsed >= (60 - 5) / 100 * 0.95
    times = [e.at for e in generic.requests.all()]
    assert len(times) == 60
    assert_within(times, 100, 5, slack=0.05)  # real time: loop jitter
    (limiter,) = crm.guards.limiters.get().values()
    assert limiter.leases <= 15, "a lease reserves up to a quarter of a second of permits"


async def test_two_processes_share_one_bucket(
    connector: ConnectorFactory, generic: GenericSimulator, real_app: Interlock
) -> None:
    other = Interlock("other", real_app.database_url)
    try:
        a = real_app.connector(connector(rate=Rate(50, per="1s")))
        b = other.connector(connector(rate=Rate(50, per="1s")))
        await asyncio.gather(*(c.get("/v1/customers") for c in (a, b) for _ in range(20)))
        times = [e.at for e in generic.requests.all()]
        assert len(times) == 40
        assert max(times) - min(times) >= 39 / 50 * 0.9, "the two shared 50/s between them"
        assert_within(times, 50, 1, slack=0.05)
    finally:
        other.close()
