"""``interlock slo`` and ``interlock alerts``: error budgets and burn-rate alerts from a shell."""

from __future__ import annotations

import dataclasses
from typing import Annotated

import typer
from rich.table import Table

from interlock.cli.common import (
    APP_HELP,
    DB_HELP,
    console,
    dump_json,
    friendly,
    load_app,
    open_for_cli,
    parse_since,
    when,
)
from interlock.durations import humanize
from interlock.observability.health import slo_report

slo_cli = typer.Typer(
    help="Service level objectives: SLI, error budget, burn rates.", no_args_is_help=True
)
alerts_cli = typer.Typer(help="Burn-rate alerts, firing and past.", no_args_is_help=True)

AppArg = Annotated[str | None, typer.Option("--app", "-a", help=APP_HELP)]
DbOpt = Annotated[str | None, typer.Option("--database-url", help=DB_HELP)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.2f}%"


@slo_cli.command("report")
@friendly
def report(app: AppArg = None, as_json: JsonOpt = False) -> None:
    """Each flow's SLO now (SLI, budget left, burn rates, status) and its business metric."""
    application = load_app(app)
    health = slo_report(application)
    if as_json:
        dump_json([dataclasses.asdict(h) for h in health])
        return
    table = Table("flow", "target", "SLI", "budget left", "burn rates", "status", "metric")
    for h in health:
        metric = "-"
        if h.metric is not None:
            value = "-" if h.metric.value is None else f"{h.metric.value:.4g}"
            metric = f"{h.metric.name}: {value} {h.metric.unit} ({h.metric.aggregate})"
        s = h.slo
        if s is None:
            table.add_row(h.flow, "-", "-", "-", "-", "no SLO", metric)
            continue
        burns = ", ".join(f"{b.window} {b.rate:.1f}x" for b in s.burn)
        target = f"{s.target * 100:g}% in {humanize(s.within_s)} / {humanize(s.window_s)}"
        table.add_row(
            h.flow, target, _percent(s.sli), _percent(s.budget_remaining), burns, s.status, metric
        )
    console.print(table)


@alerts_cli.command("list")
@friendly
def list_alerts(
    app: AppArg = None,
    database_url: DbOpt = None,
    firing: Annotated[bool, typer.Option("--firing", help="Only alerts firing now.")] = False,
    flow: Annotated[str | None, typer.Option(help="Only this flow's.")] = None,
    since: Annotated[
        str | None, typer.Option(help="Firing then or later: a duration ago (7d) or an ISO time.")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many.", min=1, max=10_000)] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Alerts, newest first: when they fired and resolved, and how fast the budget burned."""
    store = open_for_cli(app, database_url)
    rows = store.list_alerts(
        firing=True if firing else None, flow=flow, since=parse_since(since), limit=limit
    )
    if as_json:
        dump_json([dataclasses.asdict(r) for r in rows])
        return
    table = Table("id", "flow", "severity", "state", "fired", "resolved", "burn (long/short)")
    for r in rows:
        table.add_row(
            str(r.id),
            r.flow,
            r.severity,
            r.state,
            when(r.fired_at),
            when(r.resolved_at),
            f"{r.burn_long:.1f}x / {r.burn_short:.1f}x (over {r.factor:g}x)",
        )
    console.print(table)
    if not rows:
        console.print("no alerts" + (" firing" if firing else ""))
