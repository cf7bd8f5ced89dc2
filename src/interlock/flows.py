"""Flow declarations: what reacts to which event, keyed and retried how.

A flow is declared with :meth:`interlock.Interlock.flow`; this module holds
the frozen description the worker runs from, and the small policy objects a
user passes in (:class:`Retry`, :class:`SLO`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from interlock.contracts import POLICIES, Contract, Policy
from interlock.durations import Duration, seconds
from interlock.errors import ConfigurationError

OnDead = Literal["block", "skip"]
OnStale = Literal["skip", "park"]
KeySpec = str | Callable[[Any], object] | None


@dataclass(frozen=True, slots=True)
class Retry:
    """How a failing delivery is retried.

    Exponential backoff with full jitter: attempt *n* waits a random time in
    ``[0, min(cap, base * 2**(n-1))]``. ``attempts`` counts every run, the
    first included; ``max_elapsed`` (optional) bounds the time from the first
    attempt. ``Retry(attempts=1)`` means never retry.
    """

    attempts: int = 10
    base: Duration = "1s"
    cap: Duration = "10m"
    max_elapsed: Duration | None = None
    jitter: bool = True

    def __post_init__(self) -> None:
        if (
            not isinstance(self.attempts, int)
            or isinstance(self.attempts, bool)
            or self.attempts < 1
        ):
            raise ConfigurationError(f"Retry(attempts={self.attempts!r}): must be an int >= 1")
        if seconds(self.base) <= 0:
            raise ConfigurationError("Retry(base=...) must be greater than zero")
        if seconds(self.cap) < seconds(self.base):
            raise ConfigurationError("Retry(cap=...) must be at least Retry(base=...)")
        if self.max_elapsed is not None:
            seconds(self.max_elapsed)

    @property
    def base_s(self) -> float:
        return seconds(self.base)

    @property
    def cap_s(self) -> float:
        return seconds(self.cap)

    @property
    def max_elapsed_s(self) -> float | None:
        return None if self.max_elapsed is None else seconds(self.max_elapsed)


@dataclass(frozen=True, slots=True)
class SLO:
    """A timeliness objective: ``target`` share of deliveries succeed ``within`` the bound."""

    target: float = 0.99
    within: Duration = "5m"
    window: Duration = "28d"

    def __post_init__(self) -> None:
        if not 0 < self.target < 1:
            raise ConfigurationError(f"SLO(target={self.target!r}) must be between 0 and 1")
        seconds(self.within)
        seconds(self.window)


TIME_POINTS = ("occurred_at", "received_at", "succeeded_at")
AGGREGATES = ("p50", "p95", "p99", "avg", "sum", "min", "max", "count")
DURATION_UNITS = {"s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0}


@dataclass(frozen=True, slots=True)
class BusinessMetric:
    """A number the business watches, computed from a flow's events and deliveries.

    Either a duration from ``start`` to ``end`` (in ``unit``: ``s``, ``min``, ``h``
    or ``d``), or a numeric payload field ``value`` (``unit`` is then its label),
    aggregated over the deliveries created in the trailing ``window``::

        BusinessMetric("minutes from demo request to first CRM touch",
                       start="occurred_at", end="succeeded_at", unit="min")
        BusinessMetric("days sales outstanding", start="issued_at", end="paid_at",
                       unit="d", aggregate="avg", window="90d")
        BusinessMetric("revenue shipped", value="amount", unit="USD", aggregate="sum")

    A time point is ``occurred_at`` / ``received_at`` (the event's),
    ``succeeded_at`` (the delivery's success), or a payload field (dotted path;
    ``data.x`` forces the payload) holding an RFC 3339 time or epoch seconds.
    Deliveries missing a point or value are left out of the sample.
    """

    name: str
    start: str = "occurred_at"
    end: str | None = None
    value: str | None = None
    unit: str = "min"
    aggregate: str = "p50"
    window: Duration = "7d"

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ConfigurationError("BusinessMetric needs a name, e.g. 'days sales outstanding'")
        if (self.end is None) == (self.value is None):
            raise ConfigurationError(
                f"BusinessMetric {self.name!r}: give either end= (a duration from start) "
                "or value= (a numeric payload field), not both"
            )
        if self.end is not None and self.unit not in DURATION_UNITS:
            raise ConfigurationError(
                f"BusinessMetric {self.name!r}: a duration's unit is one of "
                f"{', '.join(DURATION_UNITS)}, not {self.unit!r}"
            )
        if self.aggregate not in AGGREGATES:
            raise ConfigurationError(
                f"BusinessMetric {self.name!r}: aggregate is one of {', '.join(AGGREGATES)}"
            )
        if seconds(self.window) <= 0:
            raise ConfigurationError(f"BusinessMetric {self.name!r}: window must be above 0")

    @property
    def window_s(self) -> float:
        return seconds(self.window)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": "duration" if self.end is not None else "value",
            "start": self.start if self.end is not None else None,
            "end": self.end,
            "value": self.value,
            "unit": self.unit,
            "aggregate": self.aggregate,
            "window_s": self.window_s,
        }


@dataclass(frozen=True, slots=True)
class Flow:
    """A registered flow (see :meth:`interlock.Interlock.flow`)."""

    name: str
    contract: type[Contract]
    handler: Callable[..., Any]
    owner: str
    system_of_record: str | None
    key_spec: KeySpec
    idempotency_spec: KeySpec
    retry: Retry = field(default_factory=Retry)
    slo: SLO | None = None
    on_dead: OnDead = "block"
    description: str = ""
    is_async: bool = True
    takes_context: bool = True
    on_missing: Policy | None = None  # None: the contract's, else "retry"
    on_invalid: Policy | None = None  # None: the contract's, else "dead"
    on_stale: OnStale = "skip"
    park_timeout: Duration | None = None
    metric: BusinessMetric | None = None

    @property
    def missing_policy(self) -> Policy:
        """What a :class:`~interlock.errors.MissingRecord` does: flow, then contract, then retry."""
        return self.on_missing or self.contract.__on_missing__ or "retry"

    @property
    def invalid_policy(self) -> Policy:
        """What an event failing its contract does: flow, then contract, then dead."""
        return self.on_invalid or self.contract.__on_invalid__ or "dead"

    @property
    def event_type(self) -> str:
        return self.contract.event_type()

    def lane_of(self, event: Contract, event_id: str) -> str:
        """The ordering key; without a declared key each event is its own lane (unordered)."""
        if self.key_spec is None:
            return "~" + event_id
        return _extract(self.key_spec, event, self.name, "key")

    def idempotency_of(self, event: Contract) -> str | None:
        if self.idempotency_spec is None:
            return None
        return _extract(self.idempotency_spec, event, self.name, "idempotency")

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "event": self.event_type,
            "version": self.contract.__version__,
            "owner": self.owner,
            "system_of_record": self.system_of_record,
            "key": _spec_name(self.key_spec),
            "idempotency": _spec_name(self.idempotency_spec),
            "retry": {
                "attempts": self.retry.attempts,
                "base_s": self.retry.base_s,
                "cap_s": self.retry.cap_s,
                "max_elapsed_s": self.retry.max_elapsed_s,
            },
            "slo": None
            if self.slo is None
            else {
                "target": self.slo.target,
                "within_s": seconds(self.slo.within),
                "window_s": seconds(self.slo.window),
            },
            "on_dead": self.on_dead,
            "on_missing": self.missing_policy,
            "on_invalid": self.invalid_policy,
            "on_stale": self.on_stale if self.contract.__marker__ else None,
            "description": self.description,
            "metric": None if self.metric is None else self.metric.describe(),
        }


def build_flow(
    handler: Callable[..., Any],
    contract: type[Contract],
    *,
    name: str | None,
    owner: str,
    system_of_record: str | None,
    key: KeySpec,
    idempotency: KeySpec,
    retry: Retry | None,
    slo: SLO | None,
    on_dead: str,
    on_missing: str | None = None,
    on_invalid: str | None = None,
    on_stale: str = "skip",
    park_timeout: Duration | None = None,
    metric: BusinessMetric | None = None,
) -> Flow:
    """Validate a declaration and build its :class:`Flow`; errors say how to fix it."""
    flow_name = name or getattr(handler, "__name__", "")
    if not isinstance(contract, type) or not issubclass(contract, Contract):
        raise ConfigurationError(
            f"flow {flow_name!r}: the first argument must be a Contract class, got {contract!r}"
        )
    contract.event_type()
    if not flow_name or not flow_name.replace("_", "").replace("-", "").replace(".", "").isalnum():
        raise ConfigurationError(f"flow name {flow_name!r} must be letters, digits, '_', '-', '.'")
    if not owner or ("@" not in owner and not owner.strip()):
        raise ConfigurationError(f"flow {flow_name!r}: owner= is required (a team or an email)")
    if metric is not None and not isinstance(metric, BusinessMetric):
        raise ConfigurationError(f"flow {flow_name!r}: metric= takes a BusinessMetric")
    if on_dead not in ("block", "skip"):
        raise ConfigurationError(f"flow {flow_name!r}: on_dead must be 'block' or 'skip'")
    for label, policy in (("on_missing", on_missing), ("on_invalid", on_invalid)):
        if policy is not None and policy not in POLICIES:
            raise ConfigurationError(
                f"flow {flow_name!r}: {label}={policy!r} must be one of {', '.join(POLICIES)}"
            )
    if on_stale not in ("skip", "park"):
        raise ConfigurationError(f"flow {flow_name!r}: on_stale must be 'skip' or 'park'")
    if park_timeout is not None:
        seconds(park_timeout)
    for label, spec in (("key", key), ("idempotency", idempotency)):
        if isinstance(spec, str) and spec not in contract.model_fields:
            raise ConfigurationError(
                f"flow {flow_name!r}: {label}={spec!r} is not a field of {contract.__name__} "
                f"(fields: {', '.join(contract.model_fields)})"
            )
        if spec is not None and not isinstance(spec, str) and not callable(spec):
            raise ConfigurationError(
                f"flow {flow_name!r}: {label}= takes a field name or a callable"
            )
    params = inspect.signature(handler).parameters
    if len(params) not in (1, 2):
        raise ConfigurationError(
            f"flow {flow_name!r}: the handler must take (event) or (event, ctx), "
            f"it takes {len(params)} parameters"
        )
    return Flow(
        name=flow_name,
        contract=contract,
        handler=handler,
        owner=owner,
        system_of_record=system_of_record,
        key_spec=key,
        idempotency_spec=idempotency,
        retry=retry or Retry(),
        slo=slo,
        on_dead=on_dead,  # type: ignore[arg-type]
        on_missing=on_missing,  # type: ignore[arg-type]
        on_invalid=on_invalid,  # type: ignore[arg-type]
        on_stale=on_stale,  # type: ignore[arg-type]
        park_timeout=park_timeout,
        description=inspect.getdoc(handler) or "",
        is_async=inspect.iscoroutinefunction(handler),
        takes_context=len(params) == 2,
        metric=metric,
    )


def _extract(spec: str | Callable[[Any], object], event: Contract, flow: str, label: str) -> str:
    value = getattr(event, spec) if isinstance(spec, str) else spec(event)
    if value is None or value == "":
        raise ConfigurationError(f"flow {flow!r}: the {label} of this event is empty")
    return str(value)


def _spec_name(spec: KeySpec) -> str | None:
    if spec is None or isinstance(spec, str):
        return spec
    return getattr(spec, "__name__", repr(spec))
