"""Serving the gateway with uvicorn, alone or beside a worker in one process.

The connection protocol is uvicorn's httptools one (a compiled HTTP/1.1 parser)
with the gateway's two additions, a header timeout against clients trickling
their headers and a 431 problem for an oversized incomplete head
(:class:`~interlock.gateway.httptools_protocol.GatewayProtocol`, see
:mod:`interlock.gateway.protocols`). Without httptools, the same additions ride
on uvicorn's pure-Python h11 protocol
(:class:`~interlock.gateway.protocols.H11GatewayProtocol`).

:func:`serve` runs on whatever event loop it is awaited in; the CLI runs
``interlock run``, ``gateway`` and ``worker`` on uvloop's when it can be
imported, else on asyncio's (:func:`loop_factory` says which).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections.abc import Callable, Generator
from typing import Literal

import structlog
import uvicorn

from interlock.app import Interlock
from interlock.drift import flush_drift
from interlock.errors import ConfigurationError
from interlock.gateway.app import build_gateway
from interlock.gateway.direct import DirectHooks
from interlock.gateway.middleware import HttpLimits
from interlock.gateway.protocols import MAX_HEAD_BYTES, GatewayConfig, H11GatewayProtocol
from interlock.observability import process_metrics, run_alerts
from interlock.worker import WorkerConfig

try:
    from interlock.gateway.httptools_protocol import GatewayProtocol
except ImportError:  # pragma: no cover - httptools is a dependency; h11 serves without it
    HTTPTOOLS = False
else:
    HTTPTOOLS = True

__all__ = [
    "HTTPTOOLS",
    "MAX_HEAD_BYTES",
    "Parser",
    "bind",
    "http_protocol",
    "loop_factory",
    "serve",
    "server_for",
]

log = structlog.get_logger("interlock.gateway")

Parser = Literal["auto", "httptools", "h11"]


def http_protocol(parser: Parser = "auto") -> type[asyncio.Protocol]:
    """The gateway's connection protocol: on httptools when installed (``auto``), else h11."""
    if parser == "h11" or (parser == "auto" and not HTTPTOOLS):
        return H11GatewayProtocol
    if not HTTPTOOLS:
        raise ConfigurationError("the httptools parser is not installed (pip install httptools)")
    return GatewayProtocol


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop factory when uvloop can be imported, else None (asyncio's)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - a dependency where it builds (not on Windows)
        return None
    return uvloop.new_event_loop


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the caller's handlers stop everything."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def server_for(
    app: Interlock,
    host: str,
    port: int,
    *,
    limits: HttpLimits | None = None,
    parser: Parser = "auto",
) -> uvicorn.Server:
    """A uvicorn server for ``app``'s gateway (``serve(sockets=[bind(...)])`` to run it);
    ``parser`` picks the HTTP parser (:func:`http_protocol`)."""
    limits = limits or HttpLimits()
    gateway = build_gateway(app, http=limits)
    metrics = process_metrics(app)
    config = GatewayConfig(
        gateway,
        header_timeout=limits.header_timeout,
        metrics=metrics,
        direct=DirectHooks(gateway, limits, metrics),
        http=http_protocol(parser),
        # Used when uvicorn makes the loop (Server.run); serve() runs on its caller's.
        loop="uvloop" if loop_factory() is not None else "asyncio",
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        timeout_keep_alive=5,
        # h11's bound on buffering an incomplete head (431, see protocols.py).
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
    else:  # the worker runs the alert evaluator; a gateway alone runs its own
        alerts = run_alerts(app, stop)
        if alerts is not None:
            tasks.append(alerts)
    stopper = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
        shutdown()
        await asyncio.gather(*tasks)
        await flush_drift(app)  # the drift counts of the last second
    finally:
        stopper.cancel()
        sock.close()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
