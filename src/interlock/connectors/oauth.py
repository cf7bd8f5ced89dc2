"""OAuth2 for connectors: client credentials and refresh tokens, with their whole lifecycle.

- The tokens live in the app's encrypted secrets, as one JSON value under
  ``connector.<name>.oauth`` (access token, refresh token, expiry, scope).
- A token is refreshed *before* it expires (``refresh_before``, at most a fifth
  of its lifetime), and a 401 forces one refresh and one more try.
- Refreshing is single-flight across every coroutine, worker and process: one
  takes the store lock ``oauth:<name>``, the others wait and read its result.
  Vendors that rotate refresh tokens revoke the whole token family when an old
  one is used again, so the new tokens are persisted before they are used.
- ``invalid_grant`` (or ``invalid_client``) marks the connection
  ``needs_reauth``: an alert is logged, and every call raises
  :class:`~interlock.errors.ConnectionPaused`, so deliveries wait instead of
  dead-lettering, until an operator stores a new refresh token
  (``interlock secrets set crm-refresh-token``); then calls resume by themselves.

::

    OAuth2RefreshToken(token_url="/oauth/token", client_id="my-client",
                       client_secret="crm-client-secret", refresh_token="crm-refresh-token")
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx
import structlog

from interlock.connectors.auth import Auth, AuthHost, Credential
from interlock.connectors.classify import json_body, transport_error
from interlock.connectors.runtime import LoopLocal
from interlock.connectors.tokenset import TokenSet, fingerprint
from interlock.durations import Duration, seconds
from interlock.errors import (
    ConfigurationError,
    ConnectionPaused,
    PermissionDenied,
    RateLimited,
    StoreError,
    VendorUnavailable,
)

log = structlog.get_logger("interlock.connectors")


class OAuth2(Auth):
    """What both OAuth2 grants share; see the module docstring."""

    reauth_errors: ClassVar[frozenset[str]] = frozenset(
        {"invalid_grant", "invalid_client", "unauthorized_client"}
    )

    def __init__(
        self,
        *,
        token_url: str,
        client_id: str,
        client_secret: str,
        scope: str | None = None,
        refresh_before: Duration = "5m",
        client_auth: str = "body",
        reauth_retry: Duration = "5m",
        lock_timeout: Duration = "30s",
        extra: Mapping[str, str] | None = None,
    ) -> None:
        if client_auth not in ("body", "basic"):
            raise ConfigurationError(f"client_auth is 'body' or 'basic', not {client_auth!r}")
        self.token_url = token_url
        self.client_id = client_id
        self.client_secret = client_secret
        self.scope = scope
        self.client_auth = client_auth
        self.extra = dict(extra or {})
        self._margin = seconds(refresh_before)
        self._reauth_retry = seconds(reauth_retry)
        self._lock_timeout = seconds(lock_timeout)
        self._token: TokenSet | None = None
        self._locks: LoopLocal[asyncio.Lock] = LoopLocal(asyncio.Lock)
        self._secret_value = ""
        self.refreshes = 0  # token requests this process made

    # -- what a grant type decides ------------------------------------------------------
    def seed(self, host: AuthHost) -> str:
        """The long-lived credential the tokens descend from."""
        raise NotImplementedError

    def seed_name(self) -> str:
        raise NotImplementedError

    def grant(self, current: TokenSet | None, seed: str) -> dict[str, str]:
        """The token request's grant fields."""
        raise NotImplementedError

    # -- the Auth interface -------------------------------------------------------------
    def token_name(self, host: AuthHost) -> str:
        return f"connector.{host.name}.oauth"

    async def apply(self, request: httpx.Request, host: AuthHost) -> None:
        token = await self.token(host)
        request.headers["Authorization"] = "Bearer " + token.access_token

    async def check(self, host: AuthHost) -> None:
        state = host.connection_state()
        if state is None or state.connection != "needs_reauth":
            return
        if fingerprint(self.seed(host)) == state.seed:
            raise self._paused(host, state.reason or "needs re-authorization")
        # An operator stored a new credential: the connection works again.
        self._token = None
        await host.runtime.shared.set_connection(
            host.name, "ok", reason=None, seed=None, now=host.clock.now()
        )
        host.forget_state()
        log.info("connector.reauthorized", connector=host.name, credential=self.seed_name())

    async def rejected(self, request: httpx.Request, host: AuthHost) -> bool:
        used = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        await self.token(host, rejected=used)
        return True

    def credentials(self, host: AuthHost) -> list[Credential]:
        found: list[Credential] = []
        token = self._token
        if token is not None:
            found.append(Credential("access token", token.expires_at, renews=True))
            if token.refresh_token:
                found.append(Credential("refresh token", token.refresh_expires_at))
        seed = host.runtime.secrets.lookup(self.seed_name())
        found.append(Credential(f"secret {self.seed_name()}", seed.expires_at))
        return found

    def sensitive(self) -> list[str]:
        token = self._token
        values = [self._secret_value] if self._secret_value else []
        if token is not None:
            values += [v for v in (token.access_token, token.refresh_token) if v]
        return values

    # -- single-flight refresh ----------------------------------------------------------
    def _usable(self, token: TokenSet | None, host: AuthHost, rejected: str | None) -> bool:
        return (
            token is not None
            and token.access_token != rejected
            and token.seed == fingerprint(self.seed(host))
            and not token.due(host.clock.now(), self._margin)
        )

    async def token(self, host: AuthHost, *, rejected: str | None = None) -> TokenSet:
        """A valid access token: cached, read from the store, or refreshed (single-flight)."""
        current = self._token
        if (
            current is not None
            and current.access_token != rejected
            and not current.due(host.clock.now(), self._margin)
        ):
            return current
        async with self._locks.get():
            if self._usable(self._token, host, rejected):
                assert self._token is not None
                return self._token
            await self.check(host)  # the refresh before ours may have been refused
            return await self._obtain(host, rejected)

    def _load(self, host: AuthHost) -> TokenSet | None:
        name = self.token_name(host)
        host.runtime.secrets.forget(name)
        try:
            return TokenSet.decode(host.runtime.secrets.lookup(name).value)
        except ConfigurationError:
            return None

    async def _obtain(self, host: AuthHost, rejected: str | None) -> TokenSet:
        shared, holder, lock = host.runtime.shared, host.runtime.holder, f"oauth:{host.name}"
        deadline = host.clock.now() + self._lock_timeout
        pause = 0.01
        while True:
            stored = self._load(host)
            if self._usable(stored, host, rejected):
                self._token = stored
                assert stored is not None
                return stored
            now = host.clock.now()
            if await shared.take_lock(lock, holder, until=now + self._lock_timeout, now=now):
                break
            if now >= deadline:
                raise VendorUnavailable(
                    f"{host.name}: another process has been refreshing the OAuth token for "
                    f"{self._lock_timeout:g}s",
                    connector=host.name,
                    operation="oauth refresh",
                )
            await host.clock.sleep(pause)
            pause = min(pause * 2, 0.2)
            host.forget_state()
            await self.check(host)  # the other process's refresh may have been refused
        try:
            stored = self._load(host)  # a refresh may have finished just before the lock
            if self._usable(stored, host, rejected):
                self._token = stored
                assert stored is not None
                return stored
            fresh = await self._request(host, stored)
            await self._persist(host, fresh)
            self._token = fresh
            return fresh
        finally:
            await shared.release_lock(lock, holder)

    async def _persist(self, host: AuthHost, token: TokenSet) -> None:
        """Store the new tokens before anything uses them (a rotated refresh token that is
        lost can never be used again)."""
        for attempt in range(3):
            try:
                await host.runtime.secrets.put(
                    self.token_name(host),
                    token.encode(),
                    actor=f"connector:{host.name}",
                    now=host.clock.now(),
                    expires_at=token.refresh_expires_at,
                    audited=False,
                )
                return
            except StoreError:
                if attempt == 2:
                    raise
                await host.clock.sleep(0.05 * (attempt + 1))

    async def _request(self, host: AuthHost, current: TokenSet | None) -> TokenSet:
        seed = self.seed(host)
        seed_print = fingerprint(seed)
        if current is not None and current.seed != seed_print:
            current = None  # descends from a credential an operator has since replaced
        fields = self.grant(current, seed)
        fields.update(self.extra)
        if self.scope:
            fields.setdefault("scope", self.scope)
        # Fail before asking: tokens a rotating vendor issued but we could not store are lost.
        host.runtime.secrets.encrypt("can the new tokens be stored?")
        headers = {"Accept": "application/json"}
        secret = host.runtime.secrets.lookup(self.client_secret).value
        self._secret_value = secret
        if self.client_auth == "basic":
            raw = f"{self.client_id}:{secret}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
        else:
            fields.update(client_id=self.client_id, client_secret=secret)
        self.refreshes += 1
        now = host.clock.now()
        try:
            response = await host.client().post(
                host.absolute(self.token_url), data=fields, headers=headers
            )
        except (httpx.TransportError, TimeoutError) as exc:
            error = transport_error(exc)
            raise VendorUnavailable(
                f"{host.name} token endpoint: {error.message}",
                connector=host.name,
                operation="oauth refresh",
                code=error.code,
            ) from None
        body = json_body(response)
        problem = self.token_error(response, body)
        if problem is not None:
            await self._refused(host, response, problem, seed_print)
        assert isinstance(body, dict)
        return self.parse_token(body, now, seed_print, current, seed)

    def token_error(self, response: httpx.Response, body: Any) -> tuple[str, str] | None:
        """``(error, description)`` when the token endpoint refused; vendors override."""
        if response.status_code == 200 and isinstance(body, dict) and "access_token" in body:
            return None
        if isinstance(body, dict) and isinstance(body.get("error"), str):
            return body["error"], str(body.get("error_description") or "")
        return f"http_{response.status_code}", response.reason_phrase

    def parse_token(
        self,
        body: dict[str, Any],
        now: float,
        seed_print: str,
        current: TokenSet | None,
        seed: str,
    ) -> TokenSet:
        """The token set from a successful answer (a refresh token not rotated is kept)."""
        expires_in = body.get("expires_in")
        refresh_in = body.get("refresh_token_expires_in")
        kept = current.refresh_token if current is not None else self.initial_refresh(seed)
        return TokenSet(
            access_token=str(body["access_token"]),
            refresh_token=str(body.get("refresh_token") or kept or "") or None,
            expires_at=now + float(expires_in) if expires_in is not None else None,
            refresh_expires_at=now + float(refresh_in) if refresh_in is not None else None,
            scope=str(body["scope"]) if body.get("scope") else self.scope,
            obtained_at=now,
            seed=seed_print,
        )

    def initial_refresh(self, seed: str) -> str | None:
        return None

    async def _refused(
        self,
        host: AuthHost,
        response: httpx.Response,
        problem: tuple[str, str],
        seed_print: str,
    ) -> None:
        code, description = problem
        where = f"{host.name} token endpoint"
        if code in self.reauth_errors:
            self._token = None
            reason = f"{code}: {description}".strip(": ")
            await host.runtime.shared.set_connection(
                host.name, "needs_reauth", reason=reason, seed=seed_print, now=host.clock.now()
            )
            host.forget_state()
            host.runtime.metrics.alert(host.name, "needs_reauth")
            log.error(
                "connector.needs_reauth",
                connector=host.name,
                error=code,
                description=description,
                alert=True,
                fix=f"store a new credential: interlock secrets set {self.seed_name()}",
            )
            raise self._paused(host, reason)
        status = response.status_code
        if status == 429:
            raise RateLimited(f"{where}: rate limited", retry_after=1.0)
        if status >= 500:
            raise VendorUnavailable(
                f"{where} → HTTP {status}: {code} {description}".strip(),
                connector=host.name,
                operation="oauth refresh",
                status=status,
                code=code,
            )
        raise PermissionDenied(
            f"{where} → HTTP {status}: {code} {description}".strip(),
            connector=host.name,
            operation="oauth refresh",
            status=status,
            code=code,
            scope=self.scope,
        )

    def _paused(self, host: AuthHost, reason: str) -> ConnectionPaused:
        return ConnectionPaused(
            f"connection {host.name} needs re-authorization ({reason}); deliveries are paused "
            f"until a new credential is stored: interlock secrets set {self.seed_name()}",
            connector=host.name,
            retry_after=self._reauth_retry,
        )


