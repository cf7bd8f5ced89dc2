"""The runner: connect → fetch a batch → store it durably → settle every message.

One runner drives one declared :class:`~interlock.streams.stream.Stream`:

1. fetch up to ``source.batch`` messages (waiting at most ``stream.wait``);
2. parse and map them (:func:`~interlock.streams.intake.take`);
3. store the batch's events and rejection records in ONE store transaction;
4. only then ``ack`` the stored, already stored and ignored messages and
   ``reject`` (terminate) the rejected ones.

A crash anywhere before 4 leaves the messages unacknowledged: the broker hands
them out again and step 3 finds their idempotency keys already stored, so a
redelivery adds nothing. When the store cannot take a batch, every message of
it is nak'd with a growing delay and the runner pauses as long; when the broker
fails, the runner closes the source and connects again with jittered
exponential backoff. A stop lets the batch in hand finish (stored and settled)
before the source is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

import structlog

from interlock.streams.base import Message
from interlock.streams.intake import take
from interlock.streams.metrics import stream_metrics

if TYPE_CHECKING:
    from interlock.app import Interlock
    from interlock.streams.stream import Stream

__all__ = ["StreamRunner", "backoff", "run_streams"]

log = structlog.get_logger("interlock.streams")


def backoff(failures: int, cap: float, rand: random.Random | None = None) -> float:
    """Seconds to wait after ``failures`` consecutive failures: 0.1 s doubling up to ``cap``,
    with half of it jittered so that many processes do not retry in step.

    >>> [round(backoff(n, 30.0, random.Random(1)), 3) for n in (1, 2, 8, 20)]
    [0.057, 0.113, 7.26, 17.015]
    """
    base = min(cap, 0.1 * 2.0 ** max(0, failures - 1))
    return base * (0.5 + 0.5 * (rand or random).random())


class StreamRunner:
    """Consumes one stream into ``app``'s store until stopped."""

    def __init__(self, app: Interlock, stream: Stream) -> None:
        self.app = app
        self.stream = stream
        self.source = stream.source
        self.counters = stream_metrics(app).of(stream.name)
        self.store_failures = 0  # batches in a row the store refused

    async def run(self, stop: asyncio.Event) -> None:
        """Connect, consume and reconnect until ``stop`` is set; then close the source."""
        failures = 0
        connected_before = False
        while not stop.is_set():
            try:
                if not await _unless_stopped(stop, self.source.connect()):
                    break
            except Exception as exc:
                failures += 1
                log.warning("stream.connect_failed", stream=self.stream.name, error=_describe(exc))
                with contextlib.suppress(Exception):
                    await self.source.close()  # whatever the attempt had opened
                await _pause(stop, backoff(failures, self.stream.backoff_cap))
                continue
            if connected_before:
                self.counters.reconnects += 1
            connected_before = True
            self.counters.connected = True
            log.info("stream.connected", stream=self.stream.name, source=self.source.describe())
            try:
                await self._consume(stop)
                failures = 0
            except Exception as exc:
                failures += 1
                log.warning("stream.disconnected", stream=self.stream.name, error=_describe(exc))
            finally:
                self.counters.connected = False
                with contextlib.suppress(Exception):
                    await self.source.close()
            if failures and not stop.is_set():
                await _pause(stop, backoff(failures, self.stream.backoff_cap))
        log.info("stream.stopped", stream=self.stream.name)

    async def drain(self, wait: float = 0.05) -> int:
        """Connect, handle batches until a fetch (waiting ``wait`` s) comes back empty or
        the store refuses one, and close; returns how many messages were handled. The
        building block of tests: ``await StreamRunner(app, stream).drain()``."""
        handled = 0
        await self.source.connect()
        try:
            while messages := await self.source.fetch(wait):
                if not await self.handle(messages):
                    break
                handled += len(messages)
        finally:
            await self.source.close()
        return handled

    async def _consume(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            messages = await self.source.fetch(self.stream.wait)
            self.counters.lag = self.source.lag()
            if messages and not await self.handle(messages):
                await _pause(stop, backoff(self.store_failures, self.stream.backoff_cap))

    async def handle(self, messages: list[Message]) -> bool:
        """Store one batch and settle its messages; False when the store refused it (every
        message was nak'd for a later redelivery)."""
        counters = self.counters
        counters.consumed += len(messages)
        counters.redelivered += sum(1 for m in messages if m.deliveries > 1)
        intake = take(self.app, self.stream, messages)
        try:
            results = await self.app.emit_prepared(intake.items) if intake.items else []
        except Exception as exc:
            self.store_failures += 1
            delay = backoff(self.store_failures, self.stream.backoff_cap)
            log.error(
                "stream.store_failed",
                stream=self.stream.name,
                messages=len(messages),
                error=_describe(exc),
            )
            counters.add(counters.nacked, "store_unavailable", len(messages))
            await self.source.nak(messages, delay)
            return False
        self.store_failures = 0
        created: dict[int, bool] = {}
        for owner, result in zip(intake.owners, results, strict=True):
            created.setdefault(owner, result.created)
        acked: list[Message] = []
        rejected: list[Message] = []
        duplicates = 0
        for index, (message, verdict) in enumerate(zip(messages, intake.verdicts, strict=True)):
            if verdict == "rejected":
                rejected.append(message)
                counters.add(counters.rejected, intake.reasons[index])
                continue
            acked.append(message)
            duplicate = verdict == "stored" and not created[index]
            duplicates += duplicate
            counters.add(counters.acked, "duplicate" if duplicate else verdict)
        if duplicates:  # redelivered after a crash or a lost ack: already stored, not again
            log.info("stream.duplicates", stream=self.stream.name, messages=duplicates)
        if acked:
            await self.source.ack(acked)
        if rejected:
            await self.source.reject(rejected)
        return True


async def run_streams(app: Interlock, stop: asyncio.Event) -> None:
    """Run a :class:`StreamRunner` for every stream ``app`` declares until ``stop``."""
    if app.streams:
        await asyncio.gather(*(StreamRunner(app, s).run(stop) for s in app.streams.values()))


async def _unless_stopped(stop: asyncio.Event, work: Coroutine[Any, Any, None]) -> bool:
    """Await ``work`` unless ``stop`` is set first (then cancel it); True when it finished."""
    task = asyncio.ensure_future(work)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait((task, stopped), return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
    if task.done():
        task.result()
        return True
    task.cancel()
    with contextlib.suppress(BaseException):
        await task
    return False


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
