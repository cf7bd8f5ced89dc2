"""``interlock dlq``: inspect, replay and discard dead letters (audited)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.progress import Progress
from rich.table import Table

from interlock.cli.common import (
    APP_HELP,
    DB_HELP,
    actor,
    console,
    dump_json,
    friendly,
    open_for_cli,
    parse_since,
    when,
)
from interlock.errors import ConfigurationError
from interlock.stores.base import DeadFilter, DeliveryRow, Store

dlq = typer.Typer(help="Inspect, replay and discard dead letters.", no_args_is_help=True)

AppOpt = Annotated[str | None, typer.Option("--app", "-a", help=APP_HELP)]
DbOpt = Annotated[str | None, typer.Option("--database-url", help=DB_HELP)]
FlowOpt = Annotated[str | None, typer.Option("--flow", help="Only dead letters of this flow.")]
SinceOpt = Annotated[
    str | None, typer.Option("--since", help="Dead since a duration ago (2h) or an ISO time.")
]
ClassOpt = Annotated[
    str | None,
    typer.Option(
        "--error-class",
        help="retryable, rate_limited, permanent, contract_violation, missing_record, stale or limit.",
    ),
]
LimitOpt = Annotated[int, typer.Option(help="At most this many.")]


def _table(rows: list[DeliveryRow]) -> Table:
    table = Table("delivery", "flow", "event", "subject", "class", "attempts", "dead at", "reason")
    for d in rows:
        table.add_row(
            str(d.id),
            d.flow,
            d.event_id,
            d.subject or "-",
            d.error_class or "-",
            str(d.attempts),
            when(d.finished_at),
            (d.reason or "")[:80],
        )
    return table


@dlq.command("list")
@friendly
def list_(
    app: AppOpt = None,
    database_url: DbOpt = None,
    flow: FlowOpt = None,
    since: SinceOpt = None,
    error_class: ClassOpt = None,
    limit: LimitOpt = 1000,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List dead letters."""
    store = open_for_cli(app, database_url)
    rows = store.list_dead(
        DeadFilter(flow=flow, since=parse_since(since), error_class=error_class, limit=limit)
    )
    if as_json:
        dump_json([_row(d) for d in rows])
        return
    console.print(_table(rows))
    console.print(f"{len(rows)} dead letter(s)")


def _row(d: DeliveryRow) -> dict[str, object]:
    import dataclasses

    return dataclasses.asdict(d)


@dlq.command("show")
@friendly
def show(
    delivery_id: Annotated[int, typer.Argument(help="The dead delivery's id.")],
    app: AppOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Print one dead letter with its redacted context."""
    store = open_for_cli(app, database_url)
    dump_json(_row(store.get_delivery(delivery_id)))


def _select(
    store: Store,
    ids: list[int],
    flow: str | None,
    since: str | None,
    error_class: str | None,
    limit: int,
) -> list[DeliveryRow]:
    if not ids and not (flow or since or error_class):
        raise ConfigurationError(
            "name the dead letters: give ids, or a selection with --flow, --since or --error-class"
        )
    return store.list_dead(
        DeadFilter(
            ids=tuple(ids),
            flow=flow,
            since=parse_since(since),
            error_class=error_class,
            limit=limit,
        )
    )


def _act(
    verb: str,
    ids: list[int],
    app: str | None,
    database_url: str | None,
    flow: str | None,
    since: str | None,
    error_class: str | None,
    reason: str,
    dry_run: bool,
    limit: int,
) -> None:
    if not reason.strip():
        raise ConfigurationError("--reason must say why (it is kept in the audit trail)")
    store = open_for_cli(app, database_url)
    rows = _select(store, ids, flow, since, error_class, limit)
    missing = sorted(set(ids) - {r.id for r in rows})
    if missing:
        console.print(
            f"[yellow]not dead (or unknown), left alone:[/yellow] {', '.join(map(str, missing))}"
        )
    if dry_run:
        console.print(_table(rows))
        console.print(f"dry run: would {verb} {len(rows)} dead letter(s); nothing changed")
        return
    if not rows:
        console.print(f"nothing to {verb}")
        return
    who = actor()
    fn = store.replay_sync if verb == "replay" else store.discard_sync
    done: list[int] = []
    with Progress(console=console, transient=False) as progress:
        task = progress.add_task(f"{verb}ing", total=len(rows))
        for start in range(0, len(rows), 100):
            chunk = [r.id for r in rows[start : start + 100]]
            done.extend(fn(chunk, actor=who, reason=reason, now=_now()))
            progress.advance(task, len(chunk))
    past = "replayed" if verb == "replay" else "discarded"
    console.print(f"{past} {len(done)} dead letter(s) as {who}")
    skipped = len(rows) - len(done)
    if skipped:
        console.print(f"[yellow]{skipped} changed state meanwhile and were left alone[/yellow]")


def _now() -> float:
    import time

    return time.time()


IdsArg = Annotated[list[int] | None, typer.Argument(help="Delivery ids; or use a selection.")]
ReasonOpt = Annotated[str, typer.Option("--reason", help="Why (required; audited).")]
DryOpt = Annotated[bool, typer.Option("--dry-run", help="Show what would change; change nothing.")]


@dlq.command("replay")
@friendly
def replay(
    ids: IdsArg = None,
    reason: ReasonOpt = "",
    app: AppOpt = None,
    database_url: DbOpt = None,
    flow: FlowOpt = None,
    since: SinceOpt = None,
    error_class: ClassOpt = None,
    dry_run: DryOpt = False,
    limit: LimitOpt = 1000,
) -> None:
    """Replay dead letters: same event and correlation id, a new attempt chain.

    Completed steps are not run again. Audited with who and why.
    """
    _act("replay", ids or [], app, database_url, flow, since, error_class, reason, dry_run, limit)


@dlq.command("discard")
@friendly
def discard(
    ids: IdsArg = None,
    reason: ReasonOpt = "",
    app: AppOpt = None,
    database_url: DbOpt = None,
    flow: FlowOpt = None,
    since: SinceOpt = None,
    error_class: ClassOpt = None,
    dry_run: DryOpt = False,
    limit: LimitOpt = 1000,
) -> None:
    """Discard dead letters (they become skipped and unblock their lanes). Audited."""
    _act("discard", ids or [], app, database_url, flow, since, error_class, reason, dry_run, limit)
