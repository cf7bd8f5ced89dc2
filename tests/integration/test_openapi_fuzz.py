"""Schemathesis against the gateway's own ``/openapi.json``, served by `interlock run`.

Every documented operation is fuzzed from its schema (coverage, fuzzing and stateful
phases) with an admin token: no server error, responses that match the documented
status codes, content types, headers and schemas, and invalid input refused.
``positive_data_acceptance`` is left out on purpose: opaque cursors from a random
generator and a bulk action without a selection are schema-valid, and refusing them
with a 400 is the documented behaviour. ``DELETE /api/v1/tokens`` is left out so the
fuzzer cannot revoke its own token mid-run (revocation is tested in test_api.py).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from .test_serve import free_port, wait_healthy

APP = """
from typing import Any
from interlock import PII, Context, Contract, Interlock, Permanent

app = Interlock("fuzzed")
shop = app.webhook("shop", verify="github", secret="shop-secret")


class OrderPlaced(Contract, event="order.placed", subject="order_id"):
    order_id: str
    total: int
    buyer_email: PII[str]


@shop.maps("orders")
def order(body: dict[str, Any]) -> OrderPlaced:
    return OrderPlaced(order_id=body["id"], total=body["total"], buyer_email=body["email"])


@app.flow(OrderPlaced, owner="orders@acme.test", key="order_id")
async def bill(event: OrderPlaced, ctx: Context) -> None:
    if event.total < 0:
        raise Permanent("negative total")
"""

SEED = os.environ.get("INTERLOCK_FUZZ_SEED", "20261127")


def seed(tmp_path: Path) -> str:
    """Some events, dead letters and an admin token in a fresh store."""
    sys.path.insert(0, str(tmp_path))
    try:
        import fuzzed_app  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(tmp_path))
    from interlock.testing import drain

    app = fuzzed_app.app

    async def fill() -> None:
        for i in range(6):
            event = fuzzed_app.OrderPlaced(order_id=f"o{i}", total=-i, buyer_email="a@b.test")
            await app.emit(event)
        await drain(app)

    app.store.ensure_schema()
    asyncio.run(fill())
    token = app.store.create_token_sync("fuzzer", "admin", actor="test", now=time.time())
    app.close()
    return token.secret


@pytest.mark.timeout(240)
def test_schemathesis_finds_nothing_wrong(tmp_path: Path) -> None:
    (tmp_path / "fuzzed_app.py").write_text(textwrap.dedent(APP))
    env = {
        **os.environ,
        "INTERLOCK_DATABASE_URL": f"sqlite:///{tmp_path / 'fuzzed.db'}",
        "INTERLOCK_SECRET_SHOP_SECRET": "s3cret",
        "PYTHONPATH": str(tmp_path),
    }
    os.environ["INTERLOCK_DATABASE_URL"] = env["INTERLOCK_DATABASE_URL"]
    try:
        token = seed(tmp_path)
    finally:
        del os.environ["INTERLOCK_DATABASE_URL"]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    # The server logs every rejection: to a file, so a full pipe never blocks it.
    with log.open("w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "interlock.cli", "run", "--port", str(port), "fuzzed_app:app"],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        wait_healthy(url, server)
        fuzz = subprocess.run(
            [
                str(Path(sys.executable).parent / "schemathesis"),
                "run",
                f"{url}/openapi.json",
                "--header",
                f"Authorization: Bearer {token}",
                "--checks",
                "all",
                "--exclude-checks",
                "positive_data_acceptance",
                "--exclude-method",
                "DELETE",
                "--phases",
                "examples,coverage,fuzzing,stateful",
                "--max-examples",
                "25",
                "--seed",
                SEED,
                # One worker: hypothesis describing lambdas from several threads at once
                # trips CPython 3.11's AST recursion check (a runtime error in the fuzzer).
                "--workers",
                "1",
                "--request-timeout",
                "10",
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=200,
        )
        report = fuzz.stdout[-6000:] + fuzz.stderr[-2000:]
        assert fuzz.returncode == 0, report
        assert "Server error" not in report
    finally:
        server.terminate()
        server.wait(timeout=30)
    output = log.read_text()
    assert "gateway.crashed" not in output, output[-4000:]
    assert "Traceback" not in output, output[-4000:]
