"""Shopify orders, their fulfillment orders, and fulfillments.

Creating an order opens one fulfillment order for its line items; a fulfillment
(``POST /fulfillments.json`` with ``line_items_by_fulfillment_order``) consumes
fulfillable quantities, closes fulfillment orders, and sets the order's
``fulfillment_status`` to ``partial`` or ``fulfilled``.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from interlock.sandbox.shopify_customers import new_customer
from interlock.sandbox.shopify_wire import (
    Handler,
    ShopifyError,
    counter,
    deleter,
    envelope,
    find,
    getter,
    gid,
    money,
    not_found,
    page,
)
from interlock.sandbox.simulator import Call, json_response

if TYPE_CHECKING:
    from interlock.sandbox.shopify import ShopifySimulator

Obj = dict[str, Any]


def _line_items(sim: ShopifySimulator, items: Any) -> list[Obj]:
    if not isinstance(items, list) or not items:
        raise ShopifyError(422, {"line_items": ["must have at least one line item"]})
    out = []
    for item in items:
        quantity = int(item.get("quantity") or 1)
        ident = sim.new_id()
        out.append(
            {
                "id": ident,
                "admin_graphql_api_id": gid("LineItem", ident),
                "title": item.get("title") or "Sandbox product",
                "name": item.get("title") or "Sandbox product",
                "price": money(item.get("price")),
                "quantity": quantity,
                "sku": item.get("sku"),
                "variant_id": item.get("variant_id"),
                "product_id": item.get("product_id"),
                "fulfillable_quantity": quantity,
                "fulfillment_status": None,
                "requires_shipping": True,
                "taxable": True,
                "gift_card": False,
                "total_discount": "0.00",
            }
        )
    return out


def create_order(sim: ShopifySimulator, call: Call) -> Response:
    fields = envelope(call, "order")
    lines = _line_items(sim, fields.get("line_items"))
    customer = fields.get("customer")
    if isinstance(customer, dict):
        customer = (
            find(sim, "customers", customer["id"])
            if customer.get("id")
            else new_customer(sim, customer)
        )
    status = fields.get("financial_status") or "paid"
    if status not in (
        "pending",
        "authorized",
        "partially_paid",
        "paid",
        "partially_refunded",
        "refunded",
        "voided",
    ):
        raise ShopifyError(422, {"financial_status": ["is not included in the list"]})
    total = sum(Decimal(li["price"]) * li["quantity"] for li in lines)
    ident, now = sim.new_id(), sim.timestamp()
    sim.order_number += 1
    order: Obj = {
        "id": ident,
        "admin_graphql_api_id": gid("Order", ident),
        "app_id": None,
        "cancel_reason": None,
        "cancelled_at": None,
        "closed_at": None,
        "confirmed": True,
        "contact_email": fields.get("email"),
        "created_at": now,
        "currency": fields.get("currency", "USD"),
        "current_total_price": f"{total:.2f}",
        "email": fields.get("email") or (customer or {}).get("email"),
        "financial_status": status,
        "fulfillment_status": None,
        "name": f"#{sim.order_number}",
        "note": fields.get("note"),
        "number": sim.order_number - 1000,
        "order_number": sim.order_number,
        "phone": fields.get("phone"),
        "processed_at": now,
        "tags": fields.get("tags") or "",
        "test": True,
        "total_price": f"{total:.2f}",
        "subtotal_price": f"{total:.2f}",
        "total_tax": "0.00",
        "total_discounts": "0.00",
        "updated_at": now,
        "customer": customer,
        "line_items": lines,
        "fulfillments": [],
        "refunds": [],
        "shipping_address": fields.get("shipping_address"),
        "billing_address": fields.get("billing_address"),
        "source_name": "api",
    }
    sim.state["orders"][ident] = order
    if isinstance(customer, dict):
        customer.update(
            orders_count=customer["orders_count"] + 1,
            last_order_id=ident,
            last_order_name=order["name"],
        )
    _new_fulfillment_order(sim, order)
    return json_response({"order": order}, 201)


def _new_fulfillment_order(sim: ShopifySimulator, order: Obj) -> None:
    ident = sim.new_id()
    sim.state["fulfillment_orders"][ident] = {
        "id": ident,
        "shop_id": 548380009,
        "order_id": order["id"],
        "assigned_location_id": 24826418,
        "request_status": "unsubmitted",
        "status": "open",
        "fulfill_at": None,
        "supported_actions": ["create_fulfillment", "hold", "move"],
        "destination": order["shipping_address"],
        "created_at": order["created_at"],
        "updated_at": order["created_at"],
        "delivery_method": {"method_type": "shipping"},
        "line_items": [
            {
                "id": sim.new_id(),
                "shop_id": 548380009,
                "fulfillment_order_id": ident,
                "line_item_id": li["id"],
                "quantity": li["quantity"],
                "fulfillable_quantity": li["quantity"],
                "variant_id": li["variant_id"],
                "inventory_item_id": None,
            }
            for li in order["line_items"]
        ],
    }


def list_orders(sim: ShopifySimulator, call: Call) -> Response:
    orders = list(sim.state["orders"].values())
    if not call.query.get("page_info"):
        status = call.query.get("status", "open")
        if status == "open":
            orders = [o for o in orders if not o["closed_at"] and not o["cancelled_at"]]
        elif status == "closed":
            orders = [o for o in orders if o["closed_at"]]
        elif status == "cancelled":
            orders = [o for o in orders if o["cancelled_at"]]
        for name in ("financial_status", "fulfillment_status"):
            if call.query.get(name) and call.query[name] != "any":
                orders = [o for o in orders if o[name] == call.query[name]]
    return page(sim, call, orders, "orders")


def update_order(sim: ShopifySimulator, call: Call) -> Response:
    order = find(sim, "orders", call.params["id"])
    fields = envelope(call, "order")
    for name in ("note", "tags", "email", "phone", "shipping_address", "buyer_accepts_marketing"):
        if name in fields:
            order[name] = fields[name]
    order["updated_at"] = sim.timestamp()
    return json_response({"order": order})


def _order_action(action: str) -> Callable[[ShopifySimulator, Call], Response]:
    def act(sim: ShopifySimulator, call: Call) -> Response:
        order = find(sim, "orders", call.params["id"])
        now = sim.timestamp()
        if action == "cancel":
            if order["cancelled_at"]:
                raise ShopifyError(422, {"base": ["Order has already been cancelled"]})
            try:
                reason = (call.json() or {}).get("reason", "other")
            except ValueError:
                reason = "other"
            order.update(cancelled_at=now, cancel_reason=reason, closed_at=now)
        else:
            order["closed_at"] = now if action == "close" else None
        order["updated_at"] = now
        return json_response({"order": order})

    return act


def fulfillment_orders(sim: ShopifySimulator, call: Call) -> Response:
    order = find(sim, "orders", call.params["id"])
    found = [f for f in sim.state["fulfillment_orders"].values() if f["order_id"] == order["id"]]
    return json_response({"fulfillment_orders": found})


def create_fulfillment(sim: ShopifySimulator, call: Call) -> Response:
    fields = envelope(call, "fulfillment")
    groups = fields.get("line_items_by_fulfillment_order")
    if not isinstance(groups, list) or not groups:
        raise ShopifyError(400, {"fulfillment": "Required parameter missing or invalid"})
    lines: list[Obj] = []
    order: Obj | None = None
    for group in groups:
        fo = sim.state["fulfillment_orders"].get(group.get("fulfillment_order_id"))
        if fo is None:
            raise not_found()
        if fo["status"] not in ("open", "in_progress"):
            raise ShopifyError(
                422,
                {
                    "base": [
                        f"Fulfillment order {fo['id']} has an unfulfillable status= {fo['status']}."
                    ]
                },
            )
        order = sim.state["orders"][fo["order_id"]]
        wanted = {
            i["id"]: i.get("quantity") for i in group.get("fulfillment_order_line_items") or []
        }
        for fli in fo["line_items"]:
            if wanted and fli["id"] not in wanted:
                continue
            qty = int(wanted.get(fli["id"]) or fli["fulfillable_quantity"])
            if qty > fli["fulfillable_quantity"]:
                raise ShopifyError(
                    422, {"base": ["Invalid fulfillment order line item quantity requested."]}
                )
            fli["fulfillable_quantity"] -= qty
            line = next(li for li in order["line_items"] if li["id"] == fli["line_item_id"])
            line["fulfillable_quantity"] -= qty
            line["fulfillment_status"] = (
                "fulfilled" if line["fulfillable_quantity"] == 0 else "partial"
            )
            lines.append({**line, "quantity": qty})
        done = all(f["fulfillable_quantity"] == 0 for f in fo["line_items"])
        fo["status"] = "closed" if done else "in_progress"
    if order is None:  # unreachable: groups is a non-empty list
        raise ShopifyError(400, {"fulfillment": "Required parameter missing or invalid"})
    tracking = fields.get("tracking_info") or {}
    ident, now = sim.new_id(), sim.timestamp()
    fulfillment: Obj = {
        "id": ident,
        "admin_graphql_api_id": gid("Fulfillment", ident),
        "created_at": now,
        "location_id": 24826418,
        "name": f"{order['name']}.{len(order['fulfillments']) + 1}",
        "order_id": order["id"],
        "origin_address": {},
        "receipt": {},
        "service": "manual",
        "shipment_status": None,
        "status": "success",
        "tracking_company": tracking.get("company"),
        "tracking_number": tracking.get("number"),
        "tracking_numbers": [tracking["number"]] if tracking.get("number") else [],
        "tracking_url": tracking.get("url"),
        "tracking_urls": [tracking["url"]] if tracking.get("url") else [],
        "updated_at": now,
        "line_items": lines,
    }
    sim.state["fulfillments"][ident] = fulfillment
    order["fulfillments"].append(fulfillment)
    pending = any(li["fulfillable_quantity"] > 0 for li in order["line_items"])
    order["fulfillment_status"] = "partial" if pending else "fulfilled"
    order["updated_at"] = now
    return json_response({"fulfillment": fulfillment}, 201)


def order_fulfillments(sim: ShopifySimulator, call: Call) -> Response:
    return json_response({"fulfillments": find(sim, "orders", call.params["id"])["fulfillments"]})


def update_tracking(sim: ShopifySimulator, call: Call) -> Response:
    fulfillment = find(sim, "fulfillments", call.params["id"])
    tracking = envelope(call, "fulfillment").get("tracking_info") or {}
    fulfillment.update(
        tracking_company=tracking.get("company"),
        tracking_number=tracking.get("number"),
        tracking_numbers=[tracking["number"]] if tracking.get("number") else [],
        tracking_url=tracking.get("url"),
        updated_at=sim.timestamp(),
    )
    return json_response({"fulfillment": fulfillment})


ROUTES: list[tuple[str, str, Handler]] = [
    ("/orders.json", "GET", list_orders),
    ("/orders.json", "POST", create_order),
    ("/orders/count.json", "GET", counter("orders")),
    ("/orders/{id}.json", "GET", getter("orders", "order")),
    ("/orders/{id}.json", "PUT", update_order),
    ("/orders/{id}.json", "DELETE", deleter("orders")),
    ("/orders/{id}/close.json", "POST", _order_action("close")),
    ("/orders/{id}/open.json", "POST", _order_action("open")),
    ("/orders/{id}/cancel.json", "POST", _order_action("cancel")),
    ("/orders/{id}/fulfillment_orders.json", "GET", fulfillment_orders),
    ("/orders/{id}/fulfillments.json", "GET", order_fulfillments),
    ("/fulfillments.json", "POST", create_fulfillment),
    ("/fulfillments/{id}/update_tracking.json", "POST", update_tracking),
]
