"""Fixtures for the chaos tests: real worker processes on a shared SQLite file.

``chaos`` gives a :class:`Chaos` harness: the database URL and effect ledger in
``tmp_path``, an app to emit with, and ``spawn()`` for worker processes, every
one of which is killed and reaped when the test ends, pass or fail. Worker
stderr (JSON logs) goes to a file per process; a failing test prints the tails.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from interlock import Interlock

from .chaos_app import build_app, read_ledger

HERE = Path(__file__).resolve().parent
SRC = HERE.parents[1] / "src"
UNFINISHED = ("queued", "pending", "running", "waiting")


class WorkerProcess:
    """One ``chaos_app.py`` worker process."""

    def __init__(self, proc: subprocess.Popen[bytes], log_path: Path) -> None:
        self.proc = proc
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def logs(self) -> list[dict[str, Any]]:
        """The JSON log records written so far (non-JSON lines are kept as ``{"raw": ...}``)."""
        out = []
        for line in self.log_path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"raw": line})
        return out

    def logged(self, event: str) -> list[dict[str, Any]]:
        return [r for r in self.logs() if r.get("event") == event]

    def wait_ready(self, timeout: float = 20.0) -> None:
        """Block until the worker announced it is about to claim work."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.logged("chaos.ready"):
                return
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"worker {self.pid} exited with {self.proc.returncode} before it was ready:\n"
                    + self.tail()
                )
            time.sleep(0.01)
        raise AssertionError(f"worker {self.pid} not ready within {timeout}s:\n" + self.tail())

    def signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            os.kill(self.pid, sig)

    def kill(self) -> int:
        """SIGKILL and reap; returns the exit status."""
        self.signal(signal.SIGKILL)
        return self.proc.wait(timeout=10)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text[-lines:])


class Chaos:
    """A store and ledger in ``tmp_path``, and the worker processes running on them."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.db_path = tmp_path / "chaos.db"
        self.database_url = f"sqlite:///{self.db_path}"
        self.ledger_path = tmp_path / "ledger.tsv"
        self.workers: list[WorkerProcess] = []
        self._app: Interlock | None = None

    @property
    def app(self) -> Interlock:
        """The same flows as the workers, for emitting and reading the store from this process."""
        if self._app is None:
            self._app = build_app(self.database_url)
        return self._app

    def spawn(self, **settings: object) -> WorkerProcess:
        """Start a worker; ``settings`` become ``CHAOS_<NAME>`` environment variables."""
        env = dict(os.environ)
        pythonpath = [str(HERE), str(SRC)]
        if env.get("PYTHONPATH"):
            pythonpath.append(env["PYTHONPATH"])
        env.update(
            PYTHONPATH=os.pathsep.join(pythonpath),
            PYTHONUNBUFFERED="1",
            INTERLOCK_DATABASE_URL=self.database_url,
            CHAOS_LEDGER=str(self.ledger_path),
        )
        for name, value in settings.items():
            env[f"CHAOS_{name.upper()}"] = str(value)
        log_path = self.tmp_path / f"worker-{len(self.workers) + 1:03d}.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, str(HERE / "chaos_app.py")],
                cwd=HERE,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        worker = WorkerProcess(proc, log_path)
        self.workers.append(worker)
        return worker

    def cleanup(self) -> None:
        for worker in self.workers:
            if worker.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    worker.proc.kill()
                    os.kill(worker.pid, signal.SIGCONT)  # in case it was stopped
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.proc.wait(timeout=10)
        if self._app is not None:
            self._app.close()
            self._app = None

    def report(self) -> str:
        parts = []
        for w in self.workers:
            parts.append(f"--- worker {w.pid} (exit {w.proc.returncode}) {w.log_path.name}")
            parts.append(w.tail(15))
        return "\n".join(parts)

    # -- reading the store -------------------------------------------------------------
    def query(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        """A read on a fresh connection (never the workers' writer)."""
        conn = sqlite3.connect(self.db_path, timeout=10)
        try:
            return conn.execute(sql, args).fetchall()
        finally:
            conn.close()

    def status_counts(self) -> dict[str, int]:
        return dict(self.query("SELECT status, count(*) FROM deliveries GROUP BY status"))

    def unfinished(self) -> int:
        marks = ",".join("?" * len(UNFINISHED))
        rows = self.query(f"SELECT count(*) FROM deliveries WHERE status IN ({marks})", UNFINISHED)
        return int(rows[0][0])

    def ledger(self) -> list[list[str]]:
        return read_ledger(self.ledger_path)

    def write_locked(self) -> bool:
        """Whether some process holds the database's write lock right now."""
        conn = sqlite3.connect(self.db_path, timeout=0, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
            return False
        except sqlite3.OperationalError:
            return True
        finally:
            conn.close()


def wait_until(
    predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.02
) -> None:
    """Poll ``predicate`` until it is truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def dedup_effects(
    records: list[list[str]],
) -> tuple[dict[str, tuple[str, int]], dict[str, list[int]]]:
    """Read ``<step_key> <key> <seq>`` ledger records as a vendor deduplicating by step key.

    Returns the first effect of each step key, and each key's seqs in first-effect order.
    A re-sent effect (its worker died before the step was checkpointed) must carry the
    same key and seq as the first: it is the same effect.
    """
    first: dict[str, tuple[str, int]] = {}
    order: dict[str, list[int]] = {}
    for record in records:
        assert len(record) == 3, record
        step_key, key, seq = record[0], record[1], int(record[2])
        seen = first.get(step_key)
        if seen is not None:
            assert seen == (key, seq), (step_key, seen, key, seq)
            continue
        first[step_key] = (key, seq)
        order.setdefault(key, []).append(seq)
    return first, order


@pytest.fixture
def chaos(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Chaos]:
    harness = Chaos(tmp_path)
    try:
        yield harness
    finally:
        harness.cleanup()
        rep = getattr(request.node, "rep_call", None)
        if rep is not None and rep.failed:
            print(harness.report())  # shown with the failure's captured output


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    rep = yield
    if rep.when == "call":
        item.rep_call = rep  # type: ignore[attr-defined]
    return rep
