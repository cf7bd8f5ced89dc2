"""Connectors: what the guardrails cost per call, and events/s through a flow that calls a vendor.

The vendor is the sandbox's generic simulator (``GenericSimulator``, its rate limit lifted),
served by uvicorn in a process of its own on 127.0.0.1, so that it does not share this
process's CPU. Every variant makes the same call, ``POST /v1/things`` with a small JSON body,
over kept-alive HTTP/1.1.

1. Per-call overhead, sequential (one call at a time, ``--calls`` per variant, in
   interleaved rounds to spread noise): a bare ``httpx.AsyncClient`` call; an
   ``HttpConnector`` on its own (limiter and breaker kept in memory); and an
   ``HttpConnector`` registered with an app on a SQLite store (limiter permits and breaker
   state shared through the store, as between worker processes). The overhead is the
   difference of mean latencies against the bare call.
2. The same three with ``--concurrency`` callers at once (calls/s), where one store lease
   serves a whole wave of callers.
3. The guardrails alone: the same three sequentially against ``httpx.MockTransport`` (no
   network, no server), where the vendor's noise cannot hide the difference.
4. Events/s through a worker: ``--events`` events emitted up front (``emit_many``), one flow
   per event making one call, until all deliveries succeeded — with the connector (limiter
   and breaker on, store-backed) and with a bare httpx call, on fresh ``durable`` SQLite.

The limiter's rate is set far above what the machine reaches (it is exercised, not binding).

    python bench/connectors.py [--calls 3000] [--concurrency 8] [--events 5000] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

import httpx  # noqa: E402

from interlock import Context, Contract, Interlock  # noqa: E402
from interlock.connectors import ApiKey, HttpConnector, Rate, allow_egress  # noqa: E402
from interlock.testing import drain  # noqa: E402

SIMULATOR = """
import sys, threading
from interlock.sandbox import GenericSimulator, run
with run((GenericSimulator(per_minute=10**9),), port_base=int(sys.argv[1]) - 5):
    print("ready", flush=True)
    threading.Event().wait()
