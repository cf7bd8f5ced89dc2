"""The JetStream sink: a publish carries ``Nats-Msg-Id``, so JetStream keeps one copy of a
repeat; ``forward`` publishes every event of a contract from a checkpointed step."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import orjson
import pytest

from interlock import Interlock, Retry
from interlock.streams import Published, forward, nats

from .conftest import Broker
from .stream_app import OrderCreated


@pytest.fixture
async def sink(broker: Broker) -> AsyncIterator[nats.NatsSink]:
    publisher = nats.sink(url=broker.url)
    yield publisher
    await publisher.close()


async def test_publish_sets_the_msg_id_and_jetstream_keeps_one_copy(
    broker: Broker, sink: nats.NatsSink
) -> None:
    subject = broker.subject("order.shipped")
    first = await sink.publish(subject, b'{"id": 1}', msg_id="shipment-1")
    again = await sink.publish(subject, b'{"id": 1}', msg_id="shipment-1")
    other = await sink.publish(subject, b'{"id": 2}', msg_id="shipment-2")
    assert first == {"stream": broker.stream, "seq": 1, "duplicate": False}
    assert again == {"stream": broker.stream, "seq": 1, "duplicate": True}
    assert other["seq"] == 2
    assert await broker.messages() == 2
    stored = await broker.get(1)
    assert stored.headers["Nats-Msg-Id"] == "shipment-1"
    assert stored.data == b'{"id": 1}'


async def test_a_publish_without_msg_id_is_refused(sink: nats.NatsSink, broker: Broker) -> None:
    with pytest.raises(Exception, match="msg_id"):
        await sink.publish(broker.subject("x"), b"{}", msg_id="")


class AckLost:
    """A sink whose first publish reaches JetStream but whose acknowledgement is lost."""

    def __init__(self, sink: nats.NatsSink) -> None:
        self.sink = sink
        self.lost = 1

    async def publish(
        self, topic: str, body: bytes, *, msg_id: str, headers: Mapping[str, str] | None = None
    ) -> Published:
        published = await self.sink.publish(topic, body, msg_id=msg_id, headers=headers)
        if self.lost:
            self.lost -= 1
            raise ConnectionError("the acknowledgement was lost")
        return published

    async def close(self) -> None:
        await self.sink.close()


async def test_forward_publishes_each_event_once_even_when_its_step_retries(
    tmp_path: Path, broker: Broker, sink: nats.NatsSink
) -> None:
    app = Interlock("forwarder", f"sqlite:///{tmp_path / 'fwd.db'}")
    subject = broker.subject("out.order_created")
    name = forward(
        app,
        OrderCreated,
        to=AckLost(sink),
        subject=subject,
        owner="platform@interlock.test",
        retry=Retry(attempts=5, base="10ms", cap="50ms"),
    )
    ids = [await app.emit(OrderCreated(order_id=str(i), amount=i)) for i in range(3)]
    stop = asyncio.Event()
    worker = asyncio.create_task(app.worker().run(stop))
    try:
        deadline = time.monotonic() + 15
        while app.store.flow_counts().get(name, {}).get("succeeded", 0) < 3:
            assert time.monotonic() < deadline, app.store.flow_counts()
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await worker
    retried = [d for d in app.store.list_deliveries(flow=name) if d.runs > 1]
    app.close()
    assert len(retried) == 1  # the lost acknowledgement made one delivery publish twice
    assert await broker.messages() == 3  # and JetStream kept one copy
    published = [await broker.get(seq) for seq in (1, 2, 3)]
    events = [orjson.loads(m.data) for m in published]
    assert sorted(e["id"] for e in events) == sorted(ids)
    assert {e["type"] for e in events} == {"shop.order_created"}
    assert all(e["specversion"] == "1.0" for e in events)
    assert all(m.headers["Content-Type"] == "application/cloudevents+json" for m in published)
