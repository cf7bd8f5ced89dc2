"""Keep PII and secrets out of anything a person reads.

Two tools: :func:`redact_payload` masks PII-marked fields in a payload, and
:class:`Redactor` scrubs known sensitive values out of free text (exception
messages, log fields) — the way a message like ``"no user jane@acme.test"``
loses the address before it is stored as an attempt's reason.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from interlock.app import Interlock
    from interlock.contracts import Contract
    from interlock.events import Event
    from interlock.stores.base import AttemptRow, DeliveryRow, Trace

MASK = "[redacted]"
_MIN_SCRUB = 3  # values shorter than this are too common to scrub from text safely


def redact_payload(data: Any, paths: Iterable[tuple[str, ...]]) -> Any:
    """A copy of ``data`` with the values at ``paths`` replaced by ``[redacted]``."""
    result = _copy(data)
    for path in paths:
        _mask(result, path)
    return result


def sensitive_values(data: Any, paths: Iterable[tuple[str, ...]]) -> list[str]:
    """The string forms of the values found at ``paths`` (for scrubbing free text)."""
    found: list[str] = []
    for path in paths:
        for value in _walk(data, path):
            if value is None:
                continue
            if isinstance(value, dict | list):
                found.extend(str(v) for v in _leaves(value))
            else:
                found.append(str(value))
    return [v for v in found if len(v) >= _MIN_SCRUB]


class Redactor:
    """Scrubs a fixed set of sensitive strings out of text and structures."""

    __slots__ = ("_values",)

    def __init__(self, values: Iterable[str] = ()) -> None:
        # Longest first, so a value containing another is masked whole.
        self._values = sorted({v for v in values if len(v) >= _MIN_SCRUB}, key=len, reverse=True)

    def __bool__(self) -> bool:
        return bool(self._values)

    def text(self, text: str) -> str:
        for value in self._values:
            if value in text:
                text = text.replace(value, MASK)
        return text

    def value(self, value: Any) -> Any:
        if not self._values:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return value


def _copy(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _copy(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_copy(v) for v in data]
    return data


def _mask(data: Any, path: tuple[str, ...]) -> None:
    if not path:
        return
    if isinstance(data, list):
        for item in data:
            _mask(item, path)
        return
    if not isinstance(data, dict) or path[0] not in data:
        return
    if len(path) == 1:
        if data[path[0]] is not None:
            data[path[0]] = MASK
    else:
        _mask(data[path[0]], path[1:])


def _walk(data: Any, path: tuple[str, ...]) -> Iterator[Any]:
    if not path:
        yield data
        return
    if isinstance(data, list):
        for item in data:
            yield from _walk(item, path)
    elif isinstance(data, dict) and path[0] in data:
        yield from _walk(data[path[0]], path[1:])


def _leaves(data: Any) -> Iterator[Any]:
    if isinstance(data, dict):
        for v in data.values():
            yield from _leaves(v)
    elif isinstance(data, list):
        for v in data:
            yield from _leaves(v)
    elif data is not None:
        yield data


def mask_event(event: Event, contract: type[Contract] | None) -> tuple[Event, Redactor]:
    """``event`` with its contract's PII fields masked (subject included), and a redactor
    that scrubs those values from anything derived from it (step results, say)."""
    if contract is None:
        return event, Redactor()
    paths = contract.pii_paths()
    if not paths:
        return event, Redactor()
    redactor = Redactor(sensitive_values(event.data, paths))
    subject = redactor.text(event.subject) if event.subject else event.subject
    masked = dataclasses.replace(event, data=redact_payload(event.data, paths), subject=subject)
    return masked, redactor


def masked_trace(trace: Trace, app: Interlock | None) -> Trace:
    """The trace with PII masked: event payloads and subjects by their contracts, and the
    events' PII values scrubbed from step results, reasons and connector call paths."""
    if app is None:
        return trace
    events = []
    redactors: dict[str, Redactor] = {}
    for event in trace.events:
        masked, redactor = mask_event(event, app.contracts.get(event.type))
        events.append(masked)
        redactors[event.id] = redactor
    by_delivery = {d.id: redactors.get(d.event_id, Redactor()) for d in trace.deliveries}
    deliveries = [
        scrub_delivery(d, redactors.get(d.event_id, Redactor())) for d in trace.deliveries
    ]
    steps = [
        dataclasses.replace(s, result=by_delivery.get(s.delivery_id, Redactor()).value(s.result))
        for s in trace.steps
    ]
    attempts = [
        scrub_attempt(a, by_delivery.get(a.delivery_id, Redactor())) for a in trace.attempts
    ]
    return dataclasses.replace(
        trace, events=events, deliveries=deliveries, attempts=attempts, steps=steps
    )


def scrub_attempt(row: AttemptRow, redactor: Redactor) -> AttemptRow:
    """``row`` with ``redactor``'s values scrubbed from its reason and its calls' paths."""
    if not redactor:
        return row
    calls = [{**c, "path": redactor.text(str(c.get("path", "")))} for c in row.calls]
    return dataclasses.replace(row, reason=redactor.value(row.reason), calls=calls)


def scrub_delivery(row: DeliveryRow, redactor: Redactor) -> DeliveryRow:
    """``row`` with ``redactor``'s values scrubbed from its subject, lane, reason and context."""
    if not redactor:
        return row
    return dataclasses.replace(
        row,
        subject=redactor.value(row.subject),
        lane=redactor.text(row.lane),
        reason=redactor.value(row.reason),
        context=redactor.value(row.context),
    )
