"""Per-key order, retries recorded as attempts, dead letters, replay and discard."""

from __future__ import annotations

import itertools
from collections import defaultdict

from interlock import Context, Contract, Interlock, Permanent, RateLimited, Retry, Retryable
from interlock.stores.base import DeadFilter
from interlock.testing import FakeClock, drain


class Ticket(Contract, event="ticket.opened", subject="ticket_id"):
    ticket_id: str
    account_id: str


def _ticket(ticket_id: str, account_id: str = "a1") -> Ticket:
    return Ticket(ticket_id=ticket_id, account_id=account_id)


class Plan:
    """How many times each ticket fails before it succeeds (missing: never fails)."""

    def __init__(self, failures: dict[str, int | float] | None = None) -> None:
        self.failures: dict[str, int | float] = dict(failures or {})
        self.calls: dict[str, int] = defaultdict(int)
        self.succeeded: list[str] = []

    def run(self, event: Ticket) -> None:
        self.calls[event.ticket_id] += 1
        if self.calls[event.ticket_id] <= self.failures.get(event.ticket_id, 0):
            raise ConnectionError(f"vendor down for {event.ticket_id}")
        self.succeeded.append(event.ticket_id)


def _flow(app: Interlock, plan: Plan, *, attempts: int = 3, on_dead: str = "block") -> None:
    @app.flow(
        Ticket,
        owner="support",
        key="account_id",
        retry=Retry(attempts=attempts, base="1s", cap="1m"),
        on_dead=on_dead,
    )
    async def open_ticket(event: Ticket, ctx: Context) -> None:
        plan.run(event)


async def test_a_failing_head_blocks_only_its_own_lane(app: Interlock) -> None:
    plan = Plan({"t1": 2})
    _flow(app, plan)
    for ticket_id, account in [("t1", "a1"), ("t2", "a1"), ("t3", "a2"), ("t4", "a2")]:
        await app.emit(_ticket(ticket_id, account))
    await drain(app)  # only what is due now: t1 fails and waits for its backoff
    assert plan.succeeded == ["t3", "t4"]
    assert plan.calls["t2"] == 0
    await drain(app, advance=True)
    assert plan.succeeded == ["t3", "t4", "t1", "t2"]
    assert plan.calls == {"t1": 3, "t2": 1, "t3": 1, "t4": 1}


async def test_events_of_one_key_run_in_event_order(app: Interlock) -> None:
    plan = Plan({f"t{i}": i % 3 for i in range(12)})
    _flow(app, plan)
    for i in range(12):
        await app.emit(_ticket(f"t{i}", f"a{i % 2}"))
    await drain(app, advance=True)
    for account in ("a0", "a1"):
        mine = [t for t in plan.succeeded if int(t[1:]) % 2 == int(account[1:])]
        assert mine == sorted(mine, key=lambda t: int(t[1:]))
    assert len(plan.succeeded) == 12


async def test_retries_are_recorded_as_attempts_with_backoff(
    app: Interlock, clock: FakeClock
) -> None:
    plan = Plan({"t1": 2})
    _flow(app, plan, attempts=5)
    eid = await app.emit(_ticket("t1"))
    await drain(app, advance=True)
    trace = app.store.trace(eid)
    (delivery,) = trace.deliveries
    assert delivery.status == "succeeded"
    assert delivery.attempts == 2  # failures counted against the budget
    assert delivery.runs == 3
    attempts = trace.attempts
    assert [a.number for a in attempts] == [1, 2, 3]
    assert [a.outcome for a in attempts] == ["retry", "retry", "succeeded"]
    assert [a.error_class for a in attempts] == ["retryable", "retryable", None]
    assert attempts[0].reason == "ConnectionError: vendor down for t1"
    assert attempts[2].reason is None
    # Full jitter: attempt n waits within [0, base * 2**(n-1)].
    assert attempts[0].delay is not None
    assert 0 <= attempts[0].delay <= 1.0
    assert attempts[1].delay is not None
    assert 0 <= attempts[1].delay <= 2.0
    # The next run happens when its delay has passed, not before.
    for previous, following in itertools.pairwise(attempts):
        assert previous.delay is not None
        assert following.started_at == previous.finished_at + previous.delay
    assert {a.worker for a in attempts} != {None}


