"""Webhook ingress: verified, durably acknowledged requests/s and latency on loopback.

The server is the real gateway, started with the real CLI in a process of its own
(``interlock gateway ingress:app``; with ``--layouts run`` also ``interlock run
ingress:app``, gateway and worker in one process) against a fresh SQLite file in the
default ``durable`` profile (``synchronous=FULL``). The app is this module's ``app``: one
Standard Webhooks source (HMAC-SHA256, ``whsec_`` secret from
``INTERLOCK_SECRET_BENCH_WEBHOOK_SECRET``) whose ``order.placed`` payloads map to the
``OrderPlaced`` contract, and one flow subscribed to it, so that each accepted request stores
one event and one delivery before it is answered with 202.

Load comes from ``--clients`` other processes (bench/ingress_load.py), over keep-alive
HTTP/1.1 connections on 127.0.0.1; each request is signed correctly and has a webhook id of
its own. Per layout, on a fresh database:

1. saturation: ``--connections`` closed-loop connections for ``--warmup`` + ``--duration``
   s; figure: 202 responses per second in the measured window.
2. fixed rate: open loop at ``--rate`` requests/s for ``--rate-duration`` s; latency from
   each request's scheduled send time to its response (p50/p99/p99.9/max).

Then the server is stopped and the database is read: the events stored must equal the 202
responses, each with one delivery. Also reported: non-202 answers, the server's peak RSS and
CPU, the load processes' CPU (a load process near 100 % would be the bottleneck).

    python bench/ingress.py [--layouts gateway,run] [--clients 1] [--connections 64] [--json]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import math
import os
import platform
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE))

from ingress_load import SECRET_ENV, SOURCE, TOPIC  # noqa: E402
from interlock import PII, Context, Contract, Interlock  # noqa: E402

# -- the app the server runs (`interlock gateway ingress:app`, from bench/) ---------------------

SECRET_NAME = "bench-webhook-secret"  # resolved from $INTERLOCK_SECRET_BENCH_WEBHOOK_SECRET


class OrderPlaced(Contract, event="bench.order_placed", version=1, subject="order_id"):
    order_id: str
    account_id: str
    amount_cents: int
    email: PII[str]


app = Interlock("bench-ingress")  # the store: $INTERLOCK_DATABASE_URL
hooks = app.webhook(SOURCE, verify="standard-webhooks", secret=SECRET_NAME)


@hooks.maps(TOPIC)
def order_placed(body: dict[str, Any]) -> OrderPlaced:
    data = body["data"]
    return OrderPlaced(
        order_id=data["order_id"],
        account_id=data["account_id"],
        amount_cents=data["amount_cents"],
        email=data["email"],
    )


@app.flow(OrderPlaced, owner="bench@interlock.test", key="account_id")
async def fulfil(event: OrderPlaced, ctx: Context) -> None:
    """Subscribed so that every event also stores a delivery; does no work when run."""


# -- the driver ------------------------------------------------------------------------------

LOAD = HERE / "ingress_load.py"
LAYOUT_ARGS = {"gateway": ["gateway"], "run": ["run"]}
LAYOUT_NAMES = {
    "gateway": "interlock gateway",
    "run": "interlock run (gateway + worker)",
}
TARGET_RPS = 3000.0
TARGET_P99_MS = 30.0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def machine() -> dict[str, Any]:
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def revision() -> str | None:
    """The git commit measured, with ``+dirty`` when src/ has uncommitted changes."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=HERE.parent,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"],
            cwd=HERE.parent,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit + ("+dirty" if dirty else "")


