"""A Zendesk Support simulator: tickets, comments, users, OAuth, signed webhooks.

Auth is basic ``{email}/token:{api_token}`` or ``Authorization: Bearer`` with a
token from ``POST /oauth/tokens`` (JSON or form; ``refresh_token`` grants rotate
the refresh token). Answers carry ``X-Rate-Limit`` / ``X-Rate-Limit-Remaining``
from a per-minute budget (700 by default); over it, 429 with ``Retry-After``.
``POST /api/v2/tickets.json`` honours ``Idempotency-Key`` as Zendesk does:
a repeat gets the first answer with ``x-idempotency-lookup: hit``, a repeat
with another body a 400.
"""

from __future__ import annotations

import base64
import binascii
import math
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from interlock.sandbox import zendesk_tickets, zendesk_users
from interlock.sandbox.faults import Decision
from interlock.sandbox.idempotency import IdempotencyCache, Stored, fingerprint
from interlock.sandbox.oauth import OAuthError, TokenIssuer, token_fields, token_request
from interlock.sandbox.ratelimits import FixedWindow
from interlock.sandbox.simulator import Call, Handler, Simulator, json_response
from interlock.sandbox.webhooks import SignedWebhook, zendesk_signature
from interlock.sandbox.zendesk_users import new_user
from interlock.sandbox.zendesk_wire import ZendeskError

SUBDOMAIN = "sandbox"
EMAIL = "agent@sandbox.test"
API_TOKEN = "zendesk-sandbox-api-token"
CLIENT_ID = "zendesk-sandbox-client"
CLIENT_SECRET = "zendesk-sandbox-secret"
WEBHOOK_SECRET = "zendesk-sandbox-webhook-secret"


