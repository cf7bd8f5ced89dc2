from __future__ import annotations

from datetime import timedelta

import pytest

from interlock import ConfigurationError
from interlock.durations import humanize, seconds


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("250ms", 0.25),
        ("30s", 30.0),
        ("10m", 600.0),
        ("1h30m", 5400.0),
        ("1h 30m", 5400.0),
        (" 2d ", 172800.0),
        ("1w", 604800.0),
        ("1.5s", 1.5),
        ("1m500ms", 60.5),
        (0, 0.0),
        (2.5, 2.5),
        (7, 7.0),
        (timedelta(minutes=2), 120.0),
    ],
)
def test_seconds_reads_user_durations(value: object, expected: float) -> None:
    assert seconds(value) == pytest.approx(expected)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "value", ["", "   ", "10", "ten seconds", "5x", "1h30", "m5", "30S", "-5s"]
)
def test_seconds_rejects_unreadable_strings_with_an_example(value: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        seconds(value)
    message = str(info.value)
    assert repr(value) in message
    assert "'30s'" in message
    assert "'1h30m'" in message


@pytest.mark.parametrize("value", [-1, -0.5, timedelta(seconds=-3)])
def test_seconds_rejects_negative_durations(value: object) -> None:
    with pytest.raises(ConfigurationError, match="negative"):
        seconds(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [True, None, [1], {"s": 1}])
def test_seconds_rejects_other_types(value: object) -> None:
    with pytest.raises(ConfigurationError, match="not a number of seconds or a string"):
        seconds(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 10**400, "1" + "0" * 400 + "s"])
def test_seconds_rejects_non_finite_durations(value: object) -> None:
    with pytest.raises(ConfigurationError):
        seconds(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("secs", "text"),
    [
        (0.25, "250ms"),
        (1.0, "1s"),
        (1.5, "1.5s"),
        (90, "1.5m"),
        (600, "10m"),
        (7200, "2h"),
        (86400 * 3, "3d"),
    ],
)
def test_humanize(secs: float, text: str) -> None:
    assert humanize(secs) == text
