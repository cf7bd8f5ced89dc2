"""The ``interlock`` command line (Typer + Rich). ``interlock --help`` lists everything."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Coroutine
from typing import Annotated, Any

import typer
from rich.table import Table

from interlock.app import Interlock
from interlock.cli.access import audit, tokens
from interlock.cli.common import APP_HELP, DB_HELP, console, dump_json, friendly, load_app
from interlock.cli.connectors import connectors_cli
from interlock.cli.contracts import contracts_cli
from interlock.cli.dlq import dlq
from interlock.cli.drift import drift_cli
from interlock.cli.events import events
from interlock.cli.sandbox import sandbox
from interlock.cli.secrets import secrets_cli
from interlock.cli.slo import alerts_cli, slo_cli
from interlock.durations import humanize
from interlock.errors import StoreError
from interlock.observability import serve_metrics
from interlock.stores import DEFAULT_URL, open_store
from interlock.worker import WorkerConfig, tune_gc

cli = typer.Typer(
    name="interlock",
    help="interlock: durable, per-key ordered, idempotent reactions to business events.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db = typer.Typer(help="Database schema.", no_args_is_help=True)
flows = typer.Typer(help="The flows an app declares.", no_args_is_help=True)
cli.add_typer(db, name="db")
cli.add_typer(events, name="events")
cli.add_typer(dlq, name="dlq")
cli.add_typer(flows, name="flows")
cli.add_typer(tokens, name="tokens")
cli.add_typer(audit, name="audit")
cli.add_typer(secrets_cli, name="secrets")
cli.add_typer(sandbox, name="sandbox")
cli.add_typer(connectors_cli, name="connectors")
cli.add_typer(slo_cli, name="slo")
cli.add_typer(alerts_cli, name="alerts")
cli.add_typer(drift_cli, name="drift")
cli.add_typer(contracts_cli, name="contracts")

AppArg = Annotated[str | None, typer.Argument(help=APP_HELP, show_default=False)]
ConcurrencyOpt = Annotated[int, typer.Option(help="Lanes processed at once.", min=1)]
LeaseOpt = Annotated[float, typer.Option(help="Seconds a claim is valid without a heartbeat.")]
GraceOpt = Annotated[float, typer.Option(help="Seconds to finish in-flight work on SIGTERM.")]
StreamsOpt = Annotated[
    bool, typer.Option(help="Consume the app's declared stream sources (NATS JetStream, ...).")
]
ChecksOpt = Annotated[
    float | None,
    typer.Option(
        "--checks-every",
        help="Run every connector's synthetic checks this often (seconds); off by default.",
        min=1,
    ),
]


async def serve_worker(app: Interlock, config: WorkerConfig) -> None:
    """Run one worker until SIGINT/SIGTERM, then drain gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    worker = app.worker(config)
    console.print(
        f"[bold]interlock[/] worker {worker.name}: app {app.name!r}, {len(app.flows)} flow(s), "
        f"store {app.database_url}, concurrency {config.concurrency}"
    )
    try:
        await worker.run(stop)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    c = worker.counters
    console.print(
        f"stopped: {c.succeeded} succeeded, {c.retried} retried, {c.dead} dead, "
        f"{c.suspended} parked"
    )


