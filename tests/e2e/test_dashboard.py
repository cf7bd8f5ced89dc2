"""The dashboard in a real browser: what operators see and may do, and what nobody may."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import httpx
from playwright.sync_api import Page, expect

from interlock.dashboard.web import percent, seconds_text
from interlock.observability import flow_stats
from interlock.stores.base import DeadFilter

from .billing import NAUGHTY, InvoiceOverdue
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
    site.vendors.generic.faults.set(error_rate=0.1)  # retries for the page to count
    site.served.traffic(True)
    wait_for(lambda: sum(sum(c.values()) for c in site.app.store.flow_counts().values()) > 60)
    quiet(site)
    site.vendors.generic.faults.clear()
    page = site.login("operator").new_page()
    page.goto("/")
    counts = site.app.store.flow_counts()
    now = time.time()
    stats = flow_stats(site.app, now - 3600, now)
    assert sum(s.retries for s in stats.values()) > 0, "the sandbox's 5xx made retries"
    for flow in ("remind_overdue", "route_demo"):
        c, s = counts[flow], stats[flow]
        assert s.events_in == sum(c.values()), "every delivery of the run is in the hour"
        assert cell(page, flow, "in") == str(s.events_in)
        assert cell(page, flow, "out") == str(s.succeeded) == str(c.get("succeeded", 0))
        assert cell(page, flow, "retries") == str(s.retries)
        assert cell(page, flow, "dead") == str(c.get("dead", 0))
        assert s.lag_p95 is not None
        assert cell(page, flow, "p95") == seconds_text(s.lag_p95)
        assert cell(page, flow, "success") == percent(s.success_rate)
    expect(page.locator('tr[data-flow="remind_overdue"] td[data-k="slo"] .badge')).to_have_text(
        "ok"
    )
    expect(page.locator('[data-total="events_in"]')).to_have_text(
        str(sum(s.events_in for s in stats.values()))
    )
    expect(page.locator('tr[data-flow="remind_overdue"] th')).to_contain_text("invoice.overdue")
    shoot(page, "overview")
    # Live: new traffic shows up without a reload.
    before = cell(page, "route_demo", "in")
    site.served.traffic(True)
    expect(page.locator('tr[data-flow="route_demo"] td[data-k="in"]')).not_to_have_text(
        before, timeout=15_000
    )
    page.close()


def emit(site: Site, invoice: str, note: str = "first reminder") -> str:
    event = InvoiceOverdue(
        invoice_id=invoice, account_id=f"acct_{invoice}", email=f"{invoice}@example.test", note=note
    )
    return site.served.call(site.app.emit(event, source="stripe"))


def dead_letter(site: Site, invoice: str) -> int:
    found: list[int] = []

    def dead() -> bool:
        found[:] = [
            d.id
            for d in site.app.store.list_dead(DeadFilter(flow="remind_overdue"))
            if d.subject == f"invoice:{invoice}"
        ]
        return bool(found)

    wait_for(dead, what=f"invoice {invoice} to be dead-lettered")
    return found[0]


def test_search_for_a_business_id_shows_its_whole_timeline(site: Site) -> None:
    quiet(site)
    emit(site, "in_trace", note="flaky")  # the first attempt fails, the retry works
    wait_for(
        lambda: any(
            d.status == "succeeded" for d in site.app.store.trace("invoice:in_trace").deliveries
        ),
        what="the traced invoice to succeed",
    )
    page = site.login("viewer").new_page()
    page.goto("/ui/search")
    page.get_by_label(re.compile("Business id")).fill("invoice:in_trace")
    page.get_by_role("button", name="Trace").click()
    event = page.locator("li.event")
    expect(event).to_have_count(1)
    expect(event.locator("h2")).to_contain_text("invoice.overdue")
    delivery = event.locator("li.delivery")
    expect(delivery).to_contain_text("remind_overdue")
    expect(delivery.locator("h3 .badge")).to_have_text("succeeded")
    entries = delivery.locator("li.entry")
    expect(entries.filter(has_text="attempt 1")).to_contain_text("retry")
    expect(entries.filter(has_text="attempt 1")).to_contain_text("retry in")
    expect(entries.filter(has_text="attempt 1")).to_contain_text("503")
    expect(entries.filter(has_text="attempt 2")).to_contain_text("succeeded")
    expect(entries.filter(has_text="step remind")).to_have_count(1)
    # The step shows the connector call it made: method, path, status, time, key.
    call = entries.filter(has_text="step remind").locator("table.calls tbody tr")
    expect(call).to_have_count(1)
    expect(call).to_contain_text("crm")
    expect(call).to_contain_text("POST /v1/reminders")
    expect(call.locator('td[data-k="status"]')).to_have_text("201")
    expect(call).to_contain_text(re.compile(r"\d+ ms"))
    expect(call).to_contain_text(re.compile(r"il_[0-9a-f]{40}"))
    # The payload is there, with the PII field masked wherever it would appear.
    event.locator("details summary").first.click()
    expect(event.locator("pre.payload").first).to_contain_text("[redacted]")
    assert "in_trace@example.test" not in page.content()
    # The bare id finds the same event.
    page.goto("/ui/search?q=in_trace")
    expect(page.locator("li.event")).to_have_count(1)
    shoot(page, "search")
    page.close()


def test_a_dead_letter_is_replayed_from_the_page_and_then_succeeds(site: Site) -> None:
    quiet(site)
    site.vendors.generic.faults.outage(2.0)
    emit(site, "in_outage")
    delivery = dead_letter(site, "in_outage")
    time.sleep(2.0)  # the outage is over
    page = site.login("operator").new_page()
    page.goto("/ui/dead-letters?flow=remind_overdue")
    row = page.locator(f'tr[data-delivery="{delivery}"]')
    expect(row).to_contain_text("invoice:in_outage")
    shoot(page, "dead-letters")
    row.get_by_role("checkbox").check()
    page.get_by_label(re.compile("^Reason")).fill("CRM outage over")
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("[data-preview-count]")).to_have_text("1")
    expect(page.locator(f'tr[data-delivery="{delivery}"]')).to_contain_text("invoice:in_outage")
    assert site.app.store.get_delivery(delivery).status == "dead", "a preview changes nothing"
    shoot(page, "replay-preview")
    page.get_by_role("button", name=re.compile("^Confirm")).click()
    expect(page.locator("#result-summary")).to_contain_text("1 replayed")
    # The result follows the delivery live until it succeeds.
    expect(page.locator(f'tr[data-delivery="{delivery}"] td[data-k="status"]')).to_have_text(
        "succeeded", timeout=15_000
    )
    shoot(page, "replay-result")
    row_after = site.app.store.get_delivery(delivery)
    assert (row_after.status, row_after.chain) == ("succeeded", 2)
    (entry,) = site.app.store.list_audit(10, action="dlq.replay", target=f"delivery:{delivery}")
    assert (entry.actor, entry.reason) == ("token:operator-e2e", "CRM outage over")
    page.goto("/ui/audit")
    expect(page.locator(f'tr[data-audit="{entry.id}"]')).to_contain_text("CRM outage over")
    shoot(page, "audit")
    page.close()


def test_a_viewer_sees_no_controls_and_the_server_refuses_them(site: Site) -> None:
    quiet(site)
    emit(site, "in_viewer", note="reject: not ours")
    delivery = dead_letter(site, "in_viewer")
    page = site.login("viewer").new_page()
    page.goto("/ui/dead-letters")
    expect(page.locator(f'tr[data-delivery="{delivery}"]')).to_be_visible()
    page.keyboard.press("Tab")  # keyboard users start at the skip link
    expect(page.locator(":focus")).to_have_text("Skip to content")
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
    expect(page.get_by_role("checkbox")).to_have_count(0)
    expect(page.get_by_role("button", name="Preview")).to_have_count(0)
    page.goto(f"/ui/dead-letters/{delivery}")
    expect(page.get_by_role("button", name="Preview")).to_have_count(0)
    # Forged with the viewer's own session and CSRF token: refused all the same.
    csrf = page.locator("form.who input[name=csrf]").input_value()
    form = {"csrf": csrf, "action": "replay", "reason": "x", "confirm": "1", "ids": str(delivery)}
    for path in ("/ui/dead-letters/preview", "/ui/dead-letters/act"):
        answer = page.request.post(path, form=form, headers={"Origin": site.url})
        assert answer.status == 403, path
    api = httpx.post(
        f"{site.url}/api/v1/dead-letters/{delivery}/replay",
        json={"reason": "x"},
        headers={"Authorization": f"Bearer {site.tokens['viewer']}"},
    )
    assert api.status_code == 403
    assert site.app.store.get_delivery(delivery).status == "dead"
    page.close()


def test_payload_text_is_data_never_markup(site: Site) -> None:
    quiet(site)
    for i, text in enumerate(NAUGHTY):
        emit(site, f"in_naughty_{i}", note=f"reject {text}")
    delivery = dead_letter(site, "in_naughty_0")
    page = site.login("operator").new_page()
    page.goto("/ui/search?q=in_naughty_0")
    page.locator("li.event details summary").first.click()
    expect(page.locator("li.event pre.payload").first).to_contain_text(NAUGHTY[0])
    expect(page.locator("li.entry .reason").first).to_contain_text(NAUGHTY[0])
    page.goto("/ui/dead-letters")
    for i, text in enumerate(NAUGHTY[:4]):
        row = page.locator("tr", has_text=f"invoice:in_naughty_{i}")
        expect(row.locator(".reason")).to_contain_text(text.strip())
    page.goto(f"/ui/dead-letters/{delivery}")
    expect(page.locator("dd.reason")).to_contain_text(NAUGHTY[0])
    for path in ("/ui/search?q=in_naughty_1", "/ui/dead-letters", "/", "/ui/flows/remind_overdue"):
        page.goto(path)
        assert page.evaluate("window.__pwned") is None, path
        assert page.locator("img").count() == 0, path
        assert page.locator("script:not([src])").count() == 0, path
    page.close()


def test_state_changes_need_the_sessions_csrf_token_and_this_origin(site: Site) -> None:
    quiet(site)
    emit(site, "in_csrf", note="reject: csrf")
    delivery = dead_letter(site, "in_csrf")
    page = site.login("operator").new_page()
    page.goto("/")
    csrf = page.locator("form.who input[name=csrf]").input_value()
    form = {"action": "replay", "reason": "x", "confirm": "1", "ids": str(delivery)}
    for headers, token in (
        ({"Origin": site.url}, "forged"),
        ({"Origin": site.url}, ""),
        ({"Origin": "https://evil.example"}, csrf),
    ):
        answer = page.request.post(
            "/ui/dead-letters/act", form={**form, "csrf": token}, headers=headers
        )
        assert answer.status == 403
        assert "CSRF" in answer.text()
    assert site.app.store.get_delivery(delivery).status == "dead"
    # With both, the same request goes through.
    answer = page.request.post(
        "/ui/dead-letters/act",
        form={**form, "csrf": csrf, "dry_run": "1"},
        headers={"Origin": site.url},
    )
    assert answer.ok
    page.close()


def test_a_burn_rate_alert_fires_on_the_page_during_an_outage_and_clears_after(
    site: Site,
) -> None:
    page = site.login("viewer").new_page()
    page.goto("/")
    site.served.traffic(True)
    time.sleep(2.0)
    expect(page.locator("#no-alerts")).to_be_visible(timeout=15_000)
    site.vendors.generic.faults.outage(6.0)
    alert = page.locator('.alerts li[data-alert-flow="remind_overdue"]')
    expect(alert).to_be_visible(timeout=20_000)
    expect(alert).to_contain_text("page")
    expect(page.locator('tr[data-flow="remind_overdue"] td[data-k="slo"] .badge')).to_have_text(
        "page"
    )
    shoot(page, "overview-alert")
    page.goto("/ui/flows/remind_overdue?window=15m")
    expect(page.locator('[data-alert-flow="remind_overdue"]')).to_be_visible()
    shoot(page, "flow")
    page.goto("/")
    expect(page.locator("#no-alerts")).to_be_visible(timeout=30_000)
    fired = site.app.store.list_alerts(flow="remind_overdue", severity="page")
    assert fired and all(a.state == "resolved" and a.resolved_at for a in fired)
    site.served.traffic(False)
    page.goto("/ui/connectors")
    expect(page.locator('tr[data-connector="crm"]')).to_contain_text("retryable")
    shoot(page, "connectors")
    page.close()


def test_sessions_are_strict_cookies_that_end_on_logout_and_revocation(site: Site) -> None:
    made = site.served.call(
        site.app.store.create_token("short-lived", "operator", actor="e2e", now=time.time())
    )
    context = site.browser.new_context(base_url=site.url)
    page = context.new_page()
    answer = page.goto("/ui/login")
    assert answer is not None and "script-src 'self'" in answer.headers["content-security-policy"]
    page.get_by_label("API token").fill(made.secret)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("h1")).to_have_text("Overview")
    (cookie,) = [c for c in context.cookies() if c["name"] == "interlock_session"]
    assert (cookie["httpOnly"], cookie["sameSite"], cookie["secure"]) == (True, "Strict", False)
    assert page.evaluate("document.cookie") == "", "no script can read the session"
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_label("API token")).to_be_visible()
    context.add_cookies([{**cookie}])  # the old session id is worth nothing now
    page.goto("/ui/audit")
    expect(page.get_by_label("API token")).to_be_visible()
    page.get_by_label("API token").fill(made.secret)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("h1")).to_have_text("Audit trail")  # back where it was going
    site.served.call(
        site.app.store.revoke_token(made.row.id, actor="e2e", reason="left", now=time.time())
    )
    page.goto("/")
    expect(page.get_by_label("API token")).to_be_visible()
    context.close()


def test_failed_logins_are_rate_limited_per_address(site: Site) -> None:
    context = site.login("viewer")  # a session from before keeps working
    stranger = site.browser.new_context(base_url=site.url)
    page = stranger.new_page()
    page.goto("/ui/login")
    nonce = page.locator("input[name=nonce]").input_value()
    wrong = {"token": "ilk_0000000000000000_" + "x" * 43, "nonce": nonce, "next": "/"}
    statuses = [page.request.post("/ui/login", form=wrong).status for _ in range(5)]
    assert statuses == [401] * 5
    page.get_by_label("API token").fill(site.tokens["admin"])  # even the right token waits now
    with page.expect_response("**/ui/login") as answer:
        page.get_by_role("button", name="Log in").click()
    assert answer.value.status == 429
    assert 0 < int(answer.value.headers["retry-after"]) <= 300
    expect(page.locator("#login-error")).to_contain_text("Too many failed logins")
    shoot(page, "login-throttled")
    refused = site.served.call(_refused(site))
    assert (refused.get("login_failed"), refused.get("login_throttled")) == (5, 1)
    viewer = context.new_page()
    viewer.goto("/ui/audit")
    expect(viewer.locator("h1")).to_have_text("Audit trail")
    stranger.close()


async def _refused(site: Site) -> dict[str, int]:
    async with httpx.AsyncClient(base_url=site.url) as client:
        text = (await client.get("/metrics")).text
    found = {}
    for line in text.splitlines():
        match = re.match(r'interlock_api_refused_total\{reason="(\w+)"\} (\d+)', line)
        if match:
            found[match.group(1)] = int(float(match.group(2)))
    return found
