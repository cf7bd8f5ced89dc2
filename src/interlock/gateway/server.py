"""Serving the gateway with uvicorn, alone or beside a worker in one process."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections.abc import Generator

import uvicorn

from interlock.app import Interlock
from interlock.errors import ConfigurationError
from interlock.gateway.app import build_gateway
from interlock.worker import WorkerConfig


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the caller's handlers stop everything."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def server_for(app: Interlock, host: str, port: int) -> uvicorn.Server:
    """A uvicorn server for ``app``'s gateway (``serve(sockets=[bind(...)])`` to run it)."""
    config = uvicorn.Config(
        build_gateway(app),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        timeout_keep_alive=5,
        # Header blocks over 64 KiB are refused by the HTTP parser.
        h11_max_incomplete_event_size=64 * 1024,
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
) -> None:
    """Serve the gateway (and, with ``worker``, a worker) until SIGINT/SIGTERM or ``stop``."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    sock = bind(host, port)
    server = server_for(app, host, port)

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
