"""`interlock run` on PostgreSQL as a real process: webhooks in, flows run in key order,
trace and metrics work, a dropped connection is survived and an unreachable database is
reported by /readyz until it is back."""

from __future__ import annotations

import hashlib
import hmac
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import orjson
import psycopg

from interlock.stores.sql import migrations

from .test_serve import free_port, wait_healthy

APP = """
from typing import Any
from interlock import Context, Contract, Interlock

app = Interlock("pg-served")
hooks = app.webhook("acme", verify="github", secret="acme-secret")

class Ping(Contract, event="ping.received", subject="n"):
    n: int
    key: str

@hooks.maps("ping")
def ping(body: dict[str, Any]) -> Ping:
    return Ping(n=body["n"], key=body["key"])

@app.flow(Ping, owner="ops", key="key")
async def pong(event: Ping, ctx: Context) -> None:
    await ctx.step("pong", lambda: event.n)
"""


def _post(url: str, n: int, key: str) -> httpx.Response:
    body = orjson.dumps({"n": n, "key": key})
    sig = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    return httpx.post(
        f"{url}/hooks/acme/ping",
        content=body,
        headers={
            "content-type": "application/json",
            "x-hub-signature-256": f"sha256={sig}",
            "x-github-delivery": f"del-{n}",
        },
        timeout=30,
    )


def _until(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _admin(pg_url: str, sql: str) -> None:
    base, _, database = pg_url.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(sql.replace("{db}", database).encode())


def test_run_on_postgres_survives_a_dropped_connection_and_reports_an_outage(
    tmp_path: Path, pg_url: str
) -> None:
    (tmp_path / "pg_served_app.py").write_text(textwrap.dedent(APP))
    env = {
        **os.environ,
        "INTERLOCK_DATABASE_URL": pg_url,
        "INTERLOCK_SECRET_ACME_SECRET": "s3cret",
        "INTERLOCK_PG_RECONNECT_TIMEOUT": "3",
        "INTERLOCK_PG_CONNECT_TIMEOUT": "2",
        "PYTHONPATH": str(tmp_path),
    }
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "interlock.cli", "run", "--port", str(port), "pg_served_app:app"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"

    def done() -> list[tuple[str, int]]:
        with psycopg.connect(pg_url) as conn:
            rows = conn.execute(
                "SELECT d.lane, (e.data::json->>'n')::int FROM deliveries d "
                "JOIN events e ON e.seq = d.event_seq JOIN attempts a ON a.delivery_id = d.id "
                "WHERE d.status = 'succeeded' ORDER BY a.id"
            ).fetchall()
        return [(str(lane), int(n)) for lane, n in rows]

    try:
        wait_healthy(url, proc)
        for n in range(12):
            assert _post(url, n, f"k{n % 3}").status_code == 202
        _until(lambda: len(done()) == 12, "the first twelve")
        known = migrations("postgres")[-1].version
        assert httpx.get(f"{url}/readyz").json() == {"status": "ready", "schema": known}
        metrics = httpx.get(f"{url}/metrics").text
        assert "interlock_pg_oldest_transaction_seconds" in metrics
        assert 'interlock_pg_dead_tuples{table="deliveries"}' in metrics

        # Every connection the process holds is cut: it reconnects, nothing lost or doubled.
        _admin(
            pg_url,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = '{db}' AND pid <> pg_backend_pid()",
        )
        for n in range(12, 24):
            assert _post(url, n, f"k{n % 3}").status_code == 202
        _until(lambda: len(done()) == 24, "the next twelve after the dropped connections")

        # The database goes away: /readyz says so, webhooks are refused (not lost)...
        _admin(pg_url, "ALTER DATABASE {db} ALLOW_CONNECTIONS false")
        _admin(
            pg_url,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = '{db}' AND pid <> pg_backend_pid()",
        )
        _until(lambda: httpx.get(f"{url}/readyz", timeout=30).status_code == 503, "503")
        assert _post(url, 99, "k0").status_code == 503
        # ...and once it is back, everything works again.
        _admin(pg_url, "ALTER DATABASE {db} ALLOW_CONNECTIONS true")
        _until(lambda: httpx.get(f"{url}/readyz", timeout=30).status_code == 200, "ready")
        for n in range(24, 30):
            assert _post(url, n, f"k{n % 3}").status_code == 202
        _until(lambda: len(done()) == 30, "the last six")
    finally:
        _admin(pg_url, "ALTER DATABASE {db} ALLOW_CONNECTIONS true")
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    runs = done()
    assert sorted(n for _, n in runs) == list(range(30)), "each event ran exactly once"
    for key in ("k0", "k1", "k2"):
        order = [n for lane, n in runs if lane == key]
        assert order == sorted(order), f"lane {key} ran out of order: {order}"

    trace = subprocess.run(
        [sys.executable, "-m", "interlock.cli", "events", "trace", "7", "--database-url", pg_url],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert trace.returncode == 0, trace.stderr
    assert "pong" in trace.stdout and "succeeded" in trace.stdout


def test_db_upgrade_from_several_processes_at_once_applies_each_migration_once(
    pg_empty_url: str,
) -> None:
    upgrades = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "interlock.cli",
                "db",
                "upgrade",
                "--database-url",
                pg_empty_url,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120)[0] for p in upgrades]
    assert [p.returncode for p in upgrades] == [0, 0], outputs
    with psycopg.connect(pg_empty_url) as conn:
        rows = conn.execute("SELECT version FROM interlock_migrations ORDER BY version").fetchall()
    assert [r[0] for r in rows] == [m.version for m in migrations("postgres")]
    assert sum("0001_initial" in out for out in outputs) == 1, "one process applied them"
