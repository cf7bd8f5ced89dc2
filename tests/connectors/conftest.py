"""Fixtures for connector tests: real sandbox simulators on loopback, apps on real SQLite.

The generic simulator is served once per session and reset for each test; the
sandbox allows its loopback ports through the egress guard while it runs
(nothing else on loopback is).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from interlock import Interlock
from interlock.connectors import ApiKey, HttpConnector
from interlock.sandbox import GenericSimulator, Vendors, run
from interlock.secrets import KEY_VARIABLE, new_key
from interlock.testing import FakeClock

KEY = new_key()


@pytest.fixture(scope="session")
def served() -> Iterator[Vendors]:
    with run(("generic", "shopify")) as vendors:
        yield vendors


@pytest.fixture
def generic(served: Vendors, monkeypatch: pytest.MonkeyPatch) -> GenericSimulator:
    """The generic simulator, reset, with its API key in the environment as ``generic-key``."""
    served.reset()
    monkeypatch.setenv("INTERLOCK_SECRET_GENERIC_KEY", "sandbox-api-key")
    monkeypatch.setenv(KEY_VARIABLE, KEY)
    return served.generic


@pytest.fixture
async def connectors() -> AsyncIterator[list[HttpConnector]]:
    """Connectors made by a test; their HTTP clients are closed at teardown."""
    made: list[HttpConnector] = []
    yield made
    for connector in made:
        await connector.aclose()


ConnectorFactory = Callable[..., HttpConnector]


@pytest.fixture
def connector(generic: GenericSimulator, connectors: list[HttpConnector]) -> ConnectorFactory:
    """``connector(**options)``: an HttpConnector to the generic simulator (API key auth)."""

    def make(name: str = "crm", **options: object) -> HttpConnector:
        options.setdefault("auth", ApiKey(secret="generic-key"))
        made = HttpConnector(name, base_url=generic.url, **options)  # type: ignore[arg-type]
        connectors.append(made)
        return made

    return make


@pytest.fixture
def real_app(tmp_path: Path, generic: GenericSimulator) -> Iterator[Interlock]:
    """An app on the real clock (workers that sleep for real), with a secrets key."""
    app = Interlock("connectors", f"sqlite:///{tmp_path / 'c.db'}")
    yield app
    app.close()


@pytest.fixture
def fake_app(tmp_path: Path, generic: GenericSimulator, clock: FakeClock) -> Iterator[Interlock]:
    """An app on a fake clock, for drain(app, advance=True); connectors keep real time."""
    app = Interlock("connectors", f"sqlite:///{tmp_path / 'f.db'}", clock=clock)
    yield app
    app.close()