def interlock_cli() -> list[str]:
    """The venv's ``interlock`` console script (the real CLI), else ``python -m interlock``."""
    script = Path(sys.executable).parent / "interlock"
    if script.exists():
        return [str(script)]
    found = shutil.which("interlock")
    return [found] if found else [sys.executable, "-m", "interlock"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """The interlock CLI serving this module's app, in a process of its own."""

    def __init__(self, layout: str, db: Path, env: dict[str, str], log_path: Path) -> None:
        self.layout = layout
        self.db = db
        self.port = free_port()
        self.log_path = log_path
        cmd = [*interlock_cli(), *LAYOUT_ARGS[layout], "ingress:app", "--port", str(self.port)]
        log(f"[{layout}] server: {' '.join(cmd)}")
        with log_path.open("ab") as out:
            self.proc = subprocess.Popen(
                cmd, cwd=HERE, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out
            )
        import psutil

        self.ps = psutil.Process(self.proc.pid)
        self.peak_rss = 0
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample_rss, daemon=True)

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.port}/readyz"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log_tail()}")
            with (
                contextlib.suppress(OSError, urllib.error.URLError),
                urllib.request.urlopen(url, timeout=1.0) as response,
            ):
                if response.status == 200:
                    self._sampler.start()
                    return
            time.sleep(0.05)
        raise RuntimeError(f"server not ready after {timeout:g} s:\n{self.log_tail()}")

    def _sample_rss(self) -> None:
        while not self._stop.is_set():
            self.sample_rss()
            self._stop.wait(0.05)

    def sample_rss(self) -> None:
        with contextlib.suppress(Exception):
            self.peak_rss = max(self.peak_rss, self.ps.memory_info().rss)

    def cpu_s(self) -> float:
        times = self.ps.cpu_times()
        return float(times.user + times.system)

    def stop(self) -> None:
        self.sample_rss()
        self._stop.set()
        if self._sampler.is_alive():
            self._sampler.join()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


class Cpu:
    """Machine-wide busy CPU time, and that of some processes, from construction on."""

    def __init__(self, pids: list[int]) -> None:
        import psutil

        self.procs = [psutil.Process(pid) for pid in pids]
        self.busy0 = self._busy()
        self.own0 = self._own()

    @staticmethod
    def _busy() -> float:
        import psutil

        t = psutil.cpu_times()
        return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))

    def _own(self) -> float:
        total = 0.0
        for proc in self.procs:
            with contextlib.suppress(Exception):
                times = proc.cpu_times()
                total += times.user + times.system
        return total

    def other(self, wall: float, server_cpu: float) -> float:
        """CPU (in cores) used by processes other than the server and these, over ``wall``."""
        busy = self._busy() - self.busy0
        return max(0.0, busy - server_cpu - (self._own() - self.own0)) / max(wall, 1e-9)


def split(total: float, parts: int, index: int) -> int:
    return int(total // parts + (1 if index < total % parts else 0))


def run_load(
    phase: str,
    server: Server,
    args: argparse.Namespace,
    env: dict[str, str],
    tag: str,
    profile: Path | None = None,
) -> tuple[list[dict[str, Any]], float, float]:
    """Run one phase from ``args.clients`` load processes; returns their results, the
    server's CPU use (fraction of one core) over the measured window, and the phase's start."""
    lead = 1.0  # time for the load processes to start and connect
    start = time.monotonic() + lead
    warmup = args.warmup if phase == "saturation" else 0.0
    duration = args.duration if phase == "saturation" else args.rate_duration
    procs = []
    for i in range(args.clients):
        # At a fixed rate, process i's schedule is offset by i requests: they interleave.
        begin = start + (i / args.rate if phase == "rate" else 0.0)
        cmd = [sys.executable, str(LOAD), "--port", str(server.port), "--phase", phase]
        cmd += ["--start", repr(begin), "--warmup", str(warmup), "--duration", str(duration)]
        cmd += ["--index", str(i), "--tag", tag, "--keys", str(args.keys)]
        if phase == "saturation":
            cmd += ["--connections", str(split(args.connections, args.clients, i))]
        else:
            cmd += ["--connections", str(split(args.rate_connections, args.clients, i))]
            cmd += ["--rate", str(args.rate / args.clients)]
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True))
    spy = None
    if profile is not None:
        spy = start_py_spy(server, profile, lead + warmup + duration)
    # CPU over the measured window (after the warm-up): the server's, the load processes',
    # and everything else's on the machine (another busy process skews the figures).
    time.sleep(max(0.0, start + warmup - time.monotonic()))
    load = Cpu([p.pid for p in procs])
    cpu0, t0 = server.cpu_s(), time.monotonic()
    time.sleep(max(0.0, start + warmup + duration - time.monotonic()))
    cpu1, t1 = server.cpu_s(), time.monotonic()
    other = load.other(t1 - t0, cpu1 - cpu0)
    if other > 0.25:
        log(
            f"[{server.layout}] warning: other processes used {other * 100:.0f} % of a core "
            "during the measured window: the figures are skewed"
        )
    results = []
    try:
        for proc in procs:
            out, _ = proc.communicate(timeout=args.timeout + duration)
            if proc.returncode != 0:
                raise RuntimeError(f"load process exited with {proc.returncode}")
            results.append(json.loads(out.strip().splitlines()[-1]))
    except subprocess.TimeoutExpired:
        raise RuntimeError(
            f"the {phase} phase did not finish: the server stopped answering"
        ) from None
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    if spy is not None:
        spy.wait(timeout=60)
    for r in results:
        r["other_cpu"] = other
    return results, (cpu1 - cpu0) / max(t1 - t0, 1e-9), start


