"""``interlock slo report`` and ``interlock alerts list`` against a real app and SQLite file."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from interlock.cli import cli
from interlock.cli.common import load_app
from interlock.stores.analytics import NewAlert
from interlock.testing import drain

APP_SOURCE = """
from interlock import SLO, BusinessMetric, Contract, Interlock, Permanent, Retry

app = Interlock("slo-cli")


class DemoRequested(Contract, event="demo.requested", subject="lead_id"):
    lead_id: str


@app.flow(DemoRequested, owner="revops@acme.test", retry=Retry(attempts=1),
          slo=SLO(target=0.99, within="2m", window="1d"),
          metric=BusinessMetric("minutes to first CRM touch", end="succeeded_at"))
async def touch(event: DemoRequested) -> None:
    if event.lead_id.startswith("bad"):
        raise Permanent("the CRM refused the lead")


@app.flow(DemoRequested, owner="revops@acme.test", name="note")
async def note(event: DemoRequested) -> None:
    return None
"""


@pytest.fixture
def app_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "slo_cli_app.py").write_text(textwrap.dedent(APP_SOURCE))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("INTERLOCK_DATABASE_URL", f"sqlite:///{tmp_path / 'slo.db'}")
    return "slo_cli_app:app"


async def test_report_and_alerts(app_path: str) -> None:
    app = load_app(app_path)
    contract = app.contracts["demo.requested"]
    for lead in ("l1", "l2", "l3", "bad1"):
        await app.emit(contract(lead_id=lead))
    await drain(app)
    now = time.time()
    await app.store.fire_alert(
        NewAlert("touch", "page", now, 25.0, 75.0, 3600, 300, 14.4, -24.0, "touch burns")
    )
    runner = CliRunner()
    result = runner.invoke(cli, ["slo", "report", "--app", app_path, "--json"])
    assert result.exit_code == 0, result.output
    touch, note = orjson.loads(result.output)
    assert touch["flow"] == "touch" and touch["slo"]["bad"] == 1 and touch["slo"]["good"] == 3
    assert touch["slo"]["status"] == "page" and touch["metric"]["samples"] == 3
    assert note["slo"] is None and note["metric"] is None
    table = runner.invoke(cli, ["slo", "report", "--app", app_path])
    assert table.exit_code == 0 and "touch" in table.output and "75.00%" in table.output
    listed = runner.invoke(cli, ["alerts", "list", "--firing", "--json", "--app", app_path])
    assert listed.exit_code == 0, listed.output
    (alert,) = orjson.loads(listed.output)
    assert (alert["flow"], alert["severity"], alert["state"]) == ("touch", "page", "firing")
    shown = runner.invoke(cli, ["alerts", "list", "--since", "1h", "--app", app_path])
    assert shown.exit_code == 0 and "25.0x / 75.0x" in shown.output
    none = runner.invoke(cli, ["alerts", "list", "--flow", "note", "--app", app_path])
    assert "no alerts" in none.output
    app.close()
