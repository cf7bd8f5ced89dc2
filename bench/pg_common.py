"""Shared pieces of the PostgreSQL benchmark (bench/postgres.py) and its peer scripts.

- `fresh_database()`: a database of its own per measured system, dropped afterwards;
- `PgSystem`: what one system (interlock or a peer) supplies to `measure()`;
- `measure()`: the three phases of the core workload (see bench/common.py) with worker
  *processes*, every system observed the same way: its handler calls `common.record_job`,
  and the driver tails the record files;
- `LoadSampler`: CPU of PostgreSQL, of the workers and of the producer, and what the
  database's sessions are waiting on (pg_stat_activity), sampled during the end-to-end phase.

`BENCH_POSTGRES_URL` names the server (default: `INTERLOCK_TEST_POSTGRES_URL`, else the
local one); the CPU of PostgreSQL is that server's postmaster and its children, so a
private cluster (`initdb` + `pg_ctl start` on another port) keeps other databases' work
out of the figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import psutil
import psycopg

import common

ADMIN_URL = os.environ.get(
    "BENCH_POSTGRES_URL",
    os.environ.get("INTERLOCK_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
)


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@contextlib.contextmanager
def fresh_database(prefix: str = "interlock_b") -> Iterator[str]:
    """Create an empty database of its own, yield its URL, drop it (with its sessions) after."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield with_database(ADMIN_URL, name)
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def postgres_available() -> str | None:
    """None when the server answers, else why not."""
    try:
        with psycopg.connect(ADMIN_URL, connect_timeout=2) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"PostgreSQL is not reachable at {urlsplit(ADMIN_URL).netloc}: {exc}"
    return None


def server_settings() -> dict[str, str]:
    names = ("server_version", "synchronous_commit", "fsync", "shared_buffers", "max_connections")
    with psycopg.connect(ADMIN_URL) as conn:
        return {n: str(conn.execute(f"SHOW {n}").fetchone()[0]) for n in names}  # type: ignore[index]


# --- what a system supplies ------------------------------------------------------------------


class PgSystem(Protocol):
    name: str
    config: str  # the worker setup, in words
    guarantees: str  # what one job/event gets: durability, ordering, retries

    async def open(self, url: str) -> None:
        """Install the schema in the fresh database and open the producer's connections."""

    async def enqueue(self, phase: str, job_id: int, key: str, enqueued_at: float) -> None:
        """Enqueue one job (durably, in a transaction of its own or a group commit) whose
        handler calls `common.record_job(phase, job_id, key, enqueued_at)`."""

    async def close(self) -> None: ...

    def worker_command(self, url: str) -> list[str]:
        """The command line of one worker process."""


# --- sampling the machine and the database ---------------------------------------------------


def _server_processes() -> list[psutil.Process]:
    """The benchmark server's postmaster and its children (other clusters left out)."""
    with psycopg.connect(ADMIN_URL) as conn:  # its backend must live while we look
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
        assert row is not None
        try:
            backend = psutil.Process(row[0])
            postmaster = backend.parent() if backend.name() == "postgres" else None
        except psutil.NoSuchProcess:  # the server is not on this machine
            return []
    if postmaster is None:
        return []
    return [postmaster, *postmaster.children()]


def _cpu_by_pid(procs: list[psutil.Process]) -> dict[int, float]:
    out = {}
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            times = proc.cpu_times()
            out[proc.pid] = times.user + times.system
    return out


def _cpu_seconds(procs: list[psutil.Process]) -> float:
    return sum(_cpu_by_pid(procs).values())


@dataclass
class LoadSampler:
    """CPU shares and pg_stat_activity wait events over one measured window."""

    url: str
    worker_pids: list[int]
    interval: float = 0.1
    waits: Counter[str] = field(default_factory=Counter)
    samples: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._pg0_by_pid = _cpu_by_pid(_server_processes())
        self._workers = []
        for pid in self.worker_pids:
            with contextlib.suppress(psutil.NoSuchProcess):
                root = psutil.Process(pid)
                self._workers += [root, *root.children(recursive=True)]
        self._me = [psutil.Process()]
        self._t0 = time.monotonic()
        self._machine0 = psutil.cpu_times()
        self._w0, self._me0 = _cpu_seconds(self._workers), _cpu_seconds(self._me)
        self._thread = threading.Thread(target=self._run, name="load-sampler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        dbname = urlsplit(self.url).path.lstrip("/")
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            while not self._stop.wait(self.interval):
                rows = conn.execute(
                    "SELECT state, wait_event_type, wait_event FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid() AND backend_type = "
                    "'client backend'",
                    (dbname,),
                ).fetchall()
                self.samples += 1
                for state, wtype, wevent in rows:
                    if state == "active":
                        self.waits[f"{wtype}:{wevent}" if wtype else "CPU (running)"] += 1

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        elapsed = time.monotonic() - self._t0
        machine = psutil.cpu_times()
        busy = sum(machine) - machine.idle - machine.iowait
        busy0 = sum(self._machine0) - self._machine0.idle - self._machine0.iowait
        pct = 100.0 / elapsed
        # Backends that connected during the window count whole; ones that left are lost.
        pg_now = _cpu_by_pid(_server_processes())
        pg = sum(cpu - self._pg0_by_pid.get(pid, 0.0) for pid, cpu in pg_now.items())
        top = self.waits.most_common(5)
        n = max(self.samples, 1)
        return {
            "postgres_cpu_pct": round(pg * pct),
            "workers_cpu_pct": round((_cpu_seconds(self._workers) - self._w0) * pct),
            "producer_cpu_pct": round((_cpu_seconds(self._me) - self._me0) * pct),
            "machine_cpu_pct": round((busy - busy0) * pct),
            "machine_cpu_capacity_pct": 100 * (psutil.cpu_count() or 1),
            "active_sessions_avg": round(sum(self.waits.values()) / n, 2),
            "top_waits": [(k, round(v / n, 2)) for k, v in top],
        }


# --- the phases ------------------------------------------------------------------------------


class WorkerSet:
    """Worker processes of one system, each sampled for its own peak RSS."""

    def __init__(self, workdir: Path) -> None:
        self.procs = common.Workers(workdir / "worker.log")
        self.rss: list[common.PeakRss] = []

    def start(self, cmd: list[str], count: int) -> None:
        for _ in range(count):
            proc = self.procs.start(cmd, cwd=common.PEERS_DIR)
            sampler = common.PeakRss()
            sampler.start(proc.pid)
            self.rss.append(sampler)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs.procs]

    def peak_rss_mb(self) -> float:
        for sampler in self.rss:
            sampler.sample()
            sampler.stop()
        return max((s.peak_mb for s in self.rss), default=0.0)


