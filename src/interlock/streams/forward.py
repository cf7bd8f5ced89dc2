"""Forwarding events to a broker: a flow that publishes each event it gets to a sink.

    from interlock.streams import forward, nats

    forward(app, OrderShipped, to=nats.sink(url=...), subject="orders.shipped",
            owner="platform@acme.test")

Each event goes out as a CloudEvents 1.0 JSON document (the envelope's
structured form), from a checkpointed step whose de-duplication id is the
step's stable key: a retried delivery publishes the same id again, and the
broker keeps one copy. Ordering, retries, SLO and lifecycle are the flow's,
as for any other flow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

from interlock.contracts import Contract
from interlock.flows import Retry
from interlock.steps import Context
from interlock.streams.base import StreamSink

if TYPE_CHECKING:
    from interlock.app import Interlock
    from interlock.flows import KeySpec

__all__ = ["forward"]


def forward(
    app: Interlock,
    contract: type[Contract],
    *,
    to: StreamSink,
    subject: str,
    owner: str,
    key: KeySpec = None,
    retry: Retry | None = None,
    name: str | None = None,
) -> str:
    """Declare a flow that publishes every ``contract`` event to ``subject``; returns its
    name (``forward-<event type>-to-<subject>`` unless ``name`` is given). ``key`` keeps
    the events of one ordering key in order on the way out."""
    flow_name = name or f"forward-{contract.event_type()}-to-{subject}"

    async def publish(event: Contract, ctx: Context) -> None:
        body = orjson.dumps(ctx.event.to_cloudevent())
        await ctx.step(
            "publish",
            to.publish,
            subject,
            body,
            msg_id=ctx.step_key("publish"),
            headers={"Content-Type": "application/cloudevents+json"},
        )

    app.flow(contract, owner=owner, key=key, retry=retry, name=flow_name)(publish)
    return flow_name
