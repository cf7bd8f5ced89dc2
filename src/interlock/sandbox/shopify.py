"""A Shopify Admin REST simulator: orders, fulfillment orders, fulfillments, customers.

Paths are ``/admin/api/{version}/…json`` (any ``YYYY-MM``; the answer says which
version served it in ``X-Shopify-API-Version``). Auth is ``X-Shopify-Access-Token``
with the app's token, or a token from ``POST /admin/oauth/access_token``
(``client_credentials``, ``authorization_code`` or ``refresh_token``; refresh
tokens rotate, as with Shopify's expiring offline tokens). Calls fill a leaky
bucket (40 deep, draining 2 a second) reported in
``X-Shopify-Shop-Api-Call-Limit: n/40``; a full bucket answers 429 with
``Retry-After: 2.0``. Lists page with ``limit`` and a ``Link`` header of
``page_info`` cursors.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from interlock.sandbox import shopify_customers, shopify_orders
from interlock.sandbox.faults import Decision
from interlock.sandbox.oauth import OAuthError, TokenIssuer, token_fields, token_request
from interlock.sandbox.ratelimits import LeakyBucket
from interlock.sandbox.shopify_wire import ShopifyError
from interlock.sandbox.simulator import Call, Handler, Simulator, json_response
from interlock.sandbox.webhooks import SignedWebhook, shopify_hmac

API_VERSION = "2024-10"
SUPPORTED = ("2024-07", "2024-10", "2025-01", "2025-04", "2025-07", "2025-10")
ACCESS_TOKEN = "shpat_sandbox"
CLIENT_ID = "shopify-sandbox-client"
CLIENT_SECRET = "shpss_sandbox"
SHOP = "sandbox.myshopify.com"
SHOP_ID = 548380009
_AUTH_ERROR = "[API] Invalid API key or access token (unrecognized login or wrong password)"


class ShopifySimulator(Simulator):
    """Shopify's Admin REST API (see the module docstring)."""

    name = "shopify"
    collections = ("orders", "customers", "fulfillment_orders", "fulfillments")

    def __init__(
        self, *, seed: int = 0, bucket: int = 40, leak_per_second: float = 2.0, **kw: Any
    ) -> None:
        self.bucket_size = bucket
        self.leak_per_second = leak_per_second
        super().__init__(seed=seed, **kw)

    def setup(self) -> None:
        self.bucket = LeakyBucket(self.bucket_size, self.leak_per_second)
        self.next_id = 450789469 + self.rng.randrange(10**6)
        self.order_number = 1000
        self.issuer = TokenIssuer(
            self.faults,
            access_prefix="shpat_",
            refresh_prefix="shprt_",
            ttl=3600,
            rotate=True,
            scope="read_orders,write_orders,read_customers,write_customers",
            seed=self.seed,
            clock=self.clock,
        )
        self.first_refresh_token = self.issuer.issue().refresh_token or ""

    @property
    def credentials(self) -> dict[str, str]:
        return {
            "access_token": ACCESS_TOKEN,
            "shop": SHOP,
            "api_version": API_VERSION,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "refresh_token": self.first_refresh_token,
            "webhook_secret": CLIENT_SECRET,
        }

    def routes(self) -> Sequence[BaseRoute]:
        prefix = "/admin/api/{version}"
        return [
            self.route("/admin/oauth/access_token", self._token, ["POST"]),
            *[
                self.route(prefix + path, self._api(fn), [m])
                for path, m, fn in [*shopify_orders.ROUTES, *shopify_customers.ROUTES]
            ],
        ]

    def new_id(self) -> int:
        self.next_id += 1 + self.rng.randrange(1000)
        return self.next_id

    def timestamp(self) -> str:
        return (
            datetime.fromtimestamp(int(self.clock()), UTC).isoformat().replace("+00:00", "-00:00")
        )

    def version_of(self, call: Call) -> str:
        asked = call.params.get("version", API_VERSION)
        return asked if asked in SUPPORTED else SUPPORTED[0]

    def _api(self, fn: Any) -> Handler:
        def handler(call: Call) -> Response:
            version = call.params.get("version", "")
            if not re.fullmatch(r"\d{4}-\d{2}|unstable", version):
                return json_response({"errors": "Not Found"}, 404)
            common = {
                "X-Request-Id": str(uuid.uuid4()),
                "X-Shopify-API-Version": self.version_of(call),
            }
            token = call.headers.get("x-shopify-access-token", "")
            if token != ACCESS_TOKEN and self.issuer.check(token) != "ok":
                return json_response({"errors": _AUTH_ERROR}, 401, common)
            allowed, used = self.bucket.take(self.clock())
            if not allowed:
                return self._throttled(common, 2.0)
            common["X-Shopify-Shop-Api-Call-Limit"] = f"{used}/{self.bucket_size}"
            try:
                response: Response = fn(self, call)
            except ShopifyError as exc:
                response = json_response({"errors": exc.errors}, exc.status)
            response.headers.update(common)
            return response

        return handler

    def _throttled(self, headers: Mapping[str, str], retry_after: float) -> Response:
        body = {
            "errors": "Exceeded 2 calls per second for api client. Reduce request rates to "
            "resume uninterrupted service."
        }
        limit = f"{self.bucket_size}/{self.bucket_size}"
        return json_response(
            body,
            429,
            {
                **headers,
                "Retry-After": f"{retry_after:.1f}",
                "X-Shopify-Shop-Api-Call-Limit": limit,
            },
        )

    def fault_response(self, decision: Decision) -> Response:
        common = {"X-Request-Id": str(uuid.uuid4())}
        if decision.kind == "rate_limit":
            return self._throttled(common, decision.retry_after)
        if decision.kind == "outage":
            common["Retry-After"] = f"{decision.retry_after:.1f}"
            return json_response({"errors": "Unavailable Shop"}, decision.status, common)
        return json_response({"errors": "Internal Server Error"}, decision.status, common)

    def not_found(self, request: Request, status: int) -> Response:
        return json_response({"errors": "Not Found"}, 404 if status == 404 else 406)

    def _token(self, call: Call) -> Response:
        fields = token_fields(call.headers.get("content-type", ""), call.body)
        try:
            grant = token_request(self.issuer, fields, CLIENT_ID, CLIENT_SECRET)
        except OAuthError as exc:
            error = {"error": exc.error, "error_description": exc.description}
            return json_response(error, exc.status)
        body: dict[str, Any] = {
            "access_token": grant.access_token,
            "scope": grant.scope,
            "expires_in": grant.expires_in,
        }
        if grant.refresh_token:
            body.update(refresh_token=grant.refresh_token, refresh_token_expires_in=7776000)
        return json_response(body)

    def webhook(
        self,
        event_type: str,
        data: Mapping[str, Any] | None = None,
        *,
        url: str = "",
        secret: str | None = None,
        webhook_id: str | None = None,
        **options: Any,
    ) -> SignedWebhook:
        """The resource JSON as Shopify POSTs it for ``event_type`` (a topic: ``orders/create``)."""
        body = orjson.dumps(dict(data or {}))
        triggered = datetime.fromtimestamp(time.time(), UTC).isoformat()
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": event_type,
            "X-Shopify-Hmac-Sha256": shopify_hmac(body, secret or CLIENT_SECRET),
            "X-Shopify-Shop-Domain": SHOP,
            "X-Shopify-API-Version": API_VERSION,
            "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
            "X-Shopify-Event-Id": str(uuid.uuid4()),
            "X-Shopify-Triggered-At": triggered,
        }
        return SignedWebhook(body, headers)
