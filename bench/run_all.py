"""`make bench`: interlock and its peers on the same workload, in the same run.

Runs bench/throughput.py (interlock) and each peer script under bench/peers/
with --json, then prints one table with every figure and interlock's ratio to
each peer. Peers that cannot run here (Redis down, package missing) are
reported as skipped with the reason; interlock's own runs must succeed.
Then runs bench/ingress.py (verified webhook ingress through the real gateway,
load from another process), bench/connectors.py (guardrail cost per vendor
call), bench/contracts.py (drift profile cost per webhook payload) and bench/postgres.py (interlock on PostgreSQL with 1, 2 and 4 workers
against procrastinate, pgqueuer and DBOS), each printing its own table.

    python bench/run_all.py [--events 20000] [--keys 500] [--only interlock,celery,ingress,connectors,contracts,postgres]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

RUNS: list[tuple[str, list[str]]] = [
    ("interlock", ["throughput.py"]),
    ("interlock-2proc", ["throughput.py", "--hybrid"]),
    ("interlock-split", ["throughput.py", "--split"]),
    ("interlock-fast", ["throughput.py", "--durability", "fast"]),
    ("huey-redis", ["peers/huey_bench.py", "--backend", "redis"]),
    ("huey-sqlite", ["peers/huey_bench.py", "--backend", "sqlite"]),
    ("dramatiq", ["peers/dramatiq_bench.py"]),
    ("celery", ["peers/celery_bench.py"]),
]
# Not the events/keys workload: their own figures, their own table.
INGRESS_RUNS: list[tuple[str, list[str]]] = [
    ("ingress", ["ingress.py"]),
]


def run_one(
    label: str, argv: list[str], events: int | None = None, keys: int | None = None
) -> dict[str, Any]:
    cmd = [sys.executable, str(HERE / argv[0]), *argv[1:]]
    if events is not None:
        cmd += ["--events", str(events)]
    if keys is not None:
        cmd += ["--keys", str(keys)]
    cmd += ["--json"]
    print(f"· {label}: {' '.join(cmd[1:])}", flush=True)
    started = time.monotonic()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=HERE.parent)
    except subprocess.TimeoutExpired:
        return {"name": label, "skipped": "timed out after 900 s"}
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"name": label, "skipped": " | ".join(tail) or f"exit {proc.returncode}"}
    lines = [line for line in proc.stdout.strip().splitlines() if line.startswith("{")]
    if not lines:
        return {"name": label, "skipped": "printed no JSON result"}
    result: dict[str, Any] = json.loads(lines[-1])
    result["label"] = label
    result["seconds"] = round(time.monotonic() - started, 1)
    return result


def fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_ingress(results: list[dict[str, Any]]) -> None:
    """The webhook-ingress figures, one row per server layout measured."""
    print("\nWebhook ingress (bench/ingress.py): signed Standard Webhooks requests from a")
    print("separate load process on loopback; 202 only after the event and its delivery are")
    print("committed with synchronous=FULL. 202/s: closed loop at saturation; latency: open")
    print("loop at a fixed rate ('offered'; 'served' is what the server kept up with), from")
    print("each request's scheduled send time. 'stored': events and deliveries in the")
    print("database equal the 202s.")
    header = (
        f"{'server':<34}{'202/s':>8}{'offered':>9}{'served':>8}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'max ms':>9}"
        f"{'RSS MB':>8}{'non-202':>9}{'stored':>8}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        if "skipped" in r:
            print(f"{r['name']:<34}skipped: {r['skipped']}")
            continue
        for layout in r.get("layouts", []):
            bad = sum(layout["non_202"].values()) + layout["errors"]
            print(
                f"{layout['server'][:33]:<34}"
                f"{fmt(layout.get('saturation_rps'), ',.0f'):>8}"
                f"{fmt(layout.get('rate'), ',.0f'):>9}"
                f"{fmt(layout.get('rate_achieved_rps'), ',.0f'):>8}"
                f"{fmt(layout.get('p50_ms'), '.2f'):>9}"
                f"{fmt(layout.get('p99_ms'), '.2f'):>9}"
                f"{fmt(layout.get('max_ms'), '.2f'):>9}"
                f"{fmt(layout.get('peak_rss_mb'), '.0f'):>8}"
                f"{bad:>9,}"
                f"{'ok' if layout['stored_matches_accepted'] else 'DIFFERS':>8}"
            )
        if r.get("layouts") and max(x["other_cpu_pct"] for x in r["layouts"]) > 25:
            print("(other processes were busy during this run: the figures are skewed)")


def main() -> int:
    parser = argparse.ArgumentParser(description="interlock vs peers on one workload")
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--keys", type=int, default=500)
    parser.add_argument("--only", help="comma-separated labels to run")
    parser.add_argument("--json-out", type=Path, help="also write all results to this file")
    args = parser.parse_args()
    only = set(args.only.split(",")) if args.only else None
    results = [
        run_one(label, argv, args.events, args.keys)
        for label, argv in RUNS
        if only is None or label in only
    ]
    ingress = [
        run_one(label, argv) for label, argv in INGRESS_RUNS if only is None or label in only
    ]
    ours = next((r for r in results if r.get("label") == "interlock"), None)
    if results:
        print()
        print(
            f"{args.events:,} events over {args.keys} keys, one step per event — "
            f"{platform.node()}, {platform.processor() or platform.machine()}, Python "
            f"{platform.python_version()}"
        )
        header = (
            f"{'system':<34}{'ingest/s':>10}{'e2e/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'RSS MB':>9}"
        )
        print(header + f"{'e2e vs us':>11}")
        print("-" * (len(header) + 11))
        for r in results:
            if "skipped" in r:
                print(f"{r['name']:<34}skipped: {r['skipped']}")
                continue
            ratio = "-"
            if ours and "skipped" not in ours and r is not ours and r.get("e2e_events_per_s"):
                ratio = f"{ours['e2e_events_per_s'] / r['e2e_events_per_s']:.2f}x"
            print(
                f"{r.get('name', r['label'])[:33]:<34}"
                f"{fmt(r.get('ingest_events_per_s'), ',.0f'):>10}"
                f"{fmt(r.get('e2e_events_per_s'), ',.0f'):>10}"
                f"{fmt(r.get('p50_ms'), '.2f'):>9}"
                f"{fmt(r.get('p99_ms'), '.2f'):>9}"
                f"{fmt(r.get('peak_rss_mb'), '.0f'):>9}"
                f"{ratio:>11}"
            )
        print("\n'e2e vs us' is interlock (durable) end-to-end events/s divided by the peer's.")
    if ingress:
        print_ingress(ingress)
    if args.json_out:
        args.json_out.write_text(json.dumps(results + ingress, indent=2))
    failed = (ours is not None and "skipped" in ours) or any("skipped" in r for r in ingress)
    if only is None or "connectors" in only:
        # Guardrail overhead per vendor call and events/s through a calling flow: its own table.
        print("\nConnectors (bench/connectors.py):", flush=True)
        code = subprocess.run([sys.executable, str(HERE / "connectors.py")], check=False).returncode
        failed = failed or code != 0
    if only is None or "contracts" in only:
        # CPU per webhook payload of the drift shape profile (target: under 20 µs).
        print("\nDrift profiling (bench/contracts.py):", flush=True)
        code = subprocess.run([sys.executable, str(HERE / "contracts.py")], check=False).returncode
        failed = failed or code != 0
    if only is None or "postgres" in only:
        # interlock on PostgreSQL with 1, 2, 4 workers vs procrastinate, pgqueuer, DBOS.
        print("\nPostgreSQL (bench/postgres.py):", flush=True)
        code = subprocess.run([sys.executable, str(HERE / "postgres.py")], check=False).returncode
        failed = failed or code != 0
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
