"""What an OAuth2 token endpoint granted, as a connector stores it (encrypted, in the secrets
table under ``connector.<name>.oauth``), and when it is due for a refresh."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass

import orjson


def fingerprint(value: str) -> str:
    """A short digest of a credential: tells whether an operator stored a new one."""
    return hashlib.sha256(value.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class TokenSet:
    """What a token endpoint granted, as stored (encrypted) in the secrets table."""

    access_token: str
    refresh_token: str | None
    expires_at: float | None
    refresh_expires_at: float | None
    scope: str | None
    obtained_at: float
    seed: str  # fingerprint of the credential this grant descends from

    def due(self, now: float, margin: float) -> bool:
        """Whether to refresh now: within ``margin`` (at most a fifth of the lifetime) of expiry."""
        if self.expires_at is None:
            return False
        lifetime = max(0.0, self.expires_at - self.obtained_at)
        return now >= self.expires_at - min(margin, 0.2 * lifetime)

    def encode(self) -> str:
        return orjson.dumps(asdict(self)).decode()

    @classmethod
    def decode(cls, text: str) -> TokenSet | None:
        try:
            data = orjson.loads(text)
            return cls(**data) if isinstance(data, dict) else None
        except (orjson.JSONDecodeError, TypeError):
            return None
