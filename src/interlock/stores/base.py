"""The store seam: everything durable goes through this protocol.

Stores take and return frozen dataclasses. Write operations are async and
group-committed by the implementation; reads used by the CLI and operator
surfaces are plain synchronous calls.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from interlock.events import Event
from interlock.stores.analytics import AlertRow, FlowSample, FlowStats, NewAlert, SloCounts
from interlock.stores.contract_records import (
    DriftBatch,
    DriftFinding,
    Marker,
    Sample,
    StoredProfile,
)
from interlock.tokens import NewToken, Role, TokenRow

DeliveryStatus = Literal["queued", "pending", "running", "waiting", "succeeded", "dead", "skipped"]
OutcomeKind = Literal["succeeded", "retry", "dead", "sleep", "wait", "released", "skipped"]


@dataclass(frozen=True, slots=True)
class NewDelivery:
    flow: str
    lane: str
    idem: str | None = None


@dataclass(frozen=True, slots=True)
class DirectLease:
    """Lease up to ``count`` of the event's deliveries that head their lane straight to
    ``worker`` (a worker in the emitting process with free slots), in the emit's own
    transaction: no claim round trip for fresh work."""

    worker: str
    until: float
    count: int


@dataclass(frozen=True, slots=True)
class NewEvent:
    event: Event
    data_json: bytes
    deliveries: tuple[NewDelivery, ...]
    lease: DirectLease | None = None


@dataclass(frozen=True, slots=True)
class EmitResult:
    event_id: str
    created: bool
    deliveries: int = 0
    woke: int = 0  # waits satisfied by this event
    seq: int = 0
    leased: tuple[tuple[int, str, str], ...] = ()  # (delivery id, flow, lane) leased directly


# Claimed and Outcome are built for every delivery on the hot path; a frozen dataclass
# costs about 1 µs more per instance, so they are plain slotted records. Treat them as
# immutable all the same.
@dataclass(slots=True)
class Claimed:
    """A delivery leased to a worker, with what it needs to run."""

    delivery_id: int
    flow: str
    lane: str
    fence: int
    attempts: int
    runs: int
    chain: int
    first_attempt_at: float
    event: Event
    steps: dict[str, Any]


@dataclass(frozen=True, slots=True)
class WaitSpec:
    step: str
    event_type: str
    match: dict[str, Any]
    deadline: float | None
    since: float | None = None  # events received from then on satisfy the wait


@dataclass(slots=True)
class Outcome:
    """How one run of a delivery ended."""

    delivery_id: int
    fence: int
    flow: str
    lane: str
    kind: OutcomeKind
    started_at: float
    finished_at: float
    error_class: str | None = None
    reason: str | None = None
    delay: float | None = None
    due_at: float | None = None
    counts: bool = False
    skip_lane: bool = False  # dead with on_dead="skip": let the lane continue
    wait: WaitSpec | None = None
    context: dict[str, Any] | None = None
    steps: list[tuple[str, bytes, float]] = field(default_factory=list)  # checkpoints with it
    number: int = 0  # the attempt's number (runs + 1) and chain, when the worker knows them
    chain: int = 1
    calls: list[dict[str, Any]] | None = None  # connector calls of the run (CallRecord JSON)


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    id: int
    event_id: str
    event_type: str
    flow: str
    lane: str
    status: str
    attempts: int
    runs: int
    chain: int
    created_at: float
    due_at: float | None
    finished_at: float | None
    error_class: str | None
    reason: str | None
    context: dict[str, Any] | None = None
    subject: str | None = None


@dataclass(frozen=True, slots=True)
class AttemptRow:
    delivery_id: int
    number: int
    chain: int
    worker: str | None
    started_at: float
    finished_at: float
    outcome: str
    error_class: str | None
    reason: str | None
    delay: float | None
    # The connector calls the run made (CallRecord JSON, each with its step), oldest first.
    calls: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class StepRow:
    delivery_id: int
    name: str
    result: Any
    recorded_at: float


@dataclass(frozen=True, slots=True)
class AuditRow:
    id: int
    at: float
    actor: str
    action: str
    target: str
    reason: str
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SecretValue:
    """The current version of a stored secret, still encrypted."""

    name: str
    version: int
    token: bytes
    expires_at: float | None


@dataclass(frozen=True, slots=True)
class SecretInfo:
    """What may be shown about a stored secret: never its value."""

    name: str
    version: int
    created_at: float
    created_by: str
    expires_at: float | None
    versions: int


@dataclass(frozen=True, slots=True)
class Trace:
    """Everything known about a set of events: the answer to "what happened to X?"."""

    events: list[Event]
    deliveries: list[DeliveryRow]
    attempts: list[AttemptRow]
    steps: list[StepRow]
    audit: list[AuditRow] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class DeadFilter:
    ids: tuple[int, ...] = ()
    flow: str | None = None
    since: float | None = None
    error_class: str | None = None
    limit: int = 1000


@dataclass(frozen=True, slots=True)
class Stats:
    events: int
    by_status: dict[str, int]
    attempts: int
    retries: int
    oldest_due_lag: float | None


@dataclass(frozen=True, slots=True)
class Gauge:
    """A figure about the database itself for ``/metrics`` (a gauge ``name`` with ``labels``)."""

    name: str
    help: str
    value: float
    labels: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class PermitGrant:
    """Rate-limit permits reserved from a shared bucket: one call may start at each of
    ``slots`` (times, on the caller's clock); with none, ``wait`` seconds until one can
    be reserved."""

    granted: int
    wait: float
    slots: tuple[float, ...] = ()


@dataclass(frozen=True, slots=True)
class ConnectorState:
    """A connector's shared state: its circuit breaker and whether its connection works."""

    name: str
    breaker: str  # closed | open | half_open
    breaker_until: float | None  # open: until when; half_open: the trial's deadline
    opened: int  # how many times the breaker opened
    connection: str  # ok | needs_reauth
    reason: str | None
    seed: str | None  # fingerprint of the credential that was refused (re-auth changes it)
    updated_at: float


def take_permits(
    tokens: float | None,
    at: float,
    want: int,
    rate: float,
    burst: float,
    now: float,
    horizon: float = 0.0,
) -> tuple[PermitGrant, float, float]:
    """Reserve up to ``want`` permits from a token bucket: ``(grant, tokens, at)`` after it.

    The bucket holds at most ``burst`` tokens and refills ``rate`` per second from
    ``at``; ``tokens`` None is a new, full bucket. Permits may be reserved up to
    ``horizon`` seconds ahead, each with the time it may be used (its slot), so one
    lease serves a whole wave of callers even at a steady rate: the tokens go
    negative by what is reserved. The slots are those of a GCRA, so no window of
    ``T`` seconds ever holds more than ``burst + rate·T`` of them. A pause (a
    vendor's Retry-After) is ``tokens = 0`` with ``at`` in the future. Every store
    runs exactly this, so all processes sharing a bucket agree::

        >>> grant, tokens, at = take_permits(None, 0.0, 3, 10.0, 2.0, 5.0, horizon=0.1)
        >>> grant.granted, [round(s, 2) for s in grant.slots], round(tokens, 2)
        (3, [5.0, 5.0, 5.1], -1.0)
    """
    if tokens is None:
        tokens, at = burst, now
    tokens = min(burst, tokens + max(0.0, now - at) * rate)
    base = max(at, now)
    reservable = tokens + (now + horizon - base) * rate
    granted = max(0, min(want, int(reservable + 1e-9)))
    slots = tuple(base + max(0.0, (i + 1 - tokens) / rate) for i in range(granted))
    if granted:
        return PermitGrant(granted, 0.0, slots), tokens - granted, base
    # Come back when a batch for every caller waiting (as many as one horizon holds) can be
    # reserved at once: the first of them is still due no later than if reserved alone.
    batch = max(1, min(want, int(1 + horizon * rate)))
    ready = base + (batch - tokens) / rate - horizon
    return PermitGrant(0, max(ready - now, 1e-3)), tokens, base


class Store(Protocol):
    """Durable state of one interlock app."""

    url: str
    dialect: str  # sqlite | postgres: which migrations apply

    def upgrade(self) -> list[str]: ...

    def schema_version(self) -> int: ...

    def ensure_schema(self) -> None: ...

    async def emit(self, items: list[NewEvent]) -> list[EmitResult]: ...

    def emit_sync(self, items: list[NewEvent]) -> list[EmitResult]: ...

    async def claim(self, worker: str, limit: int, now: float, lease: float) -> list[Claimed]: ...

    async def record_step(
        self, delivery_id: int, fence: int, name: str, result_json: bytes, now: float
    ) -> None: ...

    def record_steps_nowait(
        self, delivery_id: int, fence: int, steps: list[tuple[str, bytes, float]]
    ) -> asyncio.Future[None]: ...

    def settle(
        self, outcome: Outcome, *, worker: str, chain: bool, now: float, lease: float
    ) -> asyncio.Future[Claimed | None]: ...

    async def heartbeat(
        self, worker: str, leases: list[tuple[int, int]], until: float
    ) -> list[int]: ...

    def write_backlog(self) -> int: ...

    def wakeup_token(self) -> int: ...

    def next_due_at(self) -> float | None: ...

    def get_event(self, event_id: str) -> Event: ...

    def list_events(
        self,
        *,
        type: str | None = None,
        subject: str | None = None,
        correlation_id: str | None = None,
        since: float | None = None,
        until: float | None = None,
        before_seq: int | None = None,
        limit: int = 50,
    ) -> list[Event]: ...

    def trace(self, query: str) -> Trace: ...

    def list_dead(self, selection: DeadFilter) -> list[DeliveryRow]: ...

    def get_delivery(self, delivery_id: int) -> DeliveryRow: ...

    async def replay(self, ids: list[int], *, actor: str, reason: str, now: float) -> list[int]: ...

    async def discard(
        self, ids: list[int], *, actor: str, reason: str, now: float
    ) -> list[int]: ...

    def replay_sync(self, ids: list[int], *, actor: str, reason: str, now: float) -> list[int]: ...

    def discard_sync(self, ids: list[int], *, actor: str, reason: str, now: float) -> list[int]: ...

    def deliveries_of(self, event_seqs: list[int]) -> list[DeliveryRow]: ...

    def list_deliveries(
        self,
        *,
        status: str | None = None,
        flow: str | None = None,
        before_id: int | None = None,
        limit: int = 100,
    ) -> list[DeliveryRow]: ...

    def list_audit(
        self,
        limit: int = 100,
        *,
        action: str | None = None,
        actor: str | None = None,
        target: str | None = None,
        since: float | None = None,
        before_id: int | None = None,
    ) -> list[AuditRow]: ...

    async def create_token(self, name: str, role: Role, *, actor: str, now: float) -> NewToken: ...

    async def revoke_token(
        self, which: str, *, actor: str, reason: str, now: float
    ) -> TokenRow | None: ...

    def create_token_sync(self, name: str, role: Role, *, actor: str, now: float) -> NewToken: ...

    def revoke_token_sync(
        self, which: str, *, actor: str, reason: str, now: float
    ) -> TokenRow | None: ...

    def token_for(self, token: str) -> TokenRow | None: ...

    def list_tokens(self, *, include_revoked: bool = False) -> list[TokenRow]: ...

    async def put_secret(
        self,
        name: str,
        token: bytes,
        *,
        actor: str,
        now: float,
        expires_at: float | None = None,
        audited: bool = True,
    ) -> int: ...

    def put_secret_sync(
        self,
        name: str,
        token: bytes,
        *,
        actor: str,
        now: float,
        expires_at: float | None = None,
        audited: bool = True,
    ) -> int: ...

    def current_secret(self, name: str) -> SecretValue | None: ...

    def secret_values(self) -> list[tuple[str, int, bytes]]: ...

    def reencrypt_secrets_sync(
        self, rows: list[tuple[str, int, bytes]], *, actor: str, now: float
    ) -> int: ...

    def list_secrets(self) -> list[SecretInfo]: ...

    async def take_lock(self, name: str, holder: str, *, until: float, now: float) -> bool: ...

    async def release_lock(self, name: str, holder: str) -> None: ...

    async def lease_permits(
        self, key: str, want: int, *, rate: float, burst: float, now: float, horizon: float
    ) -> PermitGrant: ...

    async def pause_permits(self, key: str, until: float, *, now: float) -> None: ...

    def connector_state(self, name: str) -> ConnectorState | None: ...

    def connector_states(self) -> list[ConnectorState]: ...

    async def open_breaker(self, name: str, *, until: float, now: float) -> None: ...

    async def try_breaker_trial(self, name: str, *, until: float, now: float) -> bool: ...

    async def close_breaker(self, name: str, *, now: float) -> bool: ...

    async def set_connection(
        self, name: str, status: str, *, reason: str | None, seed: str | None, now: float
    ) -> None: ...

    def flow_counts(self) -> dict[str, dict[str, int]]: ...

    def blocked_flows(self) -> set[str]: ...

    def stats(self, now: float) -> Stats: ...

    def gauges(self) -> list[Gauge]: ...

    async def prune(self, before: float, *, limit: int) -> int: ...

    # -- contracts: drift, samples, version markers (stores/contract_records.py) -----------
    def drift_profiles(self) -> list[StoredProfile]: ...

    def drift_findings(
        self,
        *,
        source: str | None = None,
        event_type: str | None = None,
        kind: str | None = None,
        limit: int = 500,
    ) -> list[DriftFinding]: ...

    async def save_drift(self, batch: DriftBatch, *, now: float) -> None: ...

    def contract_samples(
        self, source: str, *, topic: str | None = None, limit: int = 50
    ) -> list[Sample]: ...

    def marker_of(self, flow: str, entity: str) -> Marker | None: ...

    async def advance_marker(
        self, flow: str, entity: str, value: float, event_id: str, *, now: float
    ) -> bool: ...

    # -- analytics (rows and their exact meaning: interlock.stores.analytics) ----------------
    # Reads scan only the id ranges of [since, until) (ids grow with time): no table scans.

    def flow_stats(
        self, since: float, until: float, *, within: Mapping[str, float] | None = None
    ) -> dict[str, FlowStats]:
        """Per flow, what happened in ``[since, until)``: deliveries created, attempts ended
        by outcome and error class, end-to-end lag percentiles of the successes, and how many
        succeeded within ``within[flow]`` seconds. Flows without activity are absent."""
        ...

    def flow_series(
        self,
        flow: str,
        since: float,
        until: float,
        bucket_seconds: float,
        *,
        within: float | None = None,
    ) -> list[FlowStats]:
        """:meth:`flow_stats` of one flow per bucket ``[since + i·b, since + (i+1)·b)``,
        oldest first, empty buckets included; at most 2,000 buckets (ValueError)."""
        ...

    def slo_counts(
        self, flow: str, within: float, ranges: Sequence[tuple[float, float]], *, now: float
    ) -> list[SloCounts]:
        """Deliveries of ``flow`` decided good or bad against the bound ``within`` (seconds)
        in each range (cut at ``now``); see :class:`SloCounts` for what decides them."""
        ...

    async def roll_up_slo(self, flow: str, within: float, *, now: float, keep: float) -> int:
        """Roll up ``flow``'s SLO counts per minute (those that can no longer change), as
        far back as ``keep`` seconds, so that :meth:`slo_counts` over long windows sums
        minutes instead of scanning deliveries. Returns how many minutes it rolled up."""
        ...

    def flow_samples(
        self, flow: str, since: float, until: float, *, limit: int = 10_000, data: bool = True
    ) -> list[FlowSample]:
        """The newest ``limit`` deliveries of ``flow`` created in the range, with their events
        (what a business metric is computed from); ``data=False`` leaves payloads out."""
        ...

    async def fire_alert(self, alert: NewAlert) -> tuple[AlertRow, bool]:
        """Record a firing alert: ``(row, True)`` when newly fired, ``(row, False)`` when it
        was firing already (its figures refreshed). One firing alert per flow and severity."""
        ...

    async def resolve_alert(self, flow: str, severity: str, *, now: float) -> AlertRow | None:
        """Resolve the firing alert of ``flow`` and ``severity``; None when none fires."""
        ...

    def list_alerts(
        self,
        *,
        firing: bool | None = None,
        flow: str | None = None,
        severity: str | None = None,
        since: float | None = None,
        limit: int = 100,
    ) -> list[AlertRow]:
        """Alerts newest first; ``since`` keeps those firing then or after."""
        ...

    def close(self) -> None: ...
