"""The administrative part of :class:`~interlock.stores.sqlite.SqliteStore`: API tokens,
encrypted secrets, store locks and the connectors' shared state (rate-limit buckets,
breakers, connections)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from interlock.errors import NotFound
from interlock.stores.base import ConnectorState, PermitGrant, SecretInfo, SecretValue
from interlock.stores.sqlite_admin_tx import (
    _breaker_trial,
    _close_breaker,
    _create_token,
    _lease_permits,
    _open_breaker,
    _pause_permits,
    _put_secret,
    _reencrypt_secrets,
    _release_lock,
    _revoke_token,
    _set_connection,
    _take_lock,
)
from interlock.stores.sqlite_tx import Q
from interlock.stores.writer import GroupCommitWriter, LoopWriter
from interlock.tokens import (
    NewToken,
    Role,
    TokenRow,
    check_name,
    digest,
    mint,
    role_of,
    well_formed,
)


class SqliteAdmin:
    """Mixed into SqliteStore; uses its reader and writers."""

    _async_writer: LoopWriter
    _writer: GroupCommitWriter

    def _read(self, sql: str, args: Iterable[Any] = ()) -> list[Any]:
        raise NotImplementedError  # SqliteStore's

    # -- tokens ---------------------------------------------------------------------
    async def create_token(self, name: str, role: Role, *, actor: str, now: float) -> NewToken:
        token_id, secret, hashed = mint()
        await self._async_writer.submit(
            _create_token, token_id, check_name(name), role, hashed, actor, now
        )
        return NewToken(TokenRow(token_id, name, role, now, actor), secret)

    def create_token_sync(self, name: str, role: Role, *, actor: str, now: float) -> NewToken:
        token_id, secret, hashed = mint()
        self._writer.call(_create_token, token_id, check_name(name), role, hashed, actor, now)
        return NewToken(TokenRow(token_id, name, role, now, actor), secret)

    async def revoke_token(
        self, which: str, *, actor: str, reason: str, now: float
    ) -> TokenRow | None:
        """Revoke the live token with id or name ``which``; None when there is none."""
        found = await self._async_writer.submit(_revoke_token, which, actor, reason, now)
        return None if found is None else self._token(found[0])

    def revoke_token_sync(
        self, which: str, *, actor: str, reason: str, now: float
    ) -> TokenRow | None:
        found = self._writer.call(_revoke_token, which, actor, reason, now)
        return None if found is None else self._token(found[0])

    def token_for(self, token: str) -> TokenRow | None:
        """The live token that ``token`` is, if any (looked up by its hash, never stored)."""
        if not well_formed(token):
            return None
        rows = self._read(Q["token-by-hash"], (digest(token),))
        return _token(rows[0]) if rows else None

    def list_tokens(self, *, include_revoked: bool = False) -> list[TokenRow]:
        sql = Q["token-columns"]
        if not include_revoked:
            sql += " WHERE revoked_at IS NULL"
        return [_token(r) for r in self._read(sql + " ORDER BY created_at, id")]

    # -- secrets and locks -------------------------------------------------------------
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
        version: int = self._writer.call(_put_secret, name, token, actor, now, expires_at, audited)
        return version

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
        version: int = await self._async_writer.submit(
            _put_secret, name, token, actor, now, expires_at, audited
        )
        return version

    def current_secret(self, name: str) -> SecretValue | None:
        rows = self._read(Q["current-secret"], (name,))
        if not rows:
            return None
        version, token, expires_at = rows[0]
        return SecretValue(name, int(version), bytes(token), expires_at)

    def list_secrets(self) -> list[SecretInfo]:
        return [
            SecretInfo(r[0], int(r[1]), r[2], r[3], r[4], int(r[5]))
            for r in self._read(Q["list-secrets"])
        ]

    def secret_values(self) -> list[tuple[str, int, bytes]]:
        """Every stored version, encrypted (for re-encryption under a new key)."""
        return [(r[0], int(r[1]), bytes(r[2])) for r in self._read(Q["all-secret-values"])]

    def reencrypt_secrets_sync(
        self, rows: list[tuple[str, int, bytes]], *, actor: str, now: float
    ) -> int:
        count: int = self._writer.call(_reencrypt_secrets, rows, actor, now)
        return count

    async def take_lock(self, name: str, holder: str, *, until: float, now: float) -> bool:
        """Take (or extend) lock ``name`` for ``holder`` until ``until``; False while another
        holder has it and it has not expired."""
        taken: bool = await self._async_writer.submit(_take_lock, name, holder, until, now)
        return taken

    async def release_lock(self, name: str, holder: str) -> None:
        await self._async_writer.submit(_release_lock, name, holder)

    def _token(self, token_id: str) -> TokenRow:
        rows = self._read(Q["token-columns"] + " WHERE id = ?", (token_id,))
        if not rows:
            raise NotFound(f"no token with id {token_id!r}")
        return _token(rows[0])

    # -- connectors ---------------------------------------------------------------------
    async def lease_permits(
        self, key: str, want: int, *, rate: float, burst: float, now: float, horizon: float
    ) -> PermitGrant:
        """Reserve up to ``want`` permits of the shared bucket ``key`` (one light write)."""
        grant: PermitGrant = await self._async_writer.submit(
            _lease_permits, key, want, rate, burst, now, horizon
        )
        return grant

    async def pause_permits(self, key: str, until: float, *, now: float) -> None:
        """No permits from bucket ``key`` before ``until`` (a vendor said to back off)."""
        await self._async_writer.submit(_pause_permits, key, until)

    def connector_state(self, name: str) -> ConnectorState | None:
        rows = self._read(Q["connector-state-columns"] + " WHERE name = ?", (name,))
        return _connector_state(rows[0]) if rows else None

    def connector_states(self) -> list[ConnectorState]:
        return [
            _connector_state(r) for r in self._read(Q["connector-state-columns"] + " ORDER BY name")
        ]

    async def open_breaker(self, name: str, *, until: float, now: float) -> None:
        await self._async_writer.submit(_open_breaker, name, until, now)

    async def try_breaker_trial(self, name: str, *, until: float, now: float) -> bool:
        """Take the single trial call of an open breaker whose cool-down is over."""
        taken: bool = await self._async_writer.submit(_breaker_trial, name, until, now)
        return taken

    async def close_breaker(self, name: str, *, now: float) -> bool:
        changed: bool = await self._async_writer.submit(_close_breaker, name, now)
        return changed

    async def set_connection(
        self, name: str, status: str, *, reason: str | None, seed: str | None, now: float
    ) -> None:
        await self._async_writer.submit(_set_connection, name, status, reason, seed, now)


def _token(row: Any) -> TokenRow:
    return TokenRow(row[0], row[1], role_of(row[2]), row[3], row[4], row[5], row[6])


def _connector_state(row: Any) -> ConnectorState:
    return ConnectorState(
        str(row[0]), str(row[1]), row[2], int(row[3]), str(row[4]), row[5], row[6], row[7]
    )
