"""In-process metrics: what this process's workers and gateway observed.

    metrics = process_metrics(app)          # one per app, created on first use
    metrics.registry                        # a prometheus_client CollectorRegistry

Workers record every settled attempt (its duration by flow and outcome, and
for a success the end-to-end lag from the event's arrival); the gateway records
the requests it refused at the HTTP level. ``GET /metrics`` serves these beside
the store's gauges; ``interlock worker --metrics-port`` serves them alone.

The hot path is a dict lookup, one ``bisect`` and two additions per settled
attempt (prometheus_client's own ``Histogram.observe`` costs several times
more, with a lock per call); the Prometheus families are built at scrape time.
Each app has its own registry, never prometheus_client's global one, so that
many apps in one process (tests) do not collide; a worker that serves no
metrics never imports prometheus_client.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

from interlock.errors import ConfigurationError

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from prometheus_client.core import Metric

    from interlock.app import Interlock

__all__ = [
    "ATTEMPT_BUCKETS",
    "LAG_BUCKETS",
    "Histogram",
    "ProcessMetrics",
    "process_metrics",
    "serve_metrics",
]

ATTEMPT_BUCKETS: tuple[float, ...] = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
)
LAG_BUCKETS: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    900.0,
    3600.0,
    21600.0,
    86400.0,
)


class Histogram:
    """Bucket counts and a sum; written by one thread (the event loop's), read by any.

    >>> h = Histogram((0.1, 1.0))
    >>> for value in (0.05, 0.1, 3.0):
    ...     h.observe(value)
    >>> h.cumulative(), h.count, round(h.sum, 2)
    ([('0.1', 2.0), ('1.0', 2.0), ('+Inf', 3.0)], 3, 3.15)
    """

    __slots__ = ("_labels", "bounds", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self._labels = [*(repr(float(b)) for b in self.bounds), "+Inf"]  # Prometheus' form
        self.counts = [0] * (len(self.bounds) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def cumulative(self) -> list[tuple[str, float]]:
        """``(le, count)`` pairs as Prometheus wants them, from one snapshot of the counts."""
        total = 0
        out: list[tuple[str, float]] = []
        for label, n in zip(self._labels, list(self.counts), strict=True):
            total += n
            out.append((label, float(total)))
        return out

    @property
    def count(self) -> int:
        return sum(list(self.counts))


class _Bound:
    """The series of one (flow, outcome): bound once, then used by a dict get."""

    __slots__ = ("attempt", "lag")

    def __init__(self, lag: Histogram | None) -> None:
        self.attempt = Histogram(ATTEMPT_BUCKETS)
        self.lag = lag


class ProcessMetrics:
    """The metrics one app's workers and gateway observed in this process."""

    def __init__(self) -> None:
        self._bound: dict[tuple[str, str], _Bound] = {}
        self._lag: dict[str, Histogram] = {}
        self.http_refused: dict[str, int] = {}
        self._registry: CollectorRegistry | None = None

    @property
    def registry(self) -> CollectorRegistry:
        """A prometheus_client registry holding these metrics alone."""
        if self._registry is None:
            from prometheus_client import CollectorRegistry

            registry = CollectorRegistry(auto_describe=False)
            registry.register(self)
            self._registry = registry
        return self._registry

    # -- recording (the worker's hot path) ------------------------------------------
    def settled(
        self, flow: str, outcome: str, started: float, finished: float, received: float
    ) -> None:
        """One attempt of ``flow`` settled as ``outcome`` (``succeeded``, ``retry``, …)."""
        bound = self._bound.get((flow, outcome))
        if bound is None:
            bound = self._bind(flow, outcome)
        bound.attempt.observe(finished - started)
        if bound.lag is not None:
            bound.lag.observe(finished - received)

    def _bind(self, flow: str, outcome: str) -> _Bound:
        lag = None
        if outcome == "succeeded":
            lag = self._lag.setdefault(flow, Histogram(LAG_BUCKETS))
        bound = self._bound[(flow, outcome)] = _Bound(lag)
        return bound

    def refused(self, reason: str) -> None:
        """The gateway refused a request before the app saw it (``header_timeout``, …)."""
        self.http_refused[reason] = self.http_refused.get(reason, 0) + 1

    # -- exposition -------------------------------------------------------------------
    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

        bound = sorted(self._bound.items())  # sorted() copies first: a consistent snapshot
        attempts = HistogramMetricFamily(
            "interlock_attempt_duration_seconds",
            "How long attempts took, by flow and outcome (succeeded, retry, dead, sleep, "
            "wait), in this process.",
            labels=["flow", "outcome"],
        )
        outcomes = CounterMetricFamily(
            "interlock_delivery_outcomes",
            "Settled attempts by flow and outcome (succeeded, retry, dead, sleep, wait), "
            "in this process.",
            labels=["flow", "outcome"],
        )
        for (flow, outcome), series in bound:
            buckets = series.attempt.cumulative()
            attempts.add_metric([flow, outcome], buckets, series.attempt.sum)
            outcomes.add_metric([flow, outcome], buckets[-1][1])
        yield attempts
        yield outcomes
        lag = HistogramMetricFamily(
            "interlock_end_to_end_lag_seconds",
            "From an event's arrival to its delivery's success, by flow, in this process.",
            labels=["flow"],
        )
        for flow, histogram in sorted(self._lag.items()):
            lag.add_metric([flow], histogram.cumulative(), histogram.sum)
        yield lag
        refused = CounterMetricFamily(
            "interlock_http_refused",
            "Requests the gateway refused before routing them (headers_too_large, "
            "body_timeout, header_timeout), in this process.",
            labels=["reason"],
        )
        for reason, n in sorted(self.http_refused.items()):
            refused.add_metric([reason], n)
        yield refused


_metrics: weakref.WeakKeyDictionary[Interlock, ProcessMetrics] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def process_metrics(app: Interlock) -> ProcessMetrics:
    """``app``'s metrics in this process (created on first use, shared after)."""
    metrics = _metrics.get(app)
    if metrics is None:
        with _lock:
            metrics = _metrics.get(app)
            if metrics is None:
                metrics = _metrics[app] = ProcessMetrics()
    return metrics


def serve_metrics(app: Interlock, host: str, port: int) -> Callable[[], None]:
    """Serve ``app``'s process metrics over HTTP on ``host:port`` (a daemon thread).

    Returns a function that stops the server. A busy port is a ConfigurationError.
    """
    from prometheus_client import start_http_server

    try:
        registry = process_metrics(app).registry
        if app.connectors:
            from interlock.connectors import connector_metrics

            with contextlib.suppress(ValueError):  # registered by an earlier call
                registry.register(connector_metrics(app))
        if app.streams:
            from interlock.streams.metrics import stream_metrics

            with contextlib.suppress(ValueError):  # registered by an earlier call
                registry.register(stream_metrics(app))
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot serve metrics on {host}:{port} ({exc.strerror or exc}); "
            "is another process using it?"
        ) from None

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return stop
