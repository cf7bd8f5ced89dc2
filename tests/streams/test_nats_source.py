"""A NATS JetStream stream consumed into the store, in this process, against a real server.

Messages become events with deliveries; each is acknowledged only once stored; a
redelivery adds nothing; bad messages are recorded as rejection events and
terminated, never redelivered; a store failure hands the batch back for later.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from interlock import Interlock
from interlock.drift import monitor_of
from interlock.errors import ConfigurationError, StoreError
from interlock.events import Event
from interlock.gateway.app import build_gateway
from interlock.streams import Message, StreamRunner, nats, stream_metrics

from .conftest import Broker
from .stream_app import build_app


async def eventually(predicate: Callable[[], object], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


AppFactory = Callable[..., Interlock]


@pytest.fixture
def make_app(tmp_path: Path, broker: Broker) -> Iterator[AppFactory]:
    """Apps consuming the test's stream into a SQLite file (closed at teardown). JetStream
    waits ``ack_wait`` (30 s unless a test needs redeliveries soon) for each ack."""
    apps: list[Interlock] = []

    def make(ack_wait: float = 30.0) -> Interlock:
        application = build_app(
            f"sqlite:///{tmp_path / 'streams.db'}",
            nats_url=broker.url,
            stream=broker.stream,
            prefix=broker.prefix,
            ack_wait=ack_wait,
        )
        apps.append(application)
        return application

    yield make
    for application in apps:
        application.close()


@pytest.fixture
def app(make_app: AppFactory) -> Interlock:
    return make_app()


def order(i: int, amount: int = 100) -> bytes:
    return orjson.dumps({"id": i, "amount": amount})


def stored_events(app: Interlock, event_type: str = "shop.order_created") -> list[Event]:
    return app.store.list_events(type=event_type, limit=1000)


@pytest.fixture(params=["sqlite", "postgres"])
async def any_store_app(
    request: pytest.FixtureRequest, tmp_path: Path, broker: Broker
) -> AsyncIterator[Interlock]:
    """The test's app on SQLite, then on PostgreSQL: the stream code is the same."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'streams.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    application = build_app(url, nats_url=broker.url, stream=broker.stream, prefix=broker.prefix)
    yield application
    application.close()


async def test_messages_become_events_with_deliveries(
    any_store_app: Interlock, broker: Broker
) -> None:
    app = any_store_app
    seqs = [
        await broker.publish("order.created", order(i), msg_id=f"order-{i}" if i % 2 else None)
        for i in range(29)
    ]
    ack = await broker.js.publish(
        broker.subject("order.created"),
        order(29),
        headers={"Interlock-Correlation-Id": "corr-upstream-29"},
    )
    seqs.append(ack.seq)
    before = time.time()
    stop = asyncio.Event()
    worker = asyncio.create_task(app.worker().run(stop))
    try:
        await eventually(
            lambda: app.store.flow_counts().get("book", {}).get("succeeded") == 30,
            "30 deliveries to succeed",
        )
    finally:
        stop.set()
        await worker
    events = app.store.list_events(type="shop.order_created", limit=100)
    assert sorted(int(e.data["order_id"]) for e in events) == list(range(30))
    assert {e.source for e in events} == {"orders"}
    keys = {int(e.data["order_id"]): e.idempotency_key for e in events}
    for i, seq in enumerate(seqs):
        key = keys[i]
        assert key is not None
        if i % 2 and i != 29:
            assert key == f"msg:order-{i}"  # the publisher's Nats-Msg-Id
        else:
            assert key.startswith(f"{broker.stream}:") and key.endswith(f":{seq}")
    (upstream,) = [e for e in events if e.data["order_id"] == "29"]
    assert upstream.correlation_id == "corr-upstream-29"
    # Payloads are profiled for drift under the stream's name, as webhooks are.
    assert ("orders", broker.subject("order.created")) in monitor_of(app).profiles
    # The event happened when it was published, not when it was consumed.
    assert all(e.occurred_at <= before + 0.5 for e in events)
    counters = stream_metrics(app).of("orders")
    assert counters.consumed == 30
    assert counters.acked == {"stored": 30}
    assert counters.lag == 0
    info = await broker.settled("interlock-orders")
    assert info.num_ack_pending == 0
    assert info.num_pending == 0


async def test_redelivery_after_a_lost_ack_adds_nothing(
    make_app: AppFactory, broker: Broker
) -> None:
    app = make_app(ack_wait=1.0)
    for i in range(10):
        await broker.publish("order.created", order(i))
    stream = app.streams["orders"]
    source = stream.source
    runner = StreamRunner(app, stream)
    await source.connect()

    async def collect(keys: int) -> list[Message]:
        """Fetch until ``keys`` different messages came (a loaded machine fetches in parts)."""
        got: list[Message] = []
        deadline = time.monotonic() + 15
        while len({m.key for m in got}) < keys and time.monotonic() < deadline:
            got.extend(await source.fetch(1.0))
        return got

    try:
        first = await collect(10)
        ack = source.ack

        async def lost(messages: object) -> None:  # stored, then the process "dies"
            return None

        source.ack = lost  # type: ignore[method-assign]
        assert await runner.handle(first)
        source.ack = ack  # type: ignore[method-assign]
        assert len(stored_events(app)) == 10

        # JetStream redelivers after ack_wait (1 s): the same keys, found already stored.
        again = await collect(10)
        assert {m.key for m in again} == {m.key for m in first}
        assert all(m.deliveries >= 2 for m in again)
        assert await runner.handle(again)
    finally:
        await source.close()
    assert len(stored_events(app)) == 10
    assert sum(app.store.flow_counts()["book"].values()) == 10  # one delivery each
    counters = stream_metrics(app).of("orders")
    assert counters.acked["stored"] == 10
    assert counters.acked["duplicate"] == len(again) >= 10
    assert counters.redelivered >= 10
    info = await broker.settled("interlock-orders")
    assert info.num_ack_pending == 0


