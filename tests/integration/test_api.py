"""The REST API on a real server on loopback: reads, paging, PII masking, roles, audit."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from interlock import PII, Contract, Interlock, Permanent
from interlock.gateway.server import server_for
from interlock.testing import drain


class CustomerSignedUp(Contract, event="customer.signed_up", subject="email"):
    email: PII[str]
    plan: str


class OrderPlaced(Contract, event="order.placed", subject="order_id"):
    order_id: str
    total: int
    buyer_email: PII[str]


@dataclass
class Served:
    app: Interlock
    url: str
    tokens: dict[str, str]

    def client(self, role: str | None = None) -> httpx.AsyncClient:
        headers = {} if role is None else {"authorization": f"Bearer {self.tokens[role]}"}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=10)


def build_app(path: Path) -> Interlock:
    app = Interlock("api", f"sqlite:///{path}")

    @app.flow(OrderPlaced, owner="orders@acme.test", key="order_id")
    async def bill(event: OrderPlaced) -> None:
        if event.total < 0:
            raise Permanent(f"negative total for {event.buyer_email}")

    @app.flow(CustomerSignedUp, owner="growth@acme.test", key="email", on_dead="skip")
    async def welcome(event: CustomerSignedUp) -> None:
        return None

    return app


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    app = build_app(tmp_path / "api.db")
    app.store.ensure_schema()
    now = time.time()
    tokens = {
        role: app.store.create_token_sync(f"{role}-token", role, actor="test", now=now).secret
        for role in ("viewer", "operator", "admin")
    }
    server = server_for(app, "127.0.0.1", 0)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield Served(app, f"http://127.0.0.1:{port}", tokens)
    server.should_exit = True
    await task
    app.close()


async def dead_orders(app: Interlock, n: int) -> list[int]:
    for i in range(n):
        await app.emit(OrderPlaced(order_id=f"o-{i}", total=-1, buyer_email=f"b{i}@x.test"))
    await drain(app)
    return sorted(d.id for d in app.store.list_deliveries(status="dead"))


# -- authentication and roles -------------------------------------------------------------

MUTATIONS: list[tuple[str, str, dict[str, Any] | None, str]] = [
    ("POST", "/api/v1/dead-letters/{id}/replay", {"reason": "fixed"}, "operator"),
    ("POST", "/api/v1/dead-letters/{id}/discard", {"reason": "obsolete"}, "operator"),
    ("POST", "/api/v1/dead-letters/replay", {"reason": "fixed", "all": True}, "operator"),
    ("POST", "/api/v1/dead-letters/discard", {"reason": "obsolete", "all": True}, "operator"),
    ("POST", "/api/v1/tokens", {"name": "new", "role": "viewer"}, "admin"),
    ("DELETE", "/api/v1/tokens/viewer-token", None, "admin"),
]


@pytest.mark.parametrize(("method", "path", "body", "needed"), MUTATIONS)
async def test_every_mutation_refuses_missing_and_weak_tokens(
    served: Served, method: str, path: str, body: dict[str, Any] | None, needed: str
) -> None:
    (dead,) = await dead_orders(served.app, 1)
    path = path.format(id=dead)
    weaker = ["viewer"] if needed == "operator" else ["viewer", "operator"]
    async with served.client() as anonymous:
        answer = await anonymous.request(method, path, json=body)
        assert answer.status_code == 401
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.headers["www-authenticate"].startswith("Bearer")
        assert answer.json()["reason"] == "missing_token"
    async with served.client() as forged:
        forged.headers["authorization"] = "Bearer ilk_0000000000000000_" + "x" * 43
        answer = await forged.request(method, path, json=body)
        assert answer.status_code == 401
        assert answer.json()["reason"] == "invalid_token"
    for role in weaker:
        async with served.client(role) as weak:
            answer = await weak.request(method, path, json=body)
            assert answer.status_code == 403, role
            assert needed in answer.json()["detail"]
    # Nothing happened: the dead letter is still dead, no token changed, nothing audited.
    assert served.app.store.get_delivery(dead).status == "dead"
    assert len(served.app.store.list_tokens()) == 3
    assert [a.action for a in served.app.store.list_audit()] == [
        "token.create",
        "token.create",
        "token.create",
    ]
    async with served.client(needed) as allowed:
        answer = await allowed.request(method, path, json=body)
        assert answer.status_code in (200, 201), answer.text
    newest = served.app.store.list_audit(1)[0]
    assert newest.actor == f"token:{needed}-token"
    assert newest.action in ("dlq.replay", "dlq.discard", "token.create", "token.revoke")


async def test_refusals_are_counted_on_metrics_and_never_echo_the_token(served: Served) -> None:
    async with served.client() as client:
        client.headers["authorization"] = "Bearer not-a-token-at-all"
        assert (await client.get("/api/v1/events")).status_code == 401
        text = (await client.get("/metrics")).text
    assert 'interlock_api_refused_total{reason="invalid_token"} 1.0' in text
    assert "not-a-token-at-all" not in text


async def test_a_revoked_token_stops_working_at_once(served: Served) -> None:
    async with served.client("admin") as admin:
        created = await admin.post("/api/v1/tokens", json={"name": "ci", "role": "viewer"})
        assert created.status_code == 201
        secret = created.json()["token"]
        assert secret.startswith("ilk_")
        headers = {"authorization": f"Bearer {secret}"}
        assert (await admin.get("/api/v1/events", headers=headers)).status_code == 200
        duplicate = await admin.post("/api/v1/tokens", json={"name": "ci", "role": "admin"})
        assert duplicate.status_code == 409
        revoked = await admin.request("DELETE", "/api/v1/tokens/ci", params={"reason": "leaked"})
        assert revoked.status_code == 200
        assert revoked.json()["revoked_by"] == "token:admin-token"
        assert (await admin.get("/api/v1/events", headers=headers)).status_code == 401
        again = await admin.request("DELETE", "/api/v1/tokens/ci")
        assert again.status_code == 404
        listed = (await admin.get("/api/v1/tokens", params={"include_revoked": True})).json()
    assert "token" not in listed[0]
    (audited,) = served.app.store.list_audit(1, action="token.revoke")
    assert (audited.actor, audited.reason) == ("token:admin-token", "leaked")
    assert served.app.store.token_for(secret) is None


# -- reads -----------------------------------------------------------------------------------


async def test_events_page_newest_first_with_cursors_and_filters(served: Served) -> None:
    app = served.app
    ids = [
        await app.emit(OrderPlaced(order_id=f"o-{i}", total=i, buyer_email="b@x.test"))
        for i in range(7)
    ]
    signup = await app.emit(
        CustomerSignedUp(email="jane@acme.test", plan="pro"), correlation_id="corr-1"
    )
    async with served.client("viewer") as client:
        seen: list[str] = []
        cursor: str | None = None
        pages = 0
        while True:
            params: dict[str, Any] = {"type": "order.placed", "limit": 3}
            if cursor:
                params["cursor"] = cursor
            page = (await client.get("/api/v1/events", params=params)).json()
            seen.extend(item["id"] for item in page["items"])
            pages += 1
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert pages == 3
        assert seen == list(reversed(ids))
        by_subject = (await client.get("/api/v1/events", params={"subject": "o-3"})).json()
        assert [e["id"] for e in by_subject["items"]] == [ids[3]]
        by_correlation = await client.get("/api/v1/events", params={"correlation_id": "corr-1"})
        assert [e["id"] for e in by_correlation.json()["items"]] == [signup]
        future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        later = (await client.get("/api/v1/events", params={"since": future})).json()
        assert later == {"items": [], "next_cursor": None}
        everything = await client.get("/api/v1/events", params={"until": future, "limit": 500})
        assert len(everything.json()["items"]) == 8
        bad = await client.get("/api/v1/events", params={"cursor": "garbage!"})
        assert bad.status_code == 400
        assert bad.json()["errors"][0]["field"] == "cursor"
        too_many = await client.get("/api/v1/events", params={"limit": 100_000})
        assert too_many.status_code == 400
        assert too_many.headers["content-type"] == "application/problem+json"


async def test_payloads_and_subjects_are_masked_where_the_contract_marks_pii(
    served: Served,
) -> None:
    app = served.app
    event_id = await app.emit(CustomerSignedUp(email="jane@acme.test", plan="pro"))
    order = await app.emit(OrderPlaced(order_id="o-9", total=-5, buyer_email="bob@acme.test"))
    await drain(app)
    async with served.client("viewer") as client:
        one = (await client.get(f"/api/v1/events/{event_id}")).json()
        listed = (await client.get("/api/v1/events")).text
        trace = (await client.get("/api/v1/trace/o-9")).json()
        deliveries = (await client.get("/api/v1/deliveries")).text
        dead = (await client.get("/api/v1/dead-letters")).json()
        missing = await client.get("/api/v1/events/evt_nope")
        nothing = await client.get("/api/v1/trace/no-such-subject")
    assert one["data"] == {"email": "[redacted]", "plan": "pro"}
    assert one["subject"] == "customer:[redacted]"
    assert '"subject":"customer:[redacted]"' in deliveries
    for text in (listed, deliveries, str(trace), str(dead)):
        assert "jane@acme.test" not in text
        assert "bob@acme.test" not in text
    assert [e["id"] for e in trace["events"]] == [order]
    assert trace["deliveries"][0]["status"] == "dead"
    assert trace["attempts"][0]["outcome"] == "dead"
    assert dead[0]["reason"] == "Permanent: negative total for [redacted]"
    assert missing.status_code == 404
    assert nothing.status_code == 404


async def test_deliveries_by_status_and_flows_with_state(served: Served) -> None:
    app = served.app
    await dead_orders(app, 2)
    await app.emit(CustomerSignedUp(email="a@acme.test", plan="free"))
    await drain(app)
    await app.emit(CustomerSignedUp(email="b@acme.test", plan="free"))
    async with served.client("viewer") as client:
        dead = (await client.get("/api/v1/deliveries", params={"status": "dead"})).json()
        pending = (await client.get("/api/v1/deliveries", params={"status": "pending"})).json()
        wrong = await client.get("/api/v1/deliveries", params={"status": "lost"})
        flows = {f["name"]: f for f in (await client.get("/api/v1/flows")).json()}
        one = await client.get("/api/v1/flows/bill")
        absent = await client.get("/api/v1/flows/nope")
    assert [d["flow"] for d in dead["items"]] == ["bill", "bill"]
    assert [d["flow"] for d in pending["items"]] == ["welcome"]
    assert wrong.status_code == 400
    assert flows["bill"]["state"] == "blocked"  # on_dead="block": each dead order holds its lane
    assert flows["bill"]["counts"] == {"dead": 2}
    assert flows["bill"]["owner"] == "orders@acme.test"
    assert flows["welcome"]["state"] == "active"
    assert flows["welcome"]["counts"] == {"succeeded": 1, "pending": 1}
    assert one.json() == flows["bill"]
    assert absent.status_code == 404


# -- dead letters ------------------------------------------------------------------------


async def test_replay_and_discard_single_with_dry_run_and_required_reason(served: Served) -> None:
    app = served.app
    first, second = await dead_orders(app, 2)
    async with served.client("operator") as client:
        url = f"/api/v1/dead-letters/{first}/replay"
        no_reason = await client.post(url, json={})
        blank = await client.post(url, json={"reason": "   "})
        dry = await client.post(url, json={"reason": "try", "dry_run": True})
        assert (no_reason.status_code, blank.status_code) == (400, 400)
        assert dry.json() == {"action": "replay", "dry_run": True, "matched": [first], "done": []}
        assert app.store.get_delivery(first).status == "dead"
        assert app.store.list_audit(action="dlq.replay") == []
        done = await client.post(url, json={"reason": "bug fixed"})
        assert done.json()["done"] == [first]
        assert app.store.get_delivery(first).status == "pending"
        conflict = await client.post(url, json={"reason": "again"})
        assert conflict.status_code == 409
        missing = await client.post("/api/v1/dead-letters/999999/replay", json={"reason": "x"})
        assert missing.status_code == 404
        discard = await client.post(
            f"/api/v1/dead-letters/{second}/discard", json={"reason": "order cancelled"}
        )
        assert discard.json()["done"] == [second]
    assert app.store.get_delivery(second).status == "skipped"
    entries = {(a.action, a.target, a.reason, a.actor) for a in app.store.list_audit()}
    assert ("dlq.replay", f"delivery:{first}", "bug fixed", "token:operator-token") in entries
    assert (
        "dlq.discard",
        f"delivery:{second}",
        "order cancelled",
        "token:operator-token",
    ) in entries


async def test_bulk_replay_needs_a_selection_and_honours_it(served: Served) -> None:
    app = served.app
    ids = await dead_orders(app, 4)
    async with served.client("operator") as client:
        unselected = await client.post("/api/v1/dead-letters/replay", json={"reason": "x"})
        assert unselected.status_code == 400
        dry = await client.post(
            "/api/v1/dead-letters/replay", json={"reason": "x", "flow": "bill", "dry_run": True}
        )
        assert dry.json()["matched"] == ids
        assert dry.json()["done"] == []
        picked = await client.post(
            "/api/v1/dead-letters/replay", json={"reason": "retry two", "ids": ids[:2]}
        )
        assert picked.json()["done"] == ids[:2]
        rest = await client.post(
            "/api/v1/dead-letters/discard", json={"reason": "give up", "all": True}
        )
        assert rest.json()["done"] == ids[2:]
        audit = (await client.get("/api/v1/audit", params={"limit": 2})).json()
        older = (
            await client.get("/api/v1/audit", params={"limit": 10, "cursor": audit["next_cursor"]})
        ).json()
    statuses = [app.store.get_delivery(i).status for i in ids]
    assert statuses == ["pending", "pending", "skipped", "skipped"]
    actions = [a["action"] for a in audit["items"] + older["items"]]
    assert actions[:4] == ["dlq.discard", "dlq.discard", "dlq.replay", "dlq.replay"]
    assert len({a["id"] for a in audit["items"] + older["items"]}) == len(actions)


async def test_sources_and_openapi_document_the_surface(served: Served) -> None:
    async with served.client("viewer") as client:
        sources = await client.get("/api/v1/sources")
        spec = (await client.get("/openapi.json")).json()
    assert sources.json() == []
    paths = set(spec["paths"])
    for path in (
        "/hooks/{source}",
        "/api/v1/events",
        "/api/v1/events/{event_id}",
        "/api/v1/trace/{query}",
        "/api/v1/deliveries",
        "/api/v1/dead-letters",
        "/api/v1/dead-letters/{delivery_id}/replay",
        "/api/v1/dead-letters/replay",
        "/api/v1/flows",
        "/api/v1/audit",
        "/api/v1/tokens",
    ):
        assert path in paths, path
    assert spec["components"]["securitySchemes"]["token"]["scheme"] == "bearer"
