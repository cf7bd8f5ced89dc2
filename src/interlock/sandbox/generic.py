"""A generic JSON-over-HTTP service: CRUD on any resource, like a typical internal API.

``/v1/{resource}`` lists (``limit``, ``cursor`` → ``{"data", "has_more",
"next_cursor"}``) and creates; ``/v1/{resource}/{id}`` reads, replaces (PUT),
merges (PATCH) and deletes. Auth is configurable: an ``X-API-Key`` header, a
static bearer token, and bearer tokens from the RFC 6749 endpoint
``POST /oauth/token`` (rotating refresh tokens). ``Idempotency-Key`` on POST and
PATCH replays the first answer (``Idempotent-Replayed: true``) or, with another
body, answers 422 (the IETF idempotency-key draft's choice). Answers carry the
IETF ``RateLimit-Limit``/``-Remaining``/``-Reset`` headers. Webhooks are signed
GitHub style (``X-Hub-Signature-256``) or with Standard Webhooks.
"""

from __future__ import annotations

import base64
import binascii
import math
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from interlock.errors import ConfigurationError
from interlock.sandbox.faults import Decision
from interlock.sandbox.idempotency import IdempotencyCache, Stored, fingerprint
from interlock.sandbox.oauth import OAuthError, TokenIssuer, token_fields, token_request
from interlock.sandbox.ratelimits import FixedWindow
from interlock.sandbox.simulator import Call, Simulator, json_response
from interlock.sandbox.webhooks import (
    SignedWebhook,
    github_signature,
    standard_webhooks_signature,
)

API_KEY = "sandbox-api-key"
BEARER_TOKEN = "sandbox-bearer-token"
CLIENT_ID = "generic-sandbox-client"
CLIENT_SECRET = "generic-sandbox-secret"
WEBHOOK_SECRET = "generic-sandbox-webhook-secret"
STANDARD_WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"interlock-sandbox-webhooks!").decode()
AuthMode = Literal["api_key", "bearer"]


def _error(status: int, code: str, message: str, **headers: str) -> Response:
    return json_response({"error": {"code": code, "message": message}}, status, headers)


