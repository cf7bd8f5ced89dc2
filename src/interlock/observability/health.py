"""Each flow's health: its SLO (SLI, error budget, burn rates, alerts) and business metric.

    for health in slo_report(app):
        print(health.flow, health.slo and health.slo.budget_remaining)

The figures are computed from the store when asked (any process sees the same
ones); the alert state is what the alert evaluator last recorded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from interlock.durations import humanize, seconds
from interlock.errors import NotFound
from interlock.flows import Flow
from interlock.observability.business import MetricValue, metric_value
from interlock.observability.slo import AlertPolicy, budget_remaining, burn_rate, sli
from interlock.stores.analytics import AlertRow, FlowStats, SloCounts

if TYPE_CHECKING:
    from interlock.app import Interlock

__all__ = [
    "BurnRate",
    "FlowHealth",
    "SloStatus",
    "bounds",
    "firing_alerts",
    "flow_health",
    "flow_series",
    "flow_stats",
    "slo_counts",
    "slo_report",
    "slo_status",
]


@dataclass(frozen=True, slots=True)
class BurnRate:
    """How fast the error budget burned over one trailing window."""

    window: str  # e.g. "5m"
    seconds: float
    rate: float  # 1.0 spends the budget exactly over the SLO window
    good: int
    bad: int


@dataclass(frozen=True, slots=True)
class SloStatus:
    """A flow's SLO now: ``status`` is ``ok``, ``no_data``, the severity of the worst
    firing alert (``page`` before ``ticket``), or ``exhausted`` (budget spent)."""

    target: float
    within_s: float
    window_s: float
    good: int
    bad: int
    sli: float | None
    budget_remaining: float
    burn: tuple[BurnRate, ...]
    alerts: tuple[AlertRow, ...]
    status: str


@dataclass(frozen=True, slots=True)
class FlowHealth:
    flow: str
    slo: SloStatus | None
    metric: MetricValue | None


def slo_counts(
    app: Interlock, flow: Flow, spans: tuple[float, ...], now: float
) -> dict[float, SloCounts]:
    """The flow's SLO counts over each trailing span (seconds) ending at ``now``."""
    assert flow.slo is not None
    within = seconds(flow.slo.within)
    found = app.store.slo_counts(flow.name, within, [(now - s, now) for s in spans], now=now)
    return dict(zip(spans, found, strict=True))


def slo_status(
    app: Interlock, flow: Flow, policy: AlertPolicy, firing: list[AlertRow], now: float
) -> SloStatus:
    """``flow``'s SLO status at ``now`` (it must declare an SLO), with its ``firing`` alerts."""
    assert flow.slo is not None
    window = seconds(flow.slo.window)
    spans = policy.spans()
    counts = slo_counts(app, flow, (*spans, window), now)
    whole = counts[window]
    target = flow.slo.target
    order = {w.severity: i for i, w in enumerate(policy.windows)}
    alerts = tuple(sorted(firing, key=lambda a: order.get(a.severity, len(order))))
    left = budget_remaining(whole, target)
    if alerts:
        status = alerts[0].severity
    elif whole.total == 0:
        status = "no_data"
    elif left <= 0:
        status = "exhausted"
    else:
        status = "ok"
    return SloStatus(
        target=target,
        within_s=seconds(flow.slo.within),
        window_s=window,
        good=whole.good,
        bad=whole.bad,
        sli=sli(whole),
        budget_remaining=left,
        burn=tuple(
            BurnRate(humanize(s), s, burn_rate(counts[s], target), counts[s].good, counts[s].bad)
            for s in spans
        ),
        alerts=alerts,
        status=status,
    )


def flow_health(app: Interlock, name: str, now: float | None = None) -> FlowHealth:
    """The health of flow ``name`` (NotFound when the app has no such flow)."""
    flow = app.flows.get(name)
    if flow is None:
        raise NotFound(f"no flow named {name!r} in this app")
    now = app.clock.now() if now is None else now
    return _health(app, flow, app.store.list_alerts(firing=True, flow=name), now)


def slo_report(app: Interlock, now: float | None = None) -> list[FlowHealth]:
    """The health of every flow, in declaration order."""
    now = app.clock.now() if now is None else now
    firing = app.store.list_alerts(firing=True, limit=1000)
    return [
        _health(app, flow, [a for a in firing if a.flow == flow.name], now)
        for flow in app.flows.values()
    ]


def _health(app: Interlock, flow: Flow, firing: list[AlertRow], now: float) -> FlowHealth:
    status = None
    if flow.slo is not None:
        status = slo_status(app, flow, app.alerting.policy, firing, now)
    metric = None if flow.metric is None else metric_value(app.store, flow.name, flow.metric, now)
    return FlowHealth(flow.name, status, metric)


def firing_alerts(app: Interlock) -> list[AlertRow]:
    """The alerts firing now, newest first."""
    return app.store.list_alerts(firing=True, limit=1000)


def bounds(app: Interlock) -> Mapping[str, float]:
    """Each flow's SLO latency bound in seconds (flows without an SLO are absent)."""
    return {f.name: seconds(f.slo.within) for f in app.flows.values() if f.slo is not None}


def flow_stats(app: Interlock, since: float, until: float) -> dict[str, FlowStats]:
    """:meth:`Store.flow_stats` for every flow of ``app`` (zeros for flows without
    activity), ``on_time`` against each flow's SLO bound."""
    found = app.store.flow_stats(since, until, within=bounds(app))
    for name in app.flows:
        found.setdefault(name, FlowStats(name, since, until))
    return found


def flow_series(
    app: Interlock, flow: str, since: float, until: float, bucket_seconds: float
) -> list[FlowStats]:
    """:meth:`Store.flow_series` with ``on_time`` against the flow's SLO bound."""
    return app.store.flow_series(flow, since, until, bucket_seconds, within=bounds(app).get(flow))
