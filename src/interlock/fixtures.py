"""Golden fixtures: real vendor payloads in version control, with what they must become.

A fixture is ``fixtures/<source>/<case>.json``, beside the app's source mappings::

    {
      "description": "an invoice whose optional fields are null",
      "topic": "invoice.payment_failed",          (optional: else from headers or body)
      "headers": {"x-shopify-topic": "..."},      (optional)
      "payload": {...the raw vendor payload...},
      "expect": {"events": [{"type": "payment.failed", "version": 1, "data": {...}}]}
    }

``expect`` is instead ``{"error": {"status": 422, "fields": ["amount_cents"]}}`` for a
payload its contract must refuse, or ``{"ignored": true}`` for one no mapping takes.
:func:`run_fixture` runs a fixture the way the gateway's ingress runs a verified
payload (topic, mapping, contract) and compares; ``interlock contracts check`` and
the pytest plugin (:mod:`interlock.pytest_plugin`) are built on it.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from interlock.app import Interlock
from interlock.contracts import Contract
from interlock.errors import ConfigurationError, ContractViolation
from interlock.stores.contract_records import Sample


@dataclass(frozen=True, slots=True)
class Fixture:
    source: str
    case: str
    path: Path
    payload: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    topic: str | None = None
    expect: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    problem: str | None = None  # the file itself is broken: why

    @property
    def name(self) -> str:
        return f"{self.source}/{self.case}"


@dataclass(frozen=True, slots=True)
class FixtureResult:
    fixture: Fixture
    passed: bool
    summary: str
    diff: list[str] = field(default_factory=list)


def default_root(app_path: str | None) -> Path:
    """``fixtures/`` beside the app's module (``examples.shop:app`` → ``examples/fixtures``),
    else ``./fixtures``."""
    module = sys.modules.get((app_path or "").partition(":")[0])
    where = getattr(module, "__file__", None)
    if where:
        beside = Path(where).parent / "fixtures"
        if beside.is_dir():
            return beside
    return Path("fixtures")


def find_fixtures(root: Path, source: str | None = None) -> list[Fixture]:
    """Every ``<root>/<source>/<case>.json``, sorted; unreadable files come back with a
    ``problem`` (they fail, loudly, rather than vanish)."""
    if not root.is_dir():
        raise ConfigurationError(
            f"no fixtures folder at {root}: create {root}/<source>/<case>.json or pass --fixtures"
        )
    return [
        load_fixture(path)
        for path in sorted(root.glob("*/*.json"))
        if source is None or path.parent.name == source
    ]


def load_fixture(path: Path) -> Fixture:
    source, case = path.parent.name, path.stem
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        return Fixture(source, case, path, problem=f"not readable JSON: {exc}")
    if not isinstance(data, dict) or "payload" not in data or "expect" not in data:
        return Fixture(source, case, path, problem='needs "payload" and "expect" keys')
    expect = data["expect"]
    if not isinstance(expect, dict) or not ({"events", "error", "ignored"} & set(expect)):
        return Fixture(source, case, path, problem='"expect" holds "events", "error" or "ignored"')
    headers = {str(k).lower(): str(v) for k, v in (data.get("headers") or {}).items()}
    return Fixture(
        source,
        case,
        path,
        payload=data["payload"],
        headers=headers,
        topic=data.get("topic"),
        expect=expect,
        description=str(data.get("description", "")),
    )


def outcome_of(
    app: Interlock, source: str, payload: Any, headers: dict[str, str], topic: str | None
) -> dict[str, Any]:
    """What the ingress makes of a verified ``payload``: ``{"events": [...]}``,
    ``{"error": {...}}`` or ``{"ignored": true}``."""
    webhook = app.sources.get(source)
    if webhook is None:
        known = ", ".join(sorted(app.sources)) or "none"
        raise ConfigurationError(f"the app has no webhook source {source!r} (it has: {known})")
    found = webhook.topic_of(topic, headers, payload)
    mapper = webhook.mapper_for(found)
    if mapper is None or not isinstance(payload, dict):
        return {"ignored": True}
    try:
        mapped = mapper(payload)
    except ContractViolation as exc:
        return {"error": _error(exc)}
    except ValidationError as exc:
        fields = [".".join(str(p) for p in e["loc"]) or "(root)" for e in exc.errors()]
        return {"error": {"status": 422, "type": "contract", "fields": sorted(set(fields))}}
    except Exception as exc:
        return {"error": {"status": 422, "type": "mapping_failed", "exception": type(exc).__name__}}
    if mapped is None:
        return {"ignored": True}
    events = [mapped] if isinstance(mapped, Contract) else list(mapped)
    if not events:
        return {"ignored": True}
    stray = next((e for e in events if not isinstance(e, Contract)), None)
    if stray is not None:
        kind = type(stray).__name__
        return {"error": {"status": 500, "type": "mapping_failed", "exception": f"returned {kind}"}}
    return {
        "events": [
            {
                "type": e.event_type(),
                "version": type(e).__version__,
                "data": e.model_dump(mode="json"),
            }
            for e in events
        ]
    }


def _error(exc: ContractViolation) -> dict[str, Any]:
    fields = sorted({str(e.get("field")) for e in exc.errors})
    return {"status": 422, "type": "contract", "fields": fields}


def run_fixture(app: Interlock, fixture: Fixture) -> FixtureResult:
    """Run one fixture through its source's mapping and contract, and compare."""
    if fixture.problem is not None:
        return FixtureResult(fixture, False, f"broken fixture: {fixture.problem}")
    try:
        actual = outcome_of(app, fixture.source, fixture.payload, fixture.headers, fixture.topic)
    except ConfigurationError as exc:
        return FixtureResult(fixture, False, str(exc))
    expected = fixture.expect
    if "error" in expected:
        return _compare_error(fixture, expected["error"], actual)
    if expected.get("ignored"):
        if actual.get("ignored"):
            return FixtureResult(fixture, True, "ignored, as expected")
        return FixtureResult(
            fixture, False, "expected no mapping to take it", diff_lines({"ignored": True}, actual)
        )
    lines = diff_lines(expected.get("events"), actual.get("events", actual), "events")
    if lines:
        return FixtureResult(fixture, False, _what(actual), lines)
    return FixtureResult(fixture, True, f"{len(actual['events'])} event(s) as expected")


