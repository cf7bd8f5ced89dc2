"""What vendors say about their rate limits, read from response headers.

A connector turns each response into a :class:`RateSignal`; the limiter pauses
its shared bucket when the vendor says the quota is spent (``remaining`` at or
under the reserve) until the vendor's reset, and after a 429 for its
``Retry-After``. The readers here cover the common conventions; a vendor
connector combines them or writes its own::

    RateSignal.from_headers(response.headers)          # Retry-After, X-RateLimit-*, RateLimit-*
    call_limit("39/40", leak_per_second=2.0)            # Shopify's X-Shopify-Shop-Api-Call-Limit
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime


@dataclass(frozen=True, slots=True)
class RateSignal:
    """A vendor's view of our quota: all fields optional, seconds relative to now."""

    limit: float | None = None
    remaining: float | None = None
    reset_after: float | None = None  # when the quota refills
    retry_after: float | None = None  # an explicit "come back in" (429, 503)

    def exhausted(self, reserve: float = 0.0) -> bool:
        return self.remaining is not None and self.remaining <= reserve

    @classmethod
    def from_headers(cls, headers: Mapping[str, str], now: float | None = None) -> RateSignal:
        """``Retry-After`` plus the ``X-RateLimit-*`` or IETF ``RateLimit-*`` headers."""
        headers = {k.lower(): v for k, v in headers.items()}  # one pass, then O(1) looks
        limit = _number(_first(headers, "ratelimit-limit", "x-ratelimit-limit", "x-rate-limit"))
        remaining = _number(
            _first(
                headers,
                "ratelimit-remaining",
                "x-ratelimit-remaining",
                "x-rate-limit-remaining",
            )
        )
        reset = reset_seconds(
            _first(headers, "ratelimit-reset", "x-ratelimit-reset", "x-rate-limit-reset"), now
        )
        return cls(limit, remaining, reset, retry_after(headers, now))


def _first(headers: Mapping[str, str], *names: str) -> str | None:
    for name in names:
        value = headers.get(name)
        if value is not None:
            return value
    return None


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value.split(",")[0].split(";")[0].strip())
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """``Retry-After`` in seconds: a number of seconds or an HTTP date."""
    value = headers.get("retry-after")
    if value is None:
        return None
    seconds = _number(value)
    if seconds is not None:
        return seconds
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


def reset_seconds(value: str | None, now: float | None = None) -> float | None:
    """A reset header as seconds from now: a delta, or an epoch time (GitHub, Zendesk)."""
    number = _number(value)
    if number is None:
        return None
    if number > 1_000_000_000:  # an epoch timestamp, not a delta
        return max(0.0, number - (time.time() if now is None else now))
    return number


def call_limit(value: str | None, *, leak_per_second: float, reserve: float = 0.0) -> RateSignal:
    """A ``used/capacity`` header (Shopify's ``X-Shopify-Shop-Api-Call-Limit: 39/40``).

    The bucket leaks ``leak_per_second``: ``reset_after`` is how long until more than
    ``reserve`` calls fit again (pass the connector's ``rate_reserve``).
    """
    if not value or "/" not in value:
        return RateSignal()
    used_text, _, cap_text = value.partition("/")
    used, cap = _number(used_text), _number(cap_text)
    if used is None or cap is None:
        return RateSignal()
    remaining = max(0.0, cap - used)
    reset = max(0.0, (used + 1 + reserve - cap) / leak_per_second) if leak_per_second > 0 else None
    return RateSignal(cap, remaining, reset, None)
