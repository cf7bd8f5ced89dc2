"""Vendor drift detection: shape profiles per (source, event type), findings raised once.

The gateway hands every verified webhook payload to the app's :class:`DriftMonitor`
(:func:`monitor_of`). The monitor keeps the profiles in memory (see
:mod:`interlock.shapes`) and, once a profile has a baseline (``min_events``
payloads), turns what a payload does differently into a finding:

* ``new_field``          a field path never seen before
* ``vanished_field``     a field that was (nearly) always there and stopped coming
* ``new_enum_value``     an unseen value of a field with few, repeating values
* ``type_change``        a field arrives with a JSON type it never had (``"NA"`` for a number)
* ``nullability_change`` a field that was never null arrives as null

Each finding is raised once — logged, stored with a redacted example (the payload's
shape, values masked) — and then counted: every later payload showing it adds one.
A payload that shows a finding is still accepted (it is flagged in the answer and
the log); one that fails its contract is rejected by the ingress as before. The
monitor flushes profile counts, findings and payload samples to the store every
``flush_every`` seconds (at once when a finding is new), in one batched write: the
cost per payload is only the in-memory walk (see ``bench/contracts.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog

from interlock.clock import SYSTEM_CLOCK, Clock
from interlock.errors import StoreError
from interlock.shapes import FieldShape, Observation, Profile, Tally
from interlock.stores.contract_records import DriftBatch, FindingUpdate, Sample

if TYPE_CHECKING:
    from interlock.app import Interlock
    from interlock.contracts import Contract
    from interlock.stores.base import Store

log = structlog.get_logger("interlock.drift")

FindingKey = tuple[str, str, str, str, str]  # source, event type, kind, path, detail


@dataclass(frozen=True, slots=True)
class DriftConfig:
    """How eagerly drift is reported."""

    min_events: int = 50  # payloads that make a profile's baseline; no findings before
    vanish_after: int = 200  # payloads without a usually-present field before it vanished
    vanish_presence: float = 0.9  # "usually present": in at least this share of payloads
    flush_every: float = 1.0  # seconds between writes to the store
    keep_samples: int = 20  # payload samples kept per (source, topic)
    sample_every: int = 200  # after the first three, keep one payload in this many
    max_profiles: int = 1000  # (source, event type) pairs; more are profiled as "(other)"


class DriftMonitor:
    """Profiles and findings of one app's intake (one per process)."""

    def __init__(
        self, store: Store, *, clock: Clock = SYSTEM_CLOCK, config: DriftConfig | None = None
    ) -> None:
        self.store = store
        self.clock = clock
        self.config = config or DriftConfig()
        self.profiles: dict[tuple[str, str], Profile] = {}
        self.flagged: dict[str, int] = {}  # payloads that showed drift, by source
        self._loaded = False
        self._raised: set[FindingKey] = set()
        self._tallies: dict[FindingKey, Tally] = {}
        self._examples: dict[FindingKey, tuple[Any, float]] = {}
        self._vanished: dict[FindingKey, tuple[FieldShape, int]] = {}
        self._samples: list[Sample] = []
        self._sample_counts: dict[tuple[str, str | None], int] = {}
        self._retry: DriftBatch | None = None
        self._last_flush = 0.0
        self._flushing: asyncio.Task[None] | None = None
        self._urgent = False

    # -- intake ---------------------------------------------------------------------------
    def observe(self, source: str, event_type: str, payload: Any) -> list[str] | None:
        """Profile ``payload``; the findings it shows (``kind:path``), or None."""
        if not self._loaded:
            self.load()
        key = (source, event_type)
        profile = self.profiles.get(key)
        if profile is None:
            if len(self.profiles) >= self.config.max_profiles:
                key = (source, "(other)")  # topics are bounded: a URL can name any
                profile = self.profiles.get(key)
            if profile is None:
                profile = self.profiles[key] = Profile(*key)
        now = self.clock.now()
        found = profile.observe(payload, now, profile.events >= self.config.min_events)
        flags: list[str] | None = None
        if found is not None:
            flags = [self._raise(profile, obs, payload, now) for obs in found]
        if profile.hit and flags is None:
            flags = self._marked(profile)
        if flags:
            self.flagged[source] = self.flagged.get(source, 0) + 1
        if self._urgent or now - self._last_flush >= self.config.flush_every:
            self._flush_soon(now)
        return flags

    def sample(
        self,
        source: str,
        topic: str | None,
        headers: Mapping[str, str],
        payload: Any,
        events: Iterable[Contract],
    ) -> None:
        """Keep some mapped payloads (PII replaced) as fixture candidates."""
        key = (source, topic)
        n = self._sample_counts.get(key, 0) + 1
        self._sample_counts[key] = n
        if n > 3 and n % self.config.sample_every:
            return
        from interlock.redaction import sensitive_values

        pii: list[str] = []
        for event in events:
            pii.extend(sensitive_values(event.model_dump(mode="json"), event.pii_paths()))
        self._samples.append(
            Sample(
                source, topic, dict(headers), replace_values(payload, set(pii)), self.clock.now()
            )
        )

    # -- findings ---------------------------------------------------------------------------
    def _raise(self, profile: Profile, obs: Observation, payload: Any, now: float) -> str:
        key: FindingKey = (profile.source, profile.event_type, obs.kind, obs.path, obs.detail)
        shape = profile.fields[obs.path]
        mark = _mark_key(obs)
        tally = self._tallies.get(key)
        if tally is None:
            tally = self._tallies[key] = Tally(0, now)
        tally.count += 1
        tally.last_seen = now
        if shape.marks is None:
            shape.marks = {}
        shape.marks.setdefault(mark, tally)
        shape.cls = None  # off the fast path: every payload showing it is counted
        if key not in self._raised:
            self._raised.add(key)
            self._examples[key] = (example_of(payload, obs.path), now)
            self._urgent = True
            log.warning(
                "drift.finding",
                source=profile.source,
                event_type=profile.event_type,
                kind=obs.kind,
                path=obs.path,
                detail=_shown(obs),
            )
        return f"{obs.kind}:{obs.path}"

    def _marked(self, profile: Profile) -> list[str]:
        """The findings (already raised) that the last payload of ``profile`` showed."""
        now = profile.last_seen
        return [
            f"{key[2]}:{key[3]}"
            for key, tally in self._tallies.items()
            if key[0] == profile.source and key[1] == profile.event_type and tally.last_seen == now
        ][:10]

    def _check_vanished(self) -> None:
        cfg = self.config
        for profile in self.profiles.values():
            if profile.events < cfg.min_events:
                continue
            for path, shape in profile.fields.items():
                missing = profile.events - shape.last_index
                if missing < cfg.vanish_after or "[]" in path:  # list items: only some are profiled
                    continue
                window = max(1, shape.last_index - shape.first_index + 1)
                if shape.seen < cfg.min_events or shape.seen / window < cfg.vanish_presence:
                    continue
                key: FindingKey = (profile.source, profile.event_type, "vanished_field", path, "")
                counted = self._vanished.get(key, (shape, 0))[1]
                if missing > counted:
                    tally = self._tallies.setdefault(key, Tally(0, profile.last_seen))
                    tally.count += missing - counted
                    tally.last_seen = profile.last_seen
                    self._vanished[key] = (shape, missing)
                if key not in self._raised:
                    self._raised.add(key)
                    self._examples[key] = ({"missing": path}, profile.last_seen)
                    log.warning(
                        "drift.finding",
                        source=profile.source,
                        event_type=profile.event_type,
                        kind="vanished_field",
                        path=path,
                    )

    # -- the store ----------------------------------------------------------------------------
    def load(self) -> None:
        """Start from the stored profiles and findings (another process's, an earlier run's)."""
        self._loaded = True
        try:
            stored = self.store.drift_profiles()
            findings = self.store.drift_findings(limit=100_000)
        except StoreError as exc:
            log.error("drift.load_failed", error=str(exc))
            return
        for row in stored:
            key = (row.source, row.event_type)
            if key not in self.profiles:
                profile = Profile.from_json(row.source, row.event_type, row.profile)
                for loaded in profile.fields.values():
                    loaded.first_index = 0  # its presence rate is over the whole profile
                self.profiles[key] = profile
        for f in findings:
            fkey: FindingKey = (f.source, f.event_type, f.kind, f.path, f.detail)
            self._raised.add(fkey)
            profile_of = self.profiles.get((f.source, f.event_type))
            marked = None if profile_of is None else profile_of.fields.get(f.path)
            if marked is not None and f.kind != "vanished_field":
                tally = self._tallies.setdefault(fkey, Tally(0, f.last_seen))
                obs = Observation(f.kind, f.path, f.detail)  # type: ignore[arg-type]
                marked.marks = marked.marks or {}
                marked.marks.setdefault(_mark_key(obs), tally)
                marked.cls = None

    def batch(self) -> DriftBatch | None:
        """Everything not yet written: profile deltas, finding counts and samples."""
        self._check_vanished()
        profiles = []
        for (source, event_type), profile in self.profiles.items():
            delta = profile.delta()
            if delta is not None:
                profiles.append((source, event_type, delta))
        findings = []
        for key, tally in self._tallies.items():
            if not tally.count:
                continue
            example, first = self._examples.pop(key, (None, tally.last_seen))
            findings.append(
                FindingUpdate(
                    *key,
                    example=example,
                    count=tally.count,
                    first_seen=first,
                    last_seen=tally.last_seen,
                )
            )
            tally.count = 0
        samples, self._samples = self._samples, []
        if self._retry is not None:  # the last flush failed: send its content too
            profiles = self._retry.profiles + profiles
            findings = self._retry.findings + findings
            samples = self._retry.samples + samples
            self._retry = None
        if not profiles and not findings and not samples:
            return None
        return DriftBatch(profiles, findings, samples, keep_samples=self.config.keep_samples)

    async def flush(self) -> None:
        """Write what changed since the last flush (one transaction)."""
        self._urgent = False
        self._last_flush = self.clock.now()
        batch = self.batch()
        if batch is None:
            return
        try:
            await self.store.save_drift(batch, now=self._last_flush)
        except StoreError as exc:
            log.error("drift.flush_failed", error=str(exc))
            self._retry = batch

    def _flush_soon(self, now: float) -> None:
        if self._flushing is not None and not self._flushing.done():
            return
        self._last_flush = now
        with contextlib.suppress(RuntimeError):  # no running loop: the caller flushes
            self._flushing = asyncio.get_running_loop().create_task(self.flush())


