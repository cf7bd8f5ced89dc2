"""The flow's view of the runtime: checkpointed steps, durable sleeps and waits.

A retried delivery runs its handler again from the top; every ``ctx.step``
that completed before returns its recorded result instead of running again.
Sleeps and waits are steps too: the delivery is parked in the store (not in
a worker) and resumes when its time comes or its event arrives, even after a
restart.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import weakref
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, overload

import orjson
import structlog
from pydantic import BaseModel

from interlock.contracts import Contract
from interlock.durations import Duration, seconds
from interlock.errors import ConfigurationError, LeaseLost, Permanent
from interlock.events import Event
from interlock.limits import Limits
from interlock.redaction import Redactor

if TYPE_CHECKING:
    from interlock.clock import Clock
    from interlock.connectors.base import Connector
    from interlock.connectors.calls import CallRecord
    from interlock.stores.base import Claimed, Store

P = ParamSpec("P")
R = TypeVar("R")
C = TypeVar("C", bound=Contract)
K = TypeVar("K", bound="Connector")
EmitFn = Callable[..., Awaitable[str]]

current_context: ContextVar[Context | None] = ContextVar("interlock_context", default=None)
# The unique name of the step whose function is running (connectors derive idempotency keys
# from it), None outside a step.
current_step: ContextVar[str | None] = ContextVar("interlock_step", default=None)
# The connectors of the app that owns a store (registered by Interlock when it opens its
# store), so that ctx.connector() needs nothing from the worker.
_connectors: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()
# Connector calls kept per attempt for the trace; a run making more keeps the first ones and
# a count of the rest.
MAX_CALLS_PER_ATTEMPT = 100


def register_connectors(store: Any, connectors: dict[str, Any]) -> None:
    """Make ``connectors`` what ``ctx.connector()`` finds for deliveries of ``store``."""
    _connectors[store] = connectors


@dataclass(frozen=True, slots=True)
class WaitRequest:
    step: str
    event_type: str
    match: dict[str, Any]
    deadline: float | None
    since: float  # when the flow reached the wait: events received from then on count


class Suspend(BaseException):
    """Parks the delivery: until ``until`` (a sleep) or until an event arrives (a wait).

    A BaseException so that a flow's ``except Exception`` cannot swallow it.
    """

    def __init__(self, until: float | None, wait: WaitRequest | None = None) -> None:
        super().__init__("suspended")
        self.until = until
        self.wait = wait


_JSON_SCALARS = frozenset({str, int, bool, type(None)})


def encode_result(value: Any) -> bytes:
    """JSON for a step result; pydantic models and dataclasses are supported."""
    try:
        return orjson.dumps(value, default=_default)
    except TypeError:  # non-string dict keys (ints, say): the slower option handles them
        return orjson.dumps(value, default=_default, option=orjson.OPT_NON_STR_KEYS)


def _default(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class Context:
    """Passed to every async flow handler as its second argument."""

    def __init__(
        self,
        *,
        claimed: Claimed,
        flow: str,
        store: Store,
        clock: Clock,
        limits: Limits,
        redactor: Redactor,
        emit: EmitFn,
        lost: set[int] | None = None,
    ) -> None:
        self._claimed = claimed
        self._store = store
        self._clock = clock
        self._limits = limits
        self._redactor = redactor
        self._emit = emit
        # Deliveries whose lease this worker is known to have lost (heartbeat, refused write).
        self._lost = lost if lost is not None else set()
        self._unflushed: list[tuple[str, bytes, float]] = []
        self._flush_scheduled = False
        self._seen: dict[str, int] = {}
        self._recorded = dict(claimed.steps)
        self._new_steps = 0
        self._calls: dict[str | None, int] = {}  # mutating connector calls, per step
        self._traced: list[dict[str, Any]] = []  # connector calls of this run, for the trace
        self._untraced = 0  # calls past MAX_CALLS_PER_ATTEMPT
        self._log: Any = None
        self.flow = flow
        self.event: Event = claimed.event

    # -- identity -----------------------------------------------------------------
    @property
    def delivery_id(self) -> int:
        return self._claimed.delivery_id

    @property
    def event_id(self) -> str:
        return self._claimed.event.id

    @property
    def correlation_id(self) -> str:
        return self._claimed.event.correlation_id

    @property
    def attempt(self) -> int:
        """1 on the first run of this delivery, 2 on the first retry, and so on."""
        return self._claimed.runs + 1

    @property
    def log(self) -> Any:
        """A structlog logger bound to this delivery; PII values of the event are redacted."""
        if self._log is None:
            redactor = self._redactor

            def redact(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
                return {k: redactor.value(v) for k, v in event_dict.items()}

            processors = [redact, *structlog.get_config()["processors"]]
            self._log = structlog.wrap_logger(None, processors=processors).bind(
                flow=self.flow,
                event_id=self.event_id,
                delivery_id=self.delivery_id,
                correlation_id=self.correlation_id,
            )
        return self._log

    # -- steps --------------------------------------------------------------------
    def _unique(self, name: str) -> str:
        if not name or not isinstance(name, str):
            raise ConfigurationError(f"a step needs a non-empty name, got {name!r}")
        n = self._seen.get(name, 0) + 1
        self._seen[name] = n
        return name if n == 1 else f"{name}#{n}"

    def step_key(self, name: str) -> str:
        """The stable idempotency key for step ``name``: the same on every retry and replay."""
        raw = f"{self.event_id}/{self.flow}/{name}".encode()
        return "il_" + hashlib.sha256(raw).hexdigest()[:40]

    async def _record(self, name: str, value: Any) -> Any:
        self._new_steps += 1
        self._limits.check("max_steps_per_delivery", len(self._recorded) + 1)
        try:
            encoded = encode_result(value)
        except TypeError as exc:
            raise Permanent(
                f"step {name!r} returned a value that cannot be stored as JSON ({exc}); "
                "return a dict, list, str, number, bool, None or a pydantic model"
            ) from None
        self._limits.check("max_step_result_bytes", len(encoded))
        # Buffered, not awaited: handed to the store at the end of this loop iteration, or
        # with the delivery's outcome if the handler finishes first (same transaction,
        # same fencing token). A crash before that commit re-runs the step with the same
        # step_key, for the vendor to de-duplicate.
        self._unflushed.append((name, encoded, self._clock.now()))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)
        # Hand back the JSON form (what a replay returns); scalars already are.
        decoded = value if type(value) in _JSON_SCALARS else orjson.loads(encoded)
        self._recorded[name] = decoded
        return decoded

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._unflushed:
            pending = self._store.record_steps_nowait(
                self.delivery_id, self._claimed.fence, self._unflushed
            )
            self._unflushed = []
            pending.add_done_callback(self._on_checkpoint)

    def take_unflushed(self) -> list[tuple[str, bytes, float]]:
        """Checkpoints not yet handed to the store (the worker sends them with the outcome)."""
        steps, self._unflushed = self._unflushed, []
        return steps

    def _on_checkpoint(self, future: asyncio.Future[Any]) -> None:
        if future.cancelled():
            return
        if isinstance(future.exception(), LeaseLost):
            self._lost.add(self.delivery_id)

    def _check_lease(self, step: str) -> None:
        """Stop before a new side effect once this worker knows its lease was taken over."""
        if self.delivery_id in self._lost:
            raise LeaseLost(f"delivery {self.delivery_id}: lease lost; step {step!r} not started")

    @overload
    async def step(
        self, name: str, fn: Callable[P, Awaitable[R]], *args: P.args, **kwargs: P.kwargs
    ) -> R: ...

    @overload
    async def step(self, name: str, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R: ...

    async def step(self, name: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``fn(*args, **kwargs)`` once per delivery and checkpoint its JSON result.

        On a retry or replay the recorded result is returned without calling
        ``fn``. The returned value is always the JSON form (tuples become
        lists, models become dicts), the same on the first run and on replays.
        A plain function runs inline on the event loop: wrap blocking I/O in
        ``asyncio.to_thread`` or use an async client.
        """
        unique = self._unique(name)
        if unique in self._recorded:
            return self._recorded[unique]
        self._check_lease(unique)
        token = current_step.set(unique)
        try:
            result = fn(*args, **kwargs)
            if inspect.isawaitable(result):
                result = await result
        finally:
            current_step.reset(token)
        return await self._record(unique, result)

    async def sleep(self, duration: Duration, *, name: str | None = None) -> None:
        """Sleep durably: the delivery is parked and resumes after ``duration``, even across
        restarts. Its lane (ordering key) stays behind it while it sleeps."""
        await self._sleep(lambda now: now + seconds(duration), name or "sleep")

    async def sleep_until(self, when: float | datetime, *, name: str | None = None) -> None:
        """Sleep durably until ``when`` (epoch seconds or an aware datetime)."""
        target = when.timestamp() if isinstance(when, datetime) else float(when)
        await self._sleep(lambda _: target, name or "sleep")

    async def _sleep(self, until_of: Callable[[float], float], name: str) -> None:
        unique = self._unique(name)
        now = self._clock.now()
        recorded = self._recorded.get(unique)
        if recorded is None:
            recorded = await self._record(unique, {"until": until_of(now)})
        until = float(recorded["until"])
        if now < until:
            raise Suspend(until)

    async def wait_for_event(
        self,
        event_type: type[C],
        *,
        match: dict[str, Any] | None = None,
        timeout: Duration | None = None,
        name: str | None = None,
    ) -> C | None:
        """Park until an ``event_type`` event whose fields equal ``match`` arrives.

        Returns the event, or ``None`` when ``timeout`` passes first. Only events
        received after the flow reached this wait count. ``match`` keys may be
        dotted paths into the payload (``{"customer.id": "c_1"}``).
        """
        unique = self._unique(name or f"wait:{event_type.event_type()}")
        if unique in self._recorded:
            value = self._recorded[unique]
            if value is None:
                return None
            cloud = value["event"]
            return event_type.load(cloud["data"], int(cloud.get("interlockversion", 1)))
        now = self._clock.now()
        deadline = None if timeout is None else now + seconds(timeout)
        raise Suspend(
            deadline,
            WaitRequest(unique, event_type.event_type(), dict(match or {}), deadline, now),
        )

    async def emit(
        self, event: Contract, *, idempotency_key: str | None = None, subject: str | None = None
    ) -> str:
        """Emit a follow-up event: caused by this one, with its correlation id. Without an
        explicit ``idempotency_key`` one is derived from this delivery, so a retry does not
        emit twice."""
        return await self._emit(event, subject=subject, **self.emit_options(event, idempotency_key))

    def emit_options(self, event: Contract, idempotency_key: str | None = None) -> dict[str, Any]:
        """Where a follow-up event comes from: this flow, caused by this event, same correlation,
        and (unless given) an idempotency key derived from this delivery."""
        unique = self._unique(f"emit:{event.event_type()}")
        return {
            "source": f"flow:{self.flow}",
            "idempotency_key": idempotency_key or self.step_key(unique),
            "correlation_id": self.correlation_id,
            "causation_id": self.event_id,
        }

    # -- connectors -------------------------------------------------------------------
    @overload
    def connector(self, which: type[K]) -> K: ...

    @overload
    def connector(self, which: str) -> Connector: ...

    def connector(self, which: str | type[K]) -> Connector | K:
        """The app's connector named ``which`` (or the one of that class), bound to this
        delivery: its mutating calls carry idempotency keys from this delivery and step,
        its calls carry the correlation id, and it follows the flow's dry-run switch."""
        from interlock.connectors.runtime import find

        return find(_connectors.get(self._store) or {}, which).bind(self)

    def now(self) -> float:
        """The current time on the runtime's clock (epoch seconds)."""
        return self._clock.now()

    def record_call(self, record: CallRecord, at: float) -> None:
        """Keep a connector call that started ``at`` for the trace, with the step making it
        (the worker stores the run's calls with its attempt). The first
        ``MAX_CALLS_PER_ATTEMPT`` are kept; the rest are counted in a
        ``trace.calls_dropped`` warning."""
        if len(self._traced) >= MAX_CALLS_PER_ATTEMPT:
            self._untraced += 1
            return
        self._traced.append(record.as_json(at, current_step.get()))

    def take_calls(self) -> list[dict[str, Any]] | None:
        """The calls of this run for its attempt record (None when it made none)."""
        if not self._traced:
            return None
        calls, self._traced = self._traced, []
        if self._untraced:
            self.log.warning("trace.calls_dropped", kept=len(calls), dropped=self._untraced)
            self._untraced = 0
        return calls

    def call_key(self) -> str:
        """The idempotency key of the next mutating connector call of this run.

        Inside a step, the first call gets ``step_key(step)`` (the key a hand-written
        call would use) and the n-th ``step_key("step@n")``; outside any step, the n-th
        call of the run gets ``step_key("@n")``. Keys are the same on every retry as long
        as the flow makes its calls in the same order (completed steps are not re-run,
        so their calls do not count).
        """
        step = current_step.get()
        n = self._calls.get(step, 0) + 1
        self._calls[step] = n
        if step is None:
            return self.step_key(f"@{n}")
        return self.step_key(step) if n == 1 else self.step_key(f"{step}@{n}")


