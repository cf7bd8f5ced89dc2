"""The direct webhook path answers exactly as the ASGI path does.

The same requests go to the gateway on httptools (where plain webhook POSTs take
the direct path, :mod:`interlock.gateway.direct`) and on h11 (where everything is
ASGI); statuses, bodies and headers must match, requests that do not qualify
must still be served, and failures must be answered, not dropped.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
import uvicorn

from interlock import Contract, Interlock
from interlock.errors import StoreError
from interlock.gateway.direct import DirectHooks
from interlock.gateway.ingress import Answer
from interlock.gateway.middleware import HttpLimits
from interlock.gateway.protocols import GatewayConfig
from interlock.gateway.server import Parser, server_for

SECRET = "gh-direct-secret"


class IssueOpened(Contract, event="issue.opened", subject="issue_id"):
    issue_id: int
    title: str


def build_app(path: Path) -> Interlock:
    app = Interlock("direct", f"sqlite:///{path}")
    github = app.webhook("github", verify="github", secret="github-secret", max_body_bytes=4096)

    @github.maps("issues")
    def issues(body: dict[str, Any]) -> IssueOpened:
        return IssueOpened(issue_id=body["issue"]["number"], title=body["issue"]["title"])

    return app


def issue(number: int = 7, title: Any = "Crash") -> bytes:
    return orjson.dumps({"action": "opened", "issue": {"number": number, "title": title}})


def request(
    body: bytes,
    *,
    delivery: str = "d-1",
    event: str = "issues",
    path: str = "/hooks/github",
    secret: str = SECRET,
    extra: str = "",
    version: str = "1.1",
    length: str | None = None,
    chunked: bool = False,
) -> bytes:
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    head = (
        f"POST {path} HTTP/{version}\r\nHost: t\r\ncontent-type: application/json\r\n"
        f"x-github-event: {event}\r\nx-github-delivery: {delivery}\r\n"
        f"x-hub-signature-256: sha256={signature}\r\n{extra}"
    )
    if chunked:
        chunks = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
        return f"{head}transfer-encoding: chunked\r\n\r\n".encode() + chunks
    head += f"content-length: {len(body) if length is None else length}\r\n\r\n"
    return head.encode() + body


Served = tuple[Interlock, int, uvicorn.Server]
Serve = Callable[[Parser], Awaitable[Served]]


@pytest.fixture
async def serve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Serve]:
    monkeypatch.setenv("INTERLOCK_SECRET_GITHUB_SECRET", SECRET)
    running: list[tuple[Interlock, uvicorn.Server, asyncio.Task[None]]] = []

    async def start(parser: Parser) -> Served:
        app = build_app(tmp_path / f"{parser}{len(running)}.db")
        server = server_for(app, "127.0.0.1", 0, parser=parser, limits=HttpLimits(body_timeout=1))
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        running.append((app, server, task))
        return app, int(server.servers[0].sockets[0].getsockname()[1]), server

    yield start
    for app, server, task in running:
        server.should_exit = True
        await task
        app.close()


async def send(port: int, data: bytes, answers: int = 1) -> list[tuple[int, dict[str, str], bytes]]:
    """Write ``data`` on one connection and read ``answers`` responses."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    out = []
    try:
        writer.write(data)
        await writer.drain()
        for _ in range(answers):
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            lines = head.decode("latin-1").split("\r\n")
            headers = dict(line.lower().split(": ", 1) for line in lines[1:] if line)
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            out.append((int(lines[0].split()[1]), headers, body))
    finally:
        writer.close()
    return out


def direct(server: uvicorn.Server) -> DirectHooks:
    config = server.config
    assert isinstance(config, GatewayConfig) and config.direct is not None
    return config.direct


def comparable(status: int, headers: dict[str, str], body: bytes) -> tuple[Any, ...]:
    """What must be equal on both paths (event ids and dates differ by nature)."""
    payload = orjson.loads(body) if body else None
    if isinstance(payload, dict):
        payload.pop("event_ids", None)
    kept = {k: v for k, v in headers.items() if k not in ("date", "x-correlation-id")}
    return status, kept, payload


