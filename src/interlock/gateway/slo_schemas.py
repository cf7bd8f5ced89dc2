"""REST bodies for SLOs, business metrics and alerts (``/api/v1/flows``, ``/api/v1/alerts``).

Built from :mod:`interlock.observability`'s dataclasses; times are RFC 3339 in UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from interlock.observability.business import MetricValue
from interlock.observability.health import FlowHealth, SloStatus
from interlock.stores.analytics import AlertRow

AlertState = Literal["firing", "resolved"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _at(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


class MetricDeclOut(_Model):
    """A flow's declared business metric."""

    name: str
    kind: Literal["duration", "value"]
    start: str | None
    end: str | None
    value: str | None
    unit: str
    aggregate: str
    window_s: float


class AlertOut(_Model):
    id: int
    flow: str
    severity: str = Field(description="The policy rule that fired it, e.g. page or ticket.")
    state: AlertState
    fired_at: datetime
    resolved_at: datetime | None
    updated_at: datetime = Field(description="The last evaluation that saw it firing.")
    burn_long: float = Field(description="Burn rate over the rule's long window.")
    burn_short: float = Field(description="Burn rate over the rule's short window.")
    long_s: float
    short_s: float
    factor: float = Field(description="The burn rate both windows reached to fire it.")
    budget_remaining: float = Field(description="Error budget left over the SLO window.")
    summary: str

    @classmethod
    def of(cls, a: AlertRow) -> AlertOut:
        return cls(
            id=a.id,
            flow=a.flow,
            severity=a.severity,
            state="firing" if a.state == "firing" else "resolved",
            fired_at=datetime.fromtimestamp(a.fired_at, UTC),
            resolved_at=_at(a.resolved_at),
            updated_at=datetime.fromtimestamp(a.updated_at, UTC),
            burn_long=a.burn_long,
            burn_short=a.burn_short,
            long_s=a.long_s,
            short_s=a.short_s,
            factor=a.factor,
            budget_remaining=a.budget_remaining,
            summary=a.summary,
        )


class AlertPage(_Model):
    items: list[AlertOut]


class BurnRateOut(_Model):
    window: str
    seconds: float
    rate: float = Field(description="1.0 spends the error budget exactly over the SLO window.")
    good: int
    bad: int


class SloStatusOut(_Model):
    target: float
    within_s: float
    window_s: float
    good: int = Field(description="Deliveries in the SLO window that succeeded within bound.")
    bad: int = Field(description="Dead, late, or unfinished past the bound.")
    sli: float | None
    budget_remaining: float = Field(description="1 untouched, 0 spent, below 0 overspent.")
    burn: list[BurnRateOut]
    alerts: list[AlertOut]
    status: str = Field(
        description="ok, no_data, exhausted, or the severity of the worst firing alert."
    )

    @classmethod
    def of(cls, s: SloStatus) -> SloStatusOut:
        return cls(
            target=s.target,
            within_s=s.within_s,
            window_s=s.window_s,
            good=s.good,
            bad=s.bad,
            sli=s.sli,
            budget_remaining=s.budget_remaining,
            burn=[
                BurnRateOut(window=b.window, seconds=b.seconds, rate=b.rate, good=b.good, bad=b.bad)
                for b in s.burn
            ],
            alerts=[AlertOut.of(a) for a in s.alerts],
            status=s.status,
        )


class MetricValueOut(_Model):
    name: str
    unit: str
    aggregate: str
    window_s: float
    value: float | None
    samples: int

    @classmethod
    def of(cls, m: MetricValue) -> MetricValueOut:
        return cls(
            name=m.name,
            unit=m.unit,
            aggregate=m.aggregate,
            window_s=m.window_s,
            value=m.value,
            samples=m.samples,
        )


class FlowHealthOut(_Model):
    slo: SloStatusOut | None
    metric: MetricValueOut | None

    @classmethod
    def of(cls, h: FlowHealth) -> FlowHealthOut:
        return cls(
            slo=None if h.slo is None else SloStatusOut.of(h.slo),
            metric=None if h.metric is None else MetricValueOut.of(h.metric),
        )
