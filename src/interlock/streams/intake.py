"""From a batch of broker messages to what the store takes, and a verdict per message.

Each message is parsed with the webhook ingress's JSON policy, mapped to
contracts by its topic, and prepared as events keyed by the message's
idempotency key (``key``, then ``key#1``, ``key#2`` … for the further events of
one message). A message that can never be stored — not JSON, not an object,
failing its contract, a mapping that raises, over the payload limit — becomes
one :class:`StreamRejected` event instead, under the same key: the rejection is
as durable and as deduplicated as an event would have been, and an operator
finds it with ``interlock events list --type interlock.stream.rejected`` (or a
flow subscribed to it raises the alarm). Its record names the reason and the
fields at fault, never the message's values, which may be personal data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import structlog
from pydantic import ValidationError

from interlock.contracts import Contract
from interlock.drift import monitor_of
from interlock.errors import ContractViolation, LimitExceeded
from interlock.gateway.jsonpolicy import BadJson, parse_json
from interlock.stores.base import NewEvent
from interlock.streams.base import Message

if TYPE_CHECKING:
    from interlock.app import Interlock
    from interlock.streams.stream import Stream

__all__ = ["Intake", "StreamRejected", "Verdict", "take"]

log = structlog.get_logger("interlock.streams")

Verdict = Literal["stored", "ignored", "rejected"]


class StreamRejected(Contract, event="interlock.stream.rejected", version=1):
    """A stream message that could not become an event, kept so an operator sees it."""

    stream: str
    topic: str
    position: str
    key: str
    reason: str
    detail: str
    errors: list[dict[str, str]] = []
    deliveries: int = 1
    body_bytes: int = 0


@dataclass(slots=True)
class Intake:
    """One batch, sorted: the events to store (``items``, with ``owners[i]`` the index of
    the message each came from), each message's verdict, and each rejection's reason."""

    items: list[NewEvent] = field(default_factory=list)
    owners: list[int] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    reasons: dict[int, str] = field(default_factory=dict)


def take(app: Interlock, stream: Stream, messages: Sequence[Message]) -> Intake:
    """Parse, map and prepare ``messages``; nothing here touches the store or the broker."""
    intake = Intake()
    for index, message in enumerate(messages):
        try:
            items = _prepare(app, stream, message)
        except _Rejected as exc:
            items = [_rejection(app, stream, message, exc)]
            intake.verdicts.append("rejected")
            intake.reasons[index] = exc.reason
        else:
            intake.verdicts.append("stored" if items else "ignored")
        intake.items.extend(items)
        intake.owners.extend([index] * len(items))
    return intake


class _Rejected(Exception):
    def __init__(self, reason: str, detail: str, errors: list[dict[str, str]] | None = None):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.errors = errors or []


def _prepare(app: Interlock, stream: Stream, message: Message) -> list[NewEvent]:
    try:
        body = parse_json(message.body)
    except BadJson as exc:
        raise _Rejected(exc.reason, str(exc)) from None
    if not isinstance(body, dict):
        raise _Rejected(
            "not_an_object", f"the message is JSON {type(body).__name__}, not an object"
        )
    topic = stream.topic_of(message, body)
    drift = monitor_of(app)  # vendor drift, as for webhooks
    drift.observe(stream.name, topic or "-", body)
    mapper = stream.mapper_for(topic)
    if mapper is None:
        return []
    try:
        mapped = mapper(body)
    except ContractViolation as exc:
        raise _Rejected("contract", str(exc), _strings(exc.errors)) from None
    except ValidationError as exc:
        errors = _field_errors(exc)
        raise _Rejected("contract", f"{exc.title} payload is invalid", errors) from None
    except Exception as exc:
        # A mapping that trips over the payload (a missing key, a bad value) is the
        # message's fault: it would fail the same way on every redelivery.
        raise _Rejected(
            "mapping_failed", f"mapping for topic {topic!r} failed with {type(exc).__name__}"
        ) from None
    events = [] if mapped is None else [mapped] if isinstance(mapped, Contract) else list(mapped)
    drift.sample(stream.name, topic, message.headers, body, events)
    correlation_id = message.headers.get("Interlock-Correlation-Id")
    if correlation_id is not None and not 0 < len(correlation_id) <= 200:
        correlation_id = None
    try:
        return [
            app.prepare(
                event,
                source=stream.name,
                idempotency_key=f"{message.key}#{i}" if i else message.key,
                correlation_id=correlation_id,
                occurred_at=message.published_at,
            )
            for i, event in enumerate(events)
        ]
    except LimitExceeded as exc:
        raise _Rejected("too_large", str(exc)) from None


def _rejection(app: Interlock, stream: Stream, message: Message, exc: _Rejected) -> NewEvent:
    log.warning(
        "stream.rejected",
        stream=stream.name,
        topic=message.topic,
        position=message.position,
        reason=exc.reason,
        detail=exc.detail,
    )
    record = StreamRejected(
        stream=stream.name,
        topic=message.topic[:200],
        position=message.position[:200],
        key=message.key[:200],
        reason=exc.reason,
        detail=exc.detail[:1000],
        errors=exc.errors[:50],
        deliveries=message.deliveries,
        body_bytes=len(message.body),
    )
    options: dict[str, Any] = {
        "source": stream.name,
        "idempotency_key": message.key,
        "subject": f"stream:{stream.name}",
        "occurred_at": message.published_at,
    }
    try:
        return app.prepare(record, **options)
    except LimitExceeded:  # an app with a tiny payload limit: keep the record, shortened
        short = record.model_copy(update={"detail": exc.detail[:120], "errors": []})
        return app.prepare(short, **options)


def _field_errors(exc: ValidationError) -> list[dict[str, str]]:
    """Field-level errors without the input values (they may be personal data)."""
    return [
        {
            "field": ".".join(str(p) for p in err["loc"]) or "(root)",
            "type": err["type"],
            "message": err["msg"],
        }
        for err in exc.errors(include_input=False, include_url=False)
    ]


def _strings(errors: list[dict[str, object]]) -> list[dict[str, str]]:
    return [{k: str(v) for k, v in e.items()} for e in errors]
