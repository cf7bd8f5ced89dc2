"""NATS JetStream: a durable pull consumer as a stream source, and a publisher as a sink.

    from interlock.streams import nats

    orders = app.stream("orders", nats.source(
        url="nats://127.0.0.1:4222", stream="ORDERS", subject="orders.>",
        durable="interlock-orders", batch=100, max_in_flight=1000, ack_wait=30))

    events_out = nats.sink(url="nats://127.0.0.1:4222")
    await events_out.publish("orders.shipped", body, msg_id=ctx.step_key("publish"))

The consumer is durable, pull-based, with explicit acks and no redelivery limit
(a message is acked once stored, or terminated once recorded as rejected, so it
never loops); it is created with these settings when missing. Every worker
process binds to the same durable consumer, and JetStream shares its messages
among them. A message's idempotency key is its ``Nats-Msg-Id`` header when it
has one (``key="auto"``), else ``<stream>:<created>:<sequence>``: the stream's
creation time keeps a re-created stream's restarted sequences apart.

The sink publishes with ``Nats-Msg-Id`` set, so JetStream drops a re-publish of
the same id within the stream's duplicate window (a retried flow step).
Requires the ``nats`` extra (``pip install 'interlock[nats]'``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import structlog

from interlock.errors import ConfigurationError
from interlock.secrets import resolve_secret
from interlock.streams.base import Message, Published

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.js.client import JetStreamContext

__all__ = ["NatsSink", "NatsSource", "sink", "source"]

log = structlog.get_logger("interlock.streams")

KeyPolicy = Literal["auto", "msg-id", "sequence"]


@dataclass(frozen=True, slots=True)
class NatsSettings:
    """How to reach the NATS servers."""

    servers: tuple[str, ...]
    token_secret: str | None = None
    connect_timeout: float = 2.0

    async def connect(self, name: str) -> Client:
        """A connection that closes for good when the server goes away: its owner makes a
        new one (the runner with backoff, the sink at its next publish), so no call waits
        on a reconnect loop it cannot see."""
        import nats

        async def quiet(exc: Exception) -> None:  # the default handler prints tracebacks
            log.debug("nats.error", client=name, error=repr(exc))

        return await nats.connect(
            servers=list(self.servers),
            name=name,
            token=resolve_secret(self.token_secret) if self.token_secret else None,
            connect_timeout=self.connect_timeout,
            allow_reconnect=False,
            max_reconnect_attempts=1,  # 0 would mean "forever" to the first connect
            reconnect_time_wait=0.1,
            error_cb=quiet,
        )


class NatsSource:
    """A JetStream durable pull consumer (see the module's docstring)."""

    kind = "nats"

    def __init__(
        self,
        settings: NatsSettings,
        *,
        stream: str,
        subject: str,
        durable: str,
        batch: int,
        max_in_flight: int,
        ack_wait: float,
        key: KeyPolicy,
    ) -> None:
        self.settings = settings
        self.stream = stream
        self.subject = subject
        self.durable = durable
        self.batch = batch
        self.max_in_flight = max_in_flight
        self.ack_wait = ack_wait
        self.key = key
        self._nc: Client | None = None
        self._sub: JetStreamContext.PullSubscription | None = None
        self._epoch = "0"
        self._lag: int | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "servers": [_without_credentials(s) for s in self.settings.servers],
            "stream": self.stream,
            "subject": self.subject,
            "durable": self.durable,
            "batch": self.batch,
            "max_in_flight": self.max_in_flight,
            "ack_wait": self.ack_wait,
        }

    async def connect(self) -> None:
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
        from nats.js.errors import BadRequestError, NotFoundError

        nc = self._nc = await self.settings.connect(f"interlock:{self.durable}")
        js = nc.jetstream()
        try:
            info = await js.stream_info(self.stream)
        except NotFoundError:
            raise ConfigurationError(
                f"JetStream has no stream {self.stream!r}: create it first, e.g. "
                f"`nats stream add {self.stream} --subjects '{self.subject}'`"
            ) from None
        self._epoch = str(int(info.created.timestamp())) if info.created else "0"
        config = ConsumerConfig(
            durable_name=self.durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=self.ack_wait,
            max_ack_pending=self.max_in_flight,
            max_deliver=-1,
            filter_subject=self.subject,
        )
        try:
            await js.add_consumer(self.stream, config)
        except BadRequestError as exc:  # exists with settings the server will not change
            log.warning(
                "stream.consumer_kept", durable=self.durable, stream=self.stream, error=str(exc)
            )
        self._sub = await js.pull_subscribe_bind(durable=self.durable, stream=self.stream)

    async def fetch(self, timeout: float) -> list[Message]:
        if self._sub is None or self._nc is None or self._nc.is_closed:
            raise ConnectionError("the NATS connection is closed")
        try:
            msgs = await self._sub.fetch(self.batch, timeout=timeout)
        except TimeoutError:  # asyncio's, or nats-py's subclass of it: no messages in time
            if self._nc.is_closed:
                raise ConnectionError("the NATS connection was lost") from None
            self._lag = 0
            return []
        out = [self._message(m) for m in msgs]
        self._lag = msgs[-1].metadata.num_pending if msgs else 0
        return out

    def _message(self, msg: Msg) -> Message:
        meta = msg.metadata
        seq = meta.sequence.stream
        headers = dict(msg.headers or {})
        msg_id = headers.get("Nats-Msg-Id")
        if self.key == "msg-id" and not msg_id:
            key = f"{self.stream}:{self._epoch}:{seq}"
            log.warning("stream.no_msg_id", stream=self.stream, seq=seq)
        elif self.key != "sequence" and msg_id:
            key = f"msg:{msg_id}"
        else:
            key = f"{self.stream}:{self._epoch}:{seq}"
        return Message(
            topic=msg.subject,
            body=msg.data,
            key=key,
            position=f"{self.stream}:{seq}",
            deliveries=meta.num_delivered,
            published_at=meta.timestamp.timestamp(),
            headers=headers,
            handle=msg,
        )

    async def ack(self, messages: Sequence[Message]) -> None:
        for m in messages:
            await m.handle.ack()

    async def nak(self, messages: Sequence[Message], delay: float) -> None:
        for m in messages:
            await m.handle.nak(delay=delay)

    async def reject(self, messages: Sequence[Message]) -> None:
        for m in messages:
            await m.handle.term()

    def lag(self) -> int | None:
        return self._lag

    async def close(self) -> None:
        nc, self._nc, self._sub = self._nc, None, None
        if nc is None or nc.is_closed:
            return
        try:
            await nc.flush(timeout=2)  # the acks just sent reach the server
        finally:
            await nc.close()


