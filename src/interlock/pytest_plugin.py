"""The pytest plugin: each golden fixture becomes a test case of the user's suite.

Installed with interlock (entry point ``pytest11``), it stays idle until told which app
to check, in the pytest configuration::

    [tool.pytest.ini_options]
    interlock_app = "myapp:app"            # module:attribute, as for the CLI
    interlock_fixtures = "fixtures"        # optional; default: fixtures/ beside the app

(or ``pytest --interlock-app myapp:app``). Then ``fixtures/<source>/<case>.json`` is
collected as the test ``<source>/<case>``: it passes when the payload maps to what the
fixture expects, and fails with a field-by-field diff when it does not. When pytest
runs without paths, the fixtures folder is collected along with ``testpaths``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from interlock.app import Interlock
from interlock.fixtures import Fixture, default_root, load_fixture, run_fixture

_APP_KEY = pytest.StashKey[Interlock]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("interlock", "interlock golden fixtures")
    group.addoption(
        "--interlock-app",
        default=None,
        help="Collect the golden fixtures of this app (module:attribute).",
    )
    parser.addini(
        "interlock_app", "The app whose golden fixtures are collected (module:attribute)."
    )
    parser.addini("interlock_fixtures", "The golden fixtures folder (default: beside the app).")


def _app_path(config: pytest.Config) -> str | None:
    value = config.getoption("--interlock-app") or config.getini("interlock_app")
    return str(value) if value else None


def _root(config: pytest.Config) -> Path | None:
    app_path = _app_path(config)
    if app_path is None:
        return None
    configured = config.getini("interlock_fixtures")
    if configured:
        return (config.rootpath / str(configured)).resolve()
    _load(config)  # the default sits beside the app's module
    root = default_root(app_path)
    return (root if root.is_absolute() else config.rootpath / root).resolve()


def _load(config: pytest.Config) -> Interlock:
    app = config.stash.get(_APP_KEY, None)
    if app is None:
        from interlock.cli.common import load_app

        app = config.stash[_APP_KEY] = load_app(_app_path(config))
    return app


def pytest_configure(config: pytest.Config) -> None:
    root = _root(config)
    if root is None or not root.is_dir():
        return
    # Without explicit paths, pytest collects testpaths (or the current folder): add the
    # fixtures folder unless one of them already holds it.
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        paths = [Path(a).resolve() for a in config.args]
        if not any(root == p or p in root.parents for p in paths):
            config.args.append(str(root))


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.File | None:
    if file_path.suffix != ".json":
        return None
    root = _root(parent.config)
    if root is None or file_path.resolve().parent.parent != root:
        return None
    collector: FixtureFile = FixtureFile.from_parent(parent, path=file_path)
    return collector


class FixtureFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        fixture = load_fixture(self.path)
        yield FixtureItem.from_parent(self, name=fixture.name, fixture=fixture)


class FixtureFailed(AssertionError):
    """A golden fixture did not map to what it expects."""


class FixtureItem(pytest.Item):
    def __init__(self, *, fixture: Fixture, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fixture = fixture

    def runtest(self) -> None:
        result = run_fixture(_load(self.config), self.fixture)
        if not result.passed:
            raise FixtureFailed("\n".join([result.summary, *result.diff]))

    def repr_failure(
        self,
        excinfo: pytest.ExceptionInfo[BaseException],
        style: Any = None,
    ) -> str:
        if isinstance(excinfo.value, FixtureFailed):
            return f"golden fixture {self.fixture.name} ({self.path}):\n{excinfo.value}"
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"golden fixture {self.fixture.name}"
