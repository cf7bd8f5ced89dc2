"""``interlock connectors``: the connectors an app declares, their state, and synthetic checks."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from typing import Annotated, Any

import typer
from rich.table import Table

from interlock.app import Interlock
from interlock.cli.common import APP_HELP, console, dump_json, friendly, load_app, when
from interlock.connectors import CheckResult, check_all
from interlock.durations import humanize

connectors_cli = typer.Typer(
    help="The connectors an app declares: state, credentials, synthetic checks.",
    no_args_is_help=True,
)

AppArg = Annotated[str | None, typer.Argument(help=APP_HELP, show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _rows(app: Interlock) -> list[dict[str, Any]]:
    states = {s.name: s for s in app.store.connector_states()}
    rows = []
    for name, connector in sorted(app.connectors.items()):
        state = states.get(name)
        rows.append(
            {
                "name": name,
                "kind": type(connector).__name__,
                "base_url": connector.base_url,
                "auth": connector.auth.describe(),
                "rate": None if connector.rate is None else str(connector.rate),
                "breaker": state.breaker if state is not None else "closed",
                "breaker_until": state.breaker_until if state is not None else None,
                "connection": state.connection if state is not None else "ok",
                "reason": state.reason if state is not None else None,
                "dry_run": connector.dry_run or app.dry_run,
            }
        )
    return rows


@connectors_cli.command("list")
@friendly
def list_(app: AppArg = None, as_json: JsonOpt = False) -> None:
    """Connectors with their base URL, auth, rate limit, breaker and connection state."""
    application = load_app(app)
    rows = _rows(application)
    if as_json:
        dump_json(rows)
        return
    table = Table("name", "kind", "base URL", "auth", "rate", "breaker", "connection", "dry-run")
    for r in rows:
        breaker = r["breaker"]
        if r["breaker"] != "closed" and r["breaker_until"]:
            breaker += f" until {when(r['breaker_until'])}"
        connection = r["connection"]
        if r["reason"] and connection != "ok":
            connection += f" ({r['reason']})"
        table.add_row(
            r["name"],
            r["kind"],
            r["base_url"],
            r["auth"],
            r["rate"] or "-",
            breaker,
            connection,
            "yes" if r["dry_run"] else "no",
        )
    console.print(table)
    if not rows:
        console.print("no connectors; register one with app.connector(...)")


async def _check(app: Interlock, names: list[str] | None) -> list[CheckResult]:
    try:
        return await check_all(app, names)
    finally:
        for connector in app.connectors.values():
            await connector.aclose()


@connectors_cli.command("check")
@friendly
def check(
    app: AppArg = None,
    connector: Annotated[
        list[str] | None, typer.Option("--connector", "-c", help="Only this connector.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run every connector's read-only probes: latency, auth state, rate-limit headroom,
    errors. Exits 1 when a probe failed."""
    application = load_app(app)
    with contextlib.redirect_stdout(sys.stderr):  # the checks' events; the results go to stdout
        results = asyncio.run(_check(application, connector))
    failed = [r for r in results if r.ok is False]
    if as_json:
        dump_json(
            [
                {
                    "connector": r.connector,
                    "probe": r.probe,
                    "ok": r.ok,
                    "latency": r.latency,
                    "status": r.status,
                    "auth": r.auth,
                    "remaining": r.remaining,
                    "limit": r.limit,
                    "breaker": r.breaker,
                    "error": r.error,
                    "credentials": [
                        {"name": c.name, "expires_at": c.expires_at} for c in r.credentials
                    ],
                }
                for r in results
            ]
        )
    else:
        table = Table("connector", "probe", "result", "latency", "auth", "headroom", "breaker")
        for r in results:
            verdict = "no probe" if r.ok is None else "ok" if r.ok else f"[red]{r.error}[/red]"
            headroom = "-"
            if r.remaining is not None:
                headroom = f"{r.remaining:g}" + (f"/{r.limit:g}" if r.limit is not None else "")
            table.add_row(
                r.connector,
                r.probe,
                verdict,
                "-" if r.latency is None else humanize(r.latency),
                r.auth,
                headroom,
                r.breaker,
            )
        console.print(table)
    if failed:
        raise typer.Exit(1)
