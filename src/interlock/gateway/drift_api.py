"""``GET /api/v1/drift``: vendor drift findings and shape profiles (viewer), and their metrics.

Findings are read from the store, so every gateway replica answers the same;
examples are shapes with every value masked (see :mod:`interlock.drift`).
"""

from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from pydantic import Field

from interlock.app import Interlock
from interlock.drift import monitor_of
from interlock.errors import StoreError
from interlock.gateway.auth import Auth
from interlock.gateway.schemas import Model, at
from interlock.stores.contract_records import DriftFinding, StoredProfile
from interlock.tokens import TokenRow

_PROBLEM = {"content": {"application/problem+json": {"schema": {"type": "object"}}}}
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Invalid parameters", **_PROBLEM},
    401: {"description": "Missing, unknown or revoked token", **_PROBLEM},
    403: {"description": "The token's role is too weak", **_PROBLEM},
    503: {"description": "The store is unavailable", **_PROBLEM},
}

Kind = Literal["new_field", "vanished_field", "new_enum_value", "type_change", "nullability_change"]


class DriftFindingOut(Model):
    id: int
    source: str
    event_type: str = Field(description="The vendor's event type (the webhook's topic).")
    kind: Kind
    path: str = Field(description="The field path; `[]` marks list items.")
    detail: str = Field(description="The new type, the new enum value, `null`, or empty.")
    example: Any = Field(description="The first payload that showed it, values masked.")
    count: int = Field(description="Payloads that showed it (for a vanished field: without it).")
    first_seen: datetime
    last_seen: datetime

    @classmethod
    def of(cls, f: DriftFinding) -> "DriftFindingOut":
        return cls(
            id=f.id,
            source=f.source,
            event_type=f.event_type,
            kind=f.kind,
            path=f.path,
            detail=f.detail,
            example=f.example,
            count=f.count,
            first_seen=at(f.first_seen),
            last_seen=at(f.last_seen),
        )


class FieldShapeOut(Model):
    types: list[str]
    seen: int
    nulls: int
    null_rate: float
    values: list[str] | None = Field(description="Enum values seen; null when not enum-like.")
    first_seen: datetime
    last_seen: datetime


class ProfileOut(Model):
    source: str
    event_type: str
    events: int
    first_seen: datetime
    last_seen: datetime
    fields: dict[str, FieldShapeOut]

    @classmethod
    def of(cls, p: StoredProfile) -> "ProfileOut":
        data = p.profile
        return cls(
            source=p.source,
            event_type=p.event_type,
            events=data["events"],
            first_seen=at(data["first_seen"]),
            last_seen=at(data["last_seen"]),
            fields={
                path: FieldShapeOut(
                    types=f["types"],
                    seen=f["seen"],
                    nulls=f["nulls"],
                    null_rate=round(f["nulls"] / f["seen"], 4) if f["seen"] else 0.0,
                    values=f["values"],
                    first_seen=at(f["first_seen"]),
                    last_seen=at(f["last_seen"]),
                )
                for path, f in data["fields"].items()
            },
        )


def build_drift_api(app: Interlock, auth: Auth) -> APIRouter:
    """The ``/api/v1/drift`` routes of ``app``."""
    viewer = Depends(auth.require("viewer"))
    api = APIRouter(prefix="/api/v1", tags=["drift"], responses=_ERRORS)

    @api.get("/drift", summary="Vendor drift findings, newest first")
    def list_drift(
        _: Annotated[TokenRow, viewer],
        source: Annotated[str | None, Query(description="Only this source")] = None,
        event_type: Annotated[str | None, Query(description="Only this event type")] = None,
        kind: Annotated[Kind | None, Query(description="Only this kind of change")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> list[DriftFindingOut]:
        rows = app.store.drift_findings(
            source=source, event_type=event_type, kind=kind, limit=limit
        )
        return [DriftFindingOut.of(f) for f in rows]

    @api.get("/drift/profiles", summary="Shape profiles per source and event type")
    def list_profiles(
        _: Annotated[TokenRow, viewer],
        source: Annotated[str | None, Query(description="Only this source")] = None,
    ) -> list[ProfileOut]:
        rows = app.store.drift_profiles()
        return [ProfileOut.of(p) for p in rows if source is None or p.source == source]

    return api


class DriftCollector:
    """``interlock_drift_findings`` and ``interlock_drift_payloads`` (store) and
    ``interlock_drift_flagged`` (payloads of this process that showed drift)."""

    def __init__(self, app: Interlock) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        flagged = CounterMetricFamily(
            "interlock_drift_flagged",
            "Verified webhook payloads that showed a drift finding (valid ones are accepted "
            "and flagged), by source.",
            labels=["source"],
        )
        for source, n in sorted(monitor_of(self.app).flagged.items()):
            flagged.add_metric([source], n)
        yield flagged
        try:
            rows = self.app.store.drift_findings(limit=100_000)
        except StoreError:
            return
        findings = GaugeMetricFamily(
            "interlock_drift_findings",
            "Drift findings raised, by source, event type and kind.",
            labels=["source", "event_type", "kind"],
        )
        payloads = GaugeMetricFamily(
            "interlock_drift_payloads",
            "Payloads that showed a drift finding, by source, event type and kind.",
            labels=["source", "event_type", "kind"],
        )
        totals: dict[tuple[str, str, str], list[int]] = {}
        for f in rows:
            entry = totals.setdefault((f.source, f.event_type, f.kind), [0, 0])
            entry[0] += 1
            entry[1] += f.count
        for labels, (n, count) in sorted(totals.items()):
            findings.add_metric(list(labels), n)
            payloads.add_metric(list(labels), count)
        yield findings
        yield payloads
