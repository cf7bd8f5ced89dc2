"""What this process's stream runners observed, for ``/metrics``.

    stream_metrics(app)        # one per app, created on first use; a prometheus collector

Series (all by ``stream``): messages consumed, redelivered (handed out more than
once by the broker), acked by outcome (``stored``, ``duplicate``, ``ignored``),
rejected by reason, nak'd by reason, reconnects, whether the source is
connected, and the consumer's lag (messages waiting in the broker) when the
source knows it cheaply.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prometheus_client.core import Metric

    from interlock.app import Interlock

__all__ = ["StreamCounters", "StreamMetrics", "stream_metrics"]


@dataclass(slots=True)
class StreamCounters:
    """The counts of one stream in this process (written by its runner's event loop)."""

    consumed: int = 0
    redelivered: int = 0
    acked: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)
    nacked: dict[str, int] = field(default_factory=dict)
    reconnects: int = 0
    connected: bool = False
    lag: int | None = None

    def add(self, series: dict[str, int], label: str, n: int = 1) -> None:
        series[label] = series.get(label, 0) + n


class StreamMetrics:
    """Every stream's counters in this process, as a prometheus_client collector."""

    def __init__(self) -> None:
        self.streams: dict[str, StreamCounters] = {}

    def of(self, stream: str) -> StreamCounters:
        counters = self.streams.get(stream)
        if counters is None:
            counters = self.streams[stream] = StreamCounters()
        return counters

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        streams = sorted(self.streams.items())
        consumed = CounterMetricFamily(
            "interlock_stream_consumed", "Messages fetched from the broker.", labels=["stream"]
        )
        redelivered = CounterMetricFamily(
            "interlock_stream_redelivered",
            "Messages the broker handed out more than once.",
            labels=["stream"],
        )
        reconnects = CounterMetricFamily(
            "interlock_stream_reconnects",
            "Times the source was connected again after an error.",
            labels=["stream"],
        )
        connected = GaugeMetricFamily(
            "interlock_stream_connected", "1 while the source is connected.", labels=["stream"]
        )
        lag = GaugeMetricFamily(
            "interlock_stream_lag",
            "Messages waiting in the broker for this consumer, as of the last fetch.",
            labels=["stream"],
        )
        acked = CounterMetricFamily(
            "interlock_stream_acked",
            "Messages acknowledged after the store had them, by outcome (stored, duplicate, "
            "ignored).",
            labels=["stream", "outcome"],
        )
        rejected = CounterMetricFamily(
            "interlock_stream_rejected",
            "Messages recorded as interlock.stream.rejected events and terminated, by reason.",
            labels=["stream", "reason"],
        )
        nacked = CounterMetricFamily(
            "interlock_stream_nacked",
            "Messages handed back for a later redelivery, by reason.",
            labels=["stream", "reason"],
        )
        for name, c in streams:
            consumed.add_metric([name], c.consumed)
            redelivered.add_metric([name], c.redelivered)
            reconnects.add_metric([name], c.reconnects)
            connected.add_metric([name], 1 if c.connected else 0)
            if c.lag is not None:
                lag.add_metric([name], c.lag)
            for series, family in ((c.acked, acked), (c.rejected, rejected), (c.nacked, nacked)):
                for label, n in sorted(series.items()):
                    family.add_metric([name, label], n)
        yield from (consumed, redelivered, acked, rejected, nacked, reconnects, connected, lag)


_metrics: weakref.WeakKeyDictionary[Interlock, StreamMetrics] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def stream_metrics(app: Interlock) -> StreamMetrics:
    """``app``'s stream metrics in this process (created on first use, shared after)."""
    metrics = _metrics.get(app)
    if metrics is None:
        with _lock:
            metrics = _metrics.get(app)
            if metrics is None:
                metrics = _metrics[app] = StreamMetrics()
    return metrics
