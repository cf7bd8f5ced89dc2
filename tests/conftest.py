"""Shared fixtures: a fake clock and apps on real SQLite files in tmp_path."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

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
