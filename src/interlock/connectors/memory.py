"""Shared connector state kept in memory, for a connector used without an app.

It answers exactly as the store does (the same bucket arithmetic, the same
breaker transitions), but only within this process: register the connector
with an app (``app.connector(...)``) for limits and breakers shared by every
worker process, and for OAuth tokens that survive restarts.
"""

from __future__ import annotations

import dataclasses
import os
import threading

from interlock.errors import ConfigurationError
from interlock.secrets import Resolved, env_name
from interlock.stores.base import ConnectorState, PermitGrant, take_permits


class MemoryShared:
    """Buckets, breakers, connection health and locks of one process."""

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}
        self._states: dict[str, ConnectorState] = {}
        self._locks: dict[str, tuple[str, float]] = {}
        self._mutex = threading.Lock()

    async def lease_permits(
        self, key: str, want: int, *, rate: float, burst: float, now: float, horizon: float
    ) -> PermitGrant:
        with self._mutex:
            tokens, at = self._buckets.get(key, (None, now))
            grant, tokens_after, at_after = take_permits(
                tokens, at, want, rate, burst, now, horizon
            )
            self._buckets[key] = (tokens_after, at_after)
        return grant

    async def pause_permits(self, key: str, until: float, *, now: float) -> None:
        with self._mutex:
            _, at = self._buckets.get(key, (0.0, now))
            self._buckets[key] = (0.0, max(at, until))

    def connector_state(self, name: str) -> ConnectorState | None:
        return self._states.get(name)

    def connector_states(self) -> list[ConnectorState]:
        return [self._states[name] for name in sorted(self._states)]

    def _state(self, name: str, now: float) -> ConnectorState:
        return self._states.get(name) or ConnectorState(
            name, "closed", None, 0, "ok", None, None, now
        )

    async def open_breaker(self, name: str, *, until: float, now: float) -> None:
        with self._mutex:
            state = self._state(name, now)
            self._states[name] = dataclasses.replace(
                state, breaker="open", breaker_until=until, opened=state.opened + 1, updated_at=now
            )

    async def try_breaker_trial(self, name: str, *, until: float, now: float) -> bool:
        with self._mutex:
            state = self._states.get(name)
            if state is None or state.breaker == "closed":
                return False
            if state.breaker_until is not None and state.breaker_until > now:
                return False
            self._states[name] = dataclasses.replace(
                state, breaker="half_open", breaker_until=until, updated_at=now
            )
            return True

    async def close_breaker(self, name: str, *, now: float) -> bool:
        with self._mutex:
            state = self._states.get(name)
            if state is None or state.breaker == "closed":
                return False
            self._states[name] = dataclasses.replace(
                state, breaker="closed", breaker_until=None, updated_at=now
            )
            return True

    async def set_connection(
        self, name: str, status: str, *, reason: str | None, seed: str | None, now: float
    ) -> None:
        with self._mutex:
            state = self._state(name, now)
            self._states[name] = dataclasses.replace(
                state, connection=status, reason=reason, seed=seed, updated_at=now
            )

    async def take_lock(self, name: str, holder: str, *, until: float, now: float) -> bool:
        with self._mutex:
            current = self._locks.get(name)
            if current is not None and current[0] != holder and current[1] > now:
                return False
            self._locks[name] = (holder, until)
            return True

    async def release_lock(self, name: str, holder: str) -> None:
        with self._mutex:
            if self._locks.get(name, ("", 0.0))[0] == holder:
                del self._locks[name]


class MemorySecrets:
    """Secrets for a stand-alone connector: the environment, then values put here.

    Tokens a connector refreshes are kept in memory only; with an app they go to
    the store's encrypted table instead (``app.secrets``).
    """

    def __init__(self) -> None:
        self._values: dict[str, list[tuple[str, float | None]]] = {}

    def lookup(self, name: str) -> Resolved:
        value = os.environ.get(env_name(name))
        if value:
            return Resolved(value, None, None)
        versions = self._values.get(name)
        if not versions:
            raise ConfigurationError(
                f"secret {name!r} is not set: put it in the environment as {env_name(name)}"
            )
        value, expires_at = versions[-1]
        return Resolved(value, len(versions), expires_at)

    def forget(self, name: str | None = None) -> None:
        """Nothing is cached here; kept for the same interface as :class:`Secrets`."""

    def encrypt(self, value: str) -> bytes:
        """Values stay in this process's memory: nothing to encrypt them for."""
        return value.encode()

    async def put(
        self,
        name: str,
        value: str,
        *,
        actor: str,
        now: float,
        expires_at: float | None = None,
        audited: bool = False,
    ) -> int:
        env_name(name)
        self._values.setdefault(name, []).append((value, expires_at))
        return len(self._values[name])
