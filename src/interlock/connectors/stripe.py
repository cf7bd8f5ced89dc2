"""The Stripe connector: customers, invoices, payment intents and refunds, in Stripe's own API.

::

    stripe = app.connector(Stripe(api_key="stripe-api-key"))     # the secret's name

    @app.flow(PaymentFailed, owner="billing@acme.test")
    async def refund(event: PaymentFailed, ctx: Context) -> None:
        stripe = ctx.connector(Stripe)
        intent = await ctx.step("intent", stripe.get_payment_intent, event.payment_intent)
        if intent["status"] == "succeeded":                  # a step's result is its JSON
            await ctx.step("refund", stripe.refund, payment_intent=intent["id"])  # keyed per step

See :class:`Stripe` for every operation; payment intents and refunds are in
:mod:`~interlock.connectors.stripe_payments`, the objects returned and Stripe's wire
format in :mod:`~interlock.connectors.stripe_wire`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from interlock.connectors.auth import BearerToken
from interlock.connectors.base import Probe
from interlock.connectors.limiter import Rate
from interlock.connectors.stripe_payments import StripePayments
from interlock.connectors.stripe_wire import (
    API_VERSION,
    Customer,
    Invoice,
    InvoiceItem,
    PaymentIntent,
    Refund,
)

CollectionMethod = Literal["charge_automatically", "send_invoice"]


class Stripe(StripePayments):
    """Stripe's API (``https://api.stripe.com/v1``), authenticated with a secret or
    restricted key (``api_key`` names the secret) and pinned to ``api_version``.

    Every POST is form-encoded and carries an ``Idempotency-Key`` (the step's inside a
    flow, or ``idempotency_key=``): a retry gets Stripe's first answer instead of a
    second charge or refund. Operations:

    - customers: :meth:`create_customer` (``POST /v1/customers``), :meth:`get_customer`,
      :meth:`update_customer`, :meth:`delete_customer`, :meth:`find_customer` (by email,
      ``GET /v1/customers?email=``), :meth:`search_customers` (``/v1/customers/search``)
    - invoices: :meth:`add_invoice_item` (``POST /v1/invoiceitems``),
      :meth:`create_invoice`, :meth:`get_invoice`, :meth:`list_invoices`,
      :meth:`finalize_invoice`, :meth:`pay_invoice`, :meth:`void_invoice`,
      :meth:`mark_invoice_uncollectible` (``POST /v1/invoices/{id}/{action}``)
    - payment intents: :meth:`create_payment_intent`, :meth:`get_payment_intent`,
      :meth:`list_payment_intents`, :meth:`confirm_payment_intent`,
      :meth:`capture_payment_intent`, :meth:`cancel_payment_intent`
    - refunds: :meth:`refund` (``POST /v1/refunds``), :meth:`get_refund`, :meth:`list_refunds`
    - probe: ``GET /v1/customers?limit=1``

    Errors keep Stripe's code and message (``card_declined … (decline_code
    insufficient_funds)``): validation and card errors are permanent, 401/403 a
    ``PermissionDenied``, ``resource_missing`` a ``ResourceNotFound``, 429 a
    ``RateLimited`` after ``Retry-After``; 5xx, timeouts, resets and a key still in use
    by a concurrent request are retried, and ``Stripe-Should-Retry`` has the last word.
    """

    def __init__(
        self,
        name: str = "stripe",
        *,
        api_key: str = "stripe-api-key",
        api_version: str = API_VERSION,
        base_url: str = "https://api.stripe.com",
        **options: Any,
    ) -> None:
        options.setdefault("auth", BearerToken(secret=api_key))
        options.setdefault("rate", Rate(25, per="1s"))  # test mode's limit; live allows 100
        options.setdefault("probes", (Probe("customers", "/v1/customers", params={"limit": "1"}),))
        super().__init__(name, base_url=base_url, **options)
        self.api_version = api_version

    # -- customers ---------------------------------------------------------------------
    async def create_customer(
        self,
        *,
        email: str | None = None,
        name: str | None = None,
        description: str | None = None,
        metadata: Mapping[str, str] | None = None,
        payment_method: str | None = None,
        idempotency_key: str | None = None,
    ) -> Customer:
        """A customer; ``payment_method`` (e.g. ``pm_card_visa``) becomes their default."""
        settings = {"default_payment_method": payment_method} if payment_method else None
        return await self._post(
            "/v1/customers",
            Customer,
            "create_customer",
            idempotency_key,
            email=email,
            name=name,
            description=description,
            metadata=metadata,
            payment_method=payment_method,
            invoice_settings=settings,
        )

    async def get_customer(self, customer_id: str) -> Customer:
        return await self.fetch(
            "GET", f"/v1/customers/{customer_id}", Customer, operation="get_customer"
        )

    async def update_customer(
        self,
        customer_id: str,
        *,
        email: str | None = None,
        name: str | None = None,
        description: str | None = None,
        metadata: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> Customer:
        """Set the given fields (``None`` leaves a field alone; metadata keys merge)."""
        return await self._post(
            f"/v1/customers/{customer_id}",
            Customer,
            "update_customer",
            idempotency_key,
            email=email,
            name=name,
            description=description,
            metadata=metadata,
        )

    async def delete_customer(self, customer_id: str) -> Customer:
        return await self.fetch(
            "DELETE", f"/v1/customers/{customer_id}", Customer, operation="delete_customer"
        )

    async def find_customer(self, email: str) -> Customer | None:
        """The newest customer with this email, or None (a list, so never stale)."""
        found = await self._list("/v1/customers", Customer, "find_customer", 1, email=email)
        return found[0] if found else None

    async def search_customers(self, query: str, *, limit: int = 10) -> list[Customer]:
        """Stripe's search language: ``email:'jo@x.test'``, ``metadata['order_id']:'1042'``."""
        return await self.fetch_all(
            "GET",
            "/v1/customers/search",
            Customer,
            operation="search_customers",
            envelope="data",
            params={"query": query, "limit": max(1, min(100, limit))},
        )

    # -- invoices ----------------------------------------------------------------------
    async def add_invoice_item(
        self,
        customer: str,
        amount: int,
        *,
        currency: str = "usd",
        description: str | None = None,
        invoice: str | None = None,
        metadata: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> InvoiceItem:
        """An amount (smallest currency unit) on a draft ``invoice``, or pending for the
        customer's next invoice."""
        return await self._post(
            "/v1/invoiceitems",
            InvoiceItem,
            "add_invoice_item",
            idempotency_key,
            customer=customer,
            amount=amount,
            currency=currency,
            description=description,
            invoice=invoice,
            metadata=metadata,
        )

    async def create_invoice(
        self,
        customer: str,
        *,
        collection_method: CollectionMethod = "charge_automatically",
        days_until_due: int | None = None,
        description: str | None = None,
        include_pending_items: bool = True,
        auto_advance: bool | None = None,
        metadata: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> Invoice:
        """A draft invoice for ``customer`` (with their pending items, by default)."""
        return await self._post(
            "/v1/invoices",
            Invoice,
            "create_invoice",
            idempotency_key,
            customer=customer,
            collection_method=collection_method,
            days_until_due=days_until_due,
            description=description,
            auto_advance=auto_advance,
            metadata=metadata,
            pending_invoice_items_behavior="include" if include_pending_items else None,
        )

    async def get_invoice(self, invoice_id: str) -> Invoice:
        return await self.fetch(
            "GET", f"/v1/invoices/{invoice_id}", Invoice, operation="get_invoice"
        )

    async def list_invoices(
        self, *, customer: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[Invoice]:
        return await self._list(
            "/v1/invoices", Invoice, "list_invoices", limit, customer=customer, status=status
        )

    async def finalize_invoice(
        self, invoice_id: str, *, idempotency_key: str | None = None
    ) -> Invoice:
        """Draft → open (a zero total is paid at once)."""
        path = f"/v1/invoices/{invoice_id}/finalize"
        return await self._post(path, Invoice, "finalize_invoice", idempotency_key)

    async def pay_invoice(
        self,
        invoice_id: str,
        *,
        payment_method: str | None = None,
        paid_out_of_band: bool = False,
        idempotency_key: str | None = None,
    ) -> Invoice:
        """Charge an open invoice (its, or the customer's, default payment method), or mark
        it paid elsewhere; a decline is a permanent ``card_declined``."""
        return await self._post(
            f"/v1/invoices/{invoice_id}/pay",
            Invoice,
            "pay_invoice",
            idempotency_key,
            payment_method=payment_method,
            paid_out_of_band=paid_out_of_band or None,
        )

    async def void_invoice(self, invoice_id: str, *, idempotency_key: str | None = None) -> Invoice:
        path = f"/v1/invoices/{invoice_id}/void"
        return await self._post(path, Invoice, "void_invoice", idempotency_key)

    async def mark_invoice_uncollectible(
        self, invoice_id: str, *, idempotency_key: str | None = None
    ) -> Invoice:
        path = f"/v1/invoices/{invoice_id}/mark_uncollectible"
        return await self._post(path, Invoice, "mark_invoice_uncollectible", idempotency_key)


__all__ = [
    "Customer",
    "Invoice",
    "InvoiceItem",
    "PaymentIntent",
    "Refund",
    "Stripe",
]
