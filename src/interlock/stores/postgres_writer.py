"""Group commit on PostgreSQL: many concurrent writes, one pipelined transaction.

Callers submit :class:`Call` s (a statement, its parameters and how to turn its rows
into the caller's result). The writer drains everything queued, sends all the
statements of a batch in one pipeline (one network round trip, not one per
write), runs the few follow-ups that need a second look, commits once, then
resolves every caller's future.

An expected refusal (a lost lease) comes back as an exception *instance* and
fails only its own caller. A statement that raises poisons the transaction; the
batch is then retried one call per transaction so the others still land. A
deadlock with another process is retried whole.

Calls that say how (:class:`Batchable`) run many at a time: consecutive calls of one
kind (settles: each on a lane of its own) become one statement over all their items
(a batch of succeeded outcomes is one UPDATE, not one per delivery), whose rows go
back to each caller as if it had run alone. Should that statement fail, the retry
one call per transaction runs each alone (and ``store.batch_split`` is logged).

Connection loss is survived: the writer reconnects with backoff. A batch that
failed before its COMMIT was sent is run again on the new connection (nothing of it
was committed); one that failed *during* COMMIT may or may not have landed, so its
callers get :class:`StoreUnavailable`, as with any unacknowledged write.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
import structlog
from psycopg import AsyncConnection, pq

from interlock.errors import StoreError, StoreUnavailable

log = structlog.get_logger("interlock.store")
Rows = list[tuple[Any, ...]]
Then = Callable[[AsyncConnection[Any], Rows], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Call:
    """One write: ``sql`` with ``params``; ``then`` maps its rows to the caller's result
    (and may run more statements in the same transaction)."""

    sql: str | None  # None: ``then`` does all the work (a rare, multi-statement write)
    params: Sequence[Any]
    then: Then
    lane: tuple[str, str] = ("", "")  # the first lane it locks, if any (see _in_lock_order)
    batch: Batchable | None = None  # how it may run together with calls of its kind


@dataclass(frozen=True, slots=True)
class Batchable:
    """How a :class:`Call` runs merged with others of its kind.

    Consecutive calls with equal ``key`` (on distinct lanes, unless ``distinct_lanes``
    is off) become one statement, ``build([item, ...]) -> (sql, params)``, which must
    return one row per item, in order, shaped as the call's own statement's row.
    """

    key: Hashable
    item: tuple[Any, ...]
    build: Callable[[list[tuple[Any, ...]]], tuple[str, Sequence[Any]]]
    distinct_lanes: bool = True  # merge only calls on lanes of their own


def describe(url: str) -> str:
    """A database URL without its credentials, for messages."""
    return url.split("@")[-1] if "@" in url else url


def map_pg_error(exc: BaseException, url: str) -> BaseException:
    """Turn psycopg errors into interlock's, with a message that says what to do."""
    if isinstance(exc, StoreError) or not isinstance(exc, psycopg.Error):
        return exc
    where = describe(url)
    if isinstance(exc, psycopg.OperationalError):
        return StoreUnavailable(
            f"{where}: PostgreSQL is unreachable or failing, nothing was "
            f"acknowledged ({str(exc).strip()})"
        )
    return StoreError(f"{where}: {str(exc).strip()}")


def _lost(conn: AsyncConnection[Any] | None) -> bool:
    return conn is None or conn.closed or conn.broken