async def test_bad_messages_are_recorded_terminated_and_counted(
    app: Interlock, broker: Broker
) -> None:
    bad = {
        "malformed": b"order 7 please",
        "not_an_object": b"[1, 2]",
        "contract": orjson.dumps({"id": 3, "amount": "lots"}),
        "mapping_failed": orjson.dumps({"amount": 5}),  # no id: the mapping raises KeyError
        "duplicate_key": b'{"id": 4, "id": 5, "amount": 1}',
    }
    positions = {}
    for reason, body in bad.items():
        positions[reason] = await broker.publish("order.created", body)
    await broker.publish("order.cancelled", order(8))  # no mapping for it: ignored
    await broker.publish("order.created", order(9))
    runner_stop = asyncio.Event()
    task = asyncio.create_task(StreamRunner(app, app.streams["orders"]).run(runner_stop))
    counters = stream_metrics(app).of("orders")
    try:
        await eventually(lambda: counters.consumed == 7, "7 messages consumed")
    finally:
        runner_stop.set()
        await task
    assert counters.consumed == 7
    assert counters.redelivered == 0
    assert counters.rejected == dict.fromkeys(bad, 1)
    assert counters.acked == {"stored": 1, "ignored": 1}
    info = await broker.settled("interlock-orders")
    assert info.num_ack_pending == 0  # terminated, so nothing JetStream would redeliver
    assert info.num_redelivered == 0

    # Each rejection is an event an operator can list, naming the reason and where the
    # message sits, never its values.
    records = app.store.list_events(type="interlock.stream.rejected", limit=10)
    by_reason = {r.data["reason"]: r for r in records}
    assert set(by_reason) == set(bad)
    for reason, record in by_reason.items():
        assert record.data["position"] == f"{broker.stream}:{positions[reason]}"
        assert record.data["stream"] == "orders"
        assert record.data["topic"] == broker.subject("order.created")
        assert record.subject == "stream:orders"
    contract = by_reason["contract"].data
    assert contract["errors"][0]["field"] == "amount"
    assert "lots" not in orjson.dumps(contract).decode()
    assert [e.data["order_id"] for e in app.store.list_events(type="shop.order_created")] == ["9"]

    # And /metrics says so.
    transport = httpx.ASGITransport(app=build_gateway(app))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        text = (await client.get("/metrics")).text
    assert 'interlock_stream_rejected_total{reason="contract",stream="orders"} 1.0' in text
    assert 'interlock_stream_acked_total{outcome="ignored",stream="orders"} 1.0' in text
    assert 'interlock_stream_consumed_total{stream="orders"} 7.0' in text
    assert 'interlock_stream_connected{stream="orders"} 0.0' in text


async def test_a_batch_the_store_refuses_is_redelivered_later(
    app: Interlock, broker: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(5):
        await broker.publish("order.created", order(i))
    emit = app.emit_prepared
    refusals = 0

    async def refuse_once(items: list[object]) -> object:
        nonlocal refusals
        if refusals == 0:
            refusals += 1
            raise StoreError("the database is locked")
        return await emit(items)  # type: ignore[arg-type]

    monkeypatch.setattr(app, "emit_prepared", refuse_once)
    stop = asyncio.Event()
    task = asyncio.create_task(StreamRunner(app, app.streams["orders"]).run(stop))
    counters = stream_metrics(app).of("orders")
    try:
        await eventually(lambda: counters.acked.get("stored") == 5, "the batch to be stored")
    finally:
        stop.set()
        await task
    assert counters.nacked == {"store_unavailable": 5}
    assert counters.redelivered == 5
    assert len(stored_events(app)) == 5


async def test_a_stop_settles_every_fetched_message_before_closing(
    app: Interlock, broker: Broker
) -> None:
    for i in range(200):
        await broker.publish("order.created", order(i))
    counters = stream_metrics(app).of("orders")
    stop = asyncio.Event()
    worker = asyncio.create_task(app.worker().run(stop))
    await eventually(lambda: counters.consumed >= 40, "a few batches")
    stop.set()
    await worker
    info = await broker.settled("interlock-orders")
    assert info.num_ack_pending == 0  # nothing fetched was left unsettled
    stored = len(stored_events(app))
    assert stored == counters.acked["stored"] == counters.consumed
    assert info.num_pending == 200 - stored

    # The next run takes up where this one stopped (drain() ends at the first empty fetch,
    # which a loaded machine may give early: drain until everything came).
    runner, handled, deadline = StreamRunner(app, app.streams["orders"]), 0, time.monotonic() + 20
    while handled < 200 - stored and time.monotonic() < deadline:
        handled += await runner.drain(wait=0.5)
    assert handled == 200 - stored
    assert sorted(int(e.data["order_id"]) for e in stored_events(app)) == list(range(200))


async def test_a_missing_stream_is_named_in_a_clear_error(broker: Broker) -> None:
    missing = nats.source(
        url=broker.url, stream=f"{broker.stream}_GONE", subject="x.>", durable="interlock"
    )
    with pytest.raises(ConfigurationError, match=r"no stream .*_GONE.*nats stream add"):
        await missing.connect()
    await missing.close()