class NatsSink:
    """Publishes to JetStream with ``Nats-Msg-Id`` set; one connection per event loop.

    Use it from a flow step so that a retried delivery re-publishes the same id::

        await ctx.step("publish", sink.publish, "orders.shipped", body,
                       msg_id=ctx.step_key("publish"))
    """

    def __init__(self, settings: NatsSettings, *, timeout: float = 5.0) -> None:
        self.settings = settings
        self.timeout = timeout
        self._nc: Client | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock: asyncio.Lock | None = None

    async def _jetstream(self) -> JetStreamContext:
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._lock is None:
            self._loop, self._lock, self._nc = loop, asyncio.Lock(), None
        async with self._lock:
            if self._nc is None or self._nc.is_closed:
                self._nc = await self.settings.connect("interlock:sink")
            return self._nc.jetstream()

    async def publish(
        self,
        topic: str,
        body: bytes,
        *,
        msg_id: str,
        headers: Mapping[str, str] | None = None,
    ) -> Published:
        """Publish ``body`` to subject ``topic``; JetStream's acknowledgement says where it
        went, and ``duplicate`` when an earlier publish of ``msg_id`` is already there."""
        if not msg_id:
            raise ConfigurationError("publish needs a msg_id (e.g. ctx.step_key(name))")
        js = await self._jetstream()
        ack = await js.publish(
            topic, body, timeout=self.timeout, headers={**(headers or {}), "Nats-Msg-Id": msg_id}
        )
        return {"stream": ack.stream, "seq": ack.seq, "duplicate": bool(ack.duplicate)}

    async def close(self) -> None:
        nc, self._nc = self._nc, None
        if nc is not None and not nc.is_closed and self._loop is asyncio.get_running_loop():
            await nc.flush(timeout=2)
            await nc.close()


def source(
    *,
    url: str | Sequence[str] = "nats://127.0.0.1:4222",
    stream: str,
    subject: str,
    durable: str,
    batch: int = 100,
    max_in_flight: int = 1000,
    ack_wait: float = 30.0,
    key: KeyPolicy = "auto",
    token_secret: str | None = None,
    connect_timeout: float = 2.0,
) -> NatsSource:
    """A JetStream source for ``app.stream(name, ...)``.

    ``subject`` filters the stream's subjects (wildcards allowed); ``batch`` is how many
    messages one fetch asks for and ``max_in_flight`` how many may be unacknowledged at
    once across all processes; ``ack_wait`` is how long JetStream waits for an ack before
    redelivering. ``key`` picks the idempotency key: ``auto`` (``Nats-Msg-Id`` when set,
    else the stream sequence), ``msg-id`` or ``sequence``. ``token_secret`` names a secret
    holding the server's auth token.
    """
    if batch < 1 or max_in_flight < batch:
        raise ConfigurationError(
            f"nats source {durable!r}: need batch >= 1 and max_in_flight >= batch "
            f"(got {batch} and {max_in_flight})"
        )
    if ack_wait <= 0:
        raise ConfigurationError(f"nats source {durable!r}: ack_wait must be positive")
    if key not in ("auto", "msg-id", "sequence"):
        raise ConfigurationError(f"nats source {durable!r}: key must be auto, msg-id or sequence")
    for name, value in (("stream", stream), ("durable", durable)):
        if not value or any(c in value for c in " .*>"):
            raise ConfigurationError(
                f"nats source: {name} {value!r} must be a name without spaces, '.', '*' or '>'"
            )
    return NatsSource(
        _settings(url, token_secret, connect_timeout),
        stream=stream,
        subject=subject,
        durable=durable,
        batch=batch,
        max_in_flight=max_in_flight,
        ack_wait=ack_wait,
        key=key,
    )


def sink(
    *,
    url: str | Sequence[str] = "nats://127.0.0.1:4222",
    token_secret: str | None = None,
    timeout: float = 5.0,
    connect_timeout: float = 2.0,
) -> NatsSink:
    """A JetStream publisher; ``timeout`` bounds the wait for JetStream's acknowledgement."""
    return NatsSink(_settings(url, token_secret, connect_timeout), timeout=timeout)


def _settings(url: str | Sequence[str], token: str | None, connect_timeout: float) -> NatsSettings:
    servers = (url,) if isinstance(url, str) else tuple(url)
    if not servers:
        raise ConfigurationError("nats: give at least one server URL")
    return NatsSettings(servers, token, connect_timeout)


def _without_credentials(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    return f"{scheme}{sep}{rest.rpartition('@')[2]}" if sep else url.rpartition("@")[2]
