"""The gateway on a real server on loopback: verified webhook ingress and health."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from interlock import PII, Context, Contract, Interlock
from interlock.errors import StoreError
from interlock.gateway.app import Gateway, build_gateway
from interlock.gateway.ingress import Answer
from interlock.gateway.server import server_for

GITHUB_SECRET = "gh-test-secret-1"
OLD_SECRET = "gh-test-secret-0"
STRIPE_SECRET = "whsec_test_stripe"


class IssueOpened(Contract, event="issue.opened", subject="issue_id"):
    issue_id: int
    title: str
    reporter_email: PII[str]


class InvoiceFailed(Contract, event="invoice.payment_failed", subject="invoice_id"):
    invoice_id: str
    amount_due: int


def build_app(path: Path) -> tuple[Interlock, list[int]]:
    app = Interlock("gw", f"sqlite:///{path}")
    handled: list[int] = []
    github = app.webhook("github", verify="github", secret=["github-secret", "github-old"])

    @github.maps("issues")
    def issues(body: dict[str, Any]) -> IssueOpened | None:
        if body.get("action") != "opened":
            return None
        issue = body["issue"]
        return IssueOpened(
            issue_id=issue["number"], title=issue["title"], reporter_email=issue["email"]
        )

    stripe = app.webhook("stripe", verify="stripe", secret="stripe-secret", max_body_bytes=4096)

    @stripe.maps("invoice.payment_failed")
    def failed(body: dict[str, Any]) -> InvoiceFailed:
        obj = body["data"]["object"]
        return InvoiceFailed(invoice_id=obj["id"], amount_due=obj["amount_due"])

    multi = app.webhook("multi", verify="github", secret="github-secret")

    @multi.maps()
    def both(body: dict[str, Any]) -> list[InvoiceFailed]:
        return [InvoiceFailed(invoice_id=i, amount_due=1) for i in body["invoices"]]

    @app.flow(IssueOpened, owner="dev@acme.test", key="issue_id")
    async def triage(event: IssueOpened, ctx: Context) -> None:
        handled.append(event.issue_id)

    return app, handled


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTERLOCK_SECRET_GITHUB_SECRET", GITHUB_SECRET)
    monkeypatch.setenv("INTERLOCK_SECRET_GITHUB_OLD", OLD_SECRET)
    monkeypatch.setenv("INTERLOCK_SECRET_STRIPE_SECRET", STRIPE_SECRET)


@pytest.fixture
async def served(tmp_path: Path, secrets: None) -> AsyncIterator[tuple[Interlock, str, list[int]]]:
    app, handled = build_app(tmp_path / "gw.db")
    server = server_for(app, "127.0.0.1", 0)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield app, f"http://127.0.0.1:{port}", handled
    server.should_exit = True
    await task
    app.close()


def github_request(
    body: bytes, secret: str = GITHUB_SECRET, delivery: str = "d-1"
) -> dict[str, str]:
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "content-type": "application/json",
        "x-github-event": "issues",
        "x-github-delivery": delivery,
        "x-hub-signature-256": f"sha256={signature}",
    }


def stripe_headers(
    body: bytes, secret: str = STRIPE_SECRET, at: float | None = None
) -> dict[str, str]:
    ts = int(time.time() if at is None else at)
    sig = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return {"content-type": "application/json", "stripe-signature": f"t={ts},v1={sig}"}


ISSUE = orjson.dumps(
    {"action": "opened", "issue": {"number": 7, "title": "Crash", "email": "jo@reporter.test"}}
)


def stored(app: Interlock) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(app.store.path)
    try:
        return conn.execute(
            "SELECT id, source, idempotency_key FROM events ORDER BY seq"
        ).fetchall()
    finally:
        conn.close()


async def test_a_signed_webhook_is_stored_then_acknowledged_once(
    served: tuple[Interlock, str, list[int]],
) -> None:
    app, url, handled = served
    async with httpx.AsyncClient(base_url=url) as client:
        first = await client.post("/hooks/github", content=ISSUE, headers=github_request(ISSUE))
        again = await client.post("/hooks/github", content=ISSUE, headers=github_request(ISSUE))
    assert first.status_code == 202, first.text
    assert again.status_code == 202
    assert first.json()["event_ids"] == again.json()["event_ids"]
    (row,) = stored(app)
    assert row[0] == first.json()["event_ids"][0]
    assert row[1:] == ("github", "d-1")
    from interlock.testing import drain

    await drain(app)
    assert handled == [7]


async def test_rotation_accepts_the_previous_secret(
    served: tuple[Interlock, str, list[int]],
) -> None:
    _, url, _ = served
    async with httpx.AsyncClient(base_url=url) as client:
        response = await client.post(
            "/hooks/github", content=ISSUE, headers=github_request(ISSUE, OLD_SECRET, "d-2")
        )
    assert response.status_code == 202


async def test_rejections_are_problems_and_store_nothing(
    served: tuple[Interlock, str, list[int]],
) -> None:
    app, url, _ = served
    tampered = ISSUE.replace(b"Crash", b"Crush")
    bad_json = b'{"action": "opened", "action": "closed"}'
    cases: list[tuple[str, bytes, dict[str, str], int]] = [
        ("/hooks/github", tampered, github_request(ISSUE), 401),
        ("/hooks/github", ISSUE, github_request(ISSUE, "wrong-secret"), 401),
        ("/hooks/github", ISSUE, {"content-type": "application/json"}, 401),
        ("/hooks/nope", ISSUE, github_request(ISSUE), 404),
        ("/hooks/github", ISSUE, {**github_request(ISSUE), "content-type": "text/plain"}, 415),
        ("/hooks/github", bad_json, github_request(bad_json), 400),
        ("/hooks/stripe", b"x" * 5000, stripe_headers(b"x" * 5000), 413),
    ]
    async with httpx.AsyncClient(base_url=url) as client:
        for path, body, headers, status in cases:
            response = await client.post(path, content=body, headers=headers)
            assert response.status_code == status, (path, status, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
            problem = response.json()
            assert problem["status"] == status
            assert GITHUB_SECRET not in response.text
            assert OLD_SECRET not in response.text
    assert stored(app) == []


async def test_stale_and_future_stripe_timestamps_are_refused(
    served: tuple[Interlock, str, list[int]],
) -> None:
    app, url, _ = served
    body = orjson.dumps(
        {
            "id": "evt_1",
            "type": "invoice.payment_failed",
            "data": {"object": {"id": "in_1", "amount_due": 500}},
        }
    )
    async with httpx.AsyncClient(base_url=url) as client:
        stale = await client.post(
            "/hooks/stripe", content=body, headers=stripe_headers(body, at=time.time() - 301)
        )
        future = await client.post(
            "/hooks/stripe", content=body, headers=stripe_headers(body, at=time.time() + 301)
        )
        fresh = await client.post("/hooks/stripe", content=body, headers=stripe_headers(body))
    assert (stale.status_code, future.status_code, fresh.status_code) == (401, 401, 202)
    assert [r[1:] for r in stored(app)] == [("stripe", "evt_1")]  # topic from the body's type


async def test_contract_failures_name_fields_not_values(
    served: tuple[Interlock, str, list[int]],
) -> None:
    app, url, _ = served
    body = orjson.dumps(
        {
            "action": "opened",
            "issue": {"number": "not-a-number", "title": "x", "email": "secret@reporter.test"},
        }
    )
    unmapped = orjson.dumps({"action": "closed", "issue": {}})
    async with httpx.AsyncClient(base_url=url) as client:
        bad = await client.post("/hooks/github", content=body, headers=github_request(body))
        ignored = await client.post(
            "/hooks/github", content=unmapped, headers=github_request(unmapped, delivery="d-9")
        )
    assert bad.status_code == 422
    problem = bad.json()
    assert [e["field"] for e in problem["errors"]] == ["issue_id"]
    assert "not-a-number" not in bad.text
    assert "secret@reporter.test" not in bad.text
    assert ignored.status_code == 200
    assert ignored.json()["status"] == "ignored"
    assert stored(app) == []


async def test_health_and_readiness(served: tuple[Interlock, str, list[int]]) -> None:
    _, url, _ = served
    async with httpx.AsyncClient(base_url=url) as client:
        health = await client.get("/healthz")
        ready = await client.get("/readyz")
    assert health.json() == {"status": "ok"}
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"


async def test_a_failing_store_answers_503_and_acknowledges_nothing(
    served: tuple[Interlock, str, list[int]],
) -> None:
    app, url, _ = served
    async with httpx.AsyncClient(base_url=url) as client:
        ok = await client.post("/hooks/github", content=ISSUE, headers=github_request(ISSUE))
        assert ok.status_code == 202
        writer = app.store._async_writer._conn
        assert writer is not None
        (pages,) = writer.execute("PRAGMA page_count").fetchone()
        writer.execute(f"PRAGMA max_page_count = {pages}")
        big = orjson.dumps(
            {
                "action": "opened",
                "issue": {"number": 8, "title": "y" * 200_000, "email": "a@b.test"},
            }
        )
        github = app.sources["github"]
        github.max_body_bytes = 1_000_000
        down = await client.post(
            "/hooks/github", content=big, headers=github_request(big, delivery="d-big")
        )
        writer.execute("PRAGMA max_page_count = 1073741823")
    assert down.status_code == 503
    assert down.headers["retry-after"] == "1"
    assert [r[2] for r in stored(app)] == ["d-1"]


async def test_random_requests_never_get_a_server_error_nor_store_anything(
    served: tuple[Interlock, str, list[int]],
) -> None:
    import random

    app, url, _ = served
    rng = random.Random(20261127)
    content_types = [
        "application/json",
        "text/plain",
        "application/x+json",
        "",
        "application/json; charset=latin-1",
    ]
    fragments = [
        b"{",
        b"}",
        b"[",
        b'"a":',
        b"1e999",
        b"NaN",
        b"\x00",
        b"\xff\xfe",
        b'"\\u0000"',
        b"9" * 5000,
    ]
    async with httpx.AsyncClient(base_url=url) as client:
        for i in range(150):
            body = b"".join(rng.choice(fragments) for _ in range(rng.randrange(0, 8)))
            if rng.random() < 0.3:
                body = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 300)))
            headers = {"content-type": rng.choice(content_types)}
            if rng.random() < 0.5:
                headers.update(github_request(body, delivery=f"fuzz-{i}"))
                headers["content-type"] = rng.choice(content_types)
            if rng.random() < 0.2:
                headers["x-hub-signature-256"] = "sha256=" + "0" * rng.randrange(0, 80)
            path = rng.choice(
                ["/hooks/github", "/hooks/stripe", "/hooks/github/issues", "/hooks/x"]
            )
            response = await client.post(path, content=body, headers=headers)
            assert response.status_code < 500 or response.status_code == 503, response.text
        assert (await client.get("/healthz")).status_code == 200
    assert stored(app) == []


async def test_one_payload_can_carry_several_events_stored_together(
    served: tuple[Interlock, str, list[int]],
) -> None:
    app, url, _ = served
    body = orjson.dumps({"invoices": ["in_1", "in_2"]})
    async with httpx.AsyncClient(base_url=url) as client:
        first = await client.post("/hooks/multi", content=body, headers=github_request(body))
        again = await client.post("/hooks/multi", content=body, headers=github_request(body))
    assert first.status_code == 202, first.text
    assert len(first.json()["event_ids"]) == 2
    assert again.json()["event_ids"] == first.json()["event_ids"]
    assert [r[2] for r in stored(app)] == ["d-1", "d-1#1"]


async def test_metrics_count_webhooks_and_read_the_store(
    served: tuple[Interlock, str, list[int]],
) -> None:
    _, url, _ = served
    async with httpx.AsyncClient(base_url=url) as client:
        await client.post("/hooks/github", content=ISSUE, headers=github_request(ISSUE))
        await client.post("/hooks/github", content=ISSUE, headers=github_request(ISSUE, "bad"))
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'interlock_webhooks_accepted_total{source="github"} 1.0' in text
    assert 'interlock_webhooks_rejected_total{reason="bad_signature",source="github"} 1.0' in text
    assert 'interlock_deliveries{flow="triage",status="pending"} 1.0' in text
    assert "interlock_store_up 1.0" in text
    assert 'interlock_dead_letters{flow="triage"} 0.0' in text
    assert GITHUB_SECRET not in text


async def test_a_store_that_falls_behind_sheds_load_with_503_and_loses_nothing_acknowledged(
    tmp_path: Path, secrets: None
) -> None:
    app, _ = build_app(tmp_path / "shed.db")
    app.store.ensure_schema()
    server = server_for(app, "127.0.0.1", 0)
    server.config.app.state.ingress.max_backlog = 4
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    locker = sqlite3.connect(app.store.path, isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")  # another process holds the write lock for a while
    try:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:

            async def send(i: int) -> httpx.Response:
                body = orjson.dumps(
                    {"action": "opened", "issue": {"number": i, "title": "t", "email": "e@x.t"}}
                )
                headers = github_request(body, delivery=f"s-{i}")
                return await client.post("/hooks/github", content=body, headers=headers)

            pending = [asyncio.create_task(send(i)) for i in range(40)]
            await asyncio.sleep(1.0)
            locker.execute("ROLLBACK")
            answers = await asyncio.gather(*pending)
    finally:
        locker.close()
        server.should_exit = True
        await task
    try:
        assert sorted({a.status_code for a in answers}) == [202, 503]
        shed = [a for a in answers if a.status_code == 503]
        assert all(a.json()["type"].endswith("/overloaded") for a in shed)
        assert all(a.headers["retry-after"] == "1" for a in shed)
        accepted = {a.json()["event_ids"][0] for a in answers if a.status_code == 202}
        assert {row[0] for row in stored(app)} == accepted
    finally:
        app.close()


async def test_a_source_secret_may_come_from_the_encrypted_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from interlock.secrets import KEY_VARIABLE, new_key

    monkeypatch.setenv(KEY_VARIABLE, new_key())
    monkeypatch.setenv("INTERLOCK_SECRET_STRIPE_SECRET", STRIPE_SECRET)
    for name in ("GITHUB_SECRET", "GITHUB_OLD"):
        monkeypatch.delenv(f"INTERLOCK_SECRET_{name}", raising=False)
    app, _ = build_app(tmp_path / "stored.db")
    app.secrets.set("github-secret", GITHUB_SECRET, actor="ops", now=time.time())
    app.secrets.set("github-old", OLD_SECRET, actor="ops", now=time.time())
    server = server_for(app, "127.0.0.1", 0)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    try:
        async with httpx.AsyncClient(base_url=url) as client:
            good = await client.post("/hooks/github", content=ISSUE, headers=github_request(ISSUE))
            bad = await client.post(
                "/hooks/github", content=ISSUE, headers=github_request(ISSUE, "nope", "d-9")
            )
    finally:
        server.should_exit = True
        await task
        app.close()
    assert good.status_code == 202, good.text
    assert bad.status_code == 401


# -- the lean path for webhooks ------------------------------------------------------------
def via_fastapi(gateway: Gateway) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """``gateway`` without its lean path: every request through FastAPI's routing."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await FastAPI.__call__(gateway, scope, receive, send)

    return app


