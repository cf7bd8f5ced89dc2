"""The event envelope: an immutable business fact plus where it came from.

The envelope maps onto CloudEvents 1.0 (``id``, ``type``, ``source``,
``subject``, ``time``, ``data``) with interlock's extensions for the contract
version, idempotency key, correlation and causation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Event:
    """One stored event. ``data`` is the contract's JSON form at ``version``."""

    id: str
    type: str
    version: int
    source: str
    data: dict[str, Any]
    correlation_id: str
    occurred_at: float
    received_at: float
    subject: str | None = None
    idempotency_key: str | None = None
    causation_id: str | None = None
    seq: int = field(default=0, compare=False)

    def to_cloudevent(self) -> dict[str, Any]:
        """This event as a CloudEvents 1.0 structured-mode JSON object."""
        out: dict[str, Any] = {
            "specversion": "1.0",
            "id": self.id,
            "type": self.type,
            "source": self.source,
            "time": iso(self.occurred_at),
            "datacontenttype": "application/json",
            "dataschema": f"urn:interlock:contract:{self.type}:v{self.version}",
            "interlockversion": self.version,
            "correlationid": self.correlation_id,
            "data": self.data,
        }
        if self.subject is not None:
            out["subject"] = self.subject
        if self.causation_id is not None:
            out["causationid"] = self.causation_id
        if self.idempotency_key is not None:
            out["idempotencykey"] = self.idempotency_key
        return out


def iso(ts: float) -> str:
    """An epoch timestamp as RFC 3339 UTC with milliseconds."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
