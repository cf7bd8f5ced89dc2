"""The dashboard in a real browser: what operators see and may do, and what nobody may."""

from __future__ import annotations

import time
from collections.abc import Callable

from playwright.sync_api import Page, expect

from .harness import Site, shoot


def wait_for(check: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def quiet(site: Site) -> None:
    """Stop the traffic and wait until nothing is in flight."""
    site.served.traffic(False)
    in_flight = ("queued", "pending", "running", "waiting")
    wait_for(
        lambda: not any(c.get(s) for c in site.app.store.flow_counts().values() for s in in_flight),
        what="the flows to go idle",
    )


def cell(page: Page, flow: str, key: str) -> str:
    return page.locator(f'tr[data-flow="{flow}"] td[data-k="{key}"]').inner_text().strip()


def test_overview_shows_every_flow_with_the_stores_numbers(site: Site) -> None:
    site.served.traffic(True)
    wait_for(lambda: sum(sum(c.values()) for c in site.app.store.flow_counts().values()) > 60)
    quiet(site)
    page = site.login("operator").new_page()
    page.goto("/")
    counts = site.app.store.flow_counts()
    for flow in ("remind_overdue", "route_demo"):
        c = counts[flow]
        assert cell(page, flow, "in") == str(sum(c.values()))
        assert cell(page, flow, "out") == str(c.get("succeeded", 0))
        assert cell(page, flow, "dead") == str(c.get("dead", 0))
    expect(page.locator('tr[data-flow="remind_overdue"] th')).to_contain_text("invoice.overdue")
    shoot(page, "overview")
    # Live: new traffic shows up without a reload.
    before = cell(page, "route_demo", "in")
    site.served.traffic(True)
    expect(page.locator('tr[data-flow="route_demo"] td[data-k="in"]')).not_to_have_text(
        before, timeout=15_000
    )
    page.close()
