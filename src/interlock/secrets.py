"""Secrets by name, never in code.

A secret named ``shopify-webhook-secret`` resolves, in this order, from:

1. the environment variable ``INTERLOCK_SECRET_SHOPIFY_WEBHOOK_SECRET`` (an
   explicit deployment setting wins), then
2. the store's encrypted secrets table, written by ``interlock secrets set`` or by
   connectors (rotating OAuth tokens).

Stored values are Fernet tokens under a key from ``INTERLOCK_SECRET_KEY``: one
key, or several separated by commas while rotating (the first encrypts, all
decrypt; ``interlock secrets rotate`` re-encrypts everything under the first).
Values are cached for a few seconds per process, so a changed secret takes
effect everywhere within ``cache_ttl``. Vault backends fit the same seam: an
object with :meth:`Secrets.resolve`.
"""

from __future__ import annotations

import functools
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from interlock.errors import ConfigurationError, StoreError

if TYPE_CHECKING:
    from interlock.stores.base import SecretInfo, Store

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
KEY_VARIABLE = "INTERLOCK_SECRET_KEY"


@functools.lru_cache(maxsize=1024)  # called on every webhook; names are few and fixed
def env_name(name: str) -> str:
    """The environment variable that holds secret ``name``."""
    if not _NAME.match(name) or len(name) > 200:
        raise ConfigurationError(
            f"secret name {name!r} must be letters, digits, '-', '_' or '.', e.g. "
            "'shopify-webhook-secret'"
        )
    return "INTERLOCK_SECRET_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def resolve_secret(name: str) -> str:
    """The value of secret ``name`` from the environment alone; a clear error names the
    variable to set if it is missing."""
    var = env_name(name)
    value = os.environ.get(var)
    if not value:
        raise ConfigurationError(f"secret {name!r} is not set: put it in the environment as {var}")
    return value


def new_key() -> str:
    """A fresh key for ``INTERLOCK_SECRET_KEY``."""
    return Fernet.generate_key().decode()


def cipher_from(value: str | None) -> MultiFernet | None:
    """The cipher of comma-separated Fernet keys (the first encrypts), or None if unset."""
    if not value or not value.strip():
        return None
    keys = []
    for number, raw in enumerate(value.split(","), start=1):
        try:
            keys.append(Fernet(raw.strip().encode()))
        except (ValueError, TypeError):
            raise ConfigurationError(
                f"{KEY_VARIABLE}: key {number} is not a Fernet key (32 url-safe base64 "
                "bytes); make one with `interlock secrets keygen`"
            ) from None
    return MultiFernet(keys)


@dataclass(frozen=True, slots=True)
class Resolved:
    value: str
    version: int | None  # None: from the environment
    expires_at: float | None


class Secrets:
    """Secrets of one app: environment first, then the store's encrypted table."""

    def __init__(
        self,
        store: Callable[[], Store],
        *,
        key: str | None = None,
        cache_ttl: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._key = key
        self._cipher: MultiFernet | None = None
        self._cipher_loaded = False
        self.cache_ttl = cache_ttl
        self._clock = clock
        self._cache: dict[str, tuple[float, Resolved]] = {}
        self._from_env: dict[str, Resolved] = {}  # the last value seen in the environment
        self._lock = threading.Lock()

    # -- reading ------------------------------------------------------------------------
    def resolve(self, name: str) -> str:
        """The current value of secret ``name``, or a clear error saying how to set it."""
        return self.lookup(name).value

    def lookup(self, name: str) -> Resolved:
        var = env_name(name)
        value = os.environ.get(var)
        if value:  # read every time: a changed variable takes effect at once
            seen = self._from_env.get(name)
            if seen is None or seen.value != value:
                seen = self._from_env[name] = Resolved(value, None, None)
            return seen
        now = self._clock()
        cached = self._cache.get(name)
        if cached is not None and cached[0] > now:
            return cached[1]
        resolved = self._from_store(name, var)
        with self._lock:
            self._cache[name] = (now + self.cache_ttl, resolved)
        return resolved

    def _from_store(self, name: str, var: str) -> Resolved:
        try:
            stored = self._store().current_secret(name)
        except StoreError as exc:
            raise ConfigurationError(
                f"secret {name!r} is not in the environment ({var}) and the store cannot be "
                f"read: {exc}"
            ) from None
        if stored is None:
            raise ConfigurationError(
                f"secret {name!r} is not set: put it in the environment as {var}, or store it "
                f"with `interlock secrets set {name}`"
            )
        return Resolved(self._decrypt(name, stored.token), stored.version, stored.expires_at)

    def forget(self, name: str | None = None) -> None:
        """Drop cached values (all, or ``name``'s), so the next read sees the store."""
        with self._lock:
            if name is None:
                self._cache.clear()
            else:
                self._cache.pop(name, None)

    def list(self) -> list[SecretInfo]:
        """Stored secrets: names, versions, who set them, expiry — never values."""
        return self._store().list_secrets()

    # -- writing ------------------------------------------------------------------------
    def encrypt(self, value: str) -> bytes:
        if not value:
            raise ConfigurationError("a secret's value may not be empty")
        return self._require_cipher().encrypt(value.encode("utf-8"))

    def set(
        self, name: str, value: str, *, actor: str, now: float, expires_at: float | None = None
    ) -> int:
        """Store a new version of ``name`` (blocking); returns the version."""
        env_name(name)
        version = self._store().put_secret_sync(
            name, self.encrypt(value), actor=actor, now=now, expires_at=expires_at
        )
        self.forget(name)
        return version

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
        """Store a new version from async code (connectors persisting refreshed tokens)."""
        env_name(name)
        version = await self._store().put_secret(
            name, self.encrypt(value), actor=actor, now=now, expires_at=expires_at, audited=audited
        )
        self.forget(name)
        return version

    def rotate(self, *, actor: str, now: float) -> int:
        """Re-encrypt every stored version under the first key; returns how many."""
        cipher = self._require_cipher()
        store = self._store()
        rows = []
        for name, version, token in store.secret_values():
            try:
                rows.append((name, version, cipher.rotate(token)))
            except InvalidToken:
                raise ConfigurationError(
                    f"secret {name!r} v{version} cannot be decrypted with any key in "
                    f"{KEY_VARIABLE}; add the key it was written with (comma-separated) and "
                    "rotate again"
                ) from None
        count = store.reencrypt_secrets_sync(rows, actor=actor, now=now)
        self.forget()
        return count

    # -- internals ----------------------------------------------------------------------
    def _require_cipher(self) -> MultiFernet:
        cipher = self._get_cipher()
        if cipher is None:
            raise ConfigurationError(
                f"{KEY_VARIABLE} is not set: stored secrets are encrypted with it; make one "
                "with `interlock secrets keygen` and keep it out of the database"
            )
        return cipher

    def _get_cipher(self) -> MultiFernet | None:
        if not self._cipher_loaded:
            self._cipher = cipher_from(
                self._key if self._key is not None else os.environ.get(KEY_VARIABLE)
            )
            self._cipher_loaded = True
        return self._cipher

    def _decrypt(self, name: str, token: bytes) -> str:
        cipher = self._require_cipher()
        try:
            return cipher.decrypt(token).decode("utf-8")
        except InvalidToken:
            raise ConfigurationError(
                f"secret {name!r} cannot be decrypted: {KEY_VARIABLE} does not hold the key it "
                "was written with"
            ) from None
