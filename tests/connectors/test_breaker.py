"""The circuit breaker: its window and state machine (hypothesis), and opening and
recovering against the simulator, shared between processes through the store."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interlock import Interlock
from interlock.connectors import BreakerPolicy, Rate
from interlock.connectors.breaker import Breaker, Window
from interlock.connectors.memory import MemoryShared
from interlock.errors import CircuitOpen, VendorUnavailable
from interlock.sandbox import GenericSimulator

from .conftest import ConnectorFactory


class ManualClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.t += seconds


@given(st.lists(st.tuples(st.floats(0, 5), st.booleans()), max_size=60), st.floats(0, 5))
def test_the_window_counts_exactly_the_recent_buckets(
    events: list[tuple[float, bool]], later: float
) -> None:
    window = Window(10.0, slots=10)
    now = 0.0
    seen: list[tuple[float, bool]] = []
    for gap, failed in events:
        now += gap
        window.add(now, failed=failed)
        seen.append((now, failed))
    end = now + later
    oldest = int(end // 1.0) - 9
    recent = [f for t, f in seen if int(t // 1.0) >= oldest]
    assert window.totals(end) == (len(recent), sum(recent))


Step = tuple[str, float]  # ("ok" | "fail" | "client_error", seconds to advance first)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["ok", "fail", "client_error"]), st.floats(0, 3)), max_size=80
    ),
    st.integers(1, 6),
    st.sampled_from([0.25, 0.5, 1.0]),
)
def test_the_state_machine_follows_its_model(
    steps: list[Step], min_calls: int, ratio: float
) -> None:
    """Closed → open exactly when the window holds ``min_calls`` counted calls with the
    failure ratio reached on a failure; open fails fast until the cool-down ends; then one
    trial closes it (success, or a vendor answer that is not a failure) or reopens it."""
    policy = BreakerPolicy(
        failure_ratio=ratio, min_calls=min_calls, window="10s", cooldown="5s", sync_every="0s"
    )

    async def play() -> None:
        clock = ManualClock()
        breaker = Breaker("b", policy, MemoryShared(), clock)
        state, until = "closed", 0.0
        counted: list[tuple[float, bool]] = []
        for outcome, gap in steps:
            clock.t += gap
            now = clock.t
            if state == "open" and now < until:
                with pytest.raises(CircuitOpen) as fast:
                    await breaker.before()
                assert 0 < fast.value.retry_after <= until - now + 1e-9
                continue
            trial = await breaker.before()
            assert trial is (state == "open"), "a trial exactly when the cool-down is over"
            failed = {"ok": False, "fail": True, "client_error": None}[outcome]
            await breaker.after(trial=trial, failed=failed)
            if trial:
                state, until, counted = ("open", now + 5.0, []) if failed else ("closed", 0.0, [])
            elif failed is not None:
                counted.append((now, failed))
                oldest = int(now // 1.0) - 9  # ten one-second buckets
                recent = [f for t, f in counted if int(t // 1.0) >= oldest]
                if failed and len(recent) >= min_calls and sum(recent) >= ratio * len(recent):
                    state, until, counted = "open", now + 5.0, []
                    assert len(recent) >= min_calls, "never opens on fewer calls"
            assert breaker.state == state
            assert breaker.until == (until if state == "open" else None)

    asyncio.run(play())


async def test_the_breaker_opens_on_failures_fails_fast_and_recovers(
    connector: ConnectorFactory, generic: GenericSimulator
) -> None:
    policy = BreakerPolicy(failure_ratio=0.5, min_calls=4, window="10s", cooldown="0.3s")
    crm = connector(breaker=policy)
    await crm.get("/v1/customers")
    generic.faults.outage(1.0)
    for _ in range(3):  # 1 success and 3 failures: 4 calls, 75 % failed
        with pytest.raises(VendorUnavailable):
            await crm.get("/v1/customers")
    assert crm.breaker is not None and crm.breaker.state == "open"
    sent = len(generic.requests.all())
    with pytest.raises(CircuitOpen) as fast:
        await crm.get("/v1/customers")
    assert len(generic.requests.all()) == sent, "an open breaker does not call the vendor"
    assert 0 < fast.value.retry_after <= 0.3
    await asyncio.sleep(0.35)  # cool-down over, outage still on: the trial fails
    with pytest.raises(VendorUnavailable):
        await crm.get("/v1/customers")
    assert crm.breaker.state == "open"
    await asyncio.sleep(0.75)  # outage over: the trial succeeds and closes it
    await crm.get("/v1/customers")
    assert crm.breaker.state == "closed"
    await crm.get("/v1/customers")
    assert crm.runtime.metrics.calls[("crm", "GET /v1/customers", "circuit_open")] == 1
    assert crm.runtime.metrics.breakers["crm"]() == 0


async def test_client_errors_and_rate_limits_do_not_open_it(
    connector: ConnectorFactory, generic: GenericSimulator
) -> None:
    crm = connector(breaker=BreakerPolicy(min_calls=2, window="10s"), rate=Rate(1000))
    for _ in range(3):
        with pytest.raises(Exception, match="404"):
            await crm.get("/v1/customers/missing")
    generic.faults.rate_limit(2, retry_after=0.01)
    for _ in range(2):
        with pytest.raises(Exception, match="429"):
            await crm.get("/v1/customers")
    assert crm.breaker is not None and crm.breaker.state == "closed"


async def test_an_open_breaker_is_seen_by_every_process_sharing_the_store(
    generic: GenericSimulator, real_app: Interlock, connector: ConnectorFactory, tmp_path: object
) -> None:
    policy = BreakerPolicy(min_calls=2, window="10s", cooldown="5s", sync_every="0s")
    other_process = Interlock("other", real_app.database_url)
    try:
        mine = real_app.connector(connector(breaker=policy))
        theirs = other_process.connector(connector(breaker=policy))
        generic.faults.fail(2, status=500)
        for _ in range(2):
            with pytest.raises(VendorUnavailable):
                await mine.get("/v1/customers")
        with pytest.raises(CircuitOpen):
            await theirs.get("/v1/customers")  # never called the vendor, yet fails fast
        (state,) = real_app.store.connector_states()
        assert (state.name, state.breaker, state.opened) == ("crm", "open", 1)
        assert len(generic.requests.all()) == 2
    finally:
        other_process.close()
