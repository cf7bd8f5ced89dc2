"""The shop's webhook sources: Stripe invoices, Shopify fulfilments and HubSpot contacts.

Each mapping turns a vendor payload into contracts; the golden fixtures in
``examples/fixtures/<source>/`` prove them on real-shaped payloads, edge cases
included (``interlock contracts check -a examples.shop:app``).
"""

from __future__ import annotations

from typing import Any, Literal

from examples.shop import OrderShipped, PaymentFailed, app
from interlock import PII, Contract

CARRIERS = {"ups": "ups", "fedex": "fedex", "dhl": "dhl", "dhl express": "dhl"}


class ContactCreated(Contract, event="contact.created", version=1, subject="contact_id"):
    """A person entered the CRM (a HubSpot workflow posts the contact's properties)."""

    contact_id: str
    """HubSpot's record id."""
    email: PII[str] | None
    """Missing for contacts created from a phone call or a business card."""
    name: PII[str]
    """First and last name as entered; any script."""
    lifecycle_stage: Literal["subscriber", "lead", "marketingqualifiedlead", "customer"]
    country: str | None = None


app.contract(ContactCreated)

stripe = app.webhook("stripe", verify="stripe", secret="stripe-webhook-secret")
shopify = app.webhook("shopify", verify="shopify", secret="shopify-webhook-secret")
hubspot = app.webhook(
    "hubspot", verify="hmac", secret="hubspot-webhook-secret", header="X-Shop-Signature"
)


@stripe.maps("invoice.payment_failed")
def invoice_payment_failed(body: dict[str, Any]) -> PaymentFailed:
    invoice = body["data"]["object"]
    return PaymentFailed(
        invoice_id=invoice["id"],
        account_id=invoice["customer"],
        amount_cents=invoice["amount_due"],
        email=invoice["customer_email"],
    )


@shopify.maps("orders/fulfilled")
def order_fulfilled(body: dict[str, Any]) -> list[OrderShipped]:
    """One event per fulfilment: an order shipped in two parcels ships twice."""
    email = body.get("email") or body["customer"]["email"]
    return [
        OrderShipped(
            order_id=str(body["id"]),
            account_id=f"shopify:{body['customer']['id']}",
            email=email,
            carrier=CARRIERS.get(
                (f.get("tracking_company") or "").lower(), (f.get("tracking_company") or "")
            ),  # an unknown carrier stays as sent, and fails the contract
        )
        for f in body["fulfillments"]
        if f.get("status") == "success"
    ]


@hubspot.maps()
def contact_created(body: dict[str, Any]) -> ContactCreated | None:
    if body.get("subscriptionType") != "contact.creation":
        return None
    props = body["properties"]
    name = " ".join(p for p in (props.get("firstname"), props.get("lastname")) if p)
    return ContactCreated(
        contact_id=str(body["objectId"]),
        email=props.get("email") or None,
        name=name,
        lifecycle_stage=props.get("lifecyclestage") or "subscriber",
        country=props.get("country"),
    )
