"""RFC 9457 problem details: the body of every error the gateway answers with.

>>> problem = payload_too_large(1_048_576)
>>> problem.to_json()[:58]
b'{"type":"https://interlock.dev/problems/payload-too-large"'
>>> response = problem_response(problem)
>>> response.status_code, response.headers["content-type"]
(413, 'application/problem+json')

Type URIs: every problem the gateway names (the constructors below) has a
stable ``https://interlock.dev/problems/<slug>`` type, e.g. ``.../bad-json``.
The URI identifies the problem; it need not resolve. Slugs are API: clients
branch on them, so one is never renamed or reused. A :class:`Problem` built
ad hoc defaults to ``about:blank`` (RFC 9457 §4.2.1): the status says it all,
and the title should then be the status's reason phrase.

Safety: the body goes to whoever sent the request. Callers pass only safe text
— never secrets, signatures, header values or raw input values (payload
values, a source name taken from the URL): name the field, not its value.
``detail`` is cut to 500 characters automatically, error entries likewise.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

import orjson
from starlette.responses import Response

from interlock.gateway.jsonpolicy import BadJson

__all__ = [
    "MAX_DETAIL",
    "MAX_ERRORS",
    "MEDIA_TYPE",
    "TYPE_BASE",
    "Problem",
    "bad_json",
    "contract_failed",
    "forbidden",
    "headers_too_large",
    "overloaded",
    "payload_too_large",
    "problem_response",
    "problem_type",
    "rate_limited",
    "retry_after_seconds",
    "unauthorized",
    "unknown_source",
    "unsupported_media_type",
]

MEDIA_TYPE: Final = "application/problem+json"
TYPE_BASE: Final = "https://interlock.dev/problems/"
MAX_DETAIL: Final = 500
MAX_ERRORS: Final = 50  # field errors listed in a 422; the rest are counted
_MAX_ERROR_TEXT: Final = 200
_MAX_RETRY_AFTER: Final = 86_400
_MEMBERS: Final = frozenset({"type", "title", "status", "detail", "instance"})


def problem_type(slug: str) -> str:
    """The type URI of a named problem.

    >>> problem_type("bad-json")
    'https://interlock.dev/problems/bad-json'
    """
    return TYPE_BASE + slug


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem: HTTP ``status``, a short ``title``, a specific ``detail`` (≤ 500 chars).

    ``extensions`` are extra top-level members (``reason``, ``errors``, ``retry_after``);
    they are copied into a read-only mapping and must be JSON-serialisable by orjson.

    >>> long = Problem(409, "Conflict", "x" * 600)
    >>> len(long.detail), long.detail[-3:]
    (500, 'xx…')
    >>> Problem(404, "Not Found", "no such page").to_json()
    b'{"type":"about:blank","title":"Not Found","status":404,"detail":"no such page"}'
    """

    status: int
    title: str
    detail: str
    type: str = "about:blank"
    instance: str | None = None
    extensions: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 400 <= self.status <= 599:
            raise ValueError(f"a problem's status is 4xx or 5xx, not {self.status}")
        if clash := sorted(_MEMBERS & self.extensions.keys()):
            raise ValueError(f"extensions may not redefine standard members: {clash}")
        object.__setattr__(self, "detail", _clip(self.detail, MAX_DETAIL))
        object.__setattr__(self, "extensions", MappingProxyType(dict(self.extensions)))

    def to_dict(self) -> dict[str, Any]:
        """The members, standard ones first (``instance`` only when set)."""
        members: dict[str, Any] = {
            "type": self.type,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.instance is not None:
            members["instance"] = self.instance
        members.update(self.extensions)
        return members

    def to_json(self) -> bytes:
        """The ``application/problem+json`` body."""
        return orjson.dumps(self.to_dict())


def problem_response(problem: Problem, headers: Mapping[str, str] | None = None) -> Response:
    """A Starlette response carrying ``problem``, as ``application/problem+json``.

    A numeric ``retry_after`` extension is also sent as ``Retry-After`` (in whole
    seconds, 1 s to a day), unless ``headers`` already has one.

    >>> problem_response(rate_limited(2.5)).headers["retry-after"]
    '3'
    """
    merged = dict(headers or {})
    retry_after = problem.extensions.get("retry_after")
    if isinstance(retry_after, int | float) and "retry-after" not in {k.lower() for k in merged}:
        merged["Retry-After"] = str(retry_after_seconds(retry_after))
    return Response(
        problem.to_json(), status_code=problem.status, headers=merged, media_type=MEDIA_TYPE
    )


def bad_json(error: BadJson) -> Problem:
    """400: the body is not acceptable JSON; ``reason`` is :attr:`BadJson.reason`."""
    extensions: dict[str, Any] = {"reason": error.reason}
    if error.line is not None:
        extensions |= {"line": error.line, "column": error.column}
    slug = problem_type("bad-json")
    return Problem(400, "Malformed JSON", str(error), type=slug, extensions=extensions)


_SIGNATURE_DETAILS: Final = {
    "missing_signature": "the request carries no signature",
    "bad_signature": "no signature matches the body under the configured secret(s)",
    "stale_timestamp": "the signed timestamp is too old",
    "future_timestamp": "the signed timestamp is in the future",
}


def unauthorized(reason: str, detail: str | None = None) -> Problem:
    """401: the signature is missing or wrong, or its timestamp is stale; ``reason`` says which.

    RFC 9110 asks a 401 to carry ``WWW-Authenticate``; webhook signatures have no
    registered scheme, so that header is left to the caller.

    >>> unauthorized("stale_timestamp").to_dict()["reason"]
    'stale_timestamp'
    """
    text = detail or _SIGNATURE_DETAILS.get(reason, "the request's signature was not accepted")
    slug = problem_type("signature-rejected")
    return Problem(401, "Signature rejected", text, type=slug, extensions={"reason": reason})


def token_rejected(reason: str, detail: str) -> Problem:
    """401: the API token is missing, unknown or revoked; ``reason`` says which."""
    slug = problem_type("token-rejected")
    return Problem(401, "Unauthorized", detail, type=slug, extensions={"reason": reason})


def conflict(detail: str) -> Problem:
    """409: the resource is not in a state that allows this."""
    return Problem(409, "Conflict", detail, type=problem_type("conflict"))


def not_found(detail: str) -> Problem:
    """404: the addressed resource does not exist."""
    return Problem(404, "Not found", detail, type=problem_type("not-found"))


def invalid_request(errors: Iterable[Mapping[str, object]], detail: str | None = None) -> Problem:
    """400: query, path or body parameters are invalid; ``errors`` are field-level entries."""
    entries = [
        {
            key: _clip(str(error.get(key, "")), _MAX_ERROR_TEXT)
            for key in ("field", "message", "type")
        }
        for error in errors
    ]
    fields = ", ".join(e["field"] for e in entries[:5])
    text = detail or "the request is invalid" + (f" ({fields})" * bool(fields))
    slug = problem_type("invalid-request")
    return Problem(
        400, "Invalid request", text, type=slug, extensions={"errors": entries[:MAX_ERRORS]}
    )


def forbidden(detail: str = "this request is not allowed") -> Problem:
    """403: authenticated, but not allowed."""
    return Problem(403, "Forbidden", detail, type=problem_type("forbidden"))


def unknown_source() -> Problem:
    """404: no webhook source at this URL (the name from the URL is not echoed)."""
    detail = "no webhook source is registered at this URL"
    return Problem(404, "Unknown webhook source", detail, type=problem_type("unknown-source"))


def payload_too_large(limit: int) -> Problem:
    """413: the body is over ``limit`` bytes (sent as the ``limit`` member)."""
    detail = f"the body is over the limit of {limit:,} bytes"
    slug = problem_type("payload-too-large")
    return Problem(413, "Payload too large", detail, type=slug, extensions={"limit": limit})


def unsupported_media_type(accepted: Iterable[str] = ("application/json",)) -> Problem:
    """415: the Content-Type is not JSON; ``accepted`` lists what is (the sent one isn't echoed)."""
    types = list(accepted)
    detail = f"send the body as {' or '.join(types)}"
    slug = problem_type("unsupported-media-type")
    extensions = {"accepted": types}
    return Problem(415, "Unsupported media type", detail, type=slug, extensions=extensions)


def contract_failed(errors: Iterable[Mapping[str, object]], detail: str | None = None) -> Problem:
    """422: the payload fails its contract; ``errors`` are ``{field, message, type}`` entries.

    Messages must not quote input values. At most :data:`MAX_ERRORS` are listed;
    ``more_errors`` counts the rest.

    >>> problem = contract_failed([{"field": "a.b", "message": "Field required", "type": "x"}])
    >>> problem.detail
    'the payload does not satisfy its contract (a.b)'
    >>> problem.to_dict()["errors"]
    [{'field': 'a.b', 'message': 'Field required', 'type': 'x'}]
    """
    entries = [
        {
            key: _clip(str(error.get(key, "")), _MAX_ERROR_TEXT)
            for key in ("field", "message", "type")
        }
        for error in errors
    ]
    extensions: dict[str, Any] = {"errors": entries[:MAX_ERRORS]}
    if len(entries) > MAX_ERRORS:
        extensions["more_errors"] = len(entries) - MAX_ERRORS
    fields = ", ".join(e["field"] for e in entries[:5]) + (", ..." if len(entries) > 5 else "")
    text = detail or "the payload does not satisfy its contract" + (f" ({fields})" * bool(fields))
    slug = problem_type("contract-violation")
    return Problem(422, "Payload fails its contract", text, type=slug, extensions=extensions)


def rate_limited(retry_after: float) -> Problem:
    """429: shedding this sender's load; ``Retry-After`` says when to come back."""
    seconds = retry_after_seconds(retry_after)
    detail = f"too many requests; retry after {seconds} s"
    slug = problem_type("rate-limited")
    return Problem(429, "Too many requests", detail, type=slug, extensions={"retry_after": seconds})


def overloaded(retry_after: float, detail: str = "the service is overloaded") -> Problem:
    """503: shedding all load (or the store is down); nothing was accepted."""
    seconds = retry_after_seconds(retry_after)
    text = f"{detail}; retry after {seconds} s"
    slug = problem_type("overloaded")
    return Problem(503, "Service unavailable", text, type=slug, extensions={"retry_after": seconds})


def headers_too_large() -> Problem:
    """431: the request's header fields are too large."""
    detail = "the request's header fields are too large"
    slug = problem_type("headers-too-large")
    return Problem(431, "Request header fields too large", detail, type=slug)


def retry_after_seconds(delay: float) -> int:
    """``Retry-After`` delay-seconds: whole, from 1 s to a day (NaN and infinities too)."""
    return min(max(1, math.ceil(delay)), _MAX_RETRY_AFTER) if math.isfinite(delay) else 1


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
