"""The PostgreSQL store's operator and connector writes, as :class:`Call` s.

Replay and discard of dead letters, tokens, secrets, locks, rate-limit permits,
breakers and connection health: each in the caller's group-commit transaction,
with the same meaning as in ``sqlite_tx.py`` and ``sqlite_admin_tx.py``.
"""

from __future__ import annotations

from typing import Any

import orjson
from psycopg import AsyncConnection

from interlock.errors import ConfigurationError
from interlock.stores.base import PermitGrant, take_permits
from interlock.stores.postgres_writer import Call, Rows
from interlock.stores.sql import queries

Q = queries("postgres")
Conn = AsyncConnection[Any]


async def _nothing(conn: Conn, rows: Rows) -> None:
    return None


async def _row_count_true(conn: Conn, rows: Rows) -> bool:
    return bool(rows)


async def _audit(
    conn: Conn, now: float, actor: str, action: str, target: str, reason: str, detail: Any
) -> None:
    await conn.execute(
        Q["insert-audit"], (now, actor, action, target, reason, orjson.dumps(detail).decode())
    )


async def _open_lane(conn: Conn, flow: str, lane: str) -> bool:
    """Open the lane (True: the delivery heads it) or hold it open (False)."""
    while True:
        cur = await conn.execute(Q["lane-open"], (flow, lane))
        if await cur.fetchone() is not None:
            return True
        cur = await conn.execute(Q["lane-hold"], (flow, lane))
        if await cur.fetchone() is not None:
            return False


def replay_call(ids: list[int], actor: str, reason: str, now: float) -> Call:
    async def then(conn: Conn, rows: Rows) -> list[int]:
        done = []
        for delivery_id in ids:
            cur = await conn.execute(Q["delivery-for-replay"], (delivery_id,))
            row = await cur.fetchone()
            if row is None or row[3] != "dead":
                continue
            _, flow, lane, _, blocking = row
            due: float | None
            if blocking:
                status, due = "pending", now  # it still heads its lane
            elif await _open_lane(conn, flow, lane):
                status, due = "pending", now
            else:
                status, due = "queued", None
            await conn.execute(Q["replay-delivery"], (status, due, delivery_id))
            await _audit(
                conn, now, actor, "dlq.replay", f"delivery:{delivery_id}", reason, {"flow": flow}
            )
            done.append(delivery_id)
        if done:
            await conn.execute(Q["notify"])
        return done

    return Call(None, (), then)


def discard_call(ids: list[int], actor: str, reason: str, now: float) -> Call:
    async def then(conn: Conn, rows: Rows) -> list[int]:
        done = []
        for delivery_id in ids:
            cur = await conn.execute(Q["delivery-for-replay"], (delivery_id,))
            row = await cur.fetchone()
            if row is None or row[3] != "dead":
                continue
            _, flow, lane, _, blocking = row
            await conn.execute(
                Q["discard-delivery"], (f"discarded by {actor}: {reason}", now, delivery_id)
            )
            if blocking:
                await conn.execute(Q["advance"], (flow, lane, actor, now))
            await _audit(
                conn, now, actor, "dlq.discard", f"delivery:{delivery_id}", reason, {"flow": flow}
            )
            done.append(delivery_id)
        return done

    return Call(None, (), then)


def create_token_call(
    token_id: str, name: str, role: str, hash: str, actor: str, now: float
) -> Call:
    async def then(conn: Conn, rows: Rows) -> ConfigurationError | None:
        cur = await conn.execute(Q["live-token-named"], (name,))
        if await cur.fetchone() is not None:
            return ConfigurationError(
                f"a live token named {name!r} exists already; revoke it first or pick another name"
            )
        await conn.execute(Q["insert-token"], (token_id, name, role, hash, now, actor))
        await _audit(
            conn, now, actor, "token.create", f"token:{token_id}", "", {"name": name, "role": role}
        )
        return None

    return Call(None, (), then)


def revoke_token_call(which: str, actor: str, reason: str, now: float) -> Call:
    async def then(conn: Conn, rows: Rows) -> tuple[str, str, str] | None:
        if not rows:
            return None
        token_id, name, role = rows[0]
        detail = {"name": name, "role": role}
        await _audit(conn, now, actor, "token.revoke", f"token:{token_id}", reason, detail)
        return str(token_id), str(name), str(role)

    return Call(Q["revoke-token"], (now, actor, which, which), then)


def put_secret_call(
    name: str, token: bytes, actor: str, now: float, expires_at: float | None, audited: bool
) -> Call:
    async def then(conn: Conn, rows: Rows) -> int:
        cur = await conn.execute(Q["next-secret-version"], (name,))
        found = await cur.fetchone()
        assert found is not None
        version = int(found[0])
        await conn.execute(Q["insert-secret"], (name, version, token, now, actor, expires_at))
        if audited:
            detail = {"version": version, "expires_at": expires_at}
            await _audit(conn, now, actor, "secret.set", f"secret:{name}", "", detail)
        return version

    return Call(Q["secret-lock"], (name,), then)


def reencrypt_secrets_call(rows: list[tuple[str, int, bytes]], actor: str, now: float) -> Call:
    async def then(conn: Conn, _: Rows) -> int:
        for name, version, token in rows:
            await conn.execute(Q["update-secret-value"], (token, name, version))
        await _audit(conn, now, actor, "secret.rotate-key", "secrets", "", {"values": len(rows)})
        return len(rows)

    return Call(None, (), then)


def take_lock_call(name: str, holder: str, until: float, now: float) -> Call:
    return Call(Q["take-lock"], (name, holder, until, now), _row_count_true)


def release_lock_call(name: str, holder: str) -> Call:
    return Call(Q["release-lock"], (name, holder), _nothing)


def lease_permits_call(
    key: str, want: int, rate: float, burst: float, now: float, horizon: float
) -> Call:
    async def then(conn: Conn, rows: Rows) -> PermitGrant:
        tokens, at = (None, now) if not rows else (float(rows[0][0]), float(rows[0][1]))
        grant, tokens_after, at_after = take_permits(tokens, at, want, rate, burst, now, horizon)
        await conn.execute(Q["save-permits"], (key, tokens_after, at_after))
        return grant

    return Call(Q["permits-of"], (key,), then)


def pause_permits_call(key: str, until: float) -> Call:
    return Call(Q["pause-permits"], (key, until), _nothing)


def open_breaker_call(name: str, until: float, now: float) -> Call:
    return Call(Q["open-breaker"], (name, until, now), _nothing)


def breaker_trial_call(name: str, until: float, now: float) -> Call:
    return Call(Q["breaker-trial"] + " RETURNING name", (until, now, name, now), _row_count_true)


def close_breaker_call(name: str, now: float) -> Call:
    return Call(Q["close-breaker"] + " RETURNING name", (now, name), _row_count_true)


def set_connection_call(
    name: str, status: str, reason: str | None, seed: str | None, now: float
) -> Call:
    return Call(Q["set-connection"], (name, status, reason, seed, now), _nothing)
