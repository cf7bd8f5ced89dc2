"""The contracts part of the store, on every store: drift profiles merged from several
processes, findings raised once and counted, payload samples, version markers, and the
delivery outcomes contracts need (skipped, parked until a matching event)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from interlock import Context, Contract, Interlock, MissingRecord
from interlock.drift import DriftConfig, DriftMonitor
from interlock.stores.contract_records import DriftBatch, FindingUpdate, Sample
from interlock.testing import FakeClock, drain

AppFactory = Callable[..., Interlock]
CONFIG = DriftConfig(min_events=10, flush_every=3600)


async def test_profiles_from_two_processes_merge_and_findings_are_raised_once(
    make_app: AppFactory, clock: FakeClock
) -> None:
    app = make_app()
    first = DriftMonitor(app.store, clock=clock, config=CONFIG)
    second = DriftMonitor(app.store, clock=clock, config=CONFIG)
    for i in range(20):
        first.observe("shop", "orders/create", {"id": i, "status": ["a", "b"][i % 2]})
        second.observe("shop", "orders/create", {"id": i, "status": ["a", "b"][i % 2]})
    for monitor in (first, second):
        monitor.observe("shop", "orders/create", {"id": "x", "status": "a", "gift": True})
        await monitor.flush()
    first.observe("shop", "orders/create", {"id": 1, "status": "a", "gift": False})
    await first.flush()
    (profile,) = app.store.drift_profiles()
    assert profile.profile["events"] == 43
    assert profile.profile["fields"]["id"]["types"] == ["number", "string"]
    assert profile.profile["fields"]["status"]["values"] == ["a", "b"]
    findings = {(f.kind, f.path): f.count for f in app.store.drift_findings()}
    assert findings == {("new_field", "gift"): 3, ("type_change", "id"): 2}
    assert [f.path for f in app.store.drift_findings(kind="new_field")] == ["gift"]
    assert app.store.drift_findings(source="other") == []


async def test_finding_updates_add_counts_and_keep_the_first_example(app: Interlock) -> None:
    def update(count: int, example: Any, at: float) -> FindingUpdate:
        return FindingUpdate("s", "t", "new_field", "x", "", example, count, at, at)

    await app.store.save_drift(DriftBatch(findings=[update(1, {"first": 1}, 10.0)]), now=10.0)
    await app.store.save_drift(DriftBatch(findings=[update(4, {"second": 2}, 20.0)]), now=20.0)
    (finding,) = app.store.drift_findings()
    assert (finding.count, finding.example) == (5, {"first": 1})
    assert (finding.first_seen, finding.last_seen) == (10.0, 20.0)


async def test_samples_keep_the_newest_per_source_and_topic(app: Interlock) -> None:
    samples = [
        Sample("shop", topic, {"x-topic": str(topic)}, {"n": n}, float(n))
        for n in range(6)
        for topic in ("orders/create", None)
    ]
    await app.store.save_drift(DriftBatch(samples=samples, keep_samples=3), now=1.0)
    kept = app.store.contract_samples("shop", topic="orders/create")
    assert [s.payload["n"] for s in kept] == [5, 4, 3]
    assert kept[0].headers == {"x-topic": "orders/create"}
    assert len(app.store.contract_samples("shop")) == 6
    assert app.store.contract_samples("other") == []


async def test_markers_only_move_forward(app: Interlock) -> None:
    assert app.store.marker_of("flow", "contact:1") is None
    assert await app.store.advance_marker("flow", "contact:1", 5.0, "evt_5", now=1.0)
    assert not await app.store.advance_marker("flow", "contact:1", 3.0, "evt_3", now=2.0)
    assert not await app.store.advance_marker("flow", "contact:1", 5.0, "evt_5b", now=3.0)
    assert await app.store.advance_marker("flow", "contact:1", 7.5, "evt_7", now=4.0)
    marker = app.store.marker_of("flow", "contact:1")
    assert marker is not None
    assert (marker.value, marker.event_id, marker.updated_at) == (7.5, "evt_7", 4.0)
    assert app.store.marker_of("other", "contact:1") is None


class Ticket(Contract, event="ticket.updated", subject="ticket_id", marker="seq"):
    ticket_id: str
    seq: int


class Synced(Contract, event="account.synced"):
    account_id: str


async def test_skipped_outcomes_free_their_lane_and_parks_wait_for_their_event(
    app: Interlock,
) -> None:
    applied: list[int] = []
    known: set[str] = set()

    @app.flow(Ticket, owner="support", key="ticket_id", on_missing="park")
    async def apply(event: Ticket, ctx: Context) -> None:
        if event.seq == 9 and "a1" not in known:
            raise MissingRecord("account a1", wait_for=Synced, match={"account_id": "a1"})
        applied.append(event.seq)

    for seq in (2, 1, 3, 9):  # 1 is stale: skipped, and the lane goes on
        await app.emit(Ticket(ticket_id="t1", seq=seq))
    await drain(app)
    assert applied == [2, 3]
    statuses = sorted(d.status for d in app.store.list_deliveries())
    assert statuses == ["skipped", "succeeded", "succeeded", "waiting"]
    known.add("a1")
    await app.emit(Synced(account_id="a1"))
    await drain(app)
    assert applied == [2, 3, 9]
