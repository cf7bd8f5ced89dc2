"""Connectors inside flows, run by a worker: idempotency keys stable across a retried
delivery, dry-run sending nothing, correlation and trace headers, dead letters with the
vendor's (redacted) reason, and deliveries paused while a connection needs re-authorization."""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any

import pytest

from interlock import PII, Context, Contract, Interlock, Retry, SyncContext
from interlock.connectors import (
    ApiKey,
    HttpConnector,
    OAuth2RefreshToken,
    Timeouts,
)
from interlock.sandbox import GenericSimulator
from interlock.stores.base import DeadFilter
from interlock.testing import drain


class OrderPlaced(Contract, event="order.placed", subject="order_id"):
    order_id: str
    email: PII[str]


def step_key(event_id: str, flow: str, name: str) -> str:
    return "il_" + hashlib.sha256(f"{event_id}/{flow}/{name}".encode()).hexdigest()[:40]


def crm_for(app: Interlock, generic: GenericSimulator, **options: Any) -> HttpConnector:
    options.setdefault("auth", ApiKey(secret="generic-key"))
    return app.connector(HttpConnector("crm", base_url=generic.url, **options))


async def test_idempotency_keys_are_stable_across_a_retried_delivery(
    fake_app: Interlock, generic: GenericSimulator
) -> None:
    crm = crm_for(fake_app, generic, timeouts=Timeouts(total="0.3s"))

    @fake_app.flow(OrderPlaced, owner="revops@acme.test", retry=Retry(attempts=3))
    async def push(event: OrderPlaced, ctx: Context) -> None:
        crm = ctx.connector("crm")
        await crm.post("/v1/audit", {"order": event.order_id})  # outside any step
        if ctx.attempt == 1:  # the vendor does the work, but its answer never arrives
            generic.faults.timeout(1, hold=2.0, effect=True)
        await ctx.step("create-order", crm.post, "/v1/orders", {"ref": event.order_id})

    eid = await fake_app.emit(OrderPlaced(order_id="o-1", email="jo@example.test"))
    worker = await drain(fake_app, advance=True)
    assert (worker.counters.succeeded, worker.counters.retried) == (1, 1)
    first, second = generic.requests.matching("POST", "/v1/orders")
    assert first.idempotency_key == second.idempotency_key == step_key(eid, "push", "create-order")
    assert first.status is None, "the first answer was never delivered"
    assert second.response_headers["idempotent-replayed"] == "true"
    (order,) = generic.state["orders"].values()
    assert second.response_json() == order, "the same answer, and only one order"
    audits = generic.requests.matching("POST", "/v1/audit")
    assert [a.idempotency_key for a in audits] == [step_key(eid, "push", "@1")] * 2
    assert len(generic.state["audit"]) == 1
    await crm.aclose()


@pytest.mark.parametrize("switch", ["connector", "flow", "app"])
async def test_dry_run_sends_nothing_that_changes_the_vendor(
    switch: str, fake_app: Interlock, generic: GenericSimulator
) -> None:
    crm = crm_for(fake_app, generic, dry_run=switch == "connector")
    fake_app.dry_run = switch == "app"
    if switch == "flow":
        fake_app.dry_run_flows.add("push")
    generic.state["customers"] = {"c1": {"id": "c1", "name": "Ada"}}
    results: list[Any] = []

    @fake_app.flow(OrderPlaced, owner="revops@acme.test")
    async def push(event: OrderPlaced, ctx: Context) -> None:
        crm = ctx.connector(HttpConnector)
        customer = await ctx.step("find", crm.get, "/v1/customers/c1")
        made = await ctx.step("create", crm.post, "/v1/orders", {"customer": customer["id"]})
        await crm.patch("/v1/customers/c1", {"last_order": made["id"]})
        await crm.delete("/v1/customers/c1")
        results.append(made)

    eid = await fake_app.emit(OrderPlaced(order_id="o-1", email="jo@example.test"))
    await drain(fake_app)
    assert [(e.method, e.path) for e in generic.requests.all()] == [("GET", "/v1/customers/c1")]
    assert generic.state["customers"]["c1"] == {"id": "c1", "name": "Ada"}
    (made,) = results
    assert made["customer"] == "c1" and made["id"].startswith("dry_")
    create, patch, delete = crm.dry_runs
    assert (create.method, create.url, create.body) == (
        "POST",
        generic.url + "/v1/orders",
        {"customer": "c1"},
    )
    assert create.idempotency_key == step_key(eid, "push", "create")
    assert create.answer["status"] == 201 and create.flow == "push"
    assert patch.body == {"last_order": made["id"]} and delete.answer == {
        "status": 204,
        "body": None,
    }
    assert "x-api-key" not in create.headers and "authorization" not in create.headers
    await crm.aclose()


