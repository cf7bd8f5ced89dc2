"""interlock throughput and latency on the embedded SQLite store.

Workload: N events over K keys (ordering key = the key), a flow with one
checkpointed step. Phases, each on a fresh database file:

1. ingest: emit all N events (64 concurrent producers, group-committed), no worker;
2. end-to-end: a worker runs while the producers emit; time from the first emit
   to the last handler done;
3. latency: a producer paced at a fixed rate (default 1,000/s) with absolute
   deadlines; enqueue-to-start latency per event.

    python bench/throughput.py --events 20000 --keys 500 [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from interlock import Context, Contract, Interlock


class Job(Contract, event="bench.job", version=1):
    n: int
    key: str


def make_app(path: str, durability: str) -> tuple[Interlock, dict[str, Any]]:
    app = Interlock("bench", f"sqlite:///{path}", durability=durability)
    state: dict[str, Any] = {"done": 0, "latencies": [], "target": 0, "finished": None}

    def effect(n: int) -> int:
        return n

    @app.flow(Job, owner="bench", key="key")
    async def handle(event: Job, ctx: Context) -> None:
        if state["record"]:
            state["latencies"].append(time.time() - ctx.event.occurred_at)
        await ctx.step("effect", effect, event.n)
        state["done"] += 1
        if state["done"] >= state["target"] and state["finished"] is not None:
            state["finished"].set()

    state["record"] = False
    return app, state


async def produce(app: Interlock, n: int, keys: int, producers: int = 64) -> None:
    async def producer(start: int) -> None:
        for i in range(start, n, producers):
            await app.emit(Job(n=i, key=f"k{i % keys}"))

    await asyncio.gather(*(producer(p) for p in range(producers)))


async def phase_ingest(path: str, n: int, keys: int, durability: str) -> float:
    app, _ = make_app(path, durability)
    app.store  # noqa: B018 - create the schema outside the timing
    start = time.perf_counter()
    await produce(app, n, keys)
    elapsed = time.perf_counter() - start
    app.close()
    return n / elapsed


async def phase_e2e(path: str, n: int, keys: int, durability: str, concurrency: int) -> float:
    app, state = make_app(path, durability)
    app.store  # noqa: B018
    state["target"] = n
    state["finished"] = asyncio.Event()
    stop = asyncio.Event()
    worker = app.worker(concurrency=concurrency)
    task = asyncio.create_task(worker.run(stop))
    await asyncio.sleep(0.05)
    start = time.perf_counter()
    await produce(app, n, keys)
    await asyncio.wait_for(state["finished"].wait(), timeout=600)
    elapsed = time.perf_counter() - start
    stop.set()
    await task
    app.close()
    return n / elapsed


async def phase_latency(
    path: str, n: int, keys: int, durability: str, rate: float, concurrency: int
) -> list[float]:
    app, state = make_app(path, durability)
    app.store  # noqa: B018
    state["target"] = n
    state["finished"] = asyncio.Event()
    state["record"] = True
    stop = asyncio.Event()
    worker = app.worker(concurrency=concurrency)
    task = asyncio.create_task(worker.run(stop))
    await asyncio.sleep(0.05)
    loop = asyncio.get_running_loop()
    begin = loop.time()
    pending: set[asyncio.Task[str]] = set()
    for i in range(n):
        deadline = begin + i / rate
        delay = deadline - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        t = asyncio.create_task(app.emit(Job(n=i, key=f"k{i % keys}")))
        pending.add(t)
        t.add_done_callback(pending.discard)
    await asyncio.wait_for(state["finished"].wait(), timeout=600)
    stop.set()
    await task
    app.close()
    latencies: list[float] = state["latencies"]
    return latencies


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="interlock-bench-") as tmp:
        ingest = await phase_ingest(
            os.path.join(tmp, "ingest.db"), args.events, args.keys, args.durability
        )
        gc.collect()
        e2e = await phase_e2e(
            os.path.join(tmp, "e2e.db"), args.events, args.keys, args.durability, args.concurrency
        )
        gc.collect()
        lat = await phase_latency(
            os.path.join(tmp, "lat.db"),
            args.latency_events,
            args.keys,
            args.durability,
            args.rate,
            args.concurrency,
        )
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "name": f"interlock (sqlite, {args.durability})",
        "events": args.events,
        "keys": args.keys,
        "concurrency": args.concurrency,
        "ingest_events_per_s": round(ingest, 1),
        "e2e_events_per_s": round(e2e, 1),
        "latency_rate": args.rate,
        "p50_ms": round(percentile(lat, 50) * 1000, 3),
        "p99_ms": round(percentile(lat, 99) * 1000, 3),
        "peak_rss_mb": round(rss_mb, 1),
        "durable_to_disk": args.durability == "durable",
        "per_key_ordering": True,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--keys", type=int, default=500)
    parser.add_argument("--rate", type=float, default=1000.0, help="latency phase: events/s")
    parser.add_argument("--latency-events", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=500)
    parser.add_argument("--durability", choices=["durable", "fast"], default="durable")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    result = asyncio.run(main_async(args))
    if args.json:
        print(json.dumps(result))
        return
    print(f"{result['name']}: {args.events:,} events over {args.keys} keys")
    print(f"  ingest      {result['ingest_events_per_s']:>10,.0f} events/s")
    print(f"  end-to-end  {result['e2e_events_per_s']:>10,.0f} events/s")
    print(
        f"  latency at {args.rate:,.0f}/s: p50 {result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms"
    )
    print(f"  peak RSS    {result['peak_rss_mb']:>10.1f} MB")


if __name__ == "__main__":
    main()
