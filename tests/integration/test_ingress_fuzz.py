"""Hypothesis fuzz of the webhook ingress on a real server on loopback.

Random bodies (JSON of any shape, text in odd encodings, raw bytes, empty, over the
limit), random headers and content types, signatures right and wrong. Whatever
comes in: never a 5xx, an answer that is 2xx only when the body was verified, a
rejection stores nothing, and the server stays healthy.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from interlock import Context, Contract, Interlock
from interlock.gateway.server import server_for

SECRET = "fuzz-secret"


class Ticket(Contract, event="ticket.opened", subject="ticket_id"):
    ticket_id: int
    title: str


def build_app(path: Path) -> Interlock:
    app = Interlock("fuzz", f"sqlite:///{path}")
    desk = app.webhook("desk", verify="github", secret="desk-secret", max_body_bytes=4096)

    @desk.maps("tickets")
    def ticket(body: dict[str, Any]) -> Ticket:
        return Ticket(ticket_id=body["id"], title=body["title"])

    @app.flow(Ticket, owner="support@acme.test", key="ticket_id")
    async def route(event: Ticket, ctx: Context) -> None:
        return None

    return app


@dataclass
class Server:
    app: Interlock
    url: str
    db: Path

    def events(self) -> int:
        conn = sqlite3.connect(self.db)
        try:
            return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
        finally:
            conn.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    patcher = pytest.MonkeyPatch()
    patcher.setenv("INTERLOCK_SECRET_DESK_SECRET", SECRET)
    db = tmp_path_factory.mktemp("fuzz") / "fuzz.db"
    app = build_app(db)
    app.store.ensure_schema()
    uvicorn_server = server_for(app, "127.0.0.1", 0)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(uvicorn_server.serve(),))
    thread.start()
    while not uvicorn_server.started:
        threading.Event().wait(0.01)
    port = uvicorn_server.servers[0].sockets[0].getsockname()[1]
    yield Server(app, f"http://127.0.0.1:{port}", db)
    uvicorn_server.should_exit = True
    thread.join(timeout=30)
    app.close()  # cancels the store's writer task on the loop; let the loop see it
    loop.run_until_complete(asyncio.sleep(0.01))
    loop.close()
    patcher.undo()


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=30,
)

tickets = st.fixed_dictionaries(
    {
        "id": st.integers(-(2**63), 2**63 - 1) | st.text(max_size=5) | st.none(),
        "title": st.text(max_size=30),
    }
)


def _encode(value: Any, encoding: str) -> bytes:
    return orjson.dumps(value).decode().encode(encoding, "surrogatepass")


bodies = st.one_of(
    json_values.map(orjson.dumps),
    tickets.map(orjson.dumps),
    st.tuples(json_values, st.sampled_from(["utf-16", "utf-32", "latin-1", "utf-8-sig"])).map(
        lambda pair: _encode(pair[0], pair[1]) if pair[1] != "latin-1" else b"\xff" + b"{}"
    ),
    st.binary(max_size=512),
    st.text(max_size=200).map(lambda s: s.encode("utf-8", "surrogatepass")),
    st.sampled_from(
        [
            b"",
            b"{",
            b'{"id": 1, "id": 2, "title": "dup"}',
            b'{"id": NaN, "title": "x"}',
            b'{"id": 1e999, "title": "x"}',
            b"[" * 5000 + b"]" * 5000,
            b'{"id": 1, "title": "nul\\u0000"}',
            b'{"id": ' + b"9" * 5000 + b', "title": "big"}',
            b'{"id": 1, "title": "' + b"x" * 5000 + b'"}',
        ]
    ),
)

CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "text/plain",
    "application/x-www-form-urlencoded",
    "application/vnd.acme+json",
    "",
    "application/json; charset=utf-16",
]


def header_values(size: int) -> st.SearchStrategy[str]:
    """Printable ASCII without surrounding whitespace (what an HTTP client can send)."""
    printable = st.characters(min_codepoint=32, max_codepoint=126)
    return st.text(printable, max_size=size).map(str.strip)


@dataclass(frozen=True)
class Request:
    path: str
    body: bytes
    headers: dict[str, str]
    signed: bool


@st.composite
def requests(draw: st.DrawFn) -> Request:
    body = draw(bodies)
    signing = draw(st.sampled_from(["right", "wrong", "none", "garbage"]))
    headers = {"x-github-event": draw(st.sampled_from(["tickets", "other", ""]))}
    ctype = draw(st.sampled_from(CONTENT_TYPES))
    if ctype:
        headers["content-type"] = ctype
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    if signing == "right":
        headers["x-hub-signature-256"] = f"sha256={digest}"
    elif signing == "wrong":
        headers["x-hub-signature-256"] = f"sha256={digest[::-1]}"
    elif signing == "garbage":
        headers["x-hub-signature-256"] = draw(header_values(90))
    headers["x-github-delivery"] = draw(st.uuids()).hex
    extra = draw(
        st.dictionaries(
            st.from_regex(r"x-[a-z]{1,12}", fullmatch=True),
            header_values(60),
            max_size=4,
        )
    )
    headers.update(extra)
    path = draw(st.sampled_from(["/hooks/desk", "/hooks/desk/tickets", "/hooks/nope", "/hooks/"]))
    return Request(path, body, headers, signing == "right")


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(request=requests())
def test_ingress_never_fails_and_stores_only_what_it_acknowledges(
    server: Server, request: Request
) -> None:
    before = server.events()
    with httpx.Client(base_url=server.url, timeout=10) as client:
        answer = client.post(request.path, content=request.body, headers=request.headers)
    after = server.events()
    assert answer.status_code < 500, answer.text
    if answer.status_code >= 400:
        assert answer.headers["content-type"] == "application/problem+json"
        problem = answer.json()
        assert problem["status"] == answer.status_code
        assert SECRET not in answer.text
        assert after == before, "a rejected request stored something"
    else:
        assert request.signed, "an unsigned request was acknowledged"
        assert request.path.startswith("/hooks/desk")
        if answer.status_code == 202:
            assert after - before in (0, 1)  # 0: a redelivery of a stored delivery id
            (event_id,) = answer.json()["event_ids"]
            assert server.app.store.get_event(event_id).type == "ticket.opened"
        else:
            assert after == before


def test_the_server_is_healthy_after_the_fuzz(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").json()["status"] == "ready"
