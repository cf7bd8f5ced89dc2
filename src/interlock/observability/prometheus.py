"""SLO gauges for ``GET /metrics``, computed from the store at scrape time.

``interlock_slo_sli``, ``interlock_slo_error_budget_remaining`` and
``interlock_slo_burn_rate{window}`` per flow with an SLO,
``interlock_alerts_firing{flow, severity}`` (1 firing, 0 not) and
``interlock_business_metric{flow, metric, unit, aggregate}``. Like the store
gauges, every process serving the same store reports the same values. A report
is reused for ``ttl`` seconds, so frequent scrapes cost one report.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily, Metric

from interlock.errors import StoreError
from interlock.observability.health import FlowHealth, slo_report

if TYPE_CHECKING:
    from interlock.app import Interlock

__all__ = ["SloCollector"]


class SloCollector:
    """A prometheus_client collector of ``app``'s SLO figures."""

    def __init__(self, app: Interlock, *, ttl: float = 10.0) -> None:
        self.app = app
        self.ttl = ttl
        self._lock = threading.Lock()
        self._cached: tuple[float, list[FlowHealth]] | None = None

    def report(self) -> list[FlowHealth]:
        with self._lock:
            now = time.monotonic()
            if self._cached is None or now - self._cached[0] >= self.ttl:
                self._cached = (now, slo_report(self.app))
            return self._cached[1]

    def collect(self) -> Iterator[Metric]:
        try:
            report = self.report()
        except StoreError:
            return  # interlock_store_up says so
        sli = GaugeMetricFamily(
            "interlock_slo_sli",
            "Share of the flow's deliveries decided in its SLO window that succeeded within "
            "the bound (absent without data).",
            labels=["flow"],
        )
        budget = GaugeMetricFamily(
            "interlock_slo_error_budget_remaining",
            "Share of the error budget left over the SLO window (1 untouched, 0 spent, "
            "negative overspent).",
            labels=["flow"],
        )
        burn = GaugeMetricFamily(
            "interlock_slo_burn_rate",
            "How many times faster than allowed the error budget burns over a trailing window.",
            labels=["flow", "window"],
        )
        firing = GaugeMetricFamily(
            "interlock_alerts_firing",
            "1 while a burn-rate alert of the flow and severity fires, else 0.",
            labels=["flow", "severity"],
        )
        business = GaugeMetricFamily(
            "interlock_business_metric",
            "The flow's declared business metric over its window (absent without samples).",
            labels=["flow", "metric", "unit", "aggregate"],
        )
        severities = [w.severity for w in self.app.alerting.policy.windows]
        for health in report:
            status = health.slo
            if status is not None:
                if status.sli is not None:
                    sli.add_metric([health.flow], status.sli)
                budget.add_metric([health.flow], status.budget_remaining)
                for rate in status.burn:
                    burn.add_metric([health.flow, rate.window], rate.rate)
                on = {a.severity for a in status.alerts}
                for severity in sorted({*severities, *on}):
                    firing.add_metric([health.flow, severity], 1.0 if severity in on else 0.0)
            metric = health.metric
            if metric is not None and metric.value is not None:
                labels = [health.flow, metric.name, metric.unit, metric.aggregate]
                business.add_metric(labels, metric.value)
        yield sli
        yield budget
        yield burn
        yield firing
        yield business
