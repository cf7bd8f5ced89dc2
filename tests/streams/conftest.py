"""Fixtures for the stream tests: the NATS server this machine runs, one JetStream stream
per test.

The server is ``INTERLOCK_TEST_NATS_URL`` (default ``nats://127.0.0.1:4222``, JetStream
on). When it is unreachable the tests skip with the reason, and fail instead when
``INTERLOCK_REQUIRE_SERVICES=1`` (CI). Every test gets its own stream (``IL_T_<hex>``)
over its own subjects (``t<hex>.>``), deleted at the end: tests running at the same time
never see each other's messages.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest

nats = pytest.importorskip("nats", reason="nats-py is not installed (pip install -e '.[dev]')")

from nats.aio.client import Client  # noqa: E402
from nats.js.api import ConsumerInfo, StreamConfig  # noqa: E402
from nats.js.client import JetStreamContext  # noqa: E402

NATS_URL = os.environ.get("INTERLOCK_TEST_NATS_URL", "nats://127.0.0.1:4222")


def unavailable(reason: str) -> None:
    if os.environ.get("INTERLOCK_REQUIRE_SERVICES") == "1":
        pytest.fail(f"NATS is required (INTERLOCK_REQUIRE_SERVICES=1): {reason}")
    pytest.skip(f"NATS JetStream unavailable: {reason}")


@pytest.fixture(scope="session")
def nats_url() -> str:
    parts = urlsplit(NATS_URL)
    try:
        socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 4222), 2).close()
    except OSError as exc:
        unavailable(f"cannot connect to {NATS_URL}: {exc}")
    return NATS_URL


@dataclass
class Broker:
    """One test's JetStream stream, and a client to publish to it and inspect it."""

    url: str
    stream: str
    prefix: str
    nc: Client
    js: JetStreamContext

    @property
    def subjects(self) -> str:
        return f"{self.prefix}.>"

    def subject(self, suffix: str) -> str:
        return f"{self.prefix}.{suffix}"

    async def publish(self, suffix: str, body: bytes, msg_id: str | None = None) -> int:
        headers = {"Nats-Msg-Id": msg_id} if msg_id else None
        ack = await self.js.publish(self.subject(suffix), body, headers=headers)
        return ack.seq

    async def consumer(self, durable: str) -> ConsumerInfo:
        return await self.js.consumer_info(self.stream, durable)

    async def settled(self, durable: str, timeout: float = 10.0) -> ConsumerInfo:
        """The consumer's info once no message is waiting for an ack (or at ``timeout``):
        JetStream applies acks asynchronously, a moment after they reached the server."""
        deadline = time.monotonic() + timeout
        info = await self.consumer(durable)
        while info.num_ack_pending and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            info = await self.consumer(durable)
        return info

    async def messages(self) -> int:
        info = await self.js.stream_info(self.stream)
        return int(info.state.messages)

    async def get(self, seq: int) -> Any:
        return await self.js.get_msg(self.stream, seq)


@pytest.fixture
async def broker(nats_url: str) -> AsyncIterator[Broker]:
    tag = secrets.token_hex(5)
    try:
        nc = await nats.connect(nats_url, connect_timeout=2, allow_reconnect=False)
    except Exception as exc:
        unavailable(f"cannot connect to {nats_url}: {exc!r}")
    js = nc.jetstream()
    stream = f"IL_T_{tag}"
    try:
        await js.add_stream(StreamConfig(name=stream, subjects=[f"t{tag}.>"]))
    except Exception as exc:
        await nc.close()
        unavailable(f"cannot create a JetStream stream on {nats_url} (is -js on?): {exc!r}")
    try:
        yield Broker(nats_url, stream, f"t{tag}", nc, js)
    finally:
        try:
            await js.delete_stream(stream)
        finally:
            await nc.close()