class GenericSimulator(Simulator):
    """A JSON CRUD service (see the module docstring)."""

    name = "generic"
    collections = ()

    def __init__(
        self,
        *,
        seed: int = 0,
        auth: Sequence[AuthMode] = ("api_key", "bearer"),
        per_minute: int = 600,
        **kw: Any,
    ) -> None:
        unknown = set(auth) - {"api_key", "bearer"}
        if unknown:
            raise ConfigurationError(f"generic auth modes are api_key and bearer, got {unknown}")
        self.auth = tuple(auth)
        self.per_minute = per_minute
        super().__init__(seed=seed, **kw)

    def setup(self) -> None:
        self.window = FixedWindow(self.per_minute, 60.0)
        self.idempotency = IdempotencyCache()
        self.issuer = TokenIssuer(
            self.faults,
            access_prefix="at_",
            refresh_prefix="rt_",
            ttl=3600,
            rotate=True,
            scope="read write",
            seed=self.seed,
            clock=self.clock,
        )
        self.first_refresh_token = self.issuer.issue().refresh_token or ""

    @property
    def credentials(self) -> dict[str, str]:
        return {
            "api_key": API_KEY,
            "bearer_token": BEARER_TOKEN,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "refresh_token": self.first_refresh_token,
            "webhook_secret": WEBHOOK_SECRET,
            "standard_webhook_secret": STANDARD_WEBHOOK_SECRET,
        }

    def routes(self) -> Sequence[BaseRoute]:
        return [
            self.route("/oauth/token", self._token, ["POST"]),
            self.route("/v1/{resource}", self._resources, ["GET", "POST"]),
            self.route("/v1/{resource}/{id}", self._resource, ["GET", "PUT", "PATCH", "DELETE"]),
        ]

    # -- plumbing ---------------------------------------------------------------------

    def _guard(self, call: Call) -> tuple[Response | None, dict[str, str]]:
        denied = self._authenticate(call)
        if denied is not None:
            return denied, {}
        ok, left, reset_in = self.window.take("client", self.clock())
        reset = str(max(1, math.ceil(reset_in)))
        if not ok:
            return _error(429, "rate_limited", "Too many requests", **{"Retry-After": reset}), {}
        return None, {
            "RateLimit-Limit": str(self.per_minute),
            "RateLimit-Remaining": str(left),
            "RateLimit-Reset": reset,
            "X-Request-Id": str(uuid.uuid4()),
        }

    def _authenticate(self, call: Call) -> Response | None:
        if "api_key" in self.auth and call.headers.get("x-api-key") == API_KEY:
            return None
        scheme, _, token = call.headers.get("authorization", "").partition(" ")
        if "bearer" in self.auth and scheme.lower() == "bearer":
            token = token.strip()
            if token == BEARER_TOKEN:
                return None
            status = self.issuer.check(token)
            if status == "ok":
                return None
            if status == "expired":
                challenge = (
                    'Bearer error="invalid_token", error_description="The access token expired"'
                )
                return _error(
                    401,
                    "token_expired",
                    "The access token expired",
                    **{"WWW-Authenticate": challenge},
                )
        wanted = " or ".join(
            {"api_key": "an X-API-Key header", "bearer": "a bearer token"}[m] for m in self.auth
        )
        return _error(
            401,
            "unauthorized",
            f"Authenticate with {wanted}",
            **{"WWW-Authenticate": 'Bearer realm="sandbox"'},
        )

    def _idempotent(self, call: Call, run: Any) -> Response:
        key = call.headers.get("idempotency-key")
        if not key or call.method not in ("POST", "PATCH"):
            response: Response = run()
            return response
        fp = fingerprint(call.method, call.request.url.path, call.body.decode(errors="replace"))
        outcome = self.idempotency.begin(scope="client", key=key, fingerprint=fp)
        if outcome.kind == "conflict":
            return _error(
                422,
                "idempotency_key_reused",
                "This Idempotency-Key was used with a different request",
            )
        if outcome.kind == "in_use":
            return _error(409, "idempotency_key_in_use", "A request with this key is in progress")
        if outcome.stored is not None:
            return Response(
                outcome.stored.body,
                outcome.stored.status,
                {"Idempotent-Replayed": "true"},
                media_type="application/json",
            )
        response = run()
        keep = response.status_code < 500 and response.status_code not in (401, 429)
        stored = Stored(response.status_code, bytes(response.body), (), "") if keep else None
        self.idempotency.finish(scope="client", key=key, stored=stored)
        return response

    def fault_response(self, decision: Decision) -> Response:
        retry = str(max(1, math.ceil(decision.retry_after)))
        if decision.kind == "rate_limit":
            return _error(429, "rate_limited", "Too many requests", **{"Retry-After": retry})
        if decision.kind == "outage":
            return _error(
                decision.status, "unavailable", "Service unavailable", **{"Retry-After": retry}
            )
        return _error(decision.status, "internal_error", "Internal server error")

    def not_found(self, request: Request, status: int) -> Response:
        if status == 405:
            return _error(405, "method_not_allowed", f"{request.method} is not allowed here")
        return _error(404, "not_found", f"No route for {request.url.path}")

    # -- resources --------------------------------------------------------------------

    def _body(self, call: Call) -> dict[str, Any]:
        try:
            body = call.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise _Invalid("the body must be a JSON object")
        return body

    def _resources(self, call: Call) -> Response:
        denied, headers = self._guard(call)
        if denied is not None:
            return denied
        items = self.state.setdefault(call.params["resource"], {})
        if call.method == "GET":
            response = self._list(call, list(items.values()))
        else:
            response = self._idempotent(call, lambda: self._create(call, items))
        response.headers.update(headers)
        return response

    def _list(self, call: Call, items: list[dict[str, Any]]) -> Response:
        try:
            limit = int(call.query.get("limit", "20"))
            cursor = call.query.get("cursor")
            start = int(base64.urlsafe_b64decode(cursor).decode()) if cursor else 0
        except (ValueError, binascii.Error):
            return _error(400, "invalid_request", "limit must be a number and cursor as given")
        if not 1 <= limit <= 100:
            return _error(400, "invalid_request", "limit must be between 1 and 100")
        chunk = items[start : start + limit]
        more = start + limit < len(items)
        nxt = base64.urlsafe_b64encode(str(start + limit).encode()).decode() if more else None
        return json_response({"data": chunk, "has_more": more, "next_cursor": nxt})

    def _create(self, call: Call, items: dict[Any, dict[str, Any]]) -> Response:
        try:
            body = self._body(call)
        except _Invalid as exc:
            return _error(400, "invalid_json", str(exc))
        ident = str(body.get("id") or self.random_id("", 16).lower())
        if ident in items:
            return _error(409, "conflict", f"{call.params['resource']} {ident} already exists")
        now = self._now()
        items[ident] = {**body, "id": ident, "created_at": now, "updated_at": now}
        return json_response(items[ident], 201)

    def _resource(self, call: Call) -> Response:
        denied, headers = self._guard(call)
        if denied is not None:
            return denied
        items = self.state.setdefault(call.params["resource"], {})
        ident = call.params["id"]
        if ident not in items:
            response = _error(404, "not_found", f"{call.params['resource']} {ident} not found")
        elif call.method == "GET":
            response = json_response(items[ident])
        elif call.method == "DELETE":
            del items[ident]
            response = Response(status_code=204)
        else:
            response = self._idempotent(call, lambda: self._write(call, items, ident))
        response.headers.update(headers)
        return response

    def _write(self, call: Call, items: dict[Any, dict[str, Any]], ident: str) -> Response:
        try:
            body = self._body(call)
        except _Invalid as exc:
            return _error(400, "invalid_json", str(exc))
        current = items[ident]
        base = current if call.method == "PATCH" else {"created_at": current["created_at"]}
        items[ident] = {**base, **body, "id": ident, "updated_at": self._now()}
        return json_response(items[ident])

    def _now(self) -> str:
        return datetime.fromtimestamp(self.clock(), UTC).isoformat().replace("+00:00", "Z")

    def _token(self, call: Call) -> Response:
        fields = token_fields(call.headers.get("content-type", ""), call.body)
        try:
            grant = token_request(self.issuer, fields, CLIENT_ID, CLIENT_SECRET)
        except OAuthError as exc:
            return json_response(
                {"error": exc.error, "error_description": exc.description},
                exc.status,
                {"Cache-Control": "no-store"},
            )
        body: dict[str, Any] = {
            "access_token": grant.access_token,
            "token_type": "Bearer",
            "expires_in": grant.expires_in,
            "scope": grant.scope,
        }
        if grant.refresh_token:
            body["refresh_token"] = grant.refresh_token
        return json_response(body, 200, {"Cache-Control": "no-store"})

    def webhook(
        self,
        event_type: str,
        data: Mapping[str, Any] | None = None,
        *,
        url: str = "",
        scheme: Literal["standard", "github"] = "standard",
        secret: str | None = None,
        msg_id: str | None = None,
        timestamp: int | None = None,
        **options: Any,
    ) -> SignedWebhook:
        """A webhook signed with Standard Webhooks (default) or GitHub style (``scheme="github"``)."""
        ts = int(time.time()) if timestamp is None else timestamp
        if scheme == "github":
            body = orjson.dumps(dict(data or {}))
            return SignedWebhook(
                body,
                {
                    "Content-Type": "application/json",
                    "User-Agent": "GitHub-Hookshot/sandbox",
                    "X-GitHub-Event": event_type,
                    "X-GitHub-Delivery": msg_id or str(uuid.uuid4()),
                    "X-Hub-Signature-256": github_signature(body, secret or WEBHOOK_SECRET),
                },
            )
        ident = msg_id or "msg_" + self.random_id("", 24)
        stamp = datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")
        body = orjson.dumps({"type": event_type, "timestamp": stamp, "data": dict(data or {})})
        signature = standard_webhooks_signature(ident, ts, body, secret or STANDARD_WEBHOOK_SECRET)
        return SignedWebhook(
            body,
            {
                "Content-Type": "application/json",
                "webhook-id": ident,
                "webhook-timestamp": str(ts),
                "webhook-signature": signature,
            },
        )


class _Invalid(Exception):
    """A request body that is not a JSON object."""
