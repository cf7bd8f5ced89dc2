"""Observability: process metrics, SLOs and error budgets, burn-rate alerts, business metrics.

- :mod:`~interlock.observability.process`: what this process's workers and gateway
  observed (attempt durations, end-to-end lag, HTTP refusals) for ``/metrics``.
- :mod:`~interlock.observability.slo`: error budget and burn-rate math, pure.
- :mod:`~interlock.observability.health`: each flow's SLO status and business metric
  (:func:`slo_report`), stats and series over time.
- :mod:`~interlock.observability.alerts`: the alert evaluator and the app's
  :class:`Alerting`; :mod:`~interlock.observability.sinks`: where notices go.
"""

from interlock.observability.alerts import AlertEvaluator, Alerting, run_alerts
from interlock.observability.business import MetricValue, metric_value
from interlock.observability.health import (
    BurnRate,
    FlowHealth,
    SloStatus,
    firing_alerts,
    flow_health,
    flow_series,
    flow_stats,
    slo_report,
)
from interlock.observability.process import (
    ATTEMPT_BUCKETS,
    LAG_BUCKETS,
    Histogram,
    ProcessMetrics,
    process_metrics,
    serve_metrics,
)
from interlock.observability.sinks import AlertNotice, AlertSink, LogSink, SlackSink, WebhookSink
from interlock.observability.slo import AlertPolicy, BurnWindow, budget_remaining, burn_rate, sli
from interlock.stores.analytics import AlertRow, FlowStats, SloCounts

__all__ = [
    "ATTEMPT_BUCKETS",
    "LAG_BUCKETS",
    "AlertEvaluator",
    "AlertNotice",
    "AlertPolicy",
    "AlertRow",
    "AlertSink",
    "Alerting",
    "BurnRate",
    "BurnWindow",
    "FlowHealth",
    "FlowStats",
    "Histogram",
    "LogSink",
    "MetricValue",
    "ProcessMetrics",
    "SlackSink",
    "SloCounts",
    "SloStatus",
    "WebhookSink",
    "budget_remaining",
    "burn_rate",
    "firing_alerts",
    "flow_health",
    "flow_series",
    "flow_stats",
    "metric_value",
    "process_metrics",
    "run_alerts",
    "serve_metrics",
    "sli",
    "slo_report",
]
