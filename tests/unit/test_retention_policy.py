"""Retention never forgets webhook delivery ids before vendors stop retrying."""

from __future__ import annotations

import pytest

from interlock.errors import ConfigurationError
from interlock.retention import MIN_DAYS, RetentionPolicy


@pytest.mark.parametrize("days", [0.5, 3, 6.9])
def test_a_retention_shorter_than_the_deduplication_window_is_refused(days: float) -> None:
    with pytest.raises(ConfigurationError, match="at least 7 days"):
        RetentionPolicy(days=days)


def test_the_variable_is_checked_the_same_way(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTERLOCK_RETENTION_DAYS", "2")
    with pytest.raises(ConfigurationError, match="below 7"):
        RetentionPolicy.from_env()
    monkeypatch.setenv("INTERLOCK_RETENTION_DAYS", "0")
    assert RetentionPolicy.from_env().days == 0
    monkeypatch.setenv("INTERLOCK_RETENTION_DAYS", str(MIN_DAYS))
    assert RetentionPolicy.from_env().days == MIN_DAYS
