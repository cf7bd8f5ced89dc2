"""A Stripe simulator: customers, invoices, payment intents, refunds, signed events.

Paths, auth and shapes follow the Stripe API (``/v1/...``, form-encoded bodies,
``Authorization: Bearer sk_test_…`` or the key as a basic-auth user, ``Request-Id``
on every answer, ``Idempotency-Key`` on POSTs replayed with ``Idempotent-Replayed:
true``, a 400 ``idempotency_error`` when a key comes back with other parameters).
Cards are Stripe's test payment methods: ``pm_card_visa`` succeeds,
``pm_card_chargeDeclined`` (and ``…InsufficientFunds``, ``…ExpiredCard``,
``…IncorrectCvc``, ``…ProcessingError``, ``…LostCard``) fail with a 402 ``card_error``.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from interlock.sandbox import stripe_billing, stripe_customers, stripe_payments
from interlock.sandbox.faults import Decision
from interlock.sandbox.idempotency import IdempotencyCache, Stored, fingerprint
from interlock.sandbox.simulator import Call, Handler, Simulator, json_response
from interlock.sandbox.stripe_wire import (
    StripeError,
    decode_form,
    mask,
    no_such,
)
from interlock.sandbox.webhooks import SignedWebhook, stripe_signature

API_VERSION = "2024-06-20"
API_KEY = "sk_test_sandbox"
RESTRICTED_KEY = "rk_test_sandbox"
PUBLISHABLE_KEY = "pk_test_sandbox"
WEBHOOK_SECRET = "whsec_sandbox_stripe_signing_secret"

Api = Callable[["StripeSimulator", Mapping[str, Any], dict[str, Any]], dict[str, Any]]

_EXPANDABLE = {
    "customer": "customers",
    "latest_charge": "charges",
    "payment_intent": "payment_intents",
    "charge": "charges",
    "invoice": "invoices",
}


class StripeSimulator(Simulator):
    """The Stripe API at ``/v1`` (see the module docstring)."""

    name = "stripe"
    collections = (
        "customers",
        "invoices",
        "invoiceitems",
        "payment_intents",
        "charges",
        "refunds",
        "events",
    )

    def setup(self) -> None:
        self.idempotency = IdempotencyCache()

    @property
    def credentials(self) -> dict[str, str]:
        return {
            "api_key": API_KEY,
            "restricted_key": RESTRICTED_KEY,
            "publishable_key": PUBLISHABLE_KEY,
            "webhook_secret": WEBHOOK_SECRET,
        }

    def routes(self) -> Sequence[BaseRoute]:
        api = self._api
        return [
            *[self.route(p, api(fn), [m]) for p, m, fn in stripe_customers.ROUTES],
            *[self.route(p, api(fn), [m]) for p, m, fn in stripe_billing.ROUTES],
            *[self.route(p, api(fn), [m]) for p, m, fn in stripe_payments.ROUTES],
        ]

    # -- request handling ------------------------------------------------------------

    def _api(self, fn: Api) -> Handler:
        def handler(call: Call) -> Response:
            text = call.body.decode() if call.method == "POST" else call.request.url.query
            params = decode_form(text)
            obj = fn(self, call.params, params)
            expand = params.get("expand") or []
            return json_response(self.expand(obj, expand if isinstance(expand, list) else []))

        return handler

    def handle(self, call: Call, handler: Handler) -> Response:
        request_id = self.random_id("req_", 14)
        version = call.headers.get("stripe-version", API_VERSION)
        common = {"Request-Id": request_id, "Stripe-Version": version}
        try:
            key = self._authenticate(call)
        except StripeError as exc:
            return _error(exc, common)
        idem = call.headers.get("idempotency-key") if call.method == "POST" else None
        if idem is None:
            return self._run(call, handler, common)[0]
        params = decode_form(call.body.decode())
        fp = fingerprint(call.method, call.request.url.path, params)
        outcome = self.idempotency.begin(scope=key, key=idem, fingerprint=fp)
        if outcome.kind == "conflict":
            message = (
                "Keys for idempotent requests can only be used with the same parameters they "
                f"were first used with. Try using a key other than '{idem}' if you meant to "
                "execute a different request."
            )
            return _error(StripeError(400, message, type="idempotency_error"), common)
        if outcome.kind == "in_use":
            message = (
                "There is currently another in-progress request using this Idempotent Key "
                "(that probably means you submitted twice, and the other request is still "
                "going through): " + idem + ". Please try again later."
            )
            return _error(StripeError(409, message, code="idempotency_key_in_use"), common)
        if outcome.stored is not None:
            stored = outcome.stored
            headers = {
                **dict(stored.headers),
                **common,
                "Idempotent-Replayed": "true",
                "Original-Request": stored.request_id,
            }
            return Response(stored.body, stored.status, headers, media_type="application/json")
        response, saved = self._run(call, handler, common)
        kept = Stored(response.status_code, bytes(response.body), (), request_id) if saved else None
        self.idempotency.finish(scope=key, key=idem, stored=kept)
        response.headers["Idempotency-Key"] = idem
        return response

    def _run(self, call: Call, handler: Handler, common: dict[str, str]) -> tuple[Response, bool]:
        try:
            response = handler(call)
        except StripeError as exc:
            return _error(exc, common), exc.saved
        response.headers.update(common)
        return response, True

    def _authenticate(self, call: Call) -> str:
        header = call.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        key = value.strip()
        if scheme.lower() == "basic":
            try:
                key = base64.b64decode(key).decode().partition(":")[0]
            except (binascii.Error, UnicodeDecodeError):
                key = ""
        elif scheme.lower() != "bearer":
            key = ""
        if not key:
            raise StripeError(
                401,
                "You did not provide an API key. You need to provide your API key in the "
                "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
                "YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, "
                "or we can help at https://support.stripe.com/.",
            )
        if key == PUBLISHABLE_KEY:
            raise StripeError(
                401,
                "This API call cannot be made with a publishable API key. Please use a secret "
                "API key. You can find a list of your API keys at "
                "https://dashboard.stripe.com/account/apikeys.",
            )
        if key not in (API_KEY, RESTRICTED_KEY):
            raise StripeError(401, f"Invalid API Key provided: {mask(key)}")
        return key

    def fault_response(self, decision: Decision) -> Response:
        headers = {"Request-Id": self.random_id("req_", 14), "Stripe-Should-Retry": "true"}
        if decision.kind == "rate_limit":
            headers["Retry-After"] = str(max(1, round(decision.retry_after)))
            exc = StripeError(
                429,
                "Request rate limit exceeded. You can learn more about rate limits here "
                "https://stripe.com/docs/rate-limits.",
                code="rate_limit",
            )
            return _error(exc, headers)
        if decision.kind == "outage":
            headers["Retry-After"] = str(max(1, round(decision.retry_after)))
        message = (
            "Sorry, something went wrong. We've already been notified of the problem, but if you "
            "need any help, you can reach us at support.stripe.com/contact."
        )
        return _error(StripeError(decision.status, message, type="api_error"), headers)

    def not_found(self, request: Request, status: int) -> Response:
        message = (
            f"Unrecognized request URL ({request.method}: {request.url.path}). Please see "
            "https://stripe.com/docs or we can help at https://support.stripe.com/."
        )
        return _error(StripeError(404, message), {"Request-Id": self.random_id("req_", 14)})

    # -- objects ---------------------------------------------------------------------------

    def now(self) -> int:
        return int(self.clock())

    def find(self, collection: str, kind: str, ident: str, param: str = "id") -> dict[str, Any]:
        obj = self.state[collection].get(ident)
        if obj is None:
            raise no_such(kind, ident, param)
        return obj

    def newest_first(self, collection: str) -> list[dict[str, Any]]:
        return list(reversed(self.state[collection].values()))

    def expand(self, obj: dict[str, Any], paths: list[Any]) -> dict[str, Any]:
        """Replace expandable ids by their objects (``customer``, ``data.customer``, ...)."""
        out = dict(obj)
        for path in paths:
            head, _, rest = str(path).partition(".")
            if head == "data" and isinstance(out.get("data"), list):
                out["data"] = [self.expand(item, [rest]) for item in out["data"]]
                continue
            value, collection = out.get(head), _EXPANDABLE.get(head)
            if collection and isinstance(value, str) and value in self.state[collection]:
                out[head] = self.expand(self.state[collection][value], [rest] if rest else [])
        return out

    def webhook(
        self,
        event_type: str,
        data: Mapping[str, Any] | None = None,
        *,
        timestamp: int | None = None,
        secret: str | None = None,
        event_id: str | None = None,
        previous_attributes: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> SignedWebhook:
        """An ``event`` object as Stripe POSTs it, with a ``Stripe-Signature`` header."""
        ts = int(time.time()) if timestamp is None else timestamp
        event: dict[str, Any] = {
            "id": event_id or self.random_id("evt_", 24),
            "object": "event",
            "api_version": API_VERSION,
            "created": ts,
            "data": {"object": dict(data or {})},
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": event_type,
        }
        if previous_attributes is not None:
            event["data"]["previous_attributes"] = dict(previous_attributes)
        with self.lock:
            self.state["events"][event["id"]] = event
        body = orjson.dumps(event)
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            "Stripe-Signature": stripe_signature(body, secret or WEBHOOK_SECRET, ts),
        }
        return SignedWebhook(body, headers)


def _error(exc: StripeError, headers: Mapping[str, str]) -> Response:
    return json_response({"error": exc.body}, exc.status, headers)
