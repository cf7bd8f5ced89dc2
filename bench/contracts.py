"""Drift profiling: what keeping a shape profile costs per incoming payload.

Every verified webhook payload goes through ``DriftMonitor.observe`` in the gateway
(the issue's target: under 20 µs per event). Measured here on the example suite's
real-shaped payloads (``examples/fixtures``), each on a profile past its baseline, so
the drift checks run as in production:

1. ``observe`` alone, in memory (the per-request cost on the gateway's event loop);
2. the same with the monitor's periodic flush to a real SQLite store (``durable``),
   one batched write per second of payloads, its time spread over the payloads.

Each figure is CPU time (``time.process_time``, every thread of the process: the
flush's writer thread included) per payload, the median of ``--rounds`` rounds of
``--events`` payloads; CPU time rather than wall time so that other processes on
the machine do not inflate it.

    python bench/contracts.py [--events 50000] [--rounds 5] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE.parent))

import orjson  # noqa: E402

from interlock.drift import DriftConfig, DriftMonitor  # noqa: E402
from interlock.stores import open_store  # noqa: E402
from interlock.testing import FakeClock  # noqa: E402

FIXTURES = HERE.parent / "examples" / "fixtures"


def payloads() -> dict[str, Any]:
    def load(path: str) -> Any:
        return orjson.loads((FIXTURES / path).read_bytes())["payload"]

    order = load("shopify/order-multiple-fulfillments.json")
    big = {**order, "line_items": [dict(order["line_items"][0], id=i) for i in range(40)]}
    return {
        "stripe invoice": load("stripe/invoice-with-nulls.json"),
        "shopify order": order,
        "shopify order, 40 lines": big,
        "hubspot contact": load("hubspot/unicode-name.json"),
    }


def fields(value: Any) -> int:
    if isinstance(value, dict):
        return sum(1 + fields(v) for v in value.values())
    if isinstance(value, list) and value:
        return fields(value[0]) + (fields(value[-1]) if len(value) > 1 else 0)
    return 0


def observe_only(payload: Any, n: int) -> float:
    monitor = DriftMonitor(_NoStore(), clock=FakeClock(), config=DriftConfig(flush_every=1e12))
    monitor._loaded = True
    for _ in range(100):  # the baseline
        monitor.observe("bench", "topic", payload)
    started = time.process_time()
    for _ in range(n):
        monitor.observe("bench", "topic", payload)
    return (time.process_time() - started) / n * 1e6


async def with_flushes(payload: Any, n: int, url: str) -> float:
    store = open_store(url)
    store.ensure_schema()
    clock = FakeClock()
    monitor = DriftMonitor(store, clock=clock, config=DriftConfig(flush_every=1.0))
    for _ in range(100):
        monitor.observe("bench", "topic", payload)
    await monitor.flush()
    step = 1.0 / 2000  # payloads arrive at 2,000/s of clock time: one flush per 2,000
    started = time.process_time()
    for _ in range(n):
        clock.advance(step)
        monitor.observe("bench", "topic", payload)
        if monitor._flushing is not None and not monitor._flushing.done():
            await monitor._flushing  # the flush's own time counts
    await monitor.flush()
    elapsed = time.process_time() - started
    store.close()
    return elapsed / n * 1e6


class _NoStore:
    """Observe-only runs never reach the store."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the store was used ({name})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, payload) in enumerate(payloads().items()):
            alone = [observe_only(payload, args.events) for _ in range(args.rounds)]
            flushed = [
                asyncio.run(with_flushes(payload, args.events, f"sqlite:///{tmp}/b{i}-{r}.db"))
                for r in range(args.rounds)
            ]
            rows.append(
                {
                    "payload": name,
                    "fields": fields(payload),
                    "bytes": len(orjson.dumps(payload)),
                    "observe_us": round(statistics.median(alone), 2),
                    "with_flush_us": round(statistics.median(flushed), 2),
                }
            )
    if args.json:
        print(json.dumps({"name": "contracts", "events": args.events, "rows": rows}))
    else:
        print(f"Drift profile cost per payload (median of {args.rounds} x {args.events:,})")
        header = f"{'payload':<26}{'fields':>8}{'bytes':>8}{'observe µs':>12}{'+flush µs':>11}"
        print(header)
        print("-" * len(header))
        for r in rows:
            print(
                f"{r['payload']:<26}{r['fields']:>8}{r['bytes']:>8,}"
                f"{r['observe_us']:>12.2f}{r['with_flush_us']:>11.2f}"
            )
    worst = max(max(r["observe_us"], r["with_flush_us"]) for r in rows)
    return 0 if worst < 20 else 1


if __name__ == "__main__":
    raise SystemExit(main())
