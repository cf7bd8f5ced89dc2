"""interlock throughput and latency on the embedded SQLite store.

Workload: N events over K keys (the ordering key), one flow whose handler does
one checkpointed step. By default the producer and the worker share one
process, as in `interlock run` (gateway and workers in one process, one group
commit); `--split` runs the worker as its own process instead, the way the
peers run theirs. Phases, each on a fresh database file:

1. ingest: emit all N events (64 concurrent producers, group-committed), no worker;
2. end-to-end: with a worker process running, emit N events; time from the first
   emit to the last delivery succeeded;
3. latency: a producer paced at a fixed rate (default 1,000/s) with absolute
   deadlines; enqueue-to-start latency per event (attempt start - event time).

    python bench/throughput.py --events 20000 --keys 500 [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE))

from common import PeakRss, percentile  # noqa: E402
from interlock import Context, Contract, Interlock  # noqa: E402
from interlock.worker import tune_gc  # noqa: E402


class Job(Contract, event="bench.job", version=1):
    n: int
    key: str


def effect(n: int) -> dict[str, int]:
    return {"n": n}


DONE: list[Any] = [0, 0.0]  # deliveries finished in this process, and when the last did


def make_app(path: str, durability: str, split: bool = False) -> Interlock:
    app = Interlock("bench-split" if split else "bench", f"sqlite:///{path}", durability=durability)
    DONE[0] = 0

    @app.flow(Job, owner="bench", key="key")
    async def handle(event: Job, ctx: Context) -> None:
        await ctx.step("effect", effect, event.n)
        DONE[0] += 1
        DONE[1] = time.perf_counter()

    return app


# -- the worker process ------------------------------------------------------------------------


def run_worker(path: str, durability: str, concurrency: int) -> None:
    app = make_app(path, durability)
    tune_gc()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        worker = app.worker(concurrency=concurrency)
        task = asyncio.create_task(worker.run(stop))
        print("ready", flush=True)
        await task

    asyncio.run(main())
    app.close()


class WorkerProcess:
    def __init__(self, path: str, args: argparse.Namespace) -> None:
        cmd = [sys.executable, __file__, "--role", "worker", "--db", path]
        cmd += ["--durability", args.durability, "--concurrency", str(args.concurrency)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"worker did not start (got {line!r})")
        self.rss = PeakRss()
        self.rss.start(self.proc.pid)

    def stop(self) -> float:
        self.rss.stop()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)
        return self.rss.peak_mb


# -- the producer --------------------------------------------------------------------------------


async def produce(app: Interlock, n: int, keys: int, producers: int = 256) -> None:
    async def producer(start: int) -> None:
        for i in range(start, n, producers):
            await app.emit(Job(n=i, key=f"k{i % keys}"))

    await asyncio.gather(*(producer(p) for p in range(producers)))


def wait_done(path: str, n: int, timeout: float = 600.0) -> float:
    """Poll the database until n deliveries succeeded; returns when that was seen."""
    conn = sqlite3.connect(path)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            (done,) = conn.execute(
                "SELECT count(*) FROM deliveries WHERE status = 'succeeded'"
            ).fetchone()
            if done >= n:
                return time.perf_counter()
            time.sleep(0.005)
    finally:
        conn.close()
    raise TimeoutError(f"{n} deliveries did not finish within {timeout}s")


async def wait_done_async(app: Interlock, path: str, n: int) -> float:
    """Wait until n deliveries succeeded: the in-process handler counts them; a split
    worker's progress is polled from the database in a thread."""
    if app.name == "bench-split":
        return await asyncio.to_thread(wait_done, path, n)
    while DONE[0] < n:
        await asyncio.sleep(0.001)
    return DONE[1]


async def phase_ingest(path: str, args: argparse.Namespace) -> float:
    app = make_app(path, args.durability)
    app.store  # noqa: B018 - create the schema outside the timing
    start = time.perf_counter()
    await produce(app, args.events, args.keys)
    elapsed = time.perf_counter() - start
    app.close()
    return args.events / elapsed


class InProcessWorker:
    """The worker on the producer's event loop (as `interlock run` runs it)."""

    def __init__(self, app: Interlock, args: argparse.Namespace) -> None:
        self.stop_event = asyncio.Event()
        self.task = asyncio.create_task(
            app.worker(concurrency=args.concurrency).run(self.stop_event)
        )

    async def astop(self) -> float:
        self.stop_event.set()
        await self.task
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class WorkerProcesses:
    def __init__(self, path: str, args: argparse.Namespace) -> None:
        self.procs = [WorkerProcess(path, args) for _ in range(args.workers)]

    def stop(self) -> float:
        return sum(p.stop() for p in self.procs)


class Hybrid:
    """A worker in the producer's process plus worker processes: `interlock run` with
    extra `interlock worker` processes beside it."""

    def __init__(self, app: Interlock, path: str, args: argparse.Namespace) -> None:
        self.local = InProcessWorker(app, argparse.Namespace(concurrency=args.local_concurrency))
        self.remote = WorkerProcesses(path, args)

    async def astop(self) -> float:
        local = await self.local.astop()
        return local + self.remote.stop()


