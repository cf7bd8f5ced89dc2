"""Shopify customers: create, update, search, and the find-or-create orders use."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from interlock.sandbox.shopify_wire import (
    Handler,
    ShopifyError,
    counter,
    deleter,
    envelope,
    find,
    getter,
    gid,
    lister,
)
from interlock.sandbox.simulator import Call, json_response

if TYPE_CHECKING:
    from interlock.sandbox.shopify import ShopifySimulator

Obj = dict[str, Any]


def _check_customer(sim: ShopifySimulator, fields: Obj, own: int | None) -> None:
    email = fields.get("email")
    if email is not None and ("@" not in str(email) or " " in str(email)):
        raise ShopifyError(422, {"email": ["is invalid"]})
    for other in sim.state["customers"].values():
        if email and other["id"] != own and (other["email"] or "").lower() == str(email).lower():
            raise ShopifyError(422, {"email": ["has already been taken"]})


def new_customer(sim: ShopifySimulator, fields: Obj) -> Obj:
    _check_customer(sim, fields, None)
    if not (
        fields.get("email")
        or fields.get("phone")
        or fields.get("first_name")
        or fields.get("last_name")
    ):
        raise ShopifyError(
            422, {"base": ["Customer must have a name, phone number or email address"]}
        )
    ident, now = sim.new_id(), sim.timestamp()
    customer: Obj = {
        "id": ident,
        "email": fields.get("email"),
        "created_at": now,
        "updated_at": now,
        "first_name": fields.get("first_name"),
        "last_name": fields.get("last_name"),
        "orders_count": 0,
        "state": "disabled",
        "total_spent": "0.00",
        "last_order_id": None,
        "note": fields.get("note"),
        "verified_email": bool(fields.get("verified_email", True)),
        "multipass_identifier": None,
        "tax_exempt": bool(fields.get("tax_exempt", False)),
        "tags": fields.get("tags") or "",
        "last_order_name": None,
        "currency": "USD",
        "phone": fields.get("phone"),
        "addresses": fields.get("addresses") or [],
        "tax_exemptions": [],
        "email_marketing_consent": None,
        "sms_marketing_consent": None,
        "admin_graphql_api_id": gid("Customer", ident),
        "default_address": None,
    }
    sim.state["customers"][ident] = customer
    return customer


def create_customer(sim: ShopifySimulator, call: Call) -> Response:
    return json_response({"customer": new_customer(sim, envelope(call, "customer"))}, 201)


def update_customer(sim: ShopifySimulator, call: Call) -> Response:
    customer = find(sim, "customers", call.params["id"])
    fields = envelope(call, "customer")
    _check_customer(sim, fields, customer["id"])
    for name in ("email", "first_name", "last_name", "note", "tags", "phone", "tax_exempt"):
        if name in fields:
            customer[name] = fields[name]
    customer["updated_at"] = sim.timestamp()
    return json_response({"customer": customer})


def search_customers(sim: ShopifySimulator, call: Call) -> Response:
    query = call.query.get("query", "")
    terms = [t.partition(":") for t in query.split()]
    found = [
        c
        for c in sim.state["customers"].values()
        if all(
            str(c.get(f) if s else " ".join(str(v) for v in c.values())).lower().find(v.lower())
            >= 0
            for f, s, v in terms
        )
    ]
    return json_response({"customers": found})


ROUTES: list[tuple[str, str, Handler]] = [
    ("/customers.json", "GET", lister("customers")),
    ("/customers.json", "POST", create_customer),
    ("/customers/search.json", "GET", search_customers),
    ("/customers/count.json", "GET", counter("customers")),
    ("/customers/{id}.json", "GET", getter("customers", "customer")),
    ("/customers/{id}.json", "PUT", update_customer),
    ("/customers/{id}.json", "DELETE", deleter("customers")),
]
