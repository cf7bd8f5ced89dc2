"""Error semantics of contracts and flows, and version markers, applied to one delivery.

Two failures have declared outcomes (``on_missing`` and ``on_invalid`` on the flow,
else on the contract):

=========  ======================================================================
policy     what the delivery does
=========  ======================================================================
``retry``  retried with the flow's backoff; dead-lettered when the budget is spent
``dead``   dead-lettered at once (class ``missing_record`` or ``contract_violation``)
``skip``   ends ``skipped`` with its reason; its lane moves on
``park``   waits (status ``waiting``, in the store) until a matching event arrives
=========  ======================================================================

``park`` for a missing record waits for the event named by the
:class:`~interlock.errors.MissingRecord` (``wait_for`` and ``match``) and then runs the
flow again; for an invalid event it waits for the next event of the same type about
the same subject, which supersedes it (the parked one ends ``skipped``). A park that
reaches ``park_timeout`` is dead-lettered.

Version markers: a contract's ``marker`` field orders the versions of an entity (its
subject). Before a flow runs, the event's marker is compared with the last one the
flow applied for that entity; an older event (or another event with the same marker)
is *stale*: ``on_stale="skip"`` ends it ``skipped``, ``"park"`` holds it as a dead
letter of class ``stale`` that does not block its lane, for an operator to discard
or to replay (a replay applies it regardless). After the flow succeeds the marker
advances, never backwards.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from interlock.contracts import Contract
from interlock.durations import seconds
from interlock.errors import ContractViolation, MissingRecord
from interlock.flows import Flow
from interlock.outcomes import dead
from interlock.redaction import Redactor
from interlock.retries import backoff
from interlock.stores.base import Claimed, Outcome, Store, WaitSpec

PARK_INVALID = "park:invalid"
PARK_MISSING = "park:missing"
MAX_PARKS = 5  # a record still missing after this many matching events: dead-lettered


async def run_delivery(
    c: Claimed,
    flow: Flow,
    store: Store,
    now: float,
    redactor: Redactor,
    call: Callable[[Contract], Awaitable[None]],
) -> Outcome | None:
    """Load the event for ``flow`` and ``call`` the handler, unless the event was
    superseded while parked, or is stale; returns that early outcome, else None."""
    if PARK_INVALID in c.steps:
        woke = c.steps[PARK_INVALID]
        if woke is None:
            return dead(
                c,
                flow,
                now,
                now,
                "contract_violation",
                "parked invalid event: no newer event arrived before park_timeout",
                None,
                redactor,
            )
        return _skipped(c, now, f"superseded by {woke['event']['id']} while parked (invalid)")
    event = flow.contract.load(c.event.data, c.event.version)
    marker = flow.contract.__marker__
    if marker is None:
        await call(event)
        return None
    entity = c.event.subject or c.lane
    value = marker_value(getattr(event, marker), marker)
    last = store.marker_of(flow.name, entity)
    replayed = c.chain > 1  # an operator replayed it: apply it regardless
    if (
        last is not None
        and not replayed
        and (last.value > value or (last.value == value and last.event_id != c.event.id))
    ):
        reason = redactor.text(  # the subject may be personal data (an email)
            f"stale: {entity} is at {marker}={_shown(last.value)} (event {last.event_id}); "
            f"this event has {_shown(value)}"
        )
        if flow.on_stale == "skip":
            return _skipped(c, now, reason)
        outcome = dead(c, flow, now, now, "stale", reason, None, redactor)
        outcome.skip_lane = True  # held for an operator, without blocking newer events
        return outcome
    await call(event)
    await store.advance_marker(flow.name, entity, value, c.event.id, now=now)
    return None


def on_error(
    c: Claimed,
    flow: Flow,
    started: float,
    now: float,
    exc: Exception,
    redactor: Redactor,
    rand: float,
) -> Outcome | None:
    """The outcome the declared policy gives a ``MissingRecord`` or a ``ContractViolation``;
    None for every other error (the usual retry rules apply)."""
    if isinstance(exc, MissingRecord):
        policy, error_class = flow.missing_policy, "missing_record"
    elif isinstance(exc, ContractViolation):
        policy, error_class = flow.invalid_policy, "contract_violation"
    else:
        return None
    reason = redactor.text(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")[
        :500
    ]
    if policy == "skip":
        return _skipped(c, now, reason, error_class)
    if policy == "park":
        wait = _park(c, flow, exc, now)
        if wait is not None:
            return Outcome(
                c.delivery_id,
                c.fence,
                c.flow,
                c.lane,
                "wait",
                started,
                now,
                error_class=error_class,
                reason=f"parked: {reason}; waiting for {wait.event_type} {sorted(wait.match)}",
                wait=wait,
            )
        if isinstance(exc, ContractViolation) or _parks(c) >= MAX_PARKS or _timed_out(c):
            return dead(c, flow, started, now, error_class, reason, exc, redactor)
        policy = "retry"  # nothing named to wait for: retry instead
    if policy == "retry" and c.attempts + 1 < flow.retry.attempts:
        delay = backoff(c.attempts + 1, flow.retry, rand)
        limit = flow.retry.max_elapsed_s
        if limit is None or now + delay - c.first_attempt_at <= limit:
            return Outcome(
                c.delivery_id,
                c.fence,
                c.flow,
                c.lane,
                "retry",
                started,
                now,
                error_class=error_class,
                reason=reason,
                delay=delay,
                due_at=now + delay,
                counts=True,
            )
    return dead(c, flow, started, now, error_class, reason, exc, redactor)


def _park(c: Claimed, flow: Flow, exc: Exception, now: float) -> WaitSpec | None:
    deadline = None if flow.park_timeout is None else now + seconds(flow.park_timeout)
    if isinstance(exc, MissingRecord):
        if exc.wait_for is None or _timed_out(c) or _parks(c) >= MAX_PARKS:
            return None
        n = _parks(c) + 1
        step = PARK_MISSING if n == 1 else f"{PARK_MISSING}#{n}"
        return WaitSpec(step, exc.wait_for.event_type(), exc.match, deadline, now)
    field = flow.contract.__subject__
    value = (
        c.event.data.get(field) if field is not None and isinstance(c.event.data, dict) else None
    )
    if value is None:
        return None  # no subject to recognise a newer event by
    # Events received from just after this one count (this one matches itself).
    since = max(now, c.event.received_at) + 1e-6
    return WaitSpec(PARK_INVALID, c.event.type, {field: value}, deadline, since)  # type: ignore[dict-item]


def _parks(c: Claimed) -> int:
    return sum(1 for name in c.steps if name.startswith(PARK_MISSING))


def _timed_out(c: Claimed) -> bool:
    """The last park for a missing record ended by its timeout, not by an event."""
    parks = [name for name in c.steps if name.startswith(PARK_MISSING)]
    return bool(parks) and c.steps[parks[-1]] is None


def _skipped(c: Claimed, now: float, reason: str, error_class: str | None = None) -> Outcome:
    return Outcome(
        c.delivery_id,
        c.fence,
        c.flow,
        c.lane,
        "skipped",
        now,
        now,
        error_class=error_class,
        reason=reason,
        counts=True,  # the attempt that decided it
    )


def marker_value(value: Any, field: str) -> float:
    """A marker as a number: numbers as they are, datetimes and ISO 8601 strings as epoch
    seconds, numeric strings as numbers."""
    if isinstance(value, bool) or value is None:
        raise ContractViolation(f"version marker {field!r} is {value!r}: it must order versions")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
        try:
            return datetime.fromisoformat(value).timestamp()
        except ValueError:
            pass
    raise ContractViolation(
        f"version marker {field!r} must be a number, a datetime or an ISO 8601 time"
    )


def _shown(value: float) -> str:
    return str(int(value)) if value.is_integer() else str(value)
