"""Dashboard sessions: who is logged in, their CSRF token, and logins that fail too often.

A session is opened by logging in with an API token. The browser holds only a
random session id in an ``HttpOnly``, ``SameSite=Strict`` cookie; the gateway keeps
the token's id (never the token) and a CSRF token beside it, and re-reads the token
on every request, so a revoked token ends its sessions at once and a role change
applies on the next page. Sessions live in the gateway process: after a restart,
log in again.

Failed logins are limited per client address by :class:`LoginThrottle`: after
``limit`` failures within ``window`` seconds the address must wait until the oldest
of them leaves the window.
"""

from __future__ import annotations

import hmac
import secrets
import threading
from collections import deque
from dataclasses import dataclass, field

SESSION_COOKIE = "interlock_session"
LOGIN_COOKIE = "interlock_login"  # double-submit CSRF token of the login form


def new_secret() -> str:
    """A random URL-safe string with 256 bits of entropy."""
    return secrets.token_urlsafe(32)


def same(a: str | None, b: str | None) -> bool:
    """Constant-time equality of two secrets, false when either is missing."""
    if not a or not b:
        return False
    return hmac.compare_digest(a.encode(), b.encode())


@dataclass(slots=True)
class Session:
    """A logged-in browser: the token it logged in with, by id, and its CSRF token."""

    id: str
    token_id: str
    csrf: str
    created_at: float
    seen_at: float


@dataclass
class SessionStore:
    """Open sessions of one gateway process, expiring after ``idle`` seconds unused
    or ``lifetime`` seconds after login."""

    idle: float = 8 * 3600.0
    lifetime: float = 24 * 3600.0
    _sessions: dict[str, Session] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def open(self, token_id: str, now: float) -> Session:
        session = Session(new_secret(), token_id, new_secret(), now, now)
        with self._lock:
            self._expire(now)
            self._sessions[session.id] = session
        return session

    def get(self, session_id: str | None, now: float) -> Session | None:
        if not session_id:
            return None
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                return None
            if now - session.seen_at > self.idle or now - session.created_at > self.lifetime:
                del self._sessions[session_id]
                return None
            session.seen_at = now
            return session

    def close(self, session_id: str | None) -> None:
        if session_id:
            with self._lock:
                self._sessions.pop(session_id, None)

    def _expire(self, now: float) -> None:
        stale = [
            sid
            for sid, s in self._sessions.items()
            if now - s.seen_at > self.idle or now - s.created_at > self.lifetime
        ]
        for sid in stale:
            del self._sessions[sid]

    def __len__(self) -> int:
        return len(self._sessions)


@dataclass
class LoginThrottle:
    """At most ``limit`` failed logins per client address within ``window`` seconds."""

    limit: int = 5
    window: float = 300.0
    max_addresses: int = 10_000
    _failures: dict[str, deque[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def wait(self, address: str, now: float) -> float:
        """Seconds ``address`` must wait before its next login attempt (0: go ahead)."""
        with self._lock:
            failures = self._failures.get(address)
            if failures is None:
                return 0.0
            while failures and now - failures[0] >= self.window:
                failures.popleft()
            if not failures:
                del self._failures[address]
                return 0.0
            if len(failures) < self.limit:
                return 0.0
            return failures[0] + self.window - now

    def failed(self, address: str, now: float) -> None:
        with self._lock:
            if address not in self._failures and len(self._failures) >= self.max_addresses:
                self._prune(now)
            self._failures.setdefault(address, deque(maxlen=self.limit)).append(now)

    def succeeded(self, address: str) -> None:
        with self._lock:
            self._failures.pop(address, None)

    def _prune(self, now: float) -> None:
        for address in [
            a for a, f in self._failures.items() if not f or now - f[-1] >= self.window
        ]:
            del self._failures[address]
        if len(self._failures) >= self.max_addresses:  # under a spray: forget the oldest half
            for address in list(self._failures)[: self.max_addresses // 2]:
                del self._failures[address]
