"""An in-memory stream source: the broker double for tests (yours and ours).

    from interlock.streams import StreamRunner
    from interlock.streams.memory import MemorySource

    source = MemorySource()
    orders = app.stream("orders", source)        # in the test's app, instead of nats.source
    ...
    source.publish("orders.created", b'{"id": 1}')
    await StreamRunner(app, orders).drain()      # until the source is empty

It behaves as a broker with explicit acks does: a fetched message stays
*in flight* until it is acked or rejected, a nak puts it back at the front, and
:meth:`MemorySource.redeliver` hands out everything still in flight again (what
a broker does after its ack wait), counting the delivery. Keys are
``memory:<sequence>``, or the ``msg_id`` given to :meth:`MemorySource.publish`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from interlock.streams.base import Message

__all__ = ["MemorySource"]


class MemorySource:
    """A list of messages with broker semantics (see the module's docstring)."""

    kind = "memory"

    def __init__(self, *, batch: int = 100) -> None:
        self.batch = batch
        self.ready: list[Message] = []
        self.in_flight: dict[str, Message] = {}
        self.acked: list[Message] = []
        self.rejected: list[Message] = []
        self.connected = False
        self._seq = 0

    def publish(
        self,
        topic: str,
        body: bytes,
        *,
        msg_id: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Message:
        """Append a message; returns it as a consumer will see it."""
        self._seq += 1
        message = Message(
            topic=topic,
            body=body,
            key=f"msg:{msg_id}" if msg_id else f"memory:{self._seq}",
            position=f"memory:{self._seq}",
            headers=dict(headers or {}),
        )
        self.ready.append(message)
        return message

    def redeliver(self) -> int:
        """Hand out every in-flight message again (an ack wait ran out); returns how many."""
        again = [replace(m, deliveries=m.deliveries + 1) for m in self.in_flight.values()]
        self.in_flight.clear()
        self.ready[:0] = again
        return len(again)

    async def connect(self) -> None:
        self.connected = True

    async def fetch(self, timeout: float) -> list[Message]:
        batch, self.ready = self.ready[: self.batch], self.ready[self.batch :]
        for message in batch:
            self.in_flight[message.position] = message
        return batch

    async def ack(self, messages: Sequence[Message]) -> None:
        self.acked.extend(self._settle(messages))

    async def reject(self, messages: Sequence[Message]) -> None:
        self.rejected.extend(self._settle(messages))

    async def nak(self, messages: Sequence[Message], delay: float) -> None:
        again = [replace(m, deliveries=m.deliveries + 1) for m in self._settle(messages)]
        self.ready[:0] = again

    def _settle(self, messages: Sequence[Message]) -> list[Message]:
        return [m for m in messages if self.in_flight.pop(m.position, None) is not None]

    def lag(self) -> int | None:
        return len(self.ready)

    async def close(self) -> None:
        self.connected = False

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "batch": self.batch}