class ZendeskSimulator(Simulator):
    """Zendesk's Support API (see the module docstring)."""

    name = "zendesk"
    collections = ("tickets", "users")

    def __init__(self, *, seed: int = 0, per_minute: int = 700, **kw: Any) -> None:
        self.per_minute = per_minute
        super().__init__(seed=seed, **kw)

    def setup(self) -> None:
        self.next_ticket = 0
        self.next_id = 360_000_000_000 + self.rng.randrange(10**6)
        self.comments: dict[int, list[dict[str, Any]]] = {}
        self.window = FixedWindow(self.per_minute, 60.0)
        self.idempotency = IdempotencyCache()
        self.issuer = TokenIssuer(
            self.faults,
            access_prefix="zd-",
            refresh_prefix="zdr-",
            ttl=172800,
            rotate=True,
            scope="read write",
            seed=self.seed,
            clock=self.clock,
        )
        self.first_refresh_token = self.issuer.issue().refresh_token or ""
        self.agent_id: int = new_user(
            self, {"name": "Sandbox Agent", "email": EMAIL, "role": "admin"}
        )["id"]

    @property
    def credentials(self) -> dict[str, str]:
        return {
            "subdomain": SUBDOMAIN,
            "email": EMAIL,
            "api_token": API_TOKEN,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "refresh_token": self.first_refresh_token,
            "webhook_secret": WEBHOOK_SECRET,
        }

    def routes(self) -> Sequence[BaseRoute]:
        return [
            self.route("/oauth/tokens", self._token, ["POST"]),
            *[
                self.route(path, self._api(fn), [m])
                for path, m, fn in [*zendesk_tickets.ROUTES, *zendesk_users.ROUTES]
            ],
        ]

    def new_id(self) -> int:
        self.next_id += 1 + self.rng.randrange(100)
        return self.next_id

    def timestamp(self) -> str:
        return datetime.fromtimestamp(int(self.clock()), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def user_by_email(self, email: str) -> dict[str, Any] | None:
        wanted = email.lower()
        return next(
            (u for u in self.state["users"].values() if (u["email"] or "").lower() == wanted), None
        )

    # -- request handling ------------------------------------------------------------

    def _api(self, fn: Any) -> Handler:
        def handler(call: Call) -> Response:
            denied = self._authenticate(call)
            if denied is not None:
                return denied
            ok, left, reset_in = self.window.take("account", self.clock())
            if not ok:
                return self._rate_limited(reset_in)
            headers = {
                "X-Rate-Limit": str(self.per_minute),
                "X-Rate-Limit-Remaining": str(left),
                "X-Zendesk-Request-Id": uuid.uuid4().hex[:20],
            }
            key = call.headers.get("idempotency-key")
            if key and call.method == "POST" and call.request.url.path == "/api/v2/tickets.json":
                response = self._idempotent(call, fn, key)
            else:
                response = self._run(call, fn)
            response.headers.update(headers)
            return response

        return handler

    def _run(self, call: Call, fn: Any) -> Response:
        try:
            response: Response = fn(self, call)
        except ZendeskError as exc:
            return json_response(exc.body, exc.status)
        return response

    def _idempotent(self, call: Call, fn: Any, key: str) -> Response:
        try:
            params = call.json()
        except ValueError:
            params = call.body.decode(errors="replace")
        outcome = self.idempotency.begin(
            scope="account",
            key=key,
            fingerprint=fingerprint("POST", "/api/v2/tickets.json", params),
        )
        if outcome.kind in ("conflict", "in_use"):
            return json_response(
                {
                    "error": "IdempotentRequestError",
                    "description": "Request parameters do not match the original request for this "
                    "idempotency key",
                },
                400,
            )
        if outcome.stored is not None:
            return Response(
                outcome.stored.body,
                outcome.stored.status,
                {"x-idempotency-lookup": "hit"},
                media_type="application/json",
            )
        response = self._run(call, fn)
        stored = Stored(response.status_code, bytes(response.body), (), "")
        self.idempotency.finish(
            scope="account", key=key, stored=stored if response.status_code < 500 else None
        )
        response.headers["x-idempotency-lookup"] = "miss"
        return response

    def _authenticate(self, call: Call) -> Response | None:
        scheme, _, value = call.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            status = self.issuer.check(value.strip())
            if status == "ok":
                return None
            return json_response(
                {
                    "error": "invalid_token",
                    "error_description": "The access token provided is expired, revoked, malformed or "
                    "invalid for other reasons.",
                },
                401,
            )
        if scheme.lower() == "basic":
            try:
                user, _, secret = base64.b64decode(value.strip()).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                user, secret = "", ""
            if user.lower() == f"{EMAIL}/token" and secret == API_TOKEN:
                return None
        return json_response(
            {"error": "Couldn't authenticate you"},
            401,
            {"WWW-Authenticate": 'Basic realm="Web Password"'},
        )

    def _rate_limited(self, retry_after: float) -> Response:
        body = {
            "error": "APIRateLimitExceeded",
            "description": "Number of allowed API requests per minute exceeded",
        }
        headers = {
            "Retry-After": str(max(1, math.ceil(retry_after))),
            "X-Rate-Limit": str(self.per_minute),
            "X-Rate-Limit-Remaining": "0",
        }
        return json_response(body, 429, headers)

    def fault_response(self, decision: Decision) -> Response:
        if decision.kind == "rate_limit":
            return self._rate_limited(decision.retry_after)
        if decision.kind == "outage":
            return json_response(
                {
                    "error": "ServiceUnavailable",
                    "description": "Zendesk is temporarily unavailable",
                },
                decision.status,
                {"Retry-After": str(max(1, math.ceil(decision.retry_after)))},
            )
        return json_response(
            {"error": "InternalServerError", "description": "Something went wrong"}, decision.status
        )

    def not_found(self, request: Request, status: int) -> Response:
        return json_response({"error": "InvalidEndpoint", "description": "Not found"}, 404)

    def _token(self, call: Call) -> Response:
        fields = token_fields(call.headers.get("content-type", ""), call.body)
        try:
            grant = token_request(self.issuer, fields, CLIENT_ID, CLIENT_SECRET)
        except OAuthError as exc:
            return json_response(
                {"error": exc.error, "error_description": exc.description}, exc.status
            )
        body: dict[str, Any] = {
            "access_token": grant.access_token,
            "token_type": "bearer",
            "scope": grant.scope,
            "expires_in": grant.expires_in,
        }
        if grant.refresh_token:
            body.update(refresh_token=grant.refresh_token, refresh_token_expires_in=2592000)
        return json_response(body)

    def webhook(
        self,
        event_type: str,
        data: Mapping[str, Any] | None = None,
        *,
        url: str = "",
        secret: str | None = None,
        **options: Any,
    ) -> SignedWebhook:
        """An event-subscription payload (``zen:event-type:ticket.created``) signed as Zendesk does."""
        now = datetime.fromtimestamp(time.time(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        detail = dict(data or {})
        event = {
            "account_id": 1234567,
            "id": str(uuid.uuid4()),
            "time": now,
            "type": event_type if event_type.startswith("zen:") else f"zen:event-type:{event_type}",
            "zendesk_event_version": "2022-11-06",
            "subject": f"zen:ticket:{detail.get('id', 0)}",
            "detail": detail,
            "event": {},
        }
        body = orjson.dumps(event)
        headers = {
            "Content-Type": "application/json",
            "X-Zendesk-Webhook-Signature": zendesk_signature(body, secret or WEBHOOK_SECRET, now),
            "X-Zendesk-Webhook-Signature-Timestamp": now,
            "X-Zendesk-Webhook-Id": str(uuid.uuid4()),
            "X-Zendesk-Account-Id": "1234567",
        }
        return SignedWebhook(body, headers)
