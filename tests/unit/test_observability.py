"""Correlation ids (X-Correlation-ID, W3C traceparent), the gateway middleware on a
bare ASGI loop, and the in-process metrics."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
import pytest
import structlog
from fastapi import FastAPI, Request
from prometheus_client import generate_latest
from starlette.responses import Response

from interlock import Interlock
from interlock.gateway.middleware import (
    BodyTimeout,
    GatewayMiddleware,
    HttpLimits,
    correlation_id,
    trace_id_of,
    valid_correlation_id,
)
from interlock.observability import ATTEMPT_BUCKETS, Histogram, ProcessMetrics, process_metrics

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


# -- traceparent ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value",
    [
        f"00-{TRACE}-{PARENT}-01",
        f"00-{TRACE}-{PARENT}-00",
        f"  00-{TRACE}-{PARENT}-01\t",  # optional whitespace around a header value
        f"01-{TRACE}-{PARENT}-01",  # a later version
        f"cc-{TRACE}-{PARENT}-01-what-the-future-adds",  # later versions may add fields
    ],
)
def test_a_valid_traceparent_gives_its_trace_id(value: str) -> None:
    assert trace_id_of(value) == TRACE


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "garbage",
        f"ff-{TRACE}-{PARENT}-01",  # version ff is invalid
        f"00-{'0' * 32}-{PARENT}-01",  # all-zero trace id
        f"00-{TRACE}-{'0' * 16}-01",  # all-zero parent id
        f"00-{TRACE.upper()}-{PARENT}-01",  # hex is lowercase
        f"00-{TRACE[:-1]}-{PARENT}-01",  # short trace id
        f"00-{TRACE}0-{PARENT}-01",  # long trace id
        f"00-{TRACE}-{PARENT}-1",  # short flags
        f"00-{TRACE}-{PARENT}-01-extra",  # version 00 has exactly four fields
        f"01-{TRACE}-{PARENT}-01x",  # later versions: extra fields after a dash only
        f"0-{TRACE}-{PARENT}-01",
        f"00_{TRACE}_{PARENT}_01",
        f"zz-{TRACE}-{PARENT}-01",
    ],
)
def test_an_invalid_traceparent_is_ignored(value: str | None) -> None:
    assert trace_id_of(value) is None


# -- X-Correlation-ID --------------------------------------------------------------------
@pytest.mark.parametrize(
    "value", ["a", "order-1042", "cor_0192abc", "A.b:c/d=e?f!~", "x" * 128, TRACE]
)
def test_a_valid_correlation_id_is_kept(value: str) -> None:
    assert valid_correlation_id(value) == value


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "x" * 129,
        "has space",
        "tab\there",
        "new\nline",
        "nul\x00",
        "del\x7f",
        "é",
        "ü" * 3,
    ],
)
def test_an_invalid_correlation_id_is_refused(value: str | None) -> None:
    assert valid_correlation_id(value) is None


def test_the_header_wins_then_the_trace_then_a_fresh_id() -> None:
    traceparent = f"00-{TRACE}-{PARENT}-01"
    assert correlation_id("given-1", traceparent) == "given-1"
    assert correlation_id("not valid", traceparent) == TRACE
    assert correlation_id(None, traceparent) == TRACE
    fresh = {correlation_id(None, "junk") for _ in range(50)}
    assert len(fresh) == 50
    assert all(c.startswith("cor_") and len(c) == 36 for c in fresh)


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="body_timeout"):
        HttpLimits(body_timeout=0)
    with pytest.raises(ValueError, match="max_header_count"):
        HttpLimits(max_header_count=-1)


# -- the middleware on a bare ASGI loop ---------------------------------------------------
class Call:
    """Drive one HTTP request through an ASGI app in memory."""

    def __init__(self, headers: list[tuple[bytes, bytes]], body: list[bytes] | None) -> None:
        self.scope: dict[str, Any] = {
            "type": "http",
            "method": "POST",
            "path": "/x",
            "headers": headers,
            "state": {},
        }
        self.chunks = list(body) if body is not None else None
        self.sent: list[dict[str, Any]] = []

    async def receive(self) -> dict[str, Any]:
        if self.chunks is None:  # a client that never sends its body
            await asyncio.Event().wait()
        assert self.chunks is not None
        if not self.chunks:
            await asyncio.Event().wait()  # after the body: wait for a disconnect
        chunk = self.chunks.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(self.chunks)}

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    @property
    def status(self) -> int:
        return int(self.sent[0]["status"])

    @property
    def headers(self) -> dict[bytes, bytes]:
        return dict(self.sent[0]["headers"])

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent[1:])


def reading_app(seen: dict[str, Any]) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen["state"] = scope["state"].get("correlation_id")
        seen["bound"] = structlog.contextvars.get_contextvars().get("correlation_id")
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    return app


async def test_the_correlation_id_is_in_state_logs_and_the_response() -> None:
    seen: dict[str, Any] = {}
    call = Call([(b"x-correlation-id", b"abc-1")], [b"he", b"llo"])
    await GatewayMiddleware(reading_app(seen))(call.scope, call.receive, call.send)
    assert (call.status, call.body) == (200, b"hello")
    assert call.headers[b"x-correlation-id"] == b"abc-1"
    assert seen == {"state": "abc-1", "bound": "abc-1"}
    assert structlog.contextvars.get_contextvars().get("correlation_id") is None


async def test_header_count_and_size_limits_are_inclusive() -> None:
    limits = HttpLimits(max_header_count=3, max_header_bytes=40)
    metrics = ProcessMetrics()
    seen: dict[str, Any] = {}
    middleware = GatewayMiddleware(reading_app(seen), limits, metrics)
    three = [(b"a", b"1"), (b"b", b"2"), (b"c", b"3")]  # 3 x (2 + 4) = 18 bytes
    cases = [
        (three, 200),
        ([*three, (b"d", b"4")], 431),
        ([(b"a", b"x" * 34)], 200),  # 1 + 34 + 4 = 39 bytes
        ([(b"a", b"x" * 35)], 200),  # 40 bytes
        ([(b"a", b"x" * 36)], 431),
    ]
    for headers, status in cases:
        call = Call(headers, [b""])
        await middleware(call.scope, call.receive, call.send)
        assert call.status == status, headers
        if status == 431:
            assert call.headers[b"content-type"] == b"application/problem+json"
            assert call.headers[b"connection"] == b"close"
            assert orjson.loads(call.body)["status"] == 431
    assert metrics.http_refused == {"headers_too_large": 2}


async def test_a_late_body_raises_in_the_app_and_is_answered_408() -> None:
    raised: list[BaseException] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            await receive()
        except BodyTimeout as exc:
            raised.append(exc)
            raise

    metrics = ProcessMetrics()
    call = Call([], None)
    await GatewayMiddleware(app, HttpLimits(body_timeout=0.05), metrics)(
        call.scope, call.receive, call.send
    )
    assert len(raised) == 1
    assert call.status == 408
    assert call.headers[b"connection"] == b"close"
    assert b"x-correlation-id" in call.headers
    problem = orjson.loads(call.body)
    assert problem["type"] == "https://interlock.dev/problems/request-timeout"
    assert metrics.http_refused == {"body_timeout": 1}


async def test_an_answer_to_a_failed_read_is_replaced_by_the_408() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            await receive()
        except Exception:  # a body parser's catch-all
            await send({"type": "http.response.start", "status": 400, "headers": []})
            await send({"type": "http.response.body", "body": b"bad body"})

    call = Call([], None)
    await GatewayMiddleware(app, HttpLimits(body_timeout=0.05))(call.scope, call.receive, call.send)
    assert call.status == 408
    assert [m["type"] for m in call.sent] == ["http.response.start", "http.response.body"]
    assert b"bad body" not in call.body


async def test_a_timeout_that_escapes_wrapped_in_a_group_is_still_a_408() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            await receive()
        except BodyTimeout as exc:
            raise ExceptionGroup("task group", [exc]) from None

    call = Call([], None)
    await GatewayMiddleware(app, HttpLimits(body_timeout=0.05))(call.scope, call.receive, call.send)
    assert call.status == 408


async def test_a_crash_is_logged_with_the_correlation_id_outside_the_middleware() -> None:
    # The server error handler runs outside the middleware (Starlette's outermost layer).
    api = FastAPI()
    api.add_middleware(GatewayMiddleware)
    logged: list[object] = []

    @api.exception_handler(Exception)
    async def on_crash(request: Request, exc: Exception) -> Response:
        logged.append(structlog.contextvars.get_contextvars().get("correlation_id"))
        return Response(status_code=500)

    @api.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    async def call() -> httpx.Response:  # its own task: its own context
        transport = httpx.ASGITransport(app=api, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.get("/boom", headers={"x-correlation-id": "crash-1"})

    response = await asyncio.create_task(call())
    assert response.status_code == 500
    assert logged == ["crash-1"]


async def test_reads_after_the_body_have_no_deadline() -> None:
    # After the last chunk, receive() waits for a disconnect (streaming responses do).
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await receive()
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    call = Call([], [b"all"])
    await GatewayMiddleware(app, HttpLimits(body_timeout=0.05))(call.scope, call.receive, call.send)
    assert call.status == 204


async def test_non_http_scopes_pass_through() -> None:
    seen: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    async def never() -> dict[str, Any]:
        raise AssertionError("not called")

    async def ignore(message: dict[str, Any]) -> None:
        raise AssertionError("not called")

    await GatewayMiddleware(app)({"type": "lifespan"}, never, ignore)
    assert seen == ["lifespan"]


# -- metrics ---------------------------------------------------------------------------
def test_histogram_buckets_are_upper_inclusive() -> None:
    h = Histogram((0.1, 1.0))
    for value in (-1.0, 0.1, 0.10001, 1.0, 1.5, 1e9):
        h.observe(value)
    assert h.cumulative() == [("0.1", 2.0), ("1.0", 4.0), ("+Inf", 6.0)]
    assert h.count == 6


def test_attempts_outcomes_and_lag_are_exposed_in_prometheus_format() -> None:
    metrics = ProcessMetrics()
    metrics.settled("notify", "succeeded", started=10.0, finished=10.004, received=9.0)
    metrics.settled("notify", "succeeded", started=20.0, finished=20.2, received=19.9)
    metrics.settled("notify", "retry", started=30.0, finished=30.5, received=1.0)
    metrics.settled("sync", "dead", started=0.0, finished=2.0, received=0.0)
    metrics.refused("header_timeout")
    text = generate_latest(metrics.registry).decode()
    assert "# TYPE interlock_attempt_duration_seconds histogram" in text
    assert (
        'interlock_attempt_duration_seconds_bucket{flow="notify",le="0.005",outcome="succeeded"} 1.0'
        in text
    )
    assert 'interlock_attempt_duration_seconds_count{flow="notify",outcome="succeeded"} 2.0' in text
    assert 'interlock_delivery_outcomes_total{flow="notify",outcome="retry"} 1.0' in text
    assert 'interlock_delivery_outcomes_total{flow="sync",outcome="dead"} 1.0' in text
    assert 'interlock_end_to_end_lag_seconds_count{flow="notify"} 2.0' in text
    assert 'interlock_end_to_end_lag_seconds_bucket{flow="notify",le="1.0"} 1.0' in text
    (lag_sum,) = [
        line
        for line in text.splitlines()
        if line.startswith("interlock_end_to_end_lag_seconds_sum")
    ]
    assert float(lag_sum.split()[-1]) == pytest.approx(1.304)
    assert 'flow="sync"' not in text.split("interlock_end_to_end_lag_seconds")[-1]
    assert 'interlock_http_refused_total{reason="header_timeout"} 1.0' in text
    samples = [line for line in text.splitlines() if line.startswith("interlock_attempt_")]
    per_series = len(ATTEMPT_BUCKETS) + 1 + 2  # the buckets, +Inf, _count and _sum
    assert len(samples) == 3 * per_series  # notify/succeeded, notify/retry, sync/dead


def test_each_app_has_its_own_metrics(tmp_path: Any) -> None:
    first = Interlock("a", f"sqlite:///{tmp_path / 'a.db'}")
    second = Interlock("b", f"sqlite:///{tmp_path / 'b.db'}")
    assert process_metrics(first) is process_metrics(first)
    assert process_metrics(first) is not process_metrics(second)
    process_metrics(first).settled("f", "succeeded", 0.0, 1.0, 0.0)
    assert b"interlock_delivery_outcomes_total" not in b"".join(
        line
        for line in generate_latest(process_metrics(second).registry).splitlines()
        if not line.startswith(b"#")
    )
