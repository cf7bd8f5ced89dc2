"""Fault injection for one simulator, settable at runtime from Python or over HTTP.

A :class:`Faults` object is shared between the test (or a CLI in another
process, through ``POST /_sandbox/faults``) and the simulator's request path,
so every method takes a lock. Each request asks :meth:`Faults.decide` once
and gets a :class:`Decision`: how long to wait first, then at most one fault.
Counted faults ("the next 3 requests") win over rates, and an outage window
wins over both::

    faults.set(error_rate=0.1, latency=0.05)     # 10 % vendor 5xx, 50 ms each
    faults.rate_limit(3, retry_after=2.0)        # the next 3 requests get 429
    faults.fail(1, status=502)                   # the next request gets a 502
    faults.timeout(1, hold=30.0)                 # hold the next one past any client timeout
    faults.reset(1)                              # abort the next connection without a response
    faults.outage(10.0)                          # 503 for everything in the next 10 s
    faults.set(token_ttl=1.0); faults.expire_tokens()
    faults.drift(rename={"email": "email_address"}, enum={"status": "on_hold"}, na=["amount"])

Randomness comes from a generator seeded at construction (and on :meth:`clear`),
so a run with the same seed and the same request order injects the same faults.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from interlock.errors import ConfigurationError

FaultKind = Literal["error", "rate_limit", "outage", "timeout", "reset"]


@dataclass(frozen=True, slots=True)
class Drift:
    """Schema drift applied to every JSON object a simulator returns (2xx answers only).

    ``rename`` maps a field name to its new name, ``enum`` sets a string field to a
    value the connector has never seen, ``na`` puts the string ``"NA"`` where a number
    was. Fields are matched at any depth.
    """

    rename: Mapping[str, str] = field(default_factory=dict)
    enum: Mapping[str, str] = field(default_factory=dict)
    na: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.rename or self.enum or self.na)

    def apply(self, value: Any) -> Any:
        """A drifted copy of the JSON ``value``."""
        if isinstance(value, list):
            return [self.apply(item) for item in value]
        if not isinstance(value, dict):
            return value
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key in self.na and (isinstance(item, int | float) or _numeric(item)):
                item = "NA"
            elif key in self.enum and isinstance(item, str):
                item = self.enum[key]
            else:
                item = self.apply(item)
            out[self.rename.get(key, key)] = item
        return out

    def to_json(self) -> dict[str, Any]:
        return {"rename": dict(self.rename), "enum": dict(self.enum), "na": list(self.na)}


def _numeric(value: object) -> bool:
    """Shopify and friends send money as strings ("19.99"): those count as numbers too."""
    if not isinstance(value, str):
        return False
    try:
        float(value)
    except ValueError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with one request: wait ``latency`` seconds, then ``kind`` (None: serve it)."""

    latency: float = 0.0
    kind: FaultKind | None = None
    status: int = 0
    retry_after: float = 0.0
    hold: float = 0.0
    effect: bool = True  # a held (timeout) request still takes effect on the server


@dataclass(frozen=True, slots=True)
class FaultSettings:
    """A snapshot of every fault setting; the JSON of ``GET /_sandbox/faults``."""

    error_rate: float = 0.0
    error_status: int = 500
    latency: float = 0.0
    latency_jitter: float = 0.0
    rate_limit_next: int = 0
    rate_limit_rate: float = 0.0
    retry_after: float = 2.0
    fail_next: int = 0
    fail_status: int = 503
    timeout_next: int = 0
    timeout_rate: float = 0.0
    hold: float = 30.0
    timeout_effect: bool = True
    reset_next: int = 0
    reset_rate: float = 0.0
    outage_until: float | None = None
    outage_status: int = 503
    token_ttl: float | None = None
    token_epoch: int = 0
    rotate_refresh_tokens: bool | None = None
    drift: Drift = field(default_factory=Drift)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["drift"] = self.drift.to_json()
        return data


_RATES = ("error_rate", "rate_limit_rate", "timeout_rate", "reset_rate")
_COUNTS = ("rate_limit_next", "fail_next", "timeout_next", "reset_next")
_SECONDS = ("latency", "latency_jitter", "retry_after", "hold")
_STATUSES = ("error_status", "fail_status", "outage_status")


def _validate(s: FaultSettings) -> None:
    for name in _RATES:
        rate = getattr(s, name)
        if not (isinstance(rate, int | float) and 0.0 <= rate <= 1.0):
            raise ConfigurationError(f"fault {name} must be between 0 and 1, got {rate!r}")
    for name in _COUNTS:
        count = getattr(s, name)
        if not (isinstance(count, int) and count >= 0):
            raise ConfigurationError(f"fault {name} must be a count >= 0, got {count!r}")
    for name in _SECONDS:
        secs = getattr(s, name)
        if not (isinstance(secs, int | float) and 0.0 <= secs < 86400):
            raise ConfigurationError(f"fault {name} must be seconds >= 0, got {secs!r}")
    for name in _STATUSES:
        status = getattr(s, name)
        if not (isinstance(status, int) and 400 <= status <= 599):
            raise ConfigurationError(f"fault {name} must be an HTTP error status, got {status!r}")
    if s.token_ttl is not None and not (isinstance(s.token_ttl, int | float) and s.token_ttl > 0):
        raise ConfigurationError(f"fault token_ttl must be seconds > 0, got {s.token_ttl!r}")


