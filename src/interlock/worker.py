"""The worker: claim → run the middleware chain → settle. Nothing else lives here.

Lanes (deliveries of one flow and ordering key) run one at a time in event
order: only a lane's head is ever claimable, and settling a delivery promotes
the next one — leased straight to the same worker, so a busy lane does not
pay a claim round trip per event. Different lanes run concurrently up to
``concurrency``.

Every claim carries a fencing token; a worker that was paused past its lease
finds its token superseded and its late writes refused. A heartbeat extends
the leases of everything in flight. SIGTERM (``stop``) stops claiming, lets
in-flight work finish within ``grace`` and releases what did not.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import gc
import os
import random
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog

from interlock.errors import LeaseLost, StoreError
from interlock.flows import Flow
from interlock.observability import process_metrics, run_alerts
from interlock.outcomes import dead, failed, redactor_for, suspended
from interlock.redaction import Redactor
from interlock.retention import RetentionPolicy, run_retention
from interlock.semantics import on_error, run_delivery
from interlock.steps import Context, Suspend, SyncContext, current_context
from interlock.stores.base import Claimed, Outcome

if TYPE_CHECKING:
    from interlock.app import Interlock

log = structlog.get_logger("interlock.worker")

Handler = Callable[[], Awaitable[None]]
_NO_REDACTION = Redactor()
_TALLY = {"succeeded": "succeeded", "retry": "retried", "dead": "dead", "skipped": "skipped"}
Middleware = Callable[[Context, Handler], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """Worker settings; the defaults suit one process on a small machine."""

    concurrency: int = 256  # lanes in flight at once
    lease: float = 30.0  # seconds a claim is valid without a heartbeat
    heartbeat: float | None = None  # default: lease / 3
    poll: float = 0.002  # seconds between checks for work committed by other processes
    grace: float = 30.0  # seconds to finish in-flight work on stop
    max_reason: int = 500  # characters of an attempt's reason
    checks_every: float | None = None  # seconds between connector synthetic checks (None: off)
    streams: bool = True  # consume the app's declared stream sources beside the flows
    retention: RetentionPolicy | None = None  # default: from INTERLOCK_RETENTION_* variables


@dataclass(slots=True)
class WorkerCounters:
    claimed: int = 0
    succeeded: int = 0
    retried: int = 0
    dead: int = 0
    skipped: int = 0
    suspended: int = 0
    lost: int = 0
    by_flow: dict[str, dict[str, int]] = field(default_factory=dict)

    def count(self, flow: str, kind: str) -> None:
        per = self.by_flow.setdefault(flow, {})
        per[kind] = per.get(kind, 0) + 1


def tune_gc() -> None:
    """Tune the garbage collector for a long-running worker process.

    Objects that exist at startup (modules, classes, the app) are frozen out of
    collection, and the youngest generation is collected less often: a worker
    allocates many short-lived objects per event, and full collections that
    re-scan everything cost 10-20 % of its CPU. Called by ``interlock run`` and
    ``interlock worker``; call it yourself when embedding a worker.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{random.getrandbits(24):06x}"