def comparable(response: httpx.Response) -> tuple[Any, ...]:
    """A response with what differs between two stores (event ids) masked."""
    body = response.content
    if response.headers.get("content-type") == "application/json":
        data = response.json()
        if "event_ids" in data:
            data["event_ids"] = [len(i) for i in data["event_ids"]]
        body = orjson.dumps(data)
    headers = {k: v for k, v in response.headers.items() if k != "x-correlation-id"}
    return response.status_code, headers, body, "x-correlation-id" in response.headers


async def test_webhooks_take_the_lean_path_and_answer_exactly_as_through_fastapi(
    tmp_path: Path, secrets: None
) -> None:
    lean_app, _ = build_app(tmp_path / "lean.db")
    full_app, _ = build_app(tmp_path / "full.db")
    lean, full = build_gateway(lean_app), build_gateway(full_app)
    tampered = ISSUE.replace(b"Crash", b"Crush")
    unmapped = orjson.dumps({"action": "closed", "issue": {}})
    invoice = orjson.dumps(
        {"id": "evt_1", "type": "x", "data": {"object": {"id": "in_1", "amount_due": 5}}}
    )
    several = orjson.dumps({"invoices": ["in_1", "in_2"]})
    cases: list[tuple[str, bytes, dict[str, str]]] = [
        ("/hooks/github", ISSUE, github_request(ISSUE)),
        ("/hooks/github", ISSUE, github_request(ISSUE)),  # the vendor's retry
        ("/hooks/github/issues", ISSUE, github_request(ISSUE, delivery="d-2")),
        ("/hooks/github/", ISSUE, github_request(ISSUE, delivery="d-3")),  # topic ""
        ("/hooks/github/a/b", ISSUE, github_request(ISSUE, delivery="d-4")),
        ("/hooks/github", tampered, github_request(ISSUE)),
        ("/hooks/github", ISSUE, {"content-type": "application/json"}),
        ("/hooks/github", unmapped, github_request(unmapped, delivery="d-5")),
        ("/hooks/nope", ISSUE, github_request(ISSUE)),
        ("/hooks/gith%75b", ISSUE, github_request(ISSUE, delivery="d-6")),
        ("/hooks/github", ISSUE, {**github_request(ISSUE), "content-type": "text/plain"}),
        ("/hooks/github", b'{"a": 1, "a": 2}', github_request(b'{"a": 1, "a": 2}')),
        ("/hooks/stripe", invoice, stripe_headers(invoice)),
        ("/hooks/stripe", b"x" * 5000, stripe_headers(b"x" * 5000)),
        ("/hooks/stripe", invoice, {**stripe_headers(invoice), "content-length": "12x"}),
        ("/hooks/multi", several, github_request(several)),
        ("/hooks/", ISSUE, github_request(ISSUE)),  # no source: not a webhook route
        ("/hooks", ISSUE, github_request(ISSUE)),
    ]
    try:
        async with (
            httpx.AsyncClient(transport=httpx.ASGITransport(app=lean), base_url="http://t") as a,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=via_fastapi(full)), base_url="http://t"
            ) as b,
        ):
            for path, body, headers in cases:
                answers = [await c.post(path, content=body, headers=headers) for c in (a, b)]
                assert comparable(answers[0]) == comparable(answers[1]), path
            # Other methods on a webhook path are FastAPI's (405 with Allow).
            got = await a.get("/hooks/github")
            assert (got.status_code, got.headers["allow"]) == (405, "POST")
            assert lean.middleware_stack is not None  # built for that GET only
        assert [r[1:] for r in stored(lean_app)] == [r[1:] for r in stored(full_app)]
        assert lean.openapi() == full.openapi()
    finally:
        lean_app.close()
        full_app.close()


