"""Emitting: durable events, one delivery per subscribed flow, idempotency."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from interlock import (
    ConfigurationError,
    Context,
    Contract,
    ContractViolation,
    Interlock,
    LimitExceeded,
    Limits,
)
from interlock.testing import drain

AppFactory = Callable[..., Interlock]


class OrderShipped(Contract, event="order.shipped", subject="order_id"):
    order_id: str
    account_id: str
    note: str = ""


class Unrelated(Contract, event="thing.happened"):
    x: int


def _order(order_id: str = "o1", account_id: str = "a1", note: str = "") -> OrderShipped:
    return OrderShipped(order_id=order_id, account_id=account_id, note=note)


def _subscribe(app: Interlock, *names: str, idempotency: str | None = None) -> dict[str, list[str]]:
    seen: dict[str, list[str]] = {name: [] for name in names}

    def recorder(name: str) -> Callable[[OrderShipped, Context], Awaitable[None]]:
        async def handler(event: OrderShipped, ctx: Context) -> None:
            seen[name].append(event.order_id)

        return handler

    for name in names:
        app.flow(OrderShipped, owner="team", key="account_id", idempotency=idempotency, name=name)(
            recorder(name)
        )
    return seen


async def test_emit_creates_one_delivery_per_subscribed_flow(app: Interlock) -> None:
    seen = _subscribe(app, "crm", "slack")
    eid = await app.emit(_order())
    await app.emit(Unrelated(x=1))
    trace = app.store.trace(eid)
    assert [e.id for e in trace.events] == [eid]
    assert sorted(d.flow for d in trace.deliveries) == ["crm", "slack"]
    assert {d.status for d in trace.deliveries} == {"pending"}
    event = app.store.get_event(eid)
    assert event.type == "order.shipped"
    assert event.subject == "order:o1"
    assert event.data == {"order_id": "o1", "account_id": "a1", "note": ""}
    assert event.correlation_id.startswith("cor_")
    await drain(app)
    assert seen == {"crm": ["o1"], "slack": ["o1"]}
    assert {d.status for d in app.store.trace(eid).deliveries} == {"succeeded"}


async def test_an_event_nobody_subscribes_to_is_stored_without_deliveries(app: Interlock) -> None:
    eid = await app.emit(Unrelated(x=1))
    trace = app.store.trace(eid)
    assert len(trace.events) == 1
    assert trace.deliveries == []


async def test_same_source_and_key_is_the_same_event_and_creates_nothing(app: Interlock) -> None:
    seen = _subscribe(app, "crm")
    first = await app.emit(_order(), source="shopify", idempotency_key="shopify:1042")
    again = await app.emit(_order(note="resent"), source="shopify", idempotency_key="shopify:1042")
    assert again == first
    assert app.store.stats(app.clock.now()).events == 1
    assert len(app.store.list_deliveries()) == 1
    other_source = await app.emit(_order(), source="stripe", idempotency_key="shopify:1042")
    assert other_source != first
    assert app.store.stats(app.clock.now()).events == 2
    await drain(app)
    assert seen["crm"] == ["o1", "o1"]


def test_emit_sync_is_idempotent_too(app: Interlock) -> None:
    _subscribe(app, "crm")
    first = app.emit_sync(_order(), idempotency_key="k1")
    assert app.emit_sync(_order(), idempotency_key="k1") == first
    assert len(app.store.list_deliveries()) == 1


async def test_emit_many_is_idempotent_per_item(app: Interlock) -> None:
    _subscribe(app, "crm")
    ids = await app.emit_many([(_order("o1"), "k1"), (_order("o2"), "k2"), (_order("o1"), "k1")])
    assert ids[0] == ids[2] != ids[1]
    assert len(app.store.list_deliveries()) == 2


async def test_flow_idempotency_makes_a_duplicate_a_skipped_delivery(app: Interlock) -> None:
    seen = _subscribe(app, "crm", idempotency="order_id")
    first = await app.emit(_order("o1"))
    second = await app.emit(_order("o1", note="same order again"))
    third = await app.emit(_order("o2"))
    await drain(app)
    assert seen["crm"] == ["o1", "o2"]
    (dup,) = app.store.trace(second).deliveries
    (original,) = app.store.trace(first).deliveries
    assert dup.status == "skipped"
    assert f"duplicate of delivery {original.id}" in (dup.reason or "")
    assert app.store.trace(third).deliveries[0].status == "succeeded"
    # A skipped duplicate does not hold up its lane.
    assert app.store.next_due_at() is None


async def test_payload_over_the_limit_is_refused_and_nothing_is_stored(
    make_app: AppFactory,
) -> None:
    app = make_app(limits=Limits(max_payload_bytes=200))
    _subscribe(app, "crm")
    with pytest.raises(LimitExceeded) as info:
        await app.emit(_order(note="x" * 500))
    assert info.value.limit == "max_payload_bytes"
    assert "over the limit of 200" in str(info.value)
    assert "Limits(max_payload_bytes=...)" in str(info.value)
    assert app.store.stats(app.clock.now()).events == 0


async def test_emit_takes_contract_instances_only(app: Interlock) -> None:
    with pytest.raises(ConfigurationError, match="emit takes a Contract instance, got dict"):
        await app.emit({"order_id": "o1"})  # type: ignore[arg-type]


async def test_parse_validates_raw_payloads_against_registered_contracts(app: Interlock) -> None:
    _subscribe(app, "crm")
    assert app.parse("order.shipped", {"order_id": "1", "account_id": "a"}) == _order("1", "a")
    with pytest.raises(ContractViolation, match=r"unknown event type 'nope'.*order\.shipped"):
        app.parse("nope", {})
