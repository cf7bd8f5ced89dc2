"""Secrets: the encrypted table, key rotation, resolution order, the CLI, and locks."""

from __future__ import annotations

import asyncio
import sqlite3
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from interlock import Interlock
from interlock.cli import cli
from interlock.cli.common import load_app
from interlock.errors import ConfigurationError
from interlock.secrets import KEY_VARIABLE, Secrets, new_key

OLD, NEW = new_key(), new_key()


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Interlock]:
    monkeypatch.setenv(KEY_VARIABLE, OLD)
    monkeypatch.delenv("INTERLOCK_SECRET_STRIPE_API_KEY", raising=False)
    application = Interlock("secrets", f"sqlite:///{tmp_path / 's.db'}")
    yield application
    application.close()


def raw_bytes(app: Interlock) -> bytes:
    conn = sqlite3.connect(app.store.path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return Path(app.store.path).read_bytes()


def test_a_stored_secret_resolves_and_is_never_stored_in_plaintext(app: Interlock) -> None:
    version = app.secrets.set("stripe-api-key", "sk_live_abcdef123456", actor="ops", now=1.0)
    assert version == 1
    assert app.secrets.resolve("stripe-api-key") == "sk_live_abcdef123456"
    assert b"sk_live_abcdef123456" not in raw_bytes(app)
    (info,) = app.secrets.list()
    assert (info.name, info.version, info.created_by, info.versions) == (
        "stripe-api-key",
        1,
        "ops",
        1,
    )
    (entry,) = app.store.list_audit(action="secret.set")
    assert entry.target == "secret:stripe-api-key"
    assert "sk_live" not in orjson.dumps(entry.detail).decode()


def test_new_versions_win_and_the_cache_expires(app: Interlock) -> None:
    now = [0.0]
    secrets = Secrets(lambda: app.store, cache_ttl=5.0, clock=lambda: now[0])
    app.secrets.set("token", "first", actor="ops", now=1.0)
    assert secrets.resolve("token") == "first"
    app.secrets.set("token", "second", actor="ops", now=2.0, expires_at=99.0)
    assert secrets.resolve("token") == "first"  # cached for cache_ttl
    now[0] = 5.1
    found = secrets.lookup("token")
    assert (found.value, found.version, found.expires_at) == ("second", 2, 99.0)
    assert app.secrets.list()[0].versions == 2


def test_the_environment_wins_over_the_store(
    app: Interlock, monkeypatch: pytest.MonkeyPatch
) -> None:
    app.secrets.set("stripe-api-key", "from-store", actor="ops", now=1.0)
    monkeypatch.setenv("INTERLOCK_SECRET_STRIPE_API_KEY", "from-env")
    assert app.secrets.resolve("stripe-api-key") == "from-env"


def test_missing_secret_and_missing_or_wrong_key_are_clear_errors(
    app: Interlock, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigurationError, match=r"INTERLOCK_SECRET_NOPE.*secrets set nope"):
        app.secrets.resolve("nope")
    app.secrets.set("token", "value-1", actor="ops", now=1.0)
    monkeypatch.setenv(KEY_VARIABLE, NEW)
    other = Secrets(lambda: app.store)
    with pytest.raises(ConfigurationError, match="does not hold the key"):
        other.resolve("token")
    monkeypatch.delenv(KEY_VARIABLE)
    with pytest.raises(ConfigurationError, match="INTERLOCK_SECRET_KEY is not set"):
        Secrets(lambda: app.store).set("x", "y", actor="ops", now=1.0)
    monkeypatch.setenv(KEY_VARIABLE, "not-a-key")
    with pytest.raises(ConfigurationError, match="key 1 is not a Fernet key"):
        Secrets(lambda: app.store).resolve("token")
    with pytest.raises(ConfigurationError, match="empty"):
        app.secrets.set("token", "", actor="ops", now=1.0)
    with pytest.raises(ConfigurationError, match="must be letters"):
        app.secrets.set("bad name!", "v", actor="ops", now=1.0)


def test_key_rotation_reencrypts_everything_under_the_new_key(
    app: Interlock, monkeypatch: pytest.MonkeyPatch
) -> None:
    app.secrets.set("a", "alpha-value", actor="ops", now=1.0)
    app.secrets.set("a", "alpha-value-2", actor="ops", now=2.0)
    app.secrets.set("b", "beta-value", actor="ops", now=3.0)
    monkeypatch.setenv(KEY_VARIABLE, f"{NEW},{OLD}")
    during = Secrets(lambda: app.store)
    assert during.resolve("a") == "alpha-value-2"  # old values still read during rotation
    assert during.rotate(actor="ops", now=4.0) == 3
    monkeypatch.setenv(KEY_VARIABLE, NEW)
    after = Secrets(lambda: app.store)
    assert (after.resolve("a"), after.resolve("b")) == ("alpha-value-2", "beta-value")
    assert [e.action for e in app.store.list_audit(1)] == ["secret.rotate-key"]
    monkeypatch.setenv(KEY_VARIABLE, new_key())
    with pytest.raises(ConfigurationError, match="cannot be decrypted with any key"):
        Secrets(lambda: app.store).rotate(actor="ops", now=5.0)


async def test_locks_are_exclusive_until_released_or_expired(app: Interlock) -> None:
    store = app.store
    assert await store.take_lock("oauth:hubspot", "w1", until=10.0, now=1.0)
    assert not await store.take_lock("oauth:hubspot", "w2", until=10.0, now=2.0)
    assert await store.take_lock("oauth:hubspot", "w1", until=20.0, now=3.0)  # extend
    assert not await store.take_lock("oauth:hubspot", "w2", until=30.0, now=15.0)
    assert await store.take_lock("oauth:hubspot", "w2", until=30.0, now=20.0)  # expired
    await store.release_lock("oauth:hubspot", "w1")  # not the holder: no effect
    assert not await store.take_lock("oauth:hubspot", "w3", until=40.0, now=21.0)
    await store.release_lock("oauth:hubspot", "w2")
    assert await store.take_lock("oauth:hubspot", "w3", until=40.0, now=22.0)


async def test_only_one_of_many_concurrent_lockers_wins(app: Interlock) -> None:
    results = await asyncio.gather(
        *(app.store.take_lock("refresh", f"w{i}", until=100.0, now=1.0) for i in range(20))
    )
    assert sum(results) == 1


APP = """
from interlock import Interlock
app = Interlock("secrets-cli")
"""


def test_cli_set_list_rotate_never_print_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "secrets_cli_app.py").write_text(textwrap.dedent(APP))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("INTERLOCK_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv(KEY_VARIABLE, OLD)
    monkeypatch.setenv("INTERLOCK_ACTOR", "oncall@acme.test")
    runner = CliRunner()
    app_arg = ["--app", "secrets_cli_app:app"]
    done = runner.invoke(
        cli, ["secrets", "set", "hubspot-token", *app_arg, "--expires", "30d"], input="pat-123\n"
    )
    assert done.exit_code == 0, done.output
    assert "stored hubspot-token v1" in done.output
    listed = runner.invoke(cli, ["secrets", "list", *app_arg, "--json"])
    assert listed.exit_code == 0, listed.output
    assert "pat-123" not in listed.output
    (row,) = orjson.loads(listed.output)
    assert row["name"] == "hubspot-token"
    assert row["created_by"] == "oncall@acme.test"
    assert row["expires_at"] > time.time() + 29 * 86400
    key = runner.invoke(cli, ["secrets", "keygen"]).output.strip()
    monkeypatch.setenv(KEY_VARIABLE, f"{key},{OLD}")
    rotated = runner.invoke(cli, ["secrets", "rotate", *app_arg])
    assert rotated.exit_code == 0, rotated.output
    assert "re-encrypted 1" in rotated.output
    monkeypatch.setenv(KEY_VARIABLE, key)
    assert load_app("secrets_cli_app:app").secrets.resolve("hubspot-token") == "pat-123"
    bad = runner.invoke(cli, ["secrets", "set", "x", *app_arg, "--expires", "soon"], input="v\n")
    assert bad.exit_code == 1
    assert "--expires 'soon'" in bad.output
