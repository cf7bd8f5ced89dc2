"""procrastinate on PostgreSQL: the PostgreSQL benchmark's workload (see bench/postgres.py).

A job per event, deferred with `lock=<key>` (or without, `ordered=False`): procrastinate runs jobs sharing a lock one at
a time, and does not start one while an earlier job of that lock waits — per-key order,
the equivalent of interlock's lanes. Workers: `run_worker_async(concurrency=16)` per
process, LISTEN/NOTIFY on (the default), finished jobs kept (the default).

    python bench/peers/procrastinate_pg.py --worker postgresql://.../db   # one worker process
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import procrastinate

import common

CONCURRENCY = 16  # per worker process
POOL = 32  # producer connections


def make_app(url: str, pool: int) -> procrastinate.App:
    connector = procrastinate.PsycopgConnector(conninfo=url, min_size=1, max_size=pool)
    app = procrastinate.App(connector=connector)

    @app.task(name="bench_job", queue="bench", pass_context=False)
    async def bench_job(phase: str, job_id: int, key: str, enqueued_at: float) -> None:
        common.record_job(phase, job_id, key, enqueued_at)

    return app


class ProcrastinateSystem:
    config = f"procrastinate 3, concurrency {CONCURRENCY} per process, LISTEN/NOTIFY"

    def __init__(self, ordered: bool = True) -> None:
        self.app: procrastinate.App | None = None
        self.ordered = ordered
        self.name = "procrastinate" if ordered else "procrastinate, no lock"
        order = (
            "lock=key: one at a time per key, in defer order"
            if ordered
            else "no lock: jobs of a key run concurrently, in any order"
        )
        self.guarantees = (
            f"job row committed before defer returns; {order}; no step checkpoints "
            "(a retried job runs again from the top)"
        )

    async def open(self, url: str) -> None:
        self.app = make_app(url, POOL)
        await self.app.open_async()
        await self.app.schema_manager.apply_schema_async()

    async def enqueue(self, phase: str, job_id: int, key: str, enqueued_at: float) -> None:
        assert self.app is not None
        task: Any = self.app.tasks["bench_job"]
        await task.configure(lock=key if self.ordered else None).defer_async(
            phase=phase, job_id=job_id, key=key, enqueued_at=enqueued_at
        )

    async def close(self) -> None:
        if self.app is not None:
            await self.app.close_async()

    def worker_command(self, url: str) -> list[str]:
        return [sys.executable, str(Path(__file__).resolve()), "--worker", url]


async def work(url: str) -> None:
    app = make_app(url, 4)
    async with app.open_async():
        await app.run_worker_async(queues=["bench"], concurrency=CONCURRENCY, wait=True)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        asyncio.run(work(sys.argv[2]))
    else:
        sys.exit(__doc__)
