"""What the store reports about flows over time: stats, series, SLO counts and alerts.

Rows here are what the analytics queries of every store return (see the
"analytics" section of :class:`~interlock.stores.base.Store`), and the pure
helpers that turn raw rows into them, so that SQLite and PostgreSQL agree to
the last digit.

Times are epoch seconds. A delivery's *end-to-end lag* runs from its event's
arrival (``received_at``, which is also the delivery's ``created_at``) to its
success. Terminal outcomes are counted from the attempts table (one row per
run, written when the run ends), so a dead letter replayed to success shows
as one dead and, later, one success.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

MAX_BUCKETS = 2000
FAILED_OUTCOMES = frozenset({"retry", "dead"})


@dataclass(frozen=True, slots=True)
class FlowStats:
    """What happened to one flow in ``[since, until)``."""

    flow: str
    since: float
    until: float
    events_in: int = 0  # deliveries created: events received for this flow
    succeeded: int = 0  # deliveries that succeeded
    on_time: int = 0  # of those, within the SLO bound given (all of them without one)
    dead: int = 0  # deliveries dead-lettered
    retries: int = 0  # attempts that ended in a retry
    attempts: int = 0  # attempts that ended, whatever their outcome
    lag_p50: float | None = None  # end-to-end lag of the successes, seconds
    lag_p95: float | None = None
    lag_p99: float | None = None
    error_classes: dict[str, int] = field(default_factory=dict)  # failed attempts by class

    @property
    def success_rate(self) -> float | None:
        """Successes over finished deliveries (succeeded + dead); None without any."""
        done = self.succeeded + self.dead
        return None if done == 0 else self.succeeded / done


@dataclass(frozen=True, slots=True)
class SloCounts:
    """Deliveries *decided* in ``[since, until)`` against a latency bound.

    A delivery is decided good when it succeeds within the bound (at its
    success), and bad when it is dead-lettered before the bound (then) or
    when the bound passes first, whatever happens to it later (at the bound):
    in flight, retrying, dead or late. Duplicates skipped at intake never
    count; a discarded dead letter stays bad. Each delivery is decided once,
    so adjacent ranges add up.
    """

    since: float
    until: float
    good: int
    bad: int

    @property
    def total(self) -> int:
        return self.good + self.bad


@dataclass(frozen=True, slots=True)
class FlowSample:
    """One delivery of a flow, with what a business metric may read from it."""

    event_id: str
    occurred_at: float
    received_at: float
    succeeded_at: float | None  # its success (the latest one); None when it has not succeeded
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class NewAlert:
    """An alert condition seen by the evaluator (fired, or refreshed while firing)."""

    flow: str
    severity: str
    at: float
    burn_long: float
    burn_short: float
    long_s: float
    short_s: float
    factor: float
    budget_remaining: float
    summary: str


@dataclass(frozen=True, slots=True)
class AlertRow:
    """A burn-rate alert: fired at ``fired_at``, firing until ``resolved_at``."""

    id: int
    flow: str
    severity: str
    state: str  # firing | resolved
    fired_at: float
    resolved_at: float | None
    updated_at: float
    burn_long: float
    burn_short: float
    long_s: float
    short_s: float
    factor: float
    budget_remaining: float
    summary: str


def percentile(ordered: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) of sorted values, nearest rank; None when empty.

    >>> percentile([1.0, 2.0, 3.0, 4.0], 0.5), percentile([1.0, 2.0, 3.0, 4.0], 0.99)
    (2.0, 4.0)
    """
    if not ordered:
        return None
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def check_range(since: float, until: float, bucket: float | None = None) -> None:
    """Refuse a range that is empty or reversed, or a bucketing with too many buckets."""
    if not (math.isfinite(since) and math.isfinite(until)) or until <= since:
        raise ValueError(f"the range [{since}, {until}) is empty: until must be after since")
    if bucket is not None:
        if not math.isfinite(bucket) or bucket <= 0:
            raise ValueError("bucket_seconds must be a positive number of seconds")
        if (until - since) / bucket > MAX_BUCKETS:
            raise ValueError(
                f"{math.ceil((until - since) / bucket)} buckets asked; at most {MAX_BUCKETS}: "
                "widen bucket_seconds"
            )


class StatsBuilder:
    """Accumulates the aggregated rows of one flow and range into a :class:`FlowStats`."""

    __slots__ = ("errors", "flow", "lags", "since", "until", "values")

    def __init__(self, flow: str, since: float, until: float) -> None:
        self.flow, self.since, self.until = flow, since, until
        self.values = dict.fromkeys(("events_in", "succeeded", "dead", "retries", "attempts"), 0)
        self.lags: list[float] = []  # end-to-end lag of each success
        self.errors: dict[str, int] = {}

    def created(self, n: int) -> None:
        self.values["events_in"] += n

    def ended(self, outcome: str, error_class: str | None, n: int) -> None:
        """``n`` attempts that ended in range as ``outcome``."""
        values = self.values
        values["attempts"] += n
        if outcome == "succeeded":
            values["succeeded"] += n
        elif outcome == "dead":
            values["dead"] += n
        elif outcome == "retry":
            values["retries"] += n
        if outcome in FAILED_OUTCOMES:
            name = error_class or "unknown"
            self.errors[name] = self.errors.get(name, 0) + n

    def build(self, within: float | None) -> FlowStats:
        lags = sorted(self.lags)
        on_time = len(lags) if within is None else sum(1 for lag in lags if lag <= within)
        return FlowStats(
            self.flow,
            self.since,
            self.until,
            **self.values,
            on_time=min(on_time, self.values["succeeded"]),
            lag_p50=percentile(lags, 0.50),
            lag_p95=percentile(lags, 0.95),
            lag_p99=percentile(lags, 0.99),
            error_classes=dict(sorted(self.errors.items())),
        )


def series_builders(flow: str, since: float, until: float, bucket: float) -> list[StatsBuilder]:
    """One builder per bucket ``[since + i*bucket, since + (i+1)*bucket)``, the last one
    ending at ``until``."""
    count = max(1, math.ceil((until - since) / bucket - 1e-9))
    return [
        StatsBuilder(flow, since + i * bucket, min(until, since + (i + 1) * bucket))
        for i in range(count)
    ]
