"""Stacked bar charts as plain SVG geometry, drawn by a template (no script, no library)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

COLOURS = ("#2f6f9f", "#4d9f6f", "#d99a2b", "#b5523b", "#7a5ea8", "#5f7f8f", "#9f8f4d")
WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 720, 220, 40, 40, 10


@dataclass(frozen=True)
class Bar:
    """One segment of a stacked bar."""

    x: float
    y: float
    width: float
    height: float
    colour: str
    title: str


@dataclass(frozen=True)
class Tick:
    """A label under the x axis or beside the y axis."""

    x: float
    y: float
    text: str


@dataclass(frozen=True)
class Chart:
    """What the template draws."""

    width: int
    height: int
    bars: list[Bar]
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    legend: list[tuple[str, str]]
    empty: bool
    axis_y: float
    left: int


def _nice(top: int) -> int:
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000):
        if top <= step * 4:
            return step
    return max(1, top // 4)


def stacked(labels: Sequence[str], series: Mapping[str, Sequence[int]]) -> Chart:
    """Bars per label, each stacked from the series in order."""
    names = [n for n in series if any(series[n])] or list(series)[:1]
    totals = [sum(series[n][i] for n in names) for i in range(len(labels))] if names else []
    top = max(totals, default=0)
    step = _nice(top)
    scale_top = max(step * 4, top, 1)
    plot_h = HEIGHT - BOTTOM - TOP
    plot_w = WIDTH - LEFT - 10
    slot = plot_w / max(len(labels), 1)
    width = max(1.0, slot * 0.7)
    colours = {n: COLOURS[i % len(COLOURS)] for i, n in enumerate(names)}
    bars: list[Bar] = []
    for i, label in enumerate(labels):
        base = float(HEIGHT - BOTTOM)
        for name in names:
            value = series[name][i]
            if value <= 0:
                continue
            h = plot_h * value / scale_top
            base -= h
            bars.append(
                Bar(
                    LEFT + i * slot + (slot - width) / 2,
                    base,
                    width,
                    h,
                    colours[name],
                    f"{label} {name}: {value}",
                )
            )
    every = max(1, len(labels) // 8)
    x_ticks = [
        Tick(LEFT + i * slot + slot / 2, HEIGHT - BOTTOM + 16, label)
        for i, label in enumerate(labels)
        if i % every == 0
    ]
    y_ticks = [
        Tick(LEFT - 6, HEIGHT - BOTTOM - plot_h * k * step / scale_top + 4, str(k * step))
        for k in range(0, 5)
        if k * step <= scale_top
    ]
    return Chart(
        WIDTH,
        HEIGHT,
        bars,
        x_ticks,
        y_ticks,
        [(n, colours[n]) for n in names],
        top == 0,
        HEIGHT - BOTTOM,
        LEFT,
    )
