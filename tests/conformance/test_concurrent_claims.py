"""Property, on every store: claimers with separate connections (as separate worker
processes would have) racing for one queue while events keep arriving — every delivery runs exactly
once and each lane runs strictly in event order.

Each claimer claims a random batch, "runs" what it got, and settles it, chaining the
lane's next delivery to itself or not at random; some runs are given up (released) or
fail and retry, so lanes change hands mid-stream. Leases never expire here: losing one
is the SIGKILL chaos test's subject.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import defaultdict

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from interlock.events import Event
from interlock.stores import Store, open_store
from interlock.stores.base import Claimed, NewDelivery, NewEvent, Outcome

_RUN = itertools.count()

scenarios = st.fixed_dictionaries(
    {
        "lanes": st.lists(st.integers(min_value=0, max_value=5), min_size=1, max_size=60),
        "claimers": st.integers(min_value=2, max_value=4),
        "batch": st.integers(min_value=1, max_value=8),
        "emit_batch": st.integers(min_value=1, max_value=10),
        "seed": st.integers(min_value=0, max_value=2**16),
    }
)


def _event(run: int, n: int, lane: int) -> NewEvent:
    now = time.time()
    ev = Event(
        id=f"evt_p{run}_{n}",
        type="job.requested",
        version=1,
        source="api",
        data={"n": n},
        correlation_id=f"cor_{run}",
        occurred_at=now,
        received_at=now,
    )
    return NewEvent(ev, b'{"n": %d}' % n, (NewDelivery(f"flow{run}", f"lane{lane}"),))


async def _scenario(
    url: str, lanes: list[int], claimers: int, batch: int, emit_batch: int, seed: int
) -> None:
    run = next(_RUN)
    stores = [open_store(url) for _ in range(claimers + 1)]
    stores[0].ensure_schema()
    ran: list[tuple[int, int]] = []  # (lane, n) in the order runs finished
    settled: set[int] = set()
    emitted = asyncio.Event()

    async def emitter() -> None:
        store = stores[-1]
        for start in range(0, len(lanes), emit_batch):
            chunk = [
                _event(run, n, lanes[n]) for n in range(start, min(len(lanes), start + emit_batch))
            ]
            await store.emit(chunk)
            await asyncio.sleep(0)
        emitted.set()

    async def claimer(i: int) -> None:
        store = stores[i]
        name = f"w{i}"
        turn = seed + i
        while not (emitted.is_set() and len(settled) == len(lanes)):
            work = await store.claim(name, batch, time.time(), 30.0)
            if not work:
                await asyncio.sleep(0.001)
            for claimed in work:
                current: Claimed | None = claimed
                while current is not None:
                    turn += 1
                    current = await _run_one(store, name, current, turn, ran, settled)

    await asyncio.gather(emitter(), *(claimer(i) for i in range(claimers)))
    for store in stores:
        store.close()
    per_lane: dict[int, list[int]] = defaultdict(list)
    for lane, n in ran:
        per_lane[lane].append(n)
    assert sorted(n for _, n in ran) == list(range(len(lanes))), "each delivery ran exactly once"
    for lane, order in per_lane.items():
        assert order == [n for n, x in enumerate(lanes) if x == lane], f"lane {lane} out of order"


async def _run_one(
    store: Store,
    name: str,
    c: Claimed,
    turn: int,
    ran: list[tuple[int, int]],
    settled: set[int],
) -> Claimed | None:
    now = time.time()
    lane, n = int(c.lane.removeprefix("lane")), int(c.event.data["n"])
    if turn % 7 == 3:  # give it up before running: another claimer takes the lane over
        release = Outcome(c.delivery_id, c.fence, c.flow, c.lane, "released", now, now, due_at=now)
        await store.settle(release, worker=name, chain=False, now=now, lease=30.0)
        return None
    if turn % 5 == 1 and c.attempts == 0:  # fails once, retried at once by whoever claims it
        retry = Outcome(
            c.delivery_id,
            c.fence,
            c.flow,
            c.lane,
            "retry",
            now,
            now,
            error_class="retryable",
            due_at=now,
            counts=True,
        )
        await store.settle(retry, worker=name, chain=False, now=now, lease=30.0)
        return None
    ran.append((lane, n))
    settled.add(c.delivery_id)
    done = Outcome(c.delivery_id, c.fence, c.flow, c.lane, "succeeded", now, now)
    return await store.settle(done, worker=name, chain=turn % 2 == 0, now=now, lease=30.0)


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(scenario=scenarios)
def test_concurrent_claimers_run_each_delivery_once_in_lane_order(
    db_url: str, scenario: dict[str, int | list[int]]
) -> None:
    asyncio.run(_scenario(db_url, **scenario))  # type: ignore[arg-type]
