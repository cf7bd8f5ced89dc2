"""The store contract runs against every store: each test here runs once per store.

A test asks for ``app``/``make_app`` (from the root conftest) and gets apps on
SQLite, then on PostgreSQL (a fresh database cloned from the run's template). A
new store passes when it passes this suite.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'interlock.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url