class Faults:
    """The fault settings of one simulator; thread-safe, seedable, and cleared by :meth:`clear`."""

    def __init__(self, *, seed: int = 0, clock: Callable[[], float] = time.time) -> None:
        self._lock = threading.Lock()
        self._seed = seed
        self._clock = clock
        self._rng = random.Random(seed)
        self._settings = FaultSettings()

    @property
    def settings(self) -> FaultSettings:
        with self._lock:
            return self._settings

    def set(self, **changes: Any) -> FaultSettings:
        """Change settings by name (see :class:`FaultSettings`); returns the new snapshot."""
        unknown = sorted(set(changes) - set(FaultSettings.__dataclass_fields__))
        if unknown:
            raise ConfigurationError(f"unknown fault setting {unknown[0]!r}")
        drift = changes.get("drift")
        if isinstance(drift, Mapping):
            changes["drift"] = _drift_from_json(drift)
        with self._lock:
            updated = replace(self._settings, **changes)
            _validate(updated)
            self._settings = updated
            return updated

    def update(self, data: Mapping[str, Any]) -> FaultSettings:
        """Apply a JSON body of ``POST /_sandbox/faults``: settings plus optional actions.

        Actions: ``"clear": true``, ``"outage_for": seconds``, ``"expire_tokens": true``.
        """
        changes = dict(data)
        if changes.pop("clear", False):
            self.clear()
        outage_for = changes.pop("outage_for", None)
        if changes.pop("expire_tokens", False):
            self.expire_tokens()
        settings = self.set(**changes) if changes else self.settings
        if outage_for is not None:
            settings = self.outage(float(outage_for))
        return settings

    def clear(self) -> None:
        """No faults at all, and the random generator back at its seed."""
        with self._lock:
            epoch = self._settings.token_epoch
            self._settings = FaultSettings(token_epoch=epoch)
            self._rng = random.Random(self._seed)

    def rate_limit(self, count: int, *, retry_after: float = 2.0) -> FaultSettings:
        """Answer the next ``count`` requests with the vendor's 429 and ``Retry-After``."""
        return self.set(rate_limit_next=count, retry_after=retry_after)

    def fail(self, count: int, *, status: int = 503) -> FaultSettings:
        """Answer the next ``count`` requests with the vendor's ``status`` (a 5xx) error body."""
        return self.set(fail_next=count, fail_status=status)

    def timeout(self, count: int, *, hold: float = 30.0, effect: bool = True) -> FaultSettings:
        """Hold the next ``count`` requests ``hold`` seconds (past the client's timeout).

        With ``effect`` (the default) the request is carried out first, as a real
        vendor would, so a client that retries sees the side effect already done.
        """
        return self.set(timeout_next=count, hold=hold, timeout_effect=effect)

    def reset(self, count: int) -> FaultSettings:
        """Abort the next ``count`` connections (TCP reset) without any response."""
        return self.set(reset_next=count)

    def outage(self, seconds: float, *, status: int = 503) -> FaultSettings:
        """Answer everything with ``status`` for the next ``seconds`` seconds."""
        return self.set(outage_until=self._clock() + seconds, outage_status=status)

    def expire_tokens(self) -> FaultSettings:
        """Make every OAuth access token issued so far expired (refresh tokens stay valid)."""
        with self._lock:
            self._settings = replace(self._settings, token_epoch=self._settings.token_epoch + 1)
            return self._settings

    def drift(
        self,
        *,
        rename: Mapping[str, str] | None = None,
        enum: Mapping[str, str] | None = None,
        na: Iterable[str] = (),
    ) -> FaultSettings:
        """Drift the schema of every answer (see :class:`Drift`); ``drift()`` alone stops it."""
        return self.set(drift=Drift(dict(rename or {}), dict(enum or {}), tuple(na)))

    def decide(self) -> Decision:
        """Draw the fate of one request (consumes counters and random numbers)."""
        with self._lock:
            s = self._settings
            latency = s.latency
            if s.latency_jitter:
                latency += self._rng.uniform(0.0, s.latency_jitter)
            if s.outage_until is not None and self._clock() < s.outage_until:
                return Decision(latency, "outage", s.outage_status, s.retry_after)
            counted: tuple[tuple[str, FaultKind, int], ...] = (
                ("reset_next", "reset", 0),
                ("timeout_next", "timeout", 0),
                ("rate_limit_next", "rate_limit", 429),
                ("fail_next", "error", s.fail_status),
            )
            for counter, kind, status in counted:
                if getattr(s, counter) > 0:
                    self._settings = replace(s, **{counter: getattr(s, counter) - 1})
                    return self._decision(latency, kind, status, s)
            rated: tuple[tuple[float, FaultKind, int], ...] = (
                (s.reset_rate, "reset", 0),
                (s.timeout_rate, "timeout", 0),
                (s.rate_limit_rate, "rate_limit", 429),
                (s.error_rate, "error", s.error_status),
            )
            for rate, kind, status in rated:
                if rate and self._rng.random() < rate:
                    return self._decision(latency, kind, status, s)
            return Decision(latency)

    @staticmethod
    def _decision(latency: float, kind: FaultKind, status: int, s: FaultSettings) -> Decision:
        return Decision(latency, kind, status, s.retry_after, s.hold, s.timeout_effect)


def _drift_from_json(data: Mapping[str, Any]) -> Drift:
    rename, enum, na = data.get("rename") or {}, data.get("enum") or {}, data.get("na") or []
    if not (isinstance(rename, Mapping) and isinstance(enum, Mapping) and isinstance(na, list)):
        raise ConfigurationError("drift must look like {'rename': {}, 'enum': {}, 'na': []}")
    return Drift(
        {str(k): str(v) for k, v in rename.items()},
        {str(k): str(v) for k, v in enum.items()},
        tuple(str(x) for x in na),
    )
