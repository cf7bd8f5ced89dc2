"""A real gateway with a worker and a traffic generator, on loopback, in a thread.

The gateway is uvicorn on a port the OS picked; the worker and the traffic share its
event loop, as in ``interlock run``. Tests talk to it over HTTP (the browser) and
read the store directly to compare.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from playwright.sync_api import Browser, BrowserContext, Page

from interlock import Interlock
from interlock.gateway.server import bind, server_for
from interlock.sandbox import Vendors
from interlock.worker import WorkerConfig

from .billing import traffic

T = TypeVar("T")
ARTIFACTS = Path(__file__).parent / "artifacts"
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}


class Served:
    def __init__(self, app: Interlock) -> None:
        self.app = app
        self.sock = bind("127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.loop = asyncio.new_event_loop()
        self.running = asyncio.Event()
        self._stop = asyncio.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="e2e-gateway", daemon=True)

    def start(self) -> Served:
        self._thread.start()
        if not self._ready.wait(15):
            raise RuntimeError("the gateway did not start")
        return self

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        server = server_for(self.app, "127.0.0.1", 0)
        worker = self.app.worker(WorkerConfig(concurrency=64, lease=10.0, grace=2.0))
        tasks = [
            asyncio.create_task(server.serve(sockets=[self.sock])),
            asyncio.create_task(worker.run(self._stop)),
            asyncio.create_task(traffic(self.app, self.running)),
        ]
        while not server.started:
            await asyncio.sleep(0.01)
        self._ready.set()
        await self._stop.wait()
        server.should_exit = True
        tasks[2].cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        """Run ``coro`` on the gateway's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def traffic(self, on: bool) -> None:
        self.loop.call_soon_threadsafe(self.running.set if on else self.running.clear)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(15)
        self.sock.close()
        self.loop.close()


@dataclass
class Site:
    served: Served
    vendors: Vendors
    tokens: dict[str, str]
    login: Callable[[str], BrowserContext]
    browser: Browser

    @property
    def url(self) -> str:
        return self.served.url

    @property
    def app(self) -> Interlock:
        return self.served.app


def shoot(page: Page, name: str) -> None:
    """Save ``page`` as artifacts/<name>-desktop.png and -phone.png."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.set_viewport_size(DESKTOP)
    page.screenshot(path=str(ARTIFACTS / f"{name}-desktop.png"), full_page=True)
    page.set_viewport_size(PHONE)
    page.screenshot(path=str(ARTIFACTS / f"{name}-phone.png"), full_page=True)
    page.set_viewport_size(DESKTOP)
