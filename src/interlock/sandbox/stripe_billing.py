"""Stripe invoices and invoice items: draft → open → paid | void | uncollectible.

``POST /v1/invoiceitems`` adds an amount to a draft invoice (``invoice=in_…``) or
leaves it pending for the customer's next invoice created with
``pending_invoice_items_behavior=include``. Finalizing opens the invoice (a
zero total is paid at once); paying charges the invoice's or the customer's
default payment method, which may decline with a 402 like a payment intent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from interlock.sandbox.stripe_payments import charge_card
from interlock.sandbox.stripe_wire import (
    StripeError,
    boolean,
    check_params,
    integer,
    merge_metadata,
    missing,
    page,
)

if TYPE_CHECKING:
    from interlock.sandbox.stripe import StripeSimulator

Params = dict[str, Any]
_INVOICE_PARAMS = (
    "customer",
    "auto_advance",
    "collection_method",
    "currency",
    "days_until_due",
    "default_payment_method",
    "description",
    "due_date",
    "metadata",
    "pending_invoice_items_behavior",
    "footer",
)
_ITEM_PARAMS = (
    "customer",
    "amount",
    "currency",
    "description",
    "invoice",
    "metadata",
    "quantity",
    "unit_amount",
)


def _not_editable(invoice: Mapping[str, Any], action: str) -> StripeError:
    return StripeError(
        400,
        f"You can only {action} draft invoices. This invoice is {invoice['status']}.",
        code="invoice_not_editable",
    )


def _lines_total(invoice: dict[str, Any]) -> None:
    total = sum(line["amount"] for line in invoice["lines"]["data"])
    invoice.update(subtotal=total, total=total, amount_due=total, amount_remaining=total)
    invoice["lines"]["total_count"] = len(invoice["lines"]["data"])


def _line(item: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": "il_" + item["id"][3:],
        "object": "line_item",
        "amount": item["amount"],
        "currency": item["currency"],
        "description": item["description"],
        "invoice_item": item["id"],
        "metadata": item["metadata"],
        "quantity": item["quantity"],
        "type": "invoiceitem",
    }


def create_invoice(sim: StripeSimulator, path: Mapping[str, Any], params: Params) -> Params:
    check_params(params, _INVOICE_PARAMS)
    if not params.get("customer"):
        raise missing("customer")
    customer = sim.find("customers", "customer", params["customer"], "customer")
    method = params.get("collection_method") or "charge_automatically"
    if method not in ("charge_automatically", "send_invoice"):
        raise StripeError(400, f"Invalid collection_method: {method}", param="collection_method")
    days = integer(params, "days_until_due")
    if method == "send_invoice" and days is None and not params.get("due_date"):
        raise missing("days_until_due")
    ident = sim.random_id("in_", 24)
    now = sim.now()
    invoice: Params = {
        "id": ident,
        "object": "invoice",
        "amount_due": 0,
        "amount_paid": 0,
        "amount_remaining": 0,
        "attempt_count": 0,
        "attempted": False,
        "auto_advance": boolean(params, "auto_advance", method == "charge_automatically"),
        "billing_reason": "manual",
        "charge": None,
        "collection_method": method,
        "created": now,
        "currency": params.get("currency") or "usd",
        "customer": customer["id"],
        "customer_email": customer["email"],
        "customer_name": customer["name"],
        "default_payment_method": params.get("default_payment_method"),
        "description": params.get("description"),
        "due_date": now + days * 86400 if days is not None else None,
        "hosted_invoice_url": None,
        "invoice_pdf": None,
        "last_finalization_error": None,
        "lines": {
            "object": "list",
            "data": [],
            "has_more": False,
            "total_count": 0,
            "url": f"/v1/invoices/{ident}/lines",
        },
        "livemode": False,
        "metadata": merge_metadata({}, params.get("metadata")),
        "next_payment_attempt": None,
        "number": None,
        "paid": False,
        "paid_out_of_band": False,
        "payment_intent": None,
        "period_end": now,
        "period_start": now,
        "status": "draft",
        "status_transitions": {
            "finalized_at": None,
            "marked_uncollectible_at": None,
            "paid_at": None,
            "voided_at": None,
        },
        "subtotal": 0,
        "total": 0,
    }
    if params.get("pending_invoice_items_behavior") == "include":
        for item in sim.state["invoiceitems"].values():
            if item["customer"] == customer["id"] and item["invoice"] is None:
                item["invoice"] = ident
                invoice["lines"]["data"].append(_line(item))
    _lines_total(invoice)
    sim.state["invoices"][ident] = invoice
    return invoice


def update_invoice(sim: StripeSimulator, path: Mapping[str, Any], params: Params) -> Params:
    check_params(params, _INVOICE_PARAMS)
    invoice = sim.find("invoices", "invoice", path["id"])
    editable = set(params) - {"metadata", "expand", "auto_advance"}
    if editable and invoice["status"] != "draft":
        raise _not_editable(invoice, "update")
    for field in ("description", "default_payment_method", "footer"):
        if field in params:
            invoice[field] = params[field] or None
    if "auto_advance" in params:
        invoice["auto_advance"] = boolean(params, "auto_advance")
    invoice["metadata"] = merge_metadata(invoice["metadata"], params.get("metadata"))
    return invoice


def delete_invoice(sim: StripeSimulator, path: Mapping[str, Any], params: Params) -> Params:
    invoice = sim.find("invoices", "invoice", path["id"])
    if invoice["status"] != "draft":
        raise StripeError(400, "You can only delete draft invoices.", code="invoice_not_editable")
    del sim.state["invoices"][invoice["id"]]
    return {"id": invoice["id"], "object": "invoice", "deleted": True}


def list_invoices(sim: StripeSimulator, path: Mapping[str, Any], params: Params) -> Params:
    check_params(params, ("customer", "status", "limit", "starting_after", "ending_before"))
    invoices = sim.newest_first("invoices")
    for field in ("customer", "status"):
        if params.get(field):
            invoices = [i for i in invoices if i[field] == params[field]]
    return page(invoices, params, "/v1/invoices", "invoice")


def get_invoice(sim: StripeSimulator, path: Mapping[str, Any], params: Params) -> Params:
    check_params(params, ())
    return sim.find("invoices", "invoice", path["id"])


def finalize_invoice(sim: StripeSimulator, path: Mapping[str, Any], params: Params) -> Params:
    check_params(params, ("auto_advance",))
    invoice = sim.find("invoices", "invoice", path["id"])
    if invoice["status"] != "draft":
        raise _not_editable(invoice, "finalize")
    customer = sim.state["customers"].get(invoice["customer"], {})
    sequence = customer.get("next_invoice_sequence", 1)
    customer["next_invoice_sequence"] = sequence + 1
    invoice["number"] = f"{customer.get('invoice_prefix', 'SANDBOX')}-{sequence:04d}"
    invoice["status"] = "open"
    invoice["status_transitions"]["finalized_at"] = sim.now()
    invoice["hosted_invoice_url"] = f"https://invoice.stripe.com/i/{invoice['id']}"
    invoice["invoice_pdf"] = f"https://pay.stripe.com/invoice/{invoice['id']}/pdf"
    if invoice["amount_due"] == 0:
        _mark_paid(sim, invoice, out_of_band=False)
    return invoice


def _mark_paid(sim: StripeSimulator, invoice: Params, *, out_of_band: bool) -> None:
    invoice.update(status="paid", paid=True, paid_out_of_band=out_of_band, amount_remaining=0)
    invoice["amount_paid"] = invoice["amount_due"]
    invoice["status_transitions"]["paid_at"] = sim.now()


def pay_invoice(sim: StripeSimulator, path: Mapping[str, Any], params: Params) -> Params:
    check_params(params, ("paid_out_of_band", "payment_method", "off_session", "forgive"))
    invoice = sim.find("invoices", "invoice", path["id"])
    if invoice["status"] == "paid":
        raise StripeError(400, "Invoice is already paid", code="invoice_already_paid")
    if invoice["status"] != "open":
        raise StripeError(400, f"You cannot pay an invoice with status {invoice['status']}.")
    if boolean(params, "paid_out_of_band"):
        _mark_paid(sim, invoice, out_of_band=True)
        return invoice
    customer = sim.state["customers"].get(invoice["customer"], {})
    method = (
        params.get("payment_method")
        or invoice["default_payment_method"]
        or customer.get("invoice_settings", {}).get("default_payment_method")
    )
    if not method:
        raise StripeError(
            400,
            "This customer has no attached payment source or default payment method. Please "
            "consider adding a default payment method.",
        )
    invoice["attempted"] = True
    invoice["attempt_count"] += 1
    charge = charge_card(
        sim, method, invoice["amount_due"], invoice["currency"], invoice["customer"]
    )
    invoice["charge"] = charge["id"]
    if charge["status"] == "failed":
        raise StripeError(
            402,
            charge["failure_message"],
            type="card_error",
            code=charge["outcome"]["reason_code"],
            decline_code=charge["outcome"]["reason"],
            charge=charge["id"],
        )
    _mark_paid(sim, invoice, out_of_band=False)
    return invoice


def _transition(
    status: str, stamp: str
) -> Callable[[StripeSimulator, Mapping[str, Any], Params], Params]:
    def act(sim: StripeSimulator, path: Mapping[str, Any], params: Params) -> Params:
        check_params(params, ())
        invoice = sim.find("invoices", "invoice", path["id"])
        if invoice["status"] != "open":
            raise StripeError(
                400,
                f"You can only mark open invoices as {status}; this one is {invoice['status']}.",
            )
        invoice["status"] = status
        invoice["status_transitions"][stamp] = sim.now()
        return invoice

    return act


def create_item(sim: StripeSimulator, path: Mapping[str, Any], params: Params) -> Params:
    check_params(params, _ITEM_PARAMS)
    if not params.get("customer"):
        raise missing("customer")
    customer = sim.find("customers", "customer", params["customer"], "customer")
    quantity = integer(params, "quantity") or 1
    unit = integer(params, "unit_amount")
    amount = integer(params, "amount")
    if amount is None and unit is None:
        raise missing("amount")
    amount = amount if amount is not None else (unit or 0) * quantity
    invoice = None
    if params.get("invoice"):
        invoice = sim.find("invoices", "invoice", params["invoice"], "invoice")
        if invoice["status"] != "draft":
            raise _not_editable(invoice, "add items to")
    ident = sim.random_id("ii_", 24)
    item: Params = {
        "id": ident,
        "object": "invoiceitem",
        "amount": amount,
        "currency": params.get("currency") or "usd",
        "customer": customer["id"],
        "date": sim.now(),
        "description": params.get("description"),
        "invoice": invoice["id"] if invoice else None,
        "livemode": False,
        "metadata": merge_metadata({}, params.get("metadata")),
        "quantity": quantity,
        "unit_amount": unit if unit is not None else amount,
    }
    sim.state["invoiceitems"][ident] = item
    if invoice is not None:
        invoice["lines"]["data"].append(_line(item))
        _lines_total(invoice)
    return item


ROUTES: list[tuple[str, str, Callable[[StripeSimulator, Mapping[str, Any], Params], Params]]] = [
    ("/v1/invoices", "POST", create_invoice),
    ("/v1/invoices", "GET", list_invoices),
    ("/v1/invoices/{id}", "GET", get_invoice),
    ("/v1/invoices/{id}", "POST", update_invoice),
    ("/v1/invoices/{id}", "DELETE", delete_invoice),
    ("/v1/invoices/{id}/finalize", "POST", finalize_invoice),
    ("/v1/invoices/{id}/pay", "POST", pay_invoice),
    ("/v1/invoices/{id}/void", "POST", _transition("void", "voided_at")),
    (
        "/v1/invoices/{id}/mark_uncollectible",
        "POST",
        _transition("uncollectible", "marked_uncollectible_at"),
    ),
    ("/v1/invoiceitems", "POST", create_item),
]
