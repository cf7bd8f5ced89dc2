"""Shopify fulfillments: the part of :class:`~interlock.connectors.Shopify` that ships
(see its docstring for every operation)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from interlock.connectors.shopify_wire import Fulfillment, FulfillmentOrder, ShopifyApi
from interlock.errors import VendorRejected


class ShopifyFulfillments(ShopifyApi):
    """Fulfillment orders, fulfillments (natural-key idempotent) and tracking updates."""

    async def fulfillment_orders(self, order_id: int | str) -> list[FulfillmentOrder]:
        """The order's fulfillment orders: what each location still has to ship."""
        path = f"/orders/{order_id}/fulfillment_orders.json"
        return await self.fetch_all(
            "GET",
            path,
            FulfillmentOrder,
            operation="fulfillment_orders",
            envelope="fulfillment_orders",
        )

    async def fulfillments(self, order_id: int | str) -> list[Fulfillment]:
        path = f"/orders/{order_id}/fulfillments.json"
        return await self.fetch_all(
            "GET", path, Fulfillment, operation="fulfillments", envelope="fulfillments"
        )

    async def fulfill_order(
        self,
        order_id: int | str,
        *,
        tracking_number: str | None = None,
        tracking_company: str | None = None,
        tracking_url: str | None = None,
        line_items: Mapping[int, int] | None = None,
        notify_customer: bool = False,
    ) -> Fulfillment:
        """Fulfill what is left of an order (or ``line_items``: line item id → quantity)
        from its open fulfillment orders.

        Idempotent by natural key: when a fulfillment with ``tracking_number`` exists,
        or nothing is left to fulfill and the order has fulfillments, that fulfillment
        is returned instead of shipping twice (a retry after a lost answer finds the
        first attempt's work). Nothing to fulfill at all is a permanent
        ``nothing_to_fulfill``.
        """
        done: list[Fulfillment] | None = None
        if tracking_number:
            done = await self.fulfillments(order_id)
            for fulfillment in done:
                if tracking_number in (*fulfillment.tracking_numbers, fulfillment.tracking_number):
                    return fulfillment
        groups = _groups(await self.fulfillment_orders(order_id), line_items)
        if not groups:
            done = done if done is not None else await self.fulfillments(order_id)
            if done and line_items is None:
                return done[-1]
            raise VendorRejected(
                f"{self.name} fulfill_order: order {order_id} has nothing left to fulfill",
                connector=self.name,
                operation="fulfill_order",
                code="nothing_to_fulfill",
            )
        body: dict[str, Any] = {
            "line_items_by_fulfillment_order": groups,
            "notify_customer": notify_customer,
        }
        tracking = {"number": tracking_number, "company": tracking_company, "url": tracking_url}
        if any(tracking.values()):
            body["tracking_info"] = {k: v for k, v in tracking.items() if v}
        return await self.fetch(
            "POST",
            "/fulfillments.json",
            Fulfillment,
            envelope="fulfillment",
            operation="fulfill_order",
            json={"fulfillment": body},
        )

    async def update_tracking(
        self,
        fulfillment_id: int | str,
        number: str,
        *,
        company: str | None = None,
        url: str | None = None,
        notify_customer: bool = False,
    ) -> Fulfillment:
        info = {k: v for k, v in {"number": number, "company": company, "url": url}.items() if v}
        return await self.fetch(
            "POST",
            f"/fulfillments/{fulfillment_id}/update_tracking.json",
            Fulfillment,
            envelope="fulfillment",
            operation="update_tracking",
            json={"fulfillment": {"tracking_info": info, "notify_customer": notify_customer}},
        )


def _groups(
    orders: Sequence[FulfillmentOrder], line_items: Mapping[int, int] | None
) -> list[dict[str, Any]]:
    """``line_items_by_fulfillment_order`` for what is asked and still fulfillable."""
    groups: list[dict[str, Any]] = []
    for order in orders:
        if not order.fulfillable:
            continue
        if line_items is None:
            groups.append({"fulfillment_order_id": order.id})
            continue
        wanted = [
            {"id": item.id, "quantity": min(line_items[line], item.fulfillable_quantity)}
            for item in order.line_items
            if (line := item.line_item_id) is not None
            and line in line_items
            and item.fulfillable_quantity > 0
        ]
        if wanted:
            groups.append(
                {"fulfillment_order_id": order.id, "fulfillment_order_line_items": wanted}
            )
    return groups
