"""The store under the runtime: fencing, expired leases, restarts, contract dead letters,
trace."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from interlock import (
    Context,
    Contract,
    Interlock,
    Retry,
)
from interlock.errors import LeaseLost
from interlock.stores.base import Claimed, DeadFilter, Outcome, OutcomeKind
from interlock.testing import FakeClock, drain

AppFactory = Callable[..., Interlock]


class OrderPaid(Contract, event="order.paid", subject="order_id"):
    order_id: str
    account_id: str


class Refunded(Contract, event="order.refunded", subject="order_id"):
    order_id: str


def _register(app: Interlock, calls: list[str], *, attempts: int = 5) -> None:
    @app.flow(OrderPaid, owner="billing", key="account_id", retry=Retry(attempts=attempts))
    async def invoice(event: OrderPaid, ctx: Context) -> None:
        await ctx.step("create-invoice", lambda: calls.append(event.order_id) or "inv_1")


def _outcome(claimed: Claimed, kind: OutcomeKind, now: float) -> Outcome:
    return Outcome(claimed.delivery_id, claimed.fence, claimed.flow, claimed.lane, kind, now, now)


async def test_a_superseded_lease_cannot_write_and_the_new_owner_wins(
    app: Interlock, clock: FakeClock
) -> None:
    _register(app, [])
    eid = await app.emit(OrderPaid(order_id="o1", account_id="a1"))
    store = app.store
    (first,) = await store.claim("worker-a", 10, clock.now(), 30.0)
    assert await store.claim("worker-b", 10, clock.now(), 30.0) == [], "leased: not claimable"
    clock.advance(31)
    (second,) = await store.claim("worker-b", 10, clock.now(), 30.0)
    assert second.delivery_id == first.delivery_id
    assert second.fence > first.fence

    now = clock.now()
    with pytest.raises(LeaseLost):
        await store.record_step(first.delivery_id, first.fence, "create-invoice", b'"late"', now)
    with pytest.raises(LeaseLost):
        await store.settle(
            _outcome(first, "succeeded", now), worker="worker-a", chain=False, now=now, lease=30
        )

    await store.record_step(second.delivery_id, second.fence, "create-invoice", b'"inv_b"', now)
    await store.settle(
        _outcome(second, "succeeded", now), worker="worker-b", chain=False, now=now, lease=30
    )
    # Even after the new owner finished, the old one's writes stay refused.
    with pytest.raises(LeaseLost):
        await store.settle(
            _outcome(first, "retry", now), worker="worker-a", chain=False, now=now, lease=30
        )
    trace = store.trace(eid)
    assert trace.deliveries[0].status == "succeeded"
    assert [(s.name, s.result) for s in trace.steps] == [("create-invoice", "inv_b")]
    assert [(a.worker, a.outcome) for a in trace.attempts] == [
        ("worker-a", "lease_expired"),
        ("worker-b", "succeeded"),
    ]


async def test_a_reclaimed_expired_lease_is_recorded_as_an_attempt(
    app: Interlock, clock: FakeClock
) -> None:
    calls: list[str] = []
    _register(app, calls)
    eid = await app.emit(OrderPaid(order_id="o1", account_id="a1"))
    await app.emit(OrderPaid(order_id="o2", account_id="a1"))
    (crashed,) = await app.store.claim("crashed-worker", 10, clock.now(), 30.0)
    await drain(app)
    assert calls == [], "the lease is still valid: nobody else runs it, nor its lane"
    await drain(app, advance=True)
    assert calls == ["o1", "o2"]
    trace = app.store.trace(eid)
    (delivery,) = trace.deliveries
    assert delivery.status == "succeeded"
    assert delivery.attempts == 1, "the lost run counts against the retry budget"
    lost, done = trace.attempts
    assert (lost.worker, lost.outcome, lost.error_class) == (
        "crashed-worker",
        "lease_expired",
        "retryable",
    )
    assert lost.reason is not None
    assert "crashed-worker stopped heartbeating" in lost.reason
    assert lost.started_at >= crashed.first_attempt_at + 30.0
    assert done.outcome == "succeeded"


async def test_expired_leases_use_up_the_retry_budget(app: Interlock, clock: FakeClock) -> None:
    calls: list[str] = []
    _register(app, calls, attempts=1)
    await app.emit(OrderPaid(order_id="o1", account_id="a1"))
    await app.store.claim("crashed-worker", 10, clock.now(), 30.0)
    await drain(app, advance=True)
    assert calls == []
    (dead,) = app.store.list_dead(DeadFilter())
    assert dead.reason == "retry budget used up by runs whose lease expired"
    assert dead.error_class == "retryable"


async def test_an_unknown_flow_is_rescheduled_not_lost(
    make_app: AppFactory, clock: FakeClock
) -> None:
    old = make_app("old")
    _register(old, [])
    eid = await old.emit(OrderPaid(order_id="o1", account_id="a1"))
    old.close()

    newer = make_app("newer")  # a worker running code without that flow
    await drain(newer)
    (delivery,) = newer.store.trace(eid).deliveries
    assert delivery.status == "pending"
    assert delivery.due_at == clock.now() + 60
    assert delivery.attempts == 0
    (attempt,) = newer.store.trace(eid).attempts
    assert attempt.outcome == "retry"
    assert attempt.reason == (
        "flow 'invoice' is not registered in this worker; is it running older code?"
    )
    newer.close()

    calls: list[str] = []
    fixed = make_app("fixed")
    _register(fixed, calls)
    await drain(fixed, advance=True)
    assert calls == ["o1"]
    assert fixed.store.get_delivery(delivery.id).status == "succeeded"


async def test_a_new_instance_on_the_same_file_sees_everything(
    make_app: AppFactory, clock: FakeClock
) -> None:
    def declare(app: Interlock, calls: list[str]) -> None:
        @app.flow(OrderPaid, owner="billing", key="account_id", retry=Retry(attempts=1))
        async def invoice(event: OrderPaid, ctx: Context) -> None:
            if event.order_id == "bad":
                raise RuntimeError("tax service refused")
            await ctx.step("invoice", lambda: calls.append(event.order_id))
            if event.order_id == "slow":
                refund = await ctx.wait_for_event(Refunded, match={"order_id": "slow"})
                calls.append(f"refund:{refund.order_id if refund else None}")

    first_calls: list[str] = []
    first = make_app("first")
    declare(first, first_calls)
    done = await first.emit(OrderPaid(order_id="o1", account_id="a1"), idempotency_key="k1")
    await first.emit(OrderPaid(order_id="bad", account_id="a2"))
    waiting = await first.emit(OrderPaid(order_id="slow", account_id="a3"))
    await drain(first)
    assert first_calls == ["o1", "slow"]
    first.close()

    second_calls: list[str] = []
    second = make_app("second")
    declare(second, second_calls)
    store = second.store
    assert store.trace(done).deliveries[0].status == "succeeded"
    assert [d.event_type for d in store.list_dead(DeadFilter())] == ["order.paid"]
    assert store.trace(waiting).deliveries[0].status == "waiting"
    assert store.stats(clock.now()).events == 3
    assert (
        await second.emit(OrderPaid(order_id="o1", account_id="a1"), idempotency_key="k1") == done
    )

    await second.emit(Refunded(order_id="slow"))
    await drain(second)
    assert second_calls == ["refund:slow"], "the wait resumed; the checkpointed step did not rerun"
    assert store.trace(waiting).deliveries[0].status == "succeeded"


async def test_stored_data_that_breaks_the_contract_is_a_contract_dead_letter(
    make_app: AppFactory,
) -> None:
    # Stored by the code of yesterday, whose flow never got to run it...
    old = make_app("old")

    @old.flow(OrderPaid, owner="billing", name="book")
    async def book_v0(event: OrderPaid) -> None:
        raise AssertionError("the old code never runs")

    eid = await old.emit(OrderPaid(order_id="o1", account_id="a1"))
    old.close()

    # ...delivered by today's code, whose contract now requires a currency.
    class OrderPaidStricter(Contract, event="order.paid"):
        order_id: str
        account_id: str
        currency: str

    calls: list[str] = []
    new = make_app("new")

    @new.flow(OrderPaidStricter, owner="billing", retry=Retry(attempts=5))
    async def book(event: OrderPaidStricter) -> None:
        calls.append(event.order_id)

    await drain(new, advance=True)
    assert calls == []
    (dead,) = new.store.list_dead(DeadFilter())
    assert dead.event_id == eid
    assert dead.error_class == "contract_violation"
    assert dead.reason is not None
    assert "currency: Field required" in dead.reason
    assert dead.context is not None
    assert dead.context["errors"] == [
        {"field": "currency", "type": "missing", "message": "Field required"}
    ]
    assert len(new.store.trace(eid).attempts) == 1, "a contract violation is not retried"


async def test_an_event_stored_under_a_newer_version_is_a_contract_dead_letter(
    make_app: AppFactory,
) -> None:
    class InvoiceV2(Contract, event="invoice.sent", version=2):
        invoice_id: str

    class InvoiceV1(Contract, event="invoice.sent", version=1):
        invoice_id: str

    app = make_app()

    @app.flow(InvoiceV1, owner="billing")
    async def archive(event: InvoiceV1) -> None:
        pass

    await app.emit(InvoiceV2(invoice_id="i1"))
    await drain(app, advance=True)
    (dead,) = app.store.list_dead(DeadFilter())
    assert dead.error_class == "contract_violation"
    assert "invoice.sent v2 is newer than the code's v1" in (dead.reason or "")


async def test_trace_by_event_subject_and_correlation(app: Interlock) -> None:
    @app.flow(OrderPaid, owner="billing", key="account_id", retry=Retry(attempts=3))
    async def invoice(event: OrderPaid, ctx: Context) -> None:
        await ctx.step("create-invoice", lambda: {"invoice": "inv_1"})
        if ctx.attempt == 1:
            raise RuntimeError("pdf renderer busy")
        await ctx.emit(Refunded(order_id=event.order_id))

    @app.flow(Refunded, owner="billing")
    async def notify(event: Refunded) -> None:
        pass

    root = await app.emit(OrderPaid(order_id="o1", account_id="a1"))
    await app.emit(OrderPaid(order_id="o2", account_id="a1"))
    await drain(app, advance=True)
    correlation = app.store.get_event(root).correlation_id

    by_id = app.store.trace(root)
    assert [e.type for e in by_id.events] == ["order.paid", "order.refunded"]
    assert {e.correlation_id for e in by_id.events} == {correlation}
    assert [(d.flow, d.status) for d in by_id.deliveries] == [
        ("invoice", "succeeded"),
        ("notify", "succeeded"),
    ]
    invoice_id = by_id.deliveries[0].id
    assert [(a.delivery_id, a.outcome) for a in by_id.attempts] == [
        (invoice_id, "retry"),
        (invoice_id, "succeeded"),
        (by_id.deliveries[1].id, "succeeded"),
    ]
    assert [(s.name, s.result) for s in by_id.steps] == [("create-invoice", {"invoice": "inv_1"})]

    for query in ("order:o1", "o1", correlation, f"  {root}  "):
        trace = app.store.trace(query)
        assert [e.id for e in trace.events] == [e.id for e in by_id.events], query
        assert trace.deliveries == by_id.deliveries
        assert trace.attempts == by_id.attempts
        assert trace.steps == by_id.steps

    assert app.store.trace("o3").events == []
    assert app.store.trace("evt_nope").events == []


async def test_trace_by_a_numeric_subject(app: Interlock) -> None:
    app.contract(OrderPaid)
    eid = await app.emit(OrderPaid(order_id="1042", account_id="a1"))
    assert [e.id for e in app.store.trace("order:1042").events] == [eid]
    assert [e.id for e in app.store.trace("1042").events] == [eid]


async def test_trace_of_subjects_with_like_wildcards_is_literal(app: Interlock) -> None:
    app.contract(OrderPaid)
    await app.emit(OrderPaid(order_id="o_1", account_id="a1"))
    await app.emit(OrderPaid(order_id="ox1", account_id="a1"))
    assert [e.subject for e in app.store.trace("o_1").events] == ["order:o_1"]
    assert [e.subject for e in app.store.trace("o%").events] == []


async def test_trace_by_delivery_id(app: Interlock) -> None:
    _register(app, [])
    eid = await app.emit(OrderPaid(order_id="o1", account_id="a1"))
    (delivery,) = app.store.trace(eid).deliveries
    for query in (f"dlv_{delivery.id}", str(delivery.id)):
        assert [e.id for e in app.store.trace(query).events] == [eid], query
    assert app.store.trace("dlv_999").events == []
    assert app.store.trace("dlv_nope").events == []
