"""A typed usage file of the contracts API; mypy checks it (it is not run)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from interlock import PII, Contract, Interlock, MissingRecord
from interlock.catalogue import markdown, schema_document
from interlock.drift import DriftConfig, DriftMonitor, monitor_of
from interlock.fixtures import find_fixtures, run_fixture

app = Interlock("typing-contracts", "sqlite:///typing.db")
app.drift_config = DriftConfig(min_events=100, vanish_after=500, flush_every=2.0)


class ContactUpdated(
    Contract,
    event="contact.updated",
    version=2,
    subject="contact_id",
    marker="updated_at",
    on_missing="park",
    on_invalid="skip",
):
    contact_id: str
    """HubSpot's record id."""
    email: PII[str] | None
    updated_at: datetime


class AccountSynced(Contract, event="account.synced"):
    account_id: str


@ContactUpdated.upcaster(from_version=1)
def _from_v1(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "email": data.get("mail")}


@app.flow(
    ContactUpdated,
    owner="crm@acme.test",
    key="contact_id",
    on_missing="retry",
    on_invalid="dead",
    on_stale="park",
    park_timeout="2d",
)
async def upsert(event: ContactUpdated) -> None:
    raise MissingRecord(
        f"account of {event.contact_id}", wait_for=AccountSynced, match={"account_id": "a1"}
    )


def checks(root: Path) -> list[bool]:
    document: dict[str, Any] = schema_document(app)
    page: str = markdown(app)
    flags: list[str] | None = monitor_of(app).observe("hubspot", "contact.updated", {"id": 1})
    monitor: DriftMonitor = monitor_of(app)
    del document, page, flags, monitor
    return [run_fixture(app, fixture).passed for fixture in find_fixtures(root)]
