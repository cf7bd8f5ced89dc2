"""PostgresStore: many workers on many machines against one PostgreSQL database.

The same protocol and semantics as :class:`~interlock.stores.sqlite.SqliteStore`.
Writes from async callers are group-committed per process and event loop: the
statements of a batch go out in one pipeline and commit together
(``postgres_writer.py``); sync callers (CLI, scripts, sync flows) share a second
writer on a helper thread. Reads are plain queries on a small connection pool.
Claims take due lane heads with ``FOR UPDATE SKIP LOCKED``, so workers never wait
for one another; ``LISTEN/NOTIFY`` wakes idle workers (``postgres_listen.py``).

Settings (environment):

* ``INTERLOCK_PG_POOL_SIZE`` — read connections per process (default 4).
* ``INTERLOCK_PG_CONNECT_TIMEOUT`` — seconds to wait for a connection (default 5).
* ``INTERLOCK_PG_RECONNECT_TIMEOUT`` — seconds a write keeps retrying while the
  database is unreachable before it fails with ``StoreUnavailable`` (default 10).
* ``INTERLOCK_PG_POLL`` — seconds between fallback polls for work (default 1).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from interlock.errors import ConfigurationError, StoreCorrupt, StoreUnavailable
from interlock.stores.base import Claimed, EmitResult, Gauge, NewEvent, Outcome, PermitGrant
from interlock.stores.postgres_admin import (
    breaker_trial_call,
    close_breaker_call,
    create_token_call,
    discard_call,
    lease_permits_call,
    open_breaker_call,
    pause_permits_call,
    put_secret_call,
    reencrypt_secrets_call,
    release_lock_call,
    replay_call,
    revoke_token_call,
    set_connection_call,
    take_lock_call,
)
from interlock.stores.postgres_analytics import PostgresAnalytics
from interlock.stores.postgres_contracts import PostgresContracts
from interlock.stores.postgres_listen import Listener
from interlock.stores.postgres_reads import PostgresReads
from interlock.stores.postgres_schema import gauges, schema_version, upgrade
from interlock.stores.postgres_tx import (
    claim_call,
    emit_call,
    emit_many_call,
    heartbeat_call,
    record_steps_call,
    settle_call,
)
from interlock.stores.postgres_writer import Call, PgWriter, describe, map_pg_error
from interlock.stores.retention_sql import prune_call
from interlock.stores.sql import migrations
from interlock.tokens import NewToken, Role, TokenRow, check_name, mint


class PostgresStore(PostgresReads, PostgresContracts, PostgresAnalytics):
    """The store for scale-out: any number of processes, on any number of machines."""

    dialect = "postgres"

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 4,
        connect_timeout: float = 5.0,
        reconnect_timeout: float = 10.0,
        poll: float = 1.0,
    ) -> None:
        if not url.startswith(("postgres://", "postgresql://")):
            raise ConfigurationError(f"not a PostgreSQL URL: {describe(url)}")
        self.url = url
        self._connect_timeout = connect_timeout
        self._reconnect_timeout = reconnect_timeout
        self._poll = poll
        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=max(1, pool_size),
            kwargs={"autocommit": True, "connect_timeout": max(1, int(connect_timeout))},
            timeout=connect_timeout,
            open=False,
            name="interlock-read",
        )
        self._lock = threading.Lock()
        self._writer: PgWriter | None = None
        self._sync_loop: asyncio.AbstractEventLoop | None = None
        self._sync_thread: threading.Thread | None = None
        self._sync_writer: PgWriter | None = None
        self._listener: Listener | None = None
        self._closed = False

    # -- connections ----------------------------------------------------------------
    async def _connect_async(self) -> psycopg.AsyncConnection[Any]:
        return await psycopg.AsyncConnection.connect(
            self.url, connect_timeout=max(1, int(self._connect_timeout))
        )

    def _connect_sync(self) -> psycopg.Connection[Any]:
        return psycopg.Connection.connect(
            self.url, autocommit=True, connect_timeout=max(1, int(self._connect_timeout))
        )

    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        if self._closed:
            raise StoreUnavailable(f"{describe(self.url)}: the store is closed")
        # Connections the server dropped are discarded by the pool one by one: try past them.
        attempts = self._pool.max_size + 1
        for attempt in range(1, attempts + 1):
            try:
                with self._pool_open().connection() as conn:
                    cur = conn.execute(sql, args)
                    return cur.fetchall() if cur.description is not None else []
            except PoolTimeout as exc:
                raise StoreUnavailable(
                    f"{describe(self.url)}: no database connection within "
                    f"{self._connect_timeout:g}s ({exc})"
                ) from None
            except psycopg.OperationalError as exc:
                # A connection the server dropped: the pool replaces it; try once more.
                if attempt == attempts:
                    raise map_pg_error(exc, self.url) from None
            except psycopg.Error as exc:
                raise map_pg_error(exc, self.url) from None
        raise AssertionError("unreachable")

    def _pool_open(self) -> ConnectionPool:
        if self._pool.closed:
            with self._lock:
                if self._pool.closed and not self._closed:
                    self._pool.open(wait=False)
        return self._pool

    def _submit(self, call: Call) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        writer = self._writer
        if writer is None or writer.loop is not loop:
            if self._closed:
                raise StoreUnavailable(f"{describe(self.url)}: the store is closed")
            if writer is not None:
                writer.close()
            writer = self._writer = PgWriter(
                self._connect_async, self.url, reconnect_timeout=self._reconnect_timeout
            )
        return writer.submit(call)

    def _write(self, call: Call) -> asyncio.Future[Any]:
        return self._submit(call)

    def _call(self, call: Call) -> Any:
        """Run ``call`` in the sync callers' group commit and wait for it."""
        loop = self._sync_loop
        if loop is None:
            with self._lock:
                if self._closed:
                    raise StoreUnavailable(f"{describe(self.url)}: the store is closed")
                if self._sync_loop is None:
                    self._sync_loop = asyncio.new_event_loop()
                    self._sync_thread = threading.Thread(
                        target=self._sync_loop.run_forever, name="interlock-pg-sync", daemon=True
                    )
                    self._sync_thread.start()
                loop = self._sync_loop

        async def run() -> Any:
            if self._sync_writer is None:
                self._sync_writer = PgWriter(
                    self._connect_async, self.url, reconnect_timeout=self._reconnect_timeout
                )
            return await self._sync_writer.submit(call)

        return asyncio.run_coroutine_threadsafe(run(), loop).result()

    def close(self) -> None:
        with self._lock:
            self._closed = True
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._sync_writer is not None:
            self._sync_writer.close()
        loop, thread = self._sync_loop, self._sync_thread
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=5)
            if not thread.is_alive():
                loop.close()
            self._sync_loop = self._sync_thread = None
        if not self._pool.closed:
            self._pool.close()

    # -- schema ---------------------------------------------------------------------
    def schema_version(self) -> int:
        return schema_version(self._read)

    def upgrade(self) -> list[str]:
        """Apply pending migrations; safe to run from several processes at once."""
        try:
            with self._connect_sync() as conn:
                return upgrade(conn, self.url)
        except psycopg.Error as exc:
            raise map_pg_error(exc, self.url) from None

    def ensure_schema(self) -> None:
        known = migrations("postgres")[-1].version
        current = self.schema_version()
        if current < known:
            self.upgrade()
        elif current > known:
            raise StoreCorrupt(
                f"{describe(self.url)}: schema v{current} was written by a newer interlock "
                f"(this one knows v{known}); upgrade interlock"
            )

    async def prune(self, before: float, *, limit: int) -> int:
        """Delete up to ``limit`` finished deliveries (and unreferenced events) older than
        ``before``: see :mod:`interlock.retention`."""
        deleted: int = await self._submit(prune_call(before, limit))
        return deleted

    def gauges(self) -> list[Gauge]:
        """Health of the database itself: what holds back vacuum, and its dead tuples."""
        return gauges(self._read)

    # -- writes ---------------------------------------------------------------------
    async def emit(self, items: list[NewEvent]) -> list[EmitResult]:
        if len(items) == 1:
            return [await self._submit(emit_call(items[0]))]
        result: list[EmitResult] = await self._submit(emit_many_call(items))
        return result

    def emit_sync(self, items: list[NewEvent]) -> list[EmitResult]:
        if len(items) == 1:
            return [self._call(emit_call(items[0]))]
        result: list[EmitResult] = self._call(emit_many_call(items))
        return result

    async def claim(self, worker: str, limit: int, now: float, lease: float) -> list[Claimed]:
        result: list[Claimed] = await self._submit(claim_call(worker, limit, now, lease))
        return result

    async def record_step(
        self, delivery_id: int, fence: int, name: str, result_json: bytes, now: float
    ) -> None:
        await self.record_steps_nowait(delivery_id, fence, [(name, result_json, now)])

    def record_steps_nowait(
        self, delivery_id: int, fence: int, steps: list[tuple[str, bytes, float]]
    ) -> asyncio.Future[None]:
        """Queue checkpoints ``(name, result JSON, recorded at)`` for the next group commit."""
        return self._submit(record_steps_call(delivery_id, fence, steps))

    def settle(
        self, outcome: Outcome, *, worker: str, chain: bool, now: float, lease: float
    ) -> asyncio.Future[Claimed | None]:
        """Record an outcome (fenced). With ``chain``, the lane's next delivery is leased to
        ``worker`` in the same transaction and returned."""
        return self._submit(settle_call(outcome, worker, chain, now, lease))

    async def heartbeat(
        self, worker: str, leases: list[tuple[int, int]], until: float
    ) -> list[int]:
        result: list[int] = await self._submit(heartbeat_call(worker, leases, until))
        return result

    async def replay(self, ids: list[int], *, actor: str, reason: str, now: float) -> list[int]:
        result: list[int] = await self._submit(replay_call(ids, actor, reason, now))
        return result

    async def discard(self, ids: list[int], *, actor: str, reason: str, now: float) -> list[int]:
        result: list[int] = await self._submit(discard_call(ids, actor, reason, now))
        return result

    def replay_sync(self, ids: list[int], *, actor: str, reason: str, now: float) -> list[int]:
        result: list[int] = self._call(replay_call(ids, actor, reason, now))
        return result

    def discard_sync(self, ids: list[int], *, actor: str, reason: str, now: float) -> list[int]:
        result: list[int] = self._call(discard_call(ids, actor, reason, now))
        return result

    def write_backlog(self) -> int:
        """Writes from this process waiting for their transaction (for load shedding)."""
        return 0 if self._writer is None else self._writer.backlog

    def wakeup_token(self) -> int:
        """Changes when another process made work claimable (LISTEN/NOTIFY), and at
        least every ``INTERLOCK_PG_POLL`` seconds."""
        listener = self._listener
        if listener is None:
            with self._lock:
                if self._closed:
                    return 0
                if self._listener is None:
                    self._listener = Listener(self._connect_sync, poll=self._poll)
                listener = self._listener
        return listener.token()

    # -- tokens, secrets and locks --------------------------------------------------------
    async def create_token(self, name: str, role: Role, *, actor: str, now: float) -> NewToken:
        token_id, secret, hashed = mint()
        await self._submit(create_token_call(token_id, check_name(name), role, hashed, actor, now))
        return NewToken(TokenRow(token_id, name, role, now, actor), secret)

    def create_token_sync(self, name: str, role: Role, *, actor: str, now: float) -> NewToken:
        token_id, secret, hashed = mint()
        self._call(create_token_call(token_id, check_name(name), role, hashed, actor, now))
        return NewToken(TokenRow(token_id, name, role, now, actor), secret)

    async def revoke_token(
        self, which: str, *, actor: str, reason: str, now: float
    ) -> TokenRow | None:
        """Revoke the live token with id or name ``which``; None when there is none."""
        found = await self._submit(revoke_token_call(which, actor, reason, now))
        return None if found is None else self._token(found[0])

    def revoke_token_sync(
        self, which: str, *, actor: str, reason: str, now: float
    ) -> TokenRow | None:
        found = self._call(revoke_token_call(which, actor, reason, now))
        return None if found is None else self._token(found[0])

    async def put_secret(
        self,
        name: str,
        token: bytes,
        *,
        actor: str,
        now: float,
        expires_at: float | None = None,
        audited: bool = True,
    ) -> int:
        call = put_secret_call(name, token, actor, now, expires_at, audited)
        version: int = await self._submit(call)
        return version

    def put_secret_sync(
        self,
        name: str,
        token: bytes,
        *,
        actor: str,
        now: float,
        expires_at: float | None = None,
        audited: bool = True,
    ) -> int:
        """Store a new version of secret ``name`` (already encrypted); its version."""
        version: int = self._call(put_secret_call(name, token, actor, now, expires_at, audited))
        return version

    def reencrypt_secrets_sync(
        self, rows: list[tuple[str, int, bytes]], *, actor: str, now: float
    ) -> int:
        count: int = self._call(reencrypt_secrets_call(rows, actor, now))
        return count

    async def take_lock(self, name: str, holder: str, *, until: float, now: float) -> bool:
        """Take (or extend) lock ``name`` for ``holder`` until ``until``; False while another
        holder has it and it has not expired."""
        taken: bool = await self._submit(take_lock_call(name, holder, until, now))
        return taken

    async def release_lock(self, name: str, holder: str) -> None:
        await self._submit(release_lock_call(name, holder))

    # -- connectors ---------------------------------------------------------------------
    async def lease_permits(
        self, key: str, want: int, *, rate: float, burst: float, now: float, horizon: float
    ) -> PermitGrant:
        """Reserve up to ``want`` permits of the shared bucket ``key``."""
        call = lease_permits_call(key, want, rate, burst, now, horizon)
        grant: PermitGrant = await self._submit(call)
        return grant

    async def pause_permits(self, key: str, until: float, *, now: float) -> None:
        await self._submit(pause_permits_call(key, until))

    async def open_breaker(self, name: str, *, until: float, now: float) -> None:
        await self._submit(open_breaker_call(name, until, now))

    async def try_breaker_trial(self, name: str, *, until: float, now: float) -> bool:
        """Take the single trial call of an open breaker whose cool-down is over."""
        taken: bool = await self._submit(breaker_trial_call(name, until, now))
        return taken

    async def close_breaker(self, name: str, *, now: float) -> bool:
        changed: bool = await self._submit(close_breaker_call(name, now))
        return changed

    async def set_connection(
        self, name: str, status: str, *, reason: str | None, seed: str | None, now: float
    ) -> None:
        await self._submit(set_connection_call(name, status, reason, seed, now))
