"""Zendesk Support conventions shared by its resources: envelopes, errors, pages.

Bodies are enveloped (``{"ticket": {...}}``); invalid records are 422
``{"error": "RecordInvalid", "description": "Record validation errors",
"details": {field: [{"description", "error"}]}}``; unknown ids are 404
``{"error": "RecordNotFound", "description": "Not found"}``. Lists page with
offsets (``page``/``per_page``, ``next_page`` URLs and ``count``) or, given
``page[size]``, with cursors (``meta.has_more``, ``meta.after_cursor``,
``links.next``).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.responses import Response

from interlock.sandbox.simulator import Call, json_response

if TYPE_CHECKING:
    from interlock.sandbox.zendesk import ZendeskSimulator

Obj = dict[str, Any]
Handler = Callable[["ZendeskSimulator", Call], Response]


class ZendeskError(Exception):
    def __init__(self, status: int, body: Obj) -> None:
        super().__init__(str(body))
        self.status = status
        self.body = body


def invalid(field: str, description: str, error: str = "InvalidValue") -> ZendeskError:
    return ZendeskError(
        422,
        {
            "error": "RecordInvalid",
            "description": "Record validation errors",
            "details": {field: [{"description": description, "error": error}]},
        },
    )


def not_found() -> ZendeskError:
    return ZendeskError(404, {"error": "RecordNotFound", "description": "Not found"})


def envelope(call: Call, name: str) -> Obj:
    try:
        body = call.json()
    except ValueError:
        raise ZendeskError(
            400, {"error": "Unprocessable Entity", "description": "Invalid JSON"}
        ) from None
    if not isinstance(body, dict) or not isinstance(body.get(name), dict):
        raise ZendeskError(
            400,
            {
                "error": f"Parameter {name} is required",
                "description": f"Parameter {name} is required",
            },
        )
    inner: Obj = body[name]
    return inner


def find(sim: ZendeskSimulator, collection: str, ident: Any) -> Obj:
    try:
        obj = sim.state[collection].get(int(str(ident).removesuffix(".json")))
    except ValueError:
        obj = None
    if obj is None:
        raise not_found()
    return obj


def page(sim: ZendeskSimulator, call: Call, items: list[Obj], key: str) -> Response:
    path = f"{sim.url}{call.request.url.path}"
    size = call.query.get("page[size]")
    if size is not None:
        return _cursor_page(call, items, key, path, size)
    try:
        number = int(call.query.get("page", "1"))
        per_page = min(100, int(call.query.get("per_page", "100")))
    except ValueError:
        raise ZendeskError(
            400,
            {
                "error": "InvalidPaginationParameter",
                "description": "page and per_page must be numbers",
            },
        ) from None
    start = (number - 1) * per_page
    body: Obj = {key: items[start : start + per_page], "count": len(items)}
    more = start + per_page < len(items)
    body["next_page"] = (
        f"{path}?{urlencode({'page': number + 1, 'per_page': per_page})}" if more else None
    )
    body["previous_page"] = (
        f"{path}?{urlencode({'page': number - 1, 'per_page': per_page})}" if number > 1 else None
    )
    return json_response(body)


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode()


def _cursor_page(call: Call, items: list[Obj], key: str, path: str, size: str) -> Response:
    try:
        limit = int(size)
        after, before = call.query.get("page[after]"), call.query.get("page[before]")
        start = int(base64.urlsafe_b64decode(after).decode()[2:]) if after else 0
        if before:
            start = max(0, int(base64.urlsafe_b64decode(before).decode()[2:]) - limit)
    except (ValueError, binascii.Error):
        raise ZendeskError(
            400,
            {
                "error": "InvalidPaginationParameter",
                "description": "invalid page[after] or page[size]",
            },
        ) from None
    if not 1 <= limit <= 100:
        raise ZendeskError(
            400,
            {
                "error": "InvalidPaginationParameter",
                "description": "page[size] must be between 1 and 100",
            },
        )
    chunk = items[start : start + limit]
    more = start + limit < len(items)
    after_cursor = _cursor(start + len(chunk)) if chunk else None
    before_cursor = _cursor(start) if chunk else None

    def link(name: str, cursor: str | None) -> str | None:
        return f"{path}?{urlencode({'page[size]': limit, name: cursor})}" if cursor else None

    return json_response(
        {
            key: chunk,
            "meta": {
                "has_more": more,
                "after_cursor": after_cursor,
                "before_cursor": before_cursor,
            },
            "links": {
                "next": link("page[after]", after_cursor) if more else None,
                "prev": link("page[before]", before_cursor) if start > 0 else None,
            },
        }
    )


def getter(collection: str, key: str) -> Callable[[ZendeskSimulator, Call], Response]:
    def get(sim: ZendeskSimulator, call: Call) -> Response:
        return json_response({key: find(sim, collection, call.params["id"])})

    return get


def lister(collection: str) -> Callable[[ZendeskSimulator, Call], Response]:
    def list_(sim: ZendeskSimulator, call: Call) -> Response:
        items = list(sim.state[collection].values())
        role = call.query.get("role")
        if role:
            items = [i for i in items if i.get("role") == role]
        return page(sim, call, items, collection)

    return list_


def deleter(collection: str) -> Callable[[ZendeskSimulator, Call], Response]:
    def delete(sim: ZendeskSimulator, call: Call) -> Response:
        obj = find(sim, collection, call.params["id"])
        del sim.state[collection][obj["id"]]
        if collection == "users":
            return json_response({"user": {**obj, "active": False}})
        return Response(status_code=204)

    return delete
