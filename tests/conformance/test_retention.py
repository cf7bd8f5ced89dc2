"""Retention: finished work past its age goes, in batches; dead letters, unfinished work,
their events and the audit trail stay."""

from __future__ import annotations

from interlock import Context, Contract, Interlock, Permanent, Retry
from interlock.retention import DAY, RetentionPolicy, prune
from interlock.stores.base import DeadFilter
from interlock.testing import FakeClock, drain


class Paid(Contract, event="invoice.paid", subject="invoice_id"):
    invoice_id: str
    account_id: str


class Noted(Contract, event="invoice.noted", subject="invoice_id"):
    invoice_id: str


async def test_finished_work_past_the_age_is_pruned_and_nothing_else(
    app: Interlock, clock: FakeClock
) -> None:
    @app.flow(
        Paid, owner="billing", key="account_id", retry=Retry(attempts=1), idempotency="invoice_id"
    )
    async def book(event: Paid, ctx: Context) -> None:
        await ctx.step("ledger", lambda: f"ledger:{event.invoice_id}")
        if event.invoice_id == "bad":
            raise Permanent("ledger refused the invoice")

    old = [await app.emit(Paid(invoice_id=f"i{n}", account_id=f"a{n}")) for n in range(5)]
    duplicate = await app.emit(Paid(invoice_id="i0", account_id="a9"))  # skipped: same invoice
    dead = await app.emit(Paid(invoice_id="bad", account_id="blocked"))
    queued = await app.emit(Paid(invoice_id="behind", account_id="blocked"))
    unrouted = await app.emit(Noted(invoice_id="i0"))  # no flow: an event without deliveries
    await drain(app)
    clock.advance(31 * DAY)
    recent = await app.emit(Paid(invoice_id="new", account_id="a1"))
    await drain(app)
    audit_before = app.store.list_audit()

    policy = RetentionPolicy(days=30, batch=2)
    deleted = await prune(app.store, policy, now=clock.now(), holder="test")
    # five succeeded and one skipped delivery, their six events and the unrouted one
    assert deleted == 6 + 7
    store = app.store
    for eid in [*old, duplicate, unrouted]:
        assert store.trace(eid).events == []
    kept = store.trace(dead)
    assert [d.status for d in kept.deliveries] == ["dead"]
    assert [s.name for s in kept.steps] == ["ledger"], "a dead letter keeps its checkpoints"
    assert [d.status for d in store.trace(queued).deliveries] == ["queued"]
    assert [d.status for d in store.trace(recent).deliveries] == ["succeeded"]
    assert [d.event_id for d in store.list_dead(DeadFilter())] == [dead]
    assert store.list_audit() == audit_before
    assert await prune(store, policy, now=clock.now(), holder="test") == 0

    # The dead letter, replayed and finished, becomes prunable once it is old enough.
    await store.replay([kept.deliveries[0].id], actor="ops", reason="ledger fixed", now=clock.now())
    assert await prune(store, policy, now=clock.now(), holder="test") == 0


async def test_one_pruner_at_a_time_and_zero_days_keeps_everything(
    app: Interlock, clock: FakeClock
) -> None:
    @app.flow(Paid, owner="billing")
    async def book(event: Paid) -> None:
        pass

    eid = await app.emit(Paid(invoice_id="i1", account_id="a1"))
    await drain(app)
    clock.advance(40 * DAY)
    store = app.store
    assert await prune(store, RetentionPolicy(days=0), now=clock.now(), holder="a") is None
    assert await store.take_lock(
        "interlock.retention", "b", until=clock.now() + 60, now=clock.now()
    )
    assert await prune(store, RetentionPolicy(days=30), now=clock.now(), holder="a") is None
    assert store.trace(eid).deliveries, "nothing pruned while another process holds the lock"
    await store.release_lock("interlock.retention", "b")
    assert await prune(store, RetentionPolicy(days=30), now=clock.now(), holder="a") == 2
    assert store.trace(eid).events == []
