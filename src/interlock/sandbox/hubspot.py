"""A HubSpot simulator: CRM v3 objects, search, batch upsert, v4 associations, OAuth.

Auth is ``Authorization: Bearer`` with the private-app token (never expires) or
an OAuth access token from ``POST /oauth/v1/token`` (``refresh_token``,
``authorization_code`` and ``client_credentials`` grants; 30-minute tokens).
HubSpot keeps a refresh token across refreshes; set the ``rotate_refresh_tokens``
fault to make it rotate (then reusing an old one revokes the whole family).
Every answer carries ``X-HubSpot-RateLimit-*`` headers from a 10-second window
(100 calls by default) and a daily budget; search is limited to 5 calls a
second and, as on HubSpot, sends no rate-limit headers.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from interlock.sandbox.faults import Decision
from interlock.sandbox.hubspot_api import ROUTES
from interlock.sandbox.hubspot_crm import CrmError, Schema
from interlock.sandbox.oauth import OAuthError, TokenIssuer, token_request
from interlock.sandbox.ratelimits import FixedWindow
from interlock.sandbox.simulator import Call, Handler, Simulator, json_response
from interlock.sandbox.webhooks import SignedWebhook, hubspot_v3_signature

PRIVATE_APP_TOKEN = "pat-na1-sandbox-0000-0000-000000000000"
CLIENT_ID = "hubspot-sandbox-client"
CLIENT_SECRET = "hubspot-sandbox-secret"
PORTAL_ID = 1234567
APP_ID = 765432


class HubSpotSimulator(Simulator):
    """HubSpot's CRM API (see the module docstring)."""

    name = "hubspot"
    collections = ("contacts", "companies", "deals", "notes")

    def __init__(
        self, *, seed: int = 0, per_ten_seconds: int = 100, daily: int = 250_000, **kw: Any
    ) -> None:
        self.per_ten_seconds = per_ten_seconds
        self.daily = daily
        self.schema = Schema()  # kept across resets, like a portal's property definitions
        super().__init__(seed=seed, **kw)

    def setup(self) -> None:
        self.associations: set[tuple[str, str, str, str]] = set()  # (from, id, to, toId)
        self.next_id = 1000 + self.rng.randrange(9000)
        self.issuer = TokenIssuer(
            self.faults,
            access_prefix="CKsandbox-",
            refresh_prefix="na1-",
            ttl=1800,
            rotate=False,
            scope="crm.objects.contacts.read crm.objects.contacts.write",
            seed=self.seed,
            clock=self.clock,
        )
        self.first_refresh_token = self.issuer.issue().refresh_token or ""
        self.window = FixedWindow(self.per_ten_seconds, 10.0)
        self.day = FixedWindow(self.daily, 86400.0)
        self.search_window = FixedWindow(5, 1.0)

    @property
    def credentials(self) -> dict[str, str]:
        return {
            "private_app_token": PRIVATE_APP_TOKEN,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "refresh_token": self.first_refresh_token,
            "webhook_secret": CLIENT_SECRET,
            "portal_id": str(PORTAL_ID),
        }

    def routes(self) -> Sequence[BaseRoute]:
        return [
            self.route("/oauth/v1/token", self._token, ["POST"]),
            self.route("/oauth/v1/access-tokens/{token}", self._token_info, ["GET"]),
            self.route("/oauth/v1/refresh-tokens/{token}", self._revoke, ["DELETE"]),
            *[self.route(path, self._crm(fn), [m]) for path, m, fn in ROUTES],
        ]

    def new_id(self) -> str:
        self.next_id += 1 + self.rng.randrange(3)
        return str(self.next_id)

    # -- errors, auth, limits -------------------------------------------------------

    def error(self, status: int, category: str, message: str, **extra: Any) -> Response:
        body = {
            "status": "error",
            "message": message,
            "correlationId": str(uuid.uuid4()),
            "category": category,
            **extra,
        }
        return json_response(body, status)

    def _crm(self, fn: Any) -> Handler:
        def handler(call: Call) -> Response:
            try:
                self._authenticate(call)
                search = call.request.url.path.endswith("/search")
                limited = self._limit(search)
                if isinstance(limited, Response):
                    return limited
                response: Response = fn(self, call)
            except CrmError as exc:
                return self.error(exc.status, exc.category, exc.message, **exc.extra)
            response.headers.update(limited)
            return response

        return handler

    def _authenticate(self, call: Call) -> None:
        scheme, _, token = call.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise CrmError(
                401,
                "INVALID_AUTHENTICATION",
                "Authentication credentials not found. This API supports OAuth 2.0 "
                "authentication and you can find more details at "
                "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
            )
        token = token.strip()
        if token == PRIVATE_APP_TOKEN:
            return
        status = self.issuer.check(token)
        if status == "expired":
            raise CrmError(
                401,
                "EXPIRED_AUTHENTICATION",
                "The OAuth token used to make this call expired 0 second(s) ago.",
            )
        if status != "ok":
            raise CrmError(
                401,
                "INVALID_AUTHENTICATION",
                "Authentication credentials not found. This API supports OAuth 2.0 "
                "authentication and you can find more details at "
                "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
            )

    def _limit(self, search: bool) -> dict[str, str] | Response:
        now = self.clock()
        if search:
            ok, _, _ = self.search_window.take("search", now)
            if not ok:
                return self._rate_limited("SECONDLY", "You have reached your secondly limit.")
            return {}
        ok_day, day_left, _ = self.day.take("app", now)
        ok, left, _ = self.window.take("app", now)
        if not ok_day:
            return self._rate_limited("DAILY", "You have reached your daily limit.")
        if not ok:
            return self._rate_limited(
                "TEN_SECONDLY_ROLLING", "You have reached your ten_secondly_rolling limit."
            )
        return {
            "X-HubSpot-RateLimit-Daily": str(self.daily),
            "X-HubSpot-RateLimit-Daily-Remaining": str(day_left),
            "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
            "X-HubSpot-RateLimit-Max": str(self.per_ten_seconds),
            "X-HubSpot-RateLimit-Remaining": str(left),
        }

    def _rate_limited(self, policy: str, message: str, retry_after: float = 1.0) -> Response:
        body = {
            "status": "error",
            "message": message,
            "errorType": "RATE_LIMIT",
            "correlationId": str(uuid.uuid4()),
            "policyName": policy,
            "category": "RATE_LIMITS",
        }
        headers = {"Retry-After": str(max(1, round(retry_after)))}
        if policy == "TEN_SECONDLY_ROLLING":
            headers.update(
                {
                    "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
                    "X-HubSpot-RateLimit-Max": str(self.per_ten_seconds),
                    "X-HubSpot-RateLimit-Remaining": "0",
                }
            )
        return json_response(body, 429, headers)

    def fault_response(self, decision: Decision) -> Response:
        if decision.kind == "rate_limit":
            return self._rate_limited(
                "TEN_SECONDLY_ROLLING",
                "You have reached your ten_secondly_rolling limit.",
                decision.retry_after,
            )
        response = self.error(
            decision.status,
            "INTERNAL_ERROR" if decision.kind == "error" else "SERVICE_UNAVAILABLE",
            "internal error" if decision.kind == "error" else "Service Unavailable",
        )
        if decision.kind == "outage":
            response.headers["Retry-After"] = str(max(1, round(decision.retry_after)))
        return response

    def not_found(self, request: Request, status: int) -> Response:
        return self.error(
            status,
            "OBJECT_NOT_FOUND" if status == 404 else "VALIDATION_ERROR",
            f"Unable to route {request.method} {request.url.path}",
        )

    # -- OAuth ------------------------------------------------------------------------------

    def _token(self, call: Call) -> Response:
        fields = dict(parse_qsl(call.body.decode(errors="replace"), keep_blank_values=True))
        try:
            grant = token_request(self.issuer, fields, CLIENT_ID, CLIENT_SECRET)
        except OAuthError as exc:
            status = {
                "invalid_grant": "BAD_REFRESH_TOKEN"
                if fields.get("grant_type") == "refresh_token"
                else "BAD_AUTH_CODE",
                "invalid_client": "BAD_CLIENT_ID",
            }.get(
                exc.error,
                "BAD_GRANT_TYPE" if exc.error == "unsupported_grant_type" else "BAD_REQUEST",
            )
            message = (
                "missing or invalid refresh token"
                if status == "BAD_REFRESH_TOKEN"
                else exc.description
            )
            error = {
                "status": status,
                "message": message,
                "correlationId": str(uuid.uuid4()),
                "error": exc.error,
                "error_description": exc.description,
            }
            return json_response(error, 400)
        body: dict[str, Any] = {
            "token_type": "bearer",
            "access_token": grant.access_token,
            "expires_in": grant.expires_in,
        }
        if grant.refresh_token:
            body["refresh_token"] = grant.refresh_token
        return json_response(body)

    def _token_info(self, call: Call) -> Response:
        token = call.params["token"]
        if self.issuer.check(token) != "ok":
            return json_response(
                {
                    "status": "error",
                    "message": "The token is expired or invalid",
                    "correlationId": str(uuid.uuid4()),
                    "category": "EXPIRED_AUTHENTICATION",
                },
                401,
            )
        return json_response(
            {
                "token": token,
                "user": "sandbox@example.com",
                "hub_domain": "sandbox.hubspot.com",
                "scopes": self.issuer.scope.split(),
                "hub_id": PORTAL_ID,
                "app_id": APP_ID,
                "expires_in": 1800,
                "user_id": 1,
                "token_type": "access",
            }
        )

    def _revoke(self, call: Call) -> Response:
        if not self.issuer.revoke(call.params["token"]):
            return self.error(404, "OBJECT_NOT_FOUND", "Refresh token not found")
        return Response(status_code=204)

    # -- webhooks ----------------------------------------------------------------------------

    def webhook(
        self,
        event_type: str,
        data: Mapping[str, Any] | None = None,
        *,
        url: str = "",
        timestamp_ms: int | None = None,
        secret: str | None = None,
        **options: Any,
    ) -> SignedWebhook:
        """A one-event batch as HubSpot POSTs it, signed with v3 (``url``: the target)."""
        ts = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
        event = {
            "eventId": self.rng.randrange(10**9),
            "subscriptionId": 1,
            "portalId": PORTAL_ID,
            "appId": APP_ID,
            "occurredAt": ts,
            "subscriptionType": event_type,
            "attemptNumber": 0,
            "objectId": 0,
            "changeFlag": "CREATED",
            "changeSource": "CRM",
            **dict(data or {}),
        }
        body = orjson.dumps([event])
        signature = hubspot_v3_signature("POST", url, body, ts, secret or CLIENT_SECRET)
        headers = {
            "Content-Type": "application/json",
            "X-HubSpot-Signature-v3": signature,
            "X-HubSpot-Request-Timestamp": str(ts),
        }
        return SignedWebhook(body, headers)
