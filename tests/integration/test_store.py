"""SQLite files that are not usable interlock stores are refused clearly."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from interlock import Interlock, StoreCorrupt


def test_a_corrupt_file_is_reported_clearly(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.db"
    path.write_bytes(b"this is definitely not a sqlite database" * 200)
    app = Interlock("broken", f"sqlite:///{path}")
    with pytest.raises(StoreCorrupt) as info:
        app.store  # noqa: B018 - opening the store is the point
    message = str(info.value)
    assert str(path) in message
    assert "not a usable interlock database" in message


def test_a_database_from_a_newer_interlock_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    app = Interlock("now", f"sqlite:///{path}")
    app.store  # noqa: B018 - create the schema
    app.close()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 99")
    conn.close()
    later = Interlock("later", f"sqlite:///{path}")
    with pytest.raises(StoreCorrupt, match=r"schema v99 was written by a newer interlock"):
        later.store  # noqa: B018
    later.close()


def test_a_foreign_sqlite_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other-app.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO events (name) VALUES ('keep me')")
    conn.close()
    app = Interlock("intruder", f"sqlite:///{path}")
    with pytest.raises(StoreCorrupt, match="not an interlock"):
        app.store  # noqa: B018
    app.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT name FROM events").fetchall() == [("keep me",)]
    conn.close()
