"""How a connector proves who it is: API keys, bearer tokens, basic auth (OAuth2 in
:mod:`interlock.connectors.oauth`).

Credentials are named, never written in code: each strategy takes the *name*
of a secret, resolved from the environment (``INTERLOCK_SECRET_<NAME>``) or the
store's encrypted table (``interlock secrets set NAME``) on use, so a rotated
key takes effect within the secrets cache's few seconds::

    ApiKey(secret="crm-api-key")                        # X-API-Key: …
    ApiKey(secret="shop-token", header="X-Shopify-Access-Token")
    BearerToken(secret="crm-token")                     # Authorization: Bearer …
    BasicAuth(username="agent@acme.test/token", secret="zendesk-api-token")
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import httpx

if TYPE_CHECKING:
    from interlock.clock import Clock
    from interlock.connectors.runtime import Runtime
    from interlock.stores.base import ConnectorState


@dataclass(frozen=True, slots=True)
class Credential:
    """One credential a connector relies on, and when it stops working (None: unknown)."""

    name: str  # e.g. "secret crm-api-key", "access token", "refresh token"
    expires_at: float | None
    renews: bool = False  # refreshed by the connector itself (an OAuth access token)


class AuthHost(Protocol):
    """What an auth strategy may use of its connector."""

    name: str

    @property
    def runtime(self) -> Runtime: ...

    @property
    def clock(self) -> Clock: ...

    def absolute(self, url: str) -> str: ...

    def client(self) -> httpx.AsyncClient: ...

    def connection_state(self) -> ConnectorState | None: ...

    def forget_state(self) -> None: ...


class Auth:
    """The base strategy: no credentials at all (a public API)."""

    scope: str | None = None

    async def apply(self, request: httpx.Request, host: AuthHost) -> None:
        """Add credentials to ``request`` (may fetch or refresh a token first)."""

    async def check(self, host: AuthHost) -> None:
        """Raise :class:`~interlock.errors.ConnectionPaused` while the connection needs
        re-authorization; called before every call."""

    async def rejected(self, request: httpx.Request, host: AuthHost) -> bool:
        """The vendor answered 401 to ``request``: True when fresh credentials were obtained
        and one more try may succeed (an expired OAuth token), False otherwise."""
        return False

    def credentials(self, host: AuthHost) -> list[Credential]:
        """The credentials in use and their expiry, for reports and warnings."""
        return []

    def sensitive(self) -> list[str]:
        """Values to scrub from anything a person reads (the last ones used)."""
        return []

    def describe(self) -> str:
        return "no authentication"


class _SecretAuth(Auth):
    """A strategy built on one named secret."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self._last = ""

    def value(self, host: AuthHost) -> str:
        value = host.runtime.secrets.lookup(self.secret).value
        self._last = value
        return value

    def credentials(self, host: AuthHost) -> list[Credential]:
        found = host.runtime.secrets.lookup(self.secret)
        return [Credential(f"secret {self.secret}", found.expires_at)]

    def sensitive(self) -> list[str]:
        return [self._last] if self._last else []


class ApiKey(_SecretAuth):
    """An API key in a header (``X-API-Key`` by default), optionally with a prefix."""

    def __init__(self, secret: str, *, header: str = "X-API-Key", prefix: str = "") -> None:
        super().__init__(secret)
        self.header = header
        self.prefix = prefix

    async def apply(self, request: httpx.Request, host: AuthHost) -> None:
        request.headers[self.header] = self.prefix + self.value(host)

    def describe(self) -> str:
        return f"API key in {self.header} from secret {self.secret}"


class BearerToken(_SecretAuth):
    """A static bearer token: ``Authorization: Bearer <secret>``."""

    async def apply(self, request: httpx.Request, host: AuthHost) -> None:
        request.headers["Authorization"] = "Bearer " + self.value(host)

    def describe(self) -> str:
        return f"bearer token from secret {self.secret}"


class BasicAuth(_SecretAuth):
    """HTTP basic auth: a literal ``username`` and the password from secret ``secret``."""

    def __init__(self, username: str, secret: str) -> None:
        super().__init__(secret)
        self.username = username

    async def apply(self, request: httpx.Request, host: AuthHost) -> None:
        raw = f"{self.username}:{self.value(host)}".encode()
        request.headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()

    def sensitive(self) -> list[str]:
        if not self._last:
            return []
        raw = f"{self.username}:{self._last}".encode()
        return [self._last, base64.b64encode(raw).decode()]

    def describe(self) -> str:
        return f"basic auth as {self.username} with secret {self.secret}"
