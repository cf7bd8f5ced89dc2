"""Event and correlation ids: time-ordered, monotonic, unique across threads."""

from __future__ import annotations

import threading

import pytest

from interlock import ids
from interlock.ids import event_id, new_correlation_id


@pytest.fixture(autouse=True)
def _fresh_generator(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts from a generator that has not seen a later timestamp."""
    monkeypatch.setattr(ids, "_last_ms", 0)
    monkeypatch.setattr(ids, "_last_rand", 0)


def test_prefixes_and_fixed_width() -> None:
    first, second = event_id(), new_correlation_id()
    assert first.startswith("evt_")
    assert second.startswith("cor_")
    widths = {len(event_id(t)) for t in (1.0, 1_600_000_000.0, 4_000_000_000.0)}
    assert len(widths) == 1, "fixed width, so string order is time order"


def test_ids_are_monotonic_within_one_millisecond() -> None:
    made = [event_id(1_600_000_000.0) for _ in range(5000)]
    assert made == sorted(made)
    assert len(set(made)) == len(made)


def test_ids_sort_by_time() -> None:
    times = [1_600_000_000.0, 1_600_000_000.001, 1_600_000_001.0, 1_700_000_000.0]
    made = [event_id(t) for t in times]
    assert made == sorted(made)
    assert len(set(made)) == len(made)


def test_ids_stay_monotonic_when_the_clock_goes_back() -> None:
    ahead = event_id(1_600_000_100.0)
    behind = event_id(1_600_000_000.0)
    assert behind > ahead


def test_ids_are_unique_across_threads() -> None:
    per_thread: list[list[str]] = [[] for _ in range(8)]

    def make(out: list[str]) -> None:
        out.extend(event_id() for _ in range(2000))

    threads = [threading.Thread(target=make, args=(out,)) for out in per_thread]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    everything = [i for out in per_thread for i in out]
    assert len(set(everything)) == len(everything) == 16000
    for out in per_thread:
        assert out == sorted(out)
