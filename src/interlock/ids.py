"""Time-ordered identifiers.

Event ids are ULIDs (48-bit millisecond timestamp, 80 random bits, Crockford
base32) with an ``evt_`` prefix: they sort by creation time, are unique across
processes, and stay monotonic within one process even inside a millisecond.
"""

from __future__ import annotations

import os
import threading
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_lock = threading.Lock()
_last_ms = 0
_last_rand = 0


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def ulid(now: float | None = None) -> str:
    """A 26-character ULID; monotonic within this process."""
    global _last_ms, _last_rand
    ms = int((time.time() if now is None else now) * 1000)
    with _lock:
        if ms <= _last_ms:
            ms = _last_ms
            _last_rand += 1
            if _last_rand >= 1 << 80:
                ms += 1
                _last_rand = int.from_bytes(os.urandom(10), "big") >> 1
        else:
            _last_rand = int.from_bytes(os.urandom(10), "big") >> 1
        _last_ms = ms
        rand = _last_rand
    return _encode(ms, 10) + _encode(rand, 16)


def event_id(now: float | None = None) -> str:
    """A new event id: ``evt_`` + ULID."""
    return "evt_" + ulid(now)


def new_correlation_id() -> str:
    """A new correlation id: ``cor_`` + ULID."""
    return "cor_" + ulid()
