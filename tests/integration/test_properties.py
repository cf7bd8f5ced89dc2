"""Property: random streams, random failures, random retry budgets — order and exactly-once hold.

Each event carries a failure plan: fail ``k`` times then succeed (``k`` may be
"always"), failing either before or after its one side effect. The effect is a
checkpointed step whose vendor dedups by the step's idempotency key, like a
real vendor would. Whatever the plan:

* per key, first effects happen in event order;
* every effect happens exactly once (and the vendor is called once: the step
  is replayed from its checkpoint on retries);
* nothing is lost: every delivery ends succeeded or dead, or (``on_dead="block"``)
  waits behind its lane's dead head;
* the dead deliveries are exactly the events planned to fail ``>= attempts`` times.
"""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from interlock import Context, Contract, Interlock, Retry, Retryable
from interlock.testing import FakeClock, drain

ALWAYS = 1_000_000


class Job(Contract, event="job.requested"):
    n: int
    key: str


@dataclass(frozen=True)
class Plan:
    key: str
    failures: int
    after_effect: bool


@dataclass
class Vendor:
    """Applies each idempotency key once, like a vendor API with idempotency keys."""

    calls: list[str] = field(default_factory=list)
    applied: dict[str, int] = field(default_factory=dict)
    order: list[tuple[str, int]] = field(default_factory=list)

    def apply(self, idempotency_key: str, key: str, n: int) -> str:
        self.calls.append(idempotency_key)
        if idempotency_key not in self.applied:
            self.applied[idempotency_key] = n
            self.order.append((key, n))
        return f"done-{n}"


plans = st.builds(
    Plan,
    key=st.sampled_from(["k0", "k1", "k2"]),
    failures=st.one_of(st.integers(min_value=0, max_value=4), st.just(ALWAYS)),
    after_effect=st.booleans(),
)


async def _run(stream: list[Plan], attempts: int, on_dead: str, pg_url: str | None) -> None:
    # On PostgreSQL the examples share one database: each uses lanes of its own.
    prefix = f"{uuid.uuid4().hex[:8]}:" if pg_url else ""
    with tempfile.TemporaryDirectory() as folder:
        clock = FakeClock()
        url = pg_url or f"sqlite:///{Path(folder) / 'prop.db'}"
        app = Interlock("prop", url, clock=clock)
        vendor = Vendor()
        runs: dict[int, int] = defaultdict(int)

        @app.flow(
            Job,
            owner="prop",
            key="key",
            retry=Retry(attempts=attempts, base="1s", cap="30s"),
            on_dead=on_dead,
        )
        async def work(event: Job, ctx: Context) -> None:
            plan = stream[event.n]
            runs[event.n] += 1
            failing = runs[event.n] <= plan.failures
            if failing and not plan.after_effect:
                raise Retryable(f"job {event.n} fails before its effect")
            key = event.key.removeprefix(prefix)
            await ctx.step("effect", vendor.apply, ctx.step_key("effect"), key, event.n)
            if failing:
                raise Retryable(f"job {event.n} fails after its effect")

        try:
            ids = [await app.emit(Job(n=n, key=prefix + plan.key)) for n, plan in enumerate(stream)]
            await drain(app, advance=True)
            statuses = {
                n: [d.status for d in app.store.trace(eid).deliveries] for n, eid in enumerate(ids)
            }
        finally:
            app.close()

    planned_dead = {n for n, plan in enumerate(stream) if plan.failures >= attempts}
    blocked: set[int] = set()
    if on_dead == "block":
        for key in {plan.key for plan in stream}:
            lane = [n for n, plan in enumerate(stream) if plan.key == key]
            first_dead = next((n for n in lane if n in planned_dead), None)
            if first_dead is not None:
                blocked.update(n for n in lane if n > first_dead)
    expected_dead = planned_dead - blocked

    # Nothing lost: one delivery per event, each in the state its plan leads to.
    assert all(len(s) == 1 for s in statuses.values())
    for n, (status,) in statuses.items():
        if n in blocked:
            assert status == "queued", (n, status)
        elif n in expected_dead:
            assert status == "dead", (n, status)
        else:
            assert status == "succeeded", (n, status)

    ran = set(range(len(stream))) - blocked
    assert set(runs) == ran
    for n in ran:
        planned_runs = attempts if n in expected_dead else stream[n].failures + 1
        assert runs[n] == planned_runs, (n, runs[n], planned_runs)

    # Exactly once: the effect of every event that reached it, once; the vendor called once.
    effected = {n for n in ran if n not in expected_dead or stream[n].after_effect}
    assert sorted(vendor.applied.values()) == sorted(effected)
    assert len(vendor.calls) == len(set(vendor.calls)) == len(effected)

    # Per-key order of first effects.
    for key in {plan.key for plan in stream}:
        mine = [n for k, n in vendor.order if k == key]
        assert mine == sorted(mine), (key, mine)


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    stream=st.lists(plans, min_size=1, max_size=20),
    attempts=st.integers(min_value=1, max_value=4),
    on_dead=st.sampled_from(["skip", "block"]),
)
def test_order_exactly_once_and_dead_letters_hold_for_random_streams(
    request: pytest.FixtureRequest, store: str, stream: list[Plan], attempts: int, on_dead: str
) -> None:
    """On PostgreSQL too, where a batch's successes settle in one statement and its emits
    in one call."""
    pg_url = request.getfixturevalue("pg_url") if store == "postgres" else None
    asyncio.run(_run(stream, attempts, on_dead, pg_url))
