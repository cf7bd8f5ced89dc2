"""Succeeded outcomes settled many at a time on PostgreSQL (one statement per batch):
the same database state as settling them one by one, chained leases handed back to
each caller, and a stale outcome in the batch refused on its own."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from interlock.errors import LeaseLost
from interlock.events import Event
from interlock.stores import postgres_writer
from interlock.stores.base import Claimed, DirectLease, NewDelivery, NewEvent, Outcome
from interlock.stores.postgres import PostgresStore

T0 = 1_800_000_000.0


def _event(
    n: int,
    deliveries: tuple[NewDelivery, ...],
    *,
    idempotency_key: str | None = None,
    lease: DirectLease | None = None,
) -> NewEvent:
    ev = Event(
        id=f"evt_many_{n}",
        type="job.requested",
        version=1,
        source="api",
        data={"n": n},
        correlation_id=f"cor_{n}",
        occurred_at=T0 + n,
        received_at=T0 + n,
        idempotency_key=idempotency_key,
    )
    return NewEvent(ev, b'{"n": %d}' % n, deliveries, lease)


def _on(lane: str) -> tuple[NewDelivery, ...]:
    return (NewDelivery("flow", lane),)


def _succeeded(c: Claimed, k: int) -> Outcome:
    return Outcome(
        c.delivery_id,
        c.fence,
        c.flow,
        c.lane,
        "succeeded",
        T0 + 100 + k,
        T0 + 101 + k,
        steps=[("effect", b'{"k": %d}' % k, T0 + 100.5 + k)] if k % 3 else [],
        number=c.runs + 1,
        chain=c.chain,
        calls=[{"connector": "crm", "status": 201, "at": T0 + 100.2 + k}] if k % 2 else None,
    )


@pytest.fixture
def two_urls(pg_url: str, pg_clones: Any) -> Iterator[tuple[str, str]]:
    """Two fresh databases: the same scenario runs in each."""
    other = pg_clones.take()
    yield pg_url, f"{pg_url.rpartition('/')[0]}/{other}"
    pg_clones.give_back(other)


LANES = [f"k{i}" for i in range(12)]


def _merged_cleanly(store: PostgresStore) -> int:
    """Calls that ran merged; -1 if a merged statement failed (its batch then ran call by
    call, which would hide a broken merged statement behind correct results)."""
    writer = store._writer
    if writer is None:
        return 0
    return writer.merged if writer.split == 0 else -1


async def _scenario(url: str, *, together: bool, chain: bool) -> tuple[list[Any], int]:
    """Two events on each of 12 lanes; the heads claimed, then settled (together: in one
    batch; else one by one), with one stale outcome among them."""
    store = PostgresStore(url)
    try:
        await store.emit([_event(n, _on(LANES[n % len(LANES)])) for n in range(2 * len(LANES))])
        heads = sorted(await store.claim("w1", 100, T0 + 50, 30.0), key=lambda c: c.delivery_id)
        assert len(heads) == len(LANES)
        outcomes = [_succeeded(c, k) for k, c in enumerate(heads)]
        outcomes[5].fence += 1  # stale: another worker took this delivery over
        if together:
            futures = [
                store.settle(o, worker="w1", chain=chain, now=T0 + 200, lease=30.0)
                for o in outcomes
            ]
            results = await asyncio.gather(*futures, return_exceptions=True)
        else:
            results = []
            for o in outcomes:
                try:
                    results.append(
                        await store.settle(o, worker="w1", chain=chain, now=T0 + 200, lease=30.0)
                    )
                except LeaseLost as exc:
                    results.append(exc)
        merged = _merged_cleanly(store)
        shaped: list[Any] = []
        for r in results:
            if isinstance(r, Claimed):
                shaped.append(("chained", r.delivery_id, r.lane, r.fence, r.event.id, r.steps))
            else:
                shaped.append(type(r).__name__)
        return [shaped, _snapshot(url)], merged
    finally:
        store.close()


def _snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(url) as conn:
        return {
            "deliveries": conn.execute(
                "SELECT id, lane, status, fence, worker, due_at, runs, attempts, finished_at,"
                " error_class, reason, blocking, first_attempt_at FROM deliveries ORDER BY id"
            ).fetchall(),
            "lanes": conn.execute("SELECT flow, lane FROM lanes ORDER BY flow, lane").fetchall(),
            "steps": conn.execute(
                "SELECT delivery_id, name, result, recorded_at FROM steps ORDER BY 1, 2"
            ).fetchall(),
            "attempts": conn.execute(
                "SELECT delivery_id, number, chain, worker, started_at, finished_at, outcome,"
                " error_class, reason, delay, calls FROM attempts ORDER BY delivery_id"
            ).fetchall(),
        }


@pytest.mark.parametrize("chain", [True, False])
async def test_a_batch_of_successes_lands_exactly_as_one_by_one(
    two_urls: tuple[str, str], chain: bool
) -> None:
    (together, state), merged = await _scenario(two_urls[0], together=True, chain=chain)
    (alone, alone_state), alone_merged = await _scenario(two_urls[1], together=False, chain=chain)
    assert merged >= len(LANES) - 1, "the successes ran as one statement"
    assert alone_merged == 0
    assert together == alone
    assert state == alone_state

    # What that state is: the stale outcome was refused and changed nothing.
    assert together[5] == "LeaseLost"
    deliveries = {row[0]: row for row in state["deliveries"]}
    stale = deliveries[6]
    assert (stale[2], stale[4]) == ("running", "w1"), "still leased, not settled"
    succeeded = [row for row in state["deliveries"] if row[2] == "succeeded"]
    assert len(succeeded) == len(LANES) - 1
    assert len(state["attempts"]) == len(LANES) - 1 and 6 not in {a[0] for a in state["attempts"]}
    assert {s[0] for s in state["steps"]} == {d + 1 for d in range(len(LANES)) if d % 3 and d != 5}
    with_calls = [a for a in state["attempts"] if a[10] is not None]
    assert len(with_calls) == len([k for k in range(len(LANES)) if k % 2 and k != 5])
    # Each landed lane moved on to its second delivery: leased to w1 (chain) or claimable.
    seconds = [row for row in state["deliveries"] if row[0] > len(LANES)]
    expected = "running" if chain else "pending"
    assert sorted(r[2] for r in seconds) == sorted(["queued"] + [expected] * (len(LANES) - 1))
    chained = [r for r in together if isinstance(r, tuple)]
    assert len(chained) == (len(LANES) - 1 if chain else 0)
    for k, result in enumerate(together):
        if isinstance(result, tuple):
            assert result[2] == LANES[k], "each caller gets its own lane's next delivery"
            assert result[3] == 1 and result[5] == {}
    assert len(state["lanes"]) == len(LANES), "every lane still has a delivery to run"


async def test_settling_the_last_deliveries_closes_their_lanes(pg_url: str) -> None:
    store = PostgresStore(pg_url)
    try:
        await store.emit([_event(n, _on(LANES[n])) for n in range(len(LANES))])
        heads = await store.claim("w1", 100, T0 + 50, 30.0)
        assert len(heads) == len(LANES)
        futures = [
            store.settle(_succeeded(c, k), worker="w1", chain=True, now=T0 + 200, lease=30.0)
            for k, c in enumerate(heads)
        ]
        assert await asyncio.gather(*futures) == [None] * len(LANES)
        assert _merged_cleanly(store) >= len(LANES) - 1
        state = _snapshot(pg_url)
        assert state["lanes"] == []
        assert {row[2] for row in state["deliveries"]} == {"succeeded"}
    finally:
        store.close()


def _emits() -> list[NewEvent]:
    """Events on repeating lanes, two flows each, a repeated idempotency key, a delivery
    idempotency key seen twice, and direct leases for some."""
    return [
        _event(
            n,
            (
                NewDelivery("flow", f"k{n % 7}"),
                NewDelivery("audit", f"k{n % 3}", idem=f"d{n % 20}" if n % 2 else None),
            ),
            idempotency_key=f"idem-{n % 25}",  # 25..29 repeat 0..4: acknowledged, not stored
            lease=DirectLease("w1", T0 + 60, 1) if n % 4 == 0 else None,
        )
        for n in range(30)
    ]


async def _emit_scenario(url: str) -> tuple[list[Any], Any, int]:
    store = PostgresStore(url)
    try:
        results = await asyncio.gather(*(store.emit([item]) for item in _emits()))
        merged = _merged_cleanly(store)
        return [r for (r,) in results], _snapshot(url), merged
    finally:
        store.close()


async def test_a_batch_of_emits_lands_exactly_as_each_in_turn(
    two_urls: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    together, state, merged = await _emit_scenario(two_urls[0])
    # The same batch, each emit its own statement (as before merging existed).
    monkeypatch.setattr(postgres_writer, "_merged", lambda calls: [[i] for i in range(len(calls))])
    alone, alone_state, alone_merged = await _emit_scenario(two_urls[1])
    assert merged == 30 and alone_merged == 0
    assert together == alone
    assert state == alone_state
    # One of each pair sharing an idempotency key was stored; the other answered with its id.
    assert sum(r.created for r in together) == 25
    for n in range(5):
        first, second = together[n], together[n + 25]
        assert first.created != second.created
        assert first.event_id == second.event_id
    leased = [r.leased for r in together if r.leased]
    assert leased and all(flow in ("flow", "audit") for ((_, flow, _),) in leased)
    statuses = sorted({row[2] for row in state["deliveries"]})
    assert statuses == ["pending", "queued", "running", "skipped"]
