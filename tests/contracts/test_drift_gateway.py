"""Drift at the gateway on loopback: drifted-but-valid payloads accepted and flagged,
contract failures rejected with nothing stored, findings on the API, metrics and CLI."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from typer.testing import CliRunner

from interlock import PII, Contract, Interlock
from interlock.cli import cli
from interlock.drift import DriftConfig
from interlock.gateway.server import server_for

SECRET = "gh-drift-secret"


class TicketOpened(Contract, event="ticket.opened", subject="ticket_id"):
    ticket_id: int
    priority: str
    requester_email: PII[str]


def build_app(path: Path) -> Interlock:
    app = Interlock("drift", f"sqlite:///{path}")
    app.drift_config = DriftConfig(min_events=20, flush_every=0.05)
    desk = app.webhook("desk", verify="github", secret="desk-secret")

    @desk.maps("tickets")
    def opened(body: dict[str, Any]) -> TicketOpened:
        return TicketOpened(
            ticket_id=body["id"], priority=body["priority"], requester_email=body["email"]
        )

    return app


@pytest.fixture
async def served(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Interlock, str]]:
    monkeypatch.setenv("INTERLOCK_SECRET_DESK_SECRET", SECRET)
    app = build_app(tmp_path / "drift.db")
    server = server_for(app, "127.0.0.1", 0)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield app, f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task
    app.close()


def signed(body: dict[str, Any], n: int) -> tuple[bytes, dict[str, str]]:
    raw = orjson.dumps(body)
    signature = hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    return raw, {
        "content-type": "application/json",
        "x-hub-signature-256": f"sha256={signature}",
        "x-github-event": "tickets",
        "x-github-delivery": f"d-{n}",
    }


async def test_drift_is_flagged_rejections_store_nothing_and_findings_are_exposed(
    served: tuple[Interlock, str],
) -> None:
    app, url = served
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:

        async def post(body: dict[str, Any], n: int) -> httpx.Response:
            raw, headers = signed(body, n)
            return await client.post("/hooks/desk", content=raw, headers=headers)

        for n in range(40):
            body = {"id": n, "priority": ["low", "high"][n % 2], "email": f"p{n}@x.test"}
            answer = await post(body, n)
            assert answer.status_code == 202
            assert "drift" not in answer.json()
        # Valid but drifted: a new field and a new priority value. Accepted and flagged.
        drifted = {"id": 100, "priority": "urgent", "email": "z@x.test", "channel": "chat"}
        answer = await post(drifted, 100)
        assert answer.status_code == 202
        assert sorted(answer.json()["drift"]) == ["new_enum_value:priority", "new_field:channel"]
        # Fails its contract (a string id): 422, nothing stored, but its shape is profiled.
        stored_before = len(app.store.list_events(limit=1000))
        answer = await post({"id": "NA", "priority": "low", "email": "q@x.test"}, 101)
        assert answer.status_code == 422
        assert answer.headers["content-type"] == "application/problem+json"
        assert len(app.store.list_events(limit=1000)) == stored_before
        await asyncio.sleep(0.1)
        await post({"id": 102, "priority": "low", "email": "r@x.test"}, 102)  # triggers a flush
        for _ in range(100):
            if len(app.store.drift_findings()) == 3:
                break
            await asyncio.sleep(0.05)
        kinds = sorted((f.kind, f.path, f.detail) for f in app.store.drift_findings())
        assert kinds == [
            ("new_enum_value", "priority", "urgent"),
            ("new_field", "channel", ""),
            ("type_change", "id", "string"),
        ]
        token = app.store.create_token_sync("v", "viewer", actor="t", now=time.time()).secret
        auth = {"authorization": f"Bearer {token}"}
        assert (await client.get("/api/v1/drift")).status_code == 401
        listed = (await client.get("/api/v1/drift?kind=new_field", headers=auth)).json()
        assert [(f["path"], f["count"], f["event_type"]) for f in listed] == [
            ("channel", 1, "tickets")
        ]
        assert "z@x.test" not in str(listed)
        (profile,) = (await client.get("/api/v1/drift/profiles", headers=auth)).json()
        assert profile["events"] == 43
        assert profile["fields"]["priority"]["values"] == ["high", "low", "urgent"]
        metrics = (await client.get("/metrics")).text
        assert (
            'interlock_drift_findings{event_type="tickets",kind="new_field",source="desk"} 1.0'
            in metrics
        )
        assert 'interlock_drift_flagged_total{source="desk"} 2.0' in metrics
    # Samples keep the payload with its PII replaced.
    samples = app.store.contract_samples("desk")
    assert samples
    assert all("@x.test" not in str(s.payload) for s in samples)
    assert samples[0].headers == {"x-github-event": "tickets"}
    # The CLI lists the same findings.
    result = CliRunner().invoke(
        cli, ["drift", "report", "--database-url", app.database_url, "--json"]
    )
    assert result.exit_code == 0, result.output
    assert len(orjson.loads(result.output)["findings"]) == 3