class OAuth2ClientCredentials(OAuth2):
    """The client-credentials grant: the client's id and secret buy access tokens."""

    def seed(self, host: AuthHost) -> str:
        return host.runtime.secrets.lookup(self.client_secret).value

    def seed_name(self) -> str:
        return self.client_secret

    def grant(self, current: TokenSet | None, seed: str) -> dict[str, str]:
        return {"grant_type": "client_credentials"}

    def describe(self) -> str:
        return f"OAuth2 client credentials ({self.client_id}, secret {self.client_secret})"


class OAuth2RefreshToken(OAuth2):
    """The refresh-token grant, seeded by a refresh token an operator stored once
    (``refresh_token`` names that secret); rotated refresh tokens are followed."""

    def __init__(self, *, refresh_token: str, **options: Any) -> None:
        super().__init__(**options)
        self.refresh_token = refresh_token

    def seed(self, host: AuthHost) -> str:
        return host.runtime.secrets.lookup(self.refresh_token).value

    def seed_name(self) -> str:
        return self.refresh_token

    def grant(self, current: TokenSet | None, seed: str) -> dict[str, str]:
        token = current.refresh_token if current is not None and current.refresh_token else seed
        return {"grant_type": "refresh_token", "refresh_token": token}

    def initial_refresh(self, seed: str) -> str | None:
        return seed

    def describe(self) -> str:
        return f"OAuth2 refresh token (secret {self.refresh_token}, client {self.client_id})"
