"""A NATS server restart: the runner notices, reconnects with backoff to the same durable
consumer and goes on, with nothing lost or doubled.

The test runs its own ``nats-server`` (JetStream on, its own storage directory, a free
port) so that it can kill and restart it without disturbing anything else.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import orjson
import pytest

from interlock.streams import StreamRunner, stream_metrics

from .conftest import nats, unavailable
from .stream_app import build_app


class Server:
    """One nats-server process on a fixed port and storage directory, restartable."""

    def __init__(self, binary: str, tmp_path: Path) -> None:
        self.binary = binary
        self.store = tmp_path / "jetstream"
        self.log = tmp_path / "nats-server.log"
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    self.binary,
                    "-a",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                    "-js",
                    "-sd",
                    str(self.store),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("nats-server did not start:\n" + self.log.read_text())

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    binary = shutil.which("nats-server")
    if binary is None:
        unavailable("no nats-server binary on PATH to restart")
    srv = Server(binary, tmp_path)
    srv.start()
    yield srv
    srv.kill()


async def eventually(predicate: Callable[[], object], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture
async def publish(server: Server) -> Callable[[int], Awaitable[None]]:
    nc = await nats.connect(server.url)
    js = nc.jetstream()
    await js.add_stream(name="ORDERS", subjects=["shop.>"])
    await nc.close()

    async def send(i: int) -> None:
        client = await nats.connect(server.url)
        try:
            await client.jetstream().publish(
                "shop.order.created", orjson.dumps({"id": i, "amount": i})
            )
        finally:
            await client.close()

    return send


async def test_the_runner_reconnects_after_a_server_restart(
    tmp_path: Path, server: Server, publish: Callable[[int], Awaitable[None]]
) -> None:
    app = build_app(
        f"sqlite:///{tmp_path / 'reconnect.db'}",
        nats_url=server.url,
        stream="ORDERS",
        prefix="shop",
    )
    counters = stream_metrics(app).of("orders")

    def stored() -> int:
        return len(app.store.list_events(type="shop.order_created", limit=100))

    stop = asyncio.Event()
    runner = asyncio.create_task(StreamRunner(app, app.streams["orders"]).run(stop))
    try:
        for i in range(5):
            await publish(i)
        await eventually(lambda: stored() == 5, "the first 5 events")

        server.kill()
        await eventually(lambda: not counters.connected, "the runner to notice the outage")
        await asyncio.sleep(0.5)  # a few failed reconnects
        server.start()
        await eventually(lambda: counters.connected, "the runner to reconnect")
        assert counters.reconnects >= 1

        for i in range(5, 10):
            await publish(i)
        await eventually(lambda: stored() == 10, "the next 5 events")
    finally:
        stop.set()
        await runner
    ids = sorted(int(e.data["order_id"]) for e in app.store.list_events(type="shop.order_created"))
    assert ids == list(range(10))
    app.close()
