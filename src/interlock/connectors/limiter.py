"""Rate limits: a token bucket per connector (or per account, or per vendor tier).

The bucket lives in the store, so every concurrent flow of every worker process
sharing it stays under the configured rate together. A process does not write
to the store per call: it reserves permits for all of its callers waiting at
that moment, in one round trip, each with the time it may be used (a slot, up
to ``horizon`` seconds ahead), and its callers start at their slots. So the
store sees one light write per wave of concurrent callers, and at most one in
flight per process and bucket::

    limiter = Limiter("crm", Rate(10, per="1s"), store, clock, max_wait=10.0)
    await limiter.acquire()        # waits for its slot, or raises RateLimited

When a vendor says to back off (``Retry-After``, a quota at zero), the bucket is
paused for everyone with :meth:`Limiter.pause`. A caller that would wait longer
than ``max_wait`` gets :class:`~interlock.errors.RateLimited` instead, so its
delivery is rescheduled rather than holding a worker slot.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

from interlock.clock import Clock
from interlock.durations import Duration, seconds
from interlock.errors import ConfigurationError, RateLimited
from interlock.stores.base import PermitGrant

_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(\S+?)\s*(?:burst\s*(\d+(?:\.\d+)?))?\s*$")


@dataclass(frozen=True, slots=True)
class Rate:
    """``count`` calls per ``per``; ``burst`` calls may go at once after a quiet spell.

    The default burst of 1 paces calls evenly, so that no window of length ``per``
    ever holds more than ``count`` calls (what a vendor's fixed window checks).
    Vendors with a bucket (Shopify's 40 calls) can allow a matching burst::

        Rate(10, per="1s")            # 10 a second, evenly spaced
        Rate(2, per="1s", burst=40)   # Shopify's leaky bucket
        Rate.parse("600/1m")          # from settings
    """

    count: float
    per: Duration = "1s"
    burst: float = 1.0
    _per_second: float = field(default=0.0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not (isinstance(self.count, int | float) and self.count > 0):
            raise ConfigurationError(f"Rate count must be a positive number, got {self.count!r}")
        if seconds(self.per) <= 0:
            raise ConfigurationError(f"Rate per must be a positive duration, got {self.per!r}")
        if not (isinstance(self.burst, int | float) and self.burst >= 1):
            raise ConfigurationError(f"Rate burst must be at least 1, got {self.burst!r}")
        object.__setattr__(self, "_per_second", float(self.count) / seconds(self.per))

    @property
    def per_second(self) -> float:
        return self._per_second

    @classmethod
    def parse(cls, text: str) -> Rate:
        """``"10/1s"``, ``"600/1m"`` or ``"2/1s burst 40"``."""
        match = _RATE.match(text)
        if match is None:
            raise ConfigurationError(
                f"cannot read rate {text!r}: write e.g. '10/1s', '600/1m' or '2/1s burst 40'"
            )
        burst = float(match.group(3)) if match.group(3) else 1.0
        return cls(float(match.group(1)), match.group(2), burst)

    def __str__(self) -> str:
        count = int(self.count) if float(self.count).is_integer() else self.count
        text = f"{count}/{self.per}"
        return text if self.burst == 1 else f"{text} burst {int(self.burst)}"


class PermitSource(Protocol):
    """Where shared buckets live: the app's store, or memory for a stand-alone connector."""

    async def lease_permits(
        self, key: str, want: int, *, rate: float, burst: float, now: float, horizon: float
    ) -> PermitGrant: ...

    async def pause_permits(self, key: str, until: float, *, now: float) -> None: ...


class Limiter:
    """One bucket as this process sees it: slots reserved from the source, used here.

    A process calling steadily also reserves ahead what it will use within
    ``lease_ttl`` at its recent pace, so that a lone sequential caller does not
    write per call either. A slot not used (a caller cancelled, or refused for
    waiting too long, or the pace dropped) goes to the next caller, but not later
    than ``lease_ttl`` after its time: old slots are not saved up into a burst the
    bucket never allowed. So calls in any window of ``T`` seconds stay within
    ``burst + rate·(T + lease_ttl)``.
    """

    def __init__(
        self,
        key: str,
        rate: Rate,
        source: PermitSource,
        clock: Clock,
        *,
        max_wait: float,
        horizon: float = 0.25,
        lease_ttl: float = 0.05,
    ) -> None:
        self.key = key
        self.rate = rate
        self._source = source
        self._clock = clock
        self.max_wait = max_wait
        self._horizon = horizon
        self._lease_ttl = lease_ttl
        self._slots: deque[float] = deque()
        self._paused_until = 0.0
        self._waiting = 0
        self._pace = 0.0  # this process's calls per second, lately
        self._counted = 0
        self._counting_since = 0.0
        self._lock = asyncio.Lock()
        self.leases = 0  # round trips to the source, for the overhead figures

    def _slot(self, now: float) -> float | None:
        slots = self._slots
        while slots and slots[0] < now - self._lease_ttl:
            slots.popleft()
        return slots.popleft() if slots else None

    async def acquire(self) -> float:
        """Wait for a permit; returns the seconds waited (0.0 when one was due at once).

        Raises :class:`RateLimited` when the permit is further away than ``max_wait``.
        """
        started = self._clock.now()
        self._count(started)
        slot = self._slot(started) if started >= self._paused_until else None
        if slot is None:
            self._waiting += 1
            try:
                async with self._lock:
                    slot = await self._reserve(started)
            finally:
                self._waiting -= 1
        now = self._clock.now()
        if slot > now:
            if slot - started > self.max_wait:
                self._slots.appendleft(slot)  # for a caller that may wait that long
                raise self._limited(slot - now)
            await self._clock.sleep(slot - now)
            now = self._clock.now()
        waited = now - started
        return waited if waited > 0.001 else 0.0

    def _count(self, now: float) -> None:
        """Measure this process's pace over quarter-second spells."""
        if not self._counting_since:
            self._counting_since = now
        self._counted += 1
        elapsed = now - self._counting_since
        if elapsed >= 0.25:
            self._pace = self._counted / elapsed
            self._counted, self._counting_since = 0, now

    async def _reserve(self, started: float) -> float:
        while True:
            now = self._clock.now()
            if now < self._paused_until:
                await self._wait(started, now, self._paused_until - now)
                continue
            slot = self._slot(now)
            if slot is not None:
                return slot
            ahead = math.ceil(self._pace * self._lease_ttl / 2)  # used well within the ttl
            grant = await self._source.lease_permits(
                self.key,
                max(self._waiting, ahead),
                rate=self.rate.per_second,
                burst=float(self.rate.burst),
                now=now,
                horizon=self._horizon,
            )
            self.leases += 1
            if grant.granted:
                self._slots.extend(grant.slots[1:])
                return grant.slots[0]
            await self._wait(started, now, grant.wait)

    async def _wait(self, started: float, now: float, wait: float) -> None:
        if now + wait - started > self.max_wait:
            raise self._limited(wait)
        await self._clock.sleep(max(wait, 0.001))

    def _limited(self, wait: float) -> RateLimited:
        behind = max(0, self._waiting - 1) / self.rate.per_second  # callers queued after
        return RateLimited(
            f"rate limit {self.key}: next permit in {wait:.2f}s, longer than the "
            f"{self.max_wait:g}s a call may wait",
            retry_after=wait + behind,
        )

    async def pause(self, for_seconds: float) -> None:
        """Stop every process from calling before ``for_seconds`` have passed."""
        now = self._clock.now()
        until = now + max(0.0, for_seconds)
        if until <= self._paused_until:
            return
        self._paused_until = until
        self._slots.clear()
        await self._source.pause_permits(self.key, until, now=now)
