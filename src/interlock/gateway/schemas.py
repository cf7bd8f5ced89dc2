"""Request and response bodies of the REST API (``/api/v1``), as pydantic models.

They are the API's documentation too: ``/openapi.json`` is generated from them.
Times are RFC 3339 strings in UTC; payloads and subjects arrive here already
masked where their contract marks PII.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
)

from interlock.events import Event
from interlock.gateway.slo_schemas import FlowHealthOut, MetricDeclOut
from interlock.stores.base import AttemptRow, AuditRow, DeliveryRow, StepRow
from interlock.tokens import Role, TokenRow

Reason = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=500, pattern=r"\S"),
]
DeliveryStatusName = Literal[
    "queued", "pending", "running", "waiting", "succeeded", "dead", "skipped"
]


def _rfc3339(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or _NUMBER.fullmatch(value.strip()):
        raise ValueError("expected an RFC 3339 time such as 2026-11-27T10:00:00Z")
    return value


_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
Time = Annotated[datetime, BeforeValidator(_rfc3339)]
"""An RFC 3339 time; a bare number is refused rather than read as epoch seconds."""


def _json_int(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("expected a JSON integer")
    if isinstance(value, float) and not value.is_integer():
        raise ValueError("expected a JSON integer")
    return int(value)


JsonInt = Annotated[int, BeforeValidator(_json_int)]
"""An integer as JSON Schema means it: ``3`` and ``3.0``, never ``true`` or ``"3"``."""


def at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def maybe_at(ts: float | None) -> datetime | None:
    return None if ts is None else at(ts)


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EventOut(Model):
    id: str
    type: str
    version: int
    source: str
    subject: str | None
    correlation_id: str
    causation_id: str | None
    idempotency_key: str | None
    occurred_at: datetime
    received_at: datetime
    data: dict[str, Any]

    @classmethod
    def of(cls, e: Event) -> EventOut:
        return cls(
            id=e.id,
            type=e.type,
            version=e.version,
            source=e.source,
            subject=e.subject,
            correlation_id=e.correlation_id,
            causation_id=e.causation_id,
            idempotency_key=e.idempotency_key,
            occurred_at=at(e.occurred_at),
            received_at=at(e.received_at),
            data=e.data,
        )


class EventPage(Model):
    items: list[EventOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next (older) page.")


class DeliveryOut(Model):
    id: int
    event_id: str
    event_type: str
    subject: str | None
    flow: str
    lane: str
    status: DeliveryStatusName
    attempts: int = Field(description="Failures counted against the flow's retry budget.")
    runs: int = Field(description="Attempts recorded, over every replay.")
    chain: int = Field(description="1, plus one per replay.")
    created_at: datetime
    due_at: datetime | None
    finished_at: datetime | None
    error_class: str | None
    reason: str | None
    context: dict[str, Any] | None

    @classmethod
    def of(cls, d: DeliveryRow) -> DeliveryOut:
        return cls(
            id=d.id,
            event_id=d.event_id,
            event_type=d.event_type,
            subject=d.subject,
            flow=d.flow,
            lane=d.lane,
            status=d.status,
            attempts=d.attempts,
            runs=d.runs,
            chain=d.chain,
            created_at=at(d.created_at),
            due_at=maybe_at(d.due_at),
            finished_at=maybe_at(d.finished_at),
            error_class=d.error_class,
            reason=d.reason,
            context=d.context,
        )


class DeliveryPage(Model):
    items: list[DeliveryOut]
    next_cursor: str | None


class CallOut(Model):
    """One connector call an attempt made (no bodies, headers or query strings)."""

    at: datetime
    connector: str
    operation: str = Field(description="The call's name in metrics: `GET /v1/customers/{id}`.")
    method: str
    path: str = Field(description="The path called; e-mail-like segments are masked.")
    status: int | None = Field(description="The vendor's HTTP status; null when none came.")
    duration_ms: float
    outcome: str = Field(
        description="ok, dry_run, retryable, rate_limited, circuit_open, permission, "
        "not_found, permanent, paused or interrupted."
    )
    idempotency_key: str | None
    step: str | None = Field(description="The step that made the call; null outside steps.")

    @classmethod
    def of(cls, c: dict[str, Any]) -> CallOut:
        known = {name: c.get(name) for name in cls.model_fields}
        return cls.model_validate({**known, "at": at(float(c["at"]))})


class AttemptOut(Model):
    delivery_id: int
    number: int
    chain: int
    worker: str | None
    started_at: datetime
    finished_at: datetime
    outcome: str
    error_class: str | None
    reason: str | None
    delay: float | None
    calls: list[CallOut] = Field(description="The connector calls this attempt made.")

    @classmethod
    def of(cls, a: AttemptRow) -> AttemptOut:
        return cls(
            delivery_id=a.delivery_id,
            number=a.number,
            chain=a.chain,
            worker=a.worker,
            started_at=at(a.started_at),
            finished_at=at(a.finished_at),
            outcome=a.outcome,
            error_class=a.error_class,
            reason=a.reason,
            delay=a.delay,
            calls=[CallOut.of(c) for c in a.calls],
        )


class StepOut(Model):
    delivery_id: int
    name: str
    result: Any
    recorded_at: datetime

    @classmethod
    def of(cls, s: StepRow) -> StepOut:
        return cls(
            delivery_id=s.delivery_id, name=s.name, result=s.result, recorded_at=at(s.recorded_at)
        )


class AuditOut(Model):
    id: int
    at: datetime
    actor: str
    action: str
    target: str
    reason: str
    detail: dict[str, Any]

    @classmethod
    def of(cls, a: AuditRow) -> AuditOut:
        return cls(
            id=a.id,
            at=at(a.at),
            actor=a.actor,
            action=a.action,
            target=a.target,
            reason=a.reason,
            detail=a.detail,
        )


class AuditPage(Model):
    items: list[AuditOut]
    next_cursor: str | None


class TraceOut(Model):
    query: str
    events: list[EventOut]
    deliveries: list[DeliveryOut]
    attempts: list[AttemptOut]
    steps: list[StepOut]
    audit: list[AuditOut]


class RetryOut(Model):
    attempts: int
    base_s: float
    cap_s: float
    max_elapsed_s: float | None


class SloOut(Model):
    target: float
    within_s: float
    window_s: float


class FlowOut(Model):
    name: str
    event: str
    version: int
    owner: str
    system_of_record: str | None
    key: str | None
    idempotency: str | None
    retry: RetryOut
    slo: SloOut | None
    on_dead: Literal["block", "skip"]
    on_missing: str = Field(description="What a missing record does: retry, dead, skip or park.")
    on_invalid: str = Field(description="What an event failing its contract does.")
    on_stale: str | None = Field(description="What a stale event does (with a version marker).")
    description: str
    state: Literal["idle", "active", "failing", "blocked"] = Field(
        description=(
            "blocked: a dead delivery holds a lane; failing: dead letters wait for an "
            "operator; active: deliveries are queued or running; idle: nothing to do."
        )
    )
    counts: dict[str, int] = Field(description="Deliveries by status.")
    metric: MetricDeclOut | None = Field(None, description="The declared business metric.")
    health: FlowHealthOut | None = Field(
        None, description="SLO status (SLI, budget, burn rates, alerts) and the metric's value."
    )


class SecretRef(Model):
    name: str
    env: str


class SourceOut(Model):
    name: str
    verify: str
    secrets: list[SecretRef]
    topics: list[str]
    catch_all: bool
    max_body_bytes: int
    accepted: int = Field(description="Requests accepted since this gateway started.")
    rejected: dict[str, int] = Field(description="Requests rejected since start, by reason.")


class ActionIn(Model):
    reason: Reason = Field(description="Why; recorded in the audit trail.")
    dry_run: StrictBool = Field(
        default=False, description="Report what would be done; change nothing."
    )


class BulkActionIn(ActionIn):
    """A selection of dead letters: ``ids``, ``flow``, ``error_class`` and ``since`` narrow
    it (all must hold); ``all: true`` with none of them selects every dead letter."""

    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": ["ids"]},
                {"required": ["flow"]},
                {"required": ["error_class"]},
                {"required": ["since"]},
                {"required": ["all"], "properties": {"all": {"const": True}}},
            ]
        }
    )

    ids: list[Annotated[JsonInt, Field(ge=1)]] | None = Field(
        default=None, min_length=1, max_length=10_000
    )
    flow: Annotated[str, StringConstraints(min_length=1)] | None = None
    error_class: Annotated[str, StringConstraints(min_length=1)] | None = None
    since: Time | None = Field(default=None, description="Dead since this time.")
    all: StrictBool = Field(
        default=False, description="Select every dead letter (no other filter)."
    )
    limit: JsonInt = Field(default=1000, ge=1, le=10_000)


class ActionResult(Model):
    action: Literal["replay", "discard"]
    dry_run: bool
    matched: list[int] = Field(description="Dead letters the selection matched.")
    done: list[int] = Field(description="Those replayed or discarded (empty on a dry run).")


class TokenIn(Model):
    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._:@/-]{0,99}$")] = (
        Field(description="What the token is for; unique among live tokens.")
    )
    role: Role


class TokenOut(Model):
    id: str
    name: str
    role: Role
    created_at: datetime
    created_by: str
    revoked_at: datetime | None
    revoked_by: str | None

    @classmethod
    def of(cls, t: TokenRow) -> TokenOut:
        return cls(
            id=t.id,
            name=t.name,
            role=t.role,
            created_at=at(t.created_at),
            created_by=t.created_by,
            revoked_at=maybe_at(t.revoked_at),
            revoked_by=t.revoked_by,
        )


class NewTokenOut(TokenOut):
    token: str = Field(description="The token itself: shown this once, never stored.")


class Status(Model):
    status: str
