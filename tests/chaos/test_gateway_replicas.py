"""Two `interlock gateway` processes on one PostgreSQL, as behind a load balancer that
retries: the same signed webhook reaching both at the same moment is stored once, and both
answer 202 with that one event's id.

Both gateways start together on a fresh database (so they also migrate it concurrently).
Then, for each of 40 webhook deliveries, the same signed request is sent to both gateways
twice at once, over connections opened beforehand, so that the four requests race inside
the store. Every answer must be 202 with the same event id; the database must hold one
event and one delivery per webhook delivery.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from .pg import fresh_database

APP = """
from typing import Any
from interlock import Context, Contract, Interlock

app = Interlock("replicas")
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
SECRET = b"replica-s3cret"
DELIVERIES = 40


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Gateway:
    def __init__(self, tmp_path: Path, database_url: str, index: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp_path / f"gateway-{index}.log"
        env = {
            **os.environ,
            "INTERLOCK_DATABASE_URL": database_url,
            "INTERLOCK_SECRET_ACME_SECRET": SECRET.decode(),
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(tmp_path), os.environ.get("PYTHONPATH")) if p
            ),
        }
        cmd = [sys.executable, "-m", "interlock.cli", "gateway", "replicas_app:app"]
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [*cmd, "--port", str(self.port)],
                cwd=tmp_path,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def wait_healthy(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"gateway exited early:\n{self.tail()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"gateway not ready within {timeout}s:\n{self.tail()}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


@pytest.fixture
def gateways(tmp_path: Path) -> Iterator[tuple[str, list[Gateway]]]:
    (tmp_path / "replicas_app.py").write_text(textwrap.dedent(APP))
    with fresh_database() as url:
        pair = [Gateway(tmp_path, url, i) for i in (1, 2)]
        try:
            for gateway in pair:
                gateway.wait_healthy()
            yield url, pair
        finally:
            codes = [g.stop() for g in pair]
        assert codes == [0, 0], "\n".join(g.tail() for g in pair)


def signed(n: int) -> tuple[bytes, dict[str, str]]:
    body = orjson.dumps({"n": n})
    signature = hmac.new(SECRET, body, hashlib.sha256).hexdigest()
    headers = {
        "content-type": "application/json",
        "x-hub-signature-256": f"sha256={signature}",
        "x-github-delivery": f"delivery-{n}",
    }
    return body, headers


async def race(urls: list[str]) -> list[list[httpx.Response]]:
    """Each delivery to every gateway twice at once, on connections opened beforehand."""
    limits = httpx.Limits(max_connections=2, max_keepalive_connections=2)
    clients = [httpx.AsyncClient(base_url=u, limits=limits, timeout=30) for u in urls]
    try:
        for client in clients:  # warm two keep-alive connections each
            await asyncio.gather(*(client.get("/healthz") for _ in range(2)))
        rounds = []
        for n in range(DELIVERIES):
            body, headers = signed(n)
            sends = [
                c.post("/hooks/acme/ping", content=body, headers=headers)
                for c in clients
                for _ in range(2)
            ]
            rounds.append(list(await asyncio.gather(*sends)))
        return rounds
    finally:
        for client in clients:
            await client.aclose()


def test_two_gateways_store_one_event_for_the_same_webhook(
    gateways: tuple[str, list[Gateway]],
) -> None:
    import psycopg

    url, pair = gateways
    rounds = asyncio.run(race([g.url for g in pair]))

    ids = set()
    for n, responses in enumerate(rounds):
        assert [r.status_code for r in responses] == [202] * 4, [r.text for r in responses]
        answers = {tuple(r.json()["event_ids"]) for r in responses}
        assert len(answers) == 1, (n, answers)  # all four name the same one event
        (event_ids,) = answers
        assert len(event_ids) == 1
        ids.add(event_ids[0])
    assert len(ids) == DELIVERIES

    with psycopg.connect(url) as conn:
        stored = {row[0] for row in conn.execute("SELECT id FROM events").fetchall()}
        (deliveries,) = conn.execute("SELECT count(*) FROM deliveries").fetchone() or (0,)
    assert stored == ids
    assert deliveries == DELIVERIES
