"""Shared CLI plumbing: loading the app, opening the store, clear one-line errors."""

from __future__ import annotations

import getpass
import importlib
import os
import socket
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from typing import Any, ParamSpec, TypeVar

import typer
from rich.console import Console

from interlock.app import Interlock
from interlock.durations import seconds
from interlock.errors import AppNotFound, ConfigurationError, InterlockError
from interlock.stores import DEFAULT_URL, Store, open_store

P = ParamSpec("P")
R = TypeVar("R")

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

APP_HELP = "The app as module:attribute (e.g. examples.shop:app); default: $INTERLOCK_APP."
DB_HELP = (
    "Database URL; default: the app's, else $INTERLOCK_DATABASE_URL, else sqlite:///interlock.db."
)


def load_app(path: str | None) -> Interlock:
    """Import ``module:attribute`` (the current directory is importable, as with uvicorn)."""
    path = path or os.environ.get("INTERLOCK_APP")
    if not path:
        raise AppNotFound(
            "no app given: pass APP as module:attribute (e.g. examples.shop:app) "
            "or set INTERLOCK_APP"
        )
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise AppNotFound(f"APP {path!r} must look like module:attribute, e.g. examples.shop:app")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise AppNotFound(
                f"cannot import module {module_name!r} for APP {path!r}: no such module "
                f"(run from the folder that contains it, or fix PYTHONPATH)"
            ) from None
        raise
    app = module
    for part in attr.split("."):
        if not hasattr(app, part):
            raise AppNotFound(f"module {module_name!r} has no attribute {attr!r} (APP {path!r})")
        app = getattr(app, part)
    if callable(app) and not isinstance(app, Interlock):
        app = app()
    if not isinstance(app, Interlock):
        raise AppNotFound(f"APP {path!r} is a {type(app).__name__}, not an Interlock app")
    return app


def open_for_cli(app: str | None, database_url: str | None) -> Store:
    """The store named by --database-url, else by the app, else the environment/default."""
    if database_url:
        store = open_store(database_url)
    elif app or os.environ.get("INTERLOCK_APP"):
        return load_app(app).store
    else:
        store = open_store(os.environ.get("INTERLOCK_DATABASE_URL") or DEFAULT_URL)
    store.ensure_schema()
    return store


def open_with_app(app: str | None, database_url: str | None) -> tuple[Store, Interlock | None]:
    """The store, and the app when one is named (its contracts say which fields are PII)."""
    if not database_url and (app or os.environ.get("INTERLOCK_APP")):
        application = load_app(app)
        return application.store, application
    return open_for_cli(app, database_url), None


def actor() -> str:
    """Who is acting, for the audit trail: $INTERLOCK_ACTOR or user@host."""
    explicit = os.environ.get("INTERLOCK_ACTOR")
    if explicit:
        return explicit
    try:
        user = getpass.getuser()
    except Exception:
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def parse_since(value: str | None) -> float | None:
    """``1h`` (that long ago) or an ISO 8601 time."""
    if value is None:
        return None
    try:
        return datetime.now(UTC).timestamp() - seconds(value)
    except ConfigurationError:
        pass
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigurationError(
            f"--since {value!r}: write a duration ago (30m, 2h, 7d) or an ISO time "
            "(2026-11-27T10:00:00Z)"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def friendly(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn interlock errors into one red line and exit code 1, never a traceback."""

    @wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except InterlockError as exc:
            err_console.print(f"[red]error:[/red] {exc}", soft_wrap=True)
            raise typer.Exit(1) from None

    return wrapper


def dump_json(value: Any) -> None:
    import orjson

    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2, default=str).decode() + "\n")
