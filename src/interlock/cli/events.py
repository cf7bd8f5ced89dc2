"""``interlock events``: send, list, show and trace events."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from interlock.cli.common import (
    APP_HELP,
    DB_HELP,
    console,
    dump_json,
    friendly,
    load_app,
    open_for_cli,
    open_with_app,
    when,
)
from interlock.connectors.calls import describe_call
from interlock.durations import humanize
from interlock.errors import ConfigurationError, NotFound
from interlock.redaction import mask_event, masked_trace
from interlock.stores.base import Trace

events = typer.Typer(help="Send, list, show and trace events.", no_args_is_help=True)

AppOpt = Annotated[str | None, typer.Option("--app", "-a", help=APP_HELP)]
DbOpt = Annotated[str | None, typer.Option("--database-url", help=DB_HELP)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _read_payload(data: str) -> dict[str, Any]:
    if data == "-":
        raw = sys.stdin.read()
    elif data.startswith("@"):
        path = Path(data[1:])
        if not path.exists():
            raise ConfigurationError(f"payload file {path} does not exist")
        raw = path.read_text("utf-8")
    else:
        raw = data
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ConfigurationError(f"the payload is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ConfigurationError("the payload must be a JSON object")
    return value


@events.command("send")
@friendly
def send(
    event_type: Annotated[str, typer.Argument(help="Event type, e.g. order.shipped.")],
    data: Annotated[str, typer.Argument(help="JSON payload, @file.json, or - for stdin.")],
    app: AppOpt = None,
    source: Annotated[str, typer.Option(help="Source recorded on the event.")] = "cli",
    idempotency_key: Annotated[
        str | None, typer.Option(help="Re-sending with the same key returns the first event.")
    ] = None,
    version: Annotated[
        int | None, typer.Option(help="Contract version of the payload (older ones are upcast).")
    ] = None,
) -> None:
    """Validate a payload against its contract and emit it durably."""
    application = load_app(app)
    contract = application.parse(event_type, _read_payload(data), version)
    event_id = application.emit_sync(contract, source=source, idempotency_key=idempotency_key)
    console.print(event_id)


@events.command("list")
@friendly
def list_(
    app: AppOpt = None,
    database_url: DbOpt = None,
    type: Annotated[str | None, typer.Option("--type", "-t", help="Only this event type.")] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """List recent events, newest first."""
    store = open_for_cli(app, database_url)
    rows = store.list_events(type=type, limit=limit)
    if as_json:
        dump_json([e.to_cloudevent() for e in rows])
        return
    table = Table("id", "type", "subject", "source", "received")
    for e in rows:
        table.add_row(
            e.id, f"{e.type} v{e.version}", e.subject or "-", e.source, when(e.received_at)
        )
    console.print(table)


@events.command("show")
@friendly
def show(
    event_id: Annotated[str, typer.Argument(help="The event id (evt_…).")],
    app: AppOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Print one event as CloudEvents JSON (PII fields masked when the app is known)."""
    store, application = open_with_app(app, database_url)
    event = store.get_event(event_id)
    contract = application.contracts.get(event.type) if application else None
    dump_json(mask_event(event, contract)[0].to_cloudevent())


@events.command("trace")
@friendly
def trace(
    query: Annotated[
        str,
        typer.Argument(
            help="An event id (evt_…), a subject (invoice:in_123 or in_123), a correlation id, "
            "or a delivery id."
        ),
    ],
    app: AppOpt = None,
    database_url: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """What happened to X? The timeline of its events, deliveries, attempts and steps."""
    store, application = open_with_app(app, database_url)
    result = store.trace(query)
    if not result.events:
        raise NotFound(f"nothing matches {query!r} (tried event id, correlation id and subject)")
    result = masked_trace(result, application)
    if as_json:
        dump_json(dataclasses.asdict(result))
        return
    console.print(render_trace(result))


def render_trace(trace: Trace) -> Tree:
    """The trace as a Rich tree: event → delivery → attempts and steps."""
    root = Tree(f"[bold]{len(trace.events)} event(s)[/bold]")
    by_event: dict[str, list[Any]] = {}
    for d in trace.deliveries:
        by_event.setdefault(d.event_id, []).append(d)
    for e in trace.events:
        caused = f" caused by {e.causation_id}" if e.causation_id else ""
        node = root.add(
            f"[bold cyan]{e.type}[/] v{e.version}  {e.id}  subject={e.subject or '-'}  "
            f"source={e.source}  received {when(e.received_at)}\n"
            f"[dim]correlation {e.correlation_id}{caused}[/dim]"
        )
        deliveries = by_event.get(e.id, [])
        if not deliveries:
            node.add("[dim]no flow subscribed[/dim]")
        for d in deliveries:
            colour = {"succeeded": "green", "dead": "red", "skipped": "yellow"}.get(
                d.status, "blue"
            )
            dnode = node.add(
                f"delivery {d.id} → flow [bold]{d.flow}[/]  [{colour}]{d.status}[/]  "
                f"lane={d.lane}  runs={d.runs}  chain={d.chain}"
                + (f"\n[dim]{d.reason}[/dim]" if d.reason and d.status != "succeeded" else "")
            )
            items: list[tuple[float, str]] = []
            for a in trace.attempts:
                if a.delivery_id != d.id:
                    continue
                delay = (
                    f" → retry in {humanize(a.delay)}" if a.outcome == "retry" and a.delay else ""
                )
                detail = f" [{a.error_class}] {a.reason}" if a.error_class else ""
                items.append(
                    (
                        a.finished_at,
                        f"attempt {a.number} (chain {a.chain}) {when(a.finished_at)} "
                        f"[bold]{a.outcome}[/]{detail}{delay}",
                    )
                )
                items.extend(
                    (float(c["at"]), f"call {escape(describe_call(c))} {when(float(c['at']))}")
                    for c in a.calls
                )
            for s in trace.steps:
                if s.delivery_id != d.id:
                    continue
                text = orjson.dumps(s.result).decode()
                text = text if len(text) <= 120 else text[:117] + "…"
                items.append(
                    (s.recorded_at, f"step [magenta]{s.name}[/] {when(s.recorded_at)} → {text}")
                )
            items.extend(
                (au.at, f"[yellow]{au.action}[/] by {au.actor} {when(au.at)}: {au.reason}")
                for au in trace.audit
                if au.target == f"delivery:{d.id}"
            )
            for _, line in sorted(items, key=lambda item: item[0]):
                dnode.add(line, highlight=False)
    return root
