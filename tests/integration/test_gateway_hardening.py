"""The gateway's HTTP hardening on a real server on loopback.

Header limits (431), the body timeout (408), the header timeout (slowloris),
correlation ids in and out, and the workers' metrics on ``/metrics``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import re
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import structlog
import uvicorn
from fastapi import FastAPI

from interlock import Context, Contract, Interlock
from interlock.gateway.middleware import GatewayMiddleware, HttpLimits
from interlock.gateway.server import Parser, http_protocol, serve, server_for
from interlock.worker import WorkerConfig

SECRET = "gh-hardening-secret"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
FAST = HttpLimits(body_timeout=1.0, header_timeout=1.0)


class IssueOpened(Contract, event="issue.opened", subject="issue_id"):
    issue_id: int
    title: str


def build_app(path: Path) -> tuple[Interlock, list[int]]:
    app = Interlock("hardening", f"sqlite:///{path}")
    handled: list[int] = []
    github = app.webhook("github", verify="github", secret="github-secret")

    @github.maps("issues")
    def issues(body: dict[str, Any]) -> IssueOpened:
        return IssueOpened(issue_id=body["issue"]["number"], title=body["issue"]["title"])

    @app.flow(IssueOpened, owner="dev@acme.test", key="issue_id")
    async def triage(event: IssueOpened, ctx: Context) -> None:
        handled.append(event.issue_id)

    return app, handled


def signed(body: bytes, delivery: str = "d-1") -> dict[str, str]:
    signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {
        "content-type": "application/json",
        "x-github-event": "issues",
        "x-github-delivery": delivery,
        "x-hub-signature-256": f"sha256={signature}",
    }


def issue(number: int = 7) -> bytes:
    return orjson.dumps({"action": "opened", "issue": {"number": number, "title": "Crash"}})


def stored(app: Interlock) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(app.store.path)
    try:
        return conn.execute("SELECT id, correlation_id FROM events ORDER BY seq").fetchall()
    finally:
        conn.close()


Serve = Callable[[HttpLimits], Awaitable[tuple[Interlock, int]]]


@pytest.fixture(params=["httptools", "h11"])
async def serve_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> AsyncIterator[Serve]:
    """Start the gateway of a fresh app with the given limits; returns (app, port).

    Each test runs on both of the gateway's protocols: httptools (the default) and the
    h11 fallback."""
    monkeypatch.setenv("INTERLOCK_SECRET_GITHUB_SECRET", SECRET)
    running: list[tuple[Interlock, uvicorn.Server, asyncio.Task[None]]] = []
    parser: Parser = request.param

    async def start(limits: HttpLimits) -> tuple[Interlock, int]:
        app, _ = build_app(tmp_path / f"gw{len(running)}.db")
        server = server_for(app, "127.0.0.1", 0, limits=limits, parser=parser)
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        running.append((app, server, task))
        return app, int(server.servers[0].sockets[0].getsockname()[1])

    yield start
    for app, server, task in running:
        server.should_exit = True
        await task
        app.close()


@pytest.fixture
async def served(serve_with: Serve) -> tuple[Interlock, int]:
    return await serve_with(FAST)


async def exchange(port: int, *parts: bytes, pause: float = 0.0) -> tuple[bytes, float]:
    """Send ``parts`` on one raw connection; read until the server closes it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    try:
        for part in parts:
            writer.write(part)
            await writer.drain()
            await asyncio.sleep(pause)
        answer = await asyncio.wait_for(reader.read(), timeout=10)
        return answer, time.monotonic() - started
    finally:
        writer.close()


