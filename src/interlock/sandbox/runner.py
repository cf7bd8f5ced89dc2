"""Serving simulators on loopback: one uvicorn server and one port per vendor.

:func:`run` serves them from a background thread (for sync and async tests
alike) and :func:`serve` from the running event loop; both stop them cleanly on
exit. Each simulator gets its own port, so its URL simply replaces the vendor's
base URL. With ``port_base`` the ports are fixed (``port_base`` + the vendor's
place in :data:`PORT_OFFSETS`), which is what ``interlock sandbox faults`` uses
to find a running simulator.

The connection protocol is uvicorn's h11 one, plus an abort callable in each
request's ``scope["extensions"]`` that resets the TCP connection (``SO_LINGER``
0, then close), so a client sees a reset and no response.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from interlock.connectors.egress import allow_egress, disallow_egress
from interlock.errors import ConfigurationError
from interlock.sandbox.generic import GenericSimulator
from interlock.sandbox.hubspot import HubSpotSimulator
from interlock.sandbox.layer import ABORT
from interlock.sandbox.shopify import ShopifySimulator
from interlock.sandbox.simulator import Simulator
from interlock.sandbox.slack import SlackSimulator
from interlock.sandbox.stripe import StripeSimulator
from interlock.sandbox.vendors import Vendors
from interlock.sandbox.zendesk import ZendeskSimulator

SIMULATORS: dict[str, type[Simulator]] = {
    "stripe": StripeSimulator,
    "shopify": ShopifySimulator,
    "hubspot": HubSpotSimulator,
    "zendesk": ZendeskSimulator,
    "slack": SlackSimulator,
    "generic": GenericSimulator,
}
PORT_OFFSETS = {name: i for i, name in enumerate(SIMULATORS)}
ALL = tuple(SIMULATORS)


class SandboxProtocol(H11Protocol):
    """uvicorn's h11 protocol whose requests can reset their connection (see the module)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        app = self.app
        sock = transport.get_extra_info("socket")
        if sock is not None:  # answers go out in two writes: do not wait for delayed ACKs
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def abort() -> None:
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()  # type: ignore[attr-defined]

        async def with_abort(scope: Any, receive: Any, send: Any) -> None:
            scope["extensions"] = {**(scope.get("extensions") or {}), ABORT: abort}
            await app(scope, receive, send)

        self.app = with_abort


class _Server(uvicorn.Server):
    """uvicorn without signal handling: the owner of the loop decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def build(vendors: Iterable[str | Simulator], seed: int = 0) -> list[Simulator]:
    """Simulators for names (or already built ones), in the order given."""
    sims: list[Simulator] = []
    for vendor in vendors:
        if isinstance(vendor, Simulator):
            sims.append(vendor)
            continue
        cls = SIMULATORS.get(vendor)
        if cls is None:
            known = ", ".join(SIMULATORS)
            raise ConfigurationError(f"no sandbox simulator named {vendor!r}; known: {known}")
        sims.append(cls(seed=seed))
    names = [s.name for s in sims]
    if len(set(names)) != len(names):
        raise ConfigurationError(f"each vendor can be served once, got {names}")
    return sims


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigurationError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}); is another process using it?"
        ) from None
    return sock


@contextlib.asynccontextmanager
async def _serving(sims: list[Simulator], host: str, port_base: int | None) -> AsyncIterator[None]:
    sockets: list[socket.socket] = []
    try:
        for sim in sims:
            port = 0 if port_base is None else port_base + PORT_OFFSETS.get(sim.name, 0)
            sock = _bind(host, port)
            sockets.append(sock)
            sim.url = f"http://{host}:{sock.getsockname()[1]}"
        servers = [
            _Server(
                uvicorn.Config(
                    sim.app,
                    http=SandboxProtocol,
                    lifespan="off",
                    log_config=None,
                    log_level="warning",
                    access_log=False,
                    proxy_headers=False,
                    server_header=False,
                    timeout_keep_alive=5,
                    timeout_graceful_shutdown=1,
                )
            )
            for sim in sims
        ]
        tasks = [
            asyncio.create_task(s.serve(sockets=[k])) for s, k in zip(servers, sockets, strict=True)
        ]
        try:
            while not all(s.started for s in servers):
                failed = [t for t in tasks if t.done()]
                if failed:
                    failed[0].result()
                    raise ConfigurationError("a sandbox simulator stopped while starting")
                await asyncio.sleep(0.005)
            # Connectors refuse loopback by default; the sandbox allows its own ports only.
            allow_egress(*(sim.url for sim in sims))
            yield
        finally:
            disallow_egress(*(sim.url for sim in sims))
            for server in servers:
                server.should_exit = True
            await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        for sock in sockets:
            sock.close()


@contextlib.asynccontextmanager
async def serve(
    vendors: Iterable[str | Simulator] = ALL,
    *,
    seed: int = 0,
    host: str = "127.0.0.1",
    port_base: int | None = None,
) -> AsyncIterator[Vendors]:
    """Serve simulators in the running event loop::

    async with interlock.sandbox.serve(("stripe",)) as vendors:
        await client.get(vendors.stripe.url + "/v1/customers")
    """
    sims = build(vendors, seed)
    async with _serving(sims, host, port_base):
        yield Vendors(sims)


@contextlib.contextmanager
def run(
    vendors: Iterable[str | Simulator] = ALL,
    *,
    seed: int = 0,
    host: str = "127.0.0.1",
    port_base: int | None = None,
) -> Iterator[Vendors]:
    """Serve simulators from a background thread until the block ends::

    with interlock.sandbox.run(("stripe", "slack"), seed=7) as vendors:
        vendors.stripe.faults.rate_limit(2)
        ...
    """
    sims = build(vendors, seed)
    thread = _Thread(sims, host, port_base)
    thread.start()
    try:
        yield Vendors(sims)
    finally:
        thread.stop()


class _Thread:
    """An event loop in a daemon thread that serves until :meth:`stop`."""

    def __init__(self, sims: list[Simulator], host: str, port_base: int | None) -> None:
        self._serving: Callable[[], Any] = lambda: _serving(sims, host, port_base)
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, name="interlock-sandbox", daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            self._thread.join()
            raise self._error

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join()

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:
            self._error = exc
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with self._serving():
            self._ready.set()
            await self._stop.wait()
