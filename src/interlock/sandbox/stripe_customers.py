"""Stripe customers: create, retrieve, update, delete, list (by email) and search.

Search understands the clauses connectors use: ``email:'x'``, ``name:'x'`` and
``metadata['key']:'value'``, joined by spaces or ``AND``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from interlock.sandbox.stripe_wire import (
    StripeError,
    check_params,
    merge_metadata,
    page,
)

if TYPE_CHECKING:
    from interlock.sandbox.stripe import StripeSimulator

Api = Callable[["StripeSimulator", Mapping[str, Any], dict[str, Any]], dict[str, Any]]
_CUSTOMER_PARAMS = (
    "address",
    "balance",
    "description",
    "email",
    "invoice_settings",
    "metadata",
    "name",
    "payment_method",
    "phone",
    "preferred_locales",
    "shipping",
    "tax_exempt",
)


def _get(collection: str, kind: str) -> Api:
    def get(
        sim: StripeSimulator, path: Mapping[str, Any], params: dict[str, Any]
    ) -> dict[str, Any]:
        check_params(params, ())
        return sim.find(collection, kind, path["id"])

    return get


def _create_customer(
    sim: StripeSimulator, path: Mapping[str, Any], params: dict[str, Any]
) -> dict[str, Any]:
    check_params(params, _CUSTOMER_PARAMS)
    _check_email(params.get("email"))
    ident = sim.random_id("cus_", 14)
    customer: dict[str, Any] = {
        "id": ident,
        "object": "customer",
        "address": params.get("address"),
        "balance": int(params.get("balance") or 0),
        "created": sim.now(),
        "currency": None,
        "default_source": None,
        "delinquent": False,
        "description": params.get("description"),
        "discount": None,
        "email": params.get("email"),
        "invoice_prefix": ident[4:12].upper(),
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": params.get("payment_method"),
            "footer": None,
            "rendering_options": None,
        },
        "livemode": False,
        "metadata": merge_metadata({}, params.get("metadata")),
        "name": params.get("name"),
        "next_invoice_sequence": 1,
        "phone": params.get("phone"),
        "preferred_locales": params.get("preferred_locales") or [],
        "shipping": params.get("shipping"),
        "tax_exempt": params.get("tax_exempt") or "none",
        "test_clock": None,
    }
    _apply_invoice_settings(customer, params)
    sim.state["customers"][ident] = customer
    return customer


def _apply_invoice_settings(customer: dict[str, Any], params: Mapping[str, Any]) -> None:
    settings = params.get("invoice_settings")
    if isinstance(settings, dict) and "default_payment_method" in settings:
        customer["invoice_settings"]["default_payment_method"] = (
            settings["default_payment_method"] or None
        )


def _check_email(email: Any) -> None:
    if email is not None and email != "" and "@" not in str(email):
        raise StripeError(
            400, f"Invalid email address: {email}", code="email_invalid", param="email", saved=False
        )


def _update_customer(
    sim: StripeSimulator, path: Mapping[str, Any], params: dict[str, Any]
) -> dict[str, Any]:
    check_params(params, _CUSTOMER_PARAMS)
    customer = sim.find("customers", "customer", path["id"])
    _check_email(params.get("email"))
    for field in ("address", "description", "email", "name", "phone", "shipping", "tax_exempt"):
        if field in params:
            customer[field] = params[field] or None
    customer["metadata"] = merge_metadata(customer["metadata"], params.get("metadata"))
    _apply_invoice_settings(customer, params)
    return customer


def _delete_customer(
    sim: StripeSimulator, path: Mapping[str, Any], params: dict[str, Any]
) -> dict[str, Any]:
    sim.find("customers", "customer", path["id"])
    del sim.state["customers"][path["id"]]
    return {"id": path["id"], "object": "customer", "deleted": True}


def _list_customers(
    sim: StripeSimulator, path: Mapping[str, Any], params: dict[str, Any]
) -> dict[str, Any]:
    check_params(params, ("limit", "starting_after", "ending_before", "email", "created"))
    customers = sim.newest_first("customers")
    if params.get("email"):
        customers = [c for c in customers if c["email"] == params["email"]]
    return page(customers, params, "/v1/customers", "customer")


def _search_customers(
    sim: StripeSimulator, path: Mapping[str, Any], params: dict[str, Any]
) -> dict[str, Any]:
    """Search with the clauses connectors use: ``email:'x'``, ``name:'x'``, ``metadata['k']:'v'``."""
    check_params(params, ("query", "limit", "page"))
    query = params.get("query")
    if not query:
        raise StripeError(400, "Missing required param: query.", code="parameter_missing")
    clauses = re.findall(r"(\w+)(?:\['([^']+)'\])?\s*:\s*'([^']*)'", str(query))
    if not clauses:
        raise StripeError(400, f"Invalid search query: {query}", param="query", saved=False)
    found = [
        c
        for c in sim.newest_first("customers")
        if all(
            (c.get("metadata", {}).get(sub) if field == "metadata" else c.get(field)) == value
            for field, sub, value in clauses
        )
    ]
    limit = int(params.get("limit") or 10)
    return {
        "object": "search_result",
        "data": found[:limit],
        "has_more": len(found) > limit,
        "next_page": None,
        "url": "/v1/customers/search",
    }


ROUTES: list[tuple[str, str, Api]] = [
    ("/v1/customers", "GET", _list_customers),
    ("/v1/customers", "POST", _create_customer),
    ("/v1/customers/search", "GET", _search_customers),
    ("/v1/customers/{id}", "GET", _get("customers", "customer")),
    ("/v1/customers/{id}", "POST", _update_customer),
    ("/v1/customers/{id}", "DELETE", _delete_customer),
]
