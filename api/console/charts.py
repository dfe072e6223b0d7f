"""Stacked bar charts as plain SVG geometry, drawn by the templates: no chart library, no
script, nothing fetched from elsewhere."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

WIDTH, HEIGHT = 1100, 240
LEFT, BOTTOM, TOP = 80, 28, 12


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    series: str
    title: str


@dataclass(frozen=True)
class Tick:
    y: float
    label: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bars: list[Bar]
    ticks: list[Tick]
    labels: list[tuple[float, str]]  # x of each column's centre, its label
    series: list[str]
    empty: bool


def _nice_top(value: float) -> float:
    """A round number at or above ``value`` for the top of the axis: 1, 2, 2.5 or 5 times
    a power of ten."""
    if value <= 0:
        return 1.0
    step = 10.0 ** math.floor(math.log10(value))
    for factor in (1, 2, 2.5, 5):
        if value <= step * factor * (1 + 1e-9):
            return float(step * factor)
    return float(step * 10)


def stacked(
    columns: list[str],
    series: dict[str, list[float]],
    fmt: Callable[[float], str],
) -> Chart:
    """One column per entry of ``columns``, each stacking the series' values at its index."""
    totals = [sum(values[i] for values in series.values()) for i in range(len(columns))]
    top = _nice_top(max(totals, default=0.0))
    plot_w, plot_h = WIDTH - LEFT - 8, HEIGHT - BOTTOM - TOP
    slot = plot_w / max(1, len(columns))
    bar_w = slot * 0.6
    bars: list[Bar] = []
    for i, label in enumerate(columns):
        base = float(HEIGHT - BOTTOM)
        for name, values in series.items():
            value = values[i]
            if value <= 0:
                continue
            h = plot_h * value / top
            base -= h
            x = LEFT + i * slot + (slot - bar_w) / 2
            bars.append(Bar(x, base, bar_w, h, name, f"{label} {name}: {fmt(value)}"))
    ticks = [Tick(HEIGHT - BOTTOM - plot_h * f, fmt(top * f)) for f in (0, 0.5, 1)]
    labels = [(LEFT + i * slot + slot / 2, c) for i, c in enumerate(columns)]
    return Chart(WIDTH, HEIGHT, bars, ticks, labels, list(series), not any(totals))
