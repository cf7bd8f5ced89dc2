"""Browser tests: Debian's Chromium driven by Playwright against a real gateway.

One browser for the package (Playwright's sync API runs its own event loop in the
main thread, so it is stopped before the async tests of other packages run); one gateway (with a worker, the traffic generator and the
sandbox's generic simulator as the CRM) per module. Without Chromium or Playwright
the tests skip with the reason, unless INTERLOCK_REQUIRE_SERVICES=1 (CI), where
they fail. Screenshots go to tests/e2e/artifacts/ (git-ignored).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator

import pytest

from interlock.sandbox import run
from interlock.secrets import KEY_VARIABLE, new_key

from .billing import build
from .harness import DESKTOP, Served, Site

CHROMIUM = os.environ.get("INTERLOCK_CHROMIUM", "/usr/bin/chromium")

try:
    from playwright.sync_api import Browser, BrowserContext, Playwright, sync_playwright
except ImportError:  # pragma: no cover - a dev dependency
    sync_playwright = None  # type: ignore[assignment]


def _missing(reason: str) -> None:
    if os.environ.get("INTERLOCK_REQUIRE_SERVICES") == "1":
        pytest.fail(f"browser tests need {reason} (INTERLOCK_REQUIRE_SERVICES=1)")
    pytest.skip(f"browser tests need {reason}")


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    if sync_playwright is None:
        _missing("playwright (pip install playwright)")
    if not os.path.exists(CHROMIUM):
        _missing(f"Chromium at {CHROMIUM} (apt-get install chromium)")
    pw: Playwright = sync_playwright().start()
    try:
        chromium = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
    except Exception as exc:
        pw.stop()
        _missing(f"a Chromium that starts ({exc})")
    yield chromium
    chromium.close()
    pw.stop()


@pytest.fixture(scope="module")
def site(browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    saved = {k: os.environ.get(k) for k in ("INTERLOCK_SECRET_CRM_KEY", KEY_VARIABLE)}
    os.environ["INTERLOCK_SECRET_CRM_KEY"] = "sandbox-api-key"
    os.environ[KEY_VARIABLE] = new_key()
    db = tmp_path_factory.mktemp("e2e") / "billing.db"
    contexts: list[BrowserContext] = []
    with run(("generic",), seed=3) as vendors:
        app = build(f"sqlite:///{db}", vendors.generic.url)
        served = Served(app).start()
        tokens = {}
        for role in ("admin", "operator", "viewer"):
            made = served.call(
                app.store.create_token(f"{role}-e2e", role, actor="e2e", now=time.time())
            )
            tokens[role] = made.secret

        logged_in: dict[str, BrowserContext] = {}

        def login(role: str) -> BrowserContext:
            """A browser context logged in with the role's token (one per role)."""
            if role in logged_in:
                return logged_in[role]
            context = logged_in[role] = browser.new_context(viewport=DESKTOP, base_url=served.url)
            contexts.append(context)
            page = context.new_page()
            page.goto("/")
            page.get_by_label("API token").fill(tokens[role])
            page.get_by_role("button", name="Log in").click()
            page.wait_for_url(re.compile(r"/$"))
            page.close()
            return context

        try:
            yield Site(served, vendors, tokens, login, browser)
        finally:
            for context in contexts:
                context.close()
            served.stop()
            app.close()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