def _run(main: Coroutine[Any, Any, None]) -> None:
    """``asyncio.run(main)``, on uvloop's faster event loop when it can be imported."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - a dependency where it builds (not on Windows)
        asyncio.run(main)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")


def _work(app: str | None, config: WorkerConfig, metrics: tuple[str, int] | None = None) -> None:
    _logging()
    application = load_app(app)
    application.store  # noqa: B018 - open and migrate before work starts
    stop_metrics = serve_metrics(application, *metrics) if metrics else None
    if metrics:
        console.print(f"metrics on http://{metrics[0]}:{metrics[1]}/metrics")
    tune_gc()
    try:
        _run(serve_worker(application, config))
    finally:
        if stop_metrics is not None:
            stop_metrics()


HostOpt = Annotated[str, typer.Option(help="Address the gateway listens on.")]
PortOpt = Annotated[int, typer.Option(help="Port the gateway listens on.", min=1, max=65535)]


def _serve(app: str | None, host: str, port: int, config: WorkerConfig | None) -> None:
    from interlock.gateway.server import serve

    _logging()
    application = load_app(app)
    application.store  # noqa: B018 - open and migrate before serving
    tune_gc()
    what = "gateway and worker" if config is not None else "gateway"
    console.print(
        f"[bold]interlock[/] {what}: app {application.name!r}, {len(application.flows)} flow(s), "
        f"{len(application.sources)} webhook source(s), http://{host}:{port}, "
        f"store {application.database_url}"
    )
    _run(serve(application, host=host, port=port, worker=config))


@cli.command()
@friendly
def run(
    app: AppArg = None,
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 8000,
    concurrency: ConcurrencyOpt = 256,
    lease: LeaseOpt = 30.0,
    grace: GraceOpt = 30.0,
    checks_every: ChecksOpt = None,
    streams: StreamsOpt = True,
    gateway: Annotated[
        bool, typer.Option(help="Serve the gateway (webhooks, health) beside the worker.")
    ] = True,
) -> None:
    """Run the app: migrate the store if needed, then serve the gateway and a worker until
    Ctrl-C or SIGTERM."""
    config = WorkerConfig(
        concurrency=concurrency,
        lease=lease,
        grace=grace,
        checks_every=checks_every,
        streams=streams,
    )
    if gateway:
        _serve(app, host, port, config)
    else:
        _work(app, config)


@cli.command("gateway")
@friendly
def gateway_command(
    app: AppArg = None,
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 8000,
) -> None:
    """Serve only the gateway (webhooks, POST /events, REST API, metrics, health); run workers
    elsewhere."""
    _serve(app, host, port, None)


@cli.command()
@friendly
def worker(
    app: AppArg = None,
    concurrency: ConcurrencyOpt = 256,
    lease: LeaseOpt = 30.0,
    grace: GraceOpt = 30.0,
    checks_every: ChecksOpt = None,
    streams: StreamsOpt = True,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            help="Serve this worker's metrics (Prometheus) on this port.", min=1, max=65535
        ),
    ] = None,
    metrics_host: Annotated[str, typer.Option(help="Address the metrics port listens on.")] = (
        "127.0.0.1"
    ),
) -> None:
    """Run one more worker process. Start as many as you like against the same store."""
    metrics = (metrics_host, metrics_port) if metrics_port is not None else None
    config = WorkerConfig(
        concurrency=concurrency,
        lease=lease,
        grace=grace,
        checks_every=checks_every,
        streams=streams,
    )
    _work(app, config, metrics)


@db.command("upgrade")
@friendly
def upgrade(
    app: Annotated[str | None, typer.Option("--app", "-a", help=APP_HELP)] = None,
    database_url: Annotated[str | None, typer.Option("--database-url", help=DB_HELP)] = None,
) -> None:
    """Create the schema or apply pending migrations. Safe to run concurrently."""
    import os

    if database_url is None and (app or os.environ.get("INTERLOCK_APP")):
        database_url = load_app(app).database_url
    url = database_url or os.environ.get("INTERLOCK_DATABASE_URL") or DEFAULT_URL
    store = open_store(url)
    try:
        applied = store.upgrade()
        version = store.schema_version()
    finally:
        store.close()
    if applied:
        console.print(f"{url}: applied {', '.join(applied)}; schema is now v{version}")
    else:
        console.print(f"{url}: schema v{version} is up to date")


@flows.command("list")
@friendly
def flows_list(
    app: AppArg = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the app's flows with their declarations and delivery counts."""
    application = load_app(app)
    try:
        counts = application.store.flow_counts()
    except StoreError:
        counts = {}
    if as_json:
        dump_json(
            [
                {**f.describe(), "deliveries": counts.get(f.name, {})}
                for f in application.flows.values()
            ]
        )
        return
    table = Table("flow", "event", "owner", "key", "idempotency", "retry", "on dead", "deliveries")
    for f in application.flows.values():
        c = counts.get(f.name, {})
        summary = ", ".join(f"{k} {v}" for k, v in sorted(c.items())) or "-"
        table.add_row(
            f.name,
            f"{f.event_type} v{f.contract.__version__}",
            f.owner,
            str(f.describe()["key"] or "(unordered)"),
            str(f.describe()["idempotency"] or "-"),
            f"{f.retry.attempts}x, {humanize(f.retry.base_s)}..{humanize(f.retry.cap_s)}",
            f.on_dead,
            summary,
        )
    console.print(table)


@cli.command()
@friendly
def demo(
    app: Annotated[str, typer.Argument(help=APP_HELP)] = "examples.shop:app",
    rate: Annotated[
        float, typer.Option(help="Events per second from the traffic generator.")
    ] = 20.0,
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many seconds (default: until Ctrl-C).")
    ] = None,
    fresh: Annotated[bool, typer.Option(help="Start from an empty database file.")] = False,
    host: HostOpt = "127.0.0.1",
    port: Annotated[
        int, typer.Option(help="Port of the gateway and dashboard (0: any free one).", min=0)
    ] = 8000,
    sandbox_port_base: Annotated[
        int, typer.Option(help="The vendor sandbox's port base (as `interlock sandbox`).", min=1)
    ] = 9100,
) -> None:
    """Run the demo suite: realistic flows served with their dashboard (its URL and an admin
    token are printed), the vendor sandbox, a traffic generator with injected failures, and
    a live table of events in/out, retries, dead letters and lag."""
    from interlock.cli.demo import DemoSettings, run_demo

    application = load_app(app)
    settings = DemoSettings(host=host, port=port, sandbox_port_base=sandbox_port_base)
    asyncio.run(run_demo(application, rate=rate, duration=duration, fresh=fresh, settings=settings))


def main() -> None:
    cli()


__all__ = ["cli", "main"]
