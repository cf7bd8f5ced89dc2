from __future__ import annotations

from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, Field, ValidationError, field_validator

from interlock import PII, ConfigurationError, Contract, ContractViolation


class Address(BaseModel):
    street: PII[str]
    city: str


class Customer(BaseModel):
    name: PII[str]
    phone: PII[str] | None = None
    address: Address
    previous: list[Address] = []


class OrderShipped(Contract, event="order.shipped", version=1, subject="order_id"):
    order_id: str
    account_id: str
    email: PII[str]
    carrier: Literal["ups", "fedex", "dhl"]
    customer: Customer | None = None


def test_event_name_version_and_subject_are_declared_on_the_class() -> None:
    assert OrderShipped.event_type() == "order.shipped"
    assert OrderShipped.__version__ == 1
    event = OrderShipped(order_id="1042", account_id="a1", email="j@acme.test", carrier="ups")
    assert event.subject() == "order:1042"


def test_contracts_are_frozen_and_reject_unknown_fields() -> None:
    event = OrderShipped(order_id="1", account_id="a", email="j@acme.test", carrier="dhl")
    with pytest.raises(ValidationError):
        event.order_id = "2"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        OrderShipped(order_id="1", account_id="a", email="e", carrier="dhl", extra=1)  # type: ignore[call-arg]


def test_a_contract_without_an_event_name_says_how_to_declare_one() -> None:
    class Nameless(Contract):
        x: int

    with pytest.raises(
        ConfigurationError, match=r"class Nameless\(Contract, event='thing.happened'\)"
    ):
        Nameless.event_type()


@pytest.mark.parametrize("name", ["", " order.shipped", "order shipped"])
def test_bad_event_names_are_refused(name: str) -> None:
    with pytest.raises(ConfigurationError, match="dotted name"):

        class Bad(Contract, event=name):
            x: int


@pytest.mark.parametrize("version", [0, -1, True, 1.5])
def test_bad_versions_are_refused(version: Any) -> None:
    with pytest.raises(ConfigurationError, match="version must be an integer >= 1"):

        class Bad(Contract, event="x.y", version=version):
            x: int


def test_pii_paths_include_nested_optional_and_list_fields() -> None:
    assert sorted(OrderShipped.pii_paths()) == [
        ("customer", "address", "street"),
        ("customer", "name"),
        ("customer", "phone"),
        ("customer", "previous", "street"),
        ("email",),
    ]


def test_optional_and_container_pii_fields_are_pii() -> None:
    class Lead(Contract, event="lead.created"):
        lead_id: str
        phone: PII[str] | None = None
        aliases: list[PII[str]] = []
        notes: dict[str, PII[str]] = {}

    assert sorted(Lead.pii_paths()) == [("aliases",), ("notes",), ("phone",)]


def test_json_schema_marks_pii_and_names_the_event() -> None:
    schema = OrderShipped.json_schema()
    assert schema["x-interlock-event"] == "order.shipped"
    assert schema["x-interlock-version"] == 1
    assert schema["properties"]["email"]["x-pii"] is True
    assert "x-pii" not in schema["properties"]["order_id"]
    assert schema["$defs"]["Address"]["properties"]["street"]["x-pii"] is True
    assert "x-pii" not in schema["$defs"]["Address"]["properties"]["city"]
    phone = schema["$defs"]["Customer"]["properties"]["phone"]
    assert any(branch.get("x-pii") for branch in phone["anyOf"])


class LeadV3(Contract, event="lead.qualified", version=3):
    lead_id: str
    score: int
    source: str


@LeadV3.upcaster(from_version=1)
def _v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    data["score"] = data.pop("rating") * 10
    return data


@LeadV3.upcaster(from_version=2)
def _v2_to_v3(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "source": data.get("source", "unknown")}


def test_upcasters_chain_from_v1_to_v3() -> None:
    stored = {"lead_id": "l1", "rating": 7}
    lead = LeadV3.load(stored, version=1)
    assert lead == LeadV3(lead_id="l1", score=70, source="unknown")
    assert stored == {"lead_id": "l1", "rating": 7}, "the stored data is not mutated"
    assert LeadV3.load({"lead_id": "l1", "score": 5}, version=2).source == "unknown"
    assert LeadV3.load({"lead_id": "l1", "score": 5, "source": "web"}, version=3).source == "web"


def test_a_missing_upcaster_is_a_contract_violation_naming_it() -> None:
    class Invoice(Contract, event="invoice.paid", version=3):
        invoice_id: str

    @Invoice.upcaster(from_version=1)
    def _one(data: dict[str, Any]) -> dict[str, Any]:
        return data

    with pytest.raises(ContractViolation) as info:
        Invoice.load({"invoice_id": "i1"}, version=1)
    message = str(info.value)
    assert "no upcaster from v2 to v3" in message
    assert "@Invoice.upcaster(from_version=2)" in message


def test_upcasters_belong_to_their_own_contract() -> None:
    class Other(Contract, event="other.thing", version=3):
        lead_id: str

    with pytest.raises(ContractViolation, match="no upcaster from v1 to v2"):
        Other.load({"lead_id": "x"}, version=1)


def test_a_newer_stored_version_is_refused() -> None:
    with pytest.raises(ContractViolation, match=r"v4 is newer than the code's v3"):
        LeadV3.load({"lead_id": "l1", "score": 1, "source": "x"}, version=4)


@pytest.mark.parametrize("from_version", [0, 3, 4])
def test_upcaster_versions_must_be_below_the_contract_version(from_version: int) -> None:
    with pytest.raises(ConfigurationError, match="between 1 and 2"):
        LeadV3.upcaster(from_version=from_version)


class Tagged(BaseModel):
    kind: Literal["card"]


class Wire(BaseModel):
    kind: Literal["wire"]


class Payment(Contract, event="payment.failed"):
    payment_id: str
    amount: int
    email: PII[str]
    currency: Literal["usd", "eur"]
    method: Annotated[Tagged | Wire, Field(discriminator="kind")]
    card_last4: str = Field(default="0000", max_length=4)

    @field_validator("payment_id")
    @classmethod
    def _check(cls, value: str) -> str:
        if value.startswith("bad"):
            raise ValueError(f"{value} is not a payment id")
        return value


def test_validation_errors_name_fields_but_never_echo_input_values() -> None:
    raw = {
        "payment_id": "bad-jane.doe@acme.test",
        "amount": "twelve-thousand-secret",
        "email": 5550123456,
        "currency": "yen-secret",
        "method": {"kind": "crypto-secret-tag"},
        "card_last4": "4242424242424242",
    }
    with pytest.raises(ContractViolation) as info:
        Payment.load(raw)
    exc = info.value
    text = str(exc) + repr(exc.errors)
    for value in raw.values():
        secret = value["kind"] if isinstance(value, dict) else str(value)
        assert secret not in text
    fields = {e["field"] for e in exc.errors}
    assert fields == {"payment_id", "amount", "email", "currency", "method", "card_last4"}
    assert str(exc).startswith("payment.failed payload is invalid: ")
    assert exc.__cause__ is None
    assert exc.__suppress_context__


def test_a_subject_must_name_a_field() -> None:
    with pytest.raises(ConfigurationError, match=r"subject='nope' is not one of its fields \(a\)"):

        class Bad(Contract, event="x.y", subject="nope"):
            a: str


def test_an_empty_subject_value_is_no_subject() -> None:
    class Maybe(Contract, event="invoice.drafted", subject="invoice_id"):
        invoice_id: str | None = None

    assert Maybe().subject() is None
    assert Maybe(invoice_id="in_1").subject() == "invoice:in_1"
