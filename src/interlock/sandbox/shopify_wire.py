"""Shopify Admin REST conventions shared by its resources: envelopes, errors, pages.

Bodies are enveloped (``{"order": {...}}``, ``{"orders": [...]}``); money is a
decimal string; a missing envelope is 400 ``{"errors": {"order": "Required
parameter missing or invalid"}}``, an invalid record 422 with ``{"errors":
{"field": ["message"]}}``, an unknown id 404 ``{"errors": "Not Found"}``. Lists
page with ``limit`` (≤ 250) and opaque ``page_info`` cursors in a ``Link``
header; with ``page_info`` only ``limit`` and ``fields`` may be given.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import orjson
from starlette.responses import Response

from interlock.sandbox.simulator import Call, json_response

if TYPE_CHECKING:
    from interlock.sandbox.shopify import ShopifySimulator

Obj = dict[str, Any]


class ShopifyError(Exception):
    def __init__(self, status: int, errors: Any) -> None:
        super().__init__(str(errors))
        self.status = status
        self.errors = errors


def not_found() -> ShopifyError:
    return ShopifyError(404, "Not Found")


def envelope(call: Call, name: str) -> Obj:
    try:
        body = call.json()
    except ValueError:
        raise ShopifyError(400, {"error": "822: unexpected token"}) from None
    if not isinstance(body, dict) or not isinstance(body.get(name), dict):
        raise ShopifyError(400, {name: "Required parameter missing or invalid"})
    inner: Obj = body[name]
    return inner


def money(value: Any) -> str:
    try:
        return f"{Decimal(str(value or '0')):.2f}"
    except InvalidOperation:
        raise ShopifyError(422, {"price": ["is not a number"]}) from None


def find(sim: ShopifySimulator, collection: str, ident: Any) -> Obj:
    try:
        obj = sim.state[collection].get(int(ident))
    except (TypeError, ValueError):
        obj = None
    if obj is None:
        raise not_found()
    return obj


def gid(kind: str, ident: int) -> str:
    return f"gid://shopify/{kind}/{ident}"


def page(sim: ShopifySimulator, call: Call, items: list[Obj], key: str) -> Response:
    try:
        limit = int(call.query.get("limit", "50"))
    except ValueError:
        limit = 0
    if not 1 <= limit <= 250:
        raise ShopifyError(400, {"limit": "Invalid limit, must be between 1 and 250"})
    start = 0
    cursor = call.query.get("page_info")
    if cursor:
        extra = set(call.query) - {"page_info", "limit", "fields"}
        if extra:
            raise ShopifyError(400, {"page_info": f"Cannot use {sorted(extra)[0]} with page_info"})
        try:
            start = int(orjson.loads(base64.urlsafe_b64decode(cursor.encode()))["offset"])
        except (binascii.Error, ValueError, KeyError, TypeError, orjson.JSONDecodeError):
            raise ShopifyError(400, {"page_info": "Invalid value."}) from None
    chunk = items[start : start + limit]
    links = []
    base = f"{sim.url}{call.request.url.path}"
    for offset, rel in ((start + limit, "next"), (start - limit, "previous")):
        if (rel == "next" and offset < len(items)) or (rel == "previous" and start > 0):
            info = base64.urlsafe_b64encode(orjson.dumps({"offset": max(0, offset)})).decode()
            links.append(f'<{base}?limit={limit}&page_info={info}>; rel="{rel}"')
    headers = {"Link": ", ".join(links)} if links else {}
    return json_response({key: chunk}, 200, headers)


def getter(collection: str, key: str) -> Callable[[ShopifySimulator, Call], Response]:
    def get(sim: ShopifySimulator, call: Call) -> Response:
        return json_response({key: find(sim, collection, call.params["id"])})

    return get


def deleter(collection: str) -> Callable[[ShopifySimulator, Call], Response]:
    def delete(sim: ShopifySimulator, call: Call) -> Response:
        obj = find(sim, collection, call.params["id"])
        del sim.state[collection][obj["id"]]
        return json_response({})

    return delete


def counter(collection: str) -> Callable[[ShopifySimulator, Call], Response]:
    def count(sim: ShopifySimulator, call: Call) -> Response:
        return json_response({"count": len(sim.state[collection])})

    return count


def lister(collection: str) -> Callable[[ShopifySimulator, Call], Response]:
    def list_(sim: ShopifySimulator, call: Call) -> Response:
        return page(sim, call, list(sim.state[collection].values()), collection)

    return list_


Handler = Callable[["ShopifySimulator", Call], Response]
