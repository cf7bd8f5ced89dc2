"""The gateway's connection protocol: uvicorn's httptools one plus the head guard.

httptools (llhttp, compiled) parses HTTP/1.1 several times faster than h11; the
additions of :class:`~interlock.gateway.protocols.HeadGuard` (the header timeout
and the 431 for an oversized incomplete head) behave as on h11. Importing this
module needs httptools; :mod:`interlock.gateway.server` falls back to
:class:`~interlock.gateway.protocols.H11GatewayProtocol` without it.

llhttp does not bound a head's size, so the bytes of a head still incomplete
are counted here, per chunk read: a chunk that holds the end of one request and
the start of the next is not counted (so nothing is refused that h11 would
accept), which lets at most one such chunk beyond :data:`MAX_HEAD_BYTES` be
buffered before the 431.
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from uvicorn._types import ASGI3Application
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.server import ServerState

from interlock.gateway.protocols import MAX_HEAD_BYTES, GatewayConfig, HeadGuard

__all__ = ["GatewayProtocol"]


class GatewayProtocol(HeadGuard, HttpToolsProtocol):
    """uvicorn's httptools protocol with a header timeout and a 431 for oversized heads."""

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._guard(config)
        self._direct = config.direct if isinstance(config, GatewayConfig) else None
        self._awaiting_head = True  # between requests, or inside an incomplete head
        self._head_bytes = 0  # bytes read while the current head is incomplete
        self._ended = 0  # requests whose message the parser completed
        self._oversized = False  # a pipelined head outgrew the limit: 431 after the answer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        ended = self._ended
        super().data_received(data)
        if not self._awaiting_head or self.transport.is_closing():
            return
        self._saw_bytes()
        if self._ended != ended:  # this chunk also ended a request: not all of it is head
            return
        self._head_bytes += len(data)
        if self._head_bytes <= MAX_HEAD_BYTES:
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # Pipelined behind a request still being answered: refused once that is out.
            self._oversized = True
            self.flow.pause_reading()
        else:
            self._refuse_head()

    # Parser callbacks (httptools calls them from data_received).
    def on_headers_complete(self) -> None:
        self._disarm()
        self._awaiting_head = False
        self._head_bytes = 0
        super().on_headers_complete()

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        # A plain webhook POST skips the ASGI exchange (see interlock.gateway.direct).
        direct = self._direct
        if direct is not None and app is self.app:
            target = direct.target(cycle)
            if target is not None:
                task = self.loop.create_task(direct.run(cycle, *target))
                task.add_done_callback(self.tasks.discard)
                self.tasks.add(task)
                return
        super()._start_asgi_task(cycle, app)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._awaiting_head = True
        self._ended += 1

    def on_response_complete(self) -> None:
        queued = len(self.pipeline)
        super().on_response_complete()  # may start a pipelined request, its head complete
        if self.transport.is_closing():
            self._disarm()
        elif self._oversized:
            self._refuse_head()
        elif len(self.pipeline) == queued:
            self._arm()

    def handle_websocket_upgrade(self) -> None:
        self._disarm()
        super().handle_websocket_upgrade()
