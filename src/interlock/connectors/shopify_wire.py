"""Shopify Admin REST's wire format for the Shopify connector: objects, errors, auth, dry-run.

- Objects are pydantic models of what flows use (:class:`Order`, :class:`LineItem`,
  :class:`FulfillmentOrder`, :class:`Fulfillment`, :class:`Customer`); ids are integers,
  money is a decimal string read as :class:`~decimal.Decimal`.
- Bodies are enveloped (``{"order": {...}}``); errors are ``{"errors": "Not Found"}`` or
  ``{"errors": {"email": ["has already been taken"]}}``.
- OAuth access tokens go in ``X-Shopify-Access-Token``, like the app's own token.
- Dry-run answers are enveloped objects with made-up integer ids and GraphQL ids.

:class:`ShopifyApi` is the connector plumbing that speaks it, under
:class:`~interlock.connectors.Shopify`'s domain methods.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar

import httpx
import structlog
from pydantic import Field

from interlock.connectors.auth import AuthHost
from interlock.connectors.classify import ErrorDetails, generic_details, json_body
from interlock.connectors.oauth import OAuth2ClientCredentials, OAuth2RefreshToken
from interlock.connectors.signals import RateSignal, call_limit, retry_after
from interlock.connectors.vendor import (
    M,
    VendorConnector,
    VendorModel,
    clip,
    dry_answer,
    dry_body,
    dry_digest,
)

log = structlog.get_logger("interlock.connectors")
_warned: set[tuple[str, str, str]] = set()  # (connector, asked, served) logged once
TOKEN_HEADER = "X-Shopify-Access-Token"
_LINK = re.compile(r'<([^>]+)>;\s*rel="?(\w+)"?')


class ShopifyObject(VendorModel):
    id: int
    admin_graphql_api_id: str | None = None


class Customer(ShopifyObject):
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    tags: str = ""
    note: str | None = None
    orders_count: int | None = None
    state: str | None = None


class LineItem(ShopifyObject):
    title: str | None = None
    sku: str | None = None
    quantity: int | None = None
    price: Decimal | None = None
    fulfillable_quantity: int | None = None
    fulfillment_status: str | None = None


class Fulfillment(ShopifyObject):
    order_id: int | None = None
    name: str | None = None
    status: str | None = None
    tracking_company: str | None = None
    tracking_number: str | None = None
    tracking_numbers: list[str] = Field(default_factory=list)
    tracking_url: str | None = None
    line_items: list[LineItem] = Field(default_factory=list)


class FulfillmentOrderLineItem(ShopifyObject):
    line_item_id: int | None = None
    quantity: int | None = None
    fulfillable_quantity: int = 0


class FulfillmentOrder(ShopifyObject):
    order_id: int | None = None
    status: str | None = None  # open, in_progress, closed, on_hold, …
    line_items: list[FulfillmentOrderLineItem] = Field(default_factory=list)

    @property
    def fulfillable(self) -> bool:
        return self.status in ("open", "in_progress") and any(
            item.fulfillable_quantity > 0 for item in self.line_items
        )


class Order(ShopifyObject):
    name: str | None = None  # "#1001"
    order_number: int | None = None
    email: str | None = None
    currency: str | None = None
    total_price: Decimal | None = None
    subtotal_price: Decimal | None = None
    financial_status: str | None = None
    fulfillment_status: str | None = None  # None, "partial" or "fulfilled"
    note: str | None = None
    tags: str = ""
    cancelled_at: datetime | None = None
    closed_at: datetime | None = None
    customer: Customer | None = None
    line_items: list[LineItem] = Field(default_factory=list)
    fulfillments: list[Fulfillment] = Field(default_factory=list)


# -- errors and pages ---------------------------------------------------------------
def error_details(response: httpx.Response) -> ErrorDetails:
    """``{"errors": "..."}``, ``{"errors": {"field": ["message"]}}`` or ``{"error": ...}``."""
    body = json_body(response)
    errors = body.get("errors", body.get("error")) if isinstance(body, dict) else None
    if isinstance(errors, str):
        return ErrorDetails(None, clip(errors))
    if isinstance(errors, dict):
        said = "; ".join(f"{field} {_joined(messages)}" for field, messages in errors.items())
        return ErrorDetails(None, clip(said))
    if isinstance(errors, list):
        return ErrorDetails(None, clip(_joined(errors)))
    return generic_details(response)


def _joined(messages: Any) -> str:
    if isinstance(messages, list):
        return ", ".join(str(m) for m in messages)
    return str(messages)


def next_page(response: httpx.Response) -> str | None:
    """The ``page_info`` cursor of the ``Link: <…>; rel="next"`` header, if any."""
    for url, rel in _LINK.findall(response.headers.get("link", "")):
        if rel == "next":
            cursor = httpx.URL(url).params.get("page_info")
            if cursor:
                return str(cursor)
    return None


# -- OAuth: tokens in X-Shopify-Access-Token --------------------------------------------
class ShopifyRefreshToken(OAuth2RefreshToken):
    """Shopify's expiring offline tokens, refreshed (and rotated) at
    ``/admin/oauth/access_token``; the access token goes in ``X-Shopify-Access-Token``."""

    async def apply(self, request: httpx.Request, host: AuthHost) -> None:
        request.headers[TOKEN_HEADER] = (await self.token(host)).access_token

    async def rejected(self, request: httpx.Request, host: AuthHost) -> bool:
        await self.token(host, rejected=request.headers.get(TOKEN_HEADER, ""))
        return True


class ShopifyClientCredentials(OAuth2ClientCredentials):
    """Shopify's client-credentials grant for apps of the shop's own organization."""

    async def apply(self, request: httpx.Request, host: AuthHost) -> None:
        request.headers[TOKEN_HEADER] = (await self.token(host)).access_token

    async def rejected(self, request: httpx.Request, host: AuthHost) -> bool:
        await self.token(host, rejected=request.headers.get(TOKEN_HEADER, ""))
        return True


# -- dry-run ----------------------------------------------------------------------------
_ENVELOPES = {
    "orders": "order",
    "customers": "customer",
    "fulfillments": "fulfillment",
}
_ACTIONS = {"close": "closed_at", "cancel": "cancelled_at"}


def simulate(request: httpx.Request, idempotency_key: str | None) -> httpx.Response:
    """What Shopify would answer to a create, update, action or delete not sent."""
    path = request.url.path.removesuffix(".json")
    parts = path.split("/admin/api/", 1)[-1].split("/")[1:]  # after the version
    if request.method == "DELETE":
        return dry_answer(request, 200, {})
    digest = dry_digest(request, idempotency_key)
    made = 1_000_000_000 + int(digest[:8], 16)
    resource = parts[0] if parts else ""
    name = _ENVELOPES.get(resource, resource.rstrip("s"))
    sent = dry_body(request)
    fields: dict[str, Any] = dict(sent.get(name) or {})
    now = datetime.fromtimestamp(int(time.time()), UTC).isoformat()
    tracking = fields.pop("tracking_info", None)
    if isinstance(tracking, dict):
        fields.update(
            tracking_company=tracking.get("company"),
            tracking_number=tracking.get("number"),
            tracking_numbers=[tracking["number"]] if tracking.get("number") else [],
            tracking_url=tracking.get("url"),
        )
    if len(parts) > 1 and parts[1].isdigit():
        ident = int(parts[1])
        action = parts[2] if len(parts) > 2 else None
        if action in _ACTIONS:
            fields[_ACTIONS[action]] = now
        if action == "open":
            fields["closed_at"] = None
        obj = {"id": ident, **fields, "updated_at": now}
        status = 200
    else:
        obj = {"id": made, **fields, "created_at": now, "updated_at": now}
        status = 201
        if resource == "orders":
            obj.update(_order(fields, made))
        elif resource == "fulfillments":
            obj.setdefault("status", "success")
            obj.pop("line_items_by_fulfillment_order", None)
    kind = "FulfillmentOrder" if name == "fulfillment_order" else name.capitalize()
    obj.setdefault("admin_graphql_api_id", f"gid://shopify/{kind}/{obj['id']}")
    return dry_answer(request, status, {name: obj})


def _order(fields: dict[str, Any], ident: int) -> dict[str, Any]:
    lines = [
        {
            **item,
            "id": ident + n + 1,
            "price": f"{Decimal(str(item.get('price') or '0')):.2f}",
            "fulfillable_quantity": int(item.get("quantity") or 1),
        }
        for n, item in enumerate(fields.get("line_items") or [])
    ]
    total = sum(Decimal(li["price"]) * li["fulfillable_quantity"] for li in lines)
    return {
        "line_items": lines,
        "total_price": f"{total:.2f}",
        "subtotal_price": f"{total:.2f}",
        "financial_status": fields.get("financial_status") or "paid",
        "fulfillment_status": None,
    }


class ShopifyApi(VendorConnector):
    """Shopify's wire under the domain methods: paths under ``/admin/api/{version}``, the
    leaky bucket's header, Shopify's errors and dry-run answers, ``Link`` pages."""

    rate_reserve: ClassVar[float] = 2.0  # pause with two calls left in Shopify's bucket
    api_version: str = "2024-10"
    prefix: str = "/admin/api/2024-10"
    leak_per_second: float = 2.0
    page_size: int = 250  # objects per list page (Shopify's maximum)

    def error_details(self, response: httpx.Response) -> ErrorDetails:
        return error_details(response)

    def rate_signal(self, response: httpx.Response) -> RateSignal:
        """The call-limit header (``39/40``) as the bucket's headroom, and ``Retry-After``."""
        bucket = call_limit(
            response.headers.get("x-shopify-shop-api-call-limit"),
            leak_per_second=self.leak_per_second,
            reserve=self.rate_reserve,
        )
        wait = retry_after(response.headers)
        return RateSignal(bucket.limit, bucket.remaining, bucket.reset_after, wait)

    def simulate(self, request: httpx.Request, idempotency_key: str | None) -> httpx.Response:
        return simulate(request, idempotency_key)

    async def send(
        self, method: str, path: str, *, operation: str, **options: Any
    ) -> httpx.Response:
        response = await super().send(method, self.prefix + path, operation=operation, **options)
        served = response.headers.get("x-shopify-api-version")
        if (
            served
            and served != self.api_version
            and (self.name, self.api_version, served) not in _warned
        ):
            _warned.add((self.name, self.api_version, served))
            log.warning(
                "connector.api_version",
                connector=self.name,
                asked=self.api_version,
                served=served,
                fix="move to a supported version: Shopify(api_version=...)",
            )
        return response

    async def _list(
        self,
        path: str,
        envelope: str,
        model: type[M],
        params: Mapping[str, Any],
        *,
        limit: int,
        operation: str,
    ) -> list[M]:
        """Up to ``limit`` objects, following the ``Link`` header's ``page_info`` cursors."""
        size = max(1, min(self.page_size, limit))
        query: dict[str, Any] = {k: v for k, v in params.items() if v is not None}
        query["limit"] = size
        found: list[M] = []
        while len(found) < limit:
            response = await self.send("GET", path, operation=operation, params=query)
            data = self.body(response, operation=operation).get(envelope)
            found.extend(
                self.parse_all(model, data, operation=operation, status=response.status_code)
            )
            cursor = next_page(response)
            if cursor is None:
                break
            query = {"limit": size, "page_info": cursor}  # Shopify allows nothing else with it
        return found[:limit]
