"""The CLI against a real app module and a real SQLite file."""

from __future__ import annotations

import itertools
import sqlite3
import textwrap
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from interlock.cli import cli
from interlock.cli.common import load_app

_counter = itertools.count()

APP_SOURCE = """
from interlock import Context, Contract, Interlock, PII, Permanent, Retry

app = Interlock("cli-test")


class InvoiceOverdue(Contract, event="invoice.overdue", version=1, subject="invoice_id"):
    invoice_id: str
    account_id: str
    email: PII[str]


@app.flow(InvoiceOverdue, owner="finance@acme.test", key="account_id",
          retry=Retry(attempts=2, base="1ms", cap="2ms"))
async def chase(event: InvoiceOverdue, ctx: Context) -> None:
    await ctx.step("remind", lambda: {"sent": event.invoice_id, "to": event.email})
    if event.invoice_id.startswith("bad"):
        raise Permanent(f"vendor rejected invoice for {event.email}")
"""


@pytest.fixture
def app_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    name = f"cli_app_{next(_counter)}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(APP_SOURCE))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("INTERLOCK_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("INTERLOCK_ACTOR", "oncall@acme.test")
    monkeypatch.delenv("INTERLOCK_APP", raising=False)
    return f"{name}:app"


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def flat(text: str) -> str:
    """Rich wraps at the terminal width; compare text with whitespace collapsed."""
    return " ".join(text.replace("│", " ").replace("└──", " ").replace("├──", " ").split())


def send(app_path: str, invoice: str, account: str = "a1") -> str:
    payload = orjson.dumps(
        {"invoice_id": invoice, "account_id": account, "email": f"{invoice}@payer.test"}
    ).decode()
    code, out = invoke("events", "send", "invoice.overdue", payload, "--app", app_path)
    assert code == 0, out
    return out.strip()


def work(app_path: str) -> None:
    """Run the app's worker until nothing is due (the in-process twin of `interlock run`)."""
    import asyncio

    from interlock.cli.common import load_app
    from interlock.testing import drain

    app = load_app(app_path)
    asyncio.run(drain(app))
    app.close()


def test_every_command_has_help() -> None:
    for command in (
        [],
        ["run"],
        ["gateway"],
        ["worker"],
        ["demo"],
        ["db", "upgrade"],
        ["flows", "list"],
        ["events", "send"],
        ["events", "list"],
        ["events", "show"],
        ["events", "trace"],
        ["dlq", "list"],
        ["dlq", "show"],
        ["dlq", "replay"],
        ["dlq", "discard"],
    ):
        code, out = invoke(*command, "--help")
        assert code == 0, (command, out)
        assert "Usage" in out


def test_db_upgrade_creates_then_reports_up_to_date(app_path: str) -> None:
    code, out = invoke("db", "upgrade")
    assert code == 0
    assert "applied 0001_initial" in out
    code, out = invoke("db", "upgrade")
    assert code == 0
    assert "up to date" in out


def test_send_is_idempotent_and_validates_against_the_contract(app_path: str) -> None:
    payload = '{"invoice_id": "in_1", "account_id": "a1", "email": "x@y.test"}'
    args = ["events", "send", "invoice.overdue", payload, "--app", app_path]
    first = invoke(*args, "--idempotency-key", "k1")
    second = invoke(*args, "--idempotency-key", "k1")
    assert first[0] == second[0] == 0
    assert first[1] == second[1]
    code, out = invoke("events", "send", "invoice.overdue", '{"invoice_id": 1}', "--app", app_path)
    assert code == 1
    assert "account_id" in out and "Traceback" not in out
    code, out = invoke("events", "send", "nope.event", "{}", "--app", app_path)
    assert code == 1
    assert "unknown event type 'nope.event'" in out and "invoice.overdue" in out
    code, out = invoke("events", "send", "invoice.overdue", "{not json", "--app", app_path)
    assert code == 1 and "not valid JSON" in out


def test_trace_answers_what_happened_to_an_invoice(app_path: str) -> None:
    event_id = send(app_path, "in_123")
    work(app_path)
    for query in ("invoice:in_123", "in_123", event_id):
        code, out = invoke("events", "trace", query, "--app", app_path)
        assert code == 0, out
        assert event_id in out
        assert "flow chase" in out and "succeeded" in out
        assert "step remind" in out
        assert "payer.test" not in out
    code, out = invoke("events", "trace", "in_123", "--app", app_path, "--json")
    assert "payer.test" not in out  # PII: masked in payloads, scrubbed from step results
    trace = orjson.loads(out)
    assert trace["events"][0]["data"]["email"] == "[redacted]"
    assert trace["steps"][0]["result"] == {"sent": "in_123", "to": "[redacted]"}
    code, out = invoke("events", "show", event_id, "--app", app_path)
    assert code == 0
    assert "payer.test" not in out
    assert orjson.loads(out)["data"]["invoice_id"] == "in_123"
    assert [d["status"] for d in trace["deliveries"]] == ["succeeded"]
    assert [s["name"] for s in trace["steps"]] == ["remind"]
    code, out = invoke("events", "trace", "in_nope", "--app", app_path)
    assert code == 1 and "nothing matches 'in_nope'" in out


