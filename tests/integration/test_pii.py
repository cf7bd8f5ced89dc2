"""PII never reaches attempt reasons, dead letters, tracebacks or logs in clear text."""

from __future__ import annotations

import json
from typing import Any

import structlog
from pydantic import BaseModel
from structlog.testing import capture_logs

from interlock import PII, Context, Contract, Interlock, Retry, SyncContext
from interlock.stores.base import DeadFilter
from interlock.testing import drain

EMAIL = "jane.doe@acme.test"
PHONE = "+33 6 12 34 56 78"
STREET = "12 Rue Secrete"


class Address(BaseModel):
    street: PII[str]
    city: str


class LeadCreated(Contract, event="lead.created", subject="lead_id"):
    lead_id: str
    email: PII[str]
    phone: PII[str] | None = None
    address: Address


def _lead() -> LeadCreated:
    return LeadCreated(
        lead_id="l1", email=EMAIL, phone=PHONE, address=Address(street=STREET, city="Lyon")
    )


def _assert_clean(text: str) -> None:
    for secret in (EMAIL, PHONE, STREET):
        assert secret not in text


async def test_pii_is_redacted_everywhere_a_person_reads(app: Interlock) -> None:
    @app.flow(LeadCreated, owner="sales", retry=Retry(attempts=2))
    async def enrich(event: LeadCreated, ctx: Context) -> None:
        ctx.log.info("enriching lead", email=event.email, detail={"phone": event.phone})
        ctx.log.warning(f"no match for {event.email} at {event.address.street}")
        try:
            raise LookupError(f"clearbit: unknown person {event.email} / {event.phone}")
        except LookupError as exc:
            raise RuntimeError(f"enrichment failed for {event.address.street}") from exc

    with capture_logs() as logs:
        eid = await app.emit(_lead())
        await drain(app, advance=True)

    (dead,) = app.store.list_dead(DeadFilter())
    trace = app.store.trace(eid)
    assert len(trace.attempts) == 2
    for attempt in trace.attempts:
        assert attempt.reason is not None
        assert "[redacted]" in attempt.reason
        _assert_clean(attempt.reason)
    assert dead.reason == "RuntimeError: enrichment failed for [redacted]"
    assert dead.context is not None
    _assert_clean(json.dumps(dead.context))
    assert dead.context["payload"]["email"] == "[redacted]"
    assert dead.context["payload"]["address"] == {"street": "[redacted]", "city": "Lyon"}
    assert dead.context["payload"]["lead_id"] == "l1"
    # The traceback is kept (both exceptions of the chain), scrubbed.
    assert "LookupError: clearbit: unknown person [redacted]" in dead.context["traceback"]
    assert "RuntimeError" in dead.context["traceback"]

    flow_logs = [entry for entry in logs if entry.get("flow") == "enrich"]
    assert any(entry["event"] == "enriching lead" for entry in flow_logs)
    assert any(entry.get("log_level") == "warning" for entry in flow_logs)
    retry_logs = [entry for entry in logs if entry["event"] in ("delivery.retry", "delivery.dead")]
    assert len(retry_logs) == 2
    _assert_clean(repr(logs))
    entry = next(e for e in flow_logs if e["event"] == "enriching lead")
    assert entry["email"] == "[redacted]"
    assert entry["detail"] == {"phone": "[redacted]"}
    assert entry["event_id"] == eid


async def test_sync_handler_logs_are_redacted_too(app: Interlock) -> None:
    @app.flow(LeadCreated, owner="sales")
    def notify(event: LeadCreated, ctx: SyncContext) -> None:
        ctx.log.info("notifying", who=event.email)

    with capture_logs() as logs:
        await app.emit(_lead())
        await drain(app)
    assert [e["who"] for e in logs if e["event"] == "notifying"] == ["[redacted]"]


async def test_the_subject_of_a_dead_letter_is_redacted_when_it_is_pii(app: Interlock) -> None:
    class Subscriber(Contract, event="newsletter.subscribed", subject="email"):
        email: PII[str]

    @app.flow(Subscriber, owner="growth", retry=Retry(attempts=1))
    async def add_to_list(event: Subscriber) -> None:
        raise RuntimeError("list service down")

    await app.emit(Subscriber(email=EMAIL))
    await drain(app, advance=True)
    (dead,) = app.store.list_dead(DeadFilter())
    _assert_clean(json.dumps(dead.context))


async def test_the_flow_log_keeps_the_processors_configured_by_the_user(app: Interlock) -> None:
    seen: list[dict[str, Any]] = []

    def collect(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        seen.append(dict(event_dict))
        raise structlog.DropEvent

    @app.flow(LeadCreated, owner="sales")
    async def log_it(event: LeadCreated, ctx: Context) -> None:
        ctx.log.info("hello", email=event.email)

    old = structlog.get_config()
    structlog.configure(processors=[collect])
    try:
        await app.emit(_lead())
        await drain(app)
    finally:
        structlog.configure(**old)
    assert [(e["event"], e["email"]) for e in seen] == [("hello", "[redacted]")]


async def test_pii_of_an_older_stored_version_is_redacted_too(make_app: Any) -> None:
    class ContactV1(Contract, event="contact.created", version=1):
        contact_id: str
        mail: PII[str]

    class ContactV2(Contract, event="contact.created", version=2):
        contact_id: str
        email: PII[str]

    @ContactV2.upcaster(from_version=1)
    def _rename(data: dict[str, Any]) -> dict[str, Any]:
        return {"contact_id": data["contact_id"], "email": data["mail"]}

    app = make_app()

    @app.flow(ContactV2, owner="crm", retry=Retry(attempts=1))
    async def sync_contact(event: ContactV2) -> None:
        raise RuntimeError(f"hubspot rejected {event.email}")

    # An older producer still sends v1 (stored as v1, upcast for the flow).
    eid = await app.emit(ContactV1(contact_id="c1", mail=EMAIL))
    assert app.store.get_event(eid).version == 1
    await drain(app, advance=True)
    (dead,) = app.store.list_dead(DeadFilter())
    assert dead.reason == "RuntimeError: hubspot rejected [redacted]"
    assert dead.context is not None
    assert dead.context["payload"] == {"contact_id": "c1", "mail": "[redacted]"}
    _assert_clean(json.dumps(dead.context))
