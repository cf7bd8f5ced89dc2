"""What the store keeps for contracts: drift profiles and findings, payload samples
(fixture candidates) and version markers. Frozen records, as everywhere in the store."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class StoredProfile:
    """The merged shape profile of one (source, event type), in its JSON form
    (see :mod:`interlock.shapes`)."""

    source: str
    event_type: str
    profile: dict[str, Any]


@dataclass(frozen=True, slots=True)
class DriftFinding:
    """A change in a vendor's payload shape, raised once per (source, event type, kind,
    path, detail) with a redacted example and how many payloads showed it."""

    id: int
    source: str
    event_type: str
    kind: str
    path: str
    detail: str
    example: Any
    count: int
    first_seen: float
    last_seen: float


@dataclass(frozen=True, slots=True)
class FindingUpdate:
    """A new finding, or more payloads showing a known one (``count`` is added)."""

    source: str
    event_type: str
    kind: str
    path: str
    detail: str
    example: Any
    count: int
    first_seen: float
    last_seen: float


@dataclass(frozen=True, slots=True)
class Sample:
    """A received payload kept as a fixture candidate, PII already replaced."""

    source: str
    topic: str | None
    headers: dict[str, str]
    payload: Any
    received_at: float
    id: int = 0


@dataclass(frozen=True, slots=True)
class DriftBatch:
    """One flush of a drift monitor: profile deltas, finding updates and samples."""

    profiles: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    findings: list[FindingUpdate] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    keep_samples: int = 20  # per (source, topic): older ones are deleted


@dataclass(frozen=True, slots=True)
class Marker:
    """The last applied version of an entity, per flow: its ordering value and event."""

    flow: str
    entity: str
    value: float
    event_id: str
    updated_at: float
