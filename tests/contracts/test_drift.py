"""Drift detection: each kind of change raised once and counted, over 10,000 payloads."""

from __future__ import annotations

from collections import Counter
from typing import Any

from interlock import Interlock
from interlock.drift import DriftConfig, DriftMonitor
from interlock.testing import FakeClock

CONFIG = DriftConfig(min_events=50, vanish_after=200, flush_every=3600)


def payload(i: int) -> dict[str, Any]:
    """An invoice; from event 1,000 on the vendor changes its shape, one kind at a time."""
    body: dict[str, Any] = {
        "id": f"in_{i}",
        "status": ["open", "paid", "uncollectible"][i % 3],
        "amount_due": 100 + i,
        "customer": {"email": f"buyer{i}@example.test", "name": "Zoë Ångström"},
        "due_date": 1_700_000_000 + i,
        "lines": [{"sku": "pro", "qty": 1}, {"sku": "seat", "qty": i % 5}],
        "legacy_code": "L1",
    }
    if i >= 1000:
        body["tax"] = {"rate": 0.2}  # new fields: tax and tax.rate
    if i >= 2000 and i % 10 == 0:
        body["status"] = "void"  # a new enum value
    if i >= 3000 and i % 100 == 0:
        body["amount_due"] = "NA"  # a number arrives as a string
    if i >= 4000 and i % 50 == 0:
        body["due_date"] = None  # never null before
    if i >= 5000:
        del body["legacy_code"]  # gone for good
    return body


def expected_counts(n: int) -> dict[tuple[str, str, str], int]:
    rng = range(n)
    return {
        ("new_field", "tax", ""): sum(1 for i in rng if i >= 1000),
        ("new_field", "tax.rate", ""): sum(1 for i in rng if i >= 1000),
        ("new_enum_value", "status", "void"): sum(1 for i in rng if i >= 2000 and i % 10 == 0),
        ("type_change", "amount_due", "string"): sum(1 for i in rng if i >= 3000 and i % 100 == 0),
        ("nullability_change", "due_date", "null"): sum(
            1 for i in rng if i >= 4000 and i % 50 == 0
        ),
        ("vanished_field", "legacy_code", ""): n - 5000,
    }


async def test_each_kind_of_change_is_raised_once_and_counted_over_10000_events(
    app: Interlock, clock: FakeClock
) -> None:
    monitor = DriftMonitor(app.store, clock=clock, config=CONFIG)
    flagged = 0
    for i in range(10_000):
        clock.advance(0.01)
        if monitor.observe("stripe", "invoice.updated", payload(i)):
            flagged += 1
        if i % 997 == 0:  # flushes land mid-change, as a timer's would
            await monitor.flush()
    await monitor.flush()
    findings = app.store.drift_findings()
    keys = Counter((f.kind, f.path, f.detail) for f in findings)
    assert all(n == 1 for n in keys.values()), keys  # raised once, not per event
    counts = {(f.kind, f.path, f.detail): f.count for f in findings}
    assert counts == expected_counts(10_000)
    assert all(f.source == "stripe" and f.event_type == "invoice.updated" for f in findings)
    # Every payload from event 1,000 on shows a change (tax is new): all flagged, and none before.
    assert flagged == 9000
    # Examples are the shape only: no value of any payload is kept.
    typed = next(f for f in findings if f.kind == "type_change")
    assert typed.example["path"] == "amount_due"
    assert typed.example["shape"]["customer"] == {"email": "<string>", "name": "<string>"}
    assert "buyer" not in str([f.example for f in findings])
    # The profile: paths, types, nullability, enum values and times.
    (stored,) = app.store.drift_profiles()
    fields = stored.profile["fields"]
    assert stored.profile["events"] == 10_000
    assert fields["amount_due"]["types"] == ["number", "string"]
    assert fields["due_date"]["nulls"] == 120
    assert fields["status"]["values"] == ["open", "paid", "uncollectible", "void"]
    assert fields["customer.email"]["values"] is None  # free text, not an enum
    assert fields["lines[].sku"]["types"] == ["string"]
    assert fields["tax"]["first_seen"] > fields["id"]["first_seen"]


async def test_no_findings_before_the_baseline_and_none_for_steady_payloads(
    app: Interlock, clock: FakeClock
) -> None:
    monitor = DriftMonitor(app.store, clock=clock, config=CONFIG)
    for i in range(900):
        clock.advance(0.01)
        assert monitor.observe("stripe", "invoice.updated", payload(i)) is None
    await monitor.flush()
    assert app.store.drift_findings() == []


