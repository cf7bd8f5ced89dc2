from __future__ import annotations

import re
import threading

import pytest

from interlock import ids
from interlock.ids import event_id, new_correlation_id, ulid

CROCKFORD = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")


@pytest.fixture(autouse=True)
def _fresh_generator(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts from a generator that has not seen a later timestamp."""
    monkeypatch.setattr(ids, "_last_ms", 0)
    monkeypatch.setattr(ids, "_last_rand", 0)


def test_ulid_shape_and_prefixes() -> None:
    assert CROCKFORD.fullmatch(ulid())
    assert event_id().startswith("evt_") and CROCKFORD.fullmatch(event_id()[4:])
    assert new_correlation_id().startswith("cor_")


def test_ulids_are_monotonic_within_one_millisecond() -> None:
    ids = [ulid(1_600_000_000.0) for _ in range(2000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_ulids_sort_by_time() -> None:
    early = ulid(1_600_000_000.0)
    later = ulid(1_600_000_001.0)
    assert early < later
    # The timestamp prefix encodes the millisecond.
    assert later[:10] > early[:10]
    assert _millis(early) == 1_600_000_000_000
    assert _millis(later) == 1_600_000_001_000


def _millis(value: str) -> int:
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    out = 0
    for char in value[:10]:
        out = out * 32 + alphabet.index(char)
    return out


def test_ulids_stay_monotonic_when_the_clock_goes_back() -> None:
    ahead = ulid(1_600_000_000.0)
    behind = ulid(1_000_000_000.0)
    assert behind > ahead


def test_ulids_are_unique_across_threads() -> None:
    per_thread: list[list[str]] = [[] for _ in range(8)]

    def make(out: list[str]) -> None:
        for _ in range(2000):
            out.append(event_id())

    threads = [threading.Thread(target=make, args=(out,)) for out in per_thread]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    everything = [i for out in per_thread for i in out]
    assert len(set(everything)) == len(everything) == 16000
    for out in per_thread:
        assert out == sorted(out)