CASES: dict[str, tuple[bytes, int]] = {
    "accepted": (request(issue()), 202),
    "bad signature": (request(issue(), secret="wrong"), 401),
    "unknown source": (request(issue(), path="/hooks/nope"), 404),
    "topic in the path": (request(issue(), path="/hooks/github/issues", event=""), 202),
    "ignored topic": (request(issue(), event="star"), 200),
    "declared too large": (request(b"{}", length="5000"), 413),
    "malformed json": (request(b'{"issue": '), 400),
    "duplicate keys": (request(b'{"issue": {"number": 1, "number": 2}}'), 400),
    "contract failure": (request(issue(title=["not", "a", "string"])), 422),
    "mapping failure": (request(b'{"action": "opened"}'), 422),
    "wrong content type": (request(issue()).replace(b"application/json", b"text/plain"), 415),
}


@pytest.mark.parametrize("case", sorted(CASES))
async def test_the_direct_path_answers_as_the_asgi_path_does(serve: Serve, case: str) -> None:
    data, status = CASES[case]
    _, fast_port, fast = await serve("httptools")
    _, asgi_port, _ = await serve("h11")
    [on_direct] = await send(fast_port, data)
    [on_asgi] = await send(asgi_port, data)
    assert on_direct[0] == status
    assert comparable(*on_direct) == comparable(*on_asgi)
    assert on_direct[1]["x-correlation-id"]
    assert direct(fast).served == 1


async def test_a_retried_delivery_gets_the_first_event_id_on_the_direct_path(
    serve: Serve,
) -> None:
    app, port, server = await serve("httptools")
    first, again = await send(port, request(issue()) * 2, answers=2)  # pipelined
    assert first[0] == again[0] == 202
    assert orjson.loads(first[2])["event_ids"] == orjson.loads(again[2])["event_ids"]
    assert len(app.store.list_events(limit=10)) == 1
    assert direct(server).served == 2


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("chunked", request(issue(), chunked=True)),
        ("expect 100-continue", request(issue(), extra="expect: 100-continue\r\n")),
        ("HTTP/1.0", request(issue(), version="1.0")),
    ],
)
async def test_requests_that_do_not_qualify_take_the_asgi_path(
    serve: Serve, name: str, data: bytes
) -> None:
    app, port, server = await serve("httptools")
    answers = await send(port, data, answers=2 if "100" in name else 1)
    status, headers, body = answers[-1]
    assert status == 202, body
    assert headers["x-correlation-id"]
    assert len(app.store.list_events(limit=10)) == 1
    assert direct(server).served == 0


async def test_a_store_failure_or_a_crash_is_answered_on_the_direct_path(
    serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, port, server = await serve("httptools")
    ingress = direct(server).ingress

    async def store_down(*args: Any) -> Answer:
        raise StoreError("disk I/O error")

    async def crash(*args: Any) -> Answer:
        raise RuntimeError("a bug in secret-value-123")

    monkeypatch.setattr(ingress, "accept", store_down)
    [down] = await send(port, request(issue(), extra="x-correlation-id: c-1\r\n"))
    monkeypatch.setattr(ingress, "accept", crash)
    [crashed] = await send(port, request(issue(), extra="x-correlation-id: c-2\r\n"))
    assert down[0] == 503
    assert down[1]["retry-after"] == "1"
    assert down[1]["x-correlation-id"] == "c-1"
    assert orjson.loads(down[2])["type"].endswith("/overloaded")
    assert crashed[0] == 500
    assert crashed[1]["content-type"] == "application/problem+json"
    assert crashed[1]["x-correlation-id"] == "c-2"
    assert b"secret-value-123" not in crashed[2]
    assert direct(server).served == 2
    # The connection stays usable: the server answers the next request normally.
    monkeypatch.undo()
    monkeypatch.setenv("INTERLOCK_SECRET_GITHUB_SECRET", SECRET)
    [ok] = await send(port, request(issue()))
    assert ok[0] == 202
