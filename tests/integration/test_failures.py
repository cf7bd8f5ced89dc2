"""Storage failures fail loudly and acknowledge nothing; misuse gets a clear error."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from interlock import (
    ConfigurationError,
    Context,
    Contract,
    Interlock,
    StoreUnavailable,
)
from interlock.stores.sqlite import Q
from interlock.testing import FakeClock, drain


class Note(Contract, event="note.added"):
    note_id: str
    body: str


class NoteV2(Contract, event="note.changed", version=2):
    note_id: str
    text: str


async def test_a_full_disk_fails_the_emit_and_stores_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'full.db'}"
    app = Interlock("full", url, clock=FakeClock())

    @app.flow(Note, owner="ops", key="note_id")
    async def noop(event: Note, ctx: Context) -> None:
        return None

    first = await app.emit(Note(note_id="n1", body="fits"))
    writer = app.store._async_writer._conn
    assert writer is not None
    # A real SQLITE_FULL on the commit path: cap the file at its current size.
    (pages,) = writer.execute("PRAGMA page_count").fetchone()
    writer.execute(f"PRAGMA max_page_count = {pages}")
    with pytest.raises(StoreUnavailable, match="full"):
        await app.emit(Note(note_id="n2", body="x" * 200_000))
    app.close()

    conn = sqlite3.connect(tmp_path / "full.db")
    ids = [row[0] for row in conn.execute("SELECT id FROM events")]
    deliveries = conn.execute("SELECT count(*) FROM deliveries").fetchone()[0]
    conn.close()
    assert ids == [first]  # nothing of the failed emit was kept
    assert deliveries == 1


async def test_the_store_keeps_working_after_a_failed_batch(tmp_path: Path) -> None:
    app = Interlock("recover", f"sqlite:///{tmp_path / 'r.db'}", clock=FakeClock())
    seen: list[str] = []

    @app.flow(Note, owner="ops", key="note_id")
    async def record(event: Note, ctx: Context) -> None:
        seen.append(event.note_id)

    await app.emit(Note(note_id="n1", body="a"))
    writer = app.store._async_writer._conn
    assert writer is not None
    (pages,) = writer.execute("PRAGMA page_count").fetchone()
    writer.execute(f"PRAGMA max_page_count = {pages}")
    with pytest.raises(StoreUnavailable):
        await app.emit(Note(note_id="n2", body="y" * 200_000))
    writer.execute("PRAGMA max_page_count = 1073741823")
    await app.emit(Note(note_id="n3", body="b"))
    await drain(app)
    assert seen == ["n1", "n3"]
    app.close()


async def test_emit_sync_inside_async_code_is_refused_clearly(tmp_path: Path) -> None:
    app = Interlock("sync", f"sqlite:///{tmp_path / 's.db'}")
    with pytest.raises(ConfigurationError, match=r"await app\.emit"):
        app.emit_sync(Note(note_id="n1", body="a"))
    app.close()


async def test_a_crashing_upcaster_is_a_contract_dead_letter_without_payload(
    tmp_path: Path,
) -> None:
    app = Interlock("up", f"sqlite:///{tmp_path / 'u.db'}", clock=FakeClock())

    @NoteV2.upcaster(from_version=1)
    def _v1(data: dict[str, object]) -> dict[str, object]:
        return {"note_id": data["note_id"], "text": data["body"]}  # KeyError on bad data

    @app.flow(NoteV2, owner="ops", key="note_id")
    async def use(event: NoteV2, ctx: Context) -> None:
        return None

    store = app.store
    item = app.prepare(NoteV2(note_id="n1", text="secret text"))
    await store.emit([item])
    # Rewrite it as a v1 event lacking the field the upcaster needs.
    conn = sqlite3.connect(store.path)
    conn.execute('UPDATE events SET version = 1, data = \'{"note_id": "n1", "oops": 1}\'')
    conn.commit()
    conn.close()
    await drain(app, advance=True)
    (dead,) = store.list_deliveries(status="dead")
    assert dead.error_class == "contract_violation"
    assert dead.reason is not None and "upcaster from v1 to v2 failed with KeyError" in dead.reason
    app.close()


def test_claim_query_uses_the_due_index(tmp_path: Path) -> None:
    app = Interlock("plan", f"sqlite:///{tmp_path / 'p.db'}")
    app.store  # noqa: B018 - create the schema
    conn = sqlite3.connect(tmp_path / "p.db")
    plan = " ".join(str(r) for r in conn.execute("EXPLAIN QUERY PLAN " + Q["due"], (0.0, 10)))
    lane = " ".join(
        str(r) for r in conn.execute("EXPLAIN QUERY PLAN " + Q["next-in-lane"], ("f", "k"))
    )
    conn.close()
    app.close()
    assert "USING INDEX deliveries_due" in plan
    assert "USING INDEX deliveries_lane" in lane or "USING COVERING INDEX deliveries_lane" in lane


async def test_a_worker_that_lost_its_lease_stops_before_the_next_step(tmp_path: Path) -> None:
    from interlock.errors import LeaseLost
    from interlock.redaction import Redactor
    from interlock.steps import Context as StepContext

    clock = FakeClock()
    app = Interlock("fence", f"sqlite:///{tmp_path / 'f.db'}", clock=clock)

    @app.flow(Note, owner="ops", key="note_id")
    async def two_steps(event: Note, ctx: Context) -> None:
        return None

    await app.emit(Note(note_id="n1", body="a"))
    store = app.store
    (mine,) = await store.claim("worker-a", 1, clock.now(), 30.0)
    clock.advance(31)
    (theirs,) = await store.claim("worker-b", 1, clock.now(), 30.0)
    assert theirs.fence > mine.fence

    calls: list[str] = []
    ctx = StepContext(
        claimed=mine,
        flow="two_steps",
        store=store,
        clock=clock,
        limits=app.limits,
        redactor=Redactor(),
        emit=app.emit,
        lost=set(),
    )
    await ctx.step("one", lambda: calls.append("one"))
    await asyncio.sleep(0)  # the buffered checkpoint is handed to the store
    await store.emit([])  # a barrier: the checkpoint has been tried (and refused)
    await asyncio.sleep(0)  # and its refusal seen
    with pytest.raises(LeaseLost, match="step 'two' not started"):
        await ctx.step("two", lambda: calls.append("two"))
    assert calls == ["one"]
    assert store.trace(mine.event.id).steps == []  # the refused checkpoint left nothing
    app.close()
