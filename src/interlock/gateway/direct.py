"""The direct path: webhooks answered by the connection protocol itself.

Behind the gateway's own server, a ``POST /hooks/{source}[/{topic}]`` that is
plain HTTP/1.1 — a ``Content-Length``, no ``Expect: 100-continue``, header
fields within :class:`~interlock.gateway.middleware.HttpLimits` — is not turned
into an ASGI exchange: the httptools protocol
(:class:`~interlock.gateway.httptools_protocol.GatewayProtocol`) hands its
request cycle to :meth:`DirectHooks.run`, which waits for the body (with the
body timeout), runs the same :class:`~interlock.gateway.ingress.Ingress` steps
as the ASGI path and writes the answer's bytes. That saves the per-request ASGI
machinery (scope and message dicts, receive/send wrappers, a Starlette response)
on the one route that takes vendors' traffic at volume.

Everything else — other routes, those requests that do not qualify, and every
request when the gateway runs under another ASGI server or in tests through an
ASGI transport — takes the ASGI path, which answers the same requests with the
same statuses, bodies and headers (the test suite holds both to that).
"""

from __future__ import annotations

import asyncio
import http
from typing import TYPE_CHECKING, Any

import structlog
from starlette.datastructures import Headers

from interlock.errors import StoreError
from interlock.gateway import problems
from interlock.gateway.ingress import Answer, Ingress
from interlock.gateway.middleware import HttpLimits, request_timeout, scan_headers
from interlock.gateway.problems import Problem
from interlock.observability import ProcessMetrics

if TYPE_CHECKING:
    from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

    from interlock.gateway.app import Gateway

__all__ = ["DirectHooks"]

log = structlog.get_logger("interlock.gateway")

_STATUS_LINES = {
    s.value: b"HTTP/1.1 %d %s\r\n" % (s.value, s.phrase.encode("ascii")) for s in http.HTTPStatus
}


class _BodyTimeout(Exception):
    pass


class DirectHooks:
    """The webhook routes of one gateway, served straight from the protocol."""

    def __init__(self, gateway: Gateway, limits: HttpLimits, metrics: ProcessMetrics) -> None:
        self.gateway = gateway
        self.ingress: Ingress = gateway.state.ingress
        self.limits = limits
        self.metrics = metrics
        self.served = 0  # requests answered on this path

    def target(self, cycle: RequestResponseCycle) -> tuple[dict[str, Any], str] | None:
        """The hook route's path parameters and the request's correlation id when
        ``cycle`` qualifies, else None."""
        scope = cycle.scope
        if scope["http_version"] != "1.1" or cycle.waiting_for_100_continue:
            return None
        params = self.gateway.post_params(scope)  # type: ignore[arg-type]
        if params is None:
            return None
        headers: list[tuple[bytes, bytes]] = scope["headers"]  # type: ignore[assignment]
        if len(headers) > self.limits.max_header_count:
            return None
        has_length = False
        for name, _ in headers:
            if name == b"content-length":
                has_length = True
            elif name == b"transfer-encoding":
                return None
        if not has_length:
            return None
        size, cid = scan_headers(headers)
        if size > self.limits.max_header_bytes:
            return None
        return params, cid

    async def run(self, cycle: RequestResponseCycle, params: dict[str, Any], cid: str) -> None:
        """Answer the hook request of ``cycle`` (its head parsed, its body arriving)."""
        self.served += 1
        raw: list[tuple[bytes, bytes]] = cycle.scope["headers"]  # type: ignore[assignment]
        tokens = structlog.contextvars.bind_contextvars(correlation_id=cid)
        close = False
        answer: Answer | None
        try:
            answer = await self._answer(cycle, params, raw, cid)
        except _BodyTimeout:
            self.metrics.refused("body_timeout")
            log.warning("http.refused", reason="body_timeout", method="POST", path=_path(cycle))
            answer = Answer.of_problem(request_timeout(self.limits.body_timeout))
            close = True
        except StoreError as exc:
            log.error("gateway.store_failed", path=_path(cycle), error=str(exc))
            answer = Answer.of_problem(problems.overloaded(1, "the store is unavailable"))
        except Exception:
            log.exception("gateway.crashed", path=_path(cycle))
            answer = Answer.of_problem(
                Problem(500, "Internal error", "the gateway failed; the error is in its log")
            )
        finally:
            structlog.contextvars.reset_contextvars(**tokens)
        if answer is not None:
            await _send(cycle, answer, cid, close)
        cycle.on_response = _nothing

    async def _answer(
        self,
        cycle: RequestResponseCycle,
        params: dict[str, Any],
        raw: list[tuple[bytes, bytes]],
        cid: str,
    ) -> Answer | None:
        headers = Headers(raw=raw)
        source = self.ingress.precheck(params["source"], headers)
        if isinstance(source, Answer):
            return source
        body = await self._body(cycle)
        if body is None:  # the client went away
            return None
        return await self.ingress.accept(source, params.get("topic") or None, headers, body, cid)

    async def _body(self, cycle: RequestResponseCycle) -> bytes | None:
        """The whole body, or None when the client disconnected first."""
        deadline: float | None = None
        while cycle.more_body and not cycle.disconnected:
            if deadline is None:
                deadline = asyncio.get_running_loop().time() + self.limits.body_timeout
            cycle.flow.resume_reading()
            try:
                async with asyncio.timeout_at(deadline):
                    await cycle.message_event.wait()
            except TimeoutError:
                raise _BodyTimeout from None
            cycle.message_event.clear()
        if cycle.disconnected:
            return None
        body = bytes(cycle.body)
        cycle.body = bytearray()
        return body


async def _send(cycle: RequestResponseCycle, answer: Answer, cid: str, close: bool) -> None:
    """Write ``answer`` as uvicorn's ``send`` would, then finish the cycle."""
    if cycle.flow.write_paused and not cycle.disconnected:
        await cycle.flow.drain()
    if cycle.disconnected:
        return
    if close:
        cycle.keep_alive = False
    parts = [_STATUS_LINES[answer.status]]
    for name, value in cycle.default_headers:
        parts += (name, b": ", value, b"\r\n")
    for name, value in answer.headers():
        parts += (name, b": ", value, b"\r\n")
    parts += (b"x-correlation-id: ", cid.encode("ascii"), b"\r\n")
    if not cycle.keep_alive:
        parts.append(b"connection: close\r\n")
    parts += (b"\r\n", answer.body)
    cycle.transport.write(b"".join(parts))
    cycle.response_started = True
    cycle.response_complete = True
    cycle.message_event.set()
    if not cycle.keep_alive:
        cycle.transport.close()
    cycle.on_response()


def _path(cycle: RequestResponseCycle) -> str:
    return str(cycle.scope["path"])


def _nothing() -> None:
    return None