async def test_calls_carry_the_correlation_id_and_a_trace(
    fake_app: Interlock, generic: GenericSimulator
) -> None:
    crm = crm_for(fake_app, generic)

    @fake_app.flow(OrderPlaced, owner="revops@acme.test")
    async def push(event: OrderPlaced, ctx: Context) -> None:
        await crm.get("/v1/customers")  # the module-level connector knows the delivery too
        await ctx.connector("crm").post("/v1/orders", {})

    await fake_app.emit(OrderPlaced(order_id="o-1", email="jo@example.test"), correlation_id="c-77")
    await drain(fake_app)
    trace_id = hashlib.sha256(b"c-77").hexdigest()[:32]
    for exchange in generic.requests.all():
        assert exchange.headers["x-correlation-id"] == "c-77"
        version, trace, span, flags = exchange.headers["traceparent"].split("-")
        assert (version, trace, len(span), flags) == ("00", trace_id, 16, "01")
    await crm.aclose()


async def test_vendor_refusals_dead_letter_with_a_redacted_reason(
    fake_app: Interlock, generic: GenericSimulator
) -> None:
    crm = crm_for(fake_app, generic)

    @fake_app.flow(OrderPlaced, owner="revops@acme.test", on_dead="skip")
    async def push(event: OrderPlaced, ctx: Context) -> None:
        await ctx.connector("crm").get(f"/v1/customers/{event.email}")

    await fake_app.emit(OrderPlaced(order_id="o-1", email="jo@example.test"))
    await drain(fake_app, advance=True)
    (dead,) = fake_app.store.list_dead(DeadFilter())
    assert dead.error_class == "permanent" and dead.attempts == 1
    assert dead.reason == (
        "ResourceNotFound: crm GET /v1/customers/{id} → HTTP 404: not_found customers "
        "[redacted] not found"
    )
    await crm.aclose()


async def test_a_connection_needing_reauthorization_pauses_its_deliveries(
    fake_app: Interlock, generic: GenericSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INTERLOCK_SECRET_CRM_CLIENT_SECRET", "generic-sandbox-secret")
    fake_app.secrets.set("crm-refresh-token", "rt_revoked", actor="ops", now=time.time())
    auth = OAuth2RefreshToken(
        token_url="/oauth/token",
        client_id="generic-sandbox-client",
        client_secret="crm-client-secret",
        refresh_token="crm-refresh-token",
        reauth_retry="10m",
    )
    crm = crm_for(fake_app, generic, auth=auth)

    @fake_app.flow(OrderPlaced, owner="revops@acme.test", retry=Retry(attempts=2))
    async def push(event: OrderPlaced, ctx: Context) -> None:
        await ctx.connector("crm").get("/v1/customers")

    for n in range(5):
        await fake_app.emit(OrderPlaced(order_id=f"o-{n}", email="jo@example.test"))
    await drain(fake_app)
    deliveries = fake_app.store.list_deliveries()
    assert {d.status for d in deliveries} == {"pending"}, "paused, not dead"
    assert {d.error_class for d in deliveries} == {"rate_limited"}
    assert all(d.attempts == 0 for d in deliveries), "the retry budget is untouched"
    token_requests = generic.requests.matching("POST", "/oauth/token")
    assert len(token_requests) == 1, "one refusal; the others were paused without calling"

    fake_app.secrets.set(
        "crm-refresh-token", generic.credentials["refresh_token"], actor="ops", now=time.time()
    )
    await drain(fake_app, advance=True)
    assert {d.status for d in fake_app.store.list_deliveries()} == {"succeeded"}
    await crm.aclose()


def test_sync_flows_get_blocking_connectors(fake_app: Interlock, generic: GenericSimulator) -> None:
    crm = crm_for(fake_app, generic)

    @fake_app.flow(OrderPlaced, owner="revops@acme.test")
    def push(event: OrderPlaced, ctx: SyncContext) -> None:
        made = ctx.step("create", ctx.connector("crm").post, "/v1/orders", {"ref": event.order_id})
        assert made["ref"] == event.order_id

    async def run() -> str:
        eid = await fake_app.emit(OrderPlaced(order_id="o-9", email="jo@example.test"))
        await drain(fake_app)
        await crm.aclose()
        return eid

    eid = asyncio.run(run())
    (sent,) = generic.requests.all()
    assert sent.idempotency_key == step_key(eid, "push", "create")
    assert fake_app.store.list_deliveries()[0].status == "succeeded"
