"""OAuth2 access and refresh tokens with expiry, rotation and reuse detection.

Each simulator that speaks OAuth2 owns one :class:`TokenIssuer`. Access tokens
expire after ``ttl`` seconds (or the ``token_ttl`` fault), and all tokens
issued so far expire at once on ``faults.expire_tokens()``. Where the vendor
rotates refresh tokens, refreshing returns a new refresh token and retires the
old one; presenting a retired refresh token again is taken as theft (RFC 9700
§4.14.2): the whole token family — every access and refresh token descended
from the same grant — is revoked and the caller gets ``invalid_grant``::

    grant = issuer.issue()
    issuer.check(grant.access_token)      # "ok"
    new = issuer.refresh(grant.refresh_token)
    issuer.refresh(grant.refresh_token)   # raises InvalidGrant; `new` is revoked too
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl

import orjson

from interlock.sandbox.faults import Faults

_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


class OAuthError(Exception):
    """An RFC 6749 token-endpoint error: ``error`` is the standard code."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


class InvalidGrant(OAuthError):
    """A refresh token or code that is unknown, expired, already used, or revoked."""

    def __init__(self, description: str) -> None:
        super().__init__("invalid_grant", description)


@dataclass(frozen=True, slots=True)
class Grant:
    """One token response: an access token, and a refresh token unless client credentials."""

    access_token: str
    refresh_token: str | None
    expires_in: int
    scope: str


@dataclass(slots=True)
class _Access:
    family: int
    expires_at: float
    epoch: int


@dataclass(slots=True)
class _Refresh:
    family: int
    used: bool = False


class TokenIssuer:
    """Issues and checks OAuth2 tokens; call only under the simulator's lock."""

    def __init__(
        self,
        faults: Faults,
        *,
        access_prefix: str,
        refresh_prefix: str,
        ttl: int,
        rotate: bool,
        scope: str = "",
        seed: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.faults = faults
        self.access_prefix = access_prefix
        self.refresh_prefix = refresh_prefix
        self.ttl = ttl
        self.rotate = rotate
        self.scope = scope
        self._clock = clock
        self._rng = random.Random(f"oauth:{seed}")
        self._access: dict[str, _Access] = {}
        self._refresh: dict[str, _Refresh] = {}
        self._codes: set[str] = set()
        self._revoked: set[int] = set()
        self._families = 0

    def _token(self, prefix: str) -> str:
        return prefix + "".join(self._rng.choice(_ALPHABET) for _ in range(32))

    def _rotates(self) -> bool:
        override = self.faults.settings.rotate_refresh_tokens
        return self.rotate if override is None else override

    def authorization_code(self) -> str:
        """A single-use code, as the vendor's consent screen would redirect with."""
        code = self._token("code-")
        self._codes.add(code)
        return code

    def issue(self, *, family: int | None = None, with_refresh: bool = True) -> Grant:
        """A new grant (a new token family unless ``family`` is given)."""
        settings = self.faults.settings
        ttl = settings.token_ttl if settings.token_ttl is not None else self.ttl
        if family is None:
            self._families += 1
            family = self._families
        access = self._token(self.access_prefix)
        self._access[access] = _Access(family, self._clock() + ttl, settings.token_epoch)
        refresh = None
        if with_refresh:
            refresh = self._token(self.refresh_prefix)
            self._refresh[refresh] = _Refresh(family)
        return Grant(access, refresh, max(1, round(ttl)), self.scope)

    def exchange_code(self, code: str) -> Grant:
        if code not in self._codes:
            raise InvalidGrant("the authorization code is unknown or was already used")
        self._codes.discard(code)
        return self.issue()

    def refresh(self, token: str) -> Grant:
        """A new access token (and, when rotating, a new refresh token) for ``token``."""
        entry = self._refresh.get(token)
        if entry is None or entry.family in self._revoked:
            raise InvalidGrant("the refresh token is unknown, expired or revoked")
        if entry.used:
            self._revoked.add(entry.family)
            raise InvalidGrant(
                "the refresh token was already used; every token of its grant is now revoked"
            )
        if not self._rotates():
            grant = self.issue(family=entry.family, with_refresh=False)
            return Grant(grant.access_token, token, grant.expires_in, grant.scope)
        entry.used = True
        return self.issue(family=entry.family)

    def check(self, token: str) -> Literal["ok", "expired", "revoked", "unknown"]:
        entry = self._access.get(token)
        if entry is None:
            return "unknown"
        if entry.family in self._revoked:
            return "revoked"
        if entry.epoch < self.faults.settings.token_epoch or self._clock() >= entry.expires_at:
            return "expired"
        return "ok"

    def revoke(self, token: str) -> bool:
        """Revoke the family of an access or refresh token; False when the token is unknown."""
        entry = self._access.get(token) or self._refresh.get(token)
        if entry is None:
            return False
        self._revoked.add(entry.family)
        return True

    def family_revoked(self, token: str) -> bool:
        entry = self._access.get(token) or self._refresh.get(token)
        return entry is not None and entry.family in self._revoked


def token_fields(content_type: str, body: bytes) -> dict[str, Any]:
    """A token request's fields, from a JSON or a form-encoded body (as vendors accept both)."""
    if "json" in content_type:
        try:
            fields = orjson.loads(body or b"{}")
        except orjson.JSONDecodeError:
            return {}
        return fields if isinstance(fields, dict) else {}
    return dict(parse_qsl(body.decode(errors="replace"), keep_blank_values=True))


def token_request(
    issuer: TokenIssuer, fields: Mapping[str, Any], client_id: str, client_secret: str
) -> Grant:
    """Answer a token-endpoint request (``fields`` from its form or JSON body).

    Grants: ``authorization_code`` (``code``), ``refresh_token`` (``refresh_token``)
    and ``client_credentials`` (an access token without a refresh token).
    """
    grant_type = fields.get("grant_type")
    if not grant_type:
        raise OAuthError("invalid_request", "grant_type is required")
    if fields.get("client_id") != client_id or fields.get("client_secret") != client_secret:
        raise OAuthError("invalid_client", "client authentication failed", 401)
    if grant_type == "refresh_token":
        token = fields.get("refresh_token")
        if not isinstance(token, str) or not token:
            raise OAuthError("invalid_request", "refresh_token is required")
        return issuer.refresh(token)
    if grant_type == "authorization_code":
        code = fields.get("code")
        if not isinstance(code, str) or not code:
            raise OAuthError("invalid_request", "code is required")
        return issuer.exchange_code(code)
    if grant_type == "client_credentials":
        return issuer.issue(with_refresh=False)
    raise OAuthError("unsupported_grant_type", f"grant_type {grant_type!r} is not supported")
