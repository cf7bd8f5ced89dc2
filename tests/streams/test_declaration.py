"""Declaring streams, and turning messages into events, without a broker.

:func:`interlock.streams.intake.take` is the pure part of the runner: these tests hand
it :class:`~interlock.streams.Message` values directly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from interlock import Interlock, Limits
from interlock.errors import ConfigurationError
from interlock.streams import Message, StreamRejected, nats, stream_metrics
from interlock.streams.intake import take

from .stream_app import OrderCreated


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Interlock]:
    application = Interlock("decl", f"sqlite:///{tmp_path / 'decl.db'}")
    yield application
    application.close()


def source(**overrides: Any) -> nats.NatsSource:
    settings: dict[str, Any] = {
        "url": "nats://127.0.0.1:1",
        "stream": "ORDERS",
        "subject": "orders.>",
        "durable": "interlock",
    }
    return nats.source(**{**settings, **overrides})


def message(body: object, topic: str = "orders.created", key: str = "ORDERS:1:7") -> Message:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return Message(topic=topic, body=raw, key=key, position="ORDERS:7")


def test_a_stream_is_declared_once_with_a_valid_name(app: Interlock) -> None:
    app.stream("orders", source())
    assert app.contracts["interlock.stream.rejected"] is StreamRejected  # in the catalogue
    with pytest.raises(ConfigurationError, match="declared twice"):
        app.stream("orders", source())
    with pytest.raises(ConfigurationError, match="stream name"):
        app.stream("or ders", source())


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"batch": 0}, "batch >= 1"),
        ({"batch": 10, "max_in_flight": 5}, "max_in_flight >= batch"),
        ({"ack_wait": 0}, "ack_wait"),
        ({"stream": "ORD.ERS"}, "stream"),
        ({"durable": ""}, "durable"),
        ({"key": "offset"}, "key must be"),
        ({"url": []}, "server URL"),
    ],
)
def test_nats_source_settings_are_checked(overrides: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        source(**overrides)


def test_describe_names_no_credentials() -> None:
    described = source(url="nats://user:hunter2@broker.internal:4222").describe()
    assert described["servers"] == ["nats://broker.internal:4222"]
    assert "hunter2" not in repr(described)


def test_a_body_field_picks_the_mapping_when_declared(app: Interlock) -> None:
    events = app.stream("events", source(), topic_field="type")

    @events.maps("order.created")
    def created(body: dict[str, Any]) -> OrderCreated:
        return OrderCreated(order_id=str(body["id"]), amount=body["amount"])

    intake = take(
        app,
        events,
        [
            message({"type": "order.created", "id": 1, "amount": 5}, topic="all"),
            message({"type": "order.deleted", "id": 2}, topic="all", key="k2"),
        ],
    )
    assert intake.verdicts == ["stored", "ignored"]
    assert [i.event.type for i in intake.items] == ["shop.order_created"]
    assert intake.items[0].event.source == "events"


def test_one_message_may_become_several_events_keyed_apart(app: Interlock) -> None:
    orders = app.stream("orders", source())

    @orders.maps()  # every topic
    def split(body: dict[str, Any]) -> list[OrderCreated]:
        return [OrderCreated(order_id=str(i), amount=1) for i in body["ids"]]

    intake = take(app, orders, [message({"ids": [1, 2, 3]}, key="msg:abc")])
    assert [i.event.idempotency_key for i in intake.items] == ["msg:abc", "msg:abc#1", "msg:abc#2"]
    assert intake.owners == [0, 0, 0]


def test_an_oversized_event_is_rejected_not_retried(tmp_path: Path) -> None:
    app = Interlock("small", f"sqlite:///{tmp_path / 's.db'}", limits=Limits(max_payload_bytes=512))
    orders = app.stream("orders", source())

    @orders.maps("orders.created")
    def created(body: dict[str, Any]) -> OrderCreated:
        return OrderCreated(order_id=body["id"], amount=1)

    intake = take(app, orders, [message({"id": "x" * 600})])
    assert intake.verdicts == ["rejected"]
    assert intake.reasons == {0: "too_large"}
    (record,) = intake.items
    assert record.event.type == StreamRejected.event_type()
    assert record.event.idempotency_key == "ORDERS:1:7"  # a redelivery finds it stored
    app.close()


async def test_workers_leave_streams_alone_when_told_to(app: Interlock) -> None:
    app.stream("orders", source(), wait=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(app.worker(streams=False).run(stop))
    await asyncio.sleep(0.2)
    stop.set()
    await task
    assert "orders" not in stream_metrics(app).streams

    # With streams on, the runner tries the (unreachable) server and backs off.
    stop = asyncio.Event()
    task = asyncio.create_task(app.worker().run(stop))
    await asyncio.sleep(0.3)
    stop.set()
    await asyncio.wait_for(task, 5)
    counters = stream_metrics(app).of("orders")
    assert not counters.connected
    assert counters.consumed == 0