class PgWriter:
    """Group commit for the callers on one event loop, over one connection."""

    def __init__(
        self,
        connect: Callable[[], Awaitable[AsyncConnection[Any]]],
        url: str,
        *,
        max_batch: int = 512,
        reconnect_timeout: float = 10.0,
    ) -> None:
        self._connect = connect
        self._url = url
        self._max_batch = max_batch
        self._reconnect_timeout = reconnect_timeout
        self._conn: AsyncConnection[Any] | None = None
        self._pending: list[tuple[Call, asyncio.Future[Any]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.loop = asyncio.get_running_loop()
        self.batches = 0
        self.operations = 0
        self.reconnects = 0
        self.merged = 0  # calls that ran as part of a merged statement
        self.split = 0  # batches whose statement failed, retried one call per transaction

    @property
    def backlog(self) -> int:
        return len(self._pending)

    def submit(self, call: Call) -> asyncio.Future[Any]:
        """Queue ``call``; the future resolves after its batch committed."""
        future: asyncio.Future[Any] = self.loop.create_future()
        self._pending.append((call, future))
        if self._task is None or self._task.done():
            self._task = self.loop.create_task(self._run(), name="interlock-pg-group-commit")
        self._wake.set()
        return future

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                await self._commit(_in_lock_order(batch))

    async def _connection(self) -> AsyncConnection[Any]:
        """The live connection, reconnecting with backoff for up to ``reconnect_timeout``."""
        if not _lost(self._conn):
            assert self._conn is not None
            return self._conn
        self._conn = None
        deadline = time.monotonic() + self._reconnect_timeout
        delay = 0.05
        while True:
            try:
                self._conn = await self._connect()
                self.reconnects += 1
                return self._conn
            except psycopg.OperationalError as exc:
                if time.monotonic() + delay > deadline:
                    raise map_pg_error(exc, self._url) from None
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def _commit(self, batch: list[tuple[Call, asyncio.Future[Any]]]) -> None:
        self.batches += 1
        self.operations += len(batch)
        deadlocks = 0
        deadline = time.monotonic() + self._reconnect_timeout
        while True:
            try:
                conn = await self._connection()
            except BaseException as exc:
                _fail(batch, map_pg_error(exc, self._url))
                if not isinstance(exc, Exception):
                    raise
                return
            committing = False
            try:
                calls = [call for call, _ in batch]
                groups = _merged(calls)
                self.merged += sum(len(group) for group in groups if len(group) > 1)
                results = await _run_calls(conn, calls, groups)
                committing = True
                await conn.commit()
            except psycopg.Error as exc:
                if _lost(conn):
                    # Before COMMIT nothing landed: run it again on a new connection.
                    if not committing and time.monotonic() < deadline:
                        continue
                    _fail(batch, map_pg_error(exc, self._url))
                    return
                await _rollback(conn)
                if isinstance(exc, psycopg.errors.TransactionRollback) and deadlocks < 5:
                    deadlocks += 1  # a deadlock or serialization failure: all of it again
                    continue
                if len(batch) > 1:
                    self.split += 1
                    # No message: it may quote the data; the caller whose call fails
                    # alone gets it.
                    log.warning(
                        "store.batch_split",
                        calls=len(batch),
                        error=type(exc).__name__,
                        sqlstate=exc.sqlstate,
                    )
                    for item in batch:
                        await self._commit([item])
                    return
                _fail(batch, map_pg_error(exc, self._url))
                return
            except BaseException as exc:
                await _rollback(conn)
                _fail(batch, map_pg_error(exc, self._url))
                if not isinstance(exc, Exception):
                    raise
                return
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)
            return

    def close(self) -> None:
        """Stop the writer (from any thread); its connection is closed without waiting."""
        task = self._task
        if task is not None and not self.loop.is_closed():
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is self.loop:
                task.cancel()
            else:
                with contextlib.suppress(RuntimeError):
                    self.loop.call_soon_threadsafe(task.cancel)
        conn = self._conn
        self._conn = None
        if conn is not None and not conn.closed:
            conn.pgconn.finish()


async def _run_calls(
    conn: AsyncConnection[Any], calls: list[Call], groups: list[list[int]]
) -> list[Any]:
    """Send every statement in one pipeline (a group of calls as one statement), then
    map each call's rows (in the open transaction: the follow-ups may write more)."""
    async with conn.pipeline() as pipeline:
        cursors: list[psycopg.AsyncCursor[Any] | None] = []
        for group in groups:
            first = calls[group[0]]
            if len(group) > 1:
                assert first.batch is not None
                sql, params = first.batch.build([_item(calls[i]) for i in group])
                cursors.append(await conn.execute(sql, params))
            elif first.sql is None:
                cursors.append(None)
            else:
                cursors.append(await conn.execute(first.sql, first.params))
        await pipeline.sync()
        results = [
            [] if cur is None or not _has_rows(cur) else await cur.fetchall() for cur in cursors
        ]
    rows: list[Rows] = [[] for _ in calls]
    for group, found in zip(groups, results, strict=True):
        if len(group) == 1:
            rows[group[0]] = found
        else:
            for i, row in zip(group, found, strict=True):
                rows[i] = [row]
    return [await call.then(conn, r) for call, r in zip(calls, rows, strict=True)]


def _item(call: Call) -> tuple[Any, ...]:
    assert call.batch is not None
    return call.batch.item


def _merged(calls: list[Call]) -> list[list[int]]:
    """Indexes of ``calls`` in groups of one statement each: a run of consecutive calls
    with the same batch key, each on a lane of its own, is one group."""
    groups: list[list[int]] = []
    lanes: set[tuple[str, str]] = set()
    key: Hashable = None
    for i, call in enumerate(calls):
        batch = call.batch
        if (
            batch is not None
            and groups
            and batch.key == key
            and not (batch.distinct_lanes and call.lane in lanes)
        ):
            groups[-1].append(i)
            lanes.add(call.lane)
            continue
        groups.append([i])
        key = None if batch is None else batch.key
        lanes = {call.lane}
    return groups


def _in_lock_order(
    batch: list[tuple[Call, asyncio.Future[Any]]],
) -> list[tuple[Call, asyncio.Future[Any]]]:
    """The batch with its writes ordered by the lane each locks first (a stable sort: two
    writes to one lane keep their order). Transactions of different processes then take
    lane locks in the same order, which keeps them from deadlocking one another (a
    deadlock would cost a second's wait for PostgreSQL to detect it, then a retry)."""
    return sorted(batch, key=lambda item: item[0].lane)


def _has_rows(cur: psycopg.AsyncCursor[Any]) -> bool:
    # Not `cur.description`: building it costs more than the statement's own mapping.
    result = cur.pgresult
    return result is not None and result.status == pq.ExecStatus.TUPLES_OK


async def _rollback(conn: AsyncConnection[Any]) -> None:
    with contextlib.suppress(psycopg.Error):
        await conn.rollback()


def _fail(batch: list[tuple[Call, asyncio.Future[Any]]], error: BaseException) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(error)