def _mark_key(obs: Observation) -> str:
    if obs.kind == "new_enum_value":
        return "=" + obs.detail
    if obs.kind in ("type_change", "nullability_change"):
        return obs.detail
    return ""


def _shown(obs: Observation) -> str:
    return obs.detail if obs.kind != "new_field" else ""


def example_of(payload: Any, path: str) -> dict[str, Any]:
    """A redacted example: the payload's shape with every value masked, and the path."""
    return {"path": path, "shape": shape_of(payload)}


def shape_of(value: Any, depth: int = 0) -> Any:
    if depth > 16:
        return "<...>"
    if isinstance(value, dict):
        return {k: shape_of(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [shape_of(value[0], depth + 1)] if value else []
    if value is None:
        return None
    if isinstance(value, bool):
        return "<boolean>"
    if isinstance(value, int | float):
        return "<number>"
    return "<string>"


def replace_values(value: Any, sensitive: set[str], _n: list[int] | None = None) -> Any:
    """A copy of ``value`` with the ``sensitive`` strings (and numbers) replaced by
    stand-ins of the same kind (``person1@example.invalid``, ``redacted-2``, 0)."""
    n = _n if _n is not None else [0]
    if isinstance(value, dict):
        return {k: replace_values(v, sensitive, n) for k, v in value.items()}
    if isinstance(value, list):
        return [replace_values(v, sensitive, n) for v in value]
    if isinstance(value, str) and any(s in value for s in sensitive):
        n[0] += 1
        return f"person{n[0]}@example.invalid" if "@" in value else f"redacted-{n[0]}"
    if isinstance(value, int | float) and not isinstance(value, bool) and str(value) in sensitive:
        return 0
    return value


_MONITORS: weakref.WeakKeyDictionary[Interlock, DriftMonitor] = weakref.WeakKeyDictionary()


def monitor_of(app: Interlock) -> DriftMonitor:
    """The drift monitor of ``app`` in this process (``app.drift_config`` configures it)."""
    monitor = _MONITORS.get(app)
    if monitor is None:
        monitor = _MONITORS[app] = DriftMonitor(app.store, clock=app.clock, config=app.drift_config)
    return monitor


async def flush_drift(app: Interlock) -> None:
    """Write what ``app``'s monitor holds (on shutdown: its last second of counts)."""
    monitor = _MONITORS.get(app)
    if monitor is not None:
        await monitor.flush()
