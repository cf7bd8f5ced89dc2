"""Durations as users write them: ``"250ms"``, ``"10m"``, ``"1h30m"``, seconds or a timedelta."""

from __future__ import annotations

import math
import re
from datetime import timedelta

from interlock.errors import ConfigurationError

Duration = str | int | float | timedelta

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def seconds(value: Duration) -> float:
    """Return ``value`` in seconds.

    >>> seconds("1h30m")
    5400.0
    >>> seconds(2.5)
    2.5
    """
    if isinstance(value, timedelta):
        result = value.total_seconds()
    elif isinstance(value, bool):
        raise ConfigurationError(f"duration {value!r} is not a number of seconds or a string")
    elif isinstance(value, int | float):
        try:
            result = float(value)
        except OverflowError:
            result = math.inf
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        pos = 0
        result = 0.0
        for match in _PART.finditer(text):
            if match.start() != pos:
                break
            result += float(match.group(1)) * _UNITS[match.group(2)]
            pos = match.end()
        if pos != len(text) or not text:
            raise ConfigurationError(
                f"cannot read duration {value!r}: write e.g. '500ms', '30s', '10m', '1h30m', '7d'"
            )
    else:
        raise ConfigurationError(f"duration {value!r} is not a number of seconds or a string")
    if not math.isfinite(result):
        raise ConfigurationError(f"duration {value!r} is not a finite number of seconds")
    if result < 0:
        raise ConfigurationError(f"duration {value!r} is negative")
    return result


def humanize(secs: float) -> str:
    """A short human form: ``1.5s``, ``12m``, ``3h``."""
    if secs < 1:
        return f"{secs * 1000:.0f}ms"
    if secs < 60:
        return f"{secs:.1f}s".replace(".0s", "s")
    if secs < 3600:
        return f"{secs / 60:.1f}m".replace(".0m", "m")
    if secs < 86400:
        return f"{secs / 3600:.1f}h".replace(".0h", "h")
    return f"{secs / 86400:.1f}d".replace(".0d", "d")
