"""Burn-rate alerting end to end, on the real clock with short windows: a worker runs a
flow against the sandbox's generic service while traffic flows; the sandbox injects an
outage, deliveries fail, the page alert fires once (a Standard Webhooks-signed notice that
the ``standardwebhooks`` library verifies, a message in the Slack simulator, a log event);
the outage ends, the alert resolves, and the same sinks hear of it. The API and /metrics
show it throughout."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import standardwebhooks
import uvicorn
from starlette.requests import Request
from starlette.responses import Response

from interlock import SLO, Context, Contract, Interlock, Retry
from interlock.connectors import ApiKey, HttpConnector, Slack, Timeouts
from interlock.gateway.app import build_gateway
from interlock.observability import (
    AlertEvaluator,
    AlertPolicy,
    BurnWindow,
    SlackSink,
    WebhookSink,
)
from interlock.sandbox import Vendors, run

SECRET = "whsec_" + base64.b64encode(b"alert-hook-signing-key-0123456789").decode()


class LeadQualified(Contract, event="lead.qualified.alerts", subject="lead_id"):
    lead_id: str


@pytest.fixture(scope="module")
def vendors() -> Iterator[Vendors]:
    with run(("generic", "slack")) as served:
        yield served


class Receiver:
    """A webhook endpoint on loopback that keeps what it got."""

    def __init__(self) -> None:
        self.got: list[tuple[bytes, dict[str, str]]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        self.got.append((await request.body(), dict(request.headers)))
        await Response(status_code=204)(scope, receive, send)


@contextlib.asynccontextmanager
async def serve_on_loopback(asgi: Any) -> AsyncIterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(asgi, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


async def until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_an_outage_fires_the_page_alert_and_recovery_clears_it(
    tmp_path: Path, vendors: Vendors, monkeypatch: pytest.MonkeyPatch
) -> None:
    vendors.reset()
    generic, slack_sim = vendors.generic, vendors.slack
    monkeypatch.setenv("INTERLOCK_SECRET_GENERIC_KEY", "sandbox-api-key")
    monkeypatch.setenv("INTERLOCK_SECRET_SLACK_BOT_TOKEN", slack_sim.credentials["bot_token"])
    monkeypatch.setenv("INTERLOCK_SECRET_ALERTS_HOOK", SECRET)
    app = Interlock("alerts", f"sqlite:///{tmp_path / 'alerts.db'}")
    timeouts = Timeouts(total="0.5s")
    app.connector(
        HttpConnector(
            "crm",
            base_url=generic.url,
            auth=ApiKey(secret="generic-key"),
            breaker=None,
            timeouts=timeouts,
        )
    )
    app.connector(Slack(base_url=slack_sim.url, breaker=None, timeouts=timeouts))

    @app.flow(
        LeadQualified,
        owner="revops@acme.test",
        slo=SLO(target=0.9, within="2s", window="1h"),
        retry=Retry(attempts=2, base="0.1s", cap="0.1s", jitter=False),
        on_dead="skip",
    )
    async def touch_crm(event: LeadQualified, ctx: Context) -> None:
        await ctx.connector("crm").post("/v1/touches", {"lead": event.lead_id})

    receiver = Receiver()
    async with serve_on_loopback(receiver) as hook_url:
        app.alerting.policy = AlertPolicy(
            windows=(BurnWindow("page", long="6s", short="2s", factor=2.0),), min_events=3
        )
        app.alerting.every = 0.25
        app.alerting.sinks.append(WebhookSink(hook_url, secret="alerts-hook"))
        app.alerting.sinks.append(SlackSink("#alerts"))
        stop = asyncio.Event()
        outage = asyncio.Event()
        sent = 0

        async def traffic() -> None:
            nonlocal sent
            while not stop.is_set():
                await app.emit(LeadQualified(lead_id=f"lead-{sent}"))
                sent += 1
                await asyncio.sleep(0.05)

        # a second evaluator stands by: only one holds the lock, the alert fires once
        standby = AlertEvaluator(app, holder="standby")
        worker = asyncio.create_task(app.worker(concurrency=16).run(stop))
        load = asyncio.create_task(traffic())
        try:
            await asyncio.sleep(1.5)
            assert app.store.list_alerts() == [], "healthy traffic fires nothing"
            generic.faults.outage(600)
            outage.set()
            await until(lambda: bool(app.store.list_alerts(firing=True)), 15, "the alert")
            assert await standby.evaluate(time.time()) == []
            (fired,) = app.store.list_alerts(firing=True)
            assert (fired.flow, fired.severity) == ("touch_crm", "page")
            assert fired.burn_long >= 2 and fired.burn_short >= 2
            await until(lambda: len(receiver.got) >= 1, 10, "the fired webhook")
            await until(
                lambda: any("FIRING" in m["text"] for m in slack_sim.state["messages"].values()),
                10,
                "the Slack message",
            )
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=build_gateway(app)), base_url="http://gw"
            ) as client:
                token = (await app.store.create_token("ops", "viewer", actor="t", now=0)).secret
                auth = {"authorization": f"Bearer {token}"}
                listed = (await client.get("/api/v1/alerts?state=firing", headers=auth)).json()
                assert [a["id"] for a in listed["items"]] == [fired.id]
                flow = (await client.get("/api/v1/flows/touch_crm", headers=auth)).json()
                assert flow["health"]["slo"]["status"] == "page"
                assert flow["health"]["slo"]["alerts"][0]["severity"] == "page"
                metrics = (await client.get("/metrics", headers=auth)).text
                assert 'interlock_alerts_firing{flow="touch_crm",severity="page"} 1.0' in metrics
                assert 'interlock_slo_burn_rate{flow="touch_crm",window="2s"}' in metrics

            generic.faults.clear()  # the vendor is back
            await until(lambda: not app.store.list_alerts(firing=True), 20, "the resolve")
            (resolved,) = app.store.list_alerts()
            assert resolved.id == fired.id and resolved.resolved_at is not None
            await until(lambda: len(receiver.got) >= 2, 10, "the resolved webhook")
            await until(
                lambda: any("RESOLVED" in m["text"] for m in slack_sim.state["messages"].values()),
                10,
                "the Slack resolve",
            )
        finally:
            stop.set()
            await asyncio.gather(worker, load)
            for connector in app.connectors.values():
                await connector.aclose()
            app.close()

    kinds = []
    for body, headers in receiver.got:
        payload = standardwebhooks.Webhook(SECRET).verify(body, headers)
        assert payload == orjson.loads(body)
        assert headers["webhook-id"] == f"alert_{fired.id}_{payload['type'].rsplit('.', 1)[1]}"
        kinds.append(payload["type"])
        assert payload["data"]["flow"] == "touch_crm"
        assert payload["data"]["owner"] == "revops@acme.test"
    assert kinds == ["interlock.alert.fired", "interlock.alert.resolved"]
    body, headers = receiver.got[0]
    with pytest.raises(standardwebhooks.WebhookVerificationError):  # a changed body fails
        standardwebhooks.Webhook(SECRET).verify(body + b" ", headers)
