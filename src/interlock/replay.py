"""Operator actions on dead letters: replay or discard a selection, or preview it.

The REST API and the dashboard both act through :func:`act_on_dead`, so a replay
looks the same in the audit trail whichever surface an operator used::

    result = await act_on_dead(app, "replay", DeadFilter(flow="note_in_crm"),
                               actor="token:ops", reason="CRM outage over")
    result.matched, result.done      # ids selected; ids replayed (none on a dry run)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from interlock.stores.base import DeadFilter

if TYPE_CHECKING:
    from interlock.app import Interlock

DeadAction = Literal["replay", "discard"]


@dataclass(frozen=True, slots=True)
class ActionOutcome:
    """What an action selected (``matched``) and did (``done``: empty on a dry run)."""

    action: DeadAction
    dry_run: bool
    matched: list[int]
    done: list[int]


async def act_on_dead(
    app: Interlock,
    action: DeadAction,
    selection: DeadFilter,
    *,
    actor: str,
    reason: str,
    dry_run: bool = False,
) -> ActionOutcome:
    """Replay or discard the dead letters ``selection`` matches, audited as ``actor``
    with ``reason``; with ``dry_run``, only say which they are."""
    matched = [row.id for row in app.store.list_dead(selection)]
    done: list[int] = []
    if not dry_run and matched:
        run = app.store.replay if action == "replay" else app.store.discard
        done = await run(matched, actor=actor, reason=reason, now=app.clock.now())
        app._notify()
    return ActionOutcome(action, dry_run, matched, done)
