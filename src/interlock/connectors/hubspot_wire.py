"""HubSpot CRM v3's wire format for the HubSpot connector: objects, errors, limits, dry-run.

- Objects are ``{"id", "properties", "createdAt", "updatedAt", "archived"}`` with
  string properties: :class:`Contact`, :class:`Company`, :class:`Deal` and :class:`Note`
  read the ones flows use as attributes (``deal.amount`` as a Decimal).
- Errors are ``{"status": "error", "message", "category", "correlationId"}``
  (``VALIDATION_ERROR``, ``OBJECT_NOT_FOUND``, ``CONFLICT``, ``MISSING_SCOPES``, …).
- Limits come in ``X-HubSpot-RateLimit-Max``/``-Remaining``/``-Interval-Milliseconds``
  and ``-Daily``/``-Daily-Remaining``; a 429 names its ``policyName``. Search
  (5 calls a second) sends none.
- Dry-run answers are objects with made-up numeric ids and the properties sent.

:class:`HubSpotApi` is the connector plumbing that speaks it, under
:class:`~interlock.connectors.HubSpot`'s domain methods.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import httpx
from pydantic import Field, field_validator

from interlock.connectors.calls import Call
from interlock.connectors.classify import ErrorDetails, VendorError, generic_details, json_body
from interlock.connectors.limiter import Rate
from interlock.connectors.signals import RateSignal, retry_after
from interlock.connectors.vendor import (
    VendorConnector,
    VendorModel,
    clip,
    dry_answer,
    dry_body,
    dry_digest,
    header_number,
)
from interlock.errors import ResourceNotFound, VendorRejected

H = TypeVar("H", bound="HubSpotObject")
DAILY_RECHECK = 3600.0  # the daily quota resets at midnight in the portal's time zone
RETRYABLE_STATUSES = frozenset({423, 477})  # a record locked by another write; a migration
# HUBSPOT_DEFINED association type ids, from → to.
ASSOCIATION_TYPES = {
    ("deals", "contacts"): 3,
    ("deals", "companies"): 341,
    ("contacts", "companies"): 279,
    ("notes", "contacts"): 202,
    ("notes", "companies"): 190,
    ("notes", "deals"): 214,
}

SEARCH_RATE = Rate(4, per="1s")  # HubSpot allows 5 searches a second, without headers
READS = ("/search", "/batch/read")  # POSTs that change nothing
PROPERTIES: dict[str, tuple[str, ...]] = {  # what the getters ask for unless told otherwise
    "contacts": ("email", "firstname", "lastname", "phone", "company", "lifecyclestage"),
    "companies": ("name", "domain", "industry", "phone", "city", "country"),
    "deals": ("dealname", "amount", "dealstage", "pipeline", "closedate", "hubspot_owner_id"),
    "notes": ("hs_note_body", "hs_timestamp", "hubspot_owner_id"),
}


class HubSpotObject(VendorModel):
    """A CRM object; ``properties`` holds what was asked for (strings, or None when unset)."""

    id: str
    properties: dict[str, str | None] = Field(default_factory=dict)
    created_at: datetime | None = Field(default=None, alias="createdAt")
    updated_at: datetime | None = Field(default=None, alias="updatedAt")
    archived: bool = False
    new: bool | None = None  # from an upsert: whether it was created

    def get(self, name: str) -> str | None:
        return self.properties.get(name) or None


class Contact(HubSpotObject):
    @property
    def email(self) -> str | None:
        return self.get("email")

    @property
    def first_name(self) -> str | None:
        return self.get("firstname")

    @property
    def last_name(self) -> str | None:
        return self.get("lastname")


class Company(HubSpotObject):
    @property
    def name(self) -> str | None:
        return self.get("name")

    @property
    def domain(self) -> str | None:
        return self.get("domain")


class Deal(HubSpotObject):
    @field_validator("properties")
    @classmethod
    def _amount_is_a_number(cls, properties: dict[str, str | None]) -> dict[str, str | None]:
        amount = properties.get("amount")
        if amount:
            try:
                Decimal(amount)
            except InvalidOperation:
                raise ValueError(f"amount {amount!r} is not a number") from None
        return properties

    @property
    def name(self) -> str | None:
        return self.get("dealname")

    @property
    def stage(self) -> str | None:
        return self.get("dealstage")

    @property
    def pipeline(self) -> str | None:
        return self.get("pipeline")

    @property
    def amount(self) -> Decimal | None:
        amount = self.get("amount")
        return Decimal(amount) if amount else None


class Note(HubSpotObject):
    @property
    def body(self) -> str | None:
        return self.get("hs_note_body")


def written(obj: H, sent: Mapping[str, str]) -> H:
    """``obj`` as a write left it: HubSpot answers with its default properties, so the
    ones written and not in the answer are filled in from what was sent."""
    obj.properties = {**sent, **{k: v for k, v in obj.properties.items() if v is not None}}
    return obj


def property_values(properties: Any) -> dict[str, str]:
    """Property values as HubSpot takes them: strings (``None`` clears a property)."""
    out: dict[str, str] = {}
    for name, value in dict(properties or {}).items():
        if isinstance(value, bool):
            out[name] = "true" if value else "false"
        elif isinstance(value, datetime):
            out[name] = value.astimezone(UTC).isoformat(timespec="milliseconds")
        else:
            out[name] = "" if value is None else str(value)
    return out


# -- errors and limits ---------------------------------------------------------------
def error_details(response: httpx.Response) -> ErrorDetails:
    """HubSpot's ``category`` (or token endpoint ``status``), message and missing scope."""
    body = json_body(response)
    if not isinstance(body, dict) or "message" not in body:
        return generic_details(response)
    status = body.get("status")
    code = body.get("category") or (status if status != "error" else None)
    scope = None
    for error in body.get("errors") or []:
        context = error.get("context") if isinstance(error, dict) else None
        if isinstance(context, dict):
            wanted = context.get("requiredGranularScopes") or context.get("requiredScopes")
            if wanted:
                scope = " ".join(str(s) for s in wanted)
    return ErrorDetails(str(code) if code else None, clip(str(body["message"])), scope)


