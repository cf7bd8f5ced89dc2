"""Several OS processes sharing one SQLite store: together they keep a connector's rate
limit, and a concurrent OAuth refresh race ends with exactly one refresh at the vendor."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import orjson

from interlock import Interlock
from interlock.sandbox import GenericSimulator
from interlock.secrets import KEY_VARIABLE

from .test_limiter import assert_within

CHILD = Path(__file__).with_name("child.py")
SRC = Path(__file__).resolve().parents[2] / "src"


def spawn(
    mode: str, app: Interlock, generic: GenericSimulator, count: int, seconds: float
) -> list[dict[str, int]]:
    env = {
        **os.environ,
        "PYTHONPATH": str(SRC),
        KEY_VARIABLE: os.environ[KEY_VARIABLE],
        "INTERLOCK_SECRET_GENERIC_KEY": "sandbox-api-key",
        "INTERLOCK_SECRET_CRM_CLIENT_SECRET": "generic-sandbox-secret",
        "INTERLOCK_EGRESS_ALLOW": generic.url,
    }
    procs = [
        subprocess.Popen(
            [sys.executable, str(CHILD), mode, app.database_url, generic.url, str(seconds)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(count)
    ]
    # A barrier: every process has imported and opened the store (however slow the machine)
    # before any starts, so they race for the limit (or the refresh) together.
    for proc in procs:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        while line not in (b"ready\n", b""):  # a log line first
            line = proc.stdout.readline()
        assert line, proc.stderr.read() if proc.stderr else b"no ready line"
    start_at = str(time.time() + 0.2).encode() + b"\n"
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write(start_at)
        proc.stdin.flush()
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
        results.append(orjson.loads(out.splitlines()[-1]))
    return results


def test_processes_sharing_a_store_share_the_rate_limit(
    real_app: Interlock, generic: GenericSimulator
) -> None:
    real_app.store  # noqa: B018 - create the schema before the children race to
    results = spawn("limiter", real_app, generic, count=3, seconds=2.0)
    times = [e.at for e in generic.requests.matching("GET", "/v1/customers")]
    assert sum(r.get("ok", 0) for r in results) == len(times)
    assert all(r.get("ok", 0) > 0 for r in results), "every process got its share"
    assert_within(times, 20, 1, slack=0.05)
    span = max(times) - min(times)
    assert len(times) >= 30
    assert len(times) - 1 <= 20 * span * 1.05, "20 a second, all processes together"
    assert len(times) - 1 >= 20 * span * 0.8, "and not much less"


def test_a_concurrent_refresh_race_across_processes_refreshes_once(
    real_app: Interlock, generic: GenericSimulator
) -> None:
    real_app.secrets.set(
        "crm-refresh-token", generic.credentials["refresh_token"], actor="ops", now=time.time()
    )
    results = spawn("oauth", real_app, generic, count=4, seconds=0.0)
    assert [r.get("ok") for r in results] == [5, 5, 5, 5]
    assert len(generic.requests.matching("POST", "/oauth/token")) == 1
    assert {e.status for e in generic.requests.matching("GET", "/v1/customers")} == {200}
