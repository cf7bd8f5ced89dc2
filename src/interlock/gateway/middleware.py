"""The gateway's HTTP guard: header limits, a body timeout, correlation ids.

    gateway.add_middleware(GatewayMiddleware, limits=HttpLimits(), metrics=metrics)

A pure ASGI middleware. For every HTTP request it

1. picks the request's **correlation id**: a valid ``X-Correlation-ID`` (1-128
   visible ASCII characters), else the trace id of a valid W3C ``traceparent``,
   else a new ``cor_…`` id. It is put in the scope's state
   (``request.state.correlation_id``), bound to structlog's context variables
   for the request's duration, and sent back as ``X-Correlation-ID`` on every
   response the app sends (a crash's 500 comes from Starlette's error handler,
   outside this middleware: it is logged with the id but does not carry it);
2. answers **431** (``headers-too-large`` problem) to a request with more than
   ``max_header_count`` header fields or more than ``max_header_bytes`` of them
   (names, values, ``": "`` and CRLF);
3. answers **408** (``request-timeout`` problem, connection closed) when the
   body has not fully arrived ``body_timeout`` seconds after the app first
   asked for it. The wrapped ``receive`` raises :class:`BodyTimeout`, so the
   app stops where it reads (the ingress stores nothing); whatever the app then
   answers — a 400 from a body parser that caught the error, say — is replaced
   by the 408.

The header *timeout* (a client trickling its headers) lives in the server's
protocol (:mod:`interlock.gateway.server`): no ASGI app runs before the headers
are complete.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Final

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from interlock.gateway.problems import Problem, headers_too_large, problem_type
from interlock.ids import new_correlation_id
from interlock.observability import ProcessMetrics

__all__ = [
    "CORRELATION_HEADER",
    "BodyTimeout",
    "GatewayMiddleware",
    "HttpLimits",
    "correlation_id",
    "request_timeout",
    "scan_headers",
    "trace_id_of",
    "valid_correlation_id",
]

log = structlog.get_logger("interlock.gateway")

CORRELATION_HEADER: Final = "x-correlation-id"
MAX_CORRELATION_ID: Final = 128
_CORRELATION = re.compile(rf"[\x21-\x7e]{{1,{MAX_CORRELATION_ID}}}")
# W3C Trace Context: version "-" trace-id "-" parent-id "-" flags, lowercase hex.
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_ZERO_TRACE: Final = "0" * 32
_ZERO_PARENT: Final = "0" * 16
_RESPONSE_HEADER: Final = CORRELATION_HEADER.encode()


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """HTTP-level limits of the gateway (seconds and bytes)."""

    max_header_count: int = 100  # header fields in one request
    max_header_bytes: int = 32 * 1024  # all header fields of one request together
    body_timeout: float = 10.0  # from the app's first read of the body to its last byte
    header_timeout: float = 10.0  # from connecting (or the previous response) to a full head

    def __post_init__(self) -> None:
        for name in ("max_header_count", "max_header_bytes", "body_timeout", "header_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"HttpLimits.{name} must be positive, not {getattr(self, name)}")


def valid_correlation_id(value: str | None) -> str | None:
    """``value`` if it is a usable correlation id (1-128 visible ASCII characters), else None.

    >>> valid_correlation_id("order-1042/retry"), valid_correlation_id("two words")
    ('order-1042/retry', None)
    """
    if value is None or _CORRELATION.fullmatch(value) is None:
        return None
    return value


def trace_id_of(traceparent: str | None) -> str | None:
    """The trace id of a valid W3C ``traceparent`` header value, else None.

    Version ``ff`` and all-zero ids are invalid; a version above ``00`` may carry
    more fields after the four that version 00 defines.

    >>> trace_id_of("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    '4bf92f3577b34da6a3ce929d0e0e4736'
    >>> trace_id_of("00-00000000000000000000000000000000-00f067aa0ba902b7-01") is None
    True
    """
    if traceparent is None:
        return None
    value = traceparent.strip(" \t")
    match = _TRACEPARENT.match(value)
    if match is None:
        return None
    version, trace_id, parent_id, _flags = match.groups()
    if version == "ff" or trace_id == _ZERO_TRACE or parent_id == _ZERO_PARENT:
        return None
    if len(value) != match.end() and (version == "00" or value[match.end()] != "-"):
        return None
    return trace_id


def correlation_id(given: str | None, traceparent: str | None) -> str:
    """A request's correlation id from its ``X-Correlation-ID`` and ``traceparent`` values.

    >>> correlation_id("bad id", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    '4bf92f3577b34da6a3ce929d0e0e4736'
    >>> correlation_id(None, None).startswith("cor_")
    True
    """
    if chosen := valid_correlation_id(given):
        return chosen
    if trace_id := trace_id_of(traceparent):
        return trace_id
    return new_correlation_id()


def scan_headers(headers: list[tuple[bytes, bytes]]) -> tuple[int, str]:
    """A request's header size (as :class:`HttpLimits` counts it) and its correlation id."""
    size = 4 * len(headers)  # ": " and CRLF
    given: bytes | None = None
    traceparent: bytes | None = None
    for name, value in headers:
        size += len(name) + len(value)
        if name == _RESPONSE_HEADER and given is None:
            given = value
        elif name == b"traceparent" and traceparent is None:
            traceparent = value
    cid = correlation_id(
        None if given is None else given.decode("latin-1"),
        None if traceparent is None else traceparent.decode("latin-1"),
    )
    return size, cid


def request_timeout(seconds: float) -> Problem:
    """408: the body did not arrive in time; the connection is closed."""
    detail = f"the request body did not arrive within {seconds:g} s"
    slug = problem_type("request-timeout")
    return Problem(408, "Request timeout", detail, type=slug)


class BodyTimeout(Exception):
    """Raised by the wrapped ``receive`` when the body is late (answered as 408)."""


class GatewayMiddleware:
    """Header limits, the body timeout and correlation ids for every HTTP request."""

    def __init__(
        self,
        app: ASGIApp,
        limits: HttpLimits | None = None,
        metrics: ProcessMetrics | None = None,
    ) -> None:
        self.app = app
        self.limits = limits or HttpLimits()
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        size, cid = scan_headers(headers)
        scope.setdefault("state", {})["correlation_id"] = cid
        tokens = structlog.contextvars.bind_contextvars(correlation_id=cid)
        exchange = _Exchange(receive, send, cid.encode(), self.limits.body_timeout)
        limits = self.limits
        if len(headers) > limits.max_header_count or size > limits.max_header_bytes:
            self._refused("headers_too_large", scope, fields=len(headers), size=size)
            await exchange.answer(headers_too_large())
        else:
            try:
                await self.app(scope, exchange.receive, exchange.send)
            except Exception:
                # After a body timeout, whatever escaped (BodyTimeout, or a group holding
                # it) is its consequence. Otherwise the binding stays for the server error
                # handler outside, which logs the crash (the request's task ends after it).
                if not exchange.timed_out:
                    raise
            if exchange.timed_out:
                self._refused("body_timeout", scope)
                if not exchange.started:
                    await exchange.answer(request_timeout(limits.body_timeout))
        structlog.contextvars.reset_contextvars(**tokens)

    def _refused(self, reason: str, scope: Scope, **details: int) -> None:
        if self.metrics is not None:
            self.metrics.refused(reason)
        log.warning(
            "http.refused", reason=reason, method=scope["method"], path=scope["path"], **details
        )


class _Exchange:
    """One request's wrapped ``receive`` and ``send``."""

    __slots__ = (
        "_correlation",
        "_deadline",
        "_receive",
        "_send",
        "_timeout",
        "body_done",
        "replaced",
        "started",
        "timed_out",
    )

    def __init__(self, receive: Receive, send: Send, correlation: bytes, timeout: float) -> None:
        self._receive = receive
        self._send = send
        self._correlation = correlation
        self._timeout = timeout
        self._deadline: float | None = None
        self.body_done = False
        self.timed_out = False
        self.started = False  # the app's response began (and was sent)
        self.replaced = False  # the app's response is being dropped for a 408

    async def receive(self) -> Message:
        if self.body_done:  # later reads wait for a disconnect: no deadline then
            return await self._receive()
        if self.timed_out:
            raise BodyTimeout("the request body did not arrive in time")
        if self._deadline is None:
            self._deadline = asyncio.get_running_loop().time() + self._timeout
        try:
            async with asyncio.timeout_at(self._deadline):
                message = await self._receive()
        except TimeoutError:
            self.timed_out = True
            raise BodyTimeout("the request body did not arrive in time") from None
        if message["type"] != "http.request" or not message.get("more_body", False):
            self.body_done = True
        return message

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            if self.timed_out:  # the app answered its failed read: answer 408 instead
                self.replaced = True
                return
            self.started = True
            headers = [*message.get("headers", ()), (_RESPONSE_HEADER, self._correlation)]
            message = {**message, "headers": headers}
        elif self.replaced:
            return
        await self._send(message)

    async def answer(self, problem: Problem) -> None:
        """Send ``problem`` and close the connection."""
        self.started = True
        body = problem.to_json()
        await self._send(
            {
                "type": "http.response.start",
                "status": problem.status,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                    (_RESPONSE_HEADER, self._correlation),
                ],
            }
        )
        await self._send({"type": "http.response.body", "body": body, "more_body": False})
