"""``interlock tokens`` and ``interlock audit``: who may use the API, and what was done."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.table import Table

from interlock.cli.common import (
    APP_HELP,
    DB_HELP,
    actor,
    console,
    dump_json,
    err_console,
    friendly,
    open_for_cli,
    parse_since,
    when,
)
from interlock.errors import NotFound
from interlock.tokens import ROLES, role_of

tokens = typer.Typer(
    help="API tokens for /api/v1 and POST /events (only a hash is stored).",
    no_args_is_help=True,
)
audit = typer.Typer(help="The append-only audit trail of every mutation.", no_args_is_help=True)

AppOpt = Annotated[str | None, typer.Option("--app", "-a", help=APP_HELP)]
DbOpt = Annotated[str | None, typer.Option("--database-url", help=DB_HELP)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@tokens.command("create")
@friendly
def create(
    name: Annotated[str, typer.Option("--name", help="What the token is for, e.g. 'ci-deploy'.")],
    role: Annotated[
        str,
        typer.Option(
            "--role",
            help="viewer (read), operator (also replay, discard, send events) or admin "
            "(also manage tokens).",
        ),
    ] = "viewer",
    app: AppOpt = None,
    database_url: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an API token and print it once: it cannot be shown again."""
    store = open_for_cli(app, database_url)
    new = store.create_token_sync(name, role_of(role), actor=actor(), now=time.time())
    if as_json:
        dump_json({"id": new.row.id, "name": name, "role": new.row.role, "token": new.secret})
        return
    # The token alone on stdout, so `TOKEN=$(interlock tokens create ...)` works.
    err_console.print(
        f"created token [bold]{new.row.id}[/] ({name}, {new.row.role}); "
        "store it now, it is not shown again:"
    )
    print(new.secret)


@tokens.command("revoke")
@friendly
def revoke(
    token: Annotated[str, typer.Argument(help="The token's id (tok_...) or name.")],
    reason: Annotated[
        str, typer.Option("--reason", help="Why; recorded in the audit trail.")
    ] = "revoked",
    app: AppOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Revoke a token: it stops working on the very next request."""
    store = open_for_cli(app, database_url)
    row = store.revoke_token_sync(token, actor=actor(), reason=reason, now=time.time())
    if row is None:
        raise NotFound(f"no live token with id or name {token!r} (see `interlock tokens list`)")
    console.print(f"revoked {row.id} ({row.name}, {row.role})")


@tokens.command("list")
@friendly
def list_(
    app: AppOpt = None,
    database_url: DbOpt = None,
    revoked: Annotated[bool, typer.Option("--revoked", help="Include revoked tokens.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List tokens (never their secrets)."""
    store = open_for_cli(app, database_url)
    rows = store.list_tokens(include_revoked=revoked)
    if as_json:
        dump_json(
            [
                {
                    "id": r.id,
                    "name": r.name,
                    "role": r.role,
                    "created_at": r.created_at,
                    "created_by": r.created_by,
                    "revoked_at": r.revoked_at,
                    "revoked_by": r.revoked_by,
                }
                for r in rows
            ]
        )
        return
    table = Table("id", "name", "role", "created", "by", "revoked")
    for r in rows:
        table.add_row(
            r.id,
            r.name,
            r.role,
            when(r.created_at),
            r.created_by,
            "-" if r.revoked_at is None else f"{when(r.revoked_at)} by {r.revoked_by}",
        )
    console.print(table)
    if not rows:
        console.print(
            f"no tokens; create one with `interlock tokens create --name NAME --role "
            f"{'|'.join(ROLES)}`"
        )


@audit.command("list")
@friendly
def audit_list(
    app: AppOpt = None,
    database_url: DbOpt = None,
    action: Annotated[
        str | None,
        typer.Option(help="Only this action: dlq.replay, dlq.discard, token.create, token.revoke."),
    ] = None,
    actor_: Annotated[str | None, typer.Option("--actor", help="Only this actor.")] = None,
    target: Annotated[
        str | None, typer.Option(help="Only this target, e.g. delivery:42 or token:tok_...")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Only since a duration ago (2h) or an ISO time.")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Show the audit trail, newest first: actor, action, target, reason, time."""
    store = open_for_cli(app, database_url)
    rows = store.list_audit(
        limit, action=action, actor=actor_, target=target, since=parse_since(since)
    )
    if as_json:
        dump_json(
            [
                {
                    "id": r.id,
                    "at": r.at,
                    "actor": r.actor,
                    "action": r.action,
                    "target": r.target,
                    "reason": r.reason,
                    "detail": r.detail,
                }
                for r in rows
            ]
        )
        return
    table = Table("at", "actor", "action", "target", "reason")
    for r in rows:
        table.add_row(when(r.at), r.actor, r.action, r.target, r.reason or "-")
    console.print(table)
