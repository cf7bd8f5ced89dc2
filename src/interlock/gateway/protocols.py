"""What the gateway adds to uvicorn's HTTP/1.1 connection protocols.

Two additions, the same whichever parser serves (:mod:`interlock.gateway.server`
picks httptools, see :mod:`interlock.gateway.httptools_protocol`, and falls back
to the pure-Python h11 protocol here when httptools cannot be imported):

* a **header timeout**: a connection that has not sent a complete request head
  within ``header_timeout`` seconds of connecting, or of its previous response,
  is closed (a client trickling header bytes, "slowloris", no longer holds a
  connection forever). One that sent bytes is refused (``http.refused``,
  ``header_timeout``); an idle one is closed quietly, like a keep-alive one.
* a **431** ``headers-too-large`` problem, connection closed, when more than
  :data:`MAX_HEAD_BYTES` of a still incomplete request head are buffered (stock
  uvicorn answers a plain-text 400 on h11, and buffers without bound on
  httptools). A larger head that arrives complete reaches the gateway's
  middleware, which answers 431 itself.
"""

from __future__ import annotations

import asyncio
import http
import sys
from typing import Any

import h11
import structlog
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from interlock.gateway.direct import DirectHooks
from interlock.gateway.middleware import HttpLimits
from interlock.gateway.problems import MEDIA_TYPE, Problem, headers_too_large
from interlock.observability import ProcessMetrics

__all__ = ["MAX_HEAD_BYTES", "GatewayConfig", "H11GatewayProtocol", "HeadGuard", "problem_bytes"]

log = structlog.get_logger("interlock.gateway")

MAX_HEAD_BYTES = 64 * 1024  # an incomplete request head with more than this buffered: 431


class GatewayConfig(uvicorn.Config):
    """uvicorn's config plus what the gateway's protocols need."""

    def __init__(
        self,
        app: Any,
        *,
        header_timeout: float,
        metrics: ProcessMetrics,
        direct: DirectHooks | None = None,
        **options: Any,
    ) -> None:
        super().__init__(app, **options)
        self.header_timeout = header_timeout
        self.metrics = metrics
        self.direct = direct  # webhooks served by the protocol itself (httptools only)


def problem_bytes(problem: Problem) -> bytes:
    """A complete HTTP/1.1 response carrying ``problem``, announcing ``connection: close``."""
    body = problem.to_json()
    reason = http.HTTPStatus(problem.status).phrase
    head = (
        f"HTTP/1.1 {problem.status} {reason}\r\n"
        f"content-type: {MEDIA_TYPE}\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class HeadGuard:
    """The header timer and the head refusals, mixed into a uvicorn protocol.

    The timer runs while the connection waits for a request head: armed on
    connecting and after each response, disarmed as soon as a request's head is
    parsed or the connection goes away. The protocol calls :meth:`_arm`,
    :meth:`_disarm` and :meth:`_saw_bytes` at those points.
    """

    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport

    def _guard(self, config: uvicorn.Config) -> None:
        """Set up from ``config`` (a :class:`GatewayConfig`, else the default limits)."""
        if isinstance(config, GatewayConfig):
            self.header_timeout: float = config.header_timeout
            self.metrics: ProcessMetrics | None = config.metrics
        else:
            self.header_timeout = HttpLimits().header_timeout
            self.metrics = None
        self._head_timer: asyncio.TimerHandle | None = None
        self._partial = False  # bytes arrived since the timer was armed

    def _arm(self) -> None:
        self._disarm()
        self._partial = False
        self._head_timer = self.loop.call_later(self.header_timeout, self._head_timeout)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _saw_bytes(self) -> None:
        """Bytes arrived and no head is complete yet: the timeout is then a refusal."""
        if self._head_timer is not None:
            self._partial = True

    def _head_timeout(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self._partial:  # an idle connection is simply closed, like a keep-alive one
            self._refused("header_timeout")
        self.transport.close()

    def _refuse_head(self) -> None:
        """Answer 431 to a head that outgrew :data:`MAX_HEAD_BYTES`, and close."""
        self._disarm()
        self._refused("headers_too_large")
        self.transport.write(problem_bytes(headers_too_large()))
        self.transport.close()

    def _refused(self, reason: str) -> None:
        if self.metrics is not None:
            self.metrics.refused(reason)
        log.warning("http.refused", reason=reason)


class H11GatewayProtocol(HeadGuard, H11Protocol):
    """uvicorn's h11 protocol with the gateway's additions (used without httptools).

    h11 bounds an incomplete head itself (``h11_max_incomplete_event_size``, set to
    :data:`MAX_HEAD_BYTES` by the server) and hints 431 when it refuses one.
    """

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._guard(config)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        cycle = self.cycle
        super().data_received(data)
        if self.cycle is not cycle:  # a new request's head was parsed
            self._disarm()
        else:
            self._saw_bytes()

    def on_response_complete(self) -> None:
        self._arm()
        cycle = self.cycle
        super().on_response_complete()  # may parse a pipelined request: a new cycle
        if self.cycle is not cycle or self.transport.is_closing():
            self._disarm()

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        self._disarm()
        super().handle_websocket_upgrade(event)

    def send_400_response(self, msg: str) -> None:
        # uvicorn calls this from its `except h11.RemoteProtocolError`, so the error is
        # at hand; h11 hints 431 when the head outgrew its buffer (MAX_HEAD_BYTES).
        error = sys.exception()
        if isinstance(error, h11.RemoteProtocolError) and error.error_status_hint == 431:
            self._refuse_head()
            return
        super().send_400_response(msg)
