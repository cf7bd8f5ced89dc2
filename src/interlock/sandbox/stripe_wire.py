"""Stripe's wire format: bracketed form parameters, error objects, list pages.

Stripe takes ``application/x-www-form-urlencoded`` bodies (and query strings)
where brackets nest: ``metadata[order_id]=1042``, ``expand[]=customer``,
``items[0][price]=p``. Errors are ``{"error": {"type", "code", "message",
"param", "doc_url"}}``; lists are ``{"object": "list", "data", "has_more", "url"}``
paged newest first with ``limit``, ``starting_after`` and ``ending_before``::

    decode_form(b"metadata[a]=1&expand[]=customer")
    # {"metadata": {"a": "1"}, "expand": ["customer"]}
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


class StripeError(Exception):
    """A Stripe API error; ``saved`` is False for errors found before the endpoint ran."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        saved: bool = True,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"message": message, "type": type}
        if code:
            self.body["code"] = code
            self.body["doc_url"] = f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"
        if param is not None:
            self.body["param"] = param
        self.body.update(extra)
        self.saved = saved


def missing(param: str) -> StripeError:
    return StripeError(
        400, f"Missing required param: {param}.", code="parameter_missing", param=param, saved=False
    )


def no_such(kind: str, ident: str, param: str = "id") -> StripeError:
    return StripeError(404, f"No such {kind}: '{ident}'", code="resource_missing", param=param)


def decode_form(text: str) -> dict[str, Any]:
    """Nested parameters from a Stripe form body or query string."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(text, keep_blank_values=True):
        match = _KEY.match(key)
        parts = [key] if match is None else [match.group(1), *_brackets(match.group(2))]
        node: Any = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if isinstance(node, list):
                if last:
                    node.append(value)
                    break
                node.append({} if parts[i + 1] else [])
                node = node[-1]
                continue
            if last:
                node[part] = value
            else:
                default: Any = [] if parts[i + 1] == "" else {}
                existing = node.get(part)
                if not isinstance(existing, dict | list):
                    node[part] = default
                node = node[part]
    return {k: v if k == "metadata" else _listify(v) for k, v in root.items()}


def _brackets(text: str) -> list[str]:
    return re.findall(r"\[([^\[\]]*)\]", text)


def _listify(value: Any) -> Any:
    if isinstance(value, dict):
        value = {k: _listify(v) for k, v in value.items()}
        if value and all(k.isdigit() for k in value):
            return [value[k] for k in sorted(value, key=int)]
    elif isinstance(value, list):
        return [_listify(v) for v in value]
    return value


def check_params(params: Mapping[str, Any], allowed: Sequence[str]) -> None:
    """400 ``parameter_unknown`` for the first parameter the endpoint does not take."""
    for name in params:
        if name not in allowed and name != "expand":
            raise StripeError(
                400,
                f"Received unknown parameter: {name}",
                code="parameter_unknown",
                param=name,
                saved=False,
            )


def integer(params: Mapping[str, Any], name: str, *, required: bool = False) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise missing(name)
        return None
    if not isinstance(value, str) or not re.fullmatch(r"-?\d+", value):
        raise StripeError(
            400,
            f"Invalid integer: {value}",
            code="parameter_invalid_integer",
            param=name,
            saved=False,
        )
    return int(value)


def boolean(params: Mapping[str, Any], name: str, default: bool = False) -> bool:
    value = params.get(name)
    if value is None:
        return default
    if value not in ("true", "false"):
        raise StripeError(400, f"Invalid boolean: {value}", param=name, saved=False)
    return bool(value == "true")


def merge_metadata(current: Mapping[str, str], update: Any) -> dict[str, str]:
    """Stripe's metadata update: keys merge, an empty string deletes a key."""
    if update is None:
        return dict(current)
    if update == "":
        return {}
    if not isinstance(update, dict):
        raise StripeError(400, "Invalid metadata: must be a hash", param="metadata", saved=False)
    merged = dict(current)
    for key, value in update.items():
        if value == "":
            merged.pop(key, None)
        else:
            merged[key] = str(value)
    if len(merged) > 50:
        raise StripeError(400, "Metadata can have at most 50 keys.", param="metadata", saved=False)
    return merged


def page(
    objects: Sequence[dict[str, Any]], params: Mapping[str, Any], url: str, kind: str
) -> dict[str, Any]:
    """A list object over ``objects`` (already newest first)."""
    limit = integer(params, "limit") or 10
    if not 1 <= limit <= 100:
        raise StripeError(
            400, "Invalid limit: must be between 1 and 100", param="limit", saved=False
        )
    items = list(objects)
    after, before = params.get("starting_after"), params.get("ending_before")
    ids = [o["id"] for o in items]
    if after:
        if after not in ids:
            raise no_such(kind, str(after), "starting_after")
        items = items[ids.index(after) + 1 :]
        chunk, has_more = items[:limit], len(items) > limit
    elif before:
        if before not in ids:
            raise no_such(kind, str(before), "ending_before")
        items = items[: ids.index(before)]
        chunk, has_more = items[-limit:], len(items) > limit
    else:
        chunk, has_more = items[:limit], len(items) > limit
    return {"object": "list", "data": chunk, "has_more": has_more, "url": url}


def mask(key: str) -> str:
    """A key as Stripe echoes it in an error: the prefix, stars and the last four."""
    if len(key) <= 12:
        return key[:3] + "*" * max(0, len(key) - 3)
    return key[:8] + "*" * (len(key) - 12) + key[-4:]
