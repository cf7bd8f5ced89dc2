"""Shared helpers for the benchmark scripts.

The peer scripts (bench/peers/*.py) all run the same three phases through `run_peer`:

1. ingest: enqueue N jobs with no worker running, then start the workers and let them drain.
2. e2e: with the (warm) workers running, enqueue N jobs again; time from the first enqueue
   to the last handler finishing.
3. latency: enqueue jobs at a fixed rate; each job carries its enqueue wall-clock time and the
   handler records start-minus-enqueue.

Handlers call `record_job`, which is the workload's unit of work: bump a per-key counter and
append one line (job id, enqueue-to-start latency, finish time) to a file of its own process.
The driver tails those files, so no extra round-trip to the broker is needed to observe progress.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import psutil

RECORD_DIR_ENV = "BENCH_RECORD_DIR"
WORKDIR_ENV = "BENCH_WORKDIR"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379")
PEERS_DIR = Path(__file__).resolve().parent / "peers"

Result = dict[str, Any]


class BenchError(Exception):
    """A benchmark run failed (timeout, dead worker, lost jobs); the message says why."""


# --- statistics and pacing -------------------------------------------------------------------


def percentile(values: Sequence[float], pct: float) -> float:
    """Linearly interpolated percentile (pct in 0..100) of an unsorted sequence."""
    if not values:
        raise ValueError("percentile of an empty sequence")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def paced(rate: float, n: int) -> Iterator[float]:
    """Yield n absolute `time.perf_counter()` deadlines, `1/rate` apart, waiting for each.

    Deadlines are computed from the start time, so a slow iteration does not push the later
    ones back (no sleep drift); a producer that falls behind simply catches up without sleeping.
    """
    start = time.perf_counter()
    for i in range(n):
        deadline = start + i / rate
        delay = deadline - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        yield deadline


# --- memory ----------------------------------------------------------------------------------


def tree_rss(pid: int) -> int:
    """Resident set size in bytes of a process and all its descendants (0 if it is gone)."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            total += proc.memory_info().rss
    return total


class PeakRss:
    """Background sampler of the peak summed RSS of some process trees."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.pids: list[int] = []
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="peak-rss", daemon=True)

    def start(self, *pids: int) -> None:
        self.pids.extend(pids)
        self._thread.start()

    def sample(self) -> None:
        self.peak_bytes = max(self.peak_bytes, sum(tree_rss(pid) for pid in self.pids))

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    @property
    def peak_mb(self) -> float:
        return self.peak_bytes / (1024 * 1024)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)


# --- Redis -----------------------------------------------------------------------------------


def redis_available(url: str = REDIS_URL, timeout: float = 1.0) -> bool:
    """True when the `redis` client is installed and a server answers PING at `url`."""
    try:
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


def flush_redis_db(url: str) -> None:
    """Empty the Redis database at `url` (each peer owns a database number of its own)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


# --- worker side: the handler's unit of work -------------------------------------------------

_lock = threading.Lock()
_counts: Counter[str] = Counter()
_files: dict[tuple[int, str], int] = {}


def record_job(phase: str, job_id: int, key: str, enqueued_at: float) -> None:
    """The workload's handler body: count the job under its key and record its id.

    Appends `"<job_id> <enqueue-to-start seconds> <finish wall time>"` to
    `$BENCH_RECORD_DIR/<phase>-<pid>.log`, one O_APPEND write per job.
    """
    started = time.time()
    pid = os.getpid()
    with _lock:
        _counts[key] += 1
        fd = _files.get((pid, phase))
        if fd is None:
            path = Path(os.environ[RECORD_DIR_ENV]) / f"{phase}-{pid}.log"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            _files[pid, phase] = fd
    os.write(fd, f"{job_id} {started - enqueued_at:.6f} {time.time():.6f}\n".encode())


# --- driver side -----------------------------------------------------------------------------


