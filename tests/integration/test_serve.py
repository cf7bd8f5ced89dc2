"""`interlock run` and `interlock gateway` as real processes on loopback."""

from __future__ import annotations

import hashlib
import hmac
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import orjson

APP = """
from typing import Any
from interlock import Context, Contract, Interlock

app = Interlock("served")
hooks = app.webhook("acme", verify="github", secret="acme-secret")

class Ping(Contract, event="ping.received"):
    n: int

@hooks.maps("ping")
def ping(body: dict[str, Any]) -> Ping:
    return Ping(n=body["n"])

@app.flow(Ping, owner="ops")
async def pong(event: Ping, ctx: Context) -> None:
    await ctx.step("pong", lambda: event.n)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    (tmp_path / "served_app.py").write_text(textwrap.dedent(APP))
    env = {
        **os.environ,
        "INTERLOCK_DATABASE_URL": f"sqlite:///{tmp_path / 'served.db'}",
        "INTERLOCK_SECRET_ACME_SECRET": "s3cret",
        "PYTHONPATH": str(tmp_path),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "interlock.cli", *args, "served_app:app"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_healthy(url: str, proc: subprocess.Popen[str], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"server exited early: {proc.stdout.read() if proc.stdout else ''}"
            )
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError("server did not become healthy")


def test_run_serves_webhooks_and_works_them_then_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    proc = start(tmp_path, "run", "--port", str(port))
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, proc)
        body = orjson.dumps({"n": 41})
        sig = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
        response = httpx.post(
            f"{url}/hooks/acme/ping",
            content=body,
            headers={
                "content-type": "application/json",
                "x-hub-signature-256": f"sha256={sig}",
                "x-github-delivery": "del-1",
            },
        )
        assert response.status_code == 202, response.text
        assert httpx.get(f"{url}/readyz").json()["status"] == "ready"
        deadline = time.monotonic() + 10
        import sqlite3

        while time.monotonic() < deadline:
            conn = sqlite3.connect(tmp_path / "served.db")
            (done,) = conn.execute(
                "SELECT count(*) FROM deliveries WHERE status = 'succeeded'"
            ).fetchone()
            conn.close()
            if done == 1:
                break
            time.sleep(0.05)
        assert done == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "gateway and worker" in out


def test_a_busy_port_is_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        proc = start(tmp_path, "gateway", "--port", str(port))
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in " ".join(out.split())
    assert "Traceback" not in out
