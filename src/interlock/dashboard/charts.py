"""Charts as inline SVG geometry: the templates draw what these functions compute.

No script draws anything: a chart is a handful of ``<polyline>`` and ``<rect>``
elements with their coordinates computed here, coloured by CSS classes, with a
text summary beside it for screen readers and for reading exact values::

    spark = sparkline([3, 5, 2, 8])              # points="0.0,...", for a 100x24 box
    chart = line_chart({"p50": [...], "p95": [...]}, labels=[...])
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

WIDTH = 600.0
HEIGHT = 160.0
PAD_LEFT = 48.0
PAD_BOTTOM = 20.0
PAD_TOP = 8.0


@dataclass(frozen=True, slots=True)
class Line:
    name: str
    css: str  # s0, s1, ... : the series' colour class
    points: str  # SVG polyline points
    last: float | None


@dataclass(frozen=True, slots=True)
class Tick:
    y: float
    label: str


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    css: str
    title: str


@dataclass(frozen=True, slots=True)
class Chart:
    width: float
    height: float
    lines: tuple[Line, ...]
    bars: tuple[Bar, ...]
    ticks: tuple[Tick, ...]
    first_label: str
    last_label: str
    empty: bool
    threshold: float | None = None  # y of a dashed reference line


def nice_max(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten at least ``value``."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value:
            return float(step * power)
    return float(10 * power)  # pragma: no cover - the loop always returns


def sparkline(values: Sequence[float | None], width: float = 100.0, height: float = 24.0) -> str:
    """Polyline points of ``values`` scaled into a ``width`` x ``height`` box (gaps skipped)."""
    known = [v for v in values if v is not None]
    if len(values) < 2 or not known:
        return ""
    top = max(known) or 1.0
    step = width / (len(values) - 1)
    return " ".join(
        f"{i * step:.1f},{height - 1 - (v / top) * (height - 2):.1f}"
        for i, v in enumerate(values)
        if v is not None
    )


def _scale(top: float) -> tuple[float, float, float]:
    plot_h = HEIGHT - PAD_BOTTOM - PAD_TOP
    plot_w = WIDTH - PAD_LEFT
    return plot_w, plot_h, top


def _ticks(top: float, fmt: str) -> tuple[Tick, ...]:
    _, plot_h, _ = _scale(top)
    return tuple(Tick(PAD_TOP + plot_h - plot_h * f, format(top * f, fmt)) for f in (0.0, 0.5, 1.0))


def line_chart(
    series: Mapping[str, Sequence[float | None]],
    labels: Sequence[str],
    *,
    fmt: str = ".3g",
    threshold: float | None = None,
) -> Chart:
    """Lines for each of ``series`` over ``labels`` (x), on a shared y axis from zero."""
    known = [v for values in series.values() for v in values if v is not None]
    top = nice_max(max([*known, threshold or 0.0], default=0.0))
    plot_w, plot_h, _ = _scale(top)
    count = max((len(v) for v in series.values()), default=0)
    step = plot_w / max(1, count - 1)
    lines = []
    for index, (name, values) in enumerate(series.items()):
        points = " ".join(
            f"{PAD_LEFT + i * step:.1f},{PAD_TOP + plot_h - (v / top) * plot_h:.1f}"
            for i, v in enumerate(values)
            if v is not None
        )
        last = next((v for v in reversed(values) if v is not None), None)
        lines.append(Line(name, f"s{index % 6}", points, last))
    limit = None if threshold is None else PAD_TOP + plot_h - (threshold / top) * plot_h
    return Chart(
        WIDTH,
        HEIGHT,
        tuple(lines),
        (),
        _ticks(top, fmt),
        labels[0] if labels else "",
        labels[-1] if labels else "",
        not known,
        limit,
    )


def stacked_bars(
    series: Mapping[str, Sequence[float]], labels: Sequence[str], *, fmt: str = ".3g"
) -> Chart:
    """Stacked bars: one column per label, one segment per series (error classes, say)."""
    count = len(labels)
    totals = [sum(values[i] for values in series.values()) for i in range(count)]
    top = nice_max(max(totals, default=0.0))
    plot_w, plot_h, _ = _scale(top)
    slot = plot_w / max(1, count)
    bars = []
    for i in range(count):
        base = 0.0
        for index, (name, values) in enumerate(series.items()):
            value = values[i]
            if value <= 0:
                continue
            height = value / top * plot_h
            y = PAD_TOP + plot_h - (base + value) / top * plot_h
            bars.append(
                Bar(
                    PAD_LEFT + i * slot + slot * 0.1,
                    y,
                    slot * 0.8,
                    height,
                    f"s{index % 6}",
                    f"{labels[i]}: {name} {format(value, fmt)}",
                )
            )
            base += value
    lines = tuple(Line(name, f"s{i % 6}", "", None) for i, name in enumerate(series))
    return Chart(
        WIDTH,
        HEIGHT,
        lines,
        tuple(bars),
        _ticks(top, fmt),
        labels[0] if labels else "",
        labels[-1] if labels else "",
        not any(totals),
    )
