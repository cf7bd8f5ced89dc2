"""``interlock demo`` opens on the dashboard: it prints the URL and an admin token that
logs in, with the gateway, a worker, the vendor sandbox and the traffic running."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port_base() -> int:
    """A port base whose generic simulator port (base + 5) is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1]) - 5


def test_the_demo_prints_a_dashboard_url_and_an_admin_token_that_logs_in(tmp_path: Path) -> None:
    base = free_port_base()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, (os.environ.get("PYTHONPATH"), str(ROOT)))),
        "INTERLOCK_DATABASE_URL": f"sqlite:///{tmp_path / 'demo.db'}",
        "INTERLOCK_CONNECTOR_CRM_API_BASE_URL": f"http://127.0.0.1:{base + 5}",
        "COLUMNS": "200",
    }
    command = [sys.executable, "-m", "interlock", "demo", "--port", "0"]
    command += ["--sandbox-port-base", str(base), "--duration", "60", "--rate", "30"]
    demo = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        assert demo.stdout is not None
        banner = ""
        deadline = time.monotonic() + 30
        while "admin token" not in banner and time.monotonic() < deadline:
            line = demo.stdout.readline()
            if not line:
                break
            banner += line
        found = re.search(r"Dashboard: (http://127\.0\.0\.1:\d+/) .*admin token: (ilk_\S+)", banner)
        assert found, banner
        url, token = found.groups()
        with httpx.Client(base_url=url, timeout=10) as client:
            assert client.get("/").status_code == 303  # to the login page
            client.get("/ui/login")
            nonce = client.cookies["interlock_login"]
            answer = client.post("/ui/login", data={"token": token, "nonce": nonce, "next": "/"})
            assert answer.status_code == 303
            deadline = time.monotonic() + 20
            while True:  # the traffic reaches the CRM (the sandbox) and succeeds
                page = client.get("/")
                assert page.status_code == 200
                out = re.search(r'data-flow="note_in_crm".*?data-k="out">(\d+)<', page.text, re.S)
                assert out, page.text
                if int(out.group(1)) > 0 or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            assert int(out.group(1)) > 0
            tokens = client.get("/api/v1/tokens", headers={"Authorization": f"Bearer {token}"})
            assert tokens.status_code == 200, "the printed token is an admin's"
    finally:
        demo.send_signal(signal.SIGINT)
        try:
            demo.wait(20)
        finally:
            if demo.poll() is None:
                demo.kill()
                demo.wait(5)
            if demo.stdout is not None:
                demo.stdout.close()
    assert demo.returncode == 0
