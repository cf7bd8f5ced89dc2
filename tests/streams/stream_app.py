"""The app the stream tests consume with, in this process or as a worker process.

Run as a script it is one ``interlock worker``-like process with its streams on::

    INTERLOCK_DATABASE_URL=sqlite:////tmp/x.db STREAM_NATS_URL=nats://127.0.0.1:4222 \\
    STREAM_NAME=IL_T_ab12 STREAM_PREFIX=tab12 python stream_app.py

``STREAM_KILL_AT_ACK=N`` makes the process SIGKILL itself at its N-th acknowledgement,
after the batch is durable in the store and before the broker hears of it: the window
the at-least-once design must survive. Logs go to stderr as JSON lines;
``{"event": "streams.ready"}`` says the worker is about to consume.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

import structlog

from interlock import Context, Contract, Interlock
from interlock.streams import Message, nats
from interlock.streams.metrics import stream_metrics


class OrderCreated(Contract, event="shop.order_created", version=1, subject="order_id"):
    order_id: str
    amount: int


def build_app(
    database_url: str | None,
    *,
    nats_url: str,
    stream: str,
    prefix: str,
    durable: str = "interlock-orders",
    batch: int = 20,
    ack_wait: float = 30.0,
) -> Interlock:
    """An app with one flow and one NATS stream mapping ``<prefix>.order.created``."""
    app = Interlock("streams", database_url)

    @app.flow(OrderCreated, owner="streams@interlock.test", key="order_id")
    async def book(event: OrderCreated, ctx: Context) -> None:
        await ctx.step("book", _booked, event.order_id)

    orders = app.stream(
        "orders",
        nats.source(
            url=nats_url,
            stream=stream,
            subject=f"{prefix}.>",
            durable=durable,
            batch=batch,
            ack_wait=ack_wait,
        ),
        wait=0.2,
        backoff_cap=0.5,
    )

    @orders.maps(f"{prefix}.order.created")
    def order_created(body: dict[str, Any]) -> OrderCreated:
        return OrderCreated(order_id=str(body["id"]), amount=body["amount"])

    return app


def _booked(order_id: str) -> str:
    return order_id


async def main() -> None:
    app = build_app(
        None,
        nats_url=os.environ["STREAM_NATS_URL"],
        stream=os.environ["STREAM_NAME"],
        prefix=os.environ["STREAM_PREFIX"],
        batch=int(os.environ.get("STREAM_BATCH", "20")),
        ack_wait=float(os.environ.get("STREAM_ACK_WAIT", "30")),
    )
    log = structlog.get_logger("stream_app")
    kill_at = int(os.environ.get("STREAM_KILL_AT_ACK", "0"))
    source = app.streams["orders"].source
    ack = source.ack
    acks = 0

    async def ack_or_die(messages: Sequence[Message]) -> None:
        nonlocal acks
        acks += 1
        if acks == kill_at:
            log.info("stream_app.killing", keys=[m.key for m in messages])
            os.kill(os.getpid(), signal.SIGKILL)
        await ack(messages)

    source.ack = ack_or_die  # type: ignore[method-assign]
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    worker = app.worker(concurrency=16, grace=5.0)
    app.store  # noqa: B018 - open (and migrate) before announcing readiness
    log.info("streams.ready", pid=os.getpid())
    try:
        await worker.run(stop)
    finally:
        c = stream_metrics(app).of("orders")
        log.info("streams.stopped", acked=c.acked, consumed=c.consumed, redelivered=c.redelivered)
        app.close()


if __name__ == "__main__":
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )
    asyncio.run(main())
