"""The ASGI layer in front of every simulator: record the request, then inject its fault.

The layer reads the whole body first (so the request log has it and a fault can
be decided before the vendor logic runs), draws a :class:`Decision` and then
waits (latency), answers with the vendor's error (error, 429, outage), holds
the request past the client's timeout, or aborts the TCP connection with a
reset. Otherwise it runs the simulator and applies schema drift to the answer.
The ``/_sandbox`` control endpoints pass straight through, unrecorded.

A reset needs the server's help: the sandbox's uvicorn protocol puts an
``interlock.sandbox.abort`` callable in ``scope["extensions"]``. Without it (an
in-process transport), the layer raises :class:`ConnectionResetError` instead.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from interlock.sandbox.faults import Decision, Drift
from interlock.sandbox.requestlog import Exchange

if TYPE_CHECKING:
    from interlock.sandbox.simulator import Simulator

ABORT = "interlock.sandbox.abort"
CONTROL_PREFIX = "/_sandbox/"


class FaultLayer:
    """Wraps one simulator's Starlette app (see the module docstring)."""

    def __init__(self, app: ASGIApp, simulator: Simulator) -> None:
        self.app = app
        self.simulator = simulator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(CONTROL_PREFIX):
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:
            return  # the client left before sending its body
        sim = self.simulator
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        exchange = sim.requests.record(
            Exchange(
                method=scope["method"],
                path=scope["path"],
                query=scope["query_string"].decode("latin-1"),
                headers=headers,
                body=body,
                at=sim.clock(),
            )
        )
        decision = sim.faults.decide()
        exchange.fault = decision.kind
        if decision.latency:
            await asyncio.sleep(decision.latency)
        if decision.kind == "reset":
            await _abort(scope, receive)
            return
        out = _Buffer(exchange)
        if decision.kind in ("error", "rate_limit", "outage"):
            await sim.fault_response(decision)(scope, receive, out.send)
            await out.flush(send, None)
            return
        replay = _replay(body, receive)
        drift = sim.faults.settings.drift
        if decision.kind == "timeout":
            await self._held(scope, replay, receive, send, out, decision, drift)
            return
        await self.app(scope, replay, out.send)
        await out.flush(send, drift)

    async def _held(
        self,
        scope: Scope,
        replay: Receive,
        receive: Receive,
        send: Send,
        out: _Buffer,
        decision: Decision,
        drift: Drift,
    ) -> None:
        if decision.effect:
            await self.app(scope, replay, out.send)
        if await _disconnected_within(receive, decision.hold):
            return  # the client gave up: it never sees the answer (nor, without effect, the work)
        if not decision.effect:
            await self.app(scope, replay, out.send)
        await out.flush(send, drift)


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # blocks until the client disconnects

    return replay


async def _disconnected_within(receive: Receive, seconds: float) -> bool:
    try:
        message = await asyncio.wait_for(receive(), timeout=seconds)
    except TimeoutError:
        return False
    return bool(message["type"] == "http.disconnect")


async def _abort(scope: Scope, receive: Receive) -> None:
    abort = scope.get("extensions", {}).get(ABORT)
    if abort is None:
        raise ConnectionResetError("sandbox fault: connection reset by the simulator")
    abort()
    with contextlib.suppress(TimeoutError):  # let the server notice, so it sends nothing
        await asyncio.wait_for(receive(), timeout=1.0)


class _Buffer:
    """Collects an answer so it can be drifted, logged and sent (or dropped) whole."""

    def __init__(self, exchange: Exchange) -> None:
        self.exchange = exchange
        self.start: Message | None = None
        self.chunks: list[bytes] = []

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.start = message
        elif message["type"] == "http.response.body":
            self.chunks.append(message.get("body", b""))

    async def flush(self, send: Send, drift: Drift | None) -> None:
        if self.start is None:
            return
        status: int = self.start["status"]
        headers: list[tuple[bytes, bytes]] = list(self.start.get("headers", []))
        body = b"".join(self.chunks)
        named = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in headers}
        if drift and 200 <= status < 300 and "json" in named.get("content-type", "") and body:
            body = orjson.dumps(drift.apply(orjson.loads(body)))
            headers = [(k, v) for k, v in headers if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
        self.exchange.status = status
        self.exchange.response_headers = {
            k.decode("latin-1").lower(): v.decode("latin-1") for k, v in headers
        }
        self.exchange.response_body = body
        start: dict[str, Any] = {"type": "http.response.start", "status": status}
        start["headers"] = headers
        await send(start)
        await send({"type": "http.response.body", "body": body, "more_body": False})