def start_py_spy(server: Server, path: Path, seconds: float) -> subprocess.Popen[bytes]:
    exe = Path(sys.executable).parent / "py-spy"
    spy = str(exe) if exe.exists() else shutil.which("py-spy")
    if spy is None:
        raise RuntimeError("--py-spy needs py-spy (pip install py-spy)")
    fmt = {".json": "speedscope", ".svg": "flamegraph"}.get(path.suffix, "raw")
    cmd = [spy, "record", "--pid", str(server.proc.pid), "--rate", "200"]
    cmd += ["--format", fmt, "--output", str(path), "--duration", str(math.ceil(seconds))]
    log(f"[{server.layout}] profiling: {' '.join(cmd)}")
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def unfinished(db: Path) -> int:
    conn = sqlite3.connect(db, timeout=30)
    try:
        (n,) = conn.execute(
            "SELECT count(*) FROM deliveries WHERE status NOT IN ('succeeded', 'dead', 'skipped')"
        ).fetchone()
        return int(n)
    finally:
        conn.close()


def wait_drained(db: Path, timeout: float) -> float:
    """Wait until the worker has finished every delivery; returns the seconds it took."""
    start = time.monotonic()
    while unfinished(db) and time.monotonic() - start < timeout:
        time.sleep(0.1)
    return time.monotonic() - start


def stored(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(db, timeout=30)
    try:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT idempotency_key) FROM events WHERE source = ?",
            (SOURCE,),
        ).fetchone()
        (deliveries,) = conn.execute("SELECT count(*) FROM deliveries").fetchone()
        (succeeded,) = conn.execute(
            "SELECT count(*) FROM deliveries WHERE status = 'succeeded'"
        ).fetchone()
    finally:
        conn.close()
    return {
        "events": int(row[0]),
        "distinct_webhook_ids": int(row[1]),
        "deliveries": int(deliveries),
        "deliveries_succeeded": int(succeeded),
    }


def merge(results: list[dict[str, Any]]) -> dict[str, Any]:
    statuses: dict[str, int] = {}
    for r in results:
        for code, n in r["statuses"].items():
            statuses[code] = statuses.get(code, 0) + n
    latencies = [x for r in results for x in r["latencies_s"]]
    return {
        "sent": sum(r["sent"] for r in results),
        "accepted": sum(r["accepted"] for r in results),
        "ok_in_window": sum(r["ok_in_window"] for r in results),
        "statuses": statuses,
        "non_202": sum(n for code, n in statuses.items() if code != "202"),
        "errors": sum(r["errors"] for r in results),
        "client_cpu_s": sum(r["cpu_s"] for r in results),
        "last_done": max(r["last_done"] for r in results),
        "other_cpu": results[0]["other_cpu"],
        "latencies_s": latencies,
    }


def ms(values: list[float], pct: float) -> float:
    return round(percentile(values, pct) * 1000, 2)