async def test_rate_limited_attempts_wait_and_do_not_use_the_budget(app: Interlock) -> None:
    calls = 0

    @app.flow(Ticket, owner="support", retry=Retry(attempts=2))
    async def sync_tickets(event: Ticket) -> None:
        nonlocal calls
        calls += 1
        if calls <= 3:
            raise RateLimited("slow down", retry_after=30)

    eid = await app.emit(_ticket("t1"))
    await drain(app, advance=True)
    trace = app.store.trace(eid)
    assert trace.deliveries[0].status == "succeeded"
    assert trace.deliveries[0].attempts == 0
    assert [(a.outcome, a.error_class, a.delay) for a in trace.attempts] == [
        ("retry", "rate_limited", 30.0),
        ("retry", "rate_limited", 30.0),
        ("retry", "rate_limited", 30.0),
        ("succeeded", None, None),
    ]


async def test_permanent_errors_dead_letter_at_once(app: Interlock) -> None:
    calls = 0

    @app.flow(Ticket, owner="support", retry=Retry(attempts=10))
    async def close_ticket(event: Ticket) -> None:
        nonlocal calls
        calls += 1
        raise Permanent("account a1 was deleted in the CRM")

    eid = await app.emit(_ticket("t1"))
    await drain(app, advance=True)
    assert calls == 1
    (delivery,) = app.store.trace(eid).deliveries
    assert (delivery.status, delivery.error_class) == ("dead", "permanent")
    assert delivery.reason == "Permanent: account a1 was deleted in the CRM"


async def test_dead_after_attempts_exhausted_blocks_the_lane(app: Interlock) -> None:
    plan = Plan({"t1": float("inf"), "t3": 1})
    _flow(app, plan, attempts=3, on_dead="block")
    first = await app.emit(_ticket("t1", "a1"))
    await app.emit(_ticket("t2", "a1"))
    await app.emit(_ticket("t3", "a2"))
    await drain(app, advance=True)
    assert plan.calls["t1"] == 3
    assert plan.succeeded == ["t3"], "the other lane is not blocked"
    assert plan.calls["t2"] == 0, "the lane stays parked behind its dead head"
    (dead,) = app.store.list_dead(DeadFilter())
    assert dead.event_id == first
    assert (dead.status, dead.error_class, dead.attempts) == ("dead", "retryable", 3)
    assert dead.reason == "ConnectionError: vendor down for t1"
    assert dead.context is not None
    assert dead.context["attempts"] == 3
    assert dead.context["on_dead"] == "block"
    assert dead.context["event_type"] == "ticket.opened"
    assert "ConnectionError" in dead.context["traceback"]
    assert [a.outcome for a in app.store.trace(first).attempts] == ["retry", "retry", "dead"]
    assert app.store.next_due_at() is None


async def test_dead_with_on_dead_skip_lets_the_lane_continue(app: Interlock) -> None:
    plan = Plan({"t1": float("inf")})
    _flow(app, plan, attempts=2, on_dead="skip")
    await app.emit(_ticket("t1"))
    await app.emit(_ticket("t2"))
    await drain(app, advance=True)
    assert plan.succeeded == ["t2"]
    (dead,) = app.store.list_dead(DeadFilter())
    assert dead.context is not None
    assert dead.context["on_dead"] == "skip"


async def test_replay_runs_a_new_chain_without_rerunning_completed_steps(
    app: Interlock,
) -> None:
    vendor_calls: list[str] = []
    broken = True

    def create_ticket(ticket_id: str) -> dict[str, str]:
        vendor_calls.append(ticket_id)
        return {"id": f"zd-{ticket_id}"}

    seen_after: list[str] = []

    @app.flow(Ticket, owner="support", key="account_id", retry=Retry(attempts=2))
    async def escalate(event: Ticket, ctx: Context) -> None:
        ticket = await ctx.step("create-ticket", create_ticket, event.ticket_id)
        if broken and event.ticket_id == "t1":
            raise Retryable("slack webhook returned 500")
        seen_after.append(ticket["id"])

    first = await app.emit(_ticket("t1"))
    await app.emit(_ticket("t2"))
    await drain(app, advance=True)
    (dead,) = app.store.list_dead(DeadFilter())
    assert vendor_calls == ["t1"]
    assert seen_after == []

    broken = False
    replayed = await app.store.replay(
        [dead.id], actor="ops@acme.test", reason="slack fixed", now=app.clock.now()
    )
    assert replayed == [dead.id]
    await drain(app, advance=True)
    assert vendor_calls == ["t1", "t2"], "create-ticket of t1 was not called again"
    assert seen_after == ["zd-t1", "zd-t2"], "the lane resumes in order after the replay"

    trace = app.store.trace(first)
    (delivery,) = trace.deliveries
    assert (delivery.status, delivery.chain) == ("succeeded", 2)
    assert [(a.chain, a.outcome) for a in trace.attempts] == [
        (1, "retry"),
        (1, "dead"),
        (2, "succeeded"),
    ]
    (audit,) = trace.audit
    assert (audit.actor, audit.action, audit.reason) == (
        "ops@acme.test",
        "dlq.replay",
        "slack fixed",
    )
    assert audit.target == f"delivery:{dead.id}"
    assert app.store.list_dead(DeadFilter()) == []
    # Replaying something that is not dead does nothing.
    assert await app.store.replay([dead.id], actor="ops", reason="again", now=0.0) == []


