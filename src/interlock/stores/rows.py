"""Rows of the event, delivery, attempt and audit tables as records, the same for every
store (SQLite and PostgreSQL select the same columns in the same order), and how a
wait's ``match`` is tested against an event."""

from __future__ import annotations

from typing import Any

import orjson

from interlock.events import Event
from interlock.stores.base import AttemptRow, AuditRow, DeliveryRow


def event_of(row: Any) -> Event:
    return Event(
        seq=row[0],
        id=row[1],
        type=row[2],
        version=row[3],
        source=row[4],
        subject=row[5],
        idempotency_key=row[6],
        correlation_id=row[7],
        causation_id=row[8],
        occurred_at=row[9],
        received_at=row[10],
        data=orjson.loads(row[11]),
    )


def delivery_of(row: Any) -> DeliveryRow:
    return DeliveryRow(
        id=row[0],
        event_id=row[1],
        event_type=row[2],
        flow=row[3],
        lane=row[4],
        status=row[5],
        attempts=row[6],
        runs=row[7],
        chain=row[8],
        created_at=row[9],
        due_at=row[10],
        finished_at=row[11],
        error_class=row[12],
        reason=row[13],
        context=None if row[14] is None else orjson.loads(row[14]),
        subject=row[15],
    )


def attempt_of(row: Any) -> AttemptRow:
    calls = row[10]
    return AttemptRow(
        row[0],
        row[1],
        row[2],
        row[3],
        row[4],
        row[5],
        row[6],
        row[7],
        row[8],
        row[9],
        [] if calls is None else orjson.loads(calls),
    )


def audit_of(row: Any) -> AuditRow:
    return AuditRow(row[0], row[1], row[2], row[3], row[4], row[5], orjson.loads(row[6]))


_MISSING = object()


def matches(ev: Event, match: dict[str, Any]) -> bool:
    """Whether every dotted path of ``match`` has that value in the event's data."""
    return all(_lookup(ev.data, path) == value for path, value in match.items())


def _lookup(data: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(data, dict) or part not in data:
            return _MISSING
        data = data[part]
    return data
