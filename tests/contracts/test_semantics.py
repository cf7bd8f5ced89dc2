"""Delivery-time contract behaviour: upcasting stored old events, pinned versions, every
error-semantics option for missing records and invalid events, and version markers."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

import orjson
import pytest

from interlock import PII, Context, Contract, Interlock, MissingRecord, Retry
from interlock.errors import ConfigurationError
from interlock.stores.base import DeliveryRow
from interlock.testing import FakeClock, drain

AppFactory = Callable[..., Interlock]

# -- upcasting ------------------------------------------------------------------------------


class ShippedV1(Contract, event="order.shipped", version=1):
    order_id: str
    shipper: str


class ShippedV2(Contract, event="order.shipped", version=2):
    order_id: str
    carrier: str


class ShippedV3(Contract, event="order.shipped", version=3):
    order_id: str
    carrier: Literal["ups", "fedex", "dhl"]
    parcels: int


@ShippedV2.upcaster(from_version=1)
def _v2_from_v1(data: dict[str, Any]) -> dict[str, Any]:
    return {"order_id": data["order_id"], "carrier": data["shipper"]}


@ShippedV3.upcaster(from_version=1)
def _v3_from_v1(data: dict[str, Any]) -> dict[str, Any]:
    return _v2_from_v1(data)


@ShippedV3.upcaster(from_version=2)
def _v3_from_v2(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "carrier": data["carrier"].lower(), "parcels": 1}


async def test_events_stored_under_two_older_versions_are_upcast_on_delivery(
    make_app: AppFactory,
) -> None:
    seen: list[Any] = []
    old = make_app("v1")

    @old.flow(ShippedV1, owner="ops", name="note")
    async def note_v1(event: ShippedV1) -> None:
        raise AssertionError("the old code never runs again")

    await old.emit(ShippedV1(order_id="1", shipper="UPS"))
    middle = make_app("v2")

    @middle.flow(ShippedV2, owner="ops", name="note")
    async def note_v2(event: ShippedV2) -> None:
        raise AssertionError("nor does this")

    await middle.emit(ShippedV2(order_id="2", carrier="FedEx"))
    new = make_app("v3")  # the deploy: same store, the events still stored as v1 and v2

    @new.flow(ShippedV3, owner="ops", name="note")
    async def note(event: ShippedV3) -> None:
        seen.append(event)

    await new.emit(ShippedV3(order_id="3", carrier="dhl", parcels=2))
    await drain(new)
    assert seen == [
        ShippedV3(order_id="1", carrier="ups", parcels=1),
        ShippedV3(order_id="2", carrier="fedex", parcels=1),
        ShippedV3(order_id="3", carrier="dhl", parcels=2),
    ]
    assert [e.version for e in reversed(new.store.list_events())] == [1, 2, 3]


async def test_a_flow_pins_the_version_it_accepts(app: Interlock) -> None:
    legacy: list[Any] = []
    current: list[Any] = []

    @app.flow(ShippedV1, owner="ops", on_invalid="skip")
    async def legacy_export(event: ShippedV1) -> None:
        legacy.append(event)

    @app.flow(ShippedV2, owner="ops")
    async def notify(event: ShippedV2) -> None:
        current.append(event)

    await app.emit(ShippedV1(order_id="1", shipper="ups"))
    v2 = await app.emit(ShippedV2(order_id="2", carrier="dhl"))
    await drain(app)
    assert legacy == [ShippedV1(order_id="1", shipper="ups")]  # pinned to v1: never v2
    assert current == [
        ShippedV2(order_id="1", carrier="ups"),
        ShippedV2(order_id="2", carrier="dhl"),
    ]
    skipped = delivery(app, v2, "legacy_export")
    assert skipped.status == "skipped"
    assert "newer than the code's v1" in (skipped.reason or "")


def delivery(app: Interlock, event_id: str, flow: str) -> DeliveryRow:
    (found,) = [d for d in app.store.trace(event_id).deliveries if d.flow == flow]
    return found


# -- a referenced record is missing -------------------------------------------------------


class DealWon(Contract, event="deal.won", subject="deal_id"):
    deal_id: str
    account_id: str


class AccountSynced(Contract, event="account.synced", subject="account_id"):
    account_id: str


def crm_flow(app: Interlock, accounts: set[str], **options: Any) -> list[str]:
    done: list[str] = []

    @app.flow(DealWon, owner="revops", key="account_id", retry=Retry(attempts=3), **options)
    async def invoice(event: DealWon, ctx: Context) -> None:
        await ctx.step("prepare", lambda: "ok")
        if event.account_id not in accounts:
            raise MissingRecord(
                f"account {event.account_id}",
                wait_for=AccountSynced,
                match={"account_id": event.account_id},
            )
        done.append(event.deal_id)

    return done


async def test_missing_record_retry_is_the_default_and_dead_letters_when_spent(
    app: Interlock,
) -> None:
    accounts: set[str] = set()
    done = crm_flow(app, accounts)
    first = await app.emit(DealWon(deal_id="d1", account_id="a1"))
    worker = await drain(app, advance=True)
    dead = delivery(app, first, "invoice")
    assert (dead.status, dead.error_class, dead.attempts) == ("dead", "missing_record", 3)
    assert worker.counters.retried == 2
    assert "missing record: account a1" in (dead.reason or "")
    second = await app.emit(DealWon(deal_id="d2", account_id="a2"))
    await drain(app)  # first attempt fails: it waits for its backoff
    accounts.add("a2")
    await drain(app, advance=True)
    assert done == ["d2"]
    assert delivery(app, second, "invoice").status == "succeeded"


async def test_missing_record_dead_and_skip(make_app: AppFactory) -> None:
    app = make_app("dead")
    crm_flow(app, set(), on_missing="dead")
    eid = await app.emit(DealWon(deal_id="d1", account_id="a1"))
    await drain(app)
    row = delivery(app, eid, "invoice")
    assert (row.status, row.error_class, row.attempts) == ("dead", "missing_record", 1)
    other = make_app("skip", url=f"{app.database_url}-skip")
    accounts = {"a1"}
    done = crm_flow(other, accounts, on_missing="skip")
    skipped = await other.emit(DealWon(deal_id="d1", account_id="a9"))
    await other.emit(DealWon(deal_id="d2", account_id="a1"))
    await drain(other)
    row = delivery(other, skipped, "invoice")
    assert (row.status, row.error_class) == ("skipped", "missing_record")
    assert done == ["d2"]


async def test_missing_record_park_waits_for_the_matching_event_then_runs_again(
    app: Interlock, clock: FakeClock
) -> None:
    accounts: set[str] = set()
    done = crm_flow(app, accounts, on_missing="park", park_timeout="1d")
    eid = await app.emit(DealWon(deal_id="d1", account_id="a1"))
    await drain(app)
    parked = delivery(app, eid, "invoice")
    assert parked.status == "waiting"
    assert parked.due_at == clock.now() + 86400
    assert "waiting for account.synced" in (parked.reason or "")
    await app.emit(AccountSynced(account_id="a2"))  # not the one it waits for
    await drain(app)
    assert delivery(app, eid, "invoice").status == "waiting"
    accounts.add("a1")
    await app.emit(AccountSynced(account_id="a1"))
    await drain(app)
    assert done == ["d1"]
    assert delivery(app, eid, "invoice").status == "succeeded"


async def test_missing_record_park_dead_letters_at_its_timeout(app: Interlock) -> None:
    crm_flow(app, set(), on_missing="park", park_timeout="1h")
    eid = await app.emit(DealWon(deal_id="d1", account_id="a1"))
    await drain(app, advance=True)
    row = delivery(app, eid, "invoice")
    assert (row.status, row.error_class) == ("dead", "missing_record")


# -- the stored event fails its contract ---------------------------------------------------


class TicketOpened(Contract, event="ticket.opened", subject="ticket_id"):
    ticket_id: str
    priority: Literal["low", "high"]


async def emit_raw(app: Interlock, data: dict[str, Any]) -> str:
    """Store an event whose data the contract refuses (written by older, looser code)."""
    item = app.prepare(TicketOpened(ticket_id=str(data["ticket_id"]), priority="low"))
    item = dataclasses.replace(
        item, event=dataclasses.replace(item.event, data=data), data_json=orjson.dumps(data)
    )
    (result,) = await app.store.emit([item])
    return result.event_id


def ticket_flow(app: Interlock, **options: Any) -> list[TicketOpened]:
    seen: list[TicketOpened] = []

    @app.flow(TicketOpened, owner="support", key="ticket_id", retry=Retry(attempts=2), **options)
    async def triage(event: TicketOpened) -> None:
        seen.append(event)

    return seen


@pytest.mark.parametrize(
    ("policy", "status", "attempts"),
    [("dead", "dead", 1), ("retry", "dead", 2), ("skip", "skipped", 1)],
)
async def test_invalid_event_dead_retry_and_skip(
    app: Interlock, policy: str, status: str, attempts: int
) -> None:
    ticket_flow(app, on_invalid=policy)
    eid = await emit_raw(app, {"ticket_id": "t1", "priority": "urgent"})
    await drain(app, advance=True)
    row = delivery(app, eid, "triage")
    assert (row.status, row.error_class, row.attempts) == (status, "contract_violation", attempts)
    if status == "dead":
        assert row.context is not None
        assert row.context["errors"][0]["field"] == "priority"


async def test_invalid_event_is_dead_lettered_by_default_and_the_contract_can_say_otherwise(
    make_app: AppFactory,
) -> None:
    app = make_app()
    ticket_flow(app)
    eid = await emit_raw(app, {"ticket_id": "t1", "priority": "urgent"})
    await drain(app)
    assert delivery(app, eid, "triage").error_class == "contract_violation"

    class Lenient(Contract, event="ticket.lenient", on_invalid="skip", on_missing="dead"):
        ticket_id: str

    other = make_app("lenient", url=f"{app.database_url}-2")

    @other.flow(Lenient, owner="support")
    async def tolerate(event: Lenient) -> None: ...

    flow = other.flows["tolerate"]
    assert (flow.invalid_policy, flow.missing_policy) == ("skip", "dead")
    with pytest.raises(ConfigurationError, match="on_invalid='later'"):

        class Wrong(Contract, event="ticket.wrong", on_invalid="later"):  # type: ignore[arg-type]
            ticket_id: str


async def test_invalid_event_parked_until_a_newer_event_about_it_supersedes_it(
    app: Interlock,
) -> None:
    seen = ticket_flow(app, on_invalid="park")
    bad = await emit_raw(app, {"ticket_id": "t1", "priority": "urgent"})
    await drain(app)
    assert delivery(app, bad, "triage").status == "waiting"
    fixed = await app.emit(TicketOpened(ticket_id="t1", priority="high"))
    await drain(app)
    row = delivery(app, bad, "triage")
    assert row.status == "skipped"
    assert f"superseded by {fixed}" in (row.reason or "")
    assert seen == [TicketOpened(ticket_id="t1", priority="high")]


# -- version markers -------------------------------------------------------------------------


class ContactUpdated(Contract, event="contact.updated", subject="contact_id", marker="updated_at"):
    contact_id: str
    name: str
    updated_at: datetime


def contact_flow(app: Interlock, **options: Any) -> list[str]:
    applied: list[str] = []

    @app.flow(ContactUpdated, owner="crm", key="contact_id", **options)
    async def upsert(event: ContactUpdated) -> None:
        applied.append(event.name)

    return applied


def at(minute: int) -> datetime:
    return datetime.fromisoformat(f"2026-12-01T10:{minute:02d}:00+00:00")


async def test_an_older_update_or_a_late_duplicate_never_overwrites_newer_state(
    app: Interlock,
) -> None:
    applied = contact_flow(app)
    await app.emit(ContactUpdated(contact_id="c1", name="Ana", updated_at=at(1)))
    await app.emit(ContactUpdated(contact_id="c1", name="Ana Silva", updated_at=at(5)))
    late = await app.emit(ContactUpdated(contact_id="c1", name="A.", updated_at=at(3)))
    dup = await app.emit(ContactUpdated(contact_id="c1", name="Ana S.", updated_at=at(5)))
    await app.emit(ContactUpdated(contact_id="c2", name="Bo", updated_at=at(2)))  # another entity
    await drain(app)
    assert [name for name in applied if name != "Bo"] == ["Ana", "Ana Silva"]  # one lane
    assert "Bo" in applied
    for eid in (late, dup):
        row = delivery(app, eid, "upsert")
        assert row.status == "skipped"
        assert "stale: contact:c1 is at updated_at=" in (row.reason or "")
    marker = app.store.marker_of("upsert", "contact:c1")
    assert marker is not None
    assert marker.value == at(5).timestamp()


async def test_a_parked_stale_event_waits_for_an_operator_without_blocking_its_lane(
    app: Interlock,
) -> None:
    applied = contact_flow(app, on_stale="park")
    await app.emit(ContactUpdated(contact_id="c1", name="new", updated_at=at(5)))
    late = await app.emit(ContactUpdated(contact_id="c1", name="old", updated_at=at(3)))
    await app.emit(ContactUpdated(contact_id="c1", name="newest", updated_at=at(9)))
    await drain(app)
    assert applied == ["new", "newest"]
    row = delivery(app, late, "upsert")
    assert (row.status, row.error_class) == ("dead", "stale")
    await app.store.replay([row.id], actor="ops", reason="apply it anyway", now=app.clock.now())
    await drain(app)
    assert applied == ["new", "newest", "old"]
    marker = app.store.marker_of("upsert", "contact:c1")
    assert marker is not None
    assert marker.value == at(9).timestamp()  # a replayed old event never moves it back


def test_a_marker_must_name_a_field() -> None:
    with pytest.raises(ConfigurationError, match="marker='version'"):

        class Bad(Contract, event="x.y", marker="version"):
            updated_at: int


class EmailChanged(Contract, event="email.changed", subject="email", marker="seq"):
    email: PII[str]
    seq: int


async def test_a_stale_reason_never_shows_a_personal_subject(app: Interlock) -> None:
    @app.flow(EmailChanged, owner="crm", key="email")
    async def sync(event: EmailChanged) -> None: ...

    await app.emit(EmailChanged(email="ana@example.test", seq=2))
    late = await app.emit(EmailChanged(email="ana@example.test", seq=1))
    await drain(app)
    row = delivery(app, late, "sync")
    assert row.status == "skipped"
    assert "stale: email:[redacted] is at seq=2" in (row.reason or "")
    assert "ana@example.test" not in (row.reason or "")
