"""The store's analytics against real data on SQLite: flow stats and series, SLO counts
(what decides a delivery good or bad, and when), samples for business metrics, alert rows."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from interlock import SLO, Contract, Interlock, Permanent, Retry, Retryable
from interlock.flows import BusinessMetric
from interlock.observability import flow_series, flow_stats, slo_report
from interlock.stores.analytics import NewAlert
from interlock.testing import FakeClock, drain

AppFactory = Callable[..., Interlock]


class Shipped(Contract, event="order.shipped.slo", subject="order_id"):
    order_id: str
    mode: str = "ok"  # ok | flaky (one retry) | dead
    amount: float = 0.0
    promised_at: str | None = None


def build(make_app: AppFactory) -> Interlock:
    app = make_app()
    seen: set[str] = set()

    @app.flow(
        Shipped,
        owner="ops@acme.test",
        key="order_id",
        slo=SLO(target=0.9, within="60s", window="1h"),
        retry=Retry(attempts=3, base="1s", cap="1s", jitter=False),
        metric=BusinessMetric("minutes to CRM", start="occurred_at", end="succeeded_at"),
        on_dead="skip",
    )
    async def ship(event: Shipped) -> None:
        if event.mode == "dead":
            raise Permanent("the carrier refused it")
        if event.mode == "flaky" and event.order_id not in seen:
            seen.add(event.order_id)
            raise Retryable("carrier timeout")

    @app.flow(Shipped, owner="ops@acme.test", name="audit_only")
    async def audit_only(event: Shipped) -> None:
        return None

    return app


async def test_stats_series_and_slo_counts(make_app: AppFactory, clock: FakeClock) -> None:
    app = build(make_app)
    t0 = clock.now()
    for i in range(4):  # on time: 10 s after arrival
        await app.emit(Shipped(order_id=f"ok{i}"))
    clock.advance(10)
    await drain(app)
    await app.emit(Shipped(order_id="late"))  # late: 120 s after arrival
    clock.advance(120)
    await drain(app)
    await app.emit(Shipped(order_id="flaky", mode="flaky"))  # one retry, then on time
    await app.emit(Shipped(order_id="gone", mode="dead"))  # dead at once
    await drain(app, advance=True)
    flaky_done = clock.now()
    await app.emit(Shipped(order_id="stuck"))  # never worked: in flight
    stuck_at = clock.now()
    end = clock.now() + 1

    stats = flow_stats(app, t0, end)
    s = stats["ship"]
    assert (s.events_in, s.succeeded, s.on_time, s.dead, s.retries) == (8, 6, 5, 1, 1)
    assert s.attempts == 8 and s.error_classes == {"permanent": 1, "retryable": 1}
    assert s.lag_p50 == pytest.approx(10) and s.lag_p99 == pytest.approx(120)
    assert s.success_rate == pytest.approx(6 / 7)
    assert stats["audit_only"].events_in == 8 and stats["audit_only"].succeeded == 7

    series = flow_series(app, "ship", t0, end, 30)
    assert len(series) == 5 and series[0].since == t0 and series[-1].until == end
    assert sum(b.events_in for b in series) == 8
    assert sum(b.succeeded for b in series) == 6 and sum(b.dead for b in series) == 1
    assert series[0].events_in == 5 and series[0].succeeded == 4  # the four on-time ones
    # the late one (t0 + 130) and the flaky one (on time, after one retry)
    assert (series[4].succeeded, series[4].on_time, series[4].retries) == (2, 1, 1)
    with pytest.raises(ValueError, match="buckets"):
        app.store.flow_series("ship", t0, t0 + 10_000, 1)

    # SLO: decided good at success within 60 s, bad at death or when the bound passes.
    counts = app.store.slo_counts("ship", 60, [(t0 - 10, end)], now=end)[0]
    assert (counts.good, counts.bad) == (5, 2)  # late + dead; stuck is not overdue yet
    later = stuck_at + 61
    whole, before, after = app.store.slo_counts(
        "ship", 60, [(t0, later), (t0, stuck_at + 60), (stuck_at + 60, later)], now=later
    )
    assert (whole.good, whole.bad) == (5, 3)  # stuck is overdue now: bad
    assert before.total + after.total == whole.total and after.bad == 1
    # the late one was decided bad when its bound passed (t0 + 10 + 60), not at its success
    at_bound = app.store.slo_counts("ship", 60, [(t0 + 70, t0 + 71)], now=later)[0]
    assert (at_bound.good, at_bound.bad) == (0, 1)
    assert flaky_done > t0

    health = {h.flow: h for h in slo_report(app, later)}
    slo = health["ship"].slo
    assert slo is not None and (slo.good, slo.bad) == (5, 3)
    assert slo.sli == pytest.approx(5 / 8)
    assert slo.budget_remaining == pytest.approx(1 - (3 / 8) / 0.1)
    assert slo.status == "exhausted" and health["audit_only"].slo is None
    metric = health["ship"].metric
    assert metric is not None and metric.samples == 6
    assert metric.value == pytest.approx(10 / 60)  # p50 of the minutes to success


async def test_samples_and_duplicates(make_app: AppFactory, clock: FakeClock) -> None:
    app = build(make_app)
    t0 = clock.now()
    await app.emit(Shipped(order_id="a", amount=12.5), idempotency_key="a")
    await app.emit(Shipped(order_id="a", amount=12.5), idempotency_key="a")  # same event
    await drain(app)
    samples = app.store.flow_samples("ship", t0, t0 + 1)
    assert [s.data["amount"] for s in samples] == [12.5]
    assert samples[0].succeeded_at == t0
    (bare,) = app.store.flow_samples("ship", t0, t0 + 1, data=False)
    assert bare.data == {} and bare.succeeded_at == t0 and bare.event_id == samples[0].event_id


async def test_alert_rows(make_app: AppFactory, clock: FakeClock) -> None:
    app = build(make_app)
    store = app.store
    now = clock.now()

    def alert(at: float, burn: float) -> NewAlert:
        return NewAlert("ship", "page", at, burn, burn, 3600, 300, 14.4, 0.5, f"burn {burn}")

    row, new = await store.fire_alert(alert(now, 20))
    assert new and row.state == "firing" and row.fired_at == now
    again, new = await store.fire_alert(alert(now + 30, 30))
    assert not new and again.id == row.id and again.burn_long == 30 and again.fired_at == now
    assert [a.id for a in store.list_alerts(firing=True)] == [row.id]
    done = await store.resolve_alert("ship", "page", now=now + 60)
    assert done is not None and done.state == "resolved" and done.resolved_at == now + 60
    assert await store.resolve_alert("ship", "page", now=now + 61) is None
    second, new = await store.fire_alert(alert(now + 90, 15))
    assert new and second.id != row.id
    assert [a.id for a in store.list_alerts()] == [second.id, row.id]
    assert [a.id for a in store.list_alerts(firing=False)] == [row.id]
    assert store.list_alerts(since=now + 70, firing=False) == []
    assert store.list_alerts(flow="other") == []


async def test_rolled_up_minutes_count_the_same(make_app: AppFactory, clock: FakeClock) -> None:
    app = build(make_app)
    store = app.store
    t0 = clock.now()
    for i in range(40):  # 20 minutes of mixed traffic, some late, some dead, some stuck
        mode = "dead" if i % 7 == 0 else "ok"
        await app.emit(Shipped(order_id=f"o{i}", mode=mode))
        clock.advance(15 if i % 5 else 75)  # every fifth one is late (past 60 s)
        if i % 11 != 3:
            await drain(app)
    now = clock.now()
    ranges = [(t0, now), (t0 + 90, now - 200), (now - 3600, now), (t0 + 123.4, t0 + 777.7)]
    raw = store.slo_counts("ship", 60, ranges, now=now)
    assert raw[0].total > 30 and raw[0].bad > 5

    rolled = await store.roll_up_slo("ship", 60, now=now, keep=3600)
    assert rolled > 15
    assert await store.roll_up_slo("ship", 60, now=now, keep=3600) == 0  # nothing new
    assert store.slo_counts("ship", 60, ranges, now=now) == raw
    # the rollup is what answers: its minutes are summed, not scanned
    sums = store._read("SELECT sum(good), sum(bad) FROM slo_minutes WHERE flow = 'ship'")
    (mark,) = store._read("SELECT since, upto FROM slo_marks WHERE flow = 'ship'")
    assert mark[0] % 60 == 0 and mark[1] % 60 == 0 and mark[1] <= now - 120
    in_rollup = store.slo_counts("ship", 60, [(mark[0], mark[1])], now=now)[0]
    assert (in_rollup.good, in_rollup.bad) == sums[0]

    clock.advance(600)  # later passes roll up only the new minutes, and old ones leave
    later = clock.now()
    check = [(later - 900, later), (t0, later)]
    scanned = store.slo_counts("ship", 60, check, now=later)  # the new minutes scanned
    assert 0 < await store.roll_up_slo("ship", 60, now=later, keep=900) <= 11
    assert store.slo_counts("ship", 60, check, now=later) == scanned
    (mark2,) = store._read("SELECT since, upto FROM slo_marks WHERE flow = 'ship'")
    assert mark2[0] >= later - 960 and mark2[1] > mark[1]
    oldest = store._read("SELECT min(minute) FROM slo_minutes WHERE flow = 'ship'")[0][0]
    assert oldest is None or oldest >= mark2[0]
