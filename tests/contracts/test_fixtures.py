"""Golden fixtures: `interlock contracts check` passes the shipped examples and fails loudly
on broken ones; `record` turns received payloads into candidates; the pytest plugin
collects each fixture as a test case of a sample project."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from interlock import Interlock
from interlock.cli import cli
from interlock.drift import DriftMonitor
from interlock.testing import FakeClock

EXAMPLES = Path(__file__).parents[2] / "examples" / "fixtures"
runner = CliRunner()


def test_the_shipped_example_fixtures_all_pass() -> None:
    result = runner.invoke(cli, ["contracts", "check", "-a", "examples.shop:app", "--json"])
    assert result.exit_code == 0, result.output
    results = orjson.loads(result.output)
    assert {r["fixture"] for r in results} >= {
        "stripe/invoice-with-nulls",
        "stripe/amount-na",
        "shopify/order-multiple-fulfillments",
        "shopify/unicode-customer",
        "shopify/unknown-carrier",
        "hubspot/contact-missing-email",
        "hubspot/unicode-name",
        "hubspot/unknown-lifecycle-stage",
    }
    assert all(r["passed"] for r in results)


def test_check_fails_loudly_with_a_readable_diff(tmp_path: Path) -> None:
    root = tmp_path / "fixtures"
    shutil.copytree(EXAMPLES, root)
    parcels = root / "shopify" / "order-multiple-fulfillments.json"
    doc = orjson.loads(parcels.read_bytes())
    doc["expect"]["events"][1]["data"]["carrier"] = "dhl"  # the fixture says DHL, code says FedEx
    del doc["expect"]["events"][0]["data"]["email"]
    parcels.write_bytes(orjson.dumps(doc))
    na = root / "stripe" / "amount-na.json"
    doc = orjson.loads(na.read_bytes())
    doc["payload"]["data"]["object"]["amount_due"] = 4900  # now valid: the rejection is gone
    na.write_bytes(orjson.dumps(doc))
    (root / "hubspot" / "truncated.json").write_text('{"payload": {')
    result = runner.invoke(
        cli, ["contracts", "check", "-a", "examples.shop:app", "--fixtures", str(root)]
    )
    assert result.exit_code == 1
    out = " ".join(result.output.split())
    assert "3 failed" in out
    assert '[1].data.carrier: expected "dhl", got "fedex"' in out
    assert '[0].data.email: unexpected "buyer@example.test"' in out
    assert "expected a rejection, the payload was accepted" in out
    assert "broken fixture: not readable JSON" in out
    only = runner.invoke(
        cli,
        [
            "contracts",
            "check",
            "-a",
            "examples.shop:app",
            "--fixtures",
            str(root),
            "--source",
            "hubspot",
        ],
    )
    assert only.exit_code == 1
    assert "1 failed" in only.output


def test_check_without_fixtures_says_where_it_looked(tmp_path: Path) -> None:
    result = runner.invoke(
        cli, ["contracts", "check", "-a", "examples.shop:app", "--fixtures", str(tmp_path / "x")]
    )
    assert result.exit_code == 1
    assert "no fixtures folder" in result.output


async def test_record_turns_received_payloads_into_passing_candidates_without_pii(
    tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from examples import shop

    url = f"sqlite:///{tmp_path / 'rec.db'}"
    app = Interlock("rec", url, clock=clock)
    monitor = DriftMonitor(app.store, clock=clock)
    source = shop.app.sources["shopify"]
    for name in ("order-multiple-fulfillments", "unicode-customer"):
        doc = orjson.loads((EXAMPLES / "shopify" / f"{name}.json").read_bytes())
        events = source.mapper_for("orders/fulfilled")(doc["payload"])  # type: ignore[misc]
        headers = {"x-shopify-topic": "orders/fulfilled"}
        monitor.sample("shopify", "orders/fulfilled", headers, doc["payload"], events or [])
    await monitor.flush()
    app.close()
    root = tmp_path / "fixtures"
    result = runner.invoke(
        cli,
        [
            "contracts",
            "record",
            "shopify",
            "-a",
            "examples.shop:app",
            "--database-url",
            url,
            "--fixtures",
            str(root),
        ],
    )
    assert result.exit_code == 0, result.output
    written = sorted((root / "shopify").glob("recorded-*.json"))
    assert len(written) == 2
    text = " ".join(p.read_text() for p in written)
    assert "buyer@example.test" not in text
    assert "zoë.ångström" not in text
    assert "@example.invalid" in text
    check = runner.invoke(
        cli, ["contracts", "check", "-a", "examples.shop:app", "--fixtures", str(root)]
    )
    assert check.exit_code == 0, check.output
    again = runner.invoke(
        cli,
        [
            "contracts",
            "record",
            "shopify",
            "-a",
            "examples.shop:app",
            "--database-url",
            url,
            "--fixtures",
            str(root),
        ],
    )
    assert "0 new fixture candidate(s)" in again.output


def test_schema_exports_json_schema_and_a_markdown_catalogue() -> None:
    result = runner.invoke(cli, ["contracts", "schema", "-a", "examples.shop:app"])
    assert result.exit_code == 0, result.output
    doc = orjson.loads(result.output)
    by_event = {c["event"]: c for c in doc["contracts"]}
    contact = by_event["contact.created"]["schema"]
    assert contact["properties"]["email"]["x-pii"] is True
    assert "email" in contact["required"]  # required, and nullable
    assert by_event["order.shipped"]["systems_of_record"] == ["shopify"]
    assert by_event["order.shipped"]["flows"][0]["name"] == "note_in_crm"
    md = runner.invoke(
        cli, ["contracts", "schema", "-a", "examples.shop:app", "--format", "markdown"]
    )
    assert md.exit_code == 0
    assert "## contact.created (v1)" in md.output
    assert "| `email` | string | yes | yes |  |  | PII | Missing for contacts" in md.output
    assert "`ups`, `fedex`, `dhl`" in md.output
    bad = runner.invoke(cli, ["contracts", "schema", "-a", "examples.shop:app", "--format", "xml"])
    assert bad.exit_code == 1


SAMPLE_APP = """
from typing import Any
from interlock import Contract, Interlock