class SyncContext:
    """The context handed to plain (``def``) flow handlers, which run in a thread pool.

    Same methods as :class:`Context`, blocking instead of awaitable.
    """

    def __init__(self, ctx: Context, loop: asyncio.AbstractEventLoop) -> None:
        self._ctx = ctx
        self._loop = loop

    def _wait(self, coro: Awaitable[R]) -> R:
        async def run() -> R:
            token = current_context.set(self._ctx)
            try:
                return await coro
            finally:
                current_context.reset(token)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result()

    @property
    def delivery_id(self) -> int:
        return self._ctx.delivery_id

    @property
    def event_id(self) -> str:
        return self._ctx.event_id

    @property
    def correlation_id(self) -> str:
        return self._ctx.correlation_id

    @property
    def attempt(self) -> int:
        return self._ctx.attempt

    @property
    def log(self) -> Any:
        return self._ctx.log

    def step_key(self, name: str) -> str:
        return self._ctx.step_key(name)

    def step(self, name: str, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """Run ``fn`` once per delivery (in this thread) and checkpoint its result."""
        unique = self._ctx._unique(name)
        if unique in self._ctx._recorded:
            recorded: R = self._ctx._recorded[unique]
            return recorded
        token = current_step.set(unique)
        try:
            result = fn(*args, **kwargs)
        finally:
            current_step.reset(token)
        stored: R = self._wait(self._ctx._record(unique, result))
        return stored

    def connector(self, which: str | type[Connector]) -> Any:
        """The connector, bound to this delivery, with blocking methods: each of its async
        methods runs on the worker's event loop and this thread waits for the result."""
        from interlock.connectors.runtime import Blocking

        return Blocking(self._ctx.connector(which), self._wait)

    def sleep(self, duration: Duration, *, name: str | None = None) -> None:
        self._wait(self._ctx.sleep(duration, name=name))

    def sleep_until(self, when: float | datetime, *, name: str | None = None) -> None:
        self._wait(self._ctx.sleep_until(when, name=name))

    def wait_for_event(
        self,
        event_type: type[C],
        *,
        match: dict[str, Any] | None = None,
        timeout: Duration | None = None,
        name: str | None = None,
    ) -> C | None:
        return self._wait(
            self._ctx.wait_for_event(event_type, match=match, timeout=timeout, name=name)
        )

    def emit(
        self, event: Contract, *, idempotency_key: str | None = None, subject: str | None = None
    ) -> str:
        return self._wait(self._ctx.emit(event, idempotency_key=idempotency_key, subject=subject))
