"""``interlock sandbox``: steering a running simulator, and serving in the foreground."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
from typer.testing import CliRunner

from interlock.cli.sandbox import sandbox
from interlock.sandbox import Vendors

runner = CliRunner()


def test_faults_state_and_reset_over_the_control_endpoint(vendors: Vendors) -> None:
    url = vendors.stripe.url
    result = runner.invoke(
        sandbox,
        [
            "faults",
            "stripe",
            "--url",
            url,
            "--error-rate",
            "0.25",
            "--latency",
            "50ms",
            "--rate-limit",
            "2",
            "--retry-after",
            "3s",
            "--rename",
            "email=mail",
            "--na",
            "amount",
        ],
    )
    assert result.exit_code == 0, result.output
    settings = vendors.stripe.faults.settings
    assert (settings.error_rate, settings.latency, settings.rate_limit_next) == (0.25, 0.05, 2)
    assert settings.retry_after == 3.0
    assert dict(settings.drift.rename) == {"email": "mail"}
    assert '"error_rate": 0.25' in result.output
    state = runner.invoke(sandbox, ["state", "stripe", "--url", url])
    assert '"api_key": "sk_test_sandbox"' in state.output
    assert runner.invoke(sandbox, ["reset", "stripe", "--url", url]).exit_code == 0
    assert vendors.stripe.faults.settings.error_rate == 0.0
    bad = runner.invoke(sandbox, ["faults", "stripe", "--url", url, "--rename", "oops"])
    assert bad.exit_code == 1
    gone = runner.invoke(sandbox, ["faults", "stripe", "--url", "http://127.0.0.1:9"])
    assert gone.exit_code == 1


def test_run_serves_in_the_foreground_until_interrupted() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        base = sock.getsockname()[1]
    code = "from interlock.cli.sandbox import sandbox; sandbox()"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "run", "--vendor", "stripe", "--port-base", str(base)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                state = httpx.get(f"http://127.0.0.1:{base}/_sandbox/state").json()
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        assert state["credentials"]["api_key"] == "sk_test_sandbox"
        faults = subprocess.run(
            [
                sys.executable,
                "-c",
                code,
                "faults",
                "stripe",
                "--port-base",
                str(base),
                "--fail",
                "1",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        assert '"fail_next": 1' in faults.stdout
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 0, out
    assert f"http://127.0.0.1:{base}" in out
    assert "sk_test_sandbox" in out