class Worker:
    """Runs the flows of one :class:`~interlock.Interlock` app."""

    def __init__(self, app: Interlock, config: WorkerConfig | None = None) -> None:
        self.app = app
        self.config = config or WorkerConfig()
        self.name = worker_name()
        self.counters = WorkerCounters()
        self._metrics = process_metrics(app)
        self._store = app.store
        self._clock = app.clock
        self._random = random.Random()
        self._tasks: set[asyncio.Task[None]] = set()
        self._inflight: dict[int, int] = {}
        self._lost: set[int] = set()  # leases known lost while their handler still runs
        self._slot = asyncio.Event()
        self._stopping = False
        self._running = False
        self._reserved = 0  # slots promised to emits in flight (direct leases)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._context = contextvars.Context()  # run()'s: lanes start in a copy of it

    # -- the loop -------------------------------------------------------------------
    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Work until ``stop`` is set, then drain gracefully."""
        stop = stop or asyncio.Event()
        wake = self.app._wake_event()
        beat = asyncio.create_task(self._heartbeats())
        self._loop = asyncio.get_running_loop()
        # Directly leased lanes start in the worker's context, not in the emit's (a gateway
        # request's, whose correlation id is bound for its logs).
        self._context = contextvars.copy_context()
        self._running = True
        self.app._local_workers.append(self)
        # With every slot busy, fill() waits for a free one; a stop must not wait for it.
        unblock = asyncio.create_task(_set_when(stop, self._slot))
        checks = self._start_checks(stop)
        retention = self._start_retention()
        streams = self._start_streams(stop)
        alerts = run_alerts(self.app, stop)  # SLO burn-rate alerts (one evaluator at a time)
        try:
            while not stop.is_set():
                if await self.fill() == 0:
                    await self._idle(stop, wake)
        finally:
            self._running = False
            if self in self.app._local_workers:
                self.app._local_workers.remove(self)
            unblock.cancel()
            await self._drain()
            if streams is not None:
                await streams.stop()
            beat.cancel()
            if checks is not None:
                checks.cancel()
            if alerts is not None:
                alerts.cancel()
            if retention is not None:
                retention.cancel()
            self.app._forget_wake_event(wake)

    def _start_retention(self) -> asyncio.Task[None] | None:
        """Prune old finished work now and then (one worker at a time, see retention.py)."""
        policy = self.config.retention or RetentionPolicy.from_env()
        if policy.days <= 0:
            return None
        return asyncio.create_task(
            run_retention(self._store, policy, clock_now=self._clock.now, holder=self.name)
        )

    def _start_checks(self, stop: asyncio.Event) -> asyncio.Task[None] | None:
        """Connector synthetic checks on a schedule, when configured and there are any."""
        every = self.config.checks_every
        if not every or not self.app.connectors:
            return None
        from interlock.connectors.checks import run_checks

        return asyncio.create_task(run_checks(self.app, every=every, stop=stop))

    def _start_streams(self, stop: asyncio.Event) -> _Streams | None:
        """The app's stream runners, when it declares streams and they are not turned off."""
        if not self.config.streams or not self.app.streams:
            return None
        return _Streams(self.app, stop)

    def reserve(self, wanted: int) -> int:
        """Promise up to ``wanted`` free slots to an emit on this loop (a direct lease)."""
        if not self._running or self._stopping:
            return 0
        free = self.config.concurrency - len(self._tasks) - self._reserved
        granted = max(0, min(wanted, free))
        self._reserved += granted
        return granted

    def adopt(self, claimed: list[Claimed], reserved: int) -> None:
        """Start deliveries leased to this worker by an emit in its own process."""
        self._reserved -= reserved
        for c in claimed:
            self.counters.claimed += 1
            task = asyncio.create_task(
                self._release(c) if self._stopping else self._lane(c), context=self._context.copy()
            )
            self._tasks.add(task)
            task.add_done_callback(self._done)

    async def fill(self) -> int:
        """Claim as much due work as there is room for; returns how many started."""
        free = self.config.concurrency - len(self._tasks)
        if free <= 0:
            self._slot.clear()
            await self._slot.wait()
            return -1
        now = self._clock.now()
        try:
            batch = await self._store.claim(self.name, free, now, self.config.lease)
        except StoreError as exc:
            log.error("claim.failed", error=str(exc))
            await asyncio.sleep(0.5)
            return 0
        for claimed in batch:
            self.counters.claimed += 1
            task = asyncio.create_task(self._lane(claimed))
            self._tasks.add(task)
            task.add_done_callback(self._done)
        return len(batch)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._slot.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("lane.crashed", error=repr(task.exception()))

    async def _idle(self, stop: asyncio.Event, wake: asyncio.Event) -> None:
        token = self._store.wakeup_token()
        try:
            next_due = self._store.next_due_at()
        except StoreError as exc:  # unreachable for now: claims retry after a pause
            log.error("store.unavailable", error=str(exc))
            await asyncio.sleep(0.5)
            return
        while not stop.is_set():
            wake.clear()
            try:
                await asyncio.wait_for(wake.wait(), timeout=self.config.poll)
                return
            except TimeoutError:
                pass
            if next_due is not None and self._clock.now() >= next_due:
                return
            new_token = self._store.wakeup_token()
            if new_token != token:
                return

    async def _drain(self) -> None:
        self._stopping = True
        if not self._tasks:
            return
        _done, pending = await asyncio.wait(list(self._tasks), timeout=self.config.grace)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)

    async def _heartbeats(self) -> None:
        interval = self.config.heartbeat or self.config.lease / 3
        while True:
            await asyncio.sleep(interval)
            if not self._inflight:
                continue
            leases = list(self._inflight.items())
            try:
                lost = await self._store.heartbeat(
                    self.name, leases, self._clock.now() + self.config.lease
                )
            except StoreError as exc:
                log.error("heartbeat.failed", error=str(exc))
                continue
            for delivery_id in lost:
                self._lost.add(delivery_id)
                log.warning("lease.lost", delivery_id=delivery_id)

    # -- one lane -------------------------------------------------------------------
    async def _lane(self, claimed: Claimed) -> None:
        current: Claimed | None = claimed
        while current is not None:
            self._inflight[current.delivery_id] = current.fence
            try:
                outcome = await self._execute(current)
            except asyncio.CancelledError:
                await asyncio.shield(self._release(current))
                raise
            finally:
                self._inflight.pop(current.delivery_id, None)
                self._lost.discard(current.delivery_id)
            if outcome is None:
                self.counters.lost += 1
                return
            received_at = current.event.received_at
            settling = self._store.settle(
                outcome,
                worker=self.name,
                chain=not self._stopping,
                now=self._clock.now(),
                lease=self.config.lease,
            )
            try:
                current = await asyncio.shield(settling)
            except asyncio.CancelledError:
                # The settle commits anyway, and may have leased the lane's next delivery to
                # this worker: release it rather than leave it running until its lease expires.
                await asyncio.shield(self._release_chained(settling))
                raise
            except LeaseLost as exc:
                self.counters.lost += 1
                log.warning("lease.lost", delivery_id=outcome.delivery_id, detail=str(exc))
                return
            except StoreError as exc:
                # Not settled: the lease expires and another claim runs it again.
                log.error("settle.failed", delivery_id=outcome.delivery_id, error=str(exc))
                return
            self._tally(outcome)
            self._metrics.settled(
                outcome.flow, outcome.kind, outcome.started_at, outcome.finished_at, received_at
            )
            if current is not None:
                self.counters.claimed += 1

    async def _release_chained(self, settling: asyncio.Future[Claimed | None]) -> None:
        try:
            chained = await settling
        except (LeaseLost, StoreError):
            return
        if chained is not None:
            await self._release(chained)

    async def _release(self, claimed: Claimed) -> None:
        now = self._clock.now()
        outcome = Outcome(
            claimed.delivery_id,
            claimed.fence,
            claimed.flow,
            claimed.lane,
            "released",
            now,
            now,
            due_at=now,
        )
        with contextlib.suppress(LeaseLost, StoreError):
            await self._store.settle(outcome, worker=self.name, chain=False, now=now, lease=0)

    def _tally(self, outcome: Outcome) -> None:
        kind = _TALLY.get(outcome.kind, "suspended")
        setattr(self.counters, kind, getattr(self.counters, kind) + 1)
        self.counters.count(outcome.flow, kind)

    async def _execute(self, c: Claimed) -> Outcome | None:
        started = self._clock.now()
        flow = self.app.flows.get(c.flow)
        if flow is None:
            return Outcome(
                c.delivery_id,
                c.fence,
                c.flow,
                c.lane,
                "retry",
                started,
                started,
                error_class="retryable",
                delay=60.0,
                due_at=started + 60.0,
                reason=f"flow {c.flow!r} is not registered in this worker; is it running older code?",
            )
        pii = flow.contract.pii_paths()
        redactor = redactor_for(c, flow, pii) if pii else _NO_REDACTION
        if c.attempts >= flow.retry.attempts:
            return dead(
                c,
                flow,
                started,
                started,
                "retryable",
                "retry budget used up by runs whose lease expired",
                None,
                redactor,
            )
        ctx = Context(
            claimed=c,
            flow=flow.name,
            store=self._store,
            clock=self._clock,
            limits=self.app.limits,
            redactor=redactor,
            emit=self.app.emit,
            lost=self._lost,
        )
        token = current_context.set(ctx)
        outcome: Outcome | None
        try:
            # Loads (upcasting) and runs the handler, unless the event is stale or superseded.
            early = await run_delivery(
                c, flow, self._store, started, redactor, lambda e: self._call(flow, e, ctx)
            )
            outcome = early or Outcome(
                c.delivery_id, c.fence, c.flow, c.lane, "succeeded", started, self._clock.now()
            )
        except Suspend as suspend:
            outcome = suspended(c, started, self._clock.now(), suspend)
        except LeaseLost as exc:
            # A step write was refused: another worker holds the delivery now.
            log.warning("lease.lost", delivery_id=c.delivery_id, detail=str(exc))
            outcome = None
        except Exception as exc:
            now = self._clock.now()
            rand = self._random.random()
            # A missing record or an invalid event: the declared policy decides.
            outcome = on_error(c, flow, started, now, exc, redactor, rand) or failed(
                c,
                flow,
                started,
                now,
                exc,
                redactor,
                rand=rand,
                max_reason=self.config.max_reason,
            )
        finally:
            current_context.reset(token)
        if outcome is not None:
            # Checkpoints not yet handed to the store travel with the outcome, in its
            # transaction (a fast handler then costs one write, not two).
            outcome.steps = ctx.take_unflushed()
            outcome.calls = ctx.take_calls()
            outcome.number = c.runs + 1
            outcome.chain = c.chain
        return outcome

    async def _call(self, flow: Flow, event: Any, ctx: Context) -> None:
        if flow.is_async and not self.app.middleware:  # the hot path: no chain to build
            await (flow.handler(event, ctx) if flow.takes_context else flow.handler(event))
            return

        async def handler() -> None:
            if flow.is_async:
                await (flow.handler(event, ctx) if flow.takes_context else flow.handler(event))
            else:
                loop = asyncio.get_running_loop()
                sync_ctx = SyncContext(ctx, loop)
                args = (event, sync_ctx) if flow.takes_context else (event,)
                # In the handler's thread too, app.emit_sync knows which delivery it runs in.
                run = contextvars.copy_context().run
                await loop.run_in_executor(None, run, flow.handler, *args)

        call: Handler = handler
        for middleware in reversed(self.app.middleware):
            call = _bind(middleware, ctx, call)
        await call()


class _Streams:
    """Stream runners beside a worker: stopped with it, after their batch in hand is stored
    and settled (see :mod:`interlock.streams.runner`)."""

    def __init__(self, app: Interlock, stop: asyncio.Event) -> None:
        from interlock.streams.runner import run_streams

        self._stop = asyncio.Event()
        self._relay = asyncio.create_task(_set_when(stop, self._stop))
        self._task = asyncio.create_task(run_streams(app, self._stop))

    async def stop(self) -> None:
        self._stop.set()
        self._relay.cancel()
        try:
            await self._task
        except Exception as exc:
            log.error("streams.crashed", error=repr(exc))


async def _set_when(trigger: asyncio.Event, target: asyncio.Event) -> None:
    await trigger.wait()
    target.set()


def _bind(middleware: Middleware, ctx: Context, call_next: Handler) -> Handler:
    async def bound() -> None:
        await middleware(ctx, call_next)

    return bound
