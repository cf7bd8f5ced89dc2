"""What the SQLite store does for tokens, secrets, store locks and the connectors' shared
state (rate-limit buckets, breakers, connections) inside one group-commit transaction
(see ``sqlite_tx.py`` for the conventions)."""

from __future__ import annotations

import sqlite3

import orjson

from interlock.errors import ConfigurationError
from interlock.stores.base import PermitGrant, take_permits
from interlock.stores.sqlite_tx import Q


def _create_token(
    conn: sqlite3.Connection, token_id: str, name: str, role: str, hash: str, actor: str, now: float
) -> ConfigurationError | None:
    if conn.execute(Q["live-token-named"], (name,)).fetchone() is not None:
        return ConfigurationError(
            f"a live token named {name!r} exists already; revoke it first or pick another name"
        )
    conn.execute(Q["insert-token"], (token_id, name, role, hash, now, actor))
    detail = orjson.dumps({"name": name, "role": role}).decode()
    conn.execute(Q["insert-audit"], (now, actor, "token.create", f"token:{token_id}", "", detail))
    return None


def _revoke_token(
    conn: sqlite3.Connection, which: str, actor: str, reason: str, now: float
) -> tuple[str, str, str] | None:
    row = conn.execute(Q["revoke-token"], (now, actor, which, which)).fetchone()
    if row is None:
        return None
    token_id, name, role = row
    detail = orjson.dumps({"name": name, "role": role}).decode()
    conn.execute(
        Q["insert-audit"], (now, actor, "token.revoke", f"token:{token_id}", reason, detail)
    )
    return str(token_id), str(name), str(role)


def _put_secret(
    conn: sqlite3.Connection,
    name: str,
    token: bytes,
    actor: str,
    now: float,
    expires_at: float | None,
    audited: bool,
) -> int:
    version = int(conn.execute(Q["next-secret-version"], (name,)).fetchone()[0])
    conn.execute(Q["insert-secret"], (name, version, token, now, actor, expires_at))
    if audited:
        detail = orjson.dumps({"version": version, "expires_at": expires_at}).decode()
        conn.execute(Q["insert-audit"], (now, actor, "secret.set", f"secret:{name}", "", detail))
    return version


def _reencrypt_secrets(
    conn: sqlite3.Connection, rows: list[tuple[str, int, bytes]], actor: str, now: float
) -> int:
    for name, version, token in rows:
        conn.execute(Q["update-secret-value"], (token, name, version))
    detail = orjson.dumps({"values": len(rows)}).decode()
    conn.execute(Q["insert-audit"], (now, actor, "secret.rotate-key", "secrets", "", detail))
    return len(rows)


def _take_lock(conn: sqlite3.Connection, name: str, holder: str, until: float, now: float) -> bool:
    return conn.execute(Q["take-lock"], (name, holder, until, now)).fetchone() is not None


def _release_lock(conn: sqlite3.Connection, name: str, holder: str) -> None:
    conn.execute(Q["release-lock"], (name, holder))


# -- connectors: shared rate-limit buckets, breakers and connection health ------------------


def _lease_permits(
    conn: sqlite3.Connection,
    key: str,
    want: int,
    rate: float,
    burst: float,
    now: float,
    horizon: float,
) -> PermitGrant:
    row = conn.execute(Q["permits-of"], (key,)).fetchone()
    tokens, at = (None, now) if row is None else (float(row[0]), float(row[1]))
    grant, tokens_after, at_after = take_permits(tokens, at, want, rate, burst, now, horizon)
    conn.execute(Q["save-permits"], (key, tokens_after, at_after))
    return grant


def _pause_permits(conn: sqlite3.Connection, key: str, until: float) -> None:
    conn.execute(Q["pause-permits"], (key, until))


def _open_breaker(conn: sqlite3.Connection, name: str, until: float, now: float) -> None:
    conn.execute(Q["open-breaker"], (name, until, now))


def _breaker_trial(conn: sqlite3.Connection, name: str, until: float, now: float) -> bool:
    return bool(conn.execute(Q["breaker-trial"], (until, now, name, now)).rowcount)


def _close_breaker(conn: sqlite3.Connection, name: str, now: float) -> bool:
    return bool(conn.execute(Q["close-breaker"], (now, name)).rowcount)


def _set_connection(
    conn: sqlite3.Connection,
    name: str,
    status: str,
    reason: str | None,
    seed: str | None,
    now: float,
) -> None:
    conn.execute(Q["set-connection"], (name, status, reason, seed, now))
