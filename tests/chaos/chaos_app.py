"""The app the chaos tests run in real worker processes, and kill.

Run as a script it is one worker process::

    INTERLOCK_DATABASE_URL=sqlite:////tmp/x.db CHAOS_LEDGER=/tmp/ledger python chaos_app.py

SIGTERM sets the worker's stop event (graceful drain); SIGKILL and SIGSTOP are
what the tests are about. Structured logs go to stderr as JSON lines; the line
``{"event": "chaos.ready", ...}`` says the worker is about to claim work.

The test process imports :func:`build_app` to emit events into the same store
(the emitting app must register the same flows to create their deliveries).

Every side effect a flow performs goes to the *effect ledger* (``CHAOS_LEDGER``):
an append-only file written with ``O_APPEND`` and one ``os.write`` per record,
so a record is either wholly there or absent whatever moment the process dies.
It models a vendor that deduplicates by idempotency key: the tests read it
deduplicated by step key.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from typing import Literal

import structlog

from interlock import Context, Contract, Interlock, Retry

# -- contracts ------------------------------------------------------------------------------


class AccountBumped(Contract, event="chaos.account_bumped", version=1):
    """One of many ordered events of an account (the SIGKILL test)."""

    account: str
    seq: int


class TrialStarted(Contract, event="chaos.trial_started", version=1):
    """Starts a flow that sleeps durably between two steps."""

    trial: str
    nap_s: float


class OrderPlaced(Contract, event="chaos.order_placed", version=1):
    """Starts a flow that waits for the order's approval."""

    order: str
    timeout_s: float = 300.0


class OrderApproved(Contract, event="chaos.order_approved", version=1):
    """The event an ``OrderPlaced`` flow waits for (no flow of its own)."""

    order: str
    by: str


class SlowJob(Contract, event="chaos.slow_job", version=1):
    """A job that holds its worker: inside a step (``step``) or after it (``body``)."""

    job: str
    mode: Literal["step", "body"]
    hold_s: float


class Chore(Contract, event="chaos.chore", version=1):
    """Unordered work of a given length (the SIGTERM test)."""

    name: str
    hold_s: float


# -- the effect ledger ------------------------------------------------------------------------


def ledger_write(*fields: object) -> None:
    """Append one tab-separated record to the ledger in a single ``write``."""
    line = ("\t".join(str(f) for f in fields) + "\n").encode()
    fd = os.open(os.environ["CHAOS_LEDGER"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def read_ledger(path: str | os.PathLike[str]) -> list[list[str]]:
    """The ledger's complete records, oldest first (a record being written is left out)."""
    try:
        with open(path, encoding="utf-8") as f:
            return [line[:-1].split("\t") for line in f if line.endswith("\n")]
    except FileNotFoundError:
        return []


def hold_of(requested: float) -> float:
    """``CHAOS_MAX_HOLD`` caps how long handlers hold (a restarted worker finishing fast)."""
    cap = os.environ.get("CHAOS_MAX_HOLD")
    return requested if cap is None else min(requested, float(cap))


# -- the app ----------------------------------------------------------------------------------


def build_app(database_url: str | None = None) -> Interlock:
    """The chaos app with all its flows; the store comes from ``INTERLOCK_DATABASE_URL``."""
    app = Interlock("chaos", database_url)

    # The expired leases of killed workers count as attempts; the SIGKILL test kills a
    # worker 20+ times, so give the budget room: what is tested is crash safety.
    @app.flow(
        AccountBumped,
        owner="chaos@interlock.test",
        key="account",
        retry=Retry(attempts=100, base="50ms", cap="200ms"),
    )
    async def apply_bump(event: AccountBumped, ctx: Context) -> None:
        # The vendor applies the charge, then answers slowly; the flow then takes a moment
        # before the delivery is settled. Both gaps are windows for a kill to land in.
        latency = float(os.environ.get("CHAOS_LATENCY", "0"))
        key = ctx.step_key("charge")

        async def charge() -> str:
            ledger_write(key, event.account, event.seq)
            await asyncio.sleep(latency)
            return key

        await ctx.step("charge", charge)
        await asyncio.sleep(latency)

    @app.flow(TrialStarted, owner="chaos@interlock.test", key="trial")
    async def nap(event: TrialStarted, ctx: Context) -> None:
        await ctx.step("before", _stamp, "before", event.trial)
        await ctx.sleep(event.nap_s)
        await ctx.step("after", _stamp, "after", event.trial)

    @app.flow(OrderPlaced, owner="chaos@interlock.test", key="order")
    async def await_approval(event: OrderPlaced, ctx: Context) -> None:
        await ctx.step("asked", _stamp, "asked", event.order)
        approved = await ctx.wait_for_event(
            OrderApproved, match={"order": event.order}, timeout=event.timeout_s
        )
        by = "timeout" if approved is None else approved.by
        await ctx.step("approved", _stamp, "approved", event.order, by)

    @app.flow(SlowJob, owner="chaos@interlock.test", key="job")
    async def slow_job(event: SlowJob, ctx: Context) -> None:
        key = ctx.step_key("work")

        async def work(hold: float) -> dict[str, int]:
            ledger_write("enter", event.job, os.getpid())
            await asyncio.sleep(hold)
            ledger_write("effect", key, event.job, os.getpid())
            return {"pid": os.getpid()}

        if event.mode == "step":
            await ctx.step("work", work, hold_of(event.hold_s))
        else:
            await ctx.step("work", work, 0.0)
            ledger_write("enter-body", event.job, os.getpid())
            await asyncio.sleep(hold_of(event.hold_s))
            ledger_write("leave-body", event.job, os.getpid())

    @app.flow(Chore, owner="chaos@interlock.test")
    async def chore(event: Chore, ctx: Context) -> None:
        async def work() -> int:
            ledger_write("start", event.name, os.getpid())
            await asyncio.sleep(hold_of(event.hold_s))
            ledger_write("done", event.name, os.getpid())
            return os.getpid()

        await ctx.step("work", work)

    return app


def _stamp(kind: str, *fields: str) -> float:
    now = time.time()
    ledger_write(kind, *fields, repr(now), os.getpid())
    return now


# -- the worker process -----------------------------------------------------------------------


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return default if value is None else float(value)


async def main() -> None:
    app = build_app()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    worker = app.worker(
        concurrency=int(_env_float("CHAOS_CONCURRENCY", 16)),
        lease=_env_float("CHAOS_LEASE", 1.0),
        heartbeat=_env_float("CHAOS_HEARTBEAT", 0.3),
        grace=_env_float("CHAOS_GRACE", 30.0),
    )
    app.store  # noqa: B018 - open (and migrate) before announcing readiness
    log = structlog.get_logger("chaos")
    log.info("chaos.ready", pid=os.getpid(), worker=worker.name)
    try:
        await worker.run(stop)
    finally:
        counters = worker.counters
        log.info(
            "chaos.stopped",
            pid=os.getpid(),
            claimed=counters.claimed,
            succeeded=counters.succeeded,
            lost=counters.lost,
        )
        app.close()


if __name__ == "__main__":
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )
    asyncio.run(main())
