"""Burn-rate alerting: the app's configuration and the evaluator that runs it.

::

    app.alerting.policy = AlertPolicy(windows=(BurnWindow("page", "1h", "5m", 14.4),))
    app.alerting.sinks.append(SlackSink("#ops"))
    app.alerting.every = 30.0

Every worker (and ``interlock gateway``) runs an :class:`AlertEvaluator` each
``every`` seconds; only the one holding the store lock ``interlock.alerts``
evaluates, so an alert fires once however many processes run. A pass reads
each SLO flow's counts over the policy's windows, decides each rule
(:func:`~interlock.observability.slo.decide`), records transitions in the
store (one firing alert per flow and severity) and sends a notice of each
transition to every sink. A sink that fails is retried at the next passes, up
to ``retries`` times, by the process that saw the transition.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import structlog

from interlock.durations import seconds
from interlock.observability.health import slo_counts
from interlock.observability.sinks import AlertNotice, AlertSink, LogSink
from interlock.observability.slo import AlertPolicy, budget_remaining, decide
from interlock.stores.analytics import AlertRow, NewAlert

if TYPE_CHECKING:
    from interlock.app import Interlock

__all__ = ["LOCK", "AlertEvaluator", "Alerting", "run_alerts"]

LOCK = "interlock.alerts"
log = structlog.get_logger("interlock.alerts")


@dataclass
class Alerting:
    """An app's alerting: its policy, its sinks, and how often it is evaluated."""

    policy: AlertPolicy = field(default_factory=AlertPolicy)
    sinks: list[AlertSink] = field(default_factory=lambda: [LogSink()])
    every: float = 30.0  # seconds between evaluations
    enabled: bool = True  # False: no process evaluates (the API still shows stored alerts)
    retries: int = 5  # passes a failed notice is tried again
    send_timeout: float = 15.0  # seconds one sink may take for one notice


@dataclass
class _Pending:
    notice: AlertNotice
    sink: AlertSink
    tries: int = 0


class AlertEvaluator:
    """Evaluates ``app``'s SLO alerts; :meth:`run` repeats it until stopped."""

    def __init__(self, app: Interlock, holder: str | None = None) -> None:
        self.app = app
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._pending: list[_Pending] = []

    async def evaluate(self, now: float) -> list[AlertNotice]:
        """One pass at ``now``: the transitions it recorded (empty without the lock)."""
        app, config = self.app, self.app.alerting
        store = app.store
        until = now + 2 * config.every + 5
        if not await store.take_lock(LOCK, self.holder, until=until, now=now):
            return []
        firing: dict[tuple[str, str], AlertRow] = {
            (a.flow, a.severity): a for a in store.list_alerts(firing=True, limit=10_000)
        }
        notices: list[AlertNotice] = []
        evaluated: set[tuple[str, str]] = set()
        policy = config.policy
        for flow in app.flows.values():
            if flow.slo is None:
                continue
            window = seconds(flow.slo.window)
            # Minutes that can no longer change are summed from then on, not scanned again.
            await store.roll_up_slo(flow.name, seconds(flow.slo.within), now=now, keep=window)
            spans = (*policy.spans(), window)
            counts = await asyncio.to_thread(slo_counts, app, flow, spans, now)
            target = flow.slo.target
            left = budget_remaining(counts[window], target)
            on = frozenset(s for (f, s) in firing if f == flow.name)
            for decision in decide(counts, target, policy, on):
                key = (flow.name, decision.severity)
                evaluated.add(key)
                if decision.firing:
                    rule = decision.rule
                    row, new = await store.fire_alert(
                        NewAlert(
                            flow=flow.name,
                            severity=decision.severity,
                            at=now,
                            burn_long=decision.burn_long,
                            burn_short=decision.burn_short,
                            long_s=rule.long_s,
                            short_s=rule.short_s,
                            factor=rule.factor,
                            budget_remaining=left,
                            summary=decision.summary(flow.name, target),
                        )
                    )
                    if new:
                        notices.append(AlertNotice(app, row, flow.owner))
                elif key in firing:
                    resolved = await store.resolve_alert(flow.name, decision.severity, now=now)
                    if resolved is not None:
                        notices.append(AlertNotice(app, resolved, flow.owner))
        # Alerts of flows (or rules) this app no longer declares: nothing keeps them firing.
        for key in firing.keys() - evaluated:
            resolved = await store.resolve_alert(*key, now=now)
            if resolved is not None:
                flow_decl = app.flows.get(key[0])
                notices.append(AlertNotice(app, resolved, flow_decl.owner if flow_decl else ""))
        await self._notify(notices)
        return notices

    async def _notify(self, notices: list[AlertNotice]) -> None:
        config = self.app.alerting
        todo = self._pending + [_Pending(n, s) for n in notices for s in config.sinks]
        self._pending = []
        if not todo:
            return
        results = await asyncio.gather(
            *(asyncio.wait_for(p.sink.send(p.notice), config.send_timeout) for p in todo),
            return_exceptions=True,
        )
        for pending, result in zip(todo, results, strict=True):
            if isinstance(result, BaseException):
                pending.tries += 1
                log.error(
                    "alert.notify_failed",
                    alert=pending.notice.id,
                    sink=type(pending.sink).__name__,
                    error=repr(result),
                    tries=pending.tries,
                )
                if pending.tries <= config.retries:
                    self._pending.append(pending)

    async def run(self, stop: asyncio.Event) -> None:
        """Evaluate every ``app.alerting.every`` seconds until ``stop`` is set."""
        app = self.app
        try:
            while not stop.is_set():
                try:
                    await self.evaluate(app.clock.now())
                except Exception as exc:  # an evaluation must never take its process down
                    log.error("alert.evaluation_failed", error=repr(exc))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=app.alerting.every)
        finally:
            with contextlib.suppress(Exception):
                await app.store.release_lock(LOCK, self.holder)


def run_alerts(app: Interlock, stop: asyncio.Event) -> asyncio.Task[None] | None:
    """Start ``app``'s alert evaluator as a task (None when alerting is off or no flow
    declares an SLO)."""
    if not app.alerting.enabled or not any(f.slo for f in app.flows.values()):
        return None
    return asyncio.create_task(AlertEvaluator(app).run(stop))