def refine(error: VendorError | None, response: httpx.Response) -> VendorError | None:
    """HubSpot's statuses the base does not know: 423 and 477 are retried; a 429 on the
    daily quota waits an hour."""
    if error is None:
        return None
    if response.status_code in RETRYABLE_STATUSES:
        return VendorError("retryable", error.status, error.code, error.message)
    if error.kind == "rate_limited":
        body = json_body(response)
        if isinstance(body, dict) and body.get("policyName") == "DAILY":
            return VendorError("rate_limited", error.status, "DAILY", error.message, DAILY_RECHECK)
    return error


def rate_signal(response: httpx.Response, reserve: float) -> RateSignal:
    """The ten-second window's headroom — or the day's, once that runs out — and Retry-After."""
    headers = response.headers
    wait = retry_after(headers)
    daily_left = header_number(headers, "x-hubspot-ratelimit-daily-remaining")
    if daily_left is not None and daily_left <= reserve:
        daily = header_number(headers, "x-hubspot-ratelimit-daily")
        return RateSignal(daily, daily_left, DAILY_RECHECK, wait)
    interval = header_number(headers, "x-hubspot-ratelimit-interval-milliseconds")
    return RateSignal(
        header_number(headers, "x-hubspot-ratelimit-max"),
        header_number(headers, "x-hubspot-ratelimit-remaining"),
        interval / 1000 if interval is not None else None,
        wait,
    )


# -- dry-run ----------------------------------------------------------------------------
def simulate(request: httpx.Request, idempotency_key: str | None) -> httpx.Response:
    """What HubSpot would answer to a create, update, upsert, association or archive."""
    if request.method == "DELETE":
        return dry_answer(request, 204, None)
    parts = request.url.path.strip("/").split("/")  # crm, v3|v4, objects, type, ...
    digest = dry_digest(request, idempotency_key)
    now = datetime.fromtimestamp(time.time(), UTC).isoformat(timespec="milliseconds")
    sent = dry_body(request)
    made = str(10**10 + int(digest[:8], 16))
    if parts[1] == "v4":  # PUT …/associations/default/{to}/{toId}
        pair = {"from": {"id": parts[4]}, "to": {"id": parts[-1]}}
        return dry_answer(request, 200, {"status": "COMPLETE", "results": [pair]})
    if len(parts) > 5 and parts[4] == "batch":  # an upsert's ids are HubSpot's to give
        inputs = sent.get("inputs") or []
        results = [_batch(item, f"{made}{n}", now) for n, item in enumerate(inputs)]
        return dry_answer(request, 200, {"status": "COMPLETE", "results": results})
    if len(parts) > 4:  # PATCH …/{type}/{id}
        return dry_answer(request, 200, _object(parts[4], sent.get("properties") or {}, now))
    return dry_answer(request, 201, _object(made, sent.get("properties") or {}, now))


def _batch(item: dict[str, Any], made: str, now: str) -> dict[str, Any]:
    properties = dict(item.get("properties") or {})
    by = item.get("idProperty")
    if by:
        properties[by] = item.get("id")
    return _object(made if by else str(item.get("id") or made), properties, now)


def _object(ident: str, properties: dict[str, Any], now: str) -> dict[str, Any]:
    return {
        "id": ident,
        "properties": {**property_values(properties), "hs_object_id": ident},
        "createdAt": now,
        "updatedAt": now,
        "archived": False,
    }


