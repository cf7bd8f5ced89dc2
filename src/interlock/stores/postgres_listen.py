"""LISTEN/NOTIFY: idle workers learn at once that work arrived or a timer was set.

Every transaction that makes a delivery claimable by anyone (an emit not leased
directly, a promoted lane, a retry or sleep timer, a replay, a woken wait) sends
``NOTIFY interlock``; PostgreSQL delivers it when that transaction commits. A
daemon thread per process listens on its own connection and bumps a counter,
which is the store's :meth:`wakeup_token`: the worker loop already re-claims
whenever the token changes. Polling stays the fallback: the token also changes
every ``poll`` seconds, and while the listener is disconnected it reconnects with
backoff.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
import structlog

log = structlog.get_logger("interlock.store")

CHANNEL = "interlock"


class Listener:
    """Counts notifications on :data:`CHANNEL` from a background thread."""

    def __init__(self, connect: Callable[[], psycopg.Connection[Any]], *, poll: float) -> None:
        self._connect = connect
        self._poll = poll
        self.notified = 0
        self.connected = False
        self._stop = threading.Event()
        self._conn: psycopg.Connection[Any] | None = None
        self._thread = threading.Thread(target=self._run, name="interlock-listen", daemon=True)
        self._thread.start()

    def token(self) -> int:
        """Changes on every notification, and every ``poll`` seconds regardless."""
        return self.notified + int(time.monotonic() / self._poll) * 1_000_003

    def _run(self) -> None:
        delay = 0.05
        while not self._stop.is_set():
            try:
                conn = self._connect()
            except psycopg.Error as exc:
                log.warning("store.listen_failed", error=str(exc).strip(), retry_in=delay)
                self._stop.wait(delay)
                delay = min(delay * 2, 2.0)
                continue
            self._conn = conn
            try:
                conn.execute(f"LISTEN {CHANNEL}")
                self.connected = True
                delay = 0.05
                self.notified += 1  # (re)connected: whatever was sent meanwhile, look again
                while not self._stop.is_set():
                    for _ in conn.notifies(timeout=0.5):
                        self.notified += 1
            except psycopg.Error as exc:
                if not self._stop.is_set():
                    log.warning("store.listen_lost", error=str(exc).strip())
            finally:
                self.connected = False
                self._conn = None
                with contextlib.suppress(psycopg.Error):
                    conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
