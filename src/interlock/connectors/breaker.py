"""The circuit breaker of a connector, shared by every process through the store.

Closed, calls go through and their outcomes fill a sliding window. When at least
``min_calls`` calls in the window failed in a ratio of ``failure_ratio`` or more,
the breaker opens: for ``cooldown`` seconds every call fails fast with
:class:`~interlock.errors.CircuitOpen` (retryable) without reaching the vendor.
Then it half-opens: one trial call — one across all processes, taken through the
store — goes through. Its success closes the breaker; its failure opens it again.

Only the vendor's failures count: 5xx, timeouts and resets. A 4xx, a 404 or a
429 means the vendor is up and answering; the rate limiter handles the 429.

Each process keeps its own window and reads the shared state at most every
``sync_every`` seconds (one indexed read), writing only on transitions; so a
breaker opened by one process stops the others within that delay.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from interlock.clock import Clock
from interlock.durations import Duration, seconds
from interlock.errors import CircuitOpen, ConfigurationError
from interlock.stores.base import ConnectorState

BreakerState = Literal["closed", "open", "half_open"]
STATE_VALUES: dict[str, int] = {"closed": 0, "half_open": 1, "open": 2}


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """When a connector's breaker opens and how long it stays open.

    ``BreakerPolicy(failure_ratio=0.5, min_calls=20, window="30s", cooldown="30s")``
    opens after 10 of 20 calls in 30 s failed, and tries again 30 s later.
    """

    failure_ratio: float = 0.5
    min_calls: int = 20
    window: Duration = "30s"
    cooldown: Duration = "30s"
    trial_timeout: Duration = "60s"  # a trial whose process vanished is given up after this
    sync_every: Duration = "1s"

    def __post_init__(self) -> None:
        if not 0.0 < self.failure_ratio <= 1.0:
            raise ConfigurationError(f"failure_ratio must be in (0, 1], got {self.failure_ratio!r}")
        if self.min_calls < 1:
            raise ConfigurationError(f"min_calls must be at least 1, got {self.min_calls!r}")
        for name in ("window", "cooldown", "trial_timeout", "sync_every"):
            seconds(getattr(self, name))


class Window:
    """Calls and failures over the last ``span`` seconds, counted in ``slots`` buckets.

    >>> w = Window(10.0, slots=10)
    >>> w.add(0.5, failed=True); w.add(3.0, failed=False); w.totals(5.0)
    (2, 1)
    >>> w.totals(10.7)   # the bucket of t=0.5 has left the window
    (1, 0)
    """

    __slots__ = ("_buckets", "_width", "slots")

    def __init__(self, span: float, slots: int = 10) -> None:
        self.slots = slots
        self._width = span / slots
        self._buckets: dict[int, list[int]] = {}

    def add(self, now: float, *, failed: bool) -> None:
        index = int(now // self._width)
        bucket = self._buckets.get(index)
        if bucket is None:
            self._expire(index)
            bucket = self._buckets[index] = [0, 0]
        bucket[0] += 1
        bucket[1] += failed

    def totals(self, now: float) -> tuple[int, int]:
        """(calls, failures) in the window ending at ``now``."""
        oldest = int(now // self._width) - self.slots + 1
        calls = failures = 0
        for index, (n, f) in self._buckets.items():
            if index >= oldest:
                calls += n
                failures += f
        return calls, failures

    def _expire(self, index: int) -> None:
        oldest = index - self.slots + 1
        for old in [i for i in self._buckets if i < oldest]:
            del self._buckets[old]

    def clear(self) -> None:
        self._buckets.clear()


class SharedBreakers(Protocol):
    """Where breaker state is shared: the app's store, or memory when stand-alone."""

    def connector_state(self, name: str) -> ConnectorState | None: ...

    async def open_breaker(self, name: str, *, until: float, now: float) -> None: ...

    async def try_breaker_trial(self, name: str, *, until: float, now: float) -> bool: ...

    async def close_breaker(self, name: str, *, now: float) -> bool: ...


class Breaker:
    """One connector's breaker as this process sees it (see the module docstring)."""

    def __init__(
        self,
        name: str,
        policy: BreakerPolicy,
        shared: SharedBreakers,
        clock: Clock,
        on_change: Callable[[str, BreakerState, BreakerState], None] | None = None,
    ) -> None:
        self.name = name
        self.policy = policy
        self._shared = shared
        self._clock = clock
        self._on_change = on_change
        self._window = Window(seconds(policy.window))
        self._ratio = policy.failure_ratio
        self._cooldown = seconds(policy.cooldown)
        self._trial_timeout = seconds(policy.trial_timeout)
        self._sync_every = seconds(policy.sync_every)
        self.state: BreakerState = "closed"
        self.until: float | None = None
        self._synced_at = float("-inf")

    def _set(self, state: BreakerState, until: float | None) -> None:
        before, self.state, self.until = self.state, state, until
        if before != state and self._on_change is not None:
            self._on_change(self.name, before, state)

    def sync(self, now: float, *, force: bool = False) -> None:
        """Adopt the shared state (at most every ``sync_every`` seconds unless forced)."""
        if not force and now - self._synced_at < self._sync_every:
            return
        self._synced_at = now
        shared = self._shared.connector_state(self.name)
        if shared is None:
            return
        state = shared.breaker if shared.breaker in STATE_VALUES else "closed"
        if state != self.state or shared.breaker_until != self.until:
            if state == "closed":
                self._window.clear()
            self._set(state, shared.breaker_until)  # type: ignore[arg-type]

    async def before(self) -> bool:
        """Let a call through (True: it is the half-open trial) or raise :class:`CircuitOpen`."""
        now = self._clock.now()
        self.sync(now)
        if self.state == "closed":
            return False
        until = self.until if self.until is not None else now
        if now < until:
            raise self._open_error(until - now if self.state == "open" else min(until - now, 1.0))
        if await self._shared.try_breaker_trial(
            self.name, until=now + self._trial_timeout, now=now
        ):
            self._synced_at = now
            self._set("half_open", now + self._trial_timeout)
            return True
        self.sync(now, force=True)
        if self.current() == "closed":
            return False
        return_in = (self.until or now) - now
        raise self._open_error(min(max(return_in, 0.0), 1.0))

    def current(self) -> BreakerState:
        """The state as this process last saw it."""
        return self.state

    def _open_error(self, retry_after: float) -> CircuitOpen:
        what = "half-open, waiting for its trial call" if self.state == "half_open" else "open"
        return CircuitOpen(
            f"connector {self.name}: circuit breaker {what} after repeated vendor failures; "
            f"failing fast (next try in {retry_after:.1f}s)",
            connector=self.name,
            retry_after=retry_after,
        )

    async def after(self, *, trial: bool, failed: bool | None) -> None:
        """Record a call's outcome: ``failed`` None when it does not count (a 4xx, a 429)."""
        now = self._clock.now()
        if trial:
            if failed:
                await self._open(now)
            else:
                self._window.clear()
                self._set("closed", None)
                await self._shared.close_breaker(self.name, now=now)
            return
        if failed is None:
            return
        self._window.add(now, failed=failed)
        if failed and self.state == "closed":
            calls, failures = self._window.totals(now)
            if calls >= self.policy.min_calls and failures >= self._ratio * calls:
                await self._open(now)

    async def _open(self, now: float) -> None:
        until = now + self._cooldown
        self._window.clear()
        self._synced_at = now
        self._set("open", until)
        await self._shared.open_breaker(self.name, until=until, now=now)
