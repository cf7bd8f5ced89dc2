"""Business metrics: declarations refuse nonsense, samples read time points and payload
values (RFC 3339, epoch seconds, nested fields), deliveries missing a point are left out."""

from __future__ import annotations

import pytest

from interlock import BusinessMetric
from interlock.errors import ConfigurationError
from interlock.observability.business import aggregate, sample_of
from interlock.stores.analytics import FlowSample


def row(data: dict[str, object], succeeded_at: float | None = 1_000.0) -> FlowSample:
    return FlowSample(
        "evt_1", occurred_at=100.0, received_at=160.0, succeeded_at=succeeded_at, data=data
    )


def test_durations_between_time_points() -> None:
    to_crm = BusinessMetric("minutes to CRM", end="succeeded_at")
    assert sample_of(to_crm, row({})) == pytest.approx(15.0)  # 100 s -> 1,000 s
    assert sample_of(to_crm, row({}, succeeded_at=None)) is None  # not done: no sample
    arrival = BusinessMetric("ingest delay", start="occurred_at", end="received_at", unit="s")
    assert sample_of(arrival, row({})) == 60.0
    dso = BusinessMetric("days sales outstanding", start="issued_at", end="paid.at", unit="d")
    paid = {"issued_at": "2026-11-01T00:00:00Z", "paid": {"at": "2026-11-15T12:00:00+00:00"}}
    assert sample_of(dso, row(paid)) == pytest.approx(14.5)
    epoch = {"issued_at": 0, "paid": {"at": 86_400 * 2}}
    assert sample_of(dso, row(epoch)) == pytest.approx(2.0)
    assert sample_of(dso, row({"issued_at": "not a time", "paid": {"at": 1}})) is None
    assert sample_of(dso, row({"paid": {"at": 1}})) is None
    forced = BusinessMetric(
        "payload occurred", start="data.occurred_at", end="succeeded_at", unit="s"
    )
    assert sample_of(forced, row({"occurred_at": 400})) == 600.0


def test_payload_values() -> None:
    revenue = BusinessMetric("revenue", value="order.amount", unit="USD", aggregate="sum")
    assert sample_of(revenue, row({"order": {"amount": "19.99"}})) == pytest.approx(19.99)
    assert sample_of(revenue, row({"order": {"amount": True}})) is None
    assert sample_of(revenue, row({"order": {"amount": "NA"}})) is None
    assert sample_of(revenue, row({"order": []})) is None


def test_aggregates() -> None:
    values = [4.0, 1.0, 3.0, 2.0]
    assert [aggregate(a, values) for a in ("p50", "p95", "avg", "sum", "min", "max")] == [
        2.0,
        4.0,
        2.5,
        10.0,
        1.0,
        4.0,
    ]
    assert aggregate("count", []) == 0.0 and aggregate("avg", []) is None


def test_declarations_refuse_nonsense() -> None:
    with pytest.raises(ConfigurationError, match="either end="):
        BusinessMetric("both", end="succeeded_at", value="amount")
    with pytest.raises(ConfigurationError, match="either end="):
        BusinessMetric("neither")
    with pytest.raises(ConfigurationError, match="unit"):
        BusinessMetric("weeks", end="succeeded_at", unit="weeks")
    with pytest.raises(ConfigurationError, match="aggregate"):
        BusinessMetric("median", value="amount", aggregate="median")
    with pytest.raises(ConfigurationError, match="window"):
        BusinessMetric("now", value="amount", window=0)
    assert BusinessMetric("revenue", value="amount", unit="USD").describe()["kind"] == "value"
