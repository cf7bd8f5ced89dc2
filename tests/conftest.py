"""Shared fixtures: a fake clock, apps on real SQLite files in tmp_path, and PostgreSQL
databases cloned per test from a template built once per run."""

from __future__ import annotations

import os
import queue
import secrets
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from interlock import Interlock, Limits
from interlock.testing import FakeClock

pytest_plugins = ["pytester"]  # sample projects for the pytest plugin's tests


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'interlock.db'}"


AppFactory = Callable[..., Interlock]


@pytest.fixture
def make_app(db_url: str, clock: FakeClock) -> Iterator[AppFactory]:
    """Build apps on the test's database file (all closed at teardown)."""
    apps: list[Interlock] = []

    def make(
        name: str = "test", *, url: str | None = None, limits: Limits | None = None
    ) -> Interlock:
        app = Interlock(name, url or db_url, clock=clock, limits=limits)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close()


@pytest.fixture
def app(make_app: AppFactory) -> Interlock:
    return make_app()


# -- PostgreSQL: one template database per test run, a fresh clone per test -----------------

PG_SERVER = os.environ.get(
    "INTERLOCK_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def _pg_admin() -> Any:
    """An autocommit connection to the server's maintenance database, or skip (fail in CI)."""
    try:
        import psycopg

        return psycopg.connect(PG_SERVER, autocommit=True, connect_timeout=3)
    except Exception as exc:
        if os.environ.get("INTERLOCK_REQUIRE_SERVICES") == "1":
            pytest.fail(f"PostgreSQL at {PG_SERVER.split('@')[-1]} is required: {exc}")
        pytest.skip(f"PostgreSQL at {PG_SERVER.split('@')[-1]} is not reachable: {exc}")


def _pg_url(database: str) -> str:
    base, _, _ = PG_SERVER.rpartition("/")
    return f"{base}/{database}"


_RESET = """
SET lock_timeout = '5s';
DO $$
DECLARE t record;
BEGIN
    FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = 'public'
             AND tablename <> 'interlock_migrations'
    LOOP
        EXECUTE format('DELETE FROM %I', t.tablename);
    END LOOP;
    FOR t IN SELECT c.relname AS tbl, a.attname AS col FROM pg_attribute a
             JOIN pg_class c ON c.oid = a.attrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'public' AND a.attidentity <> ''
    LOOP
        EXECUTE format('ALTER TABLE %I ALTER COLUMN %I RESTART', t.tbl, t.col);
    END LOOP;
END
$$;
"""


class _Clones:
    """Databases cloned from the template on a helper thread: a test takes one, and once
    it is done the helper empties it (as fresh as a new clone: same schema, no rows,
    identities restarted) for a later test. Cloning and dropping databases take seconds
    on a busy server; emptying one takes milliseconds."""

    def __init__(self, template: str, count: int = 2) -> None:
        self.template = template
        self.made: list[str] = []
        self._ready: queue.Queue[str | BaseException] = queue.Queue()
        self._work: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, args=(count,), daemon=True)
        self._thread.start()

    def _run(self, count: int) -> None:
        import psycopg

        with _pg_admin() as admin:
            for _ in range(count):
                self._clone(admin)
            while (name := self._work.get()) is not None:
                try:
                    with psycopg.connect(_pg_url(name), autocommit=True) as conn:
                        conn.execute(_RESET.encode())
                    self._ready.put(name)
                except Exception:
                    self._clone(admin)

    def _clone(self, admin: Any) -> None:
        name = f"interlock_t_{secrets.token_hex(6)}"
        try:
            admin.execute(f"CREATE DATABASE {name} TEMPLATE {self.template}")
        except Exception as exc:
            self._ready.put(exc)
            return
        self.made.append(name)
        self._ready.put(name)

    def take(self) -> str:
        got = self._ready.get(timeout=120)
        if isinstance(got, BaseException):
            raise got
        return got

    def give_back(self, name: str) -> None:
        self._work.put(name)

    def close(self) -> None:
        self._work.put(None)
        self._thread.join(timeout=120)
        with _pg_admin() as admin:
            for name in self.made:
                admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="session")
def pg_clones() -> Iterator[_Clones]:
    """Databases with interlock's schema: a template built once per run, cloned per test."""
    from interlock.stores.postgres import PostgresStore

    name = f"interlock_tpl_{secrets.token_hex(6)}"
    with _pg_admin() as admin:
        admin.execute(f"CREATE DATABASE {name}")
    clones: _Clones | None = None
    try:
        store = PostgresStore(_pg_url(name))
        store.upgrade()
        store.close()
        clones = _Clones(name)
        yield clones
    finally:
        if clones is not None:
            clones.close()
        with _pg_admin() as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def pg_url(pg_clones: _Clones) -> Iterator[str]:
    """A fresh PostgreSQL database for this test (its URL), dropped afterwards."""
    name = pg_clones.take()
    yield _pg_url(name)
    pg_clones.give_back(name)


@pytest.fixture
def pg_empty_url() -> Iterator[str]:
    """A new, empty PostgreSQL database (no schema), dropped afterwards."""
    name = f"interlock_e_{secrets.token_hex(6)}"
    with _pg_admin() as admin:
        admin.execute(f"CREATE DATABASE {name}")
    yield _pg_url(name)
    with _pg_admin() as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
