"""SIGKILL a consuming worker process between the durable store and the ack.

300 messages wait in a JetStream stream. A worker process consumes them in batches
of 20 and kills itself (SIGKILL) at its third acknowledgement: that batch is in the
store, and the broker never heard of it. A restarted process (the real
``interlock worker`` command) consumes the rest and is stopped with SIGTERM.
Afterwards the store holds exactly one event (and one succeeded delivery) per
message, none missing, and the broker holds nothing unacknowledged: the killed
batch was redelivered and recognised by its idempotency keys, not stored again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from .conftest import Broker

HERE = Path(__file__).resolve().parent
SRC = HERE.parents[1] / "src"
MESSAGES = 300


class Consumer:
    def __init__(self, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.proc = proc
        self.log = log

    def records(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
        return out

    def logged(self, event: str) -> list[dict[str, Any]]:
        return [r for r in self.records() if r.get("event") == event]

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])


@pytest.fixture
def spawn(tmp_path: Path, broker: Broker) -> Iterator[Callable[..., Consumer]]:
    started: list[Consumer] = []

    def start(*, cli: bool = False, **env: object) -> Consumer:
        """A consumer process: ``stream_app.py`` itself, or with ``cli`` the real
        ``interlock worker`` command serving the same app."""
        environ = dict(os.environ)
        environ.update(
            PYTHONPATH=os.pathsep.join([str(HERE), str(SRC), environ.get("PYTHONPATH", "")]),
            PYTHONUNBUFFERED="1",
            INTERLOCK_DATABASE_URL=f"sqlite:///{tmp_path / 'crash.db'}",
            STREAM_NATS_URL=broker.url,
            STREAM_NAME=broker.stream,
            STREAM_PREFIX=broker.prefix,
            STREAM_ACK_WAIT="1",
            **{k.upper(): str(v) for k, v in env.items()},
        )
        log = tmp_path / f"consumer-{len(started) + 1}.log"
        with open(log, "wb") as out:
            command = (
                [sys.executable, "-m", "interlock", "worker", "cli_app:app", "--grace", "5"]
                if cli
                else [sys.executable, str(HERE / "stream_app.py")]
            )
            proc = subprocess.Popen(
                command,
                cwd=HERE,
                env=environ,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        consumer = Consumer(proc, log)
        started.append(consumer)
        return consumer

    yield start
    for consumer in started:
        if consumer.proc.poll() is None:
            consumer.proc.kill()
        consumer.proc.wait(timeout=10)


def wait_for(predicate: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def query(db: Path, sql: str) -> list[Any]:
    conn = sqlite3.connect(db, timeout=10)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def orders_stored(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        rows = query(db, "SELECT count(*) FROM events WHERE type = 'shop.order_created'")
    except sqlite3.OperationalError:  # not migrated yet
        return 0
    return int(rows[0][0])


@pytest.mark.slow
async def test_sigkill_between_store_and_ack_loses_and_doubles_nothing(
    broker: Broker, spawn: Callable[..., Consumer], tmp_path: Path
) -> None:
    db = tmp_path / "crash.db"
    for i in range(MESSAGES):
        await broker.publish("order.created", orjson.dumps({"id": i, "amount": i}))

    first = spawn(stream_kill_at_ack=3, stream_batch=20)
    assert first.proc.wait(timeout=30) == -signal.SIGKILL, first.tail()
    (killed,) = first.logged("stream_app.killing")
    assert len(killed["keys"]) == 20
    stored_before = orders_stored(db)
    assert stored_before >= 60  # three batches in the store, the third never acknowledged

    last = spawn(cli=True, stream_batch=50)
    wait_for(lambda: orders_stored(db) >= MESSAGES, f"{MESSAGES} events", timeout=60)
    info = await broker.consumer("interlock-orders")
    deadline = time.monotonic() + 30
    while (info.num_ack_pending or info.num_pending) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        info = await broker.consumer("interlock-orders")
    assert (info.num_pending, info.num_ack_pending) == (0, 0)
    wait_for(
        lambda: (
            query(db, "SELECT count(*) FROM deliveries WHERE status = 'succeeded'")[0][0]
            == MESSAGES
        ),
        "every delivery to succeed",
    )
    last.proc.send_signal(signal.SIGTERM)
    assert last.proc.wait(timeout=20) == 0, last.tail()

    rows = query(db, "SELECT data, idempotency_key FROM events WHERE type = 'shop.order_created'")
    ids = sorted(int(json.loads(data)["order_id"]) for data, _ in rows)
    assert ids == list(range(MESSAGES))  # every message exactly once: none missing, none doubled
    assert len({key for _, key in rows}) == MESSAGES
    assert query(db, "SELECT count(*) FROM deliveries")[0][0] == MESSAGES
    # The killed batch came back and was recognised as already stored.
    assert set(killed["keys"]) <= {key for _, key in rows}
    duplicates = re.findall(r"stream\.duplicates\s.*messages=(\d+)", last.log.read_text())
    assert sum(int(n) for n in duplicates) >= len(killed["keys"]), last.tail()
