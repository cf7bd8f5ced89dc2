"""Synthetic checks, ``interlock connectors list|check``, and the connector metrics."""

from __future__ import annotations

import asyncio
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from prometheus_client import generate_latest
from typer.testing import CliRunner

from interlock import Interlock
from interlock.cli.common import load_app
from interlock.cli.connectors import connectors_cli
from interlock.connectors import ApiKey, HttpConnector, Rate, check_all, connector_metrics
from interlock.sandbox import GenericSimulator
from interlock.worker import Worker, WorkerConfig

APP = """
import os
from interlock import Interlock
from interlock.connectors import ApiKey, HttpConnector, Rate

app = Interlock("cli", os.environ["TEST_DB_URL"])
url = os.environ["TEST_CRM_URL"]
app.connector(HttpConnector("crm", base_url=url, auth=ApiKey(secret="generic-key"),
                            rate=Rate(10), probe="/v1/customers?limit=1"))
app.connector(HttpConnector("erp", base_url=url, auth=ApiKey(secret="wrong-key"),
                            probe="/v1/orders"))
app.connector(HttpConnector("quiet", base_url=url))
"""


@pytest.fixture
def app_path(
    tmp_path: Path, generic: GenericSimulator, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    (tmp_path / "connectors_app.py").write_text(textwrap.dedent(APP))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TEST_DB_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("TEST_CRM_URL", generic.url)
    monkeypatch.setenv("INTERLOCK_SECRET_WRONG_KEY", "wrong-api-key")
    yield "connectors_app:app"
    sys.modules.pop("connectors_app", None)


def test_check_reports_every_probe_and_fails_when_one_fails(app_path: str) -> None:
    result = CliRunner().invoke(connectors_cli, ["check", app_path, "--json"])
    assert result.exit_code == 1, result.output
    rows = {r["connector"]: r for r in orjson.loads(result.stdout)}
    assert rows["crm"]["ok"] is True and rows["crm"]["status"] == 200
    assert rows["crm"]["remaining"] is not None and rows["crm"]["limit"] == 600
    assert rows["erp"]["ok"] is False and rows["erp"]["auth"] == "denied"
    assert "401" in rows["erp"]["error"]
    assert rows["quiet"]["ok"] is None
    table = CliRunner().invoke(connectors_cli, ["check", app_path, "--connector", "crm"])
    assert table.exit_code == 0, table.output
    assert "crm" in table.output and "erp" not in table.output


def test_list_shows_configuration_and_shared_state(app_path: str) -> None:
    app = load_app(app_path)
    result = CliRunner().invoke(connectors_cli, ["list", app_path, "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in orjson.loads(result.stdout)}
    assert rows["crm"]["rate"] == "10/1s"
    assert rows["crm"]["auth"] == "API key in X-API-Key from secret generic-key"
    assert (rows["crm"]["breaker"], rows["crm"]["connection"]) == ("closed", "ok")
    assert set(rows) == set(app.connectors)
    table = CliRunner().invoke(connectors_cli, ["list", app_path])
    assert "crm" in table.output and "10/1s" in table.output


async def test_checks_feed_metrics_and_warn_of_expiring_credentials(
    real_app: Interlock, generic: GenericSimulator
) -> None:
    real_app.secrets.set(
        "crm-key", "sandbox-api-key", actor="ops", now=time.time(), expires_at=time.time() + 60
    )
    crm = real_app.connector(
        HttpConnector(
            "crm",
            base_url=generic.url,
            auth=ApiKey(secret="crm-key"),
            rate=Rate(50),
            probe="/v1/customers?limit=1",
        )
    )
    (result,) = await check_all(real_app)
    assert (result.ok, result.auth) == (True, "expiring")
    await crm.get("/v1/customers")
    await crm.aclose()
    text = generate_latest(connector_metrics(real_app).registry).decode()
    for line in (
        'interlock_connector_check_up{connector="crm",probe="probe"} 1.0',
        'interlock_connector_calls_total{connector="crm",operation="GET /v1/customers",outcome="ok"} 1.0',
        'interlock_connector_breaker_state{connector="crm"} 0.0',
        'interlock_connector_alerts_total{connector="crm",kind="credential_expiring"} 1.0',
    ):
        assert line in text, line
    assert (
        'interlock_connector_credential_expiry_seconds{connector="crm",credential="secret crm-key"}'
        in text
    )
    assert "interlock_connector_call_duration_seconds_bucket" in text
    assert 'interlock_connector_rate_limit_remaining{connector="crm"}' in text


def test_the_connectors_namespace_is_curated() -> None:
    import interlock.connectors as connectors

    assert connectors.__all__ == sorted(connectors.__all__, key=lambda n: (n[0].islower(), n))
    for name in connectors.__all__:
        assert hasattr(connectors, name), name


async def test_a_worker_runs_the_checks_on_a_schedule(
    real_app: Interlock, generic: GenericSimulator
) -> None:
    crm = real_app.connector(
        HttpConnector(
            "crm", base_url=generic.url, auth=ApiKey(secret="generic-key"), probe="/v1/ping-me"
        )
    )
    stop = asyncio.Event()
    worker = Worker(real_app, WorkerConfig(checks_every=0.2))
    running = asyncio.create_task(worker.run(stop))
    await asyncio.sleep(0.7)
    stop.set()
    await running
    await crm.aclose()
    probes = [e for e in generic.requests.all() if e.path == "/v1/ping-me"]
    assert 3 <= len(probes) <= 5
