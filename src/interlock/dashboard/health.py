"""The overview's figures: one row per flow, totals across flows, alerts firing.

Deliveries in and out, success rate, p95 end-to-end lag and retries are those of
the last hour (:func:`interlock.observability.flow_stats`, read from the store, so
every process agrees); dead letters are those waiting now; the SLO status and the
error budget left come from :func:`interlock.observability.slo_report`; the
sparkline is deliveries in per 2-minute interval over the hour. The state is the
REST API's: ``blocked`` when a dead letter holds a lane, ``failing`` with dead
letters, ``active`` with work in flight, else ``idle``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from interlock.dashboard.charts import sparkline
from interlock.observability import FlowHealth, flow_series, flow_stats, slo_report

if TYPE_CHECKING:
    from interlock.app import Interlock

IN_FLIGHT = ("queued", "pending", "running", "waiting")
WINDOW = 3600.0
SPARK_BUCKET = 120.0


@dataclass(frozen=True, slots=True)
class FlowRow:
    name: str
    owner: str
    event: str
    state: str
    events_in: int  # in the window, like the four below
    succeeded: int
    success_rate: float | None
    p95_lag: float | None
    retries: int
    died: int  # dead-lettered in the window
    dead: int  # dead letters waiting now
    in_flight: int
    slo: str | None  # the objective, e.g. "99.5 % within 2m"
    slo_status: str | None  # ok, no_data, ticket, page, exhausted
    budget_left: float | None
    metric: str | None  # the business metric's current value, formatted
    sparkline: str


@dataclass(frozen=True, slots=True)
class Totals:
    events_in: int
    succeeded: int
    dead: int
    in_flight: int
    retries: int
    success_rate: float | None


def flow_state(counts: dict[str, int], blocked: bool) -> str:
    if blocked:
        return "blocked"
    if counts.get("dead"):
        return "failing"
    if any(counts.get(s) for s in IN_FLIGHT):
        return "active"
    return "idle"


def success_rate(succeeded: int, dead: int) -> float | None:
    """The share of finished deliveries that succeeded (None before any finished)."""
    finished = succeeded + dead
    return None if finished == 0 else succeeded / finished


def metric_text(health: FlowHealth | None) -> str | None:
    metric = None if health is None else health.metric
    if metric is None:
        return None
    value = "-" if metric.value is None else f"{metric.value:.3g} {metric.unit}".strip()
    return f"{metric.name}: {value} ({metric.aggregate})"


def flow_rows(app: Interlock, now: float) -> list[FlowRow]:
    counts = app.store.flow_counts()
    blocked = app.store.blocked_flows()
    stats = flow_stats(app, now - WINDOW, now)
    health = {h.flow: h for h in slo_report(app, now)}
    rows = []
    for flow in app.flows.values():
        c = counts.get(flow.name, {})
        s = stats[flow.name]
        h = health.get(flow.name)
        slo = None
        if flow.slo is not None:
            slo = f"{flow.slo.target * 100:g} % within {flow.slo.within}"
        series = flow_series(app, flow.name, now - WINDOW, now, SPARK_BUCKET)
        rows.append(
            FlowRow(
                name=flow.name,
                owner=flow.owner,
                event=flow.event_type,
                state=flow_state(c, flow.name in blocked),
                events_in=s.events_in,
                succeeded=s.succeeded,
                success_rate=s.success_rate,
                p95_lag=s.lag_p95,
                retries=s.retries,
                died=s.dead,
                dead=c.get("dead", 0),
                in_flight=sum(c.get(k, 0) for k in IN_FLIGHT),
                slo=slo,
                slo_status=None if h is None or h.slo is None else h.slo.status,
                budget_left=None if h is None or h.slo is None else h.slo.budget_remaining,
                metric=metric_text(h),
                sparkline=sparkline([b.events_in for b in series]),
            )
        )
    return rows


def totals(rows: list[FlowRow]) -> Totals:
    succeeded = sum(r.succeeded for r in rows)
    return Totals(
        events_in=sum(r.events_in for r in rows),
        succeeded=succeeded,
        dead=sum(r.dead for r in rows),
        in_flight=sum(r.in_flight for r in rows),
        retries=sum(r.retries for r in rows),
        success_rate=success_rate(succeeded, sum(r.died for r in rows)),
    )
