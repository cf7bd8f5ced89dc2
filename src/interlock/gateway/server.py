"""Serving the gateway with uvicorn, alone or beside a worker in one process.

The connection protocol is uvicorn's h11 one with two additions
(:class:`GatewayProtocol`): a **header timeout** — a connection that has not
sent a complete request head within ``HttpLimits.header_timeout`` seconds of
connecting, or of its previous response, is closed (a client trickling header
bytes, "slowloris", no longer holds a connection forever) — and a **431**
problem instead of uvicorn's plain-text 400 when h11 refuses a head (it does
when more than 64 KiB of a still incomplete head are buffered; a larger head
that arrives complete reaches the middleware, which answers 431 itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import signal
import socket
import sys
from collections.abc import Generator
from typing import Any

import h11
import structlog
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from interlock.app import Interlock
from interlock.errors import ConfigurationError
from interlock.gateway.app import build_gateway
from interlock.gateway.middleware import HttpLimits
from interlock.gateway.problems import MEDIA_TYPE, Problem, headers_too_large
from interlock.observability import ProcessMetrics, process_metrics
from interlock.worker import WorkerConfig

log = structlog.get_logger("interlock.gateway")

MAX_HEAD_BYTES = 64 * 1024  # h11 refuses an incomplete head with more than this buffered


class _Config(uvicorn.Config):
    """uvicorn's config plus what :class:`GatewayProtocol` needs."""

    def __init__(
        self, app: Any, *, header_timeout: float, metrics: ProcessMetrics, **options: Any
    ) -> None:
        super().__init__(app, **options)
        self.header_timeout = header_timeout
        self.metrics = metrics


class GatewayProtocol(H11Protocol):
    """uvicorn's h11 protocol with a header timeout and a 431 for oversized heads."""

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        if isinstance(config, _Config):
            self.header_timeout: float = config.header_timeout
            self.metrics: ProcessMetrics | None = config.metrics
        else:
            self.header_timeout = HttpLimits().header_timeout
            self.metrics = None
        self._head_timer: asyncio.TimerHandle | None = None
        self._partial = False  # bytes arrived since the timer was armed

    # The timer runs while the connection waits for a request head: armed on
    # connecting and after each response, disarmed as soon as a request's head is
    # parsed (uvicorn then starts a new cycle) or the connection goes away.
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        cycle = self.cycle
        super().data_received(data)
        if self.cycle is not cycle:
            self._disarm()
        elif self._head_timer is not None:
            self._partial = True

    def on_response_complete(self) -> None:
        self._arm()
        cycle = self.cycle
        super().on_response_complete()  # may parse a pipelined request: a new cycle
        if self.cycle is not cycle or self.transport.is_closing():
            self._disarm()

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        self._disarm()
        super().handle_websocket_upgrade(event)

    def _arm(self) -> None:
        self._disarm()
        self._partial = False
        self._head_timer = self.loop.call_later(self.header_timeout, self._head_timeout)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timeout(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self._partial:  # an idle connection is simply closed, like a keep-alive one
            self._refused("header_timeout")
        self.transport.close()

    def send_400_response(self, msg: str) -> None:
        # uvicorn calls this from its `except h11.RemoteProtocolError`, so the error is
        # at hand; h11 hints 431 when the head outgrew its buffer (MAX_HEAD_BYTES).
        error = sys.exception()
        if isinstance(error, h11.RemoteProtocolError) and error.error_status_hint == 431:
            self._refused("headers_too_large")
            self._send_problem(headers_too_large())
            return
        super().send_400_response(msg)

    def _send_problem(self, problem: Problem) -> None:
        body = problem.to_json()
        headers = [
            (b"content-type", MEDIA_TYPE.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        reason = http.HTTPStatus(problem.status).phrase.encode()
        with contextlib.suppress(h11.LocalProtocolError):
            for event in (
                h11.Response(status_code=problem.status, headers=headers, reason=reason),
                h11.Data(data=body),
                h11.EndOfMessage(),
            ):
                output = self.conn.send(event)
                if output:
                    self.transport.write(output)
        self.transport.close()

    def _refused(self, reason: str) -> None:
        if self.metrics is not None:
            self.metrics.refused(reason)
        log.warning("http.refused", reason=reason)


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the caller's handlers stop everything."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def server_for(
    app: Interlock, host: str, port: int, *, limits: HttpLimits | None = None
) -> uvicorn.Server:
    """A uvicorn server for ``app``'s gateway (``serve(sockets=[bind(...)])`` to run it)."""
    limits = limits or HttpLimits()
    config = _Config(
        build_gateway(app, http=limits),
        header_timeout=limits.header_timeout,
        metrics=process_metrics(app),
        http=GatewayProtocol,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        timeout_keep_alive=5,
        # The parser's bound on buffering an incomplete head (431, see GatewayProtocol).
        h11_max_incomplete_event_size=MAX_HEAD_BYTES,
        limit_concurrency=2048,
    )
    return _Server(config)


def bind(host: str, port: int) -> socket.socket:
    """A bound socket, or one clear error when the address is taken or invalid.

    Bound here rather than by uvicorn, which would ``sys.exit()`` on a busy port.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
        except OSError:
            sock.close()
            raise
    except OSError as exc:
        raise ConfigurationError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}); is another process using it?"
        ) from None
    return sock


async def serve(
    app: Interlock,
    *,
    host: str,
    port: int,
    worker: WorkerConfig | None,
    stop: asyncio.Event | None = None,
    limits: HttpLimits | None = None,
) -> None:
    """Serve the gateway (and, with ``worker``, a worker) until SIGINT/SIGTERM or ``stop``."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    sock = bind(host, port)
    server = server_for(app, host, port, limits=limits)

    def shutdown() -> None:
        stop.set()
        server.should_exit = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, shutdown)
    tasks = [asyncio.create_task(server.serve(sockets=[sock]))]
    if worker is not None:
        tasks.append(asyncio.create_task(app.worker(worker).run(stop)))
    stopper = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
        shutdown()
        await asyncio.gather(*tasks)
    finally:
        stopper.cancel()
        sock.close()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
