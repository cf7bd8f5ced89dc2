"""Stream intake: NATS JetStream messages into the store, per batch size, against the
client alone.

``--messages`` small JSON messages are published to a fresh JetStream stream (file
storage), then consumed once per batch size, each time by a new durable consumer:

1. ``raw``: nats-py alone, fetch a batch and ack each message (the ceiling: what the
   broker and its client cost);
2. ``interlock``: ``StreamRunner.handle()`` over ``nats.source(...)``: parse, map to a
   contract, store the batch with one delivery per message in one durable SQLite
   transaction (``synchronous=FULL``), then ack.

Figures per run: messages per second (wall time, first fetch to last ack) and CPU
time per message (``time.process_time``, every thread of this process, the store's
writer thread included; the NATS server's own CPU is not in it). On a loaded machine
trust the CPU figure more than the wall one.

    python bench/streams.py [--messages 20000] [--batches 10,100,500] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

import nats  # noqa: E402
import orjson  # noqa: E402
import structlog  # noqa: E402

from interlock import Context, Contract, Interlock  # noqa: E402
from interlock.streams import StreamRunner  # noqa: E402
from interlock.streams import nats as nats_streams  # noqa: E402

NATS_URL = os.environ.get("BENCH_NATS_URL", "nats://127.0.0.1:4222")


class OrderCreated(Contract, event="bench.order_created", version=1, subject="order_id"):
    order_id: str
    account: str
    amount: int


async def publish(stream: str, prefix: str, n: int) -> None:
    nc = await nats.connect(NATS_URL)
    js = nc.jetstream()
    await js.add_stream(name=stream, subjects=[f"{prefix}.>"])
    for start in range(0, n, 1000):
        await asyncio.gather(
            *(
                js.publish(
                    f"{prefix}.order.created",
                    orjson.dumps({"id": i, "account": f"acct-{i % 500}", "amount": i}),
                )
                for i in range(start, min(n, start + 1000))
            )
        )
    await nc.close()


async def raw(stream: str, prefix: str, n: int, batch: int) -> dict[str, Any]:
    nc = await nats.connect(NATS_URL)
    js = nc.jetstream()
    sub = await js.pull_subscribe(f"{prefix}.>", durable=f"raw{batch}", stream=stream)
    done = 0
    cpu, wall = time.process_time(), time.perf_counter()
    while done < n:
        for msg in await sub.fetch(batch, timeout=2):
            await msg.ack()
            done += 1
    await nc.flush()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    await nc.close()
    return {"kind": "raw", "batch": batch, "msgs_per_s": n / wall, "cpu_us_per_msg": cpu / n * 1e6}


async def intake(stream: str, prefix: str, n: int, batch: int, workdir: Path) -> dict[str, Any]:
    app = Interlock("bench-streams", f"sqlite:///{workdir / f'streams-{batch}.db'}")

    @app.flow(OrderCreated, owner="bench@interlock.test", key="account")
    async def book(event: OrderCreated, ctx: Context) -> None:
        return None

    orders = app.stream(
        "orders",
        nats_streams.source(
            url=NATS_URL,
            stream=stream,
            subject=f"{prefix}.>",
            durable=f"interlock{batch}",
            batch=batch,
            max_in_flight=max(1000, batch),
        ),
    )

    @orders.maps(f"{prefix}.order.created")
    def created(body: dict[str, Any]) -> OrderCreated:
        return OrderCreated(
            order_id=str(body["id"]), account=body["account"], amount=body["amount"]
        )

    app.store  # noqa: B018 - migrate before timing
    runner = StreamRunner(app, orders)
    source = orders.source
    await source.connect()
    handled = 0
    cpu, wall = time.process_time(), time.perf_counter()
    while handled < n:  # as the runner's loop does, to the last message
        messages = await source.fetch(2.0)
        if not messages:
            break
        if await runner.handle(messages):
            handled += len(messages)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    await source.close()
    stored = len(app.store.list_events(type=OrderCreated.event_type(), limit=n + 1))
    app.close()
    if handled != n or stored != n:
        raise SystemExit(f"batch {batch}: handled {handled}, stored {stored}, expected {n}")
    return {
        "kind": "interlock",
        "batch": batch,
        "msgs_per_s": n / wall,
        "cpu_us_per_msg": cpu / n * 1e6,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--batches", default="10,100,500")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))
    tag = secrets.token_hex(4)
    stream, prefix = f"BENCH_{tag}", f"bench{tag}"
    await publish(stream, prefix, args.messages)
    results = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for batch in (int(b) for b in args.batches.split(",")):
                results.append(await raw(stream, prefix, args.messages, batch))
                results.append(await intake(stream, prefix, args.messages, batch, Path(tmp)))
    finally:
        nc = await nats.connect(NATS_URL)
        await nc.jetstream().delete_stream(stream)
        await nc.close()
    if args.json:
        print(json.dumps({"messages": args.messages, "results": results}))
        return
    print(f"{args.messages:,} messages, NATS {NATS_URL}, SQLite durable")
    print(f"{'kind':<10} {'batch':>6} {'msgs/s':>9} {'CPU µs/msg':>11}")
    for r in results:
        print(
            f"{r['kind']:<10} {r['batch']:>6} {r['msgs_per_s']:>9,.0f} {r['cpu_us_per_msg']:>11.1f}"
        )


if __name__ == "__main__":
    asyncio.run(main())
