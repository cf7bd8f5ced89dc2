"""Connector metrics: calls, latency, breaker state, limiter waits, credential expiry, checks.

One :class:`ConnectorMetrics` per app and process (``runtime_of(app).metrics``)
records in plain dicts on the hot path — a dict get and a few additions per
call — and builds the Prometheus families at scrape time, like
:mod:`interlock.observability`. Expose them beside the process metrics::

    from interlock.connectors import connector_metrics
    process_metrics(app).registry.register(connector_metrics(app))
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from interlock.observability import ATTEMPT_BUCKETS, Histogram

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from prometheus_client.core import Metric

WAIT_BUCKETS: tuple[float, ...] = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ConnectorMetrics:
    """What this process's connectors of one app observed."""

    def __init__(self) -> None:
        self.calls: dict[tuple[str, str, str], int] = {}
        self._latency: dict[tuple[str, str], Histogram] = {}
        self._waits: dict[str, Histogram] = {}
        self.breakers: dict[str, Callable[[], int]] = {}  # connector → current state value
        self.expiry: dict[tuple[str, str], float] = {}  # (connector, credential) → expires at
        self.checks: dict[tuple[str, str], tuple[float, float]] = {}  # → (up, latency)
        self.headroom: dict[str, float] = {}  # connector → remaining calls the vendor reported
        self.alerts: dict[tuple[str, str], int] = {}
        self._registry: CollectorRegistry | None = None

    # -- recording ----------------------------------------------------------------------
    def call(self, connector: str, operation: str, outcome: str, seconds: float) -> None:
        key = (connector, operation, outcome)
        self.calls[key] = self.calls.get(key, 0) + 1
        histogram = self._latency.get((connector, operation))
        if histogram is None:
            histogram = self._latency[(connector, operation)] = Histogram(ATTEMPT_BUCKETS)
        histogram.observe(seconds)

    def waited(self, connector: str, seconds: float) -> None:
        histogram = self._waits.get(connector)
        if histogram is None:
            histogram = self._waits[connector] = Histogram(WAIT_BUCKETS)
        histogram.observe(seconds)

    def alert(self, connector: str, kind: str) -> None:
        self.alerts[(connector, kind)] = self.alerts.get((connector, kind), 0) + 1

    # -- exposition ---------------------------------------------------------------------
    @property
    def registry(self) -> CollectorRegistry:
        """A prometheus_client registry holding these metrics alone."""
        if self._registry is None:
            from prometheus_client import CollectorRegistry

            registry = CollectorRegistry(auto_describe=False)
            registry.register(self)
            self._registry = registry
        return self._registry

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        calls = CounterMetricFamily(
            "interlock_connector_calls",
            "Connector calls by connector, operation and outcome (ok, retryable, "
            "rate_limited, permanent, permission, not_found, circuit_open, paused, dry_run).",
            labels=["connector", "operation", "outcome"],
        )
        for (connector, operation, outcome), n in sorted(self.calls.items()):
            calls.add_metric([connector, operation, outcome], n)
        yield calls
        latency = HistogramMetricFamily(
            "interlock_connector_call_duration_seconds",
            "How long connector calls took (waiting for a permit excluded).",
            labels=["connector", "operation"],
        )
        for (connector, operation), h in sorted(self._latency.items()):
            latency.add_metric([connector, operation], h.cumulative(), h.sum)
        yield latency
        waits = HistogramMetricFamily(
            "interlock_connector_limiter_wait_seconds",
            "How long calls waited for a rate-limit permit.",
            labels=["connector"],
        )
        for connector, h in sorted(self._waits.items()):
            waits.add_metric([connector], h.cumulative(), h.sum)
        yield waits
        breaker = GaugeMetricFamily(
            "interlock_connector_breaker_state",
            "Circuit breaker state as this process sees it: 0 closed, 1 half-open, 2 open.",
            labels=["connector"],
        )
        for connector, state in sorted(self.breakers.items()):
            breaker.add_metric([connector], state())
        yield breaker
        expiry = GaugeMetricFamily(
            "interlock_connector_credential_expiry_seconds",
            "Seconds until a connector's credential expires (negative: expired).",
            labels=["connector", "credential"],
        )
        now = time.time()
        for (connector, credential), at in sorted(self.expiry.items()):
            expiry.add_metric([connector, credential], at - now)
        yield expiry
        up = GaugeMetricFamily(
            "interlock_connector_check_up",
            "1 when the connector's last synthetic check of a probe succeeded.",
            labels=["connector", "probe"],
        )
        check_latency = GaugeMetricFamily(
            "interlock_connector_check_latency_seconds",
            "Latency of the connector's last synthetic check of a probe.",
            labels=["connector", "probe"],
        )
        for (connector, probe), (ok, seconds) in sorted(self.checks.items()):
            up.add_metric([connector, probe], ok)
            check_latency.add_metric([connector, probe], seconds)
        yield up
        yield check_latency
        headroom = GaugeMetricFamily(
            "interlock_connector_rate_limit_remaining",
            "Calls left in the vendor's rate-limit window, as its last answer said.",
            labels=["connector"],
        )
        for connector, remaining in sorted(self.headroom.items()):
            headroom.add_metric([connector], remaining)
        yield headroom
        alerts = CounterMetricFamily(
            "interlock_connector_alerts",
            "Alerts raised by connectors (needs_reauth, credential_expiring, "
            "permission_denied, breaker_open).",
            labels=["connector", "kind"],
        )
        for (connector, kind), n in sorted(self.alerts.items()):
            alerts.add_metric([connector, kind], n)
        yield alerts