async def start_worker(path: str, app: Interlock, args: argparse.Namespace) -> Any:
    if args.hybrid:
        return Hybrid(app, path, args)
    if args.split:
        return WorkerProcesses(path, args)
    return InProcessWorker(app, args)


async def stop_worker(worker: Any) -> float:
    if isinstance(worker, InProcessWorker | Hybrid):
        return await worker.astop()
    rss: float = worker.stop()
    return rss


async def phase_e2e(path: str, args: argparse.Namespace) -> tuple[float, float]:
    app = make_app(path, args.durability, args.split or args.hybrid)
    app.store  # noqa: B018
    worker = await start_worker(path, app, args)
    try:
        start = time.perf_counter()
        await produce(app, args.events, args.keys)
        done = await wait_done_async(app, path, args.events)
    finally:
        rss = await stop_worker(worker)
        app.close()
    return args.events / (done - start), rss


async def phase_latency(path: str, args: argparse.Namespace) -> tuple[list[float], float]:
    app = make_app(path, args.durability, args.split or args.hybrid)
    app.store  # noqa: B018
    worker = await start_worker(path, app, args)
    n = args.latency_events
    try:
        loop = asyncio.get_running_loop()
        begin = loop.time()
        tasks = []
        for i in range(n):
            delay = begin + i / args.rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(app.emit(Job(n=i, key=f"k{i % args.keys}"))))
        await asyncio.gather(*tasks)
        await wait_done_async(app, path, n)
    finally:
        rss = await stop_worker(worker)
        app.close()
    conn = sqlite3.connect(path)
    rows = conn.execute(
        "SELECT a.started_at - e.occurred_at FROM attempts a "
        "JOIN deliveries d ON d.id = a.delivery_id JOIN events e ON e.seq = d.event_seq "
        "WHERE a.number = 1"
    ).fetchall()
    conn.close()
    return [r[0] for r in rows], rss


def _layout(args: argparse.Namespace) -> str:
    if args.hybrid:
        return f", in-process + {args.workers} worker process(es)"
    if args.split:
        return f", {args.workers} worker process(es)"
    return ""


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="interlock-bench-") as tmp:
        ingest = await phase_ingest(os.path.join(tmp, "ingest.db"), args)
        e2e, rss_e2e = await phase_e2e(os.path.join(tmp, "e2e.db"), args)
        lat, rss_lat = await phase_latency(os.path.join(tmp, "lat.db"), args)
    return {
        "name": f"interlock (sqlite, {args.durability}{_layout(args)})",
        "events": args.events,
        "keys": args.keys,
        "workers": args.workers if args.split else 1,
        "concurrency": args.concurrency,
        "ingest_events_per_s": round(ingest, 1),
        "e2e_events_per_s": round(e2e, 1),
        "latency_rate": args.rate,
        "p50_ms": round(percentile(lat, 50) * 1000, 3),
        "p99_ms": round(percentile(lat, 99) * 1000, 3),
        "peak_rss_mb": round(max(rss_e2e, rss_lat), 1),
        "durable_to_disk": args.durability == "durable",
        "per_key_ordering": True,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--keys", type=int, default=500)
    parser.add_argument("--rate", type=float, default=1000.0, help="latency phase: events/s")
    parser.add_argument("--latency-events", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=500)
    parser.add_argument("--durability", choices=["durable", "fast"], default="durable")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--split", action="store_true", help="run the worker as a separate process")
    parser.add_argument("--workers", type=int, default=1, help="--split: worker processes")
    parser.add_argument(
        "--hybrid",
        action="store_true",
        help="a worker in the producer's process plus --workers worker processes",
    )
    parser.add_argument(
        "--local-concurrency", type=int, default=128, help="--hybrid: the in-process worker's"
    )
    parser.add_argument("--role", choices=["bench", "worker"], default="bench")
    parser.add_argument("--db", help="(worker role) database file")
    args = parser.parse_args()
    if args.role == "worker":
        run_worker(args.db, args.durability, args.concurrency)
        return
    tune_gc()  # as `interlock run` does
    result = asyncio.run(main_async(args))
    if args.json:
        print(json.dumps(result))
        return
    print(f"{result['name']}: {args.events:,} events over {args.keys} keys")
    print(f"  ingest      {result['ingest_events_per_s']:>10,.0f} events/s")
    print(f"  end-to-end  {result['e2e_events_per_s']:>10,.0f} events/s")
    print(
        f"  latency at {args.rate:,.0f}/s: p50 {result['p50_ms']:.2f} ms, "
        f"p99 {result['p99_ms']:.2f} ms"
    )
    print(f"  worker peak RSS {result['peak_rss_mb']:>6.1f} MB")


if __name__ == "__main__":
    main()
