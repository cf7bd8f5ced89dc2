"""Direct leases: an emit in a worker's own process hands lane heads straight to it."""

from __future__ import annotations

import asyncio
import sqlite3
from collections import defaultdict
from pathlib import Path

import pytest

from interlock import Context, Contract, Interlock, StoreUnavailable


class Order(Contract, event="order.placed"):
    order_id: str
    account_id: str


async def _until(predicate: object, timeout: float = 10.0) -> None:
    assert callable(predicate)
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.005)


def _rows(path: Path) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(
            "SELECT d.id, d.status, d.fence, d.runs, e.id FROM deliveries d "
            "JOIN events e ON e.seq = d.event_seq ORDER BY d.id"
        ).fetchall()
    finally:
        conn.close()


async def test_emits_are_leased_to_the_local_worker_in_lane_order(tmp_path: Path) -> None:
    app = Interlock("direct", f"sqlite:///{tmp_path / 'd.db'}")
    seen: dict[str, list[str]] = defaultdict(list)
    gate = asyncio.Event()

    @app.flow(Order, owner="ops", key="account_id")
    async def handle(event: Order, ctx: Context) -> None:
        await gate.wait()
        await ctx.step("effect", lambda: event.order_id)
        seen[event.account_id].append(event.order_id)

    stop = asyncio.Event()
    worker = app.worker(concurrency=8)
    task = asyncio.create_task(worker.run(stop))
    await _until(lambda: worker._running)
    orders = [Order(order_id=f"o{i}", account_id=f"a{i % 2}") for i in range(10)]
    for order in orders:
        await app.emit(order)
    # The two lane heads were leased by the emits themselves: running, fence 1, no claim.
    rows = _rows(tmp_path / "d.db")
    running = [r for r in rows if r[1] == "running"]
    assert len(running) == 2
    assert all(r[2] == 1 for r in running)
    assert sorted(r[1] for r in rows).count("queued") == 8
    gate.set()
    await _until(lambda: sum(len(v) for v in seen.values()) == 10)
    stop.set()
    await task
    app.close()
    assert seen["a0"] == [f"o{i}" for i in range(0, 10, 2)]
    assert seen["a1"] == [f"o{i}" for i in range(1, 10, 2)]
    assert {r[1] for r in _rows(tmp_path / "d.db")} == {"succeeded"}
    assert worker._reserved == 0


async def test_a_full_worker_leaves_work_for_claims(tmp_path: Path) -> None:
    app = Interlock("full-worker", f"sqlite:///{tmp_path / 'f.db'}")
    gate = asyncio.Event()
    done: list[str] = []

    @app.flow(Order, owner="ops", key="account_id")
    async def handle(event: Order, ctx: Context) -> None:
        await gate.wait()
        done.append(event.order_id)

    stop = asyncio.Event()
    worker = app.worker(concurrency=1)
    task = asyncio.create_task(worker.run(stop))
    await _until(lambda: worker._running)
    for i in range(4):
        await app.emit(Order(order_id=f"o{i}", account_id=f"a{i}"))
    statuses = [r[1] for r in _rows(tmp_path / "f.db")]
    assert statuses.count("running") == 1  # one slot, one direct lease
    assert statuses.count("pending") == 3  # the rest wait for a claim
    gate.set()
    await _until(lambda: len(done) == 4)
    stop.set()
    await task
    app.close()
    assert sorted(done) == ["o0", "o1", "o2", "o3"]


async def test_a_stopping_worker_takes_no_direct_lease(tmp_path: Path) -> None:
    app = Interlock("stopping", f"sqlite:///{tmp_path / 's.db'}")

    @app.flow(Order, owner="ops", key="account_id")
    async def handle(event: Order, ctx: Context) -> None:
        return None

    stop = asyncio.Event()
    worker = app.worker(concurrency=4)
    task = asyncio.create_task(worker.run(stop))
    await _until(lambda: worker._running)
    stop.set()
    await task
    await app.emit(Order(order_id="late", account_id="a"))
    assert [r[1] for r in _rows(tmp_path / "s.db")] == ["pending"]
    app.close()


async def test_a_failed_emit_gives_the_reserved_slots_back(tmp_path: Path) -> None:
    app = Interlock("reserve", f"sqlite:///{tmp_path / 'r.db'}")

    @app.flow(Order, owner="ops", key="account_id")
    async def handle(event: Order, ctx: Context) -> None:
        return None

    stop = asyncio.Event()
    worker = app.worker(concurrency=4)
    task = asyncio.create_task(worker.run(stop))
    await _until(lambda: worker._running)
    await app.emit(Order(order_id="o1", account_id="a"))
    writer = app.store._async_writer._conn
    assert writer is not None
    (pages,) = writer.execute("PRAGMA page_count").fetchone()
    writer.execute(f"PRAGMA max_page_count = {pages}")
    with pytest.raises(StoreUnavailable):
        await app.emit(Order(order_id="o2" * 100_000, account_id="b"))
    assert worker._reserved == 0
    writer.execute("PRAGMA max_page_count = 1073741823")
    stop.set()
    await task
    app.close()