async def _bounded(n: int, concurrency: int, one: Callable[[int], Awaitable[None]]) -> None:
    """Run one(i) for i in range(n), `concurrency` at a time."""
    next_i = iter(range(n))

    async def lane() -> None:
        for i in next_i:
            await one(i)

    await asyncio.gather(*(lane() for _ in range(concurrency)))


async def _wait(
    tally: common.Tally, n: int, workers: WorkerSet, timeout: float, label: str = ""
) -> None:
    deadline = time.monotonic() + timeout
    await asyncio.to_thread(tally.wait, n, deadline, workers.procs.check, label)


async def measure(
    system: PgSystem, url: str, args: Any, workers: int, workdir: Path
) -> dict[str, Any]:
    """ingest (no worker), drain, end-to-end (warm workers), fixed-rate latency."""
    records = workdir / "records"
    n, keys = args.events, args.keys
    await system.open(url)
    pool = WorkerSet(workdir)
    try:

        def job(phase: str) -> Callable[[int], Awaitable[None]]:
            return lambda i: system.enqueue(phase, i, f"k{i % keys}", time.time())

        common.log(f"[{system.name}] ingest: {n} jobs, {args.producers} producers, no worker")
        start = time.perf_counter()
        await _bounded(n, args.producers, job("ingest"))
        ingest_s = time.perf_counter() - start

        common.log(f"[{system.name}] drain: {workers} worker process(es)")
        drain_start = time.time()
        pool.start(system.worker_command(url), workers)
        drain_sampler = LoadSampler(url, pool.pids)
        drain_sampler.start()
        drain = common.Tally(records, "ingest")
        await _wait(drain, n, pool, args.timeout, "drain")
        drain_load = drain_sampler.stop()

        common.log(f"[{system.name}] e2e: {n} jobs, workers running")
        sampler = LoadSampler(url, pool.pids)
        sampler.start()
        e2e = common.Tally(records, "e2e")
        e2e_start = time.time()
        await _bounded(n, args.producers, job("e2e"))
        await _wait(e2e, n, pool, args.timeout)
        load = sampler.stop()

        m = args.latency_jobs
        common.log(f"[{system.name}] latency: {m} jobs at {args.rate:g}/s")
        loop = asyncio.get_running_loop()
        begin, wall = loop.time(), time.time()
        tasks = []
        for i in range(m):
            delay = begin + i / args.rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            # The job's enqueue time is its scheduled time: a producer that falls behind
            # counts the delay against the system (no coordinated omission).
            due = wall + i / args.rate
            tasks.append(asyncio.create_task(system.enqueue("latency", i, f"k{i % keys}", due)))
        await asyncio.gather(*tasks)
        sent_per_s = m / (loop.time() - begin)
        latency = common.Tally(records, "latency")
        await _wait(latency, m, pool, args.timeout)
    except common.BenchError:
        tail = pool.procs.log_tail()
        if tail:
            common.log(f"--- worker log (last lines) ---\n{tail}\n---")
        raise
    finally:
        rss = pool.peak_rss_mb()
        pool.procs.stop()
        await system.close()
    return {
        "name": system.name,
        "config": system.config,
        "guarantees": system.guarantees,
        "events": n,
        "keys": keys,
        "workers": workers,
        "ingest_events_per_s": round(n / ingest_s, 1),
        "drain_events_per_s": round(n / max(drain.last_done - drain_start, 1e-9), 1),
        "e2e_events_per_s": round(n / (e2e.last_done - e2e_start), 1),
        "latency_rate": args.rate,
        "latency_sent_per_s": round(sent_per_s, 1),
        "p50_ms": round(common.percentile(latency.latencies_s, 50) * 1000, 3),
        "p99_ms": round(common.percentile(latency.latencies_s, 99) * 1000, 3),
        "peak_rss_mb_per_worker": round(rss, 1),
        "duplicates": drain.duplicates + e2e.duplicates + latency.duplicates,
        "e2e_load": load,
        "drain_load": drain_load,
    }


def run_measurement(system: PgSystem, args: Any, workers: int) -> dict[str, Any]:
    """`measure()` in a fresh database and a fresh record directory of its own."""
    workdir = Path(tempfile.mkdtemp(prefix="interlock-pgbench-"))
    (workdir / "records").mkdir()
    os.environ[common.WORKDIR_ENV] = str(workdir)
    os.environ[common.RECORD_DIR_ENV] = str(workdir / "records")
    try:
        with fresh_database() as url:
            return asyncio.run(measure(system, url, args, workers, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
