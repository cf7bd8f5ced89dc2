"""``GET /metrics``: Prometheus text format, computed at scrape time.

Webhook counters come from the ingress; delivery figures are read from the
store when Prometheus scrapes, so every process serving the same store
reports the same state (sum the webhook counters across gateway replicas,
not the store gauges). The app's in-process metrics
(:mod:`interlock.observability`: attempt durations, outcomes and end-to-end
lag of the workers in this process, HTTP refusals) are served alongside.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response

from interlock.app import Interlock
from interlock.errors import StoreError
from interlock.gateway.auth import Auth
from interlock.gateway.cloudevents import EventIntake
from interlock.gateway.drift_api import DriftCollector
from interlock.gateway.ingress import Ingress
from interlock.observability import process_metrics
from interlock.observability.prometheus import SloCollector


class _Collector:
    def __init__(self, app: Interlock, ingress: Ingress, auth: Auth, intake: EventIntake) -> None:
        self.app = app
        self.ingress = ingress
        self.auth = auth
        self.intake = intake

    def collect(self) -> Iterator[Metric]:
        received = CounterMetricFamily(
            "interlock_webhooks_accepted",
            "Webhook requests acknowledged (stored or ignored), by source.",
            labels=["source"],
        )
        for source, n in sorted(self.ingress.accepted.items()):
            received.add_metric([source], n)
        yield received
        rejected = CounterMetricFamily(
            "interlock_webhooks_rejected",
            "Webhook requests rejected, by source and reason.",
            labels=["source", "reason"],
        )
        for (source, reason), n in sorted(self.ingress.rejected.items()):
            rejected.add_metric([source, reason], n)
        yield rejected
        refused = CounterMetricFamily(
            "interlock_api_refused",
            "API and event requests refused for their token (missing_token, invalid_token, "
            "forbidden), and dashboard refusals (login_failed, login_throttled, csrf).",
            labels=["reason"],
        )
        for reason, n in sorted(self.auth.refused.items()):
            refused.add_metric([reason], n)
        yield refused
        events_in = CounterMetricFamily(
            "interlock_events_accepted",
            "POST /events requests stored, by mode (structured, binary, batch).",
            labels=["mode"],
        )
        for mode, n in sorted(self.intake.accepted.items()):
            events_in.add_metric([mode], n)
        yield events_in
        events_out = CounterMetricFamily(
            "interlock_events_rejected",
            "POST /events requests rejected, by reason.",
            labels=["reason"],
        )
        for reason, n in sorted(self.intake.rejected.items()):
            events_out.add_metric([reason], n)
        yield events_out
        up = GaugeMetricFamily("interlock_store_up", "1 when the store answered this scrape.")
        try:
            counts = self.app.store.flow_counts()
            stats = self.app.store.stats(time.time())
        except StoreError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        deliveries = GaugeMetricFamily(
            "interlock_deliveries",
            "Deliveries by flow and status (queued, pending, running, waiting, succeeded, "
            "dead, skipped).",
            labels=["flow", "status"],
        )
        for flow in sorted(set(self.app.flows) | set(counts)):
            for status, n in sorted(counts.get(flow, {}).items()):
                deliveries.add_metric([flow, status], n)
        yield deliveries
        dead = GaugeMetricFamily(
            "interlock_dead_letters",
            "Dead letters waiting for an operator, by flow.",
            labels=["flow"],
        )
        backlog = GaugeMetricFamily(
            "interlock_lane_backlog",
            "Deliveries queued behind their lane's head, by flow.",
            labels=["flow"],
        )
        for flow in sorted(set(self.app.flows) | set(counts)):
            dead.add_metric([flow], counts.get(flow, {}).get("dead", 0))
            backlog.add_metric([flow], counts.get(flow, {}).get("queued", 0))
        yield dead
        yield backlog
        lag = GaugeMetricFamily(
            "interlock_oldest_due_seconds",
            "How long the oldest due delivery has been waiting to be claimed.",
        )
        lag.add_metric([], stats.oldest_due_lag or 0.0)
        yield lag
        events = GaugeMetricFamily("interlock_events_stored", "Events in the store.")
        events.add_metric([], stats.events)
        yield events
        yield from _database_gauges(self.app)


def _database_gauges(app: Interlock) -> Iterator[Metric]:
    """The store's own health figures (PostgreSQL: oldest transaction, dead tuples)."""
    try:
        gauges = app.store.gauges()
    except StoreError:
        return
    families: dict[str, GaugeMetricFamily] = {}
    for g in gauges:
        family = families.get(g.name)
        if family is None:
            family = families[g.name] = GaugeMetricFamily(
                g.name, g.help, labels=[k for k, _ in g.labels]
            )
        family.add_metric([v for _, v in g.labels], g.value)
    yield from families.values()


def metrics_endpoint(
    app: Interlock, ingress: Ingress, auth: Auth, intake: EventIntake
) -> Callable[[Request], Coroutine[Any, Any, Response]]:
    """A Starlette endpoint serving ``app``'s metrics from its own registry."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(app, ingress, auth, intake))
    registry.register(process_metrics(app))
    registry.register(SloCollector(app))  # SLI, error budget, burn rates, alerts firing
    registry.register(DriftCollector(app))
    if app.connectors:  # calls, latency, breaker state, limiter waits, credential expiry
        from interlock.connectors import connector_metrics

        registry.register(connector_metrics(app))
    if app.streams:  # messages consumed, acked, rejected, lag of this process's runners
        from interlock.streams.metrics import stream_metrics

        registry.register(stream_metrics(app))

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return metrics