class HubSpotApi(VendorConnector):
    """HubSpot's wire under the domain methods: its errors, limits and dry-run answers,
    searches that are reads, and the CRM object calls (get, find by unique property,
    create with associations, update, upsert, search)."""

    deal_key: str | None = None
    page_size: int = 100  # objects per search page

    def error_details(self, response: httpx.Response) -> ErrorDetails:
        return error_details(response)

    def vendor_error(self, response: httpx.Response) -> VendorError | None:
        return refine(super().vendor_error(response), response)

    def rate_signal(self, response: httpx.Response) -> RateSignal:
        return rate_signal(response, self.rate_reserve)

    def rate_for(self, call: Call) -> tuple[str, Rate] | None:
        if call.url.endswith("/search"):
            return f"{self.name}:search", SEARCH_RATE
        return super().rate_for(call)

    def mutates(self, call: Call) -> bool:
        return call.mutating and not call.url.endswith(READS)

    def simulate(self, request: httpx.Request, idempotency_key: str | None) -> httpx.Response:
        return simulate(request, idempotency_key)

    def _properties(self, kind: str, asked: Sequence[str] | None) -> str:
        names = list(asked) if asked is not None else list(PROPERTIES[kind])
        if asked is None and kind == "deals" and self.deal_key:
            names.append(self.deal_key)
        return ",".join(names)

    async def _get(
        self,
        kind: str,
        ident: str,
        model: type[H],
        *,
        properties: Sequence[str] | None,
        id_property: str | None = None,
        operation: str,
    ) -> H:
        params = {"properties": self._properties(kind, properties)}
        if id_property:
            params["idProperty"] = id_property
        path = f"/crm/v3/objects/{kind}/{ident}"
        return await self.fetch("GET", path, model, operation=operation, params=params)

    async def _find(
        self,
        kind: str,
        value: str,
        model: type[H],
        *,
        by: str,
        properties: Sequence[str] | None,
        operation: str,
    ) -> H | None:
        """The object whose unique property ``by`` is ``value``, or None."""
        try:
            return await self._get(
                kind, value, model, properties=properties, id_property=by, operation=operation
            )
        except ResourceNotFound:
            return None

    async def _create(
        self,
        kind: str,
        model: type[H],
        properties: Mapping[str, Any],
        *,
        associations: Sequence[tuple[str, str]] = (),
        operation: str,
    ) -> H:
        body: dict[str, Any] = {"properties": property_values(properties)}
        if associations:
            body["associations"] = [
                {
                    "to": {"id": to_id},
                    "types": [
                        {
                            "associationCategory": "HUBSPOT_DEFINED",
                            "associationTypeId": ASSOCIATION_TYPES[(kind, to_kind)],
                        }
                    ],
                }
                for to_kind, to_id in associations
            ]
        path = f"/crm/v3/objects/{kind}"
        made = await self.fetch("POST", path, model, operation=operation, json=body)
        return written(made, body["properties"])

    async def _update(
        self, kind: str, ident: str, model: type[H], properties: Mapping[str, Any], operation: str
    ) -> H:
        body = {"properties": property_values(properties)}
        path = f"/crm/v3/objects/{kind}/{ident}"
        updated = await self.fetch("PATCH", path, model, operation=operation, json=body)
        return written(updated, body["properties"])

    async def _upsert(
        self,
        kind: str,
        model: type[H],
        by: str,
        value: str,
        properties: Mapping[str, Any],
        operation: str,
    ) -> H:
        """Create or update by the unique property ``by`` (``batch/upsert``, one input)."""
        sent = property_values(properties)
        item = {"idProperty": by, "id": value, "properties": sent}
        path = f"/crm/v3/objects/{kind}/batch/upsert"
        response = await self.send("POST", path, operation=operation, json={"inputs": [item]})
        body = self.body(response, operation=operation)
        results = body.get("results") or []
        if not results and body.get("errors"):  # 207: HubSpot took the batch, not the item
            error = body["errors"][0] if isinstance(body["errors"][0], dict) else {}
            raise VendorRejected(
                f"{self.name} {operation} → HTTP {response.status_code}: "
                f"{error.get('category', '')} {error.get('message', '')}".strip(),
                connector=self.name,
                operation=operation,
                status=response.status_code,
                code=error.get("category"),
            )
        found = self.parse_all(model, results, operation=operation, status=response.status_code)
        if not found:
            raise self.mismatch(operation, response.status_code, "no result in the answer")
        return written(found[0], {**sent, by: value})

    async def _search(
        self,
        kind: str,
        model: type[H],
        equals: Mapping[str, Any],
        *,
        properties: Sequence[str] | None,
        limit: int,
        operation: str,
    ) -> list[H]:
        """Objects whose properties equal ``equals``, following ``paging.next.after``."""
        filters = [
            {"propertyName": name, "operator": "EQ", "value": value}
            for name, value in property_values(equals).items()
        ]
        body: dict[str, Any] = {
            "filterGroups": [{"filters": filters}] if filters else [],
            "properties": self._properties(kind, properties).split(","),
            "limit": max(1, min(self.page_size, limit)),
        }
        found: list[H] = []
        path = f"/crm/v3/objects/{kind}/search"
        while len(found) < limit:
            response = await self.send("POST", path, operation=operation, json=body)
            page = self.body(response, operation=operation)
            found.extend(
                self.parse_all(model, page.get("results"), operation=operation, status=200)
            )
            after = (page.get("paging") or {}).get("next", {}).get("after")
            if not after:
                break
            body["after"] = after
        return found[:limit]