async def test_the_lean_path_skips_fastapi(tmp_path: Path, secrets: None) -> None:
    app, _ = build_app(tmp_path / "lean.db")
    gateway = build_gateway(app)
    try:
        transport = httpx.ASGITransport(app=gateway)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.post(
                "/hooks/github", content=ISSUE, headers=github_request(ISSUE)
            )
        assert response.status_code == 202
        assert response.headers["x-correlation-id"].startswith("cor_")
        assert gateway.middleware_stack is None  # FastAPI never ran
    finally:
        app.close()


async def test_the_lean_path_keeps_the_store_and_crash_handlers(
    tmp_path: Path, secrets: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, _ = build_app(tmp_path / "lean.db")
    gateway = build_gateway(app)
    ingress = gateway.state.ingress

    async def store_down(request: Request) -> Answer:
        raise StoreError("disk I/O error")

    async def crash(request: Request) -> Answer:
        raise RuntimeError("a bug")

    transport = httpx.ASGITransport(app=gateway, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            monkeypatch.setattr(ingress, "answer", store_down)
            down = await client.post(
                "/hooks/github", content=ISSUE, headers={"x-correlation-id": "c-1"}
            )
            monkeypatch.setattr(ingress, "answer", crash)
            crashed = await client.post(
                "/hooks/github", content=ISSUE, headers={"x-correlation-id": "c-2"}
            )
    finally:
        app.close()
    assert down.status_code == 503
    assert down.headers["retry-after"] == "1"
    assert down.headers["x-correlation-id"] == "c-1"
    assert down.json()["type"].endswith("/overloaded")
    assert crashed.status_code == 500
    assert crashed.headers["content-type"] == "application/problem+json"
    assert crashed.headers["x-correlation-id"] == "c-2"
    assert "a bug" not in crashed.text


# -- secrets prepared once, changes taken at once -------------------------------------------
async def test_a_changed_secret_in_the_environment_takes_effect_on_the_next_request(
    tmp_path: Path, secrets: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, _ = build_app(tmp_path / "env.db")
    gateway = build_gateway(app)
    transport = httpx.ASGITransport(app=gateway)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:

            async def post(secret: str, delivery: str) -> int:
                headers = github_request(ISSUE, secret, delivery)
                return (
                    await client.post("/hooks/github", content=ISSUE, headers=headers)
                ).status_code

            assert await post(GITHUB_SECRET, "d-1") == 202
            monkeypatch.setenv("INTERLOCK_SECRET_GITHUB_SECRET", "rotated-secret")
            assert await post(GITHUB_SECRET, "d-2") == 401
            assert await post("rotated-secret", "d-3") == 202
            assert await post(OLD_SECRET, "d-4") == 202  # the second name still resolves
            monkeypatch.delenv("INTERLOCK_SECRET_GITHUB_OLD")
            monkeypatch.delenv("INTERLOCK_SECRET_GITHUB_SECRET")
            assert await post("rotated-secret", "d-5") == 503  # not configured any more
            monkeypatch.setenv("INTERLOCK_SECRET_GITHUB_SECRET", GITHUB_SECRET)
            monkeypatch.setenv("INTERLOCK_SECRET_GITHUB_OLD", OLD_SECRET)
            assert await post(GITHUB_SECRET, "d-6") == 202
    finally:
        app.close()
    assert [r[2] for r in stored(app)] == ["d-1", "d-3", "d-4", "d-6"]


async def test_a_secret_changed_in_the_store_by_another_process_takes_effect_within_its_ttl(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from interlock.secrets import KEY_VARIABLE, new_key

    monkeypatch.setenv(KEY_VARIABLE, new_key())
    for name in ("GITHUB_SECRET", "GITHUB_OLD"):
        monkeypatch.delenv(f"INTERLOCK_SECRET_{name}", raising=False)
    app, _ = build_app(tmp_path / "stored.db")
    app.secrets.set("github-secret", GITHUB_SECRET, actor="ops", now=time.time())
    app.secrets.set("github-old", OLD_SECRET, actor="ops", now=time.time())
    app.secrets.cache_ttl = 0.3
    other, _ = build_app(tmp_path / "stored.db")  # another process on the same store
    gateway = build_gateway(app)
    transport = httpx.ASGITransport(app=gateway)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:

            async def post(secret: str, delivery: str) -> int:
                headers = github_request(ISSUE, secret, delivery)
                return (
                    await client.post("/hooks/github", content=ISSUE, headers=headers)
                ).status_code

            assert await post(GITHUB_SECRET, "d-1") == 202
            other.secrets.set("github-secret", "from-the-store", actor="ops", now=time.time())
            assert await post(GITHUB_SECRET, "d-2") == 202  # still cached here
            await asyncio.sleep(0.4)
            assert await post(GITHUB_SECRET, "d-3") == 401
            assert await post("from-the-store", "d-4") == 202
            app.secrets.set("github-secret", "set-here", actor="ops", now=time.time())
            assert await post("set-here", "d-5") == 202  # this process forgets at once
    finally:
        app.close()
        other.close()
