"""pgqueuer on PostgreSQL: the PostgreSQL benchmark's workload (see bench/postgres.py).

A job per event on one entrypoint. pgqueuer has no per-key ordering (only a global
`concurrency_limit` per entrypoint, and `dedupe_key`), so jobs of a key may run at the same
time and out of order. Workers: one `QueueManager` per process on an asyncpg connection,
`run(batch_size=10)` (the default), LISTEN/NOTIFY wake-ups; completed jobs are deleted and
logged in batches (its defaults).

    python bench/peers/pgqueuer_pg.py --worker postgresql://.../db   # one worker process
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg
from pgqueuer import AsyncpgDriver, AsyncpgPoolDriver, Job, Queries, QueueManager

import common

BATCH = 10  # jobs a worker picks per dequeue
POOL = 32  # producer connections


class PgqueuerSystem:
    name = "pgqueuer"
    config = f"pgqueuer, one QueueManager per process, batch_size {BATCH}, LISTEN/NOTIFY"
    guarantees = (
        "job row committed before enqueue returns; no per-key order (jobs of one key run "
        "concurrently); no step checkpoints; completion recorded in batches"
    )

    def __init__(self) -> None:
        self.pool: asyncpg.Pool | None = None
        self.queries: Queries | None = None

    async def open(self, url: str) -> None:
        self.pool = await asyncpg.create_pool(url, min_size=1, max_size=POOL)
        self.queries = Queries(AsyncpgPoolDriver(self.pool))
        await self.queries.install()

    async def enqueue(self, phase: str, job_id: int, key: str, enqueued_at: float) -> None:
        assert self.queries is not None
        payload = json.dumps([phase, job_id, key, enqueued_at]).encode()
        await self.queries.enqueue("bench_job", payload)

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()

    def worker_command(self, url: str) -> list[str]:
        return [sys.executable, str(Path(__file__).resolve()), "--worker", url]


async def work(url: str) -> None:
    conn = await asyncpg.connect(url)
    qm = QueueManager(Queries(AsyncpgDriver(conn)))

    @qm.entrypoint("bench_job")
    async def bench_job(job: Job) -> None:
        assert job.payload is not None
        phase, job_id, key, enqueued_at = json.loads(job.payload)
        common.record_job(phase, job_id, key, enqueued_at)

    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, qm.shutdown.set)
    try:
        await qm.run(batch_size=BATCH)
    finally:
        await conn.close()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        asyncio.run(work(sys.argv[2]))
    else:
        sys.exit(__doc__)
