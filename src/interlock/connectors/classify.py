"""Every vendor answer sorted into what the worker should do about it.

====================  ===========================  =================================
what happened          kind                         raised
====================  ===========================  =================================
5xx (but 501), 408     ``retryable``                :class:`VendorUnavailable`
timeout, reset         ``retryable``                :class:`VendorUnavailable`
429 (and 425)          ``rate_limited``             :class:`RateLimited`
401, 403               ``permission``               :class:`PermissionDenied`
404, 410               ``not_found``                :class:`ResourceNotFound`
other 4xx, 501, 3xx    ``permanent``                :class:`VendorRejected`
====================  ===========================  =================================

The vendor's own error code and message are kept in the exception (and so in
the attempt's reason), with credentials scrubbed and the length bounded. A
vendor connector refines this by parsing its error bodies
(:meth:`~interlock.connectors.Connector.error_details`) or by deciding the
kind itself (Slack's ``200 {"ok": false}``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import httpx
import orjson

from interlock.errors import (
    HandlerError,
    PermissionDenied,
    RateLimited,
    ResourceNotFound,
    VendorRejected,
    VendorUnavailable,
)

ErrorKind = Literal["retryable", "rate_limited", "permanent", "permission", "not_found"]
MAX_MESSAGE = 300


@dataclass(frozen=True, slots=True)
class ErrorDetails:
    """What a vendor's error body says: its code, its message, and the scope it wanted."""

    code: str | None = None
    message: str | None = None
    required_scope: str | None = None


@dataclass(frozen=True, slots=True)
class VendorError:
    """A failed answer, classified: the kind decides the exception raised."""

    kind: ErrorKind
    status: int | None
    code: str | None = None
    message: str | None = None
    retry_after: float | None = None
    required_scope: str | None = None


def kind_of_status(status: int) -> ErrorKind | None:
    """The kind of an HTTP status; None for a success."""
    if status < 300:
        return None
    if status in (401, 403):
        return "permission"
    if status in (404, 410):
        return "not_found"
    if status in (425, 429):
        return "rate_limited"
    if status == 408 or (status >= 500 and status != 501):
        return "retryable"
    return "permanent"


def json_body(response: httpx.Response) -> Any:
    """The response body as JSON, or None when it is not JSON."""
    try:
        return orjson.loads(response.content) if response.content else None
    except orjson.JSONDecodeError:
        return None


def generic_details(response: httpx.Response) -> ErrorDetails:
    """Read the common error shapes: ``{"error": {"code", "message"}}`` (generic, Stripe),
    ``{"error": "...", "error_description": "..."}`` (OAuth, Zendesk, Slack),
    ``{"message", "category"|"code"}`` (HubSpot), ``{"errors": ...}`` (Shopify)."""
    body = json_body(response)
    if not isinstance(body, dict):
        text = response.text.strip() if response.content else ""
        return ErrorDetails(None, text[:MAX_MESSAGE] or response.reason_phrase or None)
    error = body.get("error")
    if isinstance(error, dict):
        code = error.get("code") or error.get("type")
        return ErrorDetails(_text(code), _text(error.get("message")))
    if isinstance(error, str):
        message = body.get("error_description") or body.get("description") or body.get("message")
        return ErrorDetails(error, _text(message), _text(body.get("needed")))
    if "errors" in body:
        return ErrorDetails(None, _text(body["errors"]))
    code = body.get("code") or body.get("category") or body.get("error_code")
    return ErrorDetails(_text(code), _text(body.get("message") or body.get("detail")))


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return text[:MAX_MESSAGE]


def scrub(text: str, secrets: list[str]) -> str:
    """``text`` without any of the credential values in ``secrets``."""
    for value in secrets:
        if len(value) >= 6 and value in text:
            text = text.replace(value, "[redacted]")
    return text


def to_exception(
    error: VendorError,
    *,
    connector: str,
    operation: str,
    secrets: list[str],
    scope: str | None = None,
    default_retry_after: float = 1.0,
) -> HandlerError:
    """The exception a failed call raises, with the vendor's (redacted) code and message."""
    said = " ".join(p for p in (error.code, error.message) if p) or "no details"
    status = f"HTTP {error.status}" if error.status is not None else "no answer"
    message = scrub(f"{connector} {operation} → {status}: {said}", secrets)
    detail: dict[str, Any] = {
        "connector": connector,
        "operation": operation,
        "status": error.status,
        "code": error.code,
    }
    if error.kind == "rate_limited":
        wait = error.retry_after if error.retry_after is not None else default_retry_after
        return RateLimited(message, retry_after=wait)
    if error.kind == "permission":
        if error.required_scope:
            message += f" (needs scope {error.required_scope})"
        return PermissionDenied(message, scope=scope, **detail)
    if error.kind == "not_found":
        return ResourceNotFound(message, **detail)
    if error.kind == "retryable":
        return VendorUnavailable(message, **detail)
    return VendorRejected(message, **detail)


def transport_error(exc: Exception) -> VendorError:
    """A request that got no answer: a timeout, a refused or reset connection."""
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        names: dict[type[Exception], str] = {
            httpx.ConnectTimeout: "connect timeout",
            httpx.ReadTimeout: "read timeout",
            httpx.WriteTimeout: "write timeout",
            httpx.PoolTimeout: "pool timeout",
        }
        what = names.get(type(exc), "timed out")
        return VendorError("retryable", None, "timeout", what)
    if isinstance(exc, httpx.ConnectError):
        return VendorError("retryable", None, "connect_error", str(exc) or "connection refused")
    name = type(exc).__name__
    return VendorError("retryable", None, "connection_reset", f"{name}: {exc}".strip(": "))
