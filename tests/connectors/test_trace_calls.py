"""The connector calls of each attempt, in the trace: stored with the attempt that made
them, tagged with their step, shown by the CLI, the dashboard timeline and the REST API,
with nothing of the request but method, path, status, duration and idempotency key."""

from __future__ import annotations

import asyncio
import contextlib

import httpx
import pytest

from interlock import PII, Context, Contract, Interlock, ResourceNotFound, Retry
from interlock import steps as steps_module
from interlock.cli.events import render_trace
from interlock.connectors import Timeouts
from interlock.dashboard.timeline import build_timeline
from interlock.gateway.server import server_for
from interlock.redaction import masked_trace
from interlock.sandbox import GenericSimulator
from interlock.testing import drain

from .test_flows import crm_for, step_key


class OrderPlaced(Contract, event="order.placed", subject="order_id"):
    order_id: str
    email: PII[str]
    phone: PII[str] = "none"


async def test_each_attempt_keeps_its_calls_with_status_duration_key_and_step(
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
        await ctx.step("read-back", crm.get, "/v1/orders", params={"ref": event.order_id})

    eid = await fake_app.emit(OrderPlaced(order_id="o-1", email="jo@example.test"))
    worker = await drain(fake_app, advance=True)
    assert (worker.counters.succeeded, worker.counters.retried) == (1, 1)

    trace = fake_app.store.trace(eid)
    first, second = trace.attempts
    assert (first.outcome, second.outcome) == ("retry", "succeeded")
    audit_key = step_key(eid, "push", "@1")
    order_key = step_key(eid, "push", "create-order")
    assert [
        (c["method"], c["path"], c["status"], c["outcome"], c["step"], c["idempotency_key"])
        for c in first.calls
    ] == [
        ("POST", "/v1/audit", 201, "ok", None, audit_key),
        ("POST", "/v1/orders", None, "retryable", "create-order", order_key),
    ]
    assert [
        (c["method"], c["path"], c["status"], c["outcome"], c["step"], c["idempotency_key"])
        for c in second.calls
    ] == [
        ("POST", "/v1/audit", 201, "ok", None, audit_key),
        ("POST", "/v1/orders", 201, "ok", "create-order", order_key),
        ("GET", "/v1/orders", 200, "ok", "read-back", None),  # no query string kept
    ]
    timed_out = first.calls[1]
    assert 250 <= timed_out["duration_ms"] < 2000, "the total timeout, not the vendor's hold"
    assert {c["connector"] for c in first.calls + second.calls} == {"crm"}
    assert {c["operation"] for c in second.calls} == {
        "POST /v1/audit",
        "POST /v1/orders",
        "GET /v1/orders",
    }
    for attempt in (first, second):
        for call in attempt.calls:
            assert attempt.started_at <= call["at"] <= attempt.finished_at

    # The dashboard puts a step's calls on the step recorded in that attempt, and the
    # rest (outside steps, or in a step that failed) on the attempt.
    (view,) = build_timeline(fake_app, eid)
    entries = {e.title: e for e in view.deliveries[0].entries}
    assert [c["path"] for c in entries["attempt 1"].calls] == ["/v1/audit", "/v1/orders"]
    assert [c["path"] for c in entries["attempt 2"].calls] == ["/v1/audit"]
    assert [c["status"] for c in entries["step create-order"].calls] == [201]
    assert [c["method"] for c in entries["step read-back"].calls] == ["GET"]

    # The CLI's tree says the same.
    lines = render_lines(fake_app, eid)
    assert any(
        "call crm POST /v1/orders → no answer (retryable)" in line
        and "step create-order" in line
        and order_key in line
        for line in lines
    ), lines
    assert any("call crm POST /v1/orders → 201 in" in line for line in lines), lines
    await crm.aclose()


def render_lines(app: Interlock, query: str) -> list[str]:
    from rich.console import Console

    console = Console(width=400, record=True, color_system=None)
    console.print(render_trace(masked_trace(app.store.trace(query), app)))
    return console.export_text().splitlines()


async def test_paths_in_the_trace_hide_pii_and_dry_runs_are_marked(
    fake_app: Interlock, generic: GenericSimulator
) -> None:
    crm = crm_for(fake_app, generic)
    generic.state["customers"] = {"jo@example.test": {"id": "jo@example.test"}}
    fake_app.dry_run_flows.add("push")

    @fake_app.flow(OrderPlaced, owner="revops@acme.test")
    async def push(event: OrderPlaced, ctx: Context) -> None:
        crm = ctx.connector("crm")
        await crm.get(f"/v1/customers/{event.email}")
        with contextlib.suppress(ResourceNotFound):
            await crm.get(f"/v1/lookup/{event.phone}")
        await ctx.step("create", crm.post, "/v1/orders", {"ref": event.order_id})

    eid = await fake_app.emit(
        OrderPlaced(order_id="o-2", email="jo@example.test", phone="4155550100")
    )
    await drain(fake_app, advance=True)
    raw = fake_app.store.trace(eid).attempts
    assert [c["path"] for c in raw[0].calls[:1]] == ["/v1/customers/[redacted]"], (
        "e-mail-like segments are never stored"
    )
    masked = masked_trace(fake_app.store.trace(eid), fake_app)
    calls = masked.attempts[0].calls
    assert [c["path"] for c in calls] == [
        "/v1/customers/[redacted]",
        "/v1/lookup/[redacted]",  # the event's PII value, masked when shown
        "/v1/orders",
    ]
    lookup, dry = calls[1], calls[2]
    assert (lookup["status"], lookup["outcome"]) == (404, "not_found")
    assert (dry["status"], dry["outcome"], dry["duration_ms"]) == (201, "dry_run", 0.0)
    assert dry["idempotency_key"] == step_key(eid, "push", "create")
    assert not generic.requests.matching("POST", "/v1/orders"), "dry-run sent nothing"
    await crm.aclose()


async def test_a_run_keeps_its_first_calls_only(
    fake_app: Interlock, generic: GenericSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(steps_module, "MAX_CALLS_PER_ATTEMPT", 3)
    crm = crm_for(fake_app, generic)
    generic.state["customers"] = {f"c{n}": {"id": f"c{n}"} for n in range(5)}

    @fake_app.flow(OrderPlaced, owner="revops@acme.test")
    async def push(event: OrderPlaced, ctx: Context) -> None:
        for n in range(5):
            await ctx.connector("crm").get(f"/v1/customers/c{n}")

    eid = await fake_app.emit(OrderPlaced(order_id="o-4", email="jo@example.test"))
    await drain(fake_app)
    (attempt,) = fake_app.store.trace(eid).attempts
    assert attempt.outcome == "succeeded"
    assert [c["path"] for c in attempt.calls] == [f"/v1/customers/c{n}" for n in range(3)]
    assert len(generic.requests.matching("GET", "/v1/customers/c4")) == 1, "all five were made"
    await crm.aclose()


async def test_the_rest_api_trace_lists_each_attempts_calls(
    fake_app: Interlock, generic: GenericSimulator
) -> None:
    crm = crm_for(fake_app, generic)

    @fake_app.flow(OrderPlaced, owner="revops@acme.test")
    async def push(event: OrderPlaced, ctx: Context) -> None:
        await ctx.step("create", ctx.connector("crm").post, "/v1/orders", {"ref": event.order_id})

    eid = await fake_app.emit(OrderPlaced(order_id="o-5", email="jo@example.test"))
    await drain(fake_app)
    token = fake_app.store.create_token_sync("viewer", "viewer", actor="test", now=0.0).secret
    server = server_for(fake_app, "127.0.0.1", 0)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", headers={"authorization": f"Bearer {token}"}
        ) as client:
            trace = (await client.get(f"/api/v1/trace/{eid}")).json()
            schema = (await client.get("/openapi.json")).json()
    finally:
        server.should_exit = True
        await task
    (attempt,) = trace["attempts"]
    (call,) = attempt["calls"]
    assert call["connector"] == "crm" and call["method"] == "POST"
    assert call["path"] == "/v1/orders" and call["status"] == 201 and call["outcome"] == "ok"
    assert call["step"] == "create"
    assert call["idempotency_key"] == step_key(eid, "push", "create")
    assert call["duration_ms"] > 0
    assert call["at"].endswith(("Z", "+00:00"))
    assert "CallOut" in schema["components"]["schemas"]
    await crm.aclose()
