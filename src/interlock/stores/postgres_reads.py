"""What the PostgreSQL store answers to operators: events, traces, deliveries, audit,
tokens, secrets, connectors and counts. Plain synchronous reads, one query each."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from interlock.errors import NotFound
from interlock.events import Event
from interlock.stores.base import (
    AttemptRow,
    AuditRow,
    ConnectorState,
    DeadFilter,
    DeliveryRow,
    SecretInfo,
    SecretValue,
    Stats,
    StepRow,
    Trace,
)
from interlock.stores.rows import attempt_of, audit_of, delivery_of, event_of
from interlock.stores.sql import queries
from interlock.tokens import TokenRow, digest, role_of, well_formed

Q = queries("postgres")


class PostgresReads:
    """Read methods of :class:`~interlock.stores.postgres.PostgresStore`."""

    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        raise NotImplementedError

    def next_due_at(self) -> float | None:
        value = self._read(Q["next-due"])[0][0]
        return None if value is None else float(value)

    def get_event(self, event_id: str) -> Event:
        rows = self._read(Q["event-columns"] + " WHERE id = %s", (event_id,))
        if not rows:
            raise NotFound(f"no event with id {event_id!r}")
        return event_of(rows[0])

    def list_events(
        self,
        *,
        type: str | None = None,
        subject: str | None = None,
        correlation_id: str | None = None,
        since: float | None = None,
        until: float | None = None,
        before_seq: int | None = None,
        limit: int = 50,
    ) -> list[Event]:
        """Newest first. ``since``/``until`` bound ``received_at``; ``before_seq`` pages."""
        where, args = _where(
            ("type = %s", type),
            ("correlation_id = %s", correlation_id),
            ("received_at >= %s", since),
            ("received_at < %s", until),
            ("seq < %s", before_seq),
        )
        if subject is not None:  # order:1042, or 1042 for any prefix
            where.append("(subject = %s OR subject LIKE %s ESCAPE '\\')")
            args.extend((subject, _any_prefix(subject)))
        sql = Q["event-columns"] + _joined(where) + " ORDER BY seq DESC LIMIT %s"
        return [event_of(r) for r in self._read(sql, [*args, limit])]

    def get_delivery(self, delivery_id: int) -> DeliveryRow:
        rows = self._read(Q["delivery-columns"] + " WHERE d.id = %s", (delivery_id,))
        if not rows:
            raise NotFound(f"no delivery with id {delivery_id}")
        return delivery_of(rows[0])

    def deliveries_of(self, event_seqs: list[int]) -> list[DeliveryRow]:
        sql = Q["delivery-columns"] + " WHERE d.event_seq = ANY(%s) ORDER BY d.event_seq, d.id"
        return [delivery_of(r) for r in self._read(sql, (event_seqs,))]

    def trace(self, query: str) -> Trace:
        """Events matching an event id, a subject (``invoice:in_1`` or ``in_1``) or a
        correlation id, plus everything that followed from them (same correlation id)."""
        query = query.strip()
        by_id = Q["event-columns"] + " WHERE id = %s"
        if query.startswith("evt_"):
            rows = self._read(by_id, (query,))
        else:
            rows = []
            number = query.removeprefix("dlv_")
            if number.isdigit():  # a delivery id
                found = self._read(Q["delivery-columns"] + " WHERE d.id = %s", (int(number),))
                if found:
                    rows = self._read(by_id, (found[0][1],))
            if not query.startswith("dlv_"):
                # A bare number may as well be a subject (order:1042 → "1042"): keep both.
                matches = self._read(Q["events-by-correlation"], (query,))
                if not matches:
                    matches = self._read(Q["events-by-subject"], (query, _any_prefix(query)))
                rows = [*rows, *matches]
        seen: dict[str, Event] = {}
        for row in rows:
            seen[row[1]] = event_of(row)
        for correlation in sorted({r[7] for r in rows}):
            for row in self._read(Q["events-by-correlation"], (correlation,)):
                seen.setdefault(row[1], event_of(row))
        events = sorted(seen.values(), key=lambda e: e.seq)
        deliveries = self.deliveries_of([e.seq for e in events])
        ids = [d.id for d in deliveries]
        attempts: list[AttemptRow] = []
        steps: list[StepRow] = []
        audit: list[AuditRow] = []
        if ids:
            by_delivery = {d: i for i, d in enumerate(ids)}
            attempts = [attempt_of(r) for r in self._read(Q["attempts-of"], (ids,))]
            attempts.sort(key=lambda a: by_delivery[a.delivery_id])
            steps = [
                StepRow(r[0], r[1], orjson.loads(r[2]), r[3])
                for r in self._read(Q["step-rows-of"], (ids,))
            ]
            steps.sort(key=lambda s: by_delivery[s.delivery_id])
            targets = [f"delivery:{d}" for d in ids]
            audit = [audit_of(r) for r in self._read(Q["audit-for-targets"], (targets,))]
            audit.sort(key=lambda a: (by_delivery[int(a.target.split(":")[1])], a.id))
        return Trace(events, deliveries, attempts, steps, audit)

    def list_dead(self, selection: DeadFilter) -> list[DeliveryRow]:
        where, args = _where(
            ("d.flow = %s", selection.flow or None),
            ("d.finished_at >= %s", selection.since),
            ("d.error_class = %s", selection.error_class or None),
        )
        where.insert(0, "d.status = 'dead'")
        if selection.ids:
            where.append("d.id = ANY(%s)")
            args.append(list(selection.ids))
        sql = Q["delivery-columns"] + _joined(where) + " ORDER BY d.id LIMIT %s"
        return [delivery_of(r) for r in self._read(sql, [*args, selection.limit])]

    def list_deliveries(
        self,
        *,
        status: str | None = None,
        flow: str | None = None,
        before_id: int | None = None,
        limit: int = 100,
    ) -> list[DeliveryRow]:
        """Newest first; ``before_id`` pages."""
        where, args = _where(
            ("d.status = %s", status), ("d.flow = %s", flow), ("d.id < %s", before_id)
        )
        sql = Q["delivery-columns"] + _joined(where) + " ORDER BY d.id DESC LIMIT %s"
        return [delivery_of(r) for r in self._read(sql, [*args, limit])]

    def list_audit(
        self,
        limit: int = 100,
        *,
        action: str | None = None,
        actor: str | None = None,
        target: str | None = None,
        since: float | None = None,
        before_id: int | None = None,
    ) -> list[AuditRow]:
        """Newest first; ``before_id`` pages."""
        where, args = _where(
            ("action = %s", action),
            ("actor = %s", actor),
            ("target = %s", target),
            ("at >= %s", since),
            ("id < %s", before_id),
        )
        sql = Q["audit-columns"] + _joined(where) + " ORDER BY id DESC LIMIT %s"
        return [audit_of(r) for r in self._read(sql, [*args, limit])]

    def token_for(self, token: str) -> TokenRow | None:
        """The live token that ``token`` is, if any (looked up by its hash, never stored)."""
        if not well_formed(token):
            return None
        rows = self._read(Q["token-by-hash"], (digest(token),))
        return _token(rows[0]) if rows else None

    def list_tokens(self, *, include_revoked: bool = False) -> list[TokenRow]:
        sql = Q["token-columns"]
        if not include_revoked:
            sql += " WHERE revoked_at IS NULL"
        return [_token(r) for r in self._read(sql + " ORDER BY created_at, id")]

    def _token(self, token_id: str) -> TokenRow:
        rows = self._read(Q["token-columns"] + " WHERE id = %s", (token_id,))
        if not rows:
            raise NotFound(f"no token with id {token_id!r}")
        return _token(rows[0])

    def current_secret(self, name: str) -> SecretValue | None:
        rows = self._read(Q["current-secret"], (name,))
        if not rows:
            return None
        version, token, expires_at = rows[0]
        return SecretValue(name, int(version), bytes(token), expires_at)

    def list_secrets(self) -> list[SecretInfo]:
        return [
            SecretInfo(r[0], int(r[1]), r[2], r[3], r[4], int(r[5]))
            for r in self._read(Q["list-secrets"])
        ]

    def secret_values(self) -> list[tuple[str, int, bytes]]:
        """Every stored version, encrypted (for re-encryption under a new key)."""
        return [(r[0], int(r[1]), bytes(r[2])) for r in self._read(Q["all-secret-values"])]

    def connector_state(self, name: str) -> ConnectorState | None:
        rows = self._read(Q["connector-state-columns"] + " WHERE name = %s", (name,))
        return _connector_state(rows[0]) if rows else None

    def connector_states(self) -> list[ConnectorState]:
        rows = self._read(Q["connector-state-columns"] + " ORDER BY name")
        return [_connector_state(r) for r in rows]

    def stats(self, now: float) -> Stats:
        events = int(self._read(Q["count-events"])[0][0])
        by_status = {str(s): int(n) for s, n in self._read(Q["count-by-status"])}
        attempts, retries = self._read(Q["count-attempts"])[0]
        oldest = self._read(Q["oldest-due"], (now,))[0][0]
        return Stats(
            events=events,
            by_status=by_status,
            attempts=int(attempts),
            retries=int(retries),
            oldest_due_lag=None if oldest is None else max(0.0, now - float(oldest)),
        )

    def blocked_flows(self) -> set[str]:
        """Flows with a dead delivery that still holds its lane."""
        return {str(r[0]) for r in self._read(Q["blocked-flows"])}

    def flow_counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for flow, status, n in self._read(Q["flow-counts"]):
            out.setdefault(str(flow), {})[str(status)] = int(n)
        return out


def _where(*pairs: tuple[str, Any]) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    args: list[Any] = []
    for clause, value in pairs:
        if value is not None:
            where.append(clause)
            args.append(value)
    return where, args


def _joined(where: list[str]) -> str:
    return " WHERE " + " AND ".join(where) if where else ""


def _any_prefix(subject: str) -> str:
    """A LIKE pattern for ``<any prefix>:subject``."""
    escaped = subject.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%:{escaped}"


def _token(row: Any) -> TokenRow:
    return TokenRow(row[0], row[1], role_of(row[2]), row[3], row[4], row[5], row[6])


def _connector_state(row: Any) -> ConnectorState:
    return ConnectorState(
        str(row[0]), str(row[1]), row[2], int(row[3]), str(row[4]), row[5], row[6], row[7]
    )
