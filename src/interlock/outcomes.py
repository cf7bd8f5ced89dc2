"""How one run of a delivery ended, as an :class:`~interlock.stores.base.Outcome`.

Pure builders the worker calls after a run: parked (sleep or wait), failed
(retry with backoff, or dead-letter) and the dead letter's redacted context.
"""

from __future__ import annotations

import contextlib
import traceback
from collections.abc import Sequence
from typing import Any

import structlog

from interlock.errors import ContractViolation
from interlock.flows import Flow
from interlock.redaction import Redactor, redact_payload, sensitive_values
from interlock.retries import decide
from interlock.steps import Suspend
from interlock.stores.base import Claimed, Outcome, WaitSpec

log = structlog.get_logger("interlock.worker")


def suspended(c: Claimed, started: float, now: float, s: Suspend) -> Outcome:
    """A run that parked itself: a durable sleep or a wait for an event."""
    if s.wait is not None:
        w = s.wait
        return Outcome(
            c.delivery_id,
            c.fence,
            c.flow,
            c.lane,
            "wait",
            started,
            now,
            reason=f"waiting for {w.event_type} matching {sorted(w.match)}",
            wait=WaitSpec(w.step, w.event_type, w.match, w.deadline, w.since),
        )
    return Outcome(
        c.delivery_id,
        c.fence,
        c.flow,
        c.lane,
        "sleep",
        started,
        now,
        due_at=s.until,
        delay=None if s.until is None else max(0.0, s.until - now),
        reason="sleeping",
    )


def failed(
    c: Claimed,
    flow: Flow,
    started: float,
    now: float,
    exc: Exception,
    redactor: Redactor,
    *,
    rand: float,
    max_reason: int,
) -> Outcome:
    """A run that raised: retried after a backoff, or dead-lettered (see ``retries.decide``)."""
    decision = decide(
        exc,
        flow.retry,
        attempt=c.attempts + 1,
        first_attempt_at=c.first_attempt_at,
        now=now,
        rand=rand,
    )
    reason = reason_of(exc, redactor, max_reason)
    if decision.kind == "dead":
        return dead(c, flow, started, now, decision.error_class, reason, exc, redactor)
    log.info(
        "delivery.retry",
        flow=c.flow,
        delivery_id=c.delivery_id,
        event_id=c.event.id,
        error_class=decision.error_class,
        reason=reason,
        delay=round(decision.delay, 3),
    )
    return Outcome(
        c.delivery_id,
        c.fence,
        c.flow,
        c.lane,
        "retry",
        started,
        now,
        error_class=decision.error_class,
        reason=reason,
        delay=decision.delay,
        due_at=now + decision.delay,
        counts=decision.counts,
    )


def dead(
    c: Claimed,
    flow: Flow,
    started: float,
    now: float,
    error_class: str,
    reason: str,
    exc: BaseException | None,
    redactor: Redactor,
) -> Outcome:
    """A dead letter, with its redacted context (payload, reason, traceback)."""
    context: dict[str, Any] = {
        "event_id": c.event.id,
        "event_type": c.event.type,
        "subject": None if c.event.subject is None else redactor.text(c.event.subject),
        "correlation_id": c.event.correlation_id,
        "payload": redactor.value(redact_payload(c.event.data, flow.contract.pii_paths())),
        "attempts": c.attempts + 1,
        "error_class": error_class,
        "reason": reason,
        "on_dead": flow.on_dead,
    }
    if exc is not None:
        tb = traceback.format_exception(type(exc), exc, exc.__traceback__, limit=-8)
        context["traceback"] = redactor.text("".join(tb))[-8000:]
    if isinstance(exc, ContractViolation):
        context["errors"] = exc.errors
    log.warning(
        "delivery.dead",
        flow=c.flow,
        delivery_id=c.delivery_id,
        event_id=c.event.id,
        error_class=error_class,
        reason=reason,
        on_dead=flow.on_dead,
    )
    return Outcome(
        c.delivery_id,
        c.fence,
        c.flow,
        c.lane,
        "dead",
        started,
        now,
        error_class=error_class,
        reason=reason,
        counts=True,
        skip_lane=flow.on_dead == "skip",
        context=context,
    )


def reason_of(exc: BaseException, redactor: Redactor, max_reason: int) -> str:
    """One redacted line: the exception's type and the first line of its message."""
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    reason = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    reason = redactor.text(reason)
    if len(reason) > max_reason:
        reason = reason[: max_reason - 1] + "…"
    return reason


def redactor_for(c: Claimed, flow: Flow, pii: Sequence[tuple[str, ...]]) -> Redactor:
    """Scrubs this event's PII values (as stored, and as upcast) from free text."""
    values = sensitive_values(c.event.data, pii)
    if c.event.version != flow.contract.__version__:
        # Stored under an older version, its PII may sit elsewhere: take the upcast form's too.
        # (A broken upcast is reported by the run itself.)
        with contextlib.suppress(Exception):
            upcast = flow.contract.upcast(c.event.data, c.event.version)
            values += sensitive_values(upcast, pii)
    return Redactor(values)
