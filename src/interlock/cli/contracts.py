"""``interlock contracts``: the contract catalogue, golden fixture checks and recording."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from interlock.cli.common import APP_HELP, DB_HELP, console, dump_json, friendly, load_app
from interlock.errors import ConfigurationError

contracts_cli = typer.Typer(
    help="Contracts: JSON Schema and catalogue, golden fixture checks, fixture recording.",
    no_args_is_help=True,
)

AppOpt = Annotated[str | None, typer.Option("--app", "-a", help=APP_HELP)]
FixturesOpt = Annotated[
    Path | None,
    typer.Option(
        "--fixtures",
        help="The fixtures folder (<source>/<case>.json); default: fixtures/ beside the app's "
        "module, else ./fixtures.",
    ),
]


def _app_path(app: str | None) -> str | None:
    return app or os.environ.get("INTERLOCK_APP")


@contracts_cli.command("schema")
@friendly
def schema(
    app: AppOpt = None,
    format: Annotated[
        str, typer.Option("--format", help="json (JSON Schema per contract) or markdown.")
    ] = "json",
) -> None:
    """Export every contract: JSON Schema, or a Markdown catalogue (event, version, system of
    record, owner flows, fields with types, nullability, enums and PII)."""
    from interlock.catalogue import markdown, schema_document

    application = load_app(app)
    if format == "json":
        dump_json(schema_document(application))
    elif format == "markdown":
        sys.stdout.write(markdown(application) + "\n")
    else:
        raise ConfigurationError(f"--format {format!r}: choose json or markdown")


@contracts_cli.command("check")
@friendly
def check(
    app: AppOpt = None,
    fixtures: FixturesOpt = None,
    source: Annotated[str | None, typer.Option(help="Only this source's fixtures.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Run every golden fixture through its source mapping and contract; print pass/fail
    with a readable diff. Exits 1 when any fixture fails."""
    from interlock.fixtures import default_root, find_fixtures, run_fixture

    application = load_app(app)
    root = fixtures or default_root(_app_path(app))
    found = find_fixtures(root, source)
    if not found:
        raise ConfigurationError(f"no fixtures in {root} (expected <source>/<case>.json files)")
    results = [run_fixture(application, f) for f in found]
    failed = [r for r in results if not r.passed]
    if as_json:
        dump_json(
            [
                {
                    "fixture": r.fixture.name,
                    "path": str(r.fixture.path),
                    "passed": r.passed,
                    "summary": r.summary,
                    "diff": r.diff,
                }
                for r in results
            ]
        )
    else:
        table = Table("source", "case", "result", "detail")
        for r in results:
            mark = "[green]pass[/]" if r.passed else "[red]FAIL[/]"
            table.add_row(r.fixture.source, r.fixture.case, mark, r.summary)
        console.print(table)
        for r in failed:
            console.print(f"\n[red bold]{r.fixture.name}[/] ({r.fixture.path}): {r.summary}")
            for line in r.diff:
                console.print(f"  {line}", soft_wrap=True, markup=False)
        console.print(f"\n{len(results) - len(failed)} passed, {len(failed)} failed")
    if failed:
        raise typer.Exit(1)


@contracts_cli.command("record")
@friendly
def record(
    source: Annotated[str, typer.Argument(help="The webhook source whose payloads to record.")],
    app: AppOpt = None,
    database_url: Annotated[str | None, typer.Option("--database-url", help=DB_HELP)] = None,
    fixtures: FixturesOpt = None,
    topic: Annotated[str | None, typer.Option(help="Only payloads of this topic.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many new fixtures.", min=1)] = 5,
    overwrite: Annotated[bool, typer.Option(help="Replace fixtures recorded before.")] = False,
) -> None:
    """Turn recently received payloads of SOURCE (kept by the gateway, personal data
    replaced) into fixture candidates, with what they map to today as the expectation."""
    from interlock.fixtures import default_root, record_samples
    from interlock.stores import open_store

    application = load_app(app)
    if source not in application.sources:
        known = ", ".join(sorted(application.sources)) or "none"
        raise ConfigurationError(f"the app has no webhook source {source!r} (it has: {known})")
    store = application.store
    if database_url:
        store = open_store(database_url)
        store.ensure_schema()
    samples = store.contract_samples(source, topic=topic, limit=limit)
    if not samples:
        raise ConfigurationError(
            f"no received payloads of {source!r} are kept yet: the gateway keeps samples as "
            "webhooks arrive"
        )
    root = fixtures or default_root(_app_path(app))
    written = record_samples(application, samples, root, overwrite=overwrite)
    for path in written:
        console.print(f"recorded {path}")
    console.print(f"{len(written)} new fixture candidate(s) in {root / source}")
