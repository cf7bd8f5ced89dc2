"""API tokens and roles: who may read, who may act, who may manage.

A token looks like ``ilk_<id>_<secret>``. Only its SHA-256 is stored, so a
copy of the database grants nothing; the token is shown once, when created.
The id part (``tok_…``) is safe to show and log; it names the token in the
audit trail and in ``interlock tokens revoke``.

Roles are ordered: ``viewer`` reads; ``operator`` also replays, discards and
sends events; ``admin`` also manages tokens, flags and secrets.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Literal

from interlock.errors import ConfigurationError

Role = Literal["viewer", "operator", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "operator", "admin")
_RANK = {role: rank for rank, role in enumerate(ROLES)}
PREFIX = "ilk_"
_TOKEN = re.compile(r"ilk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._:@/-]{0,99}")


@dataclass(frozen=True, slots=True)
class TokenRow:
    """A stored token: everything but the secret."""

    id: str
    name: str
    role: Role
    created_at: float
    created_by: str
    revoked_at: float | None = None
    revoked_by: str | None = None

    @property
    def actor(self) -> str:
        """How this token appears in the audit trail."""
        return f"token:{self.name}"


@dataclass(frozen=True, slots=True)
class NewToken:
    """A freshly minted token: ``secret`` is the only copy of the full token."""

    row: TokenRow
    secret: str


def role_of(value: str) -> Role:
    for role in ROLES:
        if value == role:
            return role
    raise ConfigurationError(f"unknown role {value!r}: expected one of {', '.join(ROLES)}")


def allows(held: Role, needed: Role) -> bool:
    """Whether a token of role ``held`` may do what ``needed`` guards."""
    return _RANK[held] >= _RANK[needed]


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ConfigurationError(
            f"token name {name!r} is not valid: 1-100 characters, letters, digits and "
            "' ._:@/-', starting with a letter or digit"
        )
    return name


def mint() -> tuple[str, str, str]:
    """A new ``(id, token, hash)``."""
    ident = secrets.token_hex(8)
    token = f"{PREFIX}{ident}_{secrets.token_urlsafe(32)}"
    return f"tok_{ident}", token, digest(token)


def digest(token: str) -> str:
    """The stored form of ``token``. Tokens carry 256 random bits, so a fast hash is safe."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def well_formed(token: str) -> bool:
    """Cheap shape check before any lookup: rejects garbage without touching the store."""
    return _TOKEN.fullmatch(token) is not None
