"""Group commit: one writer thread turns many concurrent writes into few transactions.

Callers submit small functions; the writer drains everything queued, runs it
in one ``BEGIN IMMEDIATE … COMMIT`` (one fsync), then resolves every caller's
future. Throughput no longer costs one fsync per event, and nothing is
acknowledged before its transaction committed.

An operation reports an expected refusal (a lost lease, say) by *returning*
an exception instance; that fails only its own caller. An operation that
raises poisons the batch, which is then retried one operation per
transaction so the others still land.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from interlock.errors import StoreCorrupt, StoreError, StoreUnavailable

R = TypeVar("R")
Op = Callable[..., Any]

_STOP = object()


def begin_immediate(conn: sqlite3.Connection, timeout: float) -> None:
    """``BEGIN IMMEDIATE``, retried in fine steps while another process holds the write lock.

    SQLite's own busy handler backs off in steps of up to 100 ms, which turns a
    lock held for a millisecond by another process into tens of milliseconds of
    latency. Writer connections therefore run with ``busy_timeout = 0`` and wait
    here instead: 0.1 ms doubling to at most 2 ms, for at most ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    delay = 0.0001
    while True:
        try:
            conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            text = str(exc)
            if ("locked" not in text and "busy" not in text) or time.monotonic() >= deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.002)


def map_sqlite_error(exc: BaseException, url: str) -> BaseException:
    """Turn sqlite3 errors into interlock's, with a message that says what to do."""
    if isinstance(exc, StoreError) or not isinstance(exc, sqlite3.Error):
        return exc
    text = str(exc)
    if "locked" in text or "busy" in text:
        return StoreUnavailable(
            f"{url}: the database is locked by another process for too long ({text}); "
            "is a long-running command or another tool holding it open?"
        )
    if isinstance(exc, sqlite3.DatabaseError) and (
        "not a database" in text or "malformed" in text or "corrupt" in text
    ):
        return StoreCorrupt(f"{url}: the file is not a usable interlock database ({text})")
    if isinstance(exc, sqlite3.OperationalError):
        return StoreUnavailable(f"{url}: storage failed, nothing was acknowledged ({text})")
    return StoreError(f"{url}: {text}")


class _Request:
    __slots__ = ("args", "fn", "future", "loop")

    def __init__(
        self,
        fn: Op,
        args: tuple[Any, ...],
        future: asyncio.Future[Any] | concurrent.futures.Future[Any],
        loop: asyncio.AbstractEventLoop | None,
    ) -> None:
        self.fn = fn
        self.args = args
        self.future = future
        self.loop = loop


class GroupCommitWriter:
    """Owns the write connection; runs submitted operations in batched transactions."""

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        url: str,
        max_batch: int = 2048,
        busy_timeout: float = 10.0,
    ) -> None:
        self._connect = connect
        self._url = url
        self._busy_timeout = busy_timeout
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False
        self.batches = 0
        self.operations = 0

    # -- submitting -------------------------------------------------------------
    def _ensure_started(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._closed:
                    raise StoreUnavailable(f"{self._url}: the store is closed")
                if self._thread is None:
                    ready: concurrent.futures.Future[None] = concurrent.futures.Future()
                    self._thread = threading.Thread(
                        target=self._run, args=(ready,), name="interlock-writer", daemon=True
                    )
                    self._thread.start()
                    ready.result()

    def submit(self, fn: Op, *args: Any) -> asyncio.Future[Any]:
        """Queue ``fn(conn, *args)``; the future resolves after its batch committed."""
        self._ensure_started()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.put(_Request(fn, args, future, loop))
        return future

    def call(self, fn: Op, *args: Any) -> Any:
        """Run ``fn(conn, *args)`` in the next batch and wait for it (for sync callers)."""
        self._ensure_started()
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._queue.put(_Request(fn, args, future, None))
        return future.result()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            thread = self._thread
        if thread is not None:
            self._queue.put(_STOP)
            thread.join(timeout=30)
            self._thread = None

    # -- the writer thread --------------------------------------------------------
    def _run(self, ready: concurrent.futures.Future[None]) -> None:
        try:
            conn = self._connect()
        except BaseException as exc:
            ready.set_exception(map_sqlite_error(exc, self._url))
            return
        ready.set_result(None)
        try:
            while True:
                first = self._queue.get()
                if first is _STOP:
                    return
                batch = [first]
                stop = False
                while len(batch) < self._max_batch:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is _STOP:
                        stop = True
                        break
                    batch.append(item)
                self._run_batch(conn, batch)
                if stop:
                    return
        finally:
            conn.close()

    def _run_batch(self, conn: sqlite3.Connection, batch: list[_Request]) -> None:
        self.batches += 1
        self.operations += len(batch)
        try:
            begin_immediate(conn, self._busy_timeout)
            results = [req.fn(conn, *req.args) for req in batch]
            conn.execute("COMMIT")
        except BaseException as exc:
            _rollback(conn)
            if len(batch) > 1 and not _is_storage_failure(exc):
                for req in batch:
                    self._run_batch(conn, [req])
                return
            error = map_sqlite_error(exc, self._url)
            self._resolve([(req, error) for req in batch])
            return
        self._resolve(list(zip(batch, results, strict=True)))

    @staticmethod
    def _resolve(pairs: list[tuple[_Request, Any]]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Request, Any]]] = {}
        for req, result in pairs:
            if req.loop is None:
                fut = req.future
                assert isinstance(fut, concurrent.futures.Future)
                if isinstance(result, BaseException):
                    fut.set_exception(result)
                else:
                    fut.set_result(result)
            else:
                by_loop.setdefault(req.loop, []).append((req, result))
        for loop, items in by_loop.items():
            # A closed loop raises RuntimeError: its caller is gone and nobody is waiting.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_resolve_async, items)


