"""The flow page's charts: throughput, lag percentiles, error classes and burn rate
over a chosen window, from :func:`interlock.observability.flow_series`.

The burn rate of an interval is its share of bad deliveries (finished, but dead or
later than the SLO's bound) over the error budget (``1 - target``): 1 spends the
budget exactly over the SLO window; the alert policy's factors (14.4 for a page by
default) say how much faster is an emergency.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from interlock.dashboard.charts import Chart, line_chart, stacked_bars
from interlock.observability import flow_series

if TYPE_CHECKING:
    from interlock.app import Interlock
    from interlock.flows import Flow

WINDOWS = {"15m": 900.0, "1h": 3600.0, "6h": 21600.0, "24h": 86400.0}
BUCKETS = 60
MAX_CLASSES = 5


@dataclass(frozen=True, slots=True)
class Trends:
    window: str
    title: str
    throughput: Chart
    lag: Chart
    errors: Chart
    burn: Chart | None


def _label(ts: float, window: float) -> str:
    moment = datetime.fromtimestamp(ts, UTC)
    return moment.strftime("%H:%M:%S" if window <= 3600 else "%d %b %H:%M") + " UTC"


def trends(app: Interlock, flow: Flow, window: str, now: float) -> Trends:
    if window not in WINDOWS:
        window = "1h"
    span = WINDOWS[window]
    bucket = span / BUCKETS
    since = now - span
    series = flow_series(app, flow.name, since, now, bucket)
    labels = [_label(since + i * bucket, span) for i in range(len(series))]
    if labels:
        labels[-1] = "now"
    throughput = line_chart(
        {
            "in": [float(b.events_in) for b in series],
            "succeeded": [float(b.succeeded) for b in series],
            "dead": [float(b.dead) for b in series],
        },
        labels,
    )
    lag = line_chart(
        {
            "p50": [b.lag_p50 for b in series],
            "p95": [b.lag_p95 for b in series],
            "p99": [b.lag_p99 for b in series],
        },
        labels,
    )
    totals: dict[str, int] = {}
    for b in series:
        for name, n in b.error_classes.items():
            totals[name] = totals.get(name, 0) + n
    top = sorted(totals, key=lambda k: -totals[k])[:MAX_CLASSES]
    classes = {name: [float(b.error_classes.get(name, 0)) for b in series] for name in top}
    if len(totals) > MAX_CLASSES:
        classes["other"] = [
            float(sum(n for k, n in b.error_classes.items() if k not in top)) for b in series
        ]
    errors = stacked_bars(classes or {"none": [0.0] * len(series)}, labels)
    burn = None
    if flow.slo is not None:
        budget = 1.0 - flow.slo.target
        rates: list[float | None] = []
        for b in series:
            finished = b.succeeded + b.dead
            bad = finished - b.on_time
            rates.append(None if finished == 0 else (bad / finished) / budget)
        burn = line_chart({"burn rate": rates}, labels, threshold=1.0)
    title = f"Last {window}, {int(bucket)} s intervals"
    return Trends(window, title, throughput, lag, errors, burn)
