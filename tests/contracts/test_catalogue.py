"""Contract features beyond types: nullability, enums, defaults, computed fields,
descriptions and PII, as delivered to flows and as exported in the catalogue."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import computed_field

from interlock import PII, Contract, ContractViolation, Interlock
from interlock.catalogue import fields_of, markdown, schema_document
from interlock.testing import drain


class Subscribed(Contract, event="plan.subscribed", subject="account_id", marker="seq"):
    """An account chose a plan."""

    account_id: str
    """The billing account."""
    email: PII[str] | None
    plan: Literal["free", "pro", "team"] = "free"
    seats: int = 1
    seq: int

    @computed_field  # type: ignore[prop-decorator]
    @property
    def paid(self) -> bool:
        """Whether the plan costs money."""
        return self.plan != "free"


async def test_computed_fields_are_stored_with_the_event_and_derived_again_on_delivery(
    app: Interlock,
) -> None:
    seen: list[Subscribed] = []

    @app.flow(Subscribed, owner="billing@acme.test", system_of_record="stripe")
    async def provision(event: Subscribed) -> None:
        seen.append(event)

    eid = await app.emit(Subscribed(account_id="a1", email=None, plan="pro", seq=1))
    assert app.store.get_event(eid).data["paid"] is True  # part of the event's JSON
    await drain(app)
    assert [(e.plan, e.paid, e.seats, e.email) for e in seen] == [("pro", True, 1, None)]
    with pytest.raises(ContractViolation, match="plan"):
        Subscribed.load({"account_id": "a1", "email": None, "plan": "gold", "seq": 2})
    with pytest.raises(ContractViolation, match="email"):
        Subscribed.load({"account_id": "a1", "seq": 2})  # nullable, yet required


def test_fields_describe_types_nullability_enums_defaults_pii_and_computed() -> None:
    info = {f.name: f for f in fields_of(Subscribed)}
    assert (info["email"].required, info["email"].nullable, info["email"].pii) == (
        True,
        True,
        True,
    )
    assert info["plan"].enum == ["free", "pro", "team"]
    assert (info["plan"].required, info["plan"].default) == (False, "free")
    assert info["account_id"].description == "The billing account."
    assert info["paid"].computed
    assert info["paid"].description == "Whether the plan costs money."
    schema = Subscribed.json_schema()
    assert schema["properties"]["paid"]["readOnly"] is True
    assert schema["x-interlock-marker"] == "seq"
    assert "paid" not in schema.get("required", [])


def test_catalogue_names_systems_of_record_and_owner_flows(app: Interlock) -> None:
    @app.flow(Subscribed, owner="billing@acme.test", system_of_record="stripe")
    async def provision(event: Subscribed) -> None: ...

    doc = schema_document(app)
    (entry,) = doc["contracts"]
    assert entry["systems_of_record"] == ["stripe"]
    assert entry["flows"] == [{"name": "provision", "owner": "billing@acme.test", "version": 1}]
    page = markdown(app)
    assert "## plan.subscribed (v1) — `Subscribed`" in page
    assert "An account chose a plan." in page
    assert "- Version marker: `seq`" in page
    assert "| `paid` (computed) | boolean |" in page
    assert '| `plan` | string | no | no | `free`, `pro`, `team` | `"free"` |' in page