def _resolve_async(items: list[tuple[_Request, Any]]) -> None:
    for req, result in items:
        fut = req.future
        if fut.done():
            continue
        if isinstance(result, BaseException):
            fut.set_exception(result)
        else:
            fut.set_result(result)


def _rollback(conn: sqlite3.Connection) -> None:
    with contextlib.suppress(sqlite3.Error):
        conn.execute("ROLLBACK")


def _is_storage_failure(exc: BaseException) -> bool:
    """Failures of the database itself: retrying one by one would not help."""
    if not isinstance(exc, sqlite3.Error):
        return False
    text = str(exc).lower()
    return any(
        word in text
        for word in (
            "disk i/o",
            "locked",
            "busy",
            "full",
            "readonly",
            "not a database",
            "malformed",
        )
    )


class LoopWriter:
    """Group commit for async callers, without a second Python thread doing SQL.

    The statements of a batch run on the event loop's own thread (no GIL
    hand-offs per statement); only ``BEGIN IMMEDIATE`` (which may wait for
    another process's lock) and ``COMMIT`` (the fsync) run on a helper
    thread, so the loop keeps running flows while the disk works, and the
    operations that arrive meanwhile form the next batch.
    """

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        url: str,
        max_batch: int = 512,
        busy_timeout: float = 10.0,
        synchronous: str = "FULL",
        light_ops: frozenset[Op] = frozenset(),
    ) -> None:
        self._connect = connect
        self._url = url
        self._busy_timeout = busy_timeout
        self._max_batch = max_batch
        # Batches made only of "light" operations (leases, heartbeats) commit without an
        # fsync: losing them to a power cut only means a lease is taken again. The next
        # durable commit's fsync covers their WAL frames too, so order is never broken.
        self._synchronous = synchronous
        self._light_ops = light_ops
        self._current_sync = synchronous
        self._conn: sqlite3.Connection | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: list[tuple[Op, tuple[Any, ...], asyncio.Future[Any]]] = []
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix="interlock-commit"
        )
        self._closed = False
        self.batches = 0
        self.operations = 0

    @property
    def backlog(self) -> int:
        """Operations queued and not yet in a transaction (the batch being committed
        excluded): how far the writer is behind its callers."""
        return len(self._pending)

    def submit(self, fn: Op, *args: Any) -> asyncio.Future[Any]:
        """Queue ``fn(conn, *args)``; the future resolves after its batch committed."""
        if self._closed:
            raise StoreUnavailable(f"{self._url}: the store is closed")
        loop = asyncio.get_running_loop()
        if loop is not self._loop or self._task is None or self._task.done():
            self._start(loop)
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((fn, args, future))
        assert self._wake is not None
        self._wake.set()
        return future

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._conn is None:
            self._conn = self._connect()
        self._loop = loop
        self._pending = [p for p in self._pending if p[2].get_loop() is loop]
        self._wake = asyncio.Event()
        self._task = loop.create_task(self._run(), name="interlock-group-commit")

    async def _run(self) -> None:
        wake = self._wake
        assert wake is not None
        while True:
            await wake.wait()
            wake.clear()
            while self._pending:
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                await self._commit(batch)

    async def _in_thread(self, sql: str) -> None:
        conn = self._conn
        assert conn is not None
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, conn.execute, sql)

    async def _commit(self, batch: list[tuple[Op, tuple[Any, ...], asyncio.Future[Any]]]) -> None:
        conn = self._conn
        assert conn is not None
        self.batches += 1
        self.operations += len(batch)
        try:
            sync = self._synchronous
            if sync == "FULL" and all(fn in self._light_ops for fn, _, _ in batch):
                sync = "NORMAL"
            # Uncontended, taking the write lock is a few microseconds: try it here and
            # only wait for another process's lock on the helper thread.
            if not self._try_begin(conn, sync):
                await asyncio.get_running_loop().run_in_executor(
                    self._executor, self._begin, conn, sync
                )
        except BaseException as exc:
            _fail(batch, map_sqlite_error(exc, self._url))
            if not isinstance(exc, Exception):
                raise
            return
        try:
            results = [fn(conn, *args) for fn, args, _ in batch]
        except Exception as exc:
            _rollback(conn)
            if len(batch) > 1 and not _is_storage_failure(exc):
                for item in batch:
                    await self._commit([item])
                return
            _fail(batch, map_sqlite_error(exc, self._url))
            return
        try:
            await self._in_thread("COMMIT")
        except BaseException as exc:
            _rollback(conn)
            _fail(batch, map_sqlite_error(exc, self._url))
            if not isinstance(exc, Exception):
                raise
            return
        for (_, _, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)

    def _try_begin(self, conn: sqlite3.Connection, sync: str) -> bool:
        if sync != self._current_sync:
            conn.execute(f"PRAGMA synchronous = {sync}")
            self._current_sync = sync
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                return False
            raise
        return True

    def _begin(self, conn: sqlite3.Connection, sync: str) -> None:
        if sync != self._current_sync:
            conn.execute(f"PRAGMA synchronous = {sync}")
            self._current_sync = sync
        begin_immediate(conn, self._busy_timeout)

    def close(self) -> None:
        self._closed = True
        if self._task is not None and self._loop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._task.cancel)
        self._executor.shutdown(wait=True)
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _fail(
    batch: list[tuple[Op, tuple[Any, ...], asyncio.Future[Any]]], error: BaseException
) -> None:
    for _, _, future in batch:
        if not future.done():
            future.set_exception(error)
