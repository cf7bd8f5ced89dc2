"""Profiles kept by several processes and merged in the store add up to the profile one
process would have kept (property-tested)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from interlock.shapes import Profile, merge

values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.sampled_from(["open", "paid", "void", "x" * 60]),
    st.fixed_dictionaries({}, optional={"sku": st.sampled_from(["a", "b"]), "qty": st.integers()}),
)
payloads = st.dictionaries(st.sampled_from(["id", "status", "amount", "lines", "meta"]), values)
payloads = payloads.map(
    lambda p: {**p, "lines": [p["meta"], {"sku": "z"}]} if isinstance(p.get("meta"), dict) else p
)


def comparable(profile: dict[str, Any]) -> dict[str, Any]:
    return {
        "events": profile["events"],
        "fields": {
            path: (f["seen"], f["nulls"], sorted(f["types"]), f["values"])
            for path, f in profile["fields"].items()
        },
    }


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(payloads, st.integers(0, 1), st.booleans()), min_size=1, max_size=60))
def test_merged_deltas_equal_one_profile(steps: list[tuple[dict[str, Any], int, bool]]) -> None:
    single = Profile("s", "t")
    procs = [Profile("s", "t"), Profile("s", "t")]
    stored: dict[str, Any] | None = None
    for now, (payload, proc, flush) in enumerate(steps, start=1):
        single.observe(payload, float(now), mature=True)
        procs[proc].observe(payload, float(now), mature=True)
        if flush:
            delta = procs[proc].delta()
            if delta is not None:
                stored = merge(stored, delta)
    for p in procs:
        delta = p.delta()
        if delta is not None:
            stored = merge(stored, delta)
    assert stored is not None
    assert comparable(stored) == comparable(single.to_json())


@settings(max_examples=40, deadline=None)
@given(st.lists(payloads, min_size=1, max_size=30))
def test_a_stored_profile_reloads_into_the_same_tree(seen: list[dict[str, Any]]) -> None:
    first = Profile("s", "t")
    for now, payload in enumerate(seen, start=1):
        first.observe(payload, float(now), mature=False)
    reloaded = Profile.from_json("s", "t", first.to_json())
    assert comparable(reloaded.to_json()) == comparable(first.to_json())
    for payload in seen:  # nothing it saw before is new to it
        found = reloaded.observe(payload, 99.0, mature=True) or []
        assert [o for o in found if o.kind == "new_field"] == []
