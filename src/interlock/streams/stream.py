"""A stream declared on the app: a broker source and its mappings to contracts.

    from interlock.streams import nats

    orders = app.stream("orders", nats.source(url="nats://127.0.0.1:4222",
                                              stream="ORDERS", subject="orders.>",
                                              durable="interlock-orders"))

    @orders.maps("orders.created")          # by subject
    def order_created(body: dict[str, Any]) -> OrderCreated:
        return OrderCreated(order_id=str(body["id"]), ...)

A message's topic is its subject, or with ``topic_field="type"`` that field of
its JSON body when it has one. A mapping may return one contract, several, or
``None`` to ignore the message, exactly as a webhook source's mappings do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from interlock.errors import ConfigurationError
from interlock.sources import TopicMappings
from interlock.streams.base import Message, StreamSource

__all__ = ["Stream", "build_stream"]


@dataclass
class Stream(TopicMappings):
    """A declared stream: ``source`` is consumed by every worker process of the app.

    ``wait`` is how long one fetch waits for messages (and so the longest a stop
    waits for the fetch in progress); ``backoff_cap`` bounds the pause between
    reconnects and between redeliveries of a batch the store could not take.
    """

    source: StreamSource
    topic_field: str | None = None
    wait: float = 1.0
    backoff_cap: float = 30.0

    def topic_of(self, message: Message, body: Any) -> str:
        if self.topic_field and isinstance(body, dict):
            value = body.get(self.topic_field)
            if isinstance(value, str):
                return value
        return message.topic

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source.describe(),
            "topics": sorted(self.mappings),
            "catch_all": self.default is not None,
            "topic_field": self.topic_field,
        }


def build_stream(
    name: str,
    source: StreamSource,
    *,
    topic_field: str | None,
    wait: float,
    backoff_cap: float,
) -> Stream:
    if not name or not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise ConfigurationError(f"stream name {name!r} must be letters, digits, '-', '_' or '.'")
    if wait <= 0 or backoff_cap <= 0:
        raise ConfigurationError(f"stream {name!r}: wait and backoff_cap must be positive")
    return Stream(name, source=source, topic_field=topic_field, wait=wait, backoff_cap=backoff_cap)