app = Interlock("sample", "sqlite:///sample.db")
desk = app.webhook("desk", verify="github", secret="desk-secret")


class TicketOpened(Contract, event="ticket.opened"):
    ticket_id: int
    priority: str


@desk.maps("tickets")
def opened(body: dict[str, Any]) -> TicketOpened:
    return TicketOpened(ticket_id=body["id"], priority=body.get("priority", "normal"))
"""


def fixture_doc(payload: dict[str, object], expect: dict[str, object]) -> str:
    return orjson.dumps({"topic": "tickets", "payload": payload, "expect": expect}).decode()


def test_the_pytest_plugin_collects_each_fixture_as_a_test_case(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(sampleapp=SAMPLE_APP)
    pytester.makeini(
        textwrap.dedent(
            """
            [pytest]
            testpaths = tests
            asyncio_default_fixture_loop_scope = function
            interlock_app = sampleapp:app
            """
        )
    )
    pytester.mkdir("tests")
    (pytester.path / "tests" / "test_unit.py").write_text("def test_plain():\n    pass\n")
    desk = pytester.mkdir("fixtures") / "desk"
    desk.mkdir()
    event = {"type": "ticket.opened", "version": 1, "data": {"ticket_id": 7, "priority": "high"}}
    (desk / "high.json").write_text(fixture_doc({"id": 7, "priority": "high"}, {"events": [event]}))
    (desk / "default-priority.json").write_text(
        fixture_doc({"id": 8}, {"events": [{**event, "data": {"ticket_id": 8, "priority": "low"}}]})
    )
    (desk / "bad-id.json").write_text(
        fixture_doc({"id": "x"}, {"error": {"status": 422, "fields": ["ticket_id"]}})
    )
    result = pytester.runpytest("-v", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*desk/bad-id.json::desk/bad-id PASSED*",
            "*desk/default-priority.json::desk/default-priority FAILED*",
            "*desk/high.json::desk/high PASSED*",
            '*events[[]0].data.priority: expected "low", got "normal"*',
        ]
    )
    # Without the setting the plugin stays idle: only the plain test runs.
    pytester.makeini("[pytest]\ntestpaths = tests\nasyncio_default_fixture_loop_scope = function\n")
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
