"""Huey on Redis or SQLite: the interlock benchmark workload (see bench/common.py).

Workers: one `huey_consumer` process with 4 worker threads, default polling settings.

    python bench/peers/huey_bench.py --backend redis --events 20000 --keys 500 --json
    python bench/peers/huey_bench.py --backend sqlite --events 20000 --keys 500 --json
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from huey import Huey, RedisHuey, SqliteHuey

import common

BACKEND_ENV = "BENCH_HUEY_BACKEND"
BROKER_URL = f"{common.REDIS_URL}/13"  # Redis DB 13 belongs to this script
THREADS = 4


def make_huey() -> Huey:
    """The Huey instance; the backend comes from the environment the driver sets up."""
    if os.environ.get(BACKEND_ENV) == "sqlite":
        db = Path(os.environ.get(common.WORKDIR_ENV, ".")) / "huey.db"
        return SqliteHuey("bench-huey", filename=str(db), results=False)
    return RedisHuey("bench-huey", url=BROKER_URL, results=False)


huey = make_huey()


@huey.task()
def handle(phase: str, job_id: int, key: str, enqueued_at: float) -> None:
    common.record_job(phase, job_id, key, enqueued_at)


class HueyPeer:
    workers = 1
    concurrency = THREADS

    def __init__(self, backend: str) -> None:
        if backend == "redis" and not common.redis_available(BROKER_URL):
            raise common.BenchError(f"Redis is not reachable at {BROKER_URL}")
        self.backend = backend
        self.name = f"huey-{backend}"
        self.config = (
            f"huey_consumer, 1 process x {THREADS} threads, default polling "
            f"(delay 0.1s, backoff 1.15, max 10s), log level WARNING, no results; "
            f"storage {backend}"
        )
        # Huey names a task after its module; the producer runs this file as __main__, so
        # take the task from the module as the consumer imports it (with the backend set).
        os.environ[BACKEND_ENV] = backend
        self.tasks = importlib.import_module("huey_bench")

    def reset(self) -> None:
        if self.backend == "redis":
            common.flush_redis_db(BROKER_URL)
        else:
            self.tasks.huey.flush()  # the file itself goes with the run's work directory

    def enqueue(self, phase: str, job_id: int, key: str, enqueued_at: float) -> None:
        self.tasks.handle(phase, job_id, key, enqueued_at)

    def worker_command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "huey.bin.huey_consumer",
            "huey_bench.huey",
            "--workers",
            str(THREADS),
            "--worker-type",
            "thread",
            "--quiet",  # no per-task INFO log lines (Celery runs at WARNING too)
        ]


def main() -> int:
    parser = common.make_parser(__doc__ or "")
    parser.add_argument("--backend", choices=("redis", "sqlite"), default="redis")
    args = parser.parse_args()
    return common.run_peer(lambda: HueyPeer(args.backend), args)


if __name__ == "__main__":
    sys.exit(main())
