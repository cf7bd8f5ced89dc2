"""The alert evaluator on a fake clock: one evaluator at a time (the store lock, taken over
when its holder stops renewing it), one notice per transition, a failing sink retried at
the next passes and then given up, alerts of flows the app no longer declares resolved."""

from __future__ import annotations

from collections.abc import Callable

from interlock import SLO, Contract, Interlock, Retry, Retryable
from interlock.observability import AlertEvaluator, AlertNotice, AlertPolicy, BurnWindow
from interlock.testing import FakeClock, drain

AppFactory = Callable[..., Interlock]


class Synced(Contract, event="account.synced.alerts", subject="account_id"):
    account_id: str
    ok: bool = True


class Recorder:
    def __init__(self, failures: int = 0) -> None:
        self.got: list[str] = []
        self.failures = failures

    async def send(self, notice: AlertNotice) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("the pager is down")
        self.got.append(notice.id)


def build(make_app: AppFactory, name: str = "sync") -> Interlock:
    app = make_app()

    @app.flow(
        Synced,
        owner="ops@acme.test",
        name=name,
        slo=SLO(target=0.9, within="30s", window="1d"),
        retry=Retry(attempts=1),
        on_dead="skip",
    )
    async def sync(event: Synced) -> None:
        if not event.ok:
            raise Retryable("the CRM is down")

    app.alerting.policy = AlertPolicy(
        windows=(BurnWindow("page", long="10m", short="1m", factor=5),), min_events=3
    )
    app.alerting.every = 10
    return app


async def traffic(app: Interlock, clock: FakeClock, ok: bool, n: int) -> None:
    for i in range(n):
        await app.emit(Synced(account_id=f"a{i}", ok=ok))
        clock.advance(2)
        await drain(app)


async def test_one_evaluator_one_notice_per_transition(
    make_app: AppFactory, clock: FakeClock
) -> None:
    app = build(make_app)
    flaky, steady = Recorder(failures=1), Recorder()
    app.alerting.sinks = [flaky, steady]
    first, second = AlertEvaluator(app, holder="one"), AlertEvaluator(app, holder="two")

    await traffic(app, clock, ok=True, n=10)
    assert await first.evaluate(clock.now()) == []
    await traffic(app, clock, ok=False, n=20)  # 40 s of failures: both windows burn
    (fired,) = await first.evaluate(clock.now())
    assert (fired.kind, fired.alert.flow, fired.alert.severity) == ("fired", "sync", "page")
    assert steady.got == [f"alert_{fired.alert.id}_fired"] and flaky.got == []
    assert await second.evaluate(clock.now()) == [], "the lock is held: the other one waits"
    clock.advance(5)
    assert await first.evaluate(clock.now()) == [], "still firing: no second notice"
    assert flaky.got == [f"alert_{fired.alert.id}_fired"], "retried at the next pass"
    (row,) = app.store.list_alerts(firing=True)
    assert row.updated_at == clock.now() and row.fired_at < row.updated_at

    clock.advance(60)  # "one" stops evaluating; once its lock expires "two" takes over
    await traffic(app, clock, ok=True, n=40)  # 80 s of successes: the short window is clean
    (resolved,) = await second.evaluate(clock.now())
    assert resolved.kind == "resolved" and resolved.alert.id == fired.alert.id
    assert steady.got[-1] == f"alert_{fired.alert.id}_resolved"
    assert app.store.list_alerts(firing=True) == []
    assert await first.evaluate(clock.now()) == [], "two holds the lock now"


async def test_a_sink_that_keeps_failing_is_given_up(
    make_app: AppFactory, clock: FakeClock
) -> None:
    app = build(make_app)
    broken = Recorder(failures=100)
    app.alerting.sinks = [broken]
    app.alerting.retries = 2
    evaluator = AlertEvaluator(app)
    await traffic(app, clock, ok=False, n=10)
    assert len(await evaluator.evaluate(clock.now())) == 1
    for _ in range(4):
        clock.advance(10)
        await evaluator.evaluate(clock.now())
    assert broken.failures == 100 - 3, "the first try and two retries, then no more"


async def test_alerts_of_flows_no_longer_declared_resolve(
    make_app: AppFactory, clock: FakeClock
) -> None:
    old = build(make_app, name="old_sync")
    old.alerting.sinks = []
    await traffic(old, clock, ok=False, n=10)
    assert len(await AlertEvaluator(old).evaluate(clock.now())) == 1
    renamed = build(make_app, name="new_sync")  # the same store, the flow renamed
    got = Recorder()
    renamed.alerting.sinks = [got]
    clock.advance(60)  # the first evaluator's lock expires
    (notice,) = await AlertEvaluator(renamed).evaluate(clock.now())
    assert (notice.kind, notice.alert.flow, notice.owner) == ("resolved", "old_sync", "")
    assert got.got == [notice.id]
