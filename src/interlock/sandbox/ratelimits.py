"""The vendors' own rate limiters: a leaky bucket (Shopify) and fixed windows (the rest).

They answer whether one more call fits now and what the vendor's headers would
say about it; the simulators turn a refusal into the vendor's 429. Both take
the time as an argument, so tests can reason about them without sleeping::

    bucket = LeakyBucket(capacity=40, leak_per_second=2.0)
    allowed, used = bucket.take(now)          # used: calls in the bucket after this one
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(slots=True)
class LeakyBucket:
    """``capacity`` calls at most in the bucket, draining ``leak_per_second``."""

    capacity: int
    leak_per_second: float
    level: float = 0.0
    at: float | None = None

    def _drain(self, now: float) -> None:
        if self.at is not None:
            self.level = max(0.0, self.level - (now - self.at) * self.leak_per_second)
        self.at = now

    def take(self, now: float) -> tuple[bool, int]:
        """(allowed, calls in the bucket) for one more call at ``now``."""
        self._drain(now)
        if self.level + 1 > self.capacity:
            return False, math.ceil(self.level)
        self.level += 1
        return True, math.ceil(self.level)

    def reset(self) -> None:
        self.level, self.at = 0.0, None


@dataclass(slots=True)
class FixedWindow:
    """``limit`` calls per ``window`` seconds, counted per key (an app, a method, a channel)."""

    limit: int
    window: float
    _counts: dict[str, tuple[float, int]] = field(default_factory=dict)

    def take(self, key: str, now: float) -> tuple[bool, int, float]:
        """(allowed, remaining after this call, seconds until the window resets)."""
        start, count = self._counts.get(key, (now, 0))
        if now - start >= self.window:
            start, count = now, 0
        reset_in = max(0.0, start + self.window - now)
        if count >= self.limit:
            self._counts[key] = (start, count)
            return False, 0, reset_in
        self._counts[key] = (start, count + 1)
        return True, self.limit - count - 1, reset_in

    def reset(self) -> None:
        self._counts.clear()