def _compare_error(fixture: Fixture, want: dict[str, Any], actual: dict[str, Any]) -> FixtureResult:
    got = actual.get("error")
    if got is None:
        return FixtureResult(
            fixture,
            False,
            "expected a rejection, the payload was accepted",
            diff_lines({"error": want}, actual),
        )
    subset = {k: got.get(k) for k in want}
    lines = diff_lines(want, subset, "error")
    if lines:
        return FixtureResult(fixture, False, "rejected, but not as expected", lines)
    return FixtureResult(
        fixture, True, f"rejected as expected ({', '.join(got.get('fields', []))})"
    )


def _what(actual: dict[str, Any]) -> str:
    if "error" in actual:
        err = actual["error"]
        detail = ", ".join(err.get("fields", [])) or err.get("exception", "")
        return f"rejected ({err.get('type')}: {detail}) but events were expected"
    if actual.get("ignored"):
        return "ignored (no mapping took it) but events were expected"
    return "mapped, with differences"


def diff_lines(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Readable differences, one per line: ``events[0].data.total: expected 12, got 15``."""
    return list(_diff(expected, actual, path or "$"))


def _diff(expected: Any, actual: Any, path: str) -> Iterator[str]:
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key in expected:
            where = f"{path}.{key}" if path != "$" else key
            if key not in actual:
                yield f"{where}: missing (expected {_show(expected[key])})"
            else:
                yield from _diff(expected[key], actual[key], where)
        for key in actual:
            if key not in expected:
                where = f"{path}.{key}" if path != "$" else key
                yield f"{where}: unexpected {_show(actual[key])}"
    elif isinstance(expected, list) and isinstance(actual, list):
        for i, (e, a) in enumerate(zip(expected, actual, strict=False)):
            yield from _diff(e, a, f"{path}[{i}]")
        if len(expected) != len(actual):
            yield f"{path}: expected {len(expected)} item(s), got {len(actual)}"
    elif expected != actual or type(expected) is not type(actual):
        yield f"{path}: expected {_show(expected)}, got {_show(actual)}"


def _show(value: Any) -> str:
    text = orjson.dumps(value).decode()
    return text if len(text) <= 120 else text[:117] + "..."


# -- recording ---------------------------------------------------------------------------------


def record_samples(
    app: Interlock, samples: list[Sample], root: Path, *, overwrite: bool = False
) -> list[Path]:
    """Write ``samples`` (received payloads, PII already replaced) as fixture candidates,
    with what they map to today as the expected outcome; returns the files written."""
    written = []
    for sample in samples:
        slug = re.sub(r"[^A-Za-z0-9]+", "-", sample.topic or "payload").strip("-").lower()
        path = root / sample.source / f"recorded-{slug}-{sample.id}.json"
        if path.exists() and not overwrite:
            continue
        received = datetime.fromtimestamp(sample.received_at, UTC).isoformat(timespec="seconds")
        document = {
            "description": f"recorded from a {sample.topic or 'payload'} received at {received} "
            "(personal data replaced); review before committing",
            "topic": sample.topic,
            "headers": sample.headers,
            "payload": sample.payload,
            "expect": outcome_of(app, sample.source, sample.payload, sample.headers, sample.topic),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")
        written.append(path)
    return written
