"""Time-ordered identifiers.

An event id is ``evt_`` + 12 hex digits of milliseconds since the epoch + 20
hex digits (80 bits) that start random in each millisecond and count up
within it. Ids sort by creation time, stay unique across processes (80 random
bits), and are monotonic within one process even inside a millisecond.
"""

from __future__ import annotations

import os
import random
import threading
import time

_lock = threading.Lock()
_rng = random.Random(os.urandom(32))
_last_ms = 0
_last_rand = 0
_RAND_MAX = (1 << 80) - 1


def time_ordered(now: float | None = None) -> str:
    """32 hex digits: 48-bit milliseconds, then 80 bits random-then-increasing."""
    global _last_ms, _last_rand
    ms = int((time.time() if now is None else now) * 1000)
    with _lock:
        if ms <= _last_ms:
            ms = _last_ms
            _last_rand += 1
            if _last_rand > _RAND_MAX:
                ms += 1
                _last_rand = _rng.getrandbits(79)
        else:
            _last_rand = _rng.getrandbits(79)  # leave headroom to count up within the ms
        _last_ms = ms
        rand = _last_rand
    return f"{ms:012x}{rand:020x}"


def event_id(now: float | None = None) -> str:
    """A new event id: ``evt_`` + a time-ordered id."""
    return "evt_" + time_ordered(now)


def new_correlation_id() -> str:
    """A new correlation id: ``cor_`` + a time-ordered id."""
    return "cor_" + time_ordered()
