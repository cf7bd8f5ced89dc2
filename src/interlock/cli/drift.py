"""``interlock drift report``: what vendors changed in their payloads."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from interlock.cli.common import APP_HELP, DB_HELP, console, dump_json, friendly, open_for_cli, when

drift_cli = typer.Typer(
    help="Vendor drift: shape profiles of incoming payloads and what changed.",
    no_args_is_help=True,
)

AppOpt = Annotated[str | None, typer.Option("--app", "-a", help=APP_HELP)]
DbOpt = Annotated[str | None, typer.Option("--database-url", help=DB_HELP)]


@drift_cli.command("report")
@friendly
def report(
    app: AppOpt = None,
    database_url: DbOpt = None,
    source: Annotated[str | None, typer.Option(help="Only this source.")] = None,
    kind: Annotated[
        str | None,
        typer.Option(
            help="Only new_field, vanished_field, new_enum_value, type_change or "
            "nullability_change."
        ),
    ] = None,
    profiles: Annotated[
        bool, typer.Option("--profiles", help="Also print each shape profile, field by field.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List drift findings (each raised once, with how many payloads showed it)."""
    store = open_for_cli(app, database_url)
    findings = store.drift_findings(source=source, kind=kind, limit=100_000)
    shapes = [p for p in store.drift_profiles() if source is None or p.source == source]
    if as_json:
        out: dict[str, object] = {
            "findings": [
                {
                    "id": f.id,
                    "source": f.source,
                    "event_type": f.event_type,
                    "kind": f.kind,
                    "path": f.path,
                    "detail": f.detail,
                    "count": f.count,
                    "first_seen": when(f.first_seen),
                    "last_seen": when(f.last_seen),
                    "example": f.example,
                }
                for f in findings
            ]
        }
        if profiles:
            out["profiles"] = [
                {"source": p.source, "event_type": p.event_type, **p.profile} for p in shapes
            ]
        dump_json(out)
        return
    table = Table("source", "event type", "kind", "path", "detail", "payloads", "first", "last")
    for f in findings:
        table.add_row(
            f.source,
            f.event_type,
            f.kind,
            f.path,
            f.detail or "-",
            f"{f.count:,}",
            when(f.first_seen),
            when(f.last_seen),
        )
    console.print(table)
    console.print(f"{len(findings)} finding(s) over {len(shapes)} profile(s)")
    if profiles:
        for p in shapes:
            fields = Table("field", "types", "present", "null rate", "enum values", "last seen")
            for path, shape in p.profile["fields"].items():
                seen = shape["seen"]
                fields.add_row(
                    path,
                    ", ".join(shape["types"]) or "null",
                    f"{seen:,}",
                    f"{shape['nulls'] / seen:.1%}" if seen else "-",
                    ", ".join(shape["values"] or []) or "-",
                    when(shape["last_seen"]),
                )
            console.print(f"\n[bold]{p.source} {p.event_type}[/]: {p.profile['events']:,} payloads")
            console.print(fields)