def measure(layout: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    db = workdir / f"{layout}.db"
    env = dict(os.environ)
    env.pop("INTERLOCK_DURABILITY", None)  # the default profile: durable (synchronous=FULL)
    env.pop("INTERLOCK_APP", None)
    env["INTERLOCK_DATABASE_URL"] = f"sqlite:///{db}"
    # The server runs the interlock next to this script (as this script imports it).
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(HERE.parent / "src"), env.get("PYTHONPATH")) if p
    )
    env[SECRET_ENV] = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    tag = secrets.token_hex(3)
    server = Server(layout, db, env, workdir / f"{layout}.log")
    try:
        server.wait_ready()
        log(
            f"[{layout}] saturation: {args.connections} connections from {args.clients} "
            f"process(es), {args.warmup:g} s warm-up + {args.duration:g} s"
        )
        profile = None
        if args.py_spy is not None:
            profile = args.py_spy.with_name(f"{args.py_spy.stem}-{layout}{args.py_spy.suffix}")
        results, sat_cpu, _ = run_load("saturation", server, args, env, tag + "s", profile)
        sat = merge(results)
        sat_wall = args.warmup + args.duration + 1.0
        drain_s = None
        if layout == "run":
            log(f"[{layout}] waiting for the worker to finish the backlog")
            drain_s = round(wait_drained(db, args.timeout), 2)
        log(f"[{layout}] fixed rate: {args.rate:g}/s for {args.rate_duration:g} s")
        results, rate_cpu, rate_start = run_load("rate", server, args, env, tag + "r")
        fixed = merge(results)
        # Requests/s actually served: below --rate when the backlog grew during the phase.
        rate_elapsed = max(fixed["last_done"] - rate_start, args.rate_duration)
        if layout == "run":
            wait_drained(db, args.timeout)
    finally:
        server.stop()
    db_counts = stored(db)
    accepted = sat["accepted"] + fixed["accepted"]
    lat = fixed["latencies_s"]
    return {
        "layout": layout,
        "server": LAYOUT_NAMES[layout],
        "saturation_rps": round(sat["ok_in_window"] / args.duration, 1),
        "saturation_p50_ms": ms(sat["latencies_s"], 50),
        "saturation_p99_ms": ms(sat["latencies_s"], 99),
        "saturation_server_cpu_pct": round(sat_cpu * 100, 1),
        "saturation_client_cpu_pct": round(sat["client_cpu_s"] / sat_wall * 100, 1),
        "drain_after_saturation_s": drain_s,
        "rate": args.rate,
        "rate_achieved_rps": round(fixed["ok_in_window"] / rate_elapsed, 1),
        "p50_ms": ms(lat, 50),
        "p99_ms": ms(lat, 99),
        "p999_ms": ms(lat, 99.9),
        "max_ms": round(max(lat, default=math.nan) * 1000, 2),
        "rate_server_cpu_pct": round(rate_cpu * 100, 1),
        "peak_rss_mb": round(server.peak_rss / 2**20, 1),
        "other_cpu_pct": round(max(sat["other_cpu"], fixed["other_cpu"]) * 100, 1),
        "accepted": accepted,
        "non_202": {
            k: sat["statuses"].get(k, 0) + fixed["statuses"].get(k, 0)
            for k in sorted(set(sat["statuses"]) | set(fixed["statuses"]))
            if k != "202"
        },
        "errors": sat["errors"] + fixed["errors"],
        "stored": db_counts,
        "stored_matches_accepted": (
            db_counts["events"] == accepted
            and db_counts["distinct_webhook_ids"] == accepted
            and db_counts["deliveries"] == accepted
        ),
    }


def fmt(value: Any, spec: str = ",.0f") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, spec)