def test_dlq_list_show_replay_discard_with_audit(app_path: str) -> None:
    send(app_path, "bad_1", "a1")
    send(app_path, "bad_2", "a2")
    send(app_path, "in_3", "a1")  # blocked behind bad_1
    work(app_path)
    code, out = invoke("dlq", "list", "--json")
    dead = orjson.loads(out)
    assert code == 0
    assert len(dead) == 2
    assert all(d["error_class"] == "permanent" for d in dead)
    assert all("payer.test" not in orjson.dumps(d).decode() for d in dead), "PII leaked"
    first, second = (d["id"] for d in dead)

    code, out = invoke("dlq", "show", str(first))
    assert code == 0 and '"status": "dead"' in out and "[redacted]" in out

    code, out = invoke("dlq", "replay", str(first))
    assert code == 1 and "--reason" in out

    code, out = invoke("dlq", "replay", "--flow", "chase", "--reason", "fixed", "--dry-run")
    assert code == 0 and "would replay 2" in out
    assert len(orjson.loads(invoke("dlq", "list", "--json")[1])) == 2

    code, out = invoke("dlq", "discard", str(first), "--reason", "invoice voided")
    assert code == 0 and "discarded 1" in out
    work(app_path)  # the lane of a1 is unblocked: in_3 runs
    code, out = invoke("events", "trace", "in_3", "--json")
    assert [d["status"] for d in orjson.loads(out)["deliveries"]] == ["succeeded"]

    code, out = invoke("dlq", "replay", str(second), "999999", "--reason", "vendor fixed")
    assert code == 0 and "replayed 1" in out and "999999" in out
    code, out = invoke("events", "trace", "bad_2", "--app", app_path)
    out = flat(out)
    assert "dlq.replay by oncall@acme.test" in out and "vendor fixed" in out


def test_flows_list(app_path: str) -> None:
    send(app_path, "in_1")
    code, out = invoke("flows", "list", app_path, "--json")
    assert code == 0
    (flow,) = orjson.loads(out)
    assert flow["name"] == "chase" and flow["key"] == "account_id"
    assert flow["deliveries"] == {"pending": 1}


def test_clear_errors_never_tracebacks(
    app_path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for args, expected in [
        (["flows", "list", "no_such_module:app"], "cannot import module 'no_such_module'"),
        (["flows", "list", app_path.replace(":app", ":nope")], "has no attribute 'nope'"),
        (["flows", "list", "justamodule"], "must look like module:attribute"),
        (["flows", "list"], "no app given"),
        (["events", "show", "evt_missing"], "no event with id 'evt_missing'"),
        (["dlq", "show", "424242"], "no delivery with id 424242"),
        (["dlq", "replay", "--reason", "x"], "give ids, or a selection"),
        (["dlq", "list", "--since", "yesterday-ish"], "--since 'yesterday-ish'"),
    ]:
        code, out = invoke(*args)
        out = flat(out)
        assert code == 1, (args, out)
        assert expected in out, (args, out)
        assert "Traceback" not in out

    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"this is not a database" * 100)
    code, out = invoke("events", "list", "--database-url", f"sqlite:///{corrupt}")
    assert code == 1 and "not a usable interlock database" in out

    locked = tmp_path / "locked.db"
    invoke("db", "upgrade", "--database-url", f"sqlite:///{locked}")
    holder = sqlite3.connect(locked, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        monkeypatch.setenv("INTERLOCK_SQLITE_BUSY_TIMEOUT", "0.2")
        code, out = invoke("db", "upgrade", "--database-url", f"sqlite:///{locked}")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert code == 1 and "locked" in out and "Traceback" not in out


def test_tokens_create_list_revoke_and_the_audit_trail(app_path: str) -> None:
    code, out = invoke(
        "tokens", "create", "--app", app_path, "--name", "deploy", "--role", "operator"
    )
    assert code == 0, out
    secret = next(line for line in out.splitlines() if line.startswith("ilk_"))
    store = load_app(app_path).store
    token = store.token_for(secret)
    assert token is not None and (token.name, token.role) == ("deploy", "operator")
    stored = sqlite3.connect(store.path).execute("SELECT hash FROM tokens").fetchall()
    assert secret not in str(stored)  # only the hash is kept

    code, out = invoke("tokens", "create", "--app", app_path, "--name", "deploy")
    assert code == 1
    assert "exists already" in out
    code, out = invoke("tokens", "create", "--app", app_path, "--name", "x", "--role", "root")
    assert code == 1
    assert "unknown role 'root'" in out

    code, out = invoke("tokens", "list", "--app", app_path, "--json")
    assert code == 0
    (listed,) = orjson.loads(out)
    assert listed["name"] == "deploy"
    assert "token" not in listed
    assert secret not in out

    code, out = invoke("tokens", "revoke", "deploy", "--app", app_path, "--reason", "rotated")
    assert code == 0, out
    assert store.token_for(secret) is None
    code, out = invoke("tokens", "revoke", "deploy", "--app", app_path)
    assert code == 1
    assert "no live token" in out

    code, out = invoke("audit", "list", "--app", app_path, "--json")
    assert code == 0
    entries = orjson.loads(out)
    assert [(e["action"], e["actor"]) for e in entries] == [
        ("token.revoke", "oncall@acme.test"),
        ("token.create", "oncall@acme.test"),
    ]
    assert entries[0]["reason"] == "rotated"
    code, out = invoke("audit", "list", "--app", app_path, "--action", "token.create")
    assert code == 0
    assert "token.create" in out
    assert "token.revoke" not in out