@dataclass
class Tally:
    """Follows the record files of one phase as the workers append to them."""

    directory: Path
    phase: str
    seen: set[int] = field(default_factory=set)
    duplicates: int = 0
    latencies_s: list[float] = field(default_factory=list)
    first_done: float = math.inf
    last_done: float = 0.0
    _offsets: dict[Path, int] = field(default_factory=dict)

    def poll(self) -> int:
        """Read what was appended since the last call; return the number of distinct jobs."""
        for path in self.directory.glob(f"{self.phase}-*.log"):
            offset = self._offsets.get(path, 0)
            with path.open("rb") as fh:
                fh.seek(offset)
                chunk = fh.read()
            end = chunk.rfind(b"\n") + 1  # only complete lines
            self._offsets[path] = offset + end
            for line in chunk[:end].splitlines():
                job, latency, done = line.split()
                job_id = int(job)
                if job_id in self.seen:
                    self.duplicates += 1
                    continue
                self.seen.add(job_id)
                self.latencies_s.append(float(latency))
                done_at = float(done)
                self.first_done = min(self.first_done, done_at)
                self.last_done = max(self.last_done, done_at)
        return len(self.seen)

    def wait(self, n: int, deadline: float, check: Callable[[], None], label: str = "") -> None:
        """Poll until n distinct jobs are recorded; `check` raises if the workers died."""
        label = label or self.phase
        while self.poll() < n:
            check()
            if time.monotonic() > deadline:
                raise BenchError(f"phase {label!r} timed out: {len(self.seen)}/{n} jobs done")
            time.sleep(0.01)
        missing = set(range(n)) - self.seen
        if missing:
            raise BenchError(f"phase {label!r}: {len(missing)} job ids never recorded")


class Workers:
    """Worker subprocesses, each in a session of its own so that its whole tree can be ended."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, cmd: Sequence[str], cwd: Path) -> subprocess.Popen[bytes]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(cwd), str(Path(__file__).parent), env.get("PYTHONPATH")) if p
        )
        with self.log_path.open("ab") as log:
            proc = subprocess.Popen(
                list(cmd),
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs.append(proc)
        return proc

    def check(self) -> None:
        for proc in self.procs:
            if proc.poll() is not None:
                raise BenchError(f"worker exited early with code {proc.returncode}")

    def stop(self, grace: float = 20.0) -> None:
        """SIGTERM each worker's process group, then SIGKILL whatever outlives the grace."""
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(max(0.1, deadline - time.monotonic()))
            # The group may hold forked children even after the leader is gone.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class Peer(Protocol):
    """What a peer script supplies to `run_peer`."""

    name: str
    workers: int  # worker processes
    concurrency: int  # handler slots in total
    config: str  # human-readable description of the worker setup

    def reset(self) -> None:
        """Remove every trace of earlier runs from the broker (called before and after)."""

    def enqueue(self, phase: str, job_id: int, key: str, enqueued_at: float) -> None:
        """Enqueue one job whose handler calls `record_job(phase, job_id, key, enqueued_at)`."""

    def worker_command(self) -> list[str]:
        """The command line that starts the peer's worker(s)."""


def make_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--events", type=int, default=20_000, help="jobs per throughput phase")
    parser.add_argument("--keys", type=int, default=500, help="distinct job keys")
    parser.add_argument("--latency-jobs", type=int, default=3_000, help="jobs in latency phase")
    parser.add_argument("--rate", type=float, default=1_000.0, help="latency phase jobs/s")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds allowed per phase")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    return parser


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _enqueue_all(peer: Peer, phase: str, n: int, keys: int, deadline: float) -> None:
    for i in range(n):
        peer.enqueue(phase, i, f"k{i % keys}", time.time())
        if i % 1000 == 0 and time.monotonic() > deadline:
            raise BenchError(f"phase {phase!r} timed out while enqueueing ({i}/{n} sent)")


