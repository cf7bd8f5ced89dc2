"""Stripe-style idempotency keys: the same key and body get the same answer, replayed.

A key is remembered with a fingerprint of the request (method, path and the
parsed parameters) and the answer given. The same key with the same fingerprint
replays that answer byte for byte; the same key with a different fingerprint is
the vendor's conflict error; a key whose first request is still running is the
vendor's "in use" error. Answers a vendor does not keep (validation errors
found before the request ran, auth failures, rate limits) are not remembered::

    cache = IdempotencyCache()
    outcome = cache.begin(scope="sk_test_x", key="k1", fingerprint=fp)
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from typing import Any, Literal

import orjson


@dataclass(frozen=True, slots=True)
class Stored:
    """An answer kept under an idempotency key."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...]
    request_id: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """What to do with a request carrying an idempotency key."""

    kind: Literal["run", "replay", "conflict", "in_use"]
    stored: Stored | None = None


def fingerprint(method: str, path: str, params: Any) -> str:
    """A stable digest of a request's meaning (parameters compared after parsing)."""
    raw = orjson.dumps([method, path, params], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(raw).hexdigest()


class IdempotencyCache:
    """Remembered answers per (scope, key); thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str], tuple[str, Stored | None]] = {}

    def begin(self, *, scope: str, key: str, fingerprint: str) -> Outcome:
        """Claim ``key`` for a new request, or say how to answer a repeat."""
        with self._lock:
            entry = self._entries.get((scope, key))
            if entry is None:
                self._entries[(scope, key)] = (fingerprint, None)
                return Outcome("run")
            seen, stored = entry
            if seen != fingerprint:
                return Outcome("conflict")
            if stored is None:
                return Outcome("in_use")
            return Outcome("replay", stored)

    def finish(self, *, scope: str, key: str, stored: Stored | None) -> None:
        """Keep the answer (or, with None, forget the key: the vendor did not keep it)."""
        with self._lock:
            if stored is None:
                self._entries.pop((scope, key), None)
            else:
                fp, _ = self._entries[(scope, key)]
                self._entries[(scope, key)] = (fp, stored)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
