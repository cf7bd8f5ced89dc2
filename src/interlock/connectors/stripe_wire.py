"""Stripe's wire format for the Stripe connector: objects, form bodies, errors, dry-run answers.

- Objects are pydantic models of what flows use (:class:`Customer`, :class:`Invoice`,
  :class:`InvoiceItem`, :class:`PaymentIntent`, :class:`Refund`); amounts are integers
  in the currency's smallest unit, as Stripe sends them.
- Requests are ``application/x-www-form-urlencoded`` with brackets for nesting:
  ``metadata[order_id]=1042``, ``expand[0]=customer``.
- Errors are ``{"error": {"type", "code", "message", "param", "decline_code"}}``;
  ``Stripe-Should-Retry`` says whether a retry may succeed.
- Dry-run answers are shaped like Stripe's: ``cus_…``/``in_…``/``pi_…``/``re_…`` ids,
  ``object``, ``livemode: false``, statuses as the action would leave them.

:class:`StripeApi` is the connector plumbing that speaks it, under
:class:`~interlock.connectors.Stripe`'s domain methods.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
from pydantic import Field

from interlock.connectors.classify import ErrorDetails, VendorError, generic_details, json_body
from interlock.connectors.vendor import (
    M,
    VendorConnector,
    VendorModel,
    clip,
    dry_answer,
    dry_digest,
)

API_VERSION = "2024-06-20"
FORM = "application/x-www-form-urlencoded"
# Stripe's codes for an idempotent request that collided with another still running.
RETRYABLE_CODES = frozenset({"idempotency_key_in_use", "lock_timeout"})
_PERMISSION = re.compile(r"Having the '([\w.]+)' permission")


class StripeObject(VendorModel):
    """What every Stripe object has."""

    id: str
    object: str | None = None
    livemode: bool = False
    created: int | None = None
    metadata: dict[str, str] = Field(default_factory=dict)


class Customer(StripeObject):
    email: str | None = None
    name: str | None = None
    description: str | None = None
    deleted: bool = False


class Invoice(StripeObject):
    customer: str | None = None
    status: str | None = None  # draft, open, paid, void, uncollectible (or what Stripe adds)
    currency: str | None = None
    amount_due: int | None = None
    amount_paid: int | None = None
    amount_remaining: int | None = None
    number: str | None = None
    hosted_invoice_url: str | None = None
    collection_method: str | None = None


class InvoiceItem(StripeObject):
    customer: str | None = None
    invoice: str | None = None
    amount: int | None = None
    currency: str | None = None
    description: str | None = None


class PaymentIntent(StripeObject):
    amount: int | None = None
    amount_received: int | None = None
    currency: str | None = None
    customer: str | None = None
    status: str | None = None  # requires_payment_method, …, succeeded, canceled
    payment_method: str | None = None
    latest_charge: str | None = None
    capture_method: str | None = None
    last_payment_error: dict[str, Any] | None = None


class Refund(StripeObject):
    amount: int | None = None
    currency: str | None = None
    status: str | None = None
    charge: str | None = None
    payment_intent: str | None = None
    reason: str | None = None


# -- form bodies ------------------------------------------------------------------------
def encode(params: Mapping[str, Any]) -> bytes:
    """Stripe's form encoding: nested mappings and lists in brackets; None is left out."""
    pairs: list[tuple[str, str]] = []

    def walk(key: str, value: Any) -> None:
        if value is None:
            return
        if isinstance(value, Mapping):
            for sub, item in value.items():
                walk(f"{key}[{sub}]", item)
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                walk(f"{key}[{index}]", item)
        elif isinstance(value, bool):
            pairs.append((key, "true" if value else "false"))
        else:
            pairs.append((key, str(value)))

    for name, value in params.items():
        walk(name, value)
    return urlencode(pairs).encode()


def decode(content: bytes) -> dict[str, Any]:
    """A form body back into nested data (what a dry-run answer echoes)."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(content.decode(errors="replace"), keep_blank_values=True):
        parts = re.findall(r"[^\[\]]+", key)
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        if parts:
            node[parts[-1]] = value
    return {name: _lists(value) for name, value in root.items()}


def _lists(value: Any) -> Any:
    if isinstance(value, dict):
        items = {k: _lists(v) for k, v in value.items()}
        if items and all(k.isdigit() for k in items):
            return [items[k] for k in sorted(items, key=int)]
        return items
    return value


# -- errors -------------------------------------------------------------------------------
def error_details(response: httpx.Response) -> ErrorDetails:
    """Stripe's error object: its code (or type), message, parameter and decline code."""
    body = json_body(response)
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return generic_details(response)
    code = error.get("code") or error.get("type")
    message = str(error.get("message") or "")
    param, decline = error.get("param"), error.get("decline_code")
    if param and str(param) not in message:
        message += f" (param {param})"
    if decline and decline != code:
        message += f" (decline_code {decline})"
    scope = _PERMISSION.search(message)
    return ErrorDetails(
        str(code) if code else None, clip(message) or None, scope.group(1) if scope else None
    )


