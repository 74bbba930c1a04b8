"""A small SVG drawing kit for the HTML report's charts: axes, ticks, lines, bars, text.

Charts are a few dozen shapes each, so they are written as SVG text directly: no plotting library
to import (matplotlib's import alone cost more than a whole report), the same bytes for the same
report, and text that stays text (selectable, searchable, sharp at any zoom). Every string drawn
is escaped; element ids carry a per-chart prefix so many charts share one page.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape

FONT = "system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',Arial,sans-serif"
FONT_SIZE = 11.0
#: average advance of a character, in font sizes (for layout only: labels are never clipped by it)
CHAR_WIDTH = 0.56
GRID, AXIS, INK, MUTED = "#e4e7eb", "#8a9199", "#1b1f24", "#5f6b76"


def f(x: float) -> str:
    """Return a coordinate with at most two decimals (``12.5``, ``3``)."""
    text = f"{x:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def text_width(text: str, size: float = FONT_SIZE) -> float:
    return len(text) * size * CHAR_WIDTH


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Return about ``count`` round tick values (1, 2, 2.5 or 5 x 10^k apart) covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw * 0.999)
    first = math.ceil(lo / step - 1e-9) * step
    ticks, k = [], 0
    while first + k * step <= hi + step * 1e-9:
        ticks.append(round(first + k * step, 12))
        k += 1
    return ticks


def tick_label(value: float, ticks: Sequence[float]) -> str:
    """Return ``value`` with as many decimals as the tick step needs."""
    step = abs(ticks[1] - ticks[0]) if len(ticks) > 1 else abs(value) or 1.0
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) if step < 1 else 0
    if step * 10 ** decimals % 1 > 1e-6:  # 2.5 x 10^k needs one more
        decimals += 1
    if abs(value) >= 1e5 or (0 < abs(value) < 1e-4):
        return f"{value:.2g}"
    text = f"{value:.{decimals}f}"
    return "0" if text.strip("-0.") == "" else text.replace("-", "−")


class Canvas:
    """An SVG picture in px units of a ``width`` x ``height`` viewBox, built up then rendered once."""

    def __init__(self, width: float, height: float, prefix: str) -> None:
        self.width, self.height, self.prefix = width, height, prefix
        self.parts: list[str] = []
        self.defs: list[str] = []
        self._patterns: dict[str, str] = {}

    def line(self, x1: float, y1: float, x2: float, y2: float, stroke: str, width: float = 1.0,
             dash: str | None = None, opacity: float | None = None) -> None:
        extra = (f' stroke-dasharray="{dash}"' if dash else "") + (f' stroke-opacity="{opacity}"' if opacity else "")
        self.parts.append(f'<line x1="{f(x1)}" y1="{f(y1)}" x2="{f(x2)}" y2="{f(y2)}" stroke="{stroke}" '
                          f'stroke-width="{f(width)}"{extra}/>')

    def polyline(self, points: Iterable[tuple[float, float] | None], stroke: str, width: float = 1.6,
                 dash: str | None = None) -> None:
        """Draw a line through ``points``; a None breaks it (an undefined value is not bridged)."""
        runs: list[list[tuple[float, float]]] = [[]]
        for p in points:
            if p is None:
                runs.append([])
            else:
                runs[-1].append(p)
        extra = f' stroke-dasharray="{dash}"' if dash else ""
        for run in runs:
            if len(run) > 1:
                pts = " ".join(f"{f(x)},{f(y)}" for x, y in run)
                self.parts.append(f'<polyline points="{pts}" fill="none" stroke="{stroke}" stroke-width="{f(width)}" '
                                  f'stroke-linejoin="round"{extra}/>')

    def polygon(self, points: Sequence[tuple[float, float]], fill: str, opacity: float = 1.0) -> None:
        pts = " ".join(f"{f(x)},{f(y)}" for x, y in points)
        self.parts.append(f'<polygon points="{pts}" fill="{fill}" fill-opacity="{opacity}"/>')

    def rect(self, x: float, y: float, w: float, h: float, fill: str, *, opacity: float | None = None,
             stroke: str | None = None, hatch: bool = False, title: str | None = None) -> None:
        paint = f"url(#{self._hatch(fill)})" if hatch else fill
        extra = (f' fill-opacity="{opacity}"' if opacity is not None else "") + \
                (f' stroke="{stroke}" stroke-width="0.8"' if stroke else "")
        tip = f"<title>{escape(title)}</title>" if title else ""
        body = f'<rect x="{f(x)}" y="{f(y)}" width="{f(max(w, 0))}" height="{f(max(h, 0))}" fill="{paint}"{extra}'
        self.parts.append(body + (f">{tip}</rect>" if tip else "/>"))

    def circle(self, cx: float, cy: float, r: float, fill: str, stroke: str | None = None, width: float = 1.5) -> None:
        extra = f' stroke="{stroke}" stroke-width="{f(width)}"' if stroke else ""
        self.parts.append(f'<circle cx="{f(cx)}" cy="{f(cy)}" r="{f(r)}" fill="{fill}"{extra}/>')

    def square(self, cx: float, cy: float, half: float, fill: str) -> None:
        self.rect(cx - half, cy - half, 2 * half, 2 * half, fill)

    def text(self, x: float, y: float, text: str, *, size: float = FONT_SIZE, anchor: str = "start",
             colour: str = INK, weight: str | None = None, italic: bool = False, middle: bool = False,
             rotate: float | None = None) -> None:
        """Write ``text`` at (x, y): y is the baseline, or the vertical middle with ``middle``."""
        attrs = f'x="{f(x)}" y="{f(y)}" font-size="{f(size)}"'
        if anchor != "start":
            attrs += f' text-anchor="{anchor}"'
        if colour != INK:
            attrs += f' fill="{colour}"'
        if weight:
            attrs += f' font-weight="{weight}"'
        if italic:
            attrs += ' font-style="italic"'
        if middle:
            attrs += ' dominant-baseline="central"'
        if rotate is not None:
            attrs += f' transform="rotate({f(rotate)} {f(x)} {f(y)})"'
        self.parts.append(f"<text {attrs}>{escape(text, quote=False)}</text>")

    def _hatch(self, colour: str) -> str:
        if colour not in self._patterns:
            pid = f"{self.prefix}-hatch{len(self._patterns)}"
            self._patterns[colour] = pid
            self.defs.append(f'<pattern id="{pid}" width="6" height="6" patternUnits="userSpaceOnUse" '
                             f'patternTransform="rotate(45)"><rect width="6" height="6" fill="{colour}" '
                             f'fill-opacity="0.18"/><line x1="0" y1="0" x2="0" y2="6" stroke="{colour}" '
                             f'stroke-width="2"/></pattern>')
        return self._patterns[colour]

    def render(self, title: str) -> str:
        """Return the ``<svg>`` element, labelled for screen readers by ``title``."""
        defs = f"<defs>{''.join(self.defs)}</defs>" if self.defs else ""
        label = escape(title, quote=True)
        return (f'<svg viewBox="0 0 {f(self.width)} {f(self.height)}" width="{f(self.width)}" '
                f'height="{f(self.height)}" role="img" aria-label="{label}" font-family="{FONT}" '
                f'preserveAspectRatio="xMidYMid meet"><title>{escape(title)}</title>{defs}'
                + "".join(self.parts) + "</svg>")


@dataclass(frozen=True)
class Axes:
    """A plotting box on a canvas: data limits mapped onto the px rectangle (left, top, width, height)."""

    left: float
    top: float
    width: float
    height: float
    xlim: tuple[float, float]
    ylim: tuple[float, float]

    def x(self, v: float) -> float:
        lo, hi = self.xlim
        return self.left + (v - lo) / ((hi - lo) or 1.0) * self.width

    def y(self, v: float) -> float:
        lo, hi = self.ylim
        return self.top + self.height - (v - lo) / ((hi - lo) or 1.0) * self.height

    @property
    def right(self) -> float:
        return self.left + self.width

    @property
    def bottom(self) -> float:
        return self.top + self.height

    def clip_x(self, v: float) -> float:
        return min(max(self.x(v), self.left), self.right)

    def clip_y(self, v: float) -> float:
        return min(max(self.y(v), self.top), self.bottom)


def draw_axes(c: Canvas, ax: Axes, *, xticks: Sequence[float] | None = None, yticks: Sequence[float] | None = None,
              xlabel: str = "", ylabel: str = "", grid: bool = True, frame: bool = False,
              xtick_labels: Sequence[str] | None = None, left_axis: bool = True) -> None:
    """Draw grid lines, the bottom and left axis lines, tick labels and axis labels."""
    xt = list(nice_ticks(*ax.xlim) if xticks is None else xticks)
    yt = list(nice_ticks(*ax.ylim) if yticks is None else yticks)
    size = FONT_SIZE - 1
    for i, v in enumerate(xt):
        x = ax.x(v)
        if grid:
            c.line(x, ax.top, x, ax.bottom, GRID, 0.8)
        c.line(x, ax.bottom, x, ax.bottom + 3, AXIS, 0.8)
        label = xtick_labels[i] if xtick_labels is not None else tick_label(v, xt)
        c.text(x, ax.bottom + 4 + size, label, size=size, anchor="middle", colour=MUTED)
    for v in yt:
        y = ax.y(v)
        if grid:
            c.line(ax.left, y, ax.right, y, GRID, 0.8)
        c.line(ax.left - 3, y, ax.left, y, AXIS, 0.8)
        c.text(ax.left - 5, y, tick_label(v, yt), size=size, anchor="end", colour=MUTED, middle=True)
    c.line(ax.left, ax.bottom, ax.right, ax.bottom, AXIS, 1)
    if left_axis:
        c.line(ax.left, ax.top, ax.left, ax.bottom, AXIS, 1)
    if frame:
        c.line(ax.left, ax.top, ax.right, ax.top, AXIS, 1)
        c.line(ax.right, ax.top, ax.right, ax.bottom, AXIS, 1)
    if xlabel:
        c.text(ax.left + ax.width / 2, ax.bottom + 8 + 2 * size + 2, xlabel, anchor="middle", size=FONT_SIZE)
    if ylabel:
        c.text(ax.left - 38, ax.top + ax.height / 2, ylabel, anchor="middle", size=FONT_SIZE, rotate=-90)


@dataclass(frozen=True)
class LegendItem:
    label: str
    colour: str
    kind: str = "line"  # line | dash | dot | box | hatch | ring


def legend(c: Canvas, items: Sequence[LegendItem], left: float, top: float, width: float) -> float:
    """Draw legend items in rows from (left, top) within ``width``; return the height used."""
    x, y, row = left, top, 16.0
    for item in items:
        need = 22 + text_width(item.label, FONT_SIZE - 1) + 12
        if x > left and x + need > left + width:
            x, y = left, y + row
        mid = y + row / 2
        if item.kind in ("line", "dash"):
            c.line(x, mid, x + 16, mid, item.colour, 2, "5 3" if item.kind == "dash" else None)
        elif item.kind == "dot":
            c.circle(x + 8, mid, 3.5, item.colour)
        elif item.kind == "ring":
            c.circle(x + 8, mid, 5, "none", item.colour, 1.6)
        elif item.kind == "tick":
            c.line(x + 8, mid - 6, x + 8, mid + 6, item.colour, 2)
        else:
            c.rect(x + 2, mid - 5, 12, 10, item.colour, hatch=item.kind == "hatch",
                   stroke=item.colour if item.kind == "hatch" else None)
        c.text(x + 20, mid, item.label, size=FONT_SIZE - 1, middle=True)
        x += need
    return y + row - top


def span(values: Iterable[float | None], pad: float = 0.06, floor: float | None = None,
         ceiling: float | None = None) -> tuple[float, float]:
    """Return a padded (lo, hi) covering the finite ``values`` (0..1 when there are none)."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return 0.0, 1.0
    lo, hi = min(finite), max(finite)
    margin = (hi - lo) * pad or max(abs(hi) * 0.1, 1e-3)
    lo, hi = lo - margin, hi + margin
    if floor is not None and lo < floor <= min(finite):
        lo = floor
    if ceiling is not None and hi > ceiling >= max(finite):
        hi = ceiling
    return lo, hi
