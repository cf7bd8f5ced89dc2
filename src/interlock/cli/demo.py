"""``interlock demo``: the example suite served with its dashboard, the vendor sandbox, a
traffic generator and a live table."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, cast

import structlog
from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from interlock.app import Interlock
from interlock.cli.common import console
from interlock.errors import ConfigurationError
from interlock.observability import AlertPolicy, BurnWindow
from interlock.sandbox.generic import API_KEY as GENERIC_API_KEY
from interlock.steps import Context
from interlock.stores.sqlite import sqlite_path


class LagMeter:
    """Middleware recording enqueue-to-start lag per flow (last 2,000 samples)."""

    def __init__(self) -> None:
        self.samples: dict[str, list[float]] = {}

    async def __call__(self, ctx: Context, call_next: Callable[[], Awaitable[None]]) -> None:
        if ctx.attempt == 1:
            lag = time.time() - ctx.event.received_at
            samples = self.samples.setdefault(ctx.flow, [])
            samples.append(lag)
            if len(samples) > 2000:
                del samples[:1000]
        await call_next()

    def p95(self, flow: str) -> float | None:
        samples = sorted(self.samples.get(flow, []))
        if not samples:
            return None
        return samples[min(len(samples) - 1, int(len(samples) * 0.95))]


def _traffic_of(app: Interlock) -> Callable[[float], Coroutine[Any, Any, None]]:
    for module in list(sys.modules.values()):
        if getattr(module, "app", None) is app and hasattr(module, "traffic"):
            traffic: Callable[[float], Coroutine[Any, Any, None]] = module.traffic
            return traffic
    raise ConfigurationError(
        "the demo app's module defines no `async def traffic(rate)` generator "
        "(see examples/shop.py)"
    )


def _table(app: Interlock, lag: LagMeter, started: float) -> Group:
    counts = app.store.flow_counts()
    stats = app.store.stats(time.time())
    table = Table(title=f"interlock demo — app {app.name!r} — {time.time() - started:.0f}s")
    for column in (
        "flow",
        "events in",
        "succeeded",
        "in flight",
        "parked",
        "retries",
        "dead",
        "p95 lag",
    ):
        table.add_column(column, justify="right" if column != "flow" else "left")
    retries = _retries(app)
    for flow in app.flows:
        c = counts.get(flow, {})
        total = sum(c.values())
        p95 = lag.p95(flow)
        table.add_row(
            flow,
            str(total),
            str(c.get("succeeded", 0)),
            str(c.get("running", 0) + c.get("queued", 0)),
            str(c.get("pending", 0) + c.get("waiting", 0)),
            str(retries.get(flow, 0)),
            Text(str(c.get("dead", 0)), style="red" if c.get("dead") else ""),
            "-" if p95 is None else f"{p95 * 1000:.0f} ms",
        )
    footer = Text(
        f"{stats.events} events stored, {stats.attempts} attempts ({stats.retries} retries). "
        "Open the dashboard (above), or try: interlock events trace order:1013 "
        "--app examples.shop:app · interlock dlq list --app examples.shop:app · Ctrl-C to stop",
        style="dim",
    )
    return Group(table, footer)


def _retries(app: Interlock) -> dict[str, int]:
    # Both stores answer plain SQL on `_read`; this figure is the demo's alone.
    rows = cast("Any", app.store)._read(
        "SELECT d.flow, count(*) FROM attempts a JOIN deliveries d ON d.id = a.delivery_id "
        "WHERE a.outcome = 'retry' GROUP BY d.flow"
    )
    return {str(flow): int(n) for flow, n in rows}


DEMO_WINDOWS = (
    BurnWindow("page", long="2m", short="20s", factor=14.4),
    BurnWindow("ticket", long="10m", short="1m", factor=6.0),
)


@dataclass(frozen=True, slots=True)
class DemoSettings:
    """Where the demo listens: the gateway (dashboard) and the vendor sandbox."""

    host: str = "127.0.0.1"
    port: int = 8000
    sandbox_port_base: int = 9100  # the generic simulator (the shop's CRM API) on +5
    error_rate: float = 0.03  # the sandbox's injected 5xx: retries for the dashboard to show


async def run_demo(
    app: Interlock,
    *,
    rate: float,
    duration: float | None,
    fresh: bool,
    settings: DemoSettings | None = None,
) -> None:
    """The gateway (dashboard at ``/``), a worker, the vendor sandbox and the traffic
    generator, in this process, until Ctrl-C (or ``duration`` seconds)."""
    from interlock.gateway.server import bind, server_for
    from interlock.sandbox import serve as sandbox

    settings = settings or DemoSettings()
    if fresh and app.database_url.startswith("sqlite:"):
        path = sqlite_path(app.database_url)
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(path + suffix)
    traffic = _traffic_of(app)
    sock = bind(settings.host, settings.port)
    # Worker logs (retries, dead letters) go to a file so the live table stays readable.
    log_file = open("interlock-demo.log", "a", encoding="utf-8")  # noqa: SIM115, ASYNC230
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=log_file))
    lag = LagMeter()
    app.middleware.append(lag)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    os.environ.setdefault("INTERLOCK_SECRET_CRM_API_KEY", GENERIC_API_KEY)
    if app.alerting.policy == AlertPolicy():  # minutes instead of hours: see alerts in the demo
        app.alerting.policy = AlertPolicy(windows=DEMO_WINDOWS)
        app.alerting.every = 5.0
    async with sandbox(("generic",), port_base=settings.sandbox_port_base) as vendors:
        vendors.generic.faults.set(error_rate=settings.error_rate)
        admin = await app.store.create_token(
            f"demo-admin-{secrets.token_hex(3)}", "admin", actor="demo", now=time.time()
        )
        server = server_for(app, settings.host, settings.port)
        worker = app.worker()
        started = time.time()
        tasks: list[asyncio.Task[Any]] = [
            asyncio.create_task(server.serve(sockets=[sock])),
            asyncio.create_task(worker.run(stop)),
            asyncio.create_task(traffic(rate)),
        ]
        host = f"[{settings.host}]" if ":" in settings.host else settings.host
        port = sock.getsockname()[1]
        console.print(
            f"[bold]Dashboard[/]: http://{host}:{port}/  ·  admin token: [bold]{admin.secret}[/]\n"
            f"Vendor sandbox (the CRM API): {vendors.generic.url}; try an outage with "
            f"`interlock sandbox faults generic --outage 60s --port-base "
            f"{settings.sandbox_port_base}`",
            soft_wrap=True,
        )
        try:
            with Live(_table(app, lag, started), console=console, refresh_per_second=2) as live:
                while not stop.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=0.5)
                    if duration is not None and time.time() - started >= duration:
                        stop.set()
                    live.update(_table(app, lag, started))
        finally:
            stop.set()
            server.should_exit = True
            tasks[2].cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            sock.close()
            console.print()
            structlog.reset_defaults()
            log_file.close()
            console.print(
                "demo stopped; the database keeps everything for `interlock events trace`, "
                "and the worker's log is in interlock-demo.log."
            )
