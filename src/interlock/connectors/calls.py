"""One connector call: what it is, how it is named and traced, and its dry-run form.

- ``operation`` names a call in metrics, logs and reasons: a domain method passes
  its own (``"find_deal"``); otherwise it is the method and the path with id-like
  segments replaced (``"GET /v1/customers/{id}"``), so label values stay few.
- ``traceparent`` (W3C Trace Context) carries a trace id derived from the
  correlation id, so every call of one business chain lands in one trace.
- In dry-run, a mutating call is not sent: a :class:`DryRun` record keeps the
  whole request (credentials left out) and :func:`simulate` answers plausibly.
- Every call made for a delivery leaves a :class:`CallRecord` (method, path, status,
  duration, idempotency key) with the attempt that made it, tagged with its step, so
  the trace shows which vendor calls each step made.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
_ID_LIKE = re.compile(r"[\d@%]|^[0-9a-f]{16,}$|^[A-Za-z0-9_.-]{24,}$", re.IGNORECASE)
_VERSION = re.compile(r"^v\d+(?:\.\d+)?$|^\d{4}-\d{2}(?:-\d{2})?$")  # v1, 2024-01


@dataclass(frozen=True, slots=True)
class Call:
    """A connector call as the guardrails see it."""

    method: str
    url: str
    operation: str
    account: str | None = None

    @property
    def mutating(self) -> bool:
        return self.method not in SAFE_METHODS


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One connector call made for a delivery, as the trace shows it.

    No bodies, headers or query strings: the path keeps ids (they name the vendor
    record) but a segment that looks like an e-mail address is masked.
    """

    connector: str
    operation: str
    method: str
    path: str
    status: int | None  # the vendor's answer; None when no answer came (timeout, refused)
    duration_ms: float
    outcome: str  # ok, dry_run, retryable, rate_limited, permanent, not_found, ...
    idempotency_key: str | None = None

    def as_json(self, at: float, step: str | None) -> dict[str, Any]:
        """The stored form: ``at`` (when the call started, on the delivery's clock) and
        the step making it added."""
        return {
            "at": at,
            "connector": self.connector,
            "operation": self.operation,
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "duration_ms": self.duration_ms,
            "outcome": self.outcome,
            "idempotency_key": self.idempotency_key,
            "step": step,
        }


def describe_call(call: dict[str, Any]) -> str:
    """One line for a stored call: ``stripe POST /v1/refunds → 200 in 41 ms, step refund``."""
    status = call.get("status")
    answer = str(status) if status is not None else "no answer"
    outcome = call.get("outcome")
    if outcome not in (None, "ok"):
        answer += f" ({outcome})"
    text = f"{call.get('connector')} {call.get('method')} {call.get('path')} → {answer}"
    text += f" in {float(call.get('duration_ms') or 0):.0f} ms"
    if call.get("step"):
        text += f", step {call['step']}"
    if call.get("idempotency_key"):
        text += f", key {call['idempotency_key']}"
    return text


_EMAIL_LIKE = re.compile(r"@|%40", re.IGNORECASE)


def trace_path(url: str) -> str:
    """The path of ``url`` for the trace: no query string, e-mail-like segments masked."""
    path = urlsplit(url).path or "/"
    return "/".join("[redacted]" if _EMAIL_LIKE.search(part) else part for part in path.split("/"))


def operation_name(method: str, url: str) -> str:
    """``GET /v1/customers/{id}``: the path with id-like segments (digits, long tokens)
    replaced, and no query string."""
    path = urlsplit(url).path or "/"
    parts = [
        "{id}" if _ID_LIKE.search(part) and not _VERSION.match(part) else part
        for part in path.split("/")
    ]
    return f"{method} {'/'.join(parts)}"


def traceparent(correlation_id: str) -> str:
    """A W3C ``traceparent``: the trace id from the correlation id, a fresh span id."""
    trace_id = hashlib.sha256(correlation_id.encode()).hexdigest()[:32]
    return f"00-{trace_id}-{os.urandom(8).hex()}-01"


@dataclass(frozen=True, slots=True)
class DryRun:
    """A mutating call that dry-run did not send, kept whole (without credentials)."""

    at: float
    connector: str
    operation: str
    method: str
    url: str
    headers: dict[str, str]
    body: Any  # parsed JSON, a form as a dict, or text
    idempotency_key: str | None
    flow: str | None = None
    delivery_id: int | None = None
    answer: dict[str, Any] = field(default_factory=dict)  # status and body simulated


def request_body(request: httpx.Request | httpx.Response) -> Any:
    """A request's (or answer's) body as data: JSON parsed, a form as a dict, else text (or None)."""
    content = request.content
    if not content:
        return None
    kind = request.headers.get("content-type", "")
    if "json" in kind:
        try:
            return orjson.loads(content)
        except orjson.JSONDecodeError:
            pass
    if "x-www-form-urlencoded" in kind:
        return dict(httpx.QueryParams(content.decode(errors="replace")).multi_items())
    return content.decode(errors="replace")


def visible_headers(request: httpx.Request) -> dict[str, str]:
    """The request's headers without credentials."""
    return {k: v for k, v in request.headers.items() if k.lower() not in CREDENTIAL_HEADERS}


def simulate(request: httpx.Request, idempotency_key: str | None) -> httpx.Response:
    """A plausible answer to a mutating call that was not sent.

    POST answers 201 with the body and a made-up ``id`` (stable for one idempotency
    key); PUT and PATCH answer 200 with the body and the id from the path; DELETE
    answers 204. Every answer carries ``Interlock-Dry-Run: true``.
    """
    method = request.method
    headers = {"Interlock-Dry-Run": "true"}
    if method == "DELETE":
        return httpx.Response(204, headers=headers, request=request)
    body = request_body(request)
    data: dict[str, Any] = dict(body) if isinstance(body, dict) else {}
    if method == "POST":
        seed = idempotency_key or request.content.decode(errors="replace") + str(request.url)
        data.setdefault("id", "dry_" + hashlib.sha256(seed.encode()).hexdigest()[:16])
        status = 201
    else:
        data.setdefault("id", request.url.path.rstrip("/").rsplit("/", 1)[-1])
        status = 200
    return httpx.Response(status, json=data, headers=headers, request=request)