async def test_a_restarted_monitor_keeps_counting_without_raising_again(
    app: Interlock, clock: FakeClock
) -> None:
    first = DriftMonitor(app.store, clock=clock, config=CONFIG)
    for i in range(1100):
        clock.advance(0.01)
        first.observe("stripe", "invoice.updated", payload(i))
    await first.flush()
    second = DriftMonitor(app.store, clock=clock, config=CONFIG)  # another process, or a restart
    for i in range(1100, 1150):
        clock.advance(0.01)
        flags = second.observe("stripe", "invoice.updated", payload(i))
        assert sorted(flags or ()) == ["new_field:tax", "new_field:tax.rate"]
    await second.flush()
    findings = app.store.drift_findings()
    assert sorted((f.path, f.count) for f in findings) == [("tax", 150), ("tax.rate", 150)]
    assert app.store.drift_profiles()[0].profile["events"] == 1150


async def test_profiles_are_kept_per_source_and_event_type(
    app: Interlock, clock: FakeClock
) -> None:
    monitor = DriftMonitor(app.store, clock=clock, config=CONFIG)
    for i in range(60):
        monitor.observe("stripe", "invoice.updated", payload(i))
        monitor.observe("shopify", "orders/create", {"id": i, "line_items": []})
    monitor.observe("shopify", "orders/create", {"id": "x", "line_items": []})
    await monitor.flush()
    (finding,) = app.store.drift_findings()
    assert (finding.source, finding.event_type, finding.kind) == (
        "shopify",
        "orders/create",
        "type_change",
    )
    assert [(p.source, p.event_type) for p in app.store.drift_profiles()] == [
        ("shopify", "orders/create"),
        ("stripe", "invoice.updated"),
    ]


async def test_the_app_monitor_writes_its_last_counts_on_shutdown(
    app: Interlock, clock: FakeClock
) -> None:
    from interlock.drift import flush_drift, monitor_of

    await flush_drift(app)  # no monitor yet: nothing to do, nothing created
    app.drift_config = DriftConfig(flush_every=3600)
    monitor = monitor_of(app)
    assert monitor_of(app) is monitor  # one per app in a process
    for i in range(3):
        monitor.observe("stripe", "invoice.updated", payload(i))
    assert app.store.drift_profiles() == []
    await flush_drift(app)  # what `interlock run`/`gateway` do when they stop
    assert app.store.drift_profiles()[0].profile["events"] == 3


async def test_maps_keyed_by_ids_and_endless_topics_stay_bounded(
    app: Interlock, clock: FakeClock
) -> None:
    monitor = DriftMonitor(app.store, clock=clock, config=DriftConfig(min_events=5, max_profiles=3))
    for i in range(500):  # metadata keyed by customer ids: every payload a new key
        monitor.observe("stripe", "customer.updated", {"id": i, "metadata": {f"cus_{i}": "x"}})
    for topic in range(10):
        monitor.observe("github", f"t{topic}", {"id": topic})
    await monitor.flush()
    new_fields = app.store.drift_findings(kind="new_field")
    assert len(new_fields) < 100
    assert sorted((p.source, p.event_type) for p in app.store.drift_profiles()) == [
        ("github", "(other)"),  # 8 more topics in one profile
        ("github", "t0"),
        ("github", "t1"),
        ("stripe", "customer.updated"),
    ]


async def test_times_on_a_busy_source_are_not_taken_for_enum_values(
    app: Interlock, clock: FakeClock
) -> None:
    # At hundreds of payloads a second, a time in whole seconds repeats hundreds of times
    # before it changes: it must not look like an enum whose "new values" are drift.
    monitor = DriftMonitor(app.store, clock=clock, config=CONFIG)
    for i in range(3000):
        clock.advance(0.002)
        second = 1_700_000_000 + i // 500
        body = {
            "type": "order.placed",
            "timestamp": str(second),
            "sent_at": f"2026-12-03T12:{i // 500:02d}:00Z",
            "api_version": "2024-06-20" if i < 2500 else "2025-01-01",
        }
        monitor.observe("bench", "order.placed", body)
    await monitor.flush()
    found = {(f.kind, f.path, f.detail) for f in app.store.drift_findings()}
    # A date alone can be a version label, and its change is worth a finding.
    assert found == {("new_enum_value", "api_version", "2025-01-01")}
