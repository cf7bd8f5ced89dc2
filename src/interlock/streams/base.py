"""The stream seam: what a broker source and sink must do, and the message they hand over.

A source is pulled in batches by :class:`~interlock.streams.runner.StreamRunner`;
every message of a batch is settled only after the batch's outcome is durable in
the store: ``ack`` what was stored (or was already stored, or was ignored),
``reject`` what can never be stored (recorded first as a rejection event), and
``nak`` everything when the store could not take the batch, for a later
redelivery. A message's ``key`` is its idempotency key: it must be the same on
every redelivery of that message, and different for every other message.

The shape fits NATS JetStream (key ``<stream>:<sequence>`` or the publisher's
``Nats-Msg-Id``; ack, nak with delay and term per message) and Kafka alike
(key ``<topic>/<partition>@<offset>``; ``ack`` commits the batch's highest
offset per partition, ``nak`` seeks each partition back to its first unsettled
offset, ``reject`` is an ack after the rejection event is stored).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypedDict

__all__ = ["Message", "Published", "StreamSink", "StreamSource"]


@dataclass(frozen=True, slots=True)
class Message:
    """One message fetched from a broker.

    ``topic`` is what mappings are chosen by (a NATS subject, a Kafka topic);
    ``key`` the stable idempotency key; ``position`` where it sits in the broker,
    for logs and rejection records (``ORDERS:42``, ``orders/3@1042``);
    ``deliveries`` how often the broker handed it out (1 the first time);
    ``handle`` the source's own object for settling it.
    """

    topic: str
    body: bytes
    key: str
    position: str
    deliveries: int = 1
    published_at: float | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    handle: Any = field(default=None, compare=False, repr=False)


class StreamSource(Protocol):
    """A broker consumer: connect, fetch batches, settle each message, close.

    ``batch`` is how many messages one fetch asks for; ``fetch`` returns as soon
    as it has some, or an empty list after ``timeout`` seconds. Connection errors
    are raised (any exception): the runner closes the source and connects again
    with backoff.
    """

    kind: str
    batch: int

    async def connect(self) -> None: ...

    async def fetch(self, timeout: float) -> list[Message]: ...

    async def ack(self, messages: Sequence[Message]) -> None: ...

    async def nak(self, messages: Sequence[Message], delay: float) -> None: ...

    async def reject(self, messages: Sequence[Message]) -> None: ...

    def lag(self) -> int | None:
        """Messages still waiting in the broker for this consumer, if known cheaply."""
        ...

    async def close(self) -> None: ...

    def describe(self) -> dict[str, Any]: ...


class Published(TypedDict):
    """Where a sink's broker put a message; ``duplicate`` when it was already there."""

    stream: str
    seq: int
    duplicate: bool


class StreamSink(Protocol):
    """A broker producer: publish bytes to a topic with a de-duplication id."""

    async def publish(
        self,
        topic: str,
        body: bytes,
        *,
        msg_id: str,
        headers: Mapping[str, str] | None = None,
    ) -> Published: ...

    async def close(self) -> None: ...
