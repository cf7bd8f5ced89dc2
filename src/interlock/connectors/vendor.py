"""What the built-in vendor connectors share: typed answers and their contract checks.

Each built-in connector (:class:`~interlock.connectors.Stripe`,
:class:`~interlock.connectors.Shopify`, :class:`~interlock.connectors.HubSpot`,
:class:`~interlock.connectors.Zendesk`, :class:`~interlock.connectors.Slack`) is a
:class:`VendorConnector`: a :class:`~interlock.connectors.Connector` whose domain
methods return pydantic models. A model (:class:`VendorModel`) holds the fields
flows need and keeps whatever else the vendor sends in ``model_extra``, so a
vendor adding fields breaks nothing. Only ids are required; other fields are
optional but typed, so a field renamed away reads as ``None`` (its new name is in
``model_extra``) while a value of the wrong type — ``"NA"`` where an amount was —
is a :class:`~interlock.errors.VendorRejected` with code ``schema_mismatch``
naming the field, never a half-read object.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from interlock.connectors.base import Connector
from interlock.connectors.calls import request_body
from interlock.connectors.classify import MAX_MESSAGE
from interlock.connectors.http import decode
from interlock.errors import VendorRejected

M = TypeVar("M", bound=BaseModel)
DRY_RUN_HEADER = "Interlock-Dry-Run"


class VendorModel(BaseModel):
    """A vendor object: the fields flows need; everything else kept in ``model_extra``."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class VendorConnector(Connector):
    """A connector whose domain methods answer with :class:`VendorModel` objects."""

    async def send(
        self, method: str, path: str, *, operation: str, **options: Any
    ) -> httpx.Response:
        """One call through the guardrails (:meth:`Connector.request`); vendors may look at
        the answer first (Shopify's API version)."""
        return await self.request(method, path, operation=operation, **options)

    async def fetch(
        self,
        method: str,
        path: str,
        model: type[M],
        *,
        operation: str,
        envelope: str | None = None,
        **options: Any,
    ) -> M:
        """One call, its answer (or the object under ``envelope``) read as ``model``."""
        response = await self.send(method, path, operation=operation, **options)
        return self.read(response, model, operation=operation, envelope=envelope)

    async def fetch_all(
        self,
        method: str,
        path: str,
        model: type[M],
        *,
        operation: str,
        envelope: str,
        **options: Any,
    ) -> list[M]:
        """One call, the list under ``envelope`` in its answer read as ``model`` objects."""
        response = await self.send(method, path, operation=operation, **options)
        items = self.body(response, operation=operation).get(envelope)
        return self.parse_all(model, items, operation=operation, status=response.status_code)

    def body(self, response: httpx.Response, *, operation: str) -> dict[str, Any]:
        """The answer's JSON object (an empty dict for an empty answer)."""
        data = decode(response)
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise self.mismatch(operation, response.status_code, "the answer is not a JSON object")
        return data

    def read(
        self,
        response: httpx.Response,
        model: type[M],
        *,
        operation: str,
        envelope: str | None = None,
    ) -> M:
        data: Any = self.body(response, operation=operation)
        if envelope is not None:
            data = data.get(envelope)
        return self.parse(model, data, operation=operation, status=response.status_code)

    def parse(self, model: type[M], data: Any, *, operation: str, status: int | None = None) -> M:
        """``data`` as ``model``, or a ``schema_mismatch`` naming what did not fit."""
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "the object"
            detail = (
                f"the answer does not fit {model.__name__} ({exc.error_count()} errors, "
                f"first: {where}: {first['msg']})"
            )
            raise self.mismatch(operation, status, detail) from None

    def parse_all(
        self, model: type[M], items: Any, *, operation: str, status: int | None = None
    ) -> list[M]:
        if not isinstance(items, list):
            raise self.mismatch(operation, status, f"expected a list of {model.__name__}")
        return [self.parse(model, item, operation=operation, status=status) for item in items]

    def mismatch(self, operation: str, status: int | None, detail: str) -> VendorRejected:
        return VendorRejected(
            f"{self.name} {operation}: {detail}"[: MAX_MESSAGE + 100],
            connector=self.name,
            operation=operation,
            status=status,
            code="schema_mismatch",
        )


def clip(text: str) -> str:
    """A vendor message bounded like the base's (long validation lists are cut)."""
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


def header_number(headers: httpx.Headers, name: str) -> float | None:
    """A non-negative number from a header, or None."""
    value = headers.get(name)
    if value is None:
        return None
    try:
        number = float(value.split(",")[0].strip())
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def dry_digest(request: httpx.Request, idempotency_key: str | None) -> str:
    """A stable digest for made-up ids in dry-run answers: the same for one idempotency key
    (or, without one, for the same request)."""
    seed = idempotency_key or request.method + str(request.url) + request.content.decode(
        errors="replace"
    )
    return hashlib.sha256(seed.encode()).hexdigest()


def dry_body(request: httpx.Request) -> dict[str, Any]:
    """The request's body as a dict (JSON or form), for shaping a dry-run answer."""
    body = request_body(request)
    return dict(body) if isinstance(body, dict) else {}


def dry_answer(
    request: httpx.Request, status: int, data: Any, headers: Mapping[str, str] | None = None
) -> httpx.Response:
    """A dry-run answer carrying ``Interlock-Dry-Run: true``."""
    merged = {DRY_RUN_HEADER: "true", **dict(headers or {})}
    if data is None:
        return httpx.Response(status, headers=merged, request=request)
    return httpx.Response(status, json=data, headers=merged, request=request)


def present(**fields: Any) -> dict[str, Any]:
    """The fields that are not None (what a request sends)."""
    return {k: v for k, v in fields.items() if v is not None}
