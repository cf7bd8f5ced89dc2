"""interlock on PostgreSQL with 1, 2 and 4 worker processes, and procrastinate, pgqueuer
and DBOS on the same server with the same workload, in the same run.

Workload (bench/throughput.py's, on PostgreSQL): N events over K keys; one flow whose
handler does one checkpointed step; the step (and each peer's job) calls
`common.record_job`, which appends the job id, its enqueue-to-start latency and its finish
time to a file of the worker process; the driver tails those files for every system alike.
Each system gets a database of its own, created for the run and dropped after it.

1. ingest: enqueue N with `--producers` concurrent producers, each enqueue durable before
   it returns; no worker running;
2. drain: start the worker processes on that backlog, time until the last job is done;
3. end-to-end: workers warm, enqueue N again; first enqueue to last job done;
4. latency: an open-loop producer at `--rate`/s; scheduled enqueue time to handler start.

During the end-to-end phase the CPU of PostgreSQL, of the workers and of the producer, and
what the database's active sessions wait on (pg_stat_activity), are sampled: that shows
which of them stops throughput from growing with more workers.

    python bench/postgres.py                         # everything, about 5-8 minutes
    python bench/postgres.py --only interlock --workers 1,2,4 --repeat 3
    python bench/postgres.py --only pgqueuer --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import signal
import statistics
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE / "peers"))

import common  # noqa: E402
import pg_common  # noqa: E402
from interlock import Context, Contract, Interlock  # noqa: E402
from interlock.worker import tune_gc  # noqa: E402


class PgJob(Contract, event="bench.pgjob", version=1):
    phase: str
    n: int
    key: str
    enqueued_at: float


def effect(phase: str, n: int, key: str, enqueued_at: float) -> int:
    common.record_job(phase, n, key, enqueued_at)
    return n


def make_app(url: str) -> Interlock:
    app = Interlock("bench-pg", url)

    @app.flow(PgJob, owner="bench", key="key")
    async def handle(event: PgJob, ctx: Context) -> None:
        await ctx.step("effect", effect, event.phase, event.n, event.key, event.enqueued_at)

    return app


class InterlockSystem:
    name = "interlock"
    guarantees = (
        "event and delivery committed (group commit) before emit returns; lanes: one at a "
        "time per key, in event order; step result checkpointed; outcome and attempt recorded"
    )

    def __init__(self, concurrency: int) -> None:
        self.concurrency = concurrency
        self.config = f"interlock worker, concurrency {concurrency} per process"
        self.app: Interlock | None = None

    async def open(self, url: str) -> None:
        self.app = make_app(url)
        self.app.store  # noqa: B018 - migrate before the timing starts

    async def enqueue(self, phase: str, job_id: int, key: str, enqueued_at: float) -> None:
        assert self.app is not None
        await self.app.emit(PgJob(phase=phase, n=job_id, key=key, enqueued_at=enqueued_at))

    async def close(self) -> None:
        if self.app is not None:
            self.app.close()

    def worker_command(self, url: str) -> list[str]:
        return [sys.executable, __file__, "--worker", url, "--concurrency", str(self.concurrency)]


def run_worker(url: str, concurrency: int) -> None:
    """One worker process, as `interlock worker` runs it."""
    app = make_app(url)
    tune_gc()

    async def main() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await app.worker(concurrency=concurrency).run(stop)

    try:
        asyncio.run(main())
    finally:
        app.close()


def peer(label: str) -> pg_common.PgSystem:
    """The peer systems are imported only when asked for (each is an optional package)."""
    if label in ("procrastinate", "procrastinate-nolock"):
        from procrastinate_pg import ProcrastinateSystem

        return ProcrastinateSystem(ordered=label == "procrastinate")
    if label == "pgqueuer":
        from pgqueuer_pg import PgqueuerSystem

        return PgqueuerSystem()
    if label in ("dbos", "dbos-flat"):
        from dbos_pg import DbosSystem

        return DbosSystem(ordered=label == "dbos")
    raise ValueError(label)


# The ordered variants are the fair comparison (interlock's lanes keep per-key order); the
# unordered ones show what that ordering costs each peer.
PEERS = ("pgqueuer", "dbos", "dbos-flat", "procrastinate", "procrastinate-nolock")


def runs(args: argparse.Namespace) -> list[tuple[str, int]]:
    only = set(args.only.split(",")) if args.only else None
    plan = [("interlock", w) for w in args.workers]
    plan += [(p, args.peer_workers) for p in PEERS]
    return [(label, w) for label, w in plan if only is None or label in only]


def one(label: str, workers: int, args: argparse.Namespace) -> dict[str, Any]:
    system = InterlockSystem(args.concurrency) if label == "interlock" else peer(label)
    try:
        result = pg_common.run_measurement(system, args, workers)
    except Exception as exc:  # a peer that cannot run here is reported, not fatal
        common.log(f"error: {label} x{workers}: {type(exc).__name__}: {exc}")
        return {"name": label, "workers": workers, "skipped": f"{type(exc).__name__}: {exc}"}
    result["label"] = label
    return result


def median_of(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Figures of repeated runs: each number the median, the load of the median e2e run."""
    ok = [r for r in results if "skipped" not in r]
    if not ok:
        return results[-1]
    ok.sort(key=lambda r: r["e2e_events_per_s"])
    out = dict(ok[len(ok) // 2])
    for key, value in out.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[key] = round(statistics.median(r[key] for r in ok), 3)
    out["runs"] = len(ok)
    out["e2e_runs"] = [r["e2e_events_per_s"] for r in ok]
    return out


def fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_tables(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    settings = pg_common.server_settings()
    print(
        f"\n{args.events:,} events over {args.keys} keys, one step per event, PostgreSQL "
        f"{settings['server_version']} (synchronous_commit={settings['synchronous_commit']}) "
        f"on the same machine — {platform.node()}, {platform.machine()}, Python "
        f"{platform.python_version()}; medians of {args.repeat} run(s)"
    )
    ref = next(
        (
            r
            for r in results
            if r.get("label") == "interlock" and r["workers"] == args.peer_workers
            if "skipped" not in r
        ),
        None,
    )
    header = (
        f"{'system':<16}{'workers':>8}{'ingest/s':>10}{'drain/s':>9}{'e2e/s':>9}"
        f"{'p50 ms':>9}{'p99 ms':>9}{'RSS/worker':>11}{'us ÷ peer':>11}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        if "skipped" in r:
            print(f"{r['name']:<16}{r['workers']:>8}  skipped: {r['skipped']}")
            continue
        ratio = "-"
        if ref is not None and r.get("label") != "interlock":
            ratio = f"{ref['e2e_events_per_s'] / r['e2e_events_per_s']:.2f}x"
        print(
            f"{r['name']:<16}{r['workers']:>8}"
            f"{fmt(r['ingest_events_per_s'], ',.0f'):>10}"
            f"{fmt(r['drain_events_per_s'], ',.0f'):>9}"
            f"{fmt(r['e2e_events_per_s'], ',.0f'):>9}"
            f"{fmt(r['p50_ms'], '.2f'):>9}{fmt(r['p99_ms'], '.2f'):>9}"
            f"{fmt(r['peak_rss_mb_per_worker'], '.0f'):>9}MB{ratio:>11}"
        )
    print(
        f"'us ÷ peer': interlock with {args.peer_workers} worker process(es), end-to-end "
        "events/s, divided by the peer's (same worker count)."
    )
    capacity = results[0].get("e2e_load", {}).get("machine_cpu_capacity_pct", "?")
    for phase, title, rate in (
        ("drain", "draining the backlog (workers and PostgreSQL only)", "drain_events_per_s"),
        ("e2e", "the end-to-end phase", "e2e_events_per_s"),
    ):
        print(f"\nDuring {title} (CPU in % of one core; the machine has {capacity} %):")
        header = (
            f"{'system':<16}{'workers':>8}{phase + '/s':>9}{'postgres':>10}{'workers':>9}"
            f"{'producer':>10}{'machine':>9}{'active':>8}  top waits of active sessions"
        )
        print(header)
        print("-" * len(header))
        for r in results:
            load = r.get(f"{phase}_load")
            if not load:
                continue
            waits = ", ".join(f"{k} {v}" for k, v in load["top_waits"][:3])
            print(
                f"{r['name']:<16}{r['workers']:>8}{r[rate]:>9,.0f}"
                f"{load['postgres_cpu_pct']:>10}{load['workers_cpu_pct']:>9}"
                f"{load['producer_cpu_pct']:>10}{load['machine_cpu_pct']:>9}"
                f"{load['active_sessions_avg']:>8}  {waits}"
            )
    print("'active': sessions of the benchmark's database in state active, on average.")
    for r in results:
        if "guarantees" in r:
            print(f"  {r['name']}: {r['config']}; {r['guarantees']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--keys", type=int, default=500)
    parser.add_argument("--workers", default="1,2,4", help="interlock worker process counts")
    parser.add_argument("--peer-workers", type=int, default=2, help="peers' worker processes")
    parser.add_argument("--concurrency", type=int, default=256, help="per interlock worker")
    parser.add_argument("--producers", type=int, default=64, help="concurrent enqueues")
    parser.add_argument("--rate", type=float, default=1000.0, help="latency phase: jobs/s")
    parser.add_argument("--latency-jobs", type=int, default=3000)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per phase")
    parser.add_argument("--repeat", type=int, default=1, help="runs per row (medians shown)")
    parser.add_argument("--only", help=f"comma-separated: interlock,{','.join(PEERS)}")
    parser.add_argument("--json", action="store_true", help="print one JSON list")
    parser.add_argument("--json-out", type=Path, help="also write the results here")
    parser.add_argument("--worker", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        run_worker(args.worker, args.concurrency)
        return 0
    args.workers = [int(w) for w in args.workers.split(",")]
    why = pg_common.postgres_available()
    if why:
        common.log(f"error: {why}")
        return 1
    results = []
    for label, workers in runs(args):
        rounds = [one(label, workers, args) for _ in range(args.repeat)]
        results.append(median_of(rounds))
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=2))
    if args.json:
        print(json.dumps(results))
    else:
        print_tables(results, args)
    ours = [r for r in results if r.get("label") == "interlock"]
    return 1 if any("skipped" in r for r in ours) else 0


if __name__ == "__main__":
    raise SystemExit(main())