def _measure(peer: Peer, args: argparse.Namespace, workdir: Path, workers: Workers) -> Result:
    records = workdir / "records"
    n, keys, timeout = args.events, args.keys, args.timeout
    rss = PeakRss()

    # Phase 1, ingest: no worker is running yet, so this is the broker's enqueue rate alone.
    log(f"[{peer.name}] ingest: enqueueing {n} jobs, workers stopped")
    start = time.perf_counter()
    _enqueue_all(peer, "ingest", n, keys, time.monotonic() + timeout)
    ingest_s = time.perf_counter() - start

    # ... then start the workers and let them drain the backlog.
    log(f"[{peer.name}] drain: starting workers: {' '.join(peer.worker_command())}")
    proc = workers.start(peer.worker_command(), cwd=PEERS_DIR)
    rss.start(proc.pid)
    try:
        drain = Tally(records, "ingest")
        drain.wait(n, time.monotonic() + timeout, workers.check, label="drain")

        # Phase 2, e2e: workers are warm and running from the first enqueue on.
        log(f"[{peer.name}] e2e: enqueueing {n} jobs, workers running")
        e2e = Tally(records, "e2e")
        e2e_start = time.time()
        _enqueue_all(peer, "e2e", n, keys, time.monotonic() + timeout)
        e2e.wait(n, time.monotonic() + timeout, workers.check)

        # Phase 3, latency: a paced producer; handlers record start minus enqueue time.
        m = args.latency_jobs
        log(f"[{peer.name}] latency: {m} jobs at {args.rate:g}/s")
        deadline = time.monotonic() + timeout
        start = time.perf_counter()
        for i, _ in enumerate(paced(args.rate, m)):
            peer.enqueue("latency", i, f"k{i % keys}", time.time())
            if time.monotonic() > deadline:
                raise BenchError(f"phase 'latency' timed out while enqueueing ({i}/{m} sent)")
        sent_per_s = m / (time.perf_counter() - start)
        latency = Tally(records, "latency")
        latency.wait(m, deadline, workers.check)
    finally:
        rss.sample()
        rss.stop()

    return {
        "name": peer.name,
        "events": n,
        "keys": keys,
        "workers": peer.workers,
        "concurrency": peer.concurrency,
        "config": peer.config,
        "ingest_events_per_s": round(n / ingest_s, 1),
        "drain_events_per_s": round(n / max(drain.last_done - drain.first_done, 1e-9), 1),
        "e2e_events_per_s": round(n / (e2e.last_done - e2e_start), 1),
        "p50_ms": round(percentile(latency.latencies_s, 50) * 1000, 3),
        "p99_ms": round(percentile(latency.latencies_s, 99) * 1000, 3),
        "latency_jobs": m,
        "latency_rate": args.rate,
        "latency_sent_per_s": round(sent_per_s, 1),  # below latency_rate: producer fell behind
        "peak_rss_mb": round(rss.peak_mb, 1),
        "duplicates": drain.duplicates + e2e.duplicates + latency.duplicates,
    }


def print_result(result: Result, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result), flush=True)
        return
    width = max(map(len, result))
    print(f"== {result['name']} ==")
    for key, value in result.items():
        print(f"  {key:<{width}}  {value}")


def run_peer(make_peer: Callable[[], Peer], args: argparse.Namespace) -> int:
    """Run all phases for one peer and print its figures; returns the process exit code."""

    def on_sigterm(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)  # so that the clean-up below still runs

    signal.signal(signal.SIGTERM, on_sigterm)
    workdir = Path(tempfile.mkdtemp(prefix="interlock-bench-"))
    (workdir / "records").mkdir()
    os.environ[WORKDIR_ENV] = str(workdir)
    os.environ[RECORD_DIR_ENV] = str(workdir / "records")
    workers = Workers(workdir / "worker.log")
    peer: Peer | None = None
    try:
        peer = make_peer()
        peer.reset()
        result = _measure(peer, args, workdir, workers)
    except BenchError as exc:
        tail = workers.log_tail()
        if tail:
            log(f"--- worker log (last lines) ---\n{tail}\n---")
        # Last, so that a caller showing only the end of stderr still sees why.
        log(f"error: {peer.name if peer else Path(sys.argv[0]).stem}: {exc}")
        return 1
    finally:
        workers.stop()
        if peer is not None:
            with contextlib.suppress(Exception):
                peer.reset()
        shutil.rmtree(workdir, ignore_errors=True)
    print_result(result, args.json)
    return 0
