"""Celery on Redis: the interlock benchmark workload (see bench/common.py for the phases).

Workers: one `celery worker` with the prefork pool, concurrency 2 (one child per core).

    python bench/peers/celery_bench.py --events 20000 --keys 500 --json
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from celery import Celery

import common

BROKER_URL = f"{common.REDIS_URL}/11"  # Redis DB 11 belongs to this script
QUEUE = "bench-celery"
CONCURRENCY = 2

app = Celery("celery_bench", broker=BROKER_URL)
app.conf.update(
    task_default_queue=QUEUE,
    task_ignore_result=True,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)


# An explicit name, because the producer runs this file as __main__.
@app.task(name="bench.handle")
def handle(phase: str, job_id: int, key: str, enqueued_at: float) -> None:
    common.record_job(phase, job_id, key, enqueued_at)


class CeleryPeer:
    name = "celery"
    workers = 1
    concurrency = CONCURRENCY
    config = (
        f"celery worker, prefork pool, concurrency {CONCURRENCY}, default prefetch, "
        "acks early, no result backend; broker Redis"
    )

    def __init__(self) -> None:
        if not common.redis_available(BROKER_URL):
            raise common.BenchError(f"Redis is not reachable at {BROKER_URL}")

    def reset(self) -> None:
        common.flush_redis_db(BROKER_URL)

    def enqueue(self, phase: str, job_id: int, key: str, enqueued_at: float) -> None:
        handle.apply_async((phase, job_id, key, enqueued_at))

    def worker_command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "celery_bench",
            "worker",
            "--pool",
            "prefork",
            "--concurrency",
            str(CONCURRENCY),
            "--queues",
            QUEUE,
            "--loglevel",
            "WARNING",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]


def main() -> int:
    args = common.make_parser(__doc__ or "").parse_args()
    return common.run_peer(CeleryPeer, args)


if __name__ == "__main__":
    sys.exit(main())
