from __future__ import annotations

from typing import Any

import pytest

from interlock import SLO, ConfigurationError, Context, Contract, Interlock, Retry
from interlock.flows import build_flow


class OrderShipped(Contract, event="order.shipped"):
    order_id: str
    account_id: str


def _build(handler: Any, **overrides: Any):  # type: ignore[no-untyped-def]
    kwargs: dict[str, Any] = {
        "name": None,
        "owner": "revops@acme.test",
        "system_of_record": "shopify",
        "key": "account_id",
        "idempotency": None,
        "retry": None,
        "slo": None,
        "on_dead": "block",
    }
    kwargs.update(overrides)
    return build_flow(handler, OrderShipped, **kwargs)


async def note_in_crm(event: OrderShipped, ctx: Context) -> None:
    """Note the shipment on the CRM deal."""


def test_build_flow_describes_the_declaration() -> None:
    flow = _build(note_in_crm, idempotency="order_id", retry=Retry(attempts=3), slo=SLO())
    assert flow.name == "note_in_crm"
    assert flow.event_type == "order.shipped"
    assert flow.is_async
    assert flow.takes_context
    described = flow.describe()
    assert described["key"] == "account_id"
    assert described["idempotency"] == "order_id"
    assert described["retry"]["attempts"] == 3
    assert described["description"] == "Note the shipment on the CRM deal."
    event = OrderShipped(order_id="o1", account_id="a1")
    assert flow.lane_of(event, "evt_1") == "a1"
    assert flow.idempotency_of(event) == "o1"


def test_a_flow_without_key_puts_each_event_in_its_own_lane() -> None:
    flow = _build(note_in_crm, key=None)
    event = OrderShipped(order_id="o1", account_id="a1")
    assert flow.lane_of(event, "evt_1") != flow.lane_of(event, "evt_2")


def test_a_callable_key_is_used() -> None:
    flow = _build(note_in_crm, key=lambda e: e.account_id.upper())
    assert flow.lane_of(OrderShipped(order_id="o", account_id="a1"), "evt_1") == "A1"


def test_an_empty_key_value_is_refused() -> None:
    flow = _build(note_in_crm)
    with pytest.raises(ConfigurationError, match="the key of this event is empty"):
        flow.lane_of(OrderShipped(order_id="o", account_id=""), "evt_1")


def test_sync_handlers_and_handlers_without_context_are_recognised() -> None:
    def sync_flow(event: OrderShipped) -> None:
        pass

    flow = _build(sync_flow)
    assert not flow.is_async
    assert not flow.takes_context


def test_bad_key_field_lists_the_fields() -> None:
    with pytest.raises(ConfigurationError) as info:
        _build(note_in_crm, key="acount_id")
    assert "key='acount_id' is not a field of OrderShipped" in str(info.value)
    assert "order_id, account_id" in str(info.value)


def test_bad_idempotency_field() -> None:
    with pytest.raises(ConfigurationError, match="idempotency='nope' is not a field"):
        _build(note_in_crm, idempotency="nope")


def test_key_must_be_a_field_name_or_callable() -> None:
    with pytest.raises(ConfigurationError, match="takes a field name or a callable"):
        _build(note_in_crm, key=42)


def test_bad_on_dead() -> None:
    with pytest.raises(ConfigurationError, match="on_dead must be 'block' or 'skip'"):
        _build(note_in_crm, on_dead="drop")


@pytest.mark.parametrize(
    "handler",
    [lambda: None, lambda event, ctx, extra: None],
)
def test_wrong_arity(handler: Any) -> None:
    with pytest.raises(ConfigurationError, match=r"must take \(event\) or \(event, ctx\)"):
        _build(handler, name="arity")


@pytest.mark.parametrize("owner", ["", "   "])
def test_owner_is_required(owner: str) -> None:
    with pytest.raises(ConfigurationError, match="owner= is required"):
        _build(note_in_crm, owner=owner)


@pytest.mark.parametrize("name", ["has space", "semi;colon", "slash/name"])
def test_bad_flow_names(name: str) -> None:
    with pytest.raises(ConfigurationError, match="must be letters, digits"):
        _build(note_in_crm, name=name)


def test_the_first_argument_must_be_a_contract() -> None:
    with pytest.raises(ConfigurationError, match="must be a Contract class"):
        build_flow(
            note_in_crm,
            dict,  # type: ignore[arg-type]
            name=None,
            owner="x@y",
            system_of_record=None,
            key=None,
            idempotency=None,
            retry=None,
            slo=None,
            on_dead="block",
        )


def test_duplicate_flow_name_is_refused(tmp_path: Any) -> None:
    app = Interlock("dup", f"sqlite:///{tmp_path / 'x.db'}")
    app.flow(OrderShipped, owner="team")(note_in_crm)
    with pytest.raises(ConfigurationError, match="'note_in_crm' is declared twice; give one"):
        app.flow(OrderShipped, owner="team")(note_in_crm)
    app.flow(OrderShipped, owner="team", name="note_again")(note_in_crm)
    assert sorted(app.flows) == ["note_again", "note_in_crm"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"target": 1.0}, "between 0 and 1"),
        ({"target": 0}, "between 0 and 1"),
        ({"within": "x"}, "duration"),
    ],
)
def test_slo_validation(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        SLO(**kwargs)
