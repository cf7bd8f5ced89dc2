"""DBOS Transact on PostgreSQL: the PostgreSQL benchmark's workload (see bench/postgres.py).

A workflow per event with one `@DBOS.step` (checkpointed, like interlock's `ctx.step`),
enqueued from a `DBOSClient` on a partitioned queue with `queue_partition_key=<key>` and
`partition_concurrency=1`: one workflow at a time per key, started in enqueue order —
DBOS's per-key ordering. Workers: one launched DBOS process each, with its own
executor id; the queue is polled every 50 ms (DBOS dequeues by polling; the default is
1 s), workflows run on DBOS's executor threads.

    python bench/peers/dbos_pg.py --migrate postgresql://.../db  # create schema and queue
    python bench/peers/dbos_pg.py --worker postgresql://.../db   # one worker process
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dbos import DBOS, DBOSClient

import common

APP = "bench"
QUEUE = "bench"  # partitioned by key
FLAT_QUEUE = "bench_flat"  # not partitioned
FLAT_WORKER_CONCURRENCY = 64  # per process, so that one poll does not take the whole backlog
POLL_S = 0.05
POOL = 32  # producer connections (and threads: the client is synchronous)


@DBOS.step(name="record")
def record(phase: str, job_id: int, key: str, enqueued_at: float) -> None:
    common.record_job(phase, job_id, key, enqueued_at)


@DBOS.workflow(name="bench_job")
def bench_job(phase: str, job_id: int, key: str, enqueued_at: float) -> None:
    record(phase, job_id, key, enqueued_at)


def launch(url: str) -> None:
    DBOS(
        config={
            "name": APP,
            "system_database_url": url,
            "executor_id": f"bench-{os.getpid()}",
            "log_level": "WARNING",
        }
    )
    DBOS.launch()
    DBOS.register_queue(QUEUE, partition_concurrency=1, polling_interval_sec=POLL_S)
    DBOS.register_queue(
        FLAT_QUEUE, worker_concurrency=FLAT_WORKER_CONCURRENCY, polling_interval_sec=POLL_S
    )


class DbosSystem:
    def __init__(self, ordered: bool = True) -> None:
        self.client: DBOSClient | None = None
        self.ordered = ordered
        self.name = "DBOS" if ordered else "DBOS, no partitions"
        poll = f"polled every {POLL_S * 1000:.0f} ms"
        self.config = (
            f"DBOS Transact, partitioned queue {poll}"
            if ordered
            else f"DBOS Transact, plain queue {poll}, {FLAT_WORKER_CONCURRENCY} per process"
        )
        order = (
            "partition_concurrency=1: one at a time per key, in enqueue order"
            if ordered
            else "no partitions: workflows of a key run concurrently"
        )
        self.guarantees = (
            f"workflow row committed before enqueue returns; step result checkpointed; {order}"
        )

    async def open(self, url: str) -> None:
        # The client never migrates: a launched DBOS process creates the schema and queue.
        migrate = [*self.worker_command(url)[:2], "--migrate", url]
        await asyncio.to_thread(subprocess.run, migrate, check=True)
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(POOL))
        self.client = DBOSClient(
            system_database_url=url, system_database_pool_size=POOL, application_name=APP
        )

    async def enqueue(self, phase: str, job_id: int, key: str, enqueued_at: float) -> None:
        assert self.client is not None
        options: Any = {"workflow_name": "bench_job", "queue_name": FLAT_QUEUE}
        if self.ordered:
            options.update(queue_name=QUEUE, queue_partition_key=key)
        await self.client.enqueue_async(options, phase, job_id, key, enqueued_at)

    async def close(self) -> None:
        if self.client is not None:
            self.client.destroy()

    def worker_command(self, url: str) -> list[str]:
        return [sys.executable, str(Path(__file__).resolve()), "--worker", url]


def work(url: str) -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    launch(url)
    stop.wait()
    DBOS.destroy(workflow_completion_timeout_sec=5)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        work(sys.argv[2])
    elif len(sys.argv) == 3 and sys.argv[1] == "--migrate":
        launch(sys.argv[2])
        DBOS.destroy()
    else:
        sys.exit(__doc__)