def print_table(result: dict[str, Any]) -> None:
    runs: list[dict[str, Any]] = result["layouts"]
    m = result["machine"]
    print(
        f"\nWebhook ingress: Standard Webhooks (HMAC-SHA256) verified, SQLite durable "
        f"(synchronous=FULL), {result['clients']} load process(es) on loopback"
    )
    print(
        f"machine: {m['cpus']} CPUs, {m['cpu_model']}, Python {m['python']}, {m['host']}; "
        f"interlock {result['revision'] or '(no git)'}"
    )
    rows: list[tuple[str, str, str]] = [
        (f"saturation ({result['connections']} connections): 202/s", "saturation_rps", ",.0f"),
        ("  latency p50 ms", "saturation_p50_ms", ".2f"),
        ("  latency p99 ms", "saturation_p99_ms", ".2f"),
        ("  server CPU, % of one core", "saturation_server_cpu_pct", ".0f"),
        ("  load process(es) CPU, % of one core", "saturation_client_cpu_pct", ".0f"),
        ("  worker drain afterwards, s", "drain_after_saturation_s", ".1f"),
        (f"fixed rate {result['rate']:,.0f}/s: achieved 202/s", "rate_achieved_rps", ",.0f"),
        ("  latency p50 ms (from scheduled send)", "p50_ms", ".2f"),
        ("  latency p99 ms", "p99_ms", ".2f"),
        ("  latency p99.9 ms", "p999_ms", ".2f"),
        ("  latency max ms", "max_ms", ".2f"),
        ("  server CPU, % of one core", "rate_server_cpu_pct", ".0f"),
        ("server peak RSS MB", "peak_rss_mb", ".0f"),
        ("other processes' CPU, % of one core (max)", "other_cpu_pct", ".0f"),
        ("202 responses (all phases)", "accepted", ","),
    ]
    width = 44
    header = f"{'':<{width}}" + "".join(f"{r['server'][:34]:>36}" for r in runs)
    print(header)
    print("-" * len(header))
    for label, key, spec in rows:
        print(f"{label:<{width}}" + "".join(f"{fmt(r.get(key), spec):>36}" for r in runs))
    cells = []
    for r in runs:
        bad = sum(r["non_202"].values()) + r["errors"]
        cells.append(f"{bad:,}" + (f" {r['non_202']}" if r["non_202"] else ""))
    print(
        f"{'non-202 responses + connection errors':<{width}}" + "".join(f"{c:>36}" for c in cells)
    )
    cells = [
        f"{r['stored']['events']:,} / {r['stored']['deliveries']:,} "
        + ("ok" if r["stored_matches_accepted"] else "MISMATCH")
        for r in runs
    ]
    print(f"{'events / deliveries stored = 202s':<{width}}" + "".join(f"{c:>36}" for c in cells))
    head = runs[0]
    print(
        f"\ntargets ({head['server']}): >= {TARGET_RPS:,.0f} verified 202/s at saturation: "
        f"{'met' if head['saturation_rps'] >= TARGET_RPS else 'NOT met'}; "
        f"p99 < {TARGET_P99_MS:g} ms at {result['rate']:,.0f}/s: "
        f"{'met' if head['p99_ms'] < TARGET_P99_MS else 'NOT met'}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Webhook ingress benchmark: the real gateway (uvicorn, own process) with "
        "signature verification and durable acknowledgement, loaded from other processes.",
    )
    parser.add_argument(
        "--layouts",
        default="gateway,run",
        help="comma-separated: gateway (`interlock gateway`), run (`interlock run`: gateway + "
        "worker in one process); the first is the headline",
    )
    parser.add_argument("--clients", type=int, default=1, help="load-generating processes")
    parser.add_argument("--connections", type=int, default=256, help="saturation: connections")
    parser.add_argument("--warmup", type=float, default=1.0, help="saturation: unmeasured s")
    parser.add_argument("--duration", type=float, default=10.0, help="saturation: measured s")
    parser.add_argument("--rate", type=float, default=1000.0, help="fixed-rate phase: requests/s")
    parser.add_argument("--rate-duration", type=float, default=10.0, help="fixed-rate phase: s")
    parser.add_argument(
        "--rate-connections", type=int, default=64, help="fixed-rate phase: connection pool"
    )
    parser.add_argument("--keys", type=int, default=500, help="distinct ordering keys (lanes)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds allowed to drain")
    parser.add_argument(
        "--py-spy",
        type=Path,
        metavar="FILE",
        help="record the server with py-spy during saturation (FILE-<layout>.{txt,svg,json})",
    )
    parser.add_argument("--json", action="store_true", help="print only one JSON object")
    args = parser.parse_args()
    layouts = [x.strip() for x in args.layouts.split(",") if x.strip()]
    unknown = [x for x in layouts if x not in LAYOUT_ARGS]
    if unknown or not layouts:
        parser.error(f"--layouts: choose from {', '.join(LAYOUT_ARGS)}")
    if min(args.clients, args.connections, args.rate_connections) < 1 or args.rate <= 0:
        parser.error("--clients, --connections, --rate-connections and --rate must be positive")

    workdir = Path(tempfile.mkdtemp(prefix="interlock-ingress-"))
    try:
        runs = [measure(layout, args, workdir) for layout in layouts]
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        log(f"error: ingress: {exc}")
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    head = runs[0]
    result: dict[str, Any] = {
        "name": f"interlock webhook ingress ({head['server']})",
        "machine": machine(),
        "revision": revision(),
        "clients": args.clients,
        "connections": args.connections,
        "rate": args.rate,
        "saturation_rps": head["saturation_rps"],
        "p50_ms": head["p50_ms"],
        "p99_ms": head["p99_ms"],
        "peak_rss_mb": head["peak_rss_mb"],
        "targets_met": head["saturation_rps"] >= TARGET_RPS and head["p99_ms"] < TARGET_P99_MS,
        "layouts": runs,
    }
    if not args.json:
        print_table(result)
    print(json.dumps(result), flush=True)
    bad = [r["layout"] for r in runs if not r["stored_matches_accepted"]]
    if bad:
        log(f"error: ingress: stored events do not match the 202 responses ({', '.join(bad)})")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