async def test_replay_after_a_new_failure_gets_a_fresh_retry_budget(app: Interlock) -> None:
    plan = Plan({"t1": 4})
    _flow(app, plan, attempts=2)
    await app.emit(_ticket("t1"))
    await drain(app, advance=True)
    (dead,) = app.store.list_dead(DeadFilter())
    await app.store.replay([dead.id], actor="ops", reason="retry", now=app.clock.now())
    await drain(app, advance=True)
    assert plan.calls["t1"] == 4
    assert app.store.get_delivery(dead.id).status == "dead"
    await app.store.replay([dead.id], actor="ops", reason="retry", now=app.clock.now())
    await drain(app, advance=True)
    assert plan.succeeded == ["t1"]


async def test_replay_of_a_skipped_lane_dead_letter_runs_it_again(app: Interlock) -> None:
    plan = Plan({"t1": 2})
    _flow(app, plan, attempts=2, on_dead="skip")
    await app.emit(_ticket("t1"))
    await app.emit(_ticket("t2"))
    await drain(app, advance=True)
    assert plan.succeeded == ["t2"]
    (dead,) = app.store.list_dead(DeadFilter())
    await app.store.replay([dead.id], actor="ops", reason="vendor back", now=app.clock.now())
    await drain(app, advance=True)
    assert plan.succeeded == ["t2", "t1"]
    assert app.store.next_due_at() is None


async def test_discard_unblocks_the_lane_and_is_audited(app: Interlock) -> None:
    plan = Plan({"t1": float("inf")})
    _flow(app, plan, attempts=1)
    first = await app.emit(_ticket("t1"))
    await app.emit(_ticket("t2"))
    await drain(app, advance=True)
    assert plan.succeeded == []
    (dead,) = app.store.list_dead(DeadFilter())
    discarded = await app.store.discard(
        [dead.id], actor="ops@acme.test", reason="customer closed", now=app.clock.now()
    )
    assert discarded == [dead.id]
    await drain(app, advance=True)
    assert plan.succeeded == ["t2"]
    assert plan.calls["t1"] == 1
    delivery = app.store.get_delivery(dead.id)
    assert delivery.status == "skipped"
    assert delivery.reason == "discarded by ops@acme.test: customer closed"
    (audit,) = app.store.trace(first).audit
    assert (audit.actor, audit.action, audit.reason) == (
        "ops@acme.test",
        "dlq.discard",
        "customer closed",
    )
    assert [a.action for a in app.store.list_audit()] == ["dlq.discard"]
    assert await app.store.discard([dead.id], actor="ops", reason="again", now=0.0) == []


async def test_dead_letters_can_be_filtered(app: Interlock) -> None:
    plan = Plan({"t1": float("inf"), "t2": float("inf")})
    _flow(app, plan, attempts=1, on_dead="skip")

    @app.flow(Ticket, owner="support")
    async def other(event: Ticket) -> None:
        raise Permanent("nope")

    await app.emit(_ticket("t1"))
    await app.emit(_ticket("t2"))
    await drain(app, advance=True)
    assert len(app.store.list_dead(DeadFilter())) == 4
    assert {d.flow for d in app.store.list_dead(DeadFilter(flow="other"))} == {"other"}
    permanent = app.store.list_dead(DeadFilter(error_class="permanent"))
    assert {d.flow for d in permanent} == {"other"}
    assert len(app.store.list_dead(DeadFilter(limit=1))) == 1


async def test_max_elapsed_dead_letters_before_the_attempts_run_out(
    app: Interlock, clock: FakeClock
) -> None:
    plan = Plan({"t1": float("inf")})

    @app.flow(
        Ticket,
        owner="support",
        retry=Retry(attempts=100, base="10s", cap="10s", max_elapsed="25s", jitter=False),
    )
    async def page_oncall(event: Ticket) -> None:
        plan.run(event)

    start = clock.now()
    eid = await app.emit(_ticket("t1"))
    await drain(app, advance=True)
    trace = app.store.trace(eid)
    assert [(a.outcome, a.started_at - start) for a in trace.attempts] == [
        ("retry", 0.0),
        ("retry", 10.0),
        ("dead", 20.0),
    ]
    assert trace.deliveries[0].status == "dead"
