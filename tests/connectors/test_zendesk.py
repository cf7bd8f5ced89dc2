"""The Zendesk connector against the Zendesk simulator: tickets, comments and users; the
Idempotency-Key on ticket creation; every failure classified with Zendesk's error and
description; X-Rate-Limit headers and Retry-After; OAuth bearer tokens that rotate; schema
drift; dry-run in Zendesk's shapes; the probe."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from interlock import PII, Context, Contract, Interlock, Retry
from interlock.connectors import Rate, Timeouts, Zendesk, check
from interlock.errors import (
    ConfigurationError,
    PermissionDenied,
    RateLimited,
    ResourceNotFound,
    VendorRejected,
    VendorUnavailable,
)
from interlock.sandbox import Vendors, ZendeskSimulator, run
from interlock.testing import drain

AGENT = "agent@sandbox.test"


@pytest.fixture(scope="module")
def served_zendesk() -> Iterator[Vendors]:
    with run(("zendesk",)) as vendors:
        yield vendors


@pytest.fixture
def sim(served_zendesk: Vendors, monkeypatch: pytest.MonkeyPatch) -> ZendeskSimulator:
    served_zendesk.reset()
    sim = served_zendesk.zendesk
    monkeypatch.setenv("INTERLOCK_SECRET_ZENDESK_API_TOKEN", sim.credentials["api_token"])
    monkeypatch.setenv("INTERLOCK_SECRET_ZENDESK_CLIENT_SECRET", sim.credentials["client_secret"])
    monkeypatch.setenv("INTERLOCK_SECRET_ZENDESK_REFRESH_TOKEN", sim.credentials["refresh_token"])
    return sim


@pytest.fixture
async def desk(sim: ZendeskSimulator) -> AsyncIterator[Zendesk]:
    connector = Zendesk(
        subdomain="acme",
        email=AGENT,
        base_url=sim.url,
        timeouts=Timeouts(total="0.3s"),
        rate=Rate(50, per="1s"),
    )
    yield connector
    await connector.aclose()


async def test_tickets_comments_and_users(desk: Zendesk, sim: ZendeskSimulator) -> None:
    assert Zendesk(subdomain="acme", email=AGENT).base_url == "https://acme.zendesk.com"
    ticket = await desk.create_ticket(
        "Payment failed",
        "Your card was declined.",
        requester_email="jo@example.test",
        requester_name="Jo",
        priority="high",
        type="incident",
        tags=["billing", "stripe"],
        external_id="pi_123",
        custom_fields={360001: "gold"},
    )
    assert (ticket.subject, ticket.status, ticket.priority, ticket.tags) == (
        "Payment failed",
        "new",
        "high",
        ["billing", "stripe"],
    )
    assert ticket.description == "Your card was declined." and ticket.external_id == "pi_123"
    requester = await desk.find_user("JO@example.test")
    assert requester is not None and ticket.requester_id == requester.id
    sent = sim.requests.matching("POST", "/api/v2/tickets.json")[0]
    assert sent.headers["authorization"].startswith("Basic ")
    assert sent.json()["ticket"]["requester"] == {"email": "jo@example.test", "name": "Jo"}

    solved = await desk.update_ticket(
        ticket.id, status="solved", add_tags=["refunded"], comment="Refunded.", public=False
    )
    assert solved.status == "solved" and "refunded" in solved.tags
    await desk.add_comment(ticket.id, "Thanks for your patience.")
    desk.page_size = 2
    comments = await desk.comments(ticket.id)
    assert [(c.body, c.public) for c in comments] == [
        ("Your card was declined.", True),
        ("Refunded.", False),
        ("Thanks for your patience.", True),
    ]
    pages = sim.requests.matching("GET", f"/api/v2/tickets/{ticket.id}/comments.json")
    assert len(pages) == 2 and "page%5Bafter%5D=" in pages[1].query
    assert (await desk.get_ticket(ticket.id)).status == "solved"

    me = await desk.me()
    assert (me.email, me.role) == (AGENT, "admin")
    ann = await desk.create_user("Ann", email="ann@example.test", external_id="crm-7")
    assert (await desk.get_user(ann.id)).external_id == "crm-7"
    same = await desk.upsert_user("Ann Lee", external_id="crm-7")
    assert (same.id, same.name) == (ann.id, "Ann Lee")
    new = await desk.upsert_user("Bo", email="bo@example.test")
    assert new.id != ann.id and await desk.find_user("nobody@example.test") is None
    await desk.delete_ticket(ticket.id)
    with pytest.raises(ConfigurationError, match="email or an external_id"):
        await desk.upsert_user("Nobody")
    with pytest.raises(ConfigurationError, match="agent's email"):
        Zendesk(subdomain="acme")


async def test_ticket_creation_is_idempotent(desk: Zendesk, sim: ZendeskSimulator) -> None:
    first = await desk.create_ticket("Refund", "Please refund", idempotency_key="t-1")
    again = await desk.create_ticket("Refund", "Please refund", idempotency_key="t-1")
    assert again == first and len(sim.state["tickets"]) == 1
    assert sim.requests.last.response_headers["x-idempotency-lookup"] == "hit"
    with pytest.raises(VendorRejected, match="IdempotentRequestError") as reused:
        await desk.create_ticket("Other", "Something else", idempotency_key="t-1")
    assert reused.value.status == 400
    # Zendesk opens the ticket, but the answer is lost: the retry gets that ticket.
    sim.faults.timeout(1, hold=1.0, effect=True)
    with pytest.raises(VendorUnavailable, match="timeout"):
        await desk.create_ticket("Lost", "answer", idempotency_key="t-2")
    found = await desk.create_ticket("Lost", "answer", idempotency_key="t-2")
    assert len(sim.state["tickets"]) == 2 and found.subject == "Lost"


async def test_failures_keep_zendesks_error_and_description(
    desk: Zendesk, sim: ZendeskSimulator
) -> None:
    with pytest.raises(VendorRejected) as invalid:
        await desk.create_ticket("Bad", "body", priority="mega")  # type: ignore[arg-type]
    assert (invalid.value.status, invalid.value.code) == (422, "RecordInvalid")
    assert "RecordInvalid Record validation errors: Priority: is not valid" in str(invalid.value)
    with pytest.raises(VendorRejected, match="Description: cannot be blank"):
        await desk.create_ticket("Blank", "")
    ticket = await desk.create_ticket("Done", "body", status="closed")
    with pytest.raises(VendorRejected, match="closed prevents ticket update"):
        await desk.add_comment(ticket.id, "too late")
    await desk.create_user("Ann", email="ann@example.test")
    with pytest.raises(VendorRejected, match="is already being used by another user"):
        await desk.create_user("Ann again", email="ann@example.test")
    with pytest.raises(ResourceNotFound, match="404: RecordNotFound Not found") as nf:
        await desk.get_ticket(999999)
    assert nf.value.code == "RecordNotFound"
    sim.faults.fail(1, status=403)
    with pytest.raises(PermissionDenied, match="403"):
        await desk.me()
    sim.faults.fail(1, status=500)
    with pytest.raises(VendorUnavailable, match="500: InternalServerError"):
        await desk.me()
    sim.faults.reset(1)
    with pytest.raises(VendorUnavailable, match="connection_reset"):
        await desk.me()
    sim.faults.outage(5.0)
    with pytest.raises(VendorUnavailable, match="503: ServiceUnavailable"):
        await desk.me()
    sim.faults.clear()
    assert desk.runtime.metrics.headroom["zendesk"] > 0, "X-Rate-Limit-Remaining read"
    sim.faults.rate_limit(1, retry_after=2)
    with pytest.raises(RateLimited) as limited:
        await desk.me()
    assert limited.value.retry_after == 2.0


async def test_bad_credentials_are_permission_denied(
    sim: ZendeskSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INTERLOCK_SECRET_OLD_TOKEN", "zendesk-revoked-token")
    desk = Zendesk(subdomain="acme", email=AGENT, api_token="old-token", base_url=sim.url)
    try:
        with pytest.raises(PermissionDenied, match="401: Couldn't authenticate you") as denied:
            await desk.me()
        assert "zendesk-revoked-token" not in str(denied.value)
        (result,) = await check(desk)
        assert (result.ok, result.auth) == (False, "denied")
    finally:
        await desk.aclose()


def answer(status: int, body: object, **headers: str) -> httpx.Response:
    request = httpx.Request("PUT", "https://acme.zendesk.com/api/v2/tickets/1.json")
    return httpx.Response(status, json=body, headers=headers, request=request)


def test_zendesk_signals() -> None:
    desk = Zendesk(subdomain="acme", email=AGENT)
    conflict = desk.vendor_error(
        answer(409, {"error": "RecordConflict", "description": "Conflict"})
    )
    assert conflict is not None and conflict.kind == "retryable"
    spent = desk.rate_signal(
        answer(200, {}, **{"X-Rate-Limit": "700", "X-Rate-Limit-Remaining": "0"})
    )
    assert (spent.limit, spent.remaining, spent.reset_after, spent.exhausted()) == (
        700,
        0,
        60,
        True,
    )
    forbidden = desk.error_details(
        answer(403, {"error": {"title": "Forbidden", "message": "You do not have access"}})
    )
    assert (forbidden.code, forbidden.message) == ("Forbidden", "You do not have access")


async def test_oauth_bearer_tokens_rotate(sim: ZendeskSimulator) -> None:
    desk = Zendesk(
        subdomain="acme",
        base_url=sim.url,
        auth=Zendesk.oauth(client_id="zendesk-sandbox-client"),
    )
    try:
        await desk.me()
        sim.faults.expire_tokens()
        assert (await desk.me()).email == AGENT  # invalid_token 401 → one refresh → retried
    finally:
        await desk.aclose()
    calls = sim.requests.matching("GET", "/api/v2/users/me.json")
    assert [c.status for c in calls] == [200, 401, 200]
    assert calls[1].response_json()["error"] == "invalid_token"
    assert calls[0].headers["authorization"].startswith("Bearer zd-")
    refreshes = sim.requests.matching("POST", "/oauth/tokens")
    assert refreshes[1].form()["refresh_token"] != refreshes[0].form()["refresh_token"]


async def test_schema_drift_is_tolerated_or_a_clear_contract_error(
    desk: Zendesk, sim: ZendeskSimulator
) -> None:
    ticket = await desk.create_ticket("Drift", "body", priority="low")
    sim.faults.drift(enum={"status": "escalated"}, rename={"priority": "urgency"})
    drifted = await desk.get_ticket(ticket.id)
    assert (drifted.status, drifted.priority) == ("escalated", None)
    assert drifted.model_extra is not None and drifted.model_extra["urgency"] == "low"
    sim.faults.drift(na=["id"])
    with pytest.raises(VendorRejected, match=r"does not fit Ticket .*id") as na:
        await desk.get_ticket(ticket.id)
    assert na.value.code == "schema_mismatch"


async def test_dry_run_answers_in_zendesks_shapes(desk: Zendesk, sim: ZendeskSimulator) -> None:
    existing = await desk.create_ticket("Real", "body")
    dark = Zendesk("dark", subdomain="acme", email=AGENT, base_url=sim.url, dry_run=True)
    try:
        ticket = await dark.create_ticket("Dark", "Hello", priority="low", idempotency_key="k")
        assert (ticket.subject, ticket.status, ticket.priority, ticket.description) == (
            "Dark",
            "new",
            "low",
            "Hello",
        )
        assert (await dark.create_ticket("Dark", "Hello", idempotency_key="k")).id == ticket.id
        updated = await dark.update_ticket(existing.id, status="pending", comment="note")
        assert (updated.id, updated.status) == (existing.id, "pending")
        user = await dark.upsert_user("Bo", email="bo@example.test")
        assert (user.name, user.email, user.role) == ("Bo", "bo@example.test", "end-user")
        assert (await dark.get_ticket(existing.id)).status == "new", "reads go through"
    finally:
        await dark.aclose()
    assert len(sim.state["tickets"]) == 1 and len(sim.state["users"]) == 1
    assert dark.dry_runs[0].idempotency_key == "k"
    assert dark.dry_runs[0].answer["body"]["audit"]["events"][0]["body"] == "Hello"


async def test_the_probe_reads_the_agent(desk: Zendesk) -> None:
    (result,) = await check(desk)
    assert (result.ok, result.probe, result.limit) == (True, "me", 700)


class PaymentFailed(Contract, event="payment.failed", subject="payment_intent"):
    payment_intent: str
    email: PII[str]


async def test_a_flow_opens_one_ticket_with_the_steps_key(
    fake_app: Interlock, served_zendesk: Vendors, sim: ZendeskSimulator
) -> None:
    desk = fake_app.connector(
        Zendesk(subdomain="acme", email=AGENT, base_url=sim.url, timeouts=Timeouts(total="0.3s"))
    )

    @fake_app.flow(PaymentFailed, owner="support@acme.test", retry=Retry(attempts=3))
    async def open_ticket(event: PaymentFailed, ctx: Context) -> None:
        desk = ctx.connector(Zendesk)
        if ctx.attempt == 1:  # Zendesk opens the ticket, but its answer is lost
            sim.faults.timeout(1, hold=1.0, effect=True)
        await ctx.step(
            "ticket",
            desk.create_ticket,
            "Payment failed",
            f"Payment {event.payment_intent} failed",
            requester_email=event.email,
        )

    eid = await fake_app.emit(PaymentFailed(payment_intent="pi_1", email="jo@example.test"))
    worker = await drain(fake_app, advance=True)
    assert (worker.counters.succeeded, worker.counters.retried) == (1, 1)
    key = "il_" + hashlib.sha256(f"{eid}/open_ticket/ticket".encode()).hexdigest()[:40]
    first, second = sim.requests.matching("POST", "/api/v2/tickets.json")
    assert first.idempotency_key == second.idempotency_key == key
    assert second.response_headers["x-idempotency-lookup"] == "hit"
    assert len(sim.state["tickets"]) == 1
    await desk.aclose()
