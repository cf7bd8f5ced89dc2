"""SLO and analytics reads: what the dashboard, /metrics and the alert evaluator cost.

A fresh SQLite store is filled with ``--deliveries`` finished deliveries (one event
and one attempt each) spread evenly over ``--days`` across ``--flows`` flows with a
28-day SLO, written straight into the tables (the write path is not measured here).
Then, for each read, the median CPU time (``time.process_time``) of ``--rounds`` runs:

- ``slo_report`` (the flows declare no business metric) scanning, before any rollup,
  and after the evaluator's per-minute rollups;
- the first rollup of the whole window, and an incremental rollup pass after 30 s;
- ``flow_stats`` over an hour and a day, ``flow_series`` of a day in 1,440 buckets;
- one flow's business metric (p50 of seconds to success) over 28 days: 10,000 samples.

    python bench/slo.py [--deliveries 200000] [--flows 5] [--days 28] [--rounds 5] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from interlock import SLO, BusinessMetric, Contract, Interlock  # noqa: E402
from interlock.observability import flow_series, flow_stats, slo_report  # noqa: E402
from interlock.observability.business import metric_value  # noqa: E402

START = 1_800_000_000.0
WITHIN = 120.0


class Ordered(Contract, event="bench.slo.ordered"):
    n: int


def build(path: Path, flows: int) -> Interlock:
    app = Interlock("bench-slo", f"sqlite:///{path}", durability="fast")
    for i in range(flows):
        app.flow(
            Ordered,
            owner="bench@acme.test",
            name=f"flow{i}",
            slo=SLO(target=0.99, within=WITHIN, window="28d"),
        )(_handler)
    return app


async def _handler(event: Ordered) -> None:
    return None


def fill(path: Path, deliveries: int, flows: int, days: float) -> float:
    """Write the deliveries; return the time just after the last one."""
    step = days * 86400 / deliveries
    conn = sqlite3.connect(path)
    events, rows, attempts = [], [], []
    for i in range(deliveries):
        at = START + i * step
        took = 0.5 + (i * 7919 % 300)  # 0.5 to 300 s: some past the 120 s bound
        status = "dead" if i % 97 == 0 else "succeeded"
        events.append((i + 1, f"evt_{i}", "bench.slo.ordered", 1, "api", "c", at, at, "{}"))
        rows.append((i + 1, i + 1, f"flow{i % flows}", "l", status, 1, at, at + took))
        attempts.append((i + 1, 1, 1, "w", at, at + took, status))
    conn.executemany(
        "INSERT INTO events (seq, id, type, version, source, correlation_id, occurred_at, "
        "received_at, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        events,
    )
    conn.executemany(
        "INSERT INTO deliveries (id, event_seq, flow, lane, status, runs, created_at, "
        "finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    conn.executemany(
        "INSERT INTO attempts (delivery_id, number, chain, worker, started_at, finished_at, "
        "outcome) VALUES (?, ?, ?, ?, ?, ?, ?)",
        sorted(attempts, key=lambda a: a[5]),  # written as attempts end
    )
    conn.commit()
    conn.close()
    return START + days * 86400


def cpu_ms(fn: Callable[[], Any], rounds: int) -> float:
    fn()  # warm the page cache
    times = []
    for _ in range(rounds):
        started = time.process_time()
        fn()
        times.append((time.process_time() - started) * 1000)
    return round(statistics.median(times), 2)


async def measure(deliveries: int, flows: int, days: float, rounds: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "slo.db"
        app = build(path, flows)
        app.store.ensure_schema()
        now = fill(path, deliveries, flows, days)
        store = app.store
        window = 28 * 86400.0
        out: dict[str, float] = {}
        out["slo_report_scanned_ms"] = cpu_ms(lambda: slo_report(app, now), rounds)
        started = time.process_time()
        for i in range(flows):
            while await store.roll_up_slo(f"flow{i}", WITHIN, now=now, keep=window):
                pass
        out["first_rollup_ms"] = round((time.process_time() - started) * 1000, 1)
        out["slo_report_rolled_ms"] = cpu_ms(lambda: slo_report(app, now), rounds)
        started = time.process_time()
        for i in range(flows):
            await store.roll_up_slo(f"flow{i}", WITHIN, now=now + 30, keep=window)
        out["incremental_rollup_ms"] = round((time.process_time() - started) * 1000, 2)
        out["flow_stats_1h_ms"] = cpu_ms(lambda: flow_stats(app, now - 3600, now), rounds)
        out["flow_stats_1d_ms"] = cpu_ms(lambda: flow_stats(app, now - 86400, now), rounds)
        out["flow_series_1d_1440_ms"] = cpu_ms(
            lambda: flow_series(app, "flow0", now - 86400, now, 60), rounds
        )
        metric_28d = BusinessMetric(
            "seconds to success", end="succeeded_at", unit="s", window="28d"
        )
        out["business_metric_28d_ms"] = cpu_ms(
            lambda: metric_value(store, "flow0", metric_28d, now), rounds
        )
        app.close()
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deliveries", type=int, default=200_000)
    parser.add_argument("--flows", type=int, default=5)
    parser.add_argument("--days", type=float, default=28.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    figures = asyncio.run(measure(args.deliveries, args.flows, args.days, args.rounds))
    if args.json:
        print(json.dumps(figures))
        return
    print(f"{args.deliveries:,} deliveries over {args.days:g} days in {args.flows} flows")
    for name, value in figures.items():
        print(f"  {name:28s} {value:>10}")


if __name__ == "__main__":
    main()
