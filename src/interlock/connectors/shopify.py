"""The Shopify connector: orders, fulfillments and customers in the Admin REST API.

::

    shop = app.connector(Shopify(shop="acme", access_token="shopify-token", api_version="2024-10"))

    @app.flow(OrderPaid, owner="ops@acme.test")
    async def ship(event: OrderPaid, ctx: Context) -> None:
        shop = ctx.connector(Shopify)
        await ctx.step("fulfill", shop.fulfill_order, event.order_id,
                       tracking_number=event.tracking, tracking_company="UPS")

See :class:`Shopify` for every operation; fulfillments are in
:mod:`~interlock.connectors.shopify_fulfillments`, the objects returned and Shopify's
wire format in :mod:`~interlock.connectors.shopify_wire`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from interlock.connectors.auth import ApiKey, Auth
from interlock.connectors.base import Probe
from interlock.connectors.limiter import Rate
from interlock.connectors.shopify_fulfillments import ShopifyFulfillments
from interlock.connectors.shopify_wire import (
    TOKEN_HEADER,
    Customer,
    Fulfillment,
    FulfillmentOrder,
    LineItem,
    Order,
    ShopifyClientCredentials,
    ShopifyRefreshToken,
)
from interlock.connectors.vendor import present
from interlock.errors import VendorRejected

OrderStatus = Literal["open", "closed", "cancelled", "any"]


class Shopify(ShopifyFulfillments):
    """Shopify's Admin REST API for one shop (``https://{shop}.myshopify.com/admin/api/
    {api_version}``), with the app's access token (``access_token`` names the secret,
    sent in ``X-Shopify-Access-Token``) or OAuth (:meth:`oauth`).

    Calls are paced by Shopify's leaky bucket (``bucket`` calls deep, draining
    ``leak_per_second``; 40 and 2 by default, 400 and 20 on Plus): the connector
    reads ``X-Shopify-Shop-Api-Call-Limit`` on every answer and pauses before the
    bucket fills, and honours ``Retry-After`` on a 429. Shopify's REST API has no
    idempotency keys, so writes rely on natural keys: a fulfillment is not created
    twice for the same tracking number or for an order already fulfilled, and
    :meth:`upsert_customer` finds by email first. Operations:

    - orders: :meth:`create_order` (``POST orders.json``), :meth:`get_order`
      (``GET orders/{id}.json``), :meth:`list_orders` (``GET orders.json``, following
      ``Link`` ``page_info`` cursors), :meth:`count_orders`, :meth:`update_order`
      (``PUT orders/{id}.json``), :meth:`close_order`, :meth:`reopen_order`,
      :meth:`cancel_order` (``POST orders/{id}/close|open|cancel.json``)
    - fulfillments: :meth:`fulfillment_orders` (``GET orders/{id}/fulfillment_orders.json``),
      :meth:`fulfillments` (``GET orders/{id}/fulfillments.json``), :meth:`fulfill_order`
      (``POST fulfillments.json`` with ``line_items_by_fulfillment_order``),
      :meth:`update_tracking` (``POST fulfillments/{id}/update_tracking.json``)
    - customers: :meth:`create_customer`, :meth:`get_customer`, :meth:`update_customer`,
      :meth:`find_customer` (``GET customers/search.json?query=email:…``),
      :meth:`upsert_customer`
    - probe: ``GET orders/count.json``

    Errors keep Shopify's message (``email has already been taken``): 400/422 are
    permanent, 401/403 a ``PermissionDenied``, 404 a ``ResourceNotFound``, 429 a
    ``RateLimited``; 5xx, timeouts and resets are retried. An answer served by an API
    version other than the one asked for is logged once (``connector.api_version``).
    """

    def __init__(
        self,
        name: str = "shopify",
        *,
        shop: str,
        access_token: str = "shopify-token",
        api_version: str = "2024-10",
        base_url: str | None = None,
        bucket: int = 40,
        leak_per_second: float = 2.0,
        **options: Any,
    ) -> None:
        handle = shop.removesuffix(".myshopify.com")
        options.setdefault("auth", ApiKey(secret=access_token, header=TOKEN_HEADER))
        options.setdefault("rate", Rate(leak_per_second, per="1s", burst=bucket))
        prefix = f"/admin/api/{api_version}"
        options.setdefault("probes", (Probe("orders", prefix + "/orders/count.json"),))
        super().__init__(name, base_url=base_url or f"https://{handle}.myshopify.com", **options)
        self.shop = handle
        self.api_version = api_version
        self.prefix = prefix
        self.leak_per_second = leak_per_second

    @staticmethod
    def oauth(
        *,
        client_id: str,
        client_secret: str = "shopify-client-secret",
        refresh_token: str | None = None,
        scope: str | None = None,
    ) -> Auth:
        """OAuth at ``/admin/oauth/access_token``: expiring offline tokens refreshed (and
        rotated) from the ``refresh_token`` secret, or client credentials without one."""
        common: dict[str, Any] = {
            "token_url": "/admin/oauth/access_token",
            "client_id": client_id,
            "client_secret": client_secret,
            "scope": scope,
        }
        if refresh_token is None:
            return ShopifyClientCredentials(**common)
        return ShopifyRefreshToken(refresh_token=refresh_token, **common)

    # -- orders ------------------------------------------------------------------------
    async def create_order(
        self,
        line_items: Sequence[Mapping[str, Any]],
        *,
        email: str | None = None,
        customer_id: int | None = None,
        financial_status: str | None = None,
        note: str | None = None,
        tags: str | None = None,
        **fields: Any,
    ) -> Order:
        """An order of ``line_items`` (``{"title", "price", "quantity", "sku"}``,
        or ``{"variant_id", "quantity"}``)."""
        order: dict[str, Any] = {
            "line_items": [dict(item) for item in line_items],
            **present(email=email, financial_status=financial_status, note=note, tags=tags),
            **fields,
        }
        if customer_id is not None:
            order["customer"] = {"id": customer_id}
        return await self.fetch(
            "POST",
            "/orders.json",
            Order,
            envelope="order",
            operation="create_order",
            json={"order": order},
        )

    async def get_order(self, order_id: int | str) -> Order:
        return await self.fetch(
            "GET", f"/orders/{order_id}.json", Order, envelope="order", operation="get_order"
        )

    async def list_orders(
        self,
        *,
        status: OrderStatus = "any",
        financial_status: str | None = None,
        fulfillment_status: str | None = None,
        limit: int = 250,
    ) -> list[Order]:
        params = {
            "status": status,
            "financial_status": financial_status,
            "fulfillment_status": fulfillment_status,
        }
        return await self._list(
            "/orders.json", "orders", Order, params, limit=limit, operation="list_orders"
        )

    async def count_orders(self) -> int:
        response = await self.send("GET", "/orders/count.json", operation="count_orders")
        count = self.body(response, operation="count_orders").get("count")
        if not isinstance(count, int):
            raise self.mismatch("count_orders", response.status_code, "no count in the answer")
        return count

    async def update_order(
        self,
        order_id: int | str,
        *,
        note: str | None = None,
        tags: str | None = None,
        email: str | None = None,
        **fields: Any,
    ) -> Order:
        """Set the given fields (``None`` leaves a field alone)."""
        order = present(note=note, tags=tags, email=email)
        return await self.fetch(
            "PUT",
            f"/orders/{order_id}.json",
            Order,
            envelope="order",
            operation="update_order",
            json={"order": {"id": int(order_id), **order, **fields}},
        )

    async def close_order(self, order_id: int | str) -> Order:
        return await self._order_action(order_id, "close", None)

    async def reopen_order(self, order_id: int | str) -> Order:
        return await self._order_action(order_id, "open", None)

    async def cancel_order(self, order_id: int | str, *, reason: str = "other") -> Order:
        """Cancel (and close) an order; ``reason``: customer, fraud, inventory, declined, other."""
        return await self._order_action(order_id, "cancel", {"reason": reason})

    async def _order_action(
        self, order_id: int | str, action: str, body: Mapping[str, Any] | None
    ) -> Order:
        operation = {"open": "reopen_order"}.get(action, f"{action}_order")
        return await self.fetch(
            "POST",
            f"/orders/{order_id}/{action}.json",
            Order,
            envelope="order",
            operation=operation,
            json=dict(body) if body is not None else {},
        )

    # -- customers ---------------------------------------------------------------------
    async def create_customer(
        self,
        *,
        email: str | None = None,
        first_name: str | None = None,
        last_name: str | None = None,
        phone: str | None = None,
        tags: str | None = None,
        note: str | None = None,
    ) -> Customer:
        fields = present(
            email=email,
            first_name=first_name,
            last_name=last_name,
            phone=phone,
            tags=tags,
            note=note,
        )
        return await self.fetch(
            "POST",
            "/customers.json",
            Customer,
            envelope="customer",
            operation="create_customer",
            json={"customer": fields},
        )

    async def get_customer(self, customer_id: int | str) -> Customer:
        return await self.fetch(
            "GET",
            f"/customers/{customer_id}.json",
            Customer,
            envelope="customer",
            operation="get_customer",
        )

    async def update_customer(self, customer_id: int | str, **fields: Any) -> Customer:
        """Set ``fields`` (``first_name``, ``last_name``, ``email``, ``phone``, ``tags``, ``note``)."""
        return await self.fetch(
            "PUT",
            f"/customers/{customer_id}.json",
            Customer,
            envelope="customer",
            operation="update_customer",
            json={"customer": {"id": int(customer_id), **fields}},
        )

    async def find_customer(self, email: str) -> Customer | None:
        """The customer with exactly this email (case-insensitive), or None."""
        found = await self.fetch_all(
            "GET",
            "/customers/search.json",
            Customer,
            operation="find_customer",
            envelope="customers",
            params={"query": f"email:{email}"},
        )
        wanted = email.lower()
        return next((c for c in found if (c.email or "").lower() == wanted), None)

    async def upsert_customer(self, email: str, **fields: Any) -> Customer:
        """The customer with ``email``, updated with ``fields``, or created with them
        (email is the natural key: a retry or a concurrent create finds the first one)."""
        existing = await self.find_customer(email)
        if existing is None:
            try:
                return await self.create_customer(email=email, **fields)
            except VendorRejected as exc:
                if exc.status != 422 or "taken" not in str(exc):
                    raise
                existing = await self.find_customer(email)
                if existing is None:
                    raise
        if not fields:
            return existing
        return await self.update_customer(existing.id, **fields)


__all__ = [
    "Customer",
    "Fulfillment",
    "FulfillmentOrder",
    "LineItem",
    "Order",
    "Shopify",
]
