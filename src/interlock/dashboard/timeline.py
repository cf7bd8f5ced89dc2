"""The timeline of a trace: each event, each of its deliveries, and what happened to it.

Built from :meth:`Store.trace` with PII masked by :func:`interlock.redaction.masked_trace`
(exactly what ``GET /api/v1/trace/{query}`` answers), grouped for reading: an event,
then per delivery its attempts (outcome, error class, reason, the retry delay chosen),
its steps (with their redacted results), the connector calls each step made (method,
path, status, duration, idempotency key) and the operator actions on it (replays and
discards, by whom and why), in time order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from interlock.redaction import masked_trace

if TYPE_CHECKING:
    from interlock.app import Interlock
    from interlock.events import Event
    from interlock.stores.base import DeliveryRow


@dataclass(frozen=True, slots=True)
class Entry:
    """One moment in a delivery's life."""

    at: float
    kind: str  # attempt | step | action
    title: str
    outcome: str | None = None  # succeeded, retry, dead, sleep, wait, released; replay, discard
    error_class: str | None = None
    reason: str | None = None
    delay: float | None = None
    worker: str | None = None
    result: Any = None
    has_result: bool = False
    actor: str | None = None
    # Connector calls: on a step, those it made in the attempt that recorded it; on an
    # attempt, the rest (outside steps, or in steps that failed in that attempt).
    calls: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class DeliveryView:
    row: DeliveryRow
    entries: list[Entry] = field(default_factory=list)


@dataclass(slots=True)
class EventView:
    event: Event
    deliveries: list[DeliveryView] = field(default_factory=list)


def build_timeline(app: Interlock, query: str) -> list[EventView]:
    """The masked trace of ``query`` (a subject with or without its type prefix, an event
    id, a correlation id or a delivery id), grouped by event and delivery."""
    trace = masked_trace(app.store.trace(query), app)
    views = {e.id: EventView(e) for e in trace.events}
    deliveries: dict[int, DeliveryView] = {}
    for row in trace.deliveries:
        view = DeliveryView(row)
        deliveries[row.id] = view
        if row.event_id in views:
            views[row.event_id].deliveries.append(view)
    steps: dict[tuple[int, str], Entry] = {}
    for s in trace.steps:
        if s.delivery_id in deliveries:
            entry = Entry(s.recorded_at, "step", f"step {s.name}", result=s.result, has_result=True)
            steps[(s.delivery_id, s.name)] = entry
            deliveries[s.delivery_id].entries.append(entry)
    for a in trace.attempts:
        if a.delivery_id not in deliveries:
            continue
        attempt = Entry(
            a.started_at,
            "attempt",
            f"attempt {a.number}" + (f" (replay {a.chain - 1})" if a.chain > 1 else ""),
            outcome=a.outcome,
            error_class=a.error_class,
            reason=a.reason,
            delay=a.delay,
            worker=a.worker,
        )
        deliveries[a.delivery_id].entries.append(attempt)
        for call in a.calls:
            step = steps.get((a.delivery_id, str(call.get("step"))))
            recorded_here = step is not None and a.started_at <= step.at <= a.finished_at
            (step.calls if step is not None and recorded_here else attempt.calls).append(call)
    for r in trace.audit:
        target = r.target.removeprefix("delivery:")
        if target.isdigit() and int(target) in deliveries:
            deliveries[int(target)].entries.append(
                Entry(
                    r.at,
                    "action",
                    r.action,
                    outcome=r.action.rpartition(".")[2],
                    reason=r.reason,
                    actor=r.actor,
                )
            )
    for view in deliveries.values():
        view.entries.sort(key=lambda e: (e.at, e.kind != "attempt"))
    return list(views.values())