"""
BODY = {"name": "bench", "tier": "gold"}
HEADERS = {"X-API-Key": "sandbox-api-key"}
RATE = Rate(1_000_000, per="1s")


class Placed(Contract, event="bench.placed", subject="ref"):
    ref: str


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_simulator() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(HERE.parent / "src")}
    proc = subprocess.Popen(
        [sys.executable, "-c", SIMULATOR, str(port)], env=env, stdout=subprocess.PIPE
    )
    assert proc.stdout is not None
    proc.stdout.readline()
    url = f"http://127.0.0.1:{port}"
    urllib.request.urlopen(url + "/_sandbox/state").read()
    return proc, url


Call = Callable[[], Awaitable[Any]]


async def sequential(calls: dict[str, Call], n: int, rounds: int = 6) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for call in calls.values():  # warm up: connections, leases, token caches
        for _ in range(100):
            await call()
    for _ in range(rounds):
        for name, call in calls.items():
            for _ in range(n // rounds):
                started = time.perf_counter()
                await call()
                samples[name].append(time.perf_counter() - started)
    return samples


async def concurrent(call: Call, n: int, concurrency: int) -> float:
    left = n

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await call()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return n / (time.perf_counter() - started)


async def per_call(url: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    bare = httpx.AsyncClient(base_url=url, headers=HEADERS)
    alone = HttpConnector("alone", base_url=url, auth=ApiKey(secret="bench-key"), rate=RATE)
    app = Interlock("bench", f"sqlite:///{tmp / 'calls.db'}")
    shared = app.connector(
        HttpConnector("shared", base_url=url, auth=ApiKey(secret="bench-key"), rate=RATE)
    )
    calls: dict[str, Call] = {
        "bare httpx": lambda: bare.post("/v1/things", json=BODY),
        "connector, in memory": lambda: alone.post("/v1/things", BODY),
        "connector, store-backed": lambda: shared.post("/v1/things", BODY),
    }
    samples = await sequential(calls, args.calls)
    shared_limiter = next(iter(shared.guards.limiters.get().values()))
    sequential_leases = shared_limiter.leases
    means = {name: statistics.fmean(s) for name, s in samples.items()}
    medians = {name: statistics.median(s) for name, s in samples.items()}
    leases_before = shared_limiter.leases
    throughput = {
        name: await concurrent(call, args.calls, args.concurrency) for name, call in calls.items()
    }
    leases = shared_limiter.leases - leases_before
    await bare.aclose()
    await alone.aclose()
    await shared.aclose()
    app.close()
    return {
        "mean_us": {k: v * 1e6 for k, v in means.items()},
        "median_us": {k: v * 1e6 for k, v in medians.items()},
        "overhead_us": {k: (means[k] - means["bare httpx"]) * 1e6 for k in means},
        "concurrent_calls_per_s": throughput,
        "store_leases_per_call_sequential": sequential_leases / (args.calls + 100),
        "store_leases_per_call_concurrent": leases / args.calls,
    }


def register_flow(app: Interlock, client: httpx.AsyncClient, *, use_connector: bool) -> None:
    @app.flow(Placed, owner="bench")
    async def place(event: Placed, ctx: Context) -> None:
        if use_connector:
            await ctx.connector("crm").post("/v1/things", {"ref": event.ref})
        else:
            (await client.post("/v1/things", json={"ref": event.ref})).raise_for_status()


def mock_answer(request: httpx.Request) -> httpx.Response:
    return httpx.Response(201, json={"id": "t1", **BODY}, headers={"RateLimit-Remaining": "599"})


async def guardrails_alone(args: argparse.Namespace, tmp: Path) -> dict[str, float]:
    """Sequential calls against httpx.MockTransport: what the guardrails cost, in µs."""
    from interlock.connectors.runtime import LoopLocal

    def mocked() -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(mock_answer))

    bare = httpx.AsyncClient(transport=httpx.MockTransport(mock_answer), base_url="http://v.test")
    alone = HttpConnector(
        "alone", base_url="http://v.test", auth=ApiKey(secret="bench-key"), rate=RATE
    )
    app = Interlock("mock", f"sqlite:///{tmp / 'mock.db'}")
    shared = app.connector(
        HttpConnector(
            "shared", base_url="http://v.test", auth=ApiKey(secret="bench-key"), rate=RATE
        )
    )
    for connector in (alone, shared):
        connector.guards.clients = LoopLocal(mocked)
    calls: dict[str, Call] = {
        "bare httpx": lambda: bare.post("/v1/things", json=BODY),
        "connector, in memory": lambda: alone.post("/v1/things", BODY),
        "connector, store-backed": lambda: shared.post("/v1/things", BODY),
    }
    samples = await sequential(calls, args.calls * 2)
    means = {name: statistics.fmean(s) * 1e6 for name, s in samples.items()}
    await bare.aclose()
    app.close()
    return {name: mean - means["bare httpx"] for name, mean in means.items()} | {
        "bare httpx (µs per call)": means["bare httpx"]
    }


async def through_flows(url: str, args: argparse.Namespace, tmp: Path) -> dict[str, float]:
    results: dict[str, float] = {}
    for variant in ("connector (limiter + breaker)", "bare httpx"):
        app = Interlock("flows", f"sqlite:///{tmp / f'flows-{len(results)}.db'}")
        client = httpx.AsyncClient(base_url=url, headers=HEADERS)
        crm = app.connector(
            HttpConnector("crm", base_url=url, auth=ApiKey(secret="bench-key"), rate=RATE)
        )
        register_flow(app, client, use_connector=variant.startswith("connector"))

        for start in range(0, args.events, 500):
            await app.emit_many(
                [Placed(ref=f"r{n}") for n in range(start, min(start + 500, args.events))]
            )
        started = time.perf_counter()
        worker = await drain(app, concurrency=args.flow_concurrency, timeout=600)
        elapsed = time.perf_counter() - started
        assert worker.counters.succeeded == args.events, worker.counters
        results[variant] = args.events / elapsed
        await client.aclose()
        await crm.aclose()
        app.close()
    return results


def table(report: dict[str, Any]) -> str:
    calls = report["per_call"]
    lines = [
        f"connectors on {report['machine']} — vendor: generic simulator, separate process, loopback",
        "",
        f"{'variant':<26}{'mean µs':>10}{'median µs':>11}{'overhead µs':>13}"
        f"{'calls/s @' + str(report['concurrency']):>14}",
    ]
    lines.extend(
        f"{name:<26}{calls['mean_us'][name]:>10.0f}{calls['median_us'][name]:>11.0f}"
        f"{calls['overhead_us'][name]:>13.0f}{calls['concurrent_calls_per_s'][name]:>14.0f}"
        for name in calls["mean_us"]
    )
    lines += [
        f"store leases per call, sequential: {calls['store_leases_per_call_sequential']:.3f}; "
        f"at concurrency {report['concurrency']}: {calls['store_leases_per_call_concurrent']:.3f}",
        "",
        "guardrails alone (httpx.MockTransport, no network), overhead per call over bare httpx:",
        *(
            f"  {name:<26}{value:>8.0f} µs"
            for name, value in report["guardrails_alone_us"].items()
            if name != "bare httpx"
        ),
        "",
        f"{'flow making one call':<32}{'events/s':>10}",
    ]
    for name, rate in report["flows"].items():
        lines.append(f"{name:<32}{rate:>10.0f}")
    return "\n".join(lines)


async def main(args: argparse.Namespace) -> dict[str, Any]:
    os.environ["INTERLOCK_SECRET_BENCH_KEY"] = "sandbox-api-key"
    proc, url = start_simulator()
    allow_egress(url)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            report: dict[str, Any] = {
                "machine": f"{os.cpu_count()} cores, Python {sys.version.split()[0]}",
                "concurrency": args.concurrency,
                "per_call": await per_call(url, args, Path(tmp)),
                "guardrails_alone_us": await guardrails_alone(args, Path(tmp)),
                "flows": await through_flows(url, args, Path(tmp)),
            }
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--flow-concurrency", type=int, default=8)
    parser.add_argument("--json", action="store_true")
    arguments = parser.parse_args()
    result = asyncio.run(main(arguments))
    print(json.dumps(result, indent=2) if arguments.json else table(result))
