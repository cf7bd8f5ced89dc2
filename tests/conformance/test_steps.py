"""Checkpointed steps, limits on them, sync handlers, durable sleeps, waits and follow-up emits."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from interlock import (
    Context,
    Contract,
    Interlock,
    Limits,
    Retry,
    Retryable,
    SyncContext,
)
from interlock.stores.base import DeadFilter
from interlock.testing import FakeClock, drain

AppFactory = Callable[..., Interlock]


class Signup(Contract, event="user.signed_up", subject="user_id"):
    user_id: str


class EmailVerified(Contract, event="user.email_verified", subject="user_id"):
    user_id: str
    method: str = "link"


class WelcomeSent(Contract, event="user.welcome_sent", subject="user_id"):
    user_id: str


async def test_completed_steps_are_not_rerun_and_step_keys_are_stable(app: Interlock) -> None:
    crm_calls: list[str] = []
    keys: list[tuple[int, str]] = []

    async def create_contact(user_id: str, idempotency_key: str) -> dict[str, Any]:
        crm_calls.append(idempotency_key)
        return {"contact": f"c_{user_id}", "tags": ("new", "trial")}

    results: list[Any] = []

    @app.flow(Signup, owner="growth", retry=Retry(attempts=5))
    async def onboard(event: Signup, ctx: Context) -> None:
        keys.append((ctx.attempt, ctx.step_key("create-contact")))
        contact = await ctx.step(
            "create-contact", create_contact, event.user_id, ctx.step_key("create-contact")
        )
        results.append(contact)
        if ctx.attempt < 3:
            raise Retryable("mail provider timed out")

    eid = await app.emit(Signup(user_id="u1"))
    await drain(app, advance=True)
    assert len(crm_calls) == 1, "the step ran once across three attempts"
    assert [attempt for attempt, _ in keys] == [1, 2, 3]
    assert len({key for _, key in keys}) == 1
    assert crm_calls[0] == keys[0][1]
    assert keys[0][1].startswith("il_")
    # The same JSON form on the first run and on replays (the tuple became a list).
    assert results == [{"contact": "c_u1", "tags": ["new", "trial"]}] * 3
    trace = app.store.trace(eid)
    assert [(s.name, s.result) for s in trace.steps] == [
        ("create-contact", {"contact": "c_u1", "tags": ["new", "trial"]})
    ]


async def test_step_keys_differ_per_event_flow_and_step(app: Interlock) -> None:
    keys: dict[str, set[str]] = {}

    @app.flow(Signup, owner="growth")
    async def first(event: Signup, ctx: Context) -> None:
        keys.setdefault(event.user_id, set()).update({ctx.step_key("a"), ctx.step_key("b")})

    @app.flow(Signup, owner="growth")
    async def second(event: Signup, ctx: Context) -> None:
        keys.setdefault(event.user_id, set()).add(ctx.step_key("a"))

    await app.emit(Signup(user_id="u1"))
    await app.emit(Signup(user_id="u2"))
    await drain(app)
    assert len(keys["u1"]) == 3
    assert len(keys["u2"]) == 3
    assert not keys["u1"] & keys["u2"]


async def test_repeated_step_names_are_distinct_checkpoints(app: Interlock) -> None:
    calls: list[int] = []
    seen: list[list[int]] = []

    @app.flow(Signup, owner="growth", retry=Retry(attempts=3))
    async def batch(event: Signup, ctx: Context) -> None:
        got = [await ctx.step("send", lambda i=i: calls.append(i) or i) for i in range(3)]
        seen.append(got)
        if ctx.attempt == 1:
            raise Retryable("again")

    eid = await app.emit(Signup(user_id="u1"))
    await drain(app, advance=True)
    assert calls == [0, 1, 2]
    assert seen == [[0, 1, 2], [0, 1, 2]]
    assert [s.name for s in app.store.trace(eid).steps] == ["send", "send#2", "send#3"]


async def test_too_many_steps_is_a_limit_dead_letter(make_app: AppFactory) -> None:
    app = make_app(limits=Limits(max_steps_per_delivery=3))

    @app.flow(Signup, owner="growth", retry=Retry(attempts=5))
    async def chatty(event: Signup, ctx: Context) -> None:
        for i in range(5):
            await ctx.step(f"call-{i}", lambda: None)

    eid = await app.emit(Signup(user_id="u1"))
    await drain(app, advance=True)
    (delivery,) = app.store.trace(eid).deliveries
    assert (delivery.status, delivery.error_class) == ("dead", "limit")
    assert delivery.reason == (
        "LimitExceeded: max steps per delivery: 4 is over the limit of 3 "
        "(raise it with Limits(max_steps_per_delivery=...) if this is expected)"
    )
    assert len(app.store.trace(eid).attempts) == 1, "a limit is not retried"


async def test_a_step_result_over_the_limit_is_a_limit_dead_letter(make_app: AppFactory) -> None:
    app = make_app(limits=Limits(max_step_result_bytes=100))

    @app.flow(Signup, owner="growth")
    async def export(event: Signup, ctx: Context) -> None:
        await ctx.step("fetch", lambda: {"blob": "x" * 500})

    eid = await app.emit(Signup(user_id="u1"))
    await drain(app, advance=True)
    (delivery,) = app.store.trace(eid).deliveries
    assert (delivery.status, delivery.error_class) == ("dead", "limit")
    assert "max step result bytes: 511 is over the limit of 100" in (delivery.reason or "")
    assert app.store.trace(eid).steps == []


async def test_a_non_json_step_result_is_a_clear_dead_letter(app: Interlock) -> None:
    class Handle:
        pass

    @app.flow(Signup, owner="growth", retry=Retry(attempts=5))
    async def leaky(event: Signup, ctx: Context) -> None:
        await ctx.step("open-socket", Handle)

    eid = await app.emit(Signup(user_id="u1"))
    await drain(app, advance=True)
    (delivery,) = app.store.trace(eid).deliveries
    assert (delivery.status, delivery.error_class) == ("dead", "permanent")
    reason = delivery.reason or ""
    assert "step 'open-socket' returned a value that cannot be stored as JSON" in reason
    assert "Handle" in reason
    assert len(app.store.trace(eid).attempts) == 1


async def test_sync_handlers_get_a_sync_context_with_steps(app: Interlock) -> None:
    calls: list[str] = []
    contexts: list[str] = []

    def create(user_id: str) -> str:
        calls.append(user_id)
        return f"c_{user_id}"

    @app.flow(Signup, owner="growth", retry=Retry(attempts=3))
    def onboard_sync(event: Signup, ctx: SyncContext) -> None:
        contexts.append(type(ctx).__name__)
        contact = ctx.step("create", create, event.user_id)
        assert contact == f"c_{event.user_id}"
        ctx.emit(WelcomeSent(user_id=event.user_id))
        if ctx.attempt == 1:
            raise Retryable("flaky")

    eid = await app.emit(Signup(user_id="u1"))
    await drain(app, advance=True)
    assert calls == ["u1"]
    assert contexts == ["SyncContext", "SyncContext"]
    trace = app.store.trace(eid)
    assert [d.status for d in trace.deliveries] == ["succeeded"]
    welcomes = [e for e in trace.events if e.type == "user.welcome_sent"]
    assert len(welcomes) == 1
    assert welcomes[0].causation_id == eid


async def test_sync_handlers_without_context(app: Interlock) -> None:
    seen: list[str] = []

    @app.flow(Signup, owner="growth")
    def plain(event: Signup) -> None:
        seen.append(event.user_id)

    await app.emit(Signup(user_id="u1"))
    await drain(app)
    assert seen == ["u1"]


async def test_durable_sleep_parks_the_delivery_until_the_clock_passes(
    app: Interlock, clock: FakeClock
) -> None:
    log: list[tuple[str, float]] = []

    @app.flow(Signup, owner="growth", key="user_id")
    async def nudge(event: Signup, ctx: Context) -> None:
        log.append(("start", clock.now()))
        await ctx.step("welcome", lambda: log.append(("welcome", clock.now())))
        await ctx.sleep("3d")
        await ctx.step("nudge", lambda: log.append(("nudge", clock.now())))

    start = clock.now()
    eid = await app.emit(Signup(user_id="u1"))
    await drain(app)
    assert [name for name, _ in log] == ["start", "welcome"]
    (delivery,) = app.store.trace(eid).deliveries
    assert delivery.status == "pending"
    assert delivery.due_at == start + 3 * 86400
    clock.advance(86400)
    await drain(app)
    assert [name for name, _ in log] == ["start", "welcome"], "still asleep after one day"

    await drain(app, advance=True)
    assert log == [
        ("start", start),
        ("welcome", start),
        ("start", start + 3 * 86400),
        ("nudge", start + 3 * 86400),
    ]
    trace = app.store.trace(eid)
    assert trace.deliveries[0].status == "succeeded"
    assert trace.deliveries[0].attempts == 0, "a sleep is not a failure"
    assert [a.outcome for a in trace.attempts] == ["sleep", "succeeded"]


async def test_a_sleeping_delivery_holds_its_lane(app: Interlock, clock: FakeClock) -> None:
    order: list[str] = []

    @app.flow(Signup, owner="growth", key="user_id")
    async def drip(event: Signup, ctx: Context) -> None:
        order.append(f"begin:{event.user_id}:{ctx.event_id[-4:]}")
        await ctx.sleep("1h")
        order.append(f"end:{event.user_id}:{ctx.event_id[-4:]}")

    a = (await app.emit(Signup(user_id="u1")))[-4:]
    b = (await app.emit(Signup(user_id="u1")))[-4:]
    await drain(app, advance=True)
    # Each delivery runs twice (before and after its sleep); b starts only after a ended.
    assert order == [
        f"begin:u1:{a}",
        f"begin:u1:{a}",
        f"end:u1:{a}",
        f"begin:u1:{b}",
        f"begin:u1:{b}",
        f"end:u1:{b}",
    ]


async def test_wait_for_event_resumes_with_the_matching_event(
    app: Interlock, clock: FakeClock
) -> None:
    got: list[Any] = []

    @app.flow(Signup, owner="growth")
    async def verify(event: Signup, ctx: Context) -> None:
        verified = await ctx.wait_for_event(
            EmailVerified, match={"user_id": event.user_id}, timeout="2d"
        )
        got.append(verified)

    eid = await app.emit(Signup(user_id="u1"))
    await drain(app)
    (delivery,) = app.store.trace(eid).deliveries
    assert delivery.status == "waiting"
    assert delivery.due_at == clock.now() + 2 * 86400

    await app.emit(EmailVerified(user_id="u2", method="code"))
    await drain(app)
    assert got == [], "an event for another user does not wake it"
    assert app.store.get_delivery(delivery.id).status == "waiting"

    clock.advance(3600)
    await app.emit(EmailVerified(user_id="u1", method="code"))
    await drain(app)
    assert got == [EmailVerified(user_id="u1", method="code")]
    assert app.store.get_delivery(delivery.id).status == "succeeded"


async def test_wait_for_event_matches_dotted_paths_and_survives_a_retry(app: Interlock) -> None:
    class Payment(Contract, event="payment.settled"):
        customer: dict[str, str]

    got: list[Any] = []

    @app.flow(Signup, owner="growth", retry=Retry(attempts=3))
    async def settle(event: Signup, ctx: Context) -> None:
        payment = await ctx.wait_for_event(Payment, match={"customer.id": event.user_id})
        got.append(payment)
        if ctx.attempt < 3:
            raise Retryable("ledger busy")

    await app.emit(Signup(user_id="u1"))
    await drain(app, advance=True)
    assert got == []
    await app.emit(Payment(customer={"id": "u9"}))
    await app.emit(Payment(customer={"id": "u1"}))
    await drain(app, advance=True)
    assert got == [Payment(customer={"id": "u1"})] * 2


async def test_wait_for_event_returns_none_on_timeout(app: Interlock, clock: FakeClock) -> None:
    got: list[Any] = []
    waited_from = clock.now()

    @app.flow(Signup, owner="growth")
    async def verify(event: Signup, ctx: Context) -> None:
        got.append(
            await ctx.wait_for_event(EmailVerified, match={"user_id": event.user_id}, timeout="1h")
        )
        got.append(clock.now())

    await app.emit(Signup(user_id="u1"))
    await drain(app, advance=True)
    assert got == [None, waited_from + 3600]
    # A late event no longer changes anything.
    await app.emit(EmailVerified(user_id="u1"))
    await drain(app, advance=True)
    assert got == [None, waited_from + 3600]


async def test_wait_for_event_in_a_sync_handler(app: Interlock) -> None:
    got: list[Any] = []

    @app.flow(Signup, owner="growth")
    def verify_sync(event: Signup, ctx: SyncContext) -> None:
        got.append(ctx.wait_for_event(EmailVerified, match={"user_id": event.user_id}))

    await app.emit(Signup(user_id="u1"))
    await drain(app)
    assert got == []
    await app.emit(EmailVerified(user_id="u1"))
    await drain(app)
    assert got == [EmailVerified(user_id="u1")]


async def test_sleep_in_a_sync_handler(app: Interlock, clock: FakeClock) -> None:
    times: list[float] = []
    start = clock.now()

    @app.flow(Signup, owner="growth")
    def remind(event: Signup, ctx: SyncContext) -> None:
        ctx.sleep("10m")
        times.append(clock.now())

    await app.emit(Signup(user_id="u1"))
    await drain(app, advance=True)
    assert times == [start + 600]


async def test_emit_inside_a_flow_is_caused_by_the_current_event(app: Interlock) -> None:
    @app.flow(Signup, owner="growth", retry=Retry(attempts=3))
    async def welcome(event: Signup, ctx: Context) -> None:
        await ctx.emit(WelcomeSent(user_id=event.user_id))
        await app.emit(EmailVerified(user_id=event.user_id))  # app.emit from flow code too
        if ctx.attempt < 3:
            raise Retryable("crm timed out after emitting")

    received: list[str] = []

    @app.flow(WelcomeSent, owner="growth")
    async def on_welcome(event: WelcomeSent, ctx: Context) -> None:
        received.append(ctx.event.causation_id or "")

    root = await app.emit(Signup(user_id="u1"))
    await drain(app, advance=True)
    root_event = app.store.get_event(root)
    trace = app.store.trace(root_event.correlation_id)
    children = [e for e in trace.events if e.id != root]
    assert sorted(e.type for e in children) == ["user.email_verified", "user.welcome_sent"], (
        "three attempts, yet each follow-up was emitted once"
    )
    for child in children:
        assert child.causation_id == root
        assert child.correlation_id == root_event.correlation_id
        assert child.source == "flow:welcome"
    assert received == [root]
    assert [d.status for d in trace.deliveries] == ["succeeded", "succeeded"]


async def test_explicit_idempotency_key_inside_a_flow(app: Interlock) -> None:
    @app.flow(Signup, owner="growth")
    async def welcome(event: Signup, ctx: Context) -> None:
        await ctx.emit(
            WelcomeSent(user_id=event.user_id), idempotency_key=f"welcome:{event.user_id}"
        )

    await app.emit(Signup(user_id="u1"))
    await app.emit(Signup(user_id="u1"))
    await drain(app)
    welcomes = app.store.list_events(type="user.welcome_sent")
    assert len(welcomes) == 1


async def test_dead_letters_of_steps_keep_their_checkpoints(app: Interlock) -> None:
    @app.flow(Signup, owner="growth", retry=Retry(attempts=1))
    async def fragile(event: Signup, ctx: Context) -> None:
        await ctx.step("one", lambda: 1)
        raise Retryable("two failed")

    eid = await app.emit(Signup(user_id="u1"))
    await drain(app, advance=True)
    (dead,) = app.store.list_dead(DeadFilter())
    assert dead.event_id == eid
    assert [(s.name, s.result) for s in app.store.trace(eid).steps] == [("one", 1)]


async def test_app_emit_sync_inside_a_sync_flow_is_caused_and_emitted_once(app: Interlock) -> None:
    @app.flow(Signup, owner="growth", retry=Retry(attempts=3))
    def welcome_sync(event: Signup, ctx: SyncContext) -> None:
        app.emit_sync(WelcomeSent(user_id=event.user_id))
        if ctx.attempt < 3:
            raise Retryable("crm timed out after emitting")

    root = await app.emit(Signup(user_id="u1"))
    await drain(app, advance=True)
    root_event = app.store.get_event(root)
    (welcome,) = app.store.list_events(type="user.welcome_sent")
    assert welcome.causation_id == root
    assert welcome.correlation_id == root_event.correlation_id
    assert welcome.source == "flow:welcome_sync"


async def test_an_event_arriving_while_the_wait_is_parked_is_not_lost(app: Interlock) -> None:
    got: list[Any] = []

    @app.flow(Signup, owner="growth")
    async def verify(event: Signup, ctx: Context) -> None:
        got.append(await ctx.wait_for_event(EmailVerified, match={"user_id": event.user_id}))

    async def racing_webhook(ctx: Context, call_next: Callable[[], Any]) -> None:
        try:
            await call_next()
        finally:
            if not got:
                # The user clicks the link after the flow reached its wait, before the
                # worker recorded it (another process would do the same at any moment).
                await app.emit(EmailVerified(user_id="u1"), idempotency_key="click-1")

    app.middleware.append(racing_webhook)
    eid = await app.emit(Signup(user_id="u1"))
    await drain(app)
    assert got == [EmailVerified(user_id="u1")]
    assert app.store.trace(eid).deliveries[0].status == "succeeded"


async def test_an_event_from_before_the_wait_does_not_count(
    app: Interlock, clock: FakeClock
) -> None:
    got: list[Any] = []

    @app.flow(Signup, owner="growth")
    async def verify(event: Signup, ctx: Context) -> None:
        got.append(await ctx.wait_for_event(EmailVerified, match={"user_id": event.user_id}))

    await app.emit(EmailVerified(user_id="u1"))
    clock.advance(1)
    await app.emit(Signup(user_id="u1"))
    await drain(app)
    assert got == []


async def test_time_asleep_does_not_count_against_max_elapsed(
    app: Interlock, clock: FakeClock
) -> None:
    calls = 0

    @app.flow(Signup, owner="growth", retry=Retry(attempts=5, cap="10s", max_elapsed="1h"))
    async def trial_ending(event: Signup, ctx: Context) -> None:
        nonlocal calls
        await ctx.sleep("14d")
        calls += 1
        if calls == 1:
            raise Retryable("billing api timed out")

    eid = await app.emit(Signup(user_id="u1"))
    await drain(app, advance=True)
    assert calls == 2
    assert [a.outcome for a in app.store.trace(eid).attempts] == ["sleep", "retry", "succeeded"]


async def test_connector_calls_are_stored_with_the_attempt_that_made_them(app: Interlock) -> None:
    from interlock.connectors.calls import CallRecord

    def call(path: str, status: int | None, outcome: str) -> CallRecord:
        return CallRecord("crm", f"POST {path}", "POST", path, status, 12.5, outcome, "il_k")

    @app.flow(Signup, owner="growth", retry=Retry(attempts=3))
    async def onboard(event: Signup, ctx: Context) -> None:
        ctx.record_call(call("/v1/audit", 201, "ok"), ctx.now())

        async def create() -> str:
            ctx.record_call(call("/v1/contacts", 503 if ctx.attempt == 1 else 201, "ok"), ctx.now())
            if ctx.attempt == 1:
                raise Retryable("crm: 503")
            return "c_1"

        await ctx.step("create-contact", create)

    eid = await app.emit(Signup(user_id="u1"))
    await drain(app, advance=True)
    first, second = app.store.trace(eid).attempts
    assert [(c["path"], c["status"], c["step"]) for c in first.calls] == [
        ("/v1/audit", 201, None),
        ("/v1/contacts", 503, "create-contact"),
    ]
    assert [(c["path"], c["status"], c["step"]) for c in second.calls] == [
        ("/v1/audit", 201, None),
        ("/v1/contacts", 201, "create-contact"),
    ]
    assert second.calls[1] == {
        "at": second.calls[1]["at"],
        "connector": "crm",
        "operation": "POST /v1/contacts",
        "method": "POST",
        "path": "/v1/contacts",
        "status": 201,
        "duration_ms": 12.5,
        "outcome": "ok",
        "idempotency_key": "il_k",
        "step": "create-contact",
    }

    @app.flow(WelcomeSent, owner="growth")
    async def quiet(event: WelcomeSent) -> None:
        return None

    other = await app.emit(WelcomeSent(user_id="u1"))
    await drain(app)
    (attempt,) = app.store.trace(other).attempts
    assert attempt.calls == [], "a run without calls stores none"