# -- dry-run ----------------------------------------------------------------------------
_OBJECTS = {  # path segment: (id prefix, object)
    "customers": ("cus_", "customer"),
    "invoices": ("in_", "invoice"),
    "invoiceitems": ("ii_", "invoiceitem"),
    "payment_intents": ("pi_", "payment_intent"),
    "refunds": ("re_", "refund"),
}
_AFTER = {  # (object, action): the status it leaves
    ("invoices", "finalize"): "open",
    ("invoices", "pay"): "paid",
    ("invoices", "void"): "void",
    ("invoices", "mark_uncollectible"): "uncollectible",
    ("payment_intents", "confirm"): "succeeded",
    ("payment_intents", "capture"): "succeeded",
    ("payment_intents", "cancel"): "canceled",
}
_INTEGERS = ("amount", "amount_to_capture", "unit_amount", "quantity", "days_until_due")


def simulate(request: httpx.Request, idempotency_key: str | None) -> httpx.Response:
    """What Stripe would answer to a create, update, action or delete not sent."""
    parts = request.url.path.strip("/").split("/")[1:]  # after "v1"
    resource = parts[0] if parts else ""
    prefix, kind = _OBJECTS.get(resource, ("obj_", resource.rstrip("s")))
    digest = dry_digest(request, idempotency_key)
    headers = {"Request-Id": "req_dry" + digest[:11], "Stripe-Version": API_VERSION}
    if request.method == "DELETE":
        ident = parts[1] if len(parts) > 1 else ""
        return dry_answer(request, 200, {"id": ident, "object": kind, "deleted": True}, headers)
    params = decode(request.content)
    asked = {**params, "confirm": params.get("confirm") == "true"}
    for transient in ("expand", "confirm", "pending_invoice_items_behavior"):
        params.pop(transient, None)
    for name in _INTEGERS:
        if isinstance(params.get(name), str) and params[name].lstrip("-").isdigit():
            params[name] = int(params[name])
    if len(parts) == 1:  # a create
        obj: dict[str, Any] = {
            "id": f"{prefix}dry{digest[:21]}",
            "object": kind,
            "livemode": False,
            "created": int(time.time()),
            "metadata": {},
            **_created(resource, asked),
            **params,
        }
    else:
        obj = {"id": parts[1], "object": kind, **params}
        status = _AFTER.get((resource, parts[2])) if len(parts) > 2 else None
        if status is not None:
            obj["status"] = status
        if resource == "payment_intents" and "amount_to_capture" in params:
            obj["amount_received"] = params["amount_to_capture"]
    return dry_answer(request, 200, obj, headers)


def _created(resource: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The fields Stripe sets on a new object of ``resource``."""
    if resource == "invoices":
        return {"status": "draft", "amount_due": 0, "amount_paid": 0, "amount_remaining": 0}
    if resource == "payment_intents":
        if params.get("confirm") and params.get("payment_method"):
            manual = params.get("capture_method") == "manual"
            return {"status": "requires_capture" if manual else "succeeded"}
        method = params.get("payment_method")
        return {"status": "requires_confirmation" if method else "requires_payment_method"}
    if resource == "refunds":
        return {"status": "succeeded"}
    return {}


class StripeApi(VendorConnector):
    """Stripe's wire under the domain methods: form-encoded POSTs with idempotency keys,
    ``Stripe-Version`` on every call, Stripe's errors and dry-run answers, list pages."""

    api_version: str = API_VERSION
    page_size: int = 100  # objects per list page (Stripe's maximum)

    def error_details(self, response: httpx.Response) -> ErrorDetails:
        return error_details(response)

    def vendor_error(self, response: httpx.Response) -> VendorError | None:
        error = super().vendor_error(response)
        if error is None or error.kind == "rate_limited":
            return error
        should = response.headers.get("stripe-should-retry")
        if error.kind == "permanent" and (should == "true" or error.code in RETRYABLE_CODES):
            return VendorError("retryable", error.status, error.code, error.message)
        if error.kind == "retryable" and should == "false":
            return VendorError("permanent", error.status, error.code, error.message)
        return error

    def simulate(self, request: httpx.Request, idempotency_key: str | None) -> httpx.Response:
        return simulate(request, idempotency_key)

    async def send(
        self, method: str, path: str, *, operation: str, **options: Any
    ) -> httpx.Response:
        headers = {"Stripe-Version": self.api_version, **options.pop("headers", {})}
        return await super().send(method, path, operation=operation, headers=headers, **options)

    async def _post(
        self, path: str, model: type[M], operation: str, key: str | None, **params: Any
    ) -> M:
        """A form-encoded POST with its idempotency key (``None`` values are left out)."""
        return await self.fetch(
            "POST",
            path,
            model,
            operation=operation,
            content=encode(params),
            headers={"Content-Type": FORM},
            idempotency_key=key,
        )

    async def _list(
        self, path: str, model: type[M], operation: str, limit: int, **params: Any
    ) -> list[M]:
        """Up to ``limit`` objects, newest first, following ``starting_after``."""
        query: dict[str, Any] = {k: v for k, v in params.items() if v is not None}
        query["limit"] = max(1, min(self.page_size, limit))
        found: list[M] = []
        while len(found) < limit:
            response = await self.send("GET", path, operation=operation, params=query)
            page = self.body(response, operation=operation)
            items = self.parse_all(model, page.get("data"), operation=operation, status=200)
            found.extend(items)
            if not items or not page.get("has_more"):
                break
            query["starting_after"] = getattr(items[-1], "id", "")
        return found[:limit]
