"""One worker process of the multi-process tests: a connector of an app on a shared SQLite
store, calling the sandbox in the test's process from a given instant.

    python child.py limiter|oauth DATABASE_URL BASE_URL SECONDS

Once set up (imports, the store, for ``limiter`` a kept-alive socket), it prints
``ready`` and reads the instant to start at (epoch seconds) from stdin, so that all
processes start together however long each took to import. Then it prints one JSON
line: the number of calls made and their outcomes.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter

import orjson

from interlock import Interlock
from interlock.connectors import ApiKey, HttpConnector, OAuth2RefreshToken, Rate


def connector(mode: str, app: Interlock, base_url: str) -> HttpConnector:
    if mode == "limiter":
        made = HttpConnector(
            "crm", base_url=base_url, auth=ApiKey(secret="generic-key"), rate=Rate(20, per="1s")
        )
    else:
        auth = OAuth2RefreshToken(
            token_url="/oauth/token",
            client_id="generic-sandbox-client",
            client_secret="crm-client-secret",
            refresh_token="crm-refresh-token",
        )
        made = HttpConnector("crm", base_url=base_url, auth=auth)
    return app.connector(made)


async def main(mode: str, url: str, base_url: str, seconds: float) -> None:
    app = Interlock("child", url)
    crm = connector(mode, app, base_url)
    outcomes: Counter[str] = Counter()
    if mode == "limiter":  # warm up: imports, the store's connections, a kept-alive socket
        await crm.get("/v1/warmup")
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    start_at = float(line)
    await asyncio.sleep(max(0.0, start_at - time.time()))
    deadline = start_at + seconds

    async def caller() -> None:
        while True:
            try:
                await crm.get("/v1/customers")
                outcomes["ok"] += 1
            except Exception as exc:
                outcomes[type(exc).__name__] += 1
            if mode == "oauth" or time.time() >= deadline:
                return

    await asyncio.gather(*(caller() for _ in range(5)))
    await crm.aclose()
    app.close()
    sys.stdout.write(orjson.dumps(dict(outcomes)).decode() + "\n")


if __name__ == "__main__":
    mode, url, base_url, seconds = sys.argv[1:5]
    asyncio.run(main(mode, url, base_url, float(seconds)))
