"""The generic JSON-over-HTTP connector: any REST API, with every guardrail.

::

    crm = app.connector(HttpConnector(
        "crm", base_url="https://crm.acme.test", auth=BearerToken(secret="crm-token"),
        rate=Rate(10, per="1s"), probe="/v1/ping",
    ))

    @app.flow(OrderShipped, owner="revops@acme.test")
    async def note(event: OrderShipped, ctx: Context) -> None:
        crm = ctx.connector(HttpConnector)                       # or ctx.connector("crm")
        deal = await ctx.step("find-deal", crm.get, f"/v1/deals/{event.order_id}", model=Deal)
        await ctx.step("add-note", crm.post, "/v1/notes", {"deal": deal["id"], "text": "shipped"})

Reads return the decoded JSON (or ``model``, a pydantic model, validated from it);
mutating calls carry an ``Idempotency-Key`` derived from the step. ``pages``
walks cursor pagination (``{"data": [...], "has_more", "next_cursor"}`` by
default; say otherwise with ``items=``, ``cursor=`` and ``next_cursor=``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, TypeVar, overload
from urllib.parse import parse_qsl, urlsplit

import httpx
import orjson
from pydantic import BaseModel, ValidationError

from interlock.connectors.base import Connector, Probe
from interlock.errors import VendorRejected

M = TypeVar("M", bound=BaseModel)


def decode(response: httpx.Response) -> Any:
    """The answer's JSON (None when empty); a body that is not JSON is a vendor error."""
    if not response.content:
        return None
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        raise VendorRejected(
            f"answer to {response.request.method} {response.request.url.path} is not JSON "
            f"({response.headers.get('content-type', 'no content type')})",
            status=response.status_code,
        ) from None


class HttpConnector(Connector):
    """A connector for any JSON API (see the module docstring). ``probe`` is a path (with
    an optional query) that ``interlock connectors check`` reads; other options are the
    :class:`~interlock.connectors.Connector` ones (auth, rate, breaker, timeouts...)."""

    def __init__(
        self,
        name: str,
        *,
        base_url: str,
        probe: str | None = None,
        items: str = "data",
        cursor: str = "cursor",
        next_cursor: str = "next_cursor",
        **options: Any,
    ) -> None:
        if probe is not None:
            parts = urlsplit(probe)
            options.setdefault(
                "probes", (Probe("probe", parts.path, params=dict(parse_qsl(parts.query))),)
            )
        super().__init__(name, base_url=base_url, **options)
        self.items, self.cursor, self.next_cursor = items, cursor, next_cursor

    @overload
    async def call(
        self, method: str, path: str, body: Any = None, *, model: type[M], **options: Any
    ) -> M: ...

    @overload
    async def call(
        self, method: str, path: str, body: Any = None, *, model: None = None, **options: Any
    ) -> Any: ...

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        model: type[M] | None = None,
        **options: Any,
    ) -> Any:
        """One call; ``options`` are :meth:`~interlock.connectors.Connector.request`'s."""
        response = await self.request(method, path, json=body, **options)
        data = decode(response)
        if model is None:
            return data
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise VendorRejected(
                f"{self.name} {method} {path}: the answer does not fit {model.__name__} "
                f"({exc.error_count()} errors, first: {exc.errors()[0]['msg']})",
                connector=self.name,
                status=response.status_code,
                code="schema_mismatch",
            ) from None

    async def get(
        self,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        model: type[BaseModel] | None = None,
        **options: Any,
    ) -> Any:
        return await self.call("GET", path, params=params, model=model, **options)

    async def post(
        self, path: str, body: Any = None, *, model: type[BaseModel] | None = None, **options: Any
    ) -> Any:
        return await self.call("POST", path, body, model=model, **options)

    async def put(
        self, path: str, body: Any = None, *, model: type[BaseModel] | None = None, **options: Any
    ) -> Any:
        return await self.call("PUT", path, body, model=model, **options)

    async def patch(
        self, path: str, body: Any = None, *, model: type[BaseModel] | None = None, **options: Any
    ) -> Any:
        return await self.call("PATCH", path, body, model=model, **options)

    async def delete(self, path: str, **options: Any) -> Any:
        return await self.call("DELETE", path, **options)

    async def pages(
        self, path: str, *, params: Mapping[str, Any] | None = None, **options: Any
    ) -> AsyncIterator[list[Any]]:
        """Each page's items, following the cursor until the API says there are no more."""
        query = dict(params or {})
        while True:
            page = await self.call("GET", path, params=query, **options)
            if not isinstance(page, dict):
                raise VendorRejected(f"{self.name} GET {path}: a page is not a JSON object")
            yield list(page.get(self.items) or [])
            following = page.get(self.next_cursor)
            if not following or page.get("has_more") is False:
                return
            query[self.cursor] = following
