"""What a simulator saw and what it answered, for tests to assert on.

Every vendor request (not the ``/_sandbox`` control calls) is recorded when it
arrives; the answer is filled in when it leaves, so a request still held by a
timeout fault is already visible::

    keys = [e.idempotency_key for e in vendors.stripe.requests.matching("POST", "/v1/refunds")]
    assert keys[0] == keys[1] and len({e.response_body for e in ...}) == 1
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import orjson


@dataclass(slots=True)
class Exchange:
    """One request and, once answered, its response (``status`` None: no answer yet or ever)."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: bytes
    at: float
    status: int | None = None
    response_headers: Mapping[str, str] = field(default_factory=dict)
    response_body: bytes = b""
    fault: str | None = (
        None  # the injected fault, if any: error, rate_limit, outage, timeout, reset
    )

    @property
    def idempotency_key(self) -> str | None:
        return self.headers.get("idempotency-key")

    def json(self) -> Any:
        """The request body parsed as JSON."""
        return orjson.loads(self.body)

    def form(self) -> dict[str, str]:
        """The request body parsed as ``application/x-www-form-urlencoded`` (flat keys)."""
        return dict(parse_qsl(self.body.decode(), keep_blank_values=True))

    def response_json(self) -> Any:
        return orjson.loads(self.response_body)


class RequestLog:
    """A thread-safe, append-only list of :class:`Exchange` (cleared by a simulator reset)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[Exchange] = []

    def record(self, exchange: Exchange) -> Exchange:
        with self._lock:
            self._entries.append(exchange)
        return exchange

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def all(self) -> list[Exchange]:
        with self._lock:
            return list(self._entries)

    def matching(self, method: str | None = None, path: str | None = None) -> list[Exchange]:
        """Exchanges with this method and/or path (exact match)."""
        return [
            e
            for e in self.all()
            if (method is None or e.method == method.upper()) and (path is None or e.path == path)
        ]

    def with_idempotency_key(self, key: str) -> list[Exchange]:
        return [e for e in self.all() if e.idempotency_key == key]

    @property
    def last(self) -> Exchange:
        with self._lock:
            if not self._entries:
                raise LookupError("the simulator has not seen any request yet")
            return self._entries[-1]

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __iter__(self) -> Iterator[Exchange]:
        return iter(self.all())

    def summary(self) -> list[dict[str, Any]]:
        """A JSON-able digest for ``GET /_sandbox/requests``."""
        return [
            {
                "method": e.method,
                "path": e.path,
                "query": e.query,
                "idempotency_key": e.idempotency_key,
                "status": e.status,
                "fault": e.fault,
                "at": e.at,
            }
            for e in self.all()
        ]
