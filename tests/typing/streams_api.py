"""A typed usage file of the streams API; mypy checks it (it is not run)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from interlock import Context, Contract, Interlock
from interlock.streams import (
    Message,
    Published,
    Stream,
    StreamRejected,
    StreamSink,
    StreamSource,
    forward,
    nats,
)

app = Interlock("typing-streams", "sqlite:///typing.db")


class OrderCreated(Contract, event="typing.order_created", version=1, subject="order_id"):
    order_id: str
    amount: int


source: nats.NatsSource = nats.source(
    url=["nats://a.internal:4222", "nats://b.internal:4222"],
    stream="ORDERS",
    subject="orders.>",
    durable="interlock-orders",
    batch=50,
    max_in_flight=500,
    ack_wait=15.0,
    key="sequence",
    token_secret="nats-token",
)
as_protocol: StreamSource = source
orders: Stream = app.stream("orders", source, topic_field="type", wait=0.5, backoff_cap=10.0)


@orders.maps("orders.created")
def order_created(body: dict[str, Any]) -> OrderCreated:
    return OrderCreated(order_id=str(body["id"]), amount=int(body["amount"]))


@orders.maps()
def everything_else(body: dict[str, Any]) -> None:
    return None


sink: nats.NatsSink = nats.sink(url="nats://a.internal:4222", timeout=2.0)
as_sink: StreamSink = sink


@app.flow(OrderCreated, owner="typing@interlock.test", key="order_id")
async def announce(event: OrderCreated, ctx: Context) -> None:
    body = orjson.dumps({"order": event.order_id})
    published: Published = await ctx.step(
        "publish", sink.publish, "orders.announced", body, msg_id=ctx.step_key("publish")
    )
    assert published["seq"] >= 1


@app.flow(StreamRejected, owner="typing@interlock.test")
async def alarm(event: StreamRejected, ctx: Context) -> None:
    assert event.reason and event.position


flow_name: str = forward(
    app, OrderCreated, to=sink, subject="orders.out", owner="typing@interlock.test"
)


class ListSource:
    """A source over a list: the protocol is small enough to write in a few lines."""

    kind = "list"
    batch = 10

    def __init__(self, bodies: list[bytes]) -> None:
        self.pending = [
            Message(topic="list", body=b, key=f"list:{i}", position=str(i))
            for i, b in enumerate(bodies)
        ]

    async def connect(self) -> None:
        return None

    async def fetch(self, timeout: float) -> list[Message]:
        batch, self.pending = self.pending[: self.batch], self.pending[self.batch :]
        return batch

    async def ack(self, messages: Sequence[Message]) -> None:
        return None

    async def nak(self, messages: Sequence[Message], delay: float) -> None:
        self.pending[:0] = messages

    async def reject(self, messages: Sequence[Message]) -> None:
        return None

    def lag(self) -> int | None:
        return len(self.pending)

    async def close(self) -> None:
        return None

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind}


listed: Stream = app.stream("listed", ListSource([b"{}"]))
