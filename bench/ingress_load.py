"""Load generator for bench/ingress.py: signed webhooks over keep-alive HTTP/1.1 on loopback.

Run by bench/ingress.py as a process of its own (never inside the server's process). Each
request is a Standard Webhooks delivery with a unique ``webhook-id``, a current
``webhook-timestamp`` and a correct ``v1`` HMAC-SHA256 signature, so that every one the
server accepts is a real, verified event. The client is a bare asyncio protocol (one request
in flight per connection, no pipelining) so that it costs far less CPU per request than the
server it measures.

Phases (one per run of this script):

* ``saturation``: ``--connections`` closed-loop connections send as fast as the server
  answers; requests acknowledged with 202 within the ``--duration`` window after a
  ``--warmup`` are counted.
* ``rate``: open loop at ``--rate`` requests/s for ``--duration`` s. Request i is due at
  ``start + i / rate``; it goes out on an idle connection, or waits for one, and its latency
  runs from that due time to the end of its response, so time spent queued behind a slow
  answer is counted (no coordinated omission).

Prints one JSON object on stdout.

    python bench/ingress_load.py --port 8000 --phase rate --rate 1000 --duration 10
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import gc
import hashlib
import hmac
import json
import os
import secrets
import sys
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, cast

SOURCE = "bench"  # the webhook source's name: POST /hooks/bench
TOPIC = "order.placed"  # the Standard Webhooks ``type`` the source maps
SECRET_ENV = "INTERLOCK_SECRET_BENCH_WEBHOOK_SECRET"


class Signer:
    """Builds complete, correctly signed HTTP/1.1 requests, each with a unique webhook id."""

    def __init__(self, secret: str, host: str, port: int, tag: str, keys: int) -> None:
        self.key = base64.b64decode(secret.removeprefix("whsec_"))
        self.tag = tag
        self.keys = keys
        self.n = 0
        self.head = (
            f"POST /hooks/{SOURCE} HTTP/1.1\r\nhost: {host}:{port}\r\n"
            "content-type: application/json\r\n"
        ).encode()

    def request(self) -> bytes:
        self.n += 1
        n = self.n
        msg_id = f"msg_{self.tag}_{n}"
        now = time.time()
        ts = str(int(now))
        body = (
            f'{{"type":"{TOPIC}","timestamp":"{ts}","data":{{"order_id":"{self.tag}-{n}",'
            f'"account_id":"acct_{n % self.keys}","amount_cents":{1000 + n % 9000},'
            f'"email":"buyer{n}@example.test"}}}}'
        ).encode()
        mac = hmac.new(self.key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
        signature = base64.b64encode(mac).decode()
        headers = (
            f"content-length: {len(body)}\r\nwebhook-id: {msg_id}\r\n"
            f"webhook-timestamp: {ts}\r\nwebhook-signature: v1,{signature}\r\n\r\n"
        )
        return self.head + headers.encode() + body


class Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection with at most one request in flight."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[int] | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's is not an asyncio.Transport subclass).
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError(f"connection lost: {exc}"))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.waiter is None or self.waiter.done():
            return
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buffer[:end]).lower()
        length = 0
        for line in head.split(b"\r\n")[1:]:
            if line.startswith(b"content-length:"):
                length = int(line[15:])
        total = end + 4 + length
        if len(self.buffer) < total:
            return
        del self.buffer[:total]
        if b"\r\nconnection: close" in head:
            self.lost = True
        self.waiter.set_result(int(head[9:12]))

    async def request(self, data: bytes) -> int:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return await self.waiter

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def connect(host: str, port: int) -> Connection:
    loop = asyncio.get_running_loop()
    _, conn = await loop.create_connection(Connection, host, port)
    return conn


@dataclass
class Tally:
    statuses: Counter[int] = field(default_factory=Counter)  # every response, any time
    errors: int = 0  # requests that got no response (connection lost)
    ok_in_window: int = 0  # 202s that completed inside the measured window
    latencies_s: list[float] = field(default_factory=list)  # measured requests only
    last_done: float = 0.0  # time.monotonic() of the last response

    def to_json(self) -> dict[str, Any]:
        return {
            "sent": sum(self.statuses.values()) + self.errors,
            "accepted": self.statuses.get(202, 0),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "errors": self.errors,
            "ok_in_window": self.ok_in_window,
            "latencies_s": [round(x, 7) for x in self.latencies_s],
            "last_done": self.last_done,
        }


async def saturation(args: argparse.Namespace, signer: Signer, tally: Tally) -> None:
    loop = asyncio.get_running_loop()
    conns = [await connect(args.host, args.port) for _ in range(args.connections)]
    window_start = args.start + args.warmup
    window_end = window_start + args.duration
    await asyncio.sleep(max(0.0, args.start - loop.time()))

    async def drive(conn: Connection) -> None:
        while loop.time() < window_end:
            if conn.lost:
                conn.close()
                conn = await connect(args.host, args.port)
            data = signer.request()
            sent = time.monotonic()
            try:
                status = await conn.request(data)
            except ConnectionError:
                tally.errors += 1
                continue
            done = tally.last_done = time.monotonic()
            tally.statuses[status] += 1
            if window_start <= done < window_end:
                tally.latencies_s.append(done - sent)
                if status == 202:
                    tally.ok_in_window += 1
        conn.close()

    await asyncio.gather(*(drive(c) for c in conns))


async def open_loop(args: argparse.Namespace, signer: Signer, tally: Tally) -> None:
    loop = asyncio.get_running_loop()
    conns = [await connect(args.host, args.port) for _ in range(args.connections)]
    idle: deque[Connection] = deque(conns)
    backlog: deque[float] = deque()  # due times of requests waiting for a free connection
    tasks: set[asyncio.Task[None]] = set()

    async def serve(conn: Connection, due: float) -> None:
        while True:
            if conn.lost:
                conn.close()
                conn = await connect(args.host, args.port)
            try:
                status = await conn.request(signer.request())
            except ConnectionError:
                tally.errors += 1
            else:
                tally.statuses[status] += 1
                if status == 202:
                    tally.ok_in_window += 1
                tally.last_done = time.monotonic()
                tally.latencies_s.append(tally.last_done - due)
            if not backlog:
                idle.append(conn)
                return
            due = backlog.popleft()

    total = round(args.rate * args.duration)
    for i in range(total):
        due = args.start + i / args.rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        if idle:
            task = asyncio.create_task(serve(idle.popleft(), due))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        else:
            backlog.append(due)
    while tasks:
        await asyncio.gather(*list(tasks))
    for conn in idle:
        conn.close()


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    secret = os.environ.get(SECRET_ENV)
    if not secret:
        raise SystemExit(f"{SECRET_ENV} is not set")
    tag = f"{args.tag or secrets.token_hex(4)}p{args.index}"
    signer = Signer(secret, args.host, args.port, tag, args.keys)
    tally = Tally()
    cpu0 = time.process_time()
    if args.phase == "saturation":
        await saturation(args, signer, tally)
    else:
        await open_loop(args, signer, tally)
    return {
        "phase": args.phase,
        "index": args.index,
        "connections": args.connections,
        "duration_s": args.duration,
        "rate": args.rate if args.phase == "rate" else None,
        "cpu_s": round(time.process_time() - cpu0, 3),
        **tally.to_json(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Signed-webhook load generator for bench/ingress.py (one JSON object out)."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--phase", choices=["saturation", "rate"], required=True)
    parser.add_argument("--connections", type=int, default=64, help="keep-alive connections")
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds")
    parser.add_argument(
        "--warmup", type=float, default=1.0, help="saturation: unmeasured seconds first"
    )
    parser.add_argument("--rate", type=float, default=1000.0, help="rate phase: requests/s")
    parser.add_argument("--keys", type=int, default=500, help="distinct account ids (lanes)")
    parser.add_argument(
        "--start",
        type=float,
        help="time.monotonic() at which to start (several load processes start together)",
    )
    parser.add_argument("--index", type=int, default=0, help="this load process's number")
    parser.add_argument("--tag", default="", help="prefix of webhook ids (default: random)")
    args = parser.parse_args()
    if args.start is None:
        args.start = time.monotonic() + 0.5
    # The client's own collector pauses would show up as server latency.
    gc.collect()
    gc.freeze()
    gc.disable()
    with contextlib.suppress(KeyboardInterrupt):
        result = asyncio.run(main_async(args))
        sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
