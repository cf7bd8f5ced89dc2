"""Error budgets and multi-window, multi-burn-rate alerting: the math, as pure functions.

A flow's SLO (``SLO(target=0.995, within="2m", window="28d")``) allows a
share ``1 - target`` of its deliveries to be bad: its *error budget*. The
*burn rate* over a window is the bad share seen there divided by that
allowance: 1.0 spends the budget exactly over the SLO window, 14.4 spends
2 % of a 28-day budget in one hour.

An alert rule (:class:`BurnWindow`) pairs a long window with a short one and
fires only when both burn at least ``factor`` times too fast: the long window
makes it ignore blips, the short one makes it clear soon after a recovery.
Once firing, it stays firing until either window drops below
``factor * clear_ratio`` (hysteresis, so a burn hovering at the threshold does
not flap). Everything here is a function of ``(now, counts, policy)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from interlock.durations import Duration, humanize, seconds
from interlock.errors import ConfigurationError
from interlock.stores.analytics import SloCounts

__all__ = [
    "AlertPolicy",
    "BurnWindow",
    "Decision",
    "budget_remaining",
    "burn_rate",
    "decide",
    "sli",
]


@dataclass(frozen=True, slots=True)
class BurnWindow:
    """One alert rule: fire when both windows burn at least ``factor`` times too fast.

    The defaults of :class:`AlertPolicy` are the SRE workbook's for a month-long
    SLO: ``page`` at 14.4x over 1 h and 5 m (2 % of the budget in an hour),
    ``ticket`` at 6x over 6 h and 30 m (5 % in six hours).
    """

    severity: str
    long: Duration
    short: Duration
    factor: float

    def __post_init__(self) -> None:
        if not self.severity or not self.severity.replace("-", "").replace("_", "").isalnum():
            raise ConfigurationError(f"BurnWindow severity {self.severity!r}: use a short word")
        if not 0 < self.short_s < self.long_s:
            raise ConfigurationError(
                f"BurnWindow {self.severity!r}: short ({self.short!r}) must be shorter than "
                f"long ({self.long!r}) and above zero"
            )
        if not self.factor > 0:
            raise ConfigurationError(f"BurnWindow {self.severity!r}: factor must be above 0")

    @property
    def long_s(self) -> float:
        return seconds(self.long)

    @property
    def short_s(self) -> float:
        return seconds(self.short)


DEFAULT_WINDOWS = (
    BurnWindow("page", long="1h", short="5m", factor=14.4),
    BurnWindow("ticket", long="6h", short="30m", factor=6.0),
)


@dataclass(frozen=True, slots=True)
class AlertPolicy:
    """The alert rules every flow with an SLO is evaluated against.

    ``min_events``: a window with fewer decided deliveries than this never
    fires (one failure out of two is not an outage). ``clear_ratio``: a firing
    alert clears when either window burns below ``factor * clear_ratio``.
    """

    windows: tuple[BurnWindow, ...] = DEFAULT_WINDOWS
    min_events: int = 3
    clear_ratio: float = 0.8

    def __post_init__(self) -> None:
        if not self.windows:
            raise ConfigurationError("AlertPolicy needs at least one BurnWindow")
        names = [w.severity for w in self.windows]
        if len(set(names)) != len(names):
            raise ConfigurationError(f"AlertPolicy: severities must differ, got {names}")
        if self.min_events < 1:
            raise ConfigurationError("AlertPolicy(min_events=...) must be at least 1")
        if not 0 < self.clear_ratio <= 1:
            raise ConfigurationError("AlertPolicy(clear_ratio=...) must be in (0, 1]")

    def spans(self) -> tuple[float, ...]:
        """Every distinct window length of the rules, shortest first."""
        return tuple(sorted({s for w in self.windows for s in (w.short_s, w.long_s)}))


def sli(counts: SloCounts) -> float | None:
    """The share of decided deliveries that were good; None without any."""
    return None if counts.total == 0 else counts.good / counts.total


def burn_rate(counts: SloCounts, target: float) -> float:
    """How many times faster than allowed the budget burns (0 without deliveries)."""
    if counts.total == 0:
        return 0.0
    return (counts.bad / counts.total) / (1.0 - target)


def budget_remaining(counts: SloCounts, target: float) -> float:
    """The share of the error budget left over the counted window: 1.0 untouched, 0 spent,
    below 0 overspent; never above 1."""
    return 1.0 - burn_rate(counts, target)


@dataclass(frozen=True, slots=True)
class Decision:
    """What one rule says now: whether it fires, with the burn rates it saw."""

    severity: str
    firing: bool
    burn_long: float
    burn_short: float
    rule: BurnWindow = field(compare=False)

    def summary(self, flow: str, target: float) -> str:
        rule = self.rule
        return (
            f"{flow} burns its error budget {self.burn_long:.1f}x over "
            f"{humanize(rule.long_s)} and {self.burn_short:.1f}x over "
            f"{humanize(rule.short_s)} (threshold {rule.factor:g}x, target {target:.4g})"
        )


def decide(
    counts: Mapping[float, SloCounts],
    target: float,
    policy: AlertPolicy,
    firing: frozenset[str] = frozenset(),
) -> list[Decision]:
    """Each rule's decision from the counts of the trailing windows (keyed by their length
    in seconds) and the severities ``firing`` now."""
    out = []
    for rule in policy.windows:
        long, short = counts[rule.long_s], counts[rule.short_s]
        burn_long, burn_short = burn_rate(long, target), burn_rate(short, target)
        enough = long.total >= policy.min_events and short.total >= policy.min_events
        if rule.severity in firing:
            threshold = rule.factor * policy.clear_ratio
            on = burn_long >= threshold and burn_short >= threshold
        else:
            on = enough and burn_long >= rule.factor and burn_short >= rule.factor
        out.append(Decision(rule.severity, on, burn_long, burn_short, rule))
    return out
