"""Property: whatever the broker and the process do — crashes before or after the store,
lost acks, redeliveries, store refusals, publishers repeating a message id, batch sizes —
each message ends as exactly one stored event (or one rejection record), and every
message is settled.

Runs the real runner and SQLite store over :class:`~interlock.streams.memory.MemorySource`.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from interlock.drift import monitor_of
from interlock.errors import StoreError
from interlock.streams import Message, StreamRunner
from interlock.streams.memory import MemorySource

from .stream_app import build_app

Kind = Literal["good", "bad", "ignored", "repeat"]
Step = Literal["handle", "crash_after_store", "crash_before_store", "store_refuses"]

messages_st = st.lists(st.sampled_from(["good", "good", "bad", "ignored", "repeat"]), max_size=25)
steps_st = st.lists(
    st.tuples(
        st.sampled_from(["handle", "crash_after_store", "crash_before_store", "store_refuses"]),
        st.integers(1, 6),
    ),
    max_size=12,
)


async def scenario(kinds: Sequence[Kind], steps: Sequence[tuple[Step, int]], db: Path) -> None:
    app = build_app(f"sqlite:///{db}", nats_url="nats://unused", stream="S", prefix="p")
    source = MemorySource()
    stream = app.streams["orders"]
    stream.source = source
    runner = StreamRunner(app, stream)
    good: set[int] = set()
    bad = 0
    for i, kind in enumerate(kinds):
        if kind == "good":
            source.publish("p.order.created", orjson.dumps({"id": i, "amount": i}))
            good.add(i)
        elif kind == "repeat" and good:  # a publisher re-sending an earlier order's msg id
            first = min(good)
            body = orjson.dumps({"id": first, "amount": first})
            source.publish("p.order.created", body, msg_id=f"order-{first}")
            source.publish("p.order.created", body, msg_id=f"order-{first}")
        elif kind == "bad":
            source.publish("p.order.created", b"{not json")
            bad += 1
        else:
            source.publish("p.order.shipped", b"{}")
    repeated = {m.key for m in source.ready if m.key.startswith("msg:")}

    emit = app.emit_prepared

    async def refuse(items: object) -> object:
        raise StoreError("the database is locked")

    async def lose(messages: Sequence[Message]) -> None:
        return None

    ack, reject = source.ack, source.reject
    for step, size in steps:
        source.batch = size
        batch = await source.fetch(0)
        if not batch:
            break
        if step == "crash_before_store":
            source.redeliver()
            continue
        if step == "store_refuses":
            app.emit_prepared = refuse  # type: ignore[method-assign,assignment]
        if step == "crash_after_store":
            source.ack = source.reject = lose  # type: ignore[method-assign]
        await runner.handle(batch)
        app.emit_prepared, source.ack, source.reject = emit, ack, reject  # type: ignore[method-assign]
        if step == "crash_after_store":
            source.redeliver()  # the process died: the broker hands them out again

    await runner.drain(wait=0)

    assert not source.ready
    assert not source.in_flight
    settled = {m.position for m in source.acked} | {m.position for m in source.rejected}
    assert len(settled) == source._seq  # every message acknowledged or terminated
    orders = app.store.list_events(type="shop.order_created", limit=1000)
    keys = [e.idempotency_key for e in orders]
    assert len(keys) == len(set(keys))  # never stored twice
    assert len(orders) == len(good) + len(repeated)
    rejections = app.store.list_events(type="interlock.stream.rejected", limit=1000)
    assert len(rejections) == bad
    assert sum(app.store.flow_counts().get("book", {}).values()) == len(orders)
    await monitor_of(app).flush()
    app.close()


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(kinds=messages_st, steps=steps_st)
def test_every_message_is_stored_once_and_settled(
    kinds: list[Kind], steps: list[tuple[Step, int]]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(scenario(kinds, steps, Path(tmp) / "p.db"))
