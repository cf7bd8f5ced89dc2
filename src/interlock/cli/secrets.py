"""``interlock secrets``: encrypted secrets in the store (values are never printed)."""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from interlock.cli.common import (
    APP_HELP,
    actor,
    console,
    dump_json,
    err_console,
    friendly,
    load_app,
    when,
)
from interlock.durations import seconds
from interlock.errors import ConfigurationError
from interlock.secrets import KEY_VARIABLE, env_name, new_key

secrets_cli = typer.Typer(
    help=f"Encrypted secrets in the store (key: ${KEY_VARIABLE}); values are never shown.",
    no_args_is_help=True,
)

AppOpt = Annotated[str | None, typer.Option("--app", "-a", help=APP_HELP)]


def _expiry(value: str | None) -> float | None:
    """``90d`` (from now) or an ISO 8601 time."""
    if value is None:
        return None
    try:
        return time.time() + seconds(value)
    except ConfigurationError:
        pass
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigurationError(
            f"--expires {value!r}: write a duration from now (90d, 12h) or an ISO time "
            "(2027-03-01T00:00:00Z)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


@secrets_cli.command("set")
@friendly
def set_(
    name: Annotated[str, typer.Argument(help="The secret's name, e.g. stripe-api-key.")],
    app: AppOpt = None,
    expires: Annotated[
        str | None,
        typer.Option(help="When the credential expires: 90d from now, or an ISO time."),
    ] = None,
) -> None:
    """Store a new version of a secret, read from stdin (piped) or a hidden prompt."""
    env_name(name)
    if sys.stdin.isatty():
        value = typer.prompt(f"value of {name}", hide_input=True, confirmation_prompt=True)
    else:
        value = sys.stdin.read().rstrip("\r\n")
    application = load_app(app)
    version = application.secrets.set(
        name, value, actor=actor(), now=time.time(), expires_at=_expiry(expires)
    )
    console.print(f"stored {name} v{version}")
    if env_name(name) in os.environ:
        err_console.print(
            f"[yellow]note:[/yellow] {env_name(name)} is set in this environment and wins over "
            "the stored value"
        )


@secrets_cli.command("list")
@friendly
def list_(app: AppOpt = None, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Stored secrets: name, current version, who set it and when, expiry."""
    rows = load_app(app).secrets.list()
    if as_json:
        dump_json(
            [
                {
                    "name": r.name,
                    "version": r.version,
                    "versions": r.versions,
                    "created_at": r.created_at,
                    "created_by": r.created_by,
                    "expires_at": r.expires_at,
                    "env": env_name(r.name),
                }
                for r in rows
            ]
        )
        return
    table = Table("name", "version", "set", "by", "expires", "overridden by")
    for r in rows:
        table.add_row(
            r.name,
            f"v{r.version}",
            when(r.created_at),
            r.created_by,
            when(r.expires_at),
            env_name(r.name) if env_name(r.name) in os.environ else "-",
        )
    console.print(table)
    if not rows:
        console.print("no stored secrets; add one with `interlock secrets set NAME`")


@secrets_cli.command("rotate")
@friendly
def rotate(app: AppOpt = None) -> None:
    """Re-encrypt every stored secret under the first key of $INTERLOCK_SECRET_KEY.

    Rotate the key in three moves: put the new key first and keep the old one after
    it (NEW,OLD), run this, then drop the old key.
    """
    count = load_app(app).secrets.rotate(actor=actor(), now=time.time())
    console.print(f"re-encrypted {count} stored value(s) under the first key")


@secrets_cli.command("keygen")
def keygen() -> None:
    """Print a new key for $INTERLOCK_SECRET_KEY."""
    print(new_key())