def status_and_body(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


# -- 431 -------------------------------------------------------------------------------
async def test_too_many_or_too_large_headers_answer_431_problems(
    served: tuple[Interlock, int],
) -> None:
    app, port = served
    body = issue()
    many = {**signed(body), **{f"x-extra-{i}": "y" for i in range(100)}}
    large = {**signed(body), "x-large": "z" * (32 * 1024)}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        for headers in (many, large):
            response = await client.post("/hooks/github", content=body, headers=headers)
            assert response.status_code == 431, response.text
            assert response.headers["content-type"] == "application/problem+json"
            assert response.headers["connection"] == "close"
            assert response.headers["x-correlation-id"].startswith("cor_")
            problem = response.json()
            assert problem["type"] == "https://interlock.dev/problems/headers-too-large"
            assert problem["status"] == 431
        ok = await client.post("/hooks/github", content=body, headers=signed(body))
        assert ok.status_code == 202
        metrics = (await client.get("/metrics")).text
    assert len(stored(app)) == 1
    assert 'interlock_http_refused_total{reason="headers_too_large"} 2.0' in metrics


async def test_a_head_over_the_parsers_limit_is_a_431_problem_too(
    served: tuple[Interlock, int],
) -> None:
    # Refused only while still incomplete with over 64 KiB buffered; stock uvicorn
    # answers that with a plain-text 400 on h11, and buffers without bound on httptools.
    _, port = served
    start = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000
    raw, _ = await exchange(port, start, b"\r\n\r\n", pause=0.2)
    status, headers, body = status_and_body(raw)
    assert status == 431
    assert headers["content-type"] == "application/problem+json"
    assert orjson.loads(body)["type"].endswith("/headers-too-large")


async def test_an_oversized_head_pipelined_behind_a_request_is_refused_after_its_answer(
    served: tuple[Interlock, int],
) -> None:
    _, port = served
    first = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    second = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000
    raw, _ = await exchange(port, first + second, b"\r\n\r\n", pause=0.2)
    ok, _, rest = raw.partition(b"\r\n\r\n")
    assert ok.startswith(b"HTTP/1.1 200 ")
    refused = rest[rest.index(b"HTTP/1.1 ") :]
    status, headers, body = status_and_body(refused)
    assert status == 431
    assert headers["connection"] == "close"
    assert orjson.loads(body)["type"].endswith("/headers-too-large")


async def test_a_large_body_and_the_next_head_in_one_read_are_not_a_431(
    served: tuple[Interlock, int],
) -> None:
    # A chunk that ends a 100 KB body and starts the next head is not all head.
    app, port = served
    payload = {"action": "opened", "issue": {"number": 8, "title": "Crash"}, "pad": "p" * 100_000}
    body = orjson.dumps(payload)
    head = "".join(f"{k}: {v}\r\n" for k, v in signed(body).items())
    post = (
        f"POST /hooks/github HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n{head}\r\n"
    ).encode() + body
    follow = b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
    raw, _ = await exchange(port, post + follow, b"Connection: close\r\n\r\n", pause=0.2)
    assert re.findall(rb"HTTP/1\.1 (\d{3}) ", raw) == [b"202", b"200"]
    assert len(stored(app)) == 1


def test_the_gateway_serves_on_httptools_unless_told_otherwise() -> None:
    assert http_protocol().__name__ == "GatewayProtocol"
    assert http_protocol("h11").__name__ == "H11GatewayProtocol"


# -- 408 -------------------------------------------------------------------------------
async def test_a_stalled_body_answers_408_closes_and_stores_nothing(
    served: tuple[Interlock, int],
) -> None:
    app, port = served
    body = issue()
    head = "".join(f"{k}: {v}\r\n" for k, v in signed(body).items())
    request = (
        f"POST /hooks/github HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n{head}\r\n"
    ).encode() + body[:10]
    raw, elapsed = await exchange(port, request)  # read() returns once the server closes
    status, headers, payload = status_and_body(raw)
    assert status == 408
    assert headers["content-type"] == "application/problem+json"
    assert headers["connection"] == "close"
    assert headers["x-correlation-id"]
    assert orjson.loads(payload)["type"] == "https://interlock.dev/problems/request-timeout"
    assert 0.9 <= elapsed < 4.0
    assert stored(app) == []
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        metrics = (await client.get("/metrics")).text
    assert 'interlock_http_refused_total{reason="body_timeout"} 1.0' in metrics


async def test_a_body_parser_that_swallows_the_timeout_still_answers_408() -> None:
    # FastAPI turns any error while reading a JSON body into a 400; the middleware
    # answers 408 instead, whatever the app made of its failed read.
    api = FastAPI()

    @api.post("/echo")
    async def echo(body: dict[str, Any]) -> dict[str, Any]:
        return body

    config = uvicorn.Config(
        GatewayMiddleware(api, HttpLimits(body_timeout=0.5)),
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="off",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        request = (
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n" + b'{"a": 1, '
        )
        raw, _ = await exchange(port, request)
    finally:
        server.should_exit = True
        await task
    status, headers, _ = status_and_body(raw)
    assert status == 408
    assert headers["content-type"] == "application/problem+json"


# -- the header timeout ---------------------------------------------------------------
async def test_a_client_trickling_its_headers_is_cut_off(served: tuple[Interlock, int]) -> None:
    _, port = served
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    writer.write(b"POST /hooks/github HTTP/1.1\r\nHost: x\r\n")
    closed_after: float | None = None
    try:
        for i in range(80):  # a header line every 0.1 s would go on for 8 s
            writer.write(f"X-Pad-{i}: y\r\n".encode())
            await writer.drain()
            try:
                if await asyncio.wait_for(reader.read(1), timeout=0.1) == b"":
                    closed_after = time.monotonic() - started
                    break
            except TimeoutError:
                continue
    except ConnectionError:
        closed_after = time.monotonic() - started
    finally:
        writer.close()
    assert closed_after is not None, "the server kept a slowloris connection open"
    assert 0.9 <= closed_after < 4.0
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        metrics = (await client.get("/metrics")).text
    assert 'interlock_http_refused_total{reason="header_timeout"} 1.0' in metrics


async def test_an_idle_connection_is_closed_quietly(served: tuple[Interlock, int]) -> None:
    _, port = served
    raw, elapsed = await exchange(port)
    assert raw == b""
    assert 0.9 <= elapsed < 4.0
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        metrics = (await client.get("/metrics")).text
    assert "header_timeout" not in metrics.split("interlock_http_refused_total")[-1]


async def test_keep_alive_requests_are_unaffected(served: tuple[Interlock, int]) -> None:
    # Four requests on one connection over more than the header timeout: the timer
    # restarts after each response.
    _, port = served
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for _ in range(4):
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
            status, headers, _ = status_and_body(head)
            assert status == 200
            await reader.readexactly(int(headers["content-length"]))
            await asyncio.sleep(0.5)
    finally:
        writer.close()


async def test_a_slow_body_within_its_timeout_is_not_cut_by_the_header_timeout(
    serve_with: Serve,
) -> None:
    app, port = await serve_with(HttpLimits(header_timeout=0.5, body_timeout=5.0))
    body = issue()
    head = "".join(f"{k}: {v}\r\n" for k, v in signed(body).items())
    request = (
        f"POST /hooks/github HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        f"Content-Length: {len(body)}\r\n{head}\r\n"
    ).encode()
    raw, elapsed = await exchange(port, request, body, pause=1.2)
    status, _, payload = status_and_body(raw)
    assert status == 202, payload
    assert elapsed >= 1.2
    assert len(stored(app)) == 1


# -- correlation ids --------------------------------------------------------------------
async def test_a_correlation_id_flows_in_out_and_onto_the_event(
    served: tuple[Interlock, int],
) -> None:
    app, port = served
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        given = await client.post(
            "/hooks/github",
            content=issue(1),
            headers={**signed(issue(1), "d-1"), "x-correlation-id": "order-1042/try-1"},
        )
        traced = await client.post(
            "/hooks/github",
            content=issue(2),
            headers={**signed(issue(2), "d-2"), "traceparent": TRACEPARENT},
        )
        both = await client.post(
            "/hooks/github",
            content=issue(3),
            headers={
                **signed(issue(3), "d-3"),
                "x-correlation-id": "wins",
                "traceparent": TRACEPARENT,
            },
        )
        invalid = await client.post(
            "/hooks/github",
            content=issue(4),
            headers={**signed(issue(4), "d-4"), "x-correlation-id": "x" * 129},
        )
        fresh = await client.post(
            "/hooks/github", content=issue(5), headers=signed(issue(5), "d-5")
        )
        health = await client.get("/healthz", headers={"x-correlation-id": "probe-1"})
        missing = await client.get("/nope", headers={"traceparent": TRACEPARENT})
    ids = [r.headers["x-correlation-id"] for r in (given, traced, both, invalid, fresh)]
    assert ids[:3] == ["order-1042/try-1", TRACE_ID, "wins"]
    assert ids[3].startswith("cor_")
    assert ids[4].startswith("cor_")
    assert ids[3] != ids[4]
    for response, cid in zip((given, traced, both, invalid, fresh), ids, strict=True):
        assert response.status_code == 202
        (event_id,) = response.json()["event_ids"]
        assert app.store.get_event(event_id).correlation_id == cid
    assert health.headers["x-correlation-id"] == "probe-1"
    assert missing.status_code == 404
    assert missing.headers["x-correlation-id"] == TRACE_ID


@pytest.fixture
def captured_logs() -> Iterator[list[dict[str, Any]]]:
    logs: list[dict[str, Any]] = []
    previous = structlog.get_config()

    def capture(_: Any, method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        logs.append(dict(event_dict))
        raise structlog.DropEvent

    structlog.configure(processors=[structlog.contextvars.merge_contextvars, capture])
    yield logs
    structlog.configure(**previous)


async def test_the_correlation_id_is_in_the_requests_logs(
    served: tuple[Interlock, int], captured_logs: list[dict[str, Any]]
) -> None:
    _, port = served
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        response = await client.post(
            "/hooks/github",
            content=issue(),
            headers={
                **signed(issue()),
                "x-hub-signature-256": "sha256=00",
                "x-correlation-id": "c-9",
            },
        )
    assert response.status_code == 401
    (rejected,) = [e for e in captured_logs if e["event"] == "webhook.rejected"]
    assert rejected["correlation_id"] == "c-9"
    assert structlog.contextvars.get_contextvars().get("correlation_id") is None


# -- metrics ------------------------------------------------------------------------------
async def test_worker_metrics_are_on_the_gateways_metrics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INTERLOCK_SECRET_GITHUB_SECRET", SECRET)
    app, handled = build_app(tmp_path / "gw.db")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    stop = asyncio.Event()
    task = asyncio.create_task(
        serve(app, host="127.0.0.1", port=port, worker=WorkerConfig(concurrency=8), stop=stop)
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(200):
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.02)
            accepted = await client.post("/hooks/github", content=issue(), headers=signed(issue()))
            assert accepted.status_code == 202
            text = ""
            for _ in range(250):  # the attempt is observed once settled, after the handler
                text = (await client.get("/metrics")).text
                if "interlock_end_to_end_lag_seconds_count" in text:
                    break
                await asyncio.sleep(0.02)
    finally:
        stop.set()
        await task
        app.close()
    assert handled == [7]
    labels = 'flow="triage",outcome="succeeded"'
    assert f"interlock_attempt_duration_seconds_count{{{labels}}} 1.0" in text
    bucket = (
        'interlock_attempt_duration_seconds_bucket{flow="triage",le="+Inf",outcome="succeeded"}'
    )
    assert f"{bucket} 1.0" in text
    assert f"interlock_delivery_outcomes_total{{{labels}}} 1.0" in text
    assert 'interlock_end_to_end_lag_seconds_count{flow="triage"} 1.0' in text
    assert 'interlock_deliveries{flow="triage",status="succeeded"} 1.0' in text


WORKER_APP = """
from interlock import Context, Contract, Interlock

app = Interlock("metered")

class Ping(Contract, event="ping.received"):
    n: int

@app.flow(Ping, owner="ops")
async def pong(event: Ping, ctx: Context) -> None:
    pass

if __name__ == "__main__":
    app.emit_sync(Ping(n=1))
"""


def test_a_worker_alone_serves_its_metrics_on_metrics_port(tmp_path: Path) -> None:
    (tmp_path / "metered_app.py").write_text(textwrap.dedent(WORKER_APP))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "INTERLOCK_DATABASE_URL": f"sqlite:///{tmp_path / 'metered.db'}",
        "PYTHONPATH": str(tmp_path),
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "interlock.cli",
            "worker",
            "metered_app:app",
            "--metrics-port",
            str(port),
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                if httpx.get(url, timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        subprocess.run(
            [sys.executable, str(tmp_path / "metered_app.py")], env=env, cwd=tmp_path, check=True
        )
        text = ""
        while time.monotonic() < deadline:
            text = httpx.get(url, timeout=1).text
            if 'interlock_delivery_outcomes_total{flow="pong",outcome="succeeded"} 1.0' in text:
                break
            time.sleep(0.1)
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert 'interlock_delivery_outcomes_total{flow="pong",outcome="succeeded"} 1.0' in text, out
    assert 'interlock_end_to_end_lag_seconds_count{flow="pong"} 1.0' in text
    assert proc.returncode == 0, out


async def test_a_requests_log_context_does_not_follow_its_event_into_the_worker(
    tmp_path: Path,
) -> None:
    # An emit leases its deliveries straight to a worker on the same loop; the lane must
    # start in the worker's context, not in the emitting request's (its correlation id
    # would label every later delivery of that lane).
    app = Interlock("lanes", f"sqlite:///{tmp_path / 'lanes.db'}")
    seen: list[object] = []

    @app.flow(IssueOpened, owner="dev@acme.test", key="issue_id")
    async def triage(event: IssueOpened, ctx: Context) -> None:
        seen.append(structlog.contextvars.get_contextvars().get("correlation_id"))

    stop = asyncio.Event()
    worker = asyncio.create_task(app.worker(concurrency=4).run(stop))
    try:
        await asyncio.sleep(0.05)
        tokens = structlog.contextvars.bind_contextvars(correlation_id="request-1")
        try:
            await app.emit(IssueOpened(issue_id=1, title="x"), correlation_id="request-1")
        finally:
            structlog.contextvars.reset_contextvars(**tokens)
        for _ in range(200):
            if seen:
                break
            await asyncio.sleep(0.01)
    finally:
        stop.set()
        await worker
        app.close()
    assert seen == [None]


def test_without_httptools_the_gateway_serves_on_h11() -> None:
    code = (
        "import sys; sys.modules['httptools'] = None\n"  # as if it were not installed
        "from interlock.gateway.server import HTTPTOOLS, http_protocol\n"
        "print(HTTPTOOLS, http_protocol().__name__)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["False", "H11GatewayProtocol"]
