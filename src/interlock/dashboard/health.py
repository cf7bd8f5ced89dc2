"""The overview's figures: one row per flow, and totals across flows.

Counts come from the store (:meth:`Store.flow_counts`, shared by every process);
the state is the REST API's (``blocked`` when a dead letter holds a lane,
``failing`` with dead letters, ``active`` with work in flight, else ``idle``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from interlock.app import Interlock

IN_FLIGHT = ("queued", "pending", "running", "waiting")


@dataclass(frozen=True, slots=True)
class FlowRow:
    name: str
    owner: str
    event: str
    state: str
    events_in: int
    succeeded: int
    dead: int
    skipped: int
    in_flight: int
    success_rate: float | None
    slo: str | None
    retries: int | None = None
    p95_lag: float | None = None
    slo_status: str | None = None  # met, at_risk, breached (from the SLO report)
    budget_left: float | None = None
    sparkline: str = ""
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Totals:
    events_in: int
    succeeded: int
    dead: int
    in_flight: int
    success_rate: float | None
    retries: int | None


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


def flow_rows(app: Interlock) -> list[FlowRow]:
    counts = app.store.flow_counts()
    blocked = app.store.blocked_flows()
    rows = []
    for flow in app.flows.values():
        c = counts.get(flow.name, {})
        slo = None
        if flow.slo is not None:
            slo = f"{flow.slo.target * 100:g} % within {flow.slo.within}"
        rows.append(
            FlowRow(
                name=flow.name,
                owner=flow.owner,
                event=flow.event_type,
                state=flow_state(c, flow.name in blocked),
                events_in=sum(c.values()),
                succeeded=c.get("succeeded", 0),
                dead=c.get("dead", 0),
                skipped=c.get("skipped", 0),
                in_flight=sum(c.get(s, 0) for s in IN_FLIGHT),
                success_rate=success_rate(c.get("succeeded", 0), c.get("dead", 0)),
                slo=slo,
                counts=c,
            )
        )
    return rows


def totals(rows: list[FlowRow]) -> Totals:
    succeeded = sum(r.succeeded for r in rows)
    dead = sum(r.dead for r in rows)
    retries = [r.retries for r in rows if r.retries is not None]
    return Totals(
        events_in=sum(r.events_in for r in rows),
        succeeded=succeeded,
        dead=dead,
        in_flight=sum(r.in_flight for r in rows),
        success_rate=success_rate(succeeded, dead),
        retries=sum(retries) if retries else None,
    )
