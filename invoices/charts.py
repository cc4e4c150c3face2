"""Charts drawn on the server as SVG: no script, no third-party asset, nothing for the CSP to allow.

Each function turns labelled values into the coordinates its template draws
(templates/admin/invoices/recovery/_bars.svg and _line.svg); the page puts the same figures in a
table beside each chart, so a screen reader loses nothing.
"""

import dataclasses
import math

WIDTH = 560
HEIGHT = 240
# Room for the axis labels: left for the values, below for the categories.
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 16, 40


@dataclasses.dataclass(frozen=True)
class Point:
    label: str
    value: int
    shown: str  # the value as the page writes it


@dataclasses.dataclass(frozen=True)
class Tick:
    y: float
    shown: str


@dataclasses.dataclass(frozen=True)
class Bar:
    point: Point
    x: float
    y: float
    width: float
    height: float

    @property
    def centre(self) -> float:
        return self.x + self.width / 2


@dataclasses.dataclass(frozen=True)
class Chart:
    title: str
    width: int
    height: int
    left: int
    top: int
    bottom: float  # the y of the zero line
    right: float
    ticks: list[Tick]
    bars: list[Bar] = dataclasses.field(default_factory=list)
    line: str = ""  # an SVG polyline's points
    dots: list[tuple[float, float, Point]] = dataclasses.field(default_factory=list)
    labels: list[tuple[float, str]] = dataclasses.field(default_factory=list)


def nice_ceiling(value: int) -> int:
    """The axis' top: 1, 2 or 5 times a power of ten, at least ``value`` (and at least 1)."""
    if value <= 1:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power  # pragma: no cover - the loop always returns


def _ticks(top: int, fmt, *, steps: int = 4) -> list[Tick]:
    # Whole values only: an axis that tops at 2 has the lines 0, 1 and 2.
    steps = min(steps, top)
    plot = HEIGHT - TOP - BOTTOM
    return [Tick(TOP + plot - plot * i / steps, fmt(top * i // steps)) for i in range(steps + 1)]


def _y(value: int, top: int) -> float:
    plot = HEIGHT - TOP - BOTTOM
    return TOP + plot - plot * value / top


def bar_chart(title: str, points: list[Point], fmt=str) -> Chart:
    top = nice_ceiling(max((p.value for p in points), default=0))
    span = WIDTH - LEFT - RIGHT
    slot = span / max(len(points), 1)
    width = slot * 0.6
    bars = []
    for i, point in enumerate(points):
        y = _y(point.value, top)
        bars.append(Bar(point, LEFT + slot * i + (slot - width) / 2, y, width, HEIGHT - BOTTOM - y))
    return Chart(
        title=title,
        width=WIDTH,
        height=HEIGHT,
        left=LEFT,
        top=TOP,
        bottom=HEIGHT - BOTTOM,
        right=WIDTH - RIGHT,
        ticks=_ticks(top, fmt),
        bars=bars,
    )


def line_chart(title: str, points: list[Point], fmt=str, *, max_labels: int = 6) -> Chart:
    top = nice_ceiling(max((p.value for p in points), default=0))
    span = WIDTH - LEFT - RIGHT
    step = span / max(len(points) - 1, 1)
    dots = [(LEFT + step * i, _y(point.value, top), point) for i, point in enumerate(points)]
    every = max(1, math.ceil(len(points) / max_labels))
    return Chart(
        title=title,
        width=WIDTH,
        height=HEIGHT,
        left=LEFT,
        top=TOP,
        bottom=HEIGHT - BOTTOM,
        right=WIDTH - RIGHT,
        ticks=_ticks(top, fmt),
        line=" ".join(f"{x:.1f},{y:.1f}" for x, y, _point in dots),
        dots=dots,
        labels=[(x, point.label) for i, (x, _y_, point) in enumerate(dots) if i % every == 0],
    )
