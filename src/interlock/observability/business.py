"""Business metrics: a flow's :class:`~interlock.flows.BusinessMetric`, computed.

The value is an aggregate over the newest deliveries (at most
``SAMPLE_LIMIT``) created in the metric's trailing window; each delivery gives
one sample, a duration between two time points or a payload value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from interlock.flows import DURATION_UNITS, TIME_POINTS, BusinessMetric
from interlock.stores.analytics import FlowSample, percentile
from interlock.stores.base import Store

__all__ = ["SAMPLE_LIMIT", "MetricValue", "aggregate", "metric_value", "sample_of"]

SAMPLE_LIMIT = 10_000


@dataclass(frozen=True, slots=True)
class MetricValue:
    """A business metric's current value (None without samples)."""

    name: str
    unit: str
    aggregate: str
    window_s: float
    value: float | None
    samples: int


def metric_value(store: Store, flow: str, metric: BusinessMetric, now: float) -> MetricValue:
    """``metric`` of ``flow`` over the window ending at ``now``."""
    payload = metric.value is not None or not {metric.start, metric.end} <= set(TIME_POINTS)
    rows = store.flow_samples(flow, now - metric.window_s, now, limit=SAMPLE_LIMIT, data=payload)
    values = [v for v in (sample_of(metric, row) for row in rows) if v is not None]
    return MetricValue(
        metric.name,
        metric.unit,
        metric.aggregate,
        metric.window_s,
        aggregate(metric.aggregate, values),
        len(values),
    )


def sample_of(metric: BusinessMetric, row: FlowSample) -> float | None:
    """One delivery's sample of ``metric``: a duration in its unit, or a payload value."""
    if metric.value is not None:
        return _number(_lookup(row.data, metric.value))
    assert metric.end is not None
    start, end = _time_point(metric.start, row), _time_point(metric.end, row)
    if start is None or end is None:
        return None
    return (end - start) / DURATION_UNITS[metric.unit]


def aggregate(how: str, values: list[float]) -> float | None:
    """``p50`` / ``p95`` / ``p99`` / ``avg`` / ``sum`` / ``min`` / ``max`` / ``count``.

    >>> aggregate("avg", [1.0, 2.0, 6.0]), aggregate("p50", [])
    (3.0, None)
    """
    if how == "count":
        return float(len(values))
    if not values:
        return None
    if how.startswith("p"):
        return percentile(sorted(values), int(how[1:]) / 100)
    if how == "avg":
        return math.fsum(values) / len(values)
    if how == "sum":
        return math.fsum(values)
    return min(values) if how == "min" else max(values)


def _time_point(name: str, row: FlowSample) -> float | None:
    if name == "occurred_at":
        return row.occurred_at
    if name == "received_at":
        return row.received_at
    if name == "succeeded_at":
        return row.succeeded_at
    return _time(_lookup(row.data, name))


def _lookup(data: Any, path: str) -> Any:
    for part in path.removeprefix("data.").split("."):
        if not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    return data


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _time(value: Any) -> float | None:
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return _number(value)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.timestamp()
    return _number(value)
