"""Dramatiq on Redis: the interlock benchmark workload (see bench/common.py for the phases).

Workers: `dramatiq` with 2 worker processes (one per core) x 4 threads each.

    python bench/peers/dramatiq_bench.py --events 20000 --keys 500 --json
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import dramatiq
from dramatiq.brokers.redis import RedisBroker

import common

BROKER_URL = f"{common.REDIS_URL}/12"  # Redis DB 12 belongs to this script
QUEUE = "bench-dramatiq"
PROCESSES = 2
THREADS = 4

dramatiq.set_broker(RedisBroker(url=BROKER_URL))


@dramatiq.actor(queue_name=QUEUE, max_retries=0)
def handle(phase: str, job_id: int, key: str, enqueued_at: float) -> None:
    common.record_job(phase, job_id, key, enqueued_at)


class DramatiqPeer:
    name = "dramatiq"
    workers = PROCESSES
    concurrency = PROCESSES * THREADS
    config = (
        f"dramatiq, {PROCESSES} processes x {THREADS} threads, default middleware "
        "(no results), max_retries 0; broker Redis"
    )

    def __init__(self) -> None:
        if not common.redis_available(BROKER_URL):
            raise common.BenchError(f"Redis is not reachable at {BROKER_URL}")

    def reset(self) -> None:
        common.flush_redis_db(BROKER_URL)

    def enqueue(self, phase: str, job_id: int, key: str, enqueued_at: float) -> None:
        handle.send(phase, job_id, key, enqueued_at)

    def worker_command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "dramatiq",
            "dramatiq_bench",
            "--processes",
            str(PROCESSES),
            "--threads",
            str(THREADS),
            "--queues",
            QUEUE,
        ]


def main() -> int:
    args = common.make_parser(__doc__ or "").parse_args()
    return common.run_peer(DramatiqPeer, args)


if __name__ == "__main__":
    sys.exit(main())
