"""The connectors page's figures: breaker, connection, rate-limit headroom, recent errors,
credential expiry.

Breaker and connection state come from the store (shared by every process); call
outcomes, the vendor's reported headroom and credential expiry from this process's
connector metrics (:func:`interlock.connectors.connector_metrics`). "Recent" errors
are the difference between now and a snapshot of the call counters taken at least
``RECENT`` seconds ago (:class:`CallHistory` keeps a few).
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from interlock.app import Interlock

RECENT = 15 * 60.0
OK_OUTCOMES = frozenset({"ok", "dry_run"})


@dataclass(frozen=True, slots=True)
class Credential:
    name: str
    expires_at: float
    left: float


@dataclass(frozen=True, slots=True)
class ConnectorView:
    name: str
    kind: str
    base_url: str
    auth: str
    rate: str | None
    breaker: str
    breaker_until: float | None
    opened: int
    connection: str
    reason: str | None
    headroom: float | None
    calls: int
    errors: dict[str, int]  # recent calls by failing outcome
    credentials: tuple[Credential, ...]
    dry_run: bool


class CallHistory:
    """Snapshots of the connector call counters, to tell recent errors from old ones."""

    def __init__(self, every: float = 30.0) -> None:
        self.every = every
        self._snapshots: deque[tuple[float, dict[tuple[str, str, str], int]]] = deque()
        self._lock = threading.Lock()

    def recent(
        self, calls: dict[tuple[str, str, str], int], now: float
    ) -> dict[tuple[str, str, str], int]:
        """Counts added within about the last ``RECENT`` seconds (since the first
        snapshot while the process is younger)."""
        current = dict(calls)
        with self._lock:
            if not self._snapshots or now - self._snapshots[-1][0] >= self.every:
                self._snapshots.append((now, current))
            while len(self._snapshots) > 1 and now - self._snapshots[1][0] >= RECENT:
                self._snapshots.popleft()
            base = self._snapshots[0][1] if now - self._snapshots[0][0] >= RECENT else {}
        return {k: n - base.get(k, 0) for k, n in current.items() if n - base.get(k, 0) > 0}


def connector_views(app: Interlock, history: CallHistory, now: float) -> list[ConnectorView]:
    if not app.connectors:
        return []
    from interlock.connectors import connector_metrics

    metrics = connector_metrics(app)
    states = {s.name: s for s in app.store.connector_states()}
    recent = history.recent(metrics.calls, now)
    views = []
    for name, connector in sorted(app.connectors.items()):
        state = states.get(name)
        errors: dict[str, int] = {}
        calls = 0
        for (who, _, outcome), n in recent.items():
            if who != name:
                continue
            calls += n
            if outcome not in OK_OUTCOMES:
                errors[outcome] = errors.get(outcome, 0) + n
        credentials = tuple(
            Credential(credential, at, at - now)
            for (who, credential), at in sorted(metrics.expiry.items())
            if who == name
        )
        views.append(
            ConnectorView(
                name=name,
                kind=type(connector).__name__,
                base_url=connector.base_url,
                auth=connector.auth.describe(),
                rate=None if connector.rate is None else str(connector.rate),
                breaker=state.breaker if state is not None else "closed",
                breaker_until=state.breaker_until if state is not None else None,
                opened=state.opened if state is not None else 0,
                connection=state.connection if state is not None else "ok",
                reason=state.reason if state is not None else None,
                headroom=metrics.headroom.get(name),
                calls=calls,
                errors=dict(sorted(errors.items(), key=lambda item: -item[1])),
                credentials=credentials,
                dry_run=bool(connector.dry_run or app.dry_run),
            )
        )
    return views
