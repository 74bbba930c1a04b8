"""The HTML report's charts, drawn with matplotlib and returned as inline SVG text.

Each chart is a function of the plain data in :mod:`gates.reporters._chartdata`. The SVG is made
to live inside an HTML page: no XML prologue or namespace URLs, element ids prefixed per chart
(several SVGs share one document), text kept as text (``svg.fonttype: none``) so it stays small
and sharp, ids salted deterministically so the same report gives the same bytes.
"""
from __future__ import annotations

import io
import math
import re
import textwrap
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from gates.errors import missing_extra
from gates.reporters._chartdata import (
    CurvePanel,
    FairnessPanel,
    IntervalRow,
    Limit,
    Series,
)
from gates.reporters._format import STATUS_WORD, num

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

STATUS_COLOUR = {"pass": "#2e7d32", "fail": "#c62828", "inconclusive": "#ad1457", "error": "#6a1b9a",
                 "warn": "#e65100", "waived": "#00838f", "skipped": "#757575"}
RATE_COLOURS = ("#4878a8", "#e69138", "#6aa84f", "#8e63a8", "#a0522d", "#3d9ea6")
CANDIDATE, PRODUCTION, LIMIT, BAD_SIDE = "#1f5f99", "#7a7a7a", "#c62828", "#fdecea"
WIDTH_IN = 5.2
#: forest plot row layout, inches: one title line, the axes, its tick labels (with the gap below)
TITLE_LINE_IN, AXES_IN, TICKS_IN = 0.22, 0.4, 0.42
#: more groups than this are listed in the table but not drawn (the chart would be unreadable)
MAX_GROUPS = 40
RC: dict[str, Any] = {
    "svg.fonttype": "none",
    "text.parse_math": False,
    "text.usetex": False,
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Arial", "Helvetica", "sans-serif"],
    "font.size": 10.0,
    "axes.titlesize": 9.5,
    "axes.labelsize": 9.5,
    "xtick.labelsize": 9.0,
    "ytick.labelsize": 9.0,
    "legend.fontsize": 9.0,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "svg.image_inline": True,
}


@contextmanager
def _plotting(salt: str) -> Iterator[type[Figure]]:
    """Yield matplotlib's ``Figure`` class under the report's style.

    Figures are made without pyplot: no global backend switch, no figure registry to leak into a
    host process (a notebook, a pytest session); ``savefig`` picks the SVG canvas by itself.
    """
    try:
        import matplotlib
        from matplotlib.figure import Figure
    except ImportError:
        raise missing_extra("html", "the HTML report") from None
    with matplotlib.rc_context({**RC, "svg.hashsalt": salt}):  # type: ignore[dict-item]
        yield Figure


def to_svg(fig: Figure, salt: str, title: str) -> str:
    """Return ``fig`` as an ``<svg>`` element ready to inline in HTML."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    return inline_svg(buf.getvalue(), salt, title)


#: an element id, or a reference to one (``href="#id"``, ``url(#id)``)
_ID_OR_REF = re.compile(r'(\sid="|href="#|url\(#)([^")]+)')


def inline_svg(text: str, prefix: str, title: str) -> str:
    """Make matplotlib's SVG document an inline element with ids unique to ``prefix``."""
    from html import escape

    svg = text[text.index("<svg"):]
    svg = re.sub(r'\s+xmlns(?::\w+)?="[^"]*"', "", svg, count=3)
    svg = svg.replace("xlink:href=", "href=")
    svg = _ID_OR_REF.sub(lambda m: f"{m[1]}{prefix}-{m[2]}", svg)
    head_end = svg.index(">")
    label = escape(title, quote=True)
    return (svg[:head_end] + f' role="img" aria-label="{label}"' + svg[head_end:head_end + 1]
            + f"\n <title>{escape(title)}</title>" + svg[head_end + 1:])


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


# ---------------------------------------------------------------- forest plot


def forest_plot(rows: Sequence[IntervalRow], salt: str) -> str:
    """Return one small panel per interval check: point, interval, threshold line, failing side.

    Every row has its own x scale (a roc_auc difference and a disparity differ by orders of
    magnitude), so the question each row answers stays visible: is the whole interval on the
    right side of the line, and how wide is it next to the margin?
    """
    titles = [_forest_titles(r) for r in rows]
    blocks = [len(left.splitlines()) * TITLE_LINE_IN + AXES_IN + TICKS_IN for left, _ in titles]
    height = sum(blocks) + 0.1
    with _plotting(salt) as figure:
        fig = figure(figsize=(WIDTH_IN, height))
        top = height - 0.05
        for row, (left, right), block in zip(rows, titles, blocks):
            bottom = top - block + TICKS_IN
            ax = fig.add_axes((0.03, bottom / height, 0.94, AXES_IN / height))
            _forest_row(ax, row, left, right)
            top -= block
        return to_svg(fig, salt, "Intervals: " + ", ".join(r.check_id for r in rows))


def _forest_titles(row: IntervalRow) -> tuple[str, str]:
    """Return the row's left title (its id; on its own line when long) and right title (status, numbers)."""
    right = f"{STATUS_WORD.get(row.status, row.status)}  {'Δ' if row.is_difference else ''}{num(row.point)}"
    if row.half_width is not None:
        right += f" ±{num(row.half_width, 3)}"
    left = _short(row.check_id, 70)
    return (left + "\n" if len(left) + len(right) > 58 else left), right


def _forest_row(ax: Axes, row: IntervalRow, left: str, right: str) -> None:
    colour = STATUS_COLOUR.get(row.status, "#333333")
    ax.set_title(left, loc="left", linespacing=1.45, pad=4)
    ax.set_title(right, loc="right", color=colour, fontweight="bold", pad=4)
    lo, hi = _span([row.low, row.high, row.point]
                   + ([row.limit.value] if row.limit else []) + ([0.0] if row.is_difference else []))
    ax.set_xlim(lo, hi)
    ax.set_ylim(-1, 1.6)
    if row.limit is not None:
        _limit_vline(ax, row.limit, lo, hi)
    if row.is_difference:
        ax.axvline(0.0, color="#9e9e9e", lw=0.8, zorder=1)
    ax.hlines(0, row.low, row.high, color=colour, lw=3.4, zorder=3)
    ax.plot([row.point], [0], "o", color="white", mec=colour, mew=2, ms=8, zorder=4)
    ax.set_yticks([])
    ax.spines[["left", "top", "right"]].set_visible(False)
    ax.xaxis.set_major_locator(_locator())
    ax.tick_params(axis="x", length=3, pad=2)


def _limit_vline(ax: Axes, limit: Limit, lo: float, hi: float) -> None:
    bad_lo, bad_hi = (limit.value, hi) if limit.bad_above else (lo, limit.value)
    ax.axvspan(bad_lo, bad_hi, color=BAD_SIDE, zorder=0, lw=0)
    ax.axvline(limit.value, color=LIMIT, lw=1.2, ls="--", zorder=2)
    room_right = (hi - limit.value) >= (limit.value - lo)  # write the label where there is space
    ax.text(limit.value, 0.97, " " + limit.label + " ", color=LIMIT, fontsize=8.5, va="top",
            ha="left" if room_right else "right", transform=ax.get_xaxis_transform())


def _span(values: Sequence[float]) -> tuple[float, float]:
    finite = [v for v in values if math.isfinite(v)]
    lo, hi = min(finite), max(finite)
    pad = (hi - lo) * 0.12 or max(abs(hi) * 0.1, 1e-3)
    return lo - pad, hi + pad


def _locator() -> Any:
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(nbins=5, min_n_ticks=3)


# ---------------------------------------------------------------- fairness


def group_bars(panel: FairnessPanel, salt: str) -> str:
    """Return horizontal bars of each involved rate per group, worst group first.

    Production's value is a black tick on each bar; groups excluded from the disparity (too
    small, too few positives) are hatched and say so; undefined rates are written, not drawn as 0.
    """
    groups = panel.groups[:MAX_GROUPS]
    k = max(len(panel.rates), 1)
    per_group = 0.22 * k + 0.26
    height = 1.0 + per_group * len(groups)
    with _plotting(salt) as figure:
        fig = figure(figsize=(WIDTH_IN, height))
        ax = fig.subplots()
        xmax = _group_axis_max(panel)
        for j, rate in enumerate(panel.rates):
            _rate_bars(ax, groups, j, rate, k, xmax)
        ax.set_yticks(range(len(groups)), [_group_tick(g.label, g.size, g.excluded) for g in groups])
        ax.set_ylim(len(groups) - 0.5, -0.5)
        ax.set_xlim(0, xmax)
        ax.xaxis.set_major_locator(_locator())
        ax.grid(axis="x", color="#e0e0e0", lw=0.6)
        ax.set_axisbelow(True)
        ax.set_xlabel("rate per group (candidate)")
        _group_legend(ax, panel)
        fig.subplots_adjust(left=0.32, right=0.96, top=1 - 0.55 / height, bottom=0.5 / height)
        return to_svg(fig, salt, f"{panel.metric} by {panel.grouping}: " + ", ".join(panel.rates) + " per group")


def _group_axis_max(panel: FairnessPanel) -> float:
    values = [v for g in panel.groups for side in (g.values, g.baseline or {}) for v in side.values() if v is not None]
    top = max(values, default=1.0)
    return 1.0 if top <= 1.0 else top * 1.1


def _rate_bars(ax: Axes, groups: Sequence[Any], j: int, rate: str, k: int, xmax: float) -> None:
    height = 0.8 / k
    offset = -0.4 + height * (j + 0.5)
    colour = RATE_COLOURS[j % len(RATE_COLOURS)]
    for i, g in enumerate(groups):
        y = i + offset
        value = g.values.get(rate)
        excluded = g.excluded is not None
        if value is None:
            ax.text(xmax * 0.01, y, f"{rate} undefined", va="center", fontsize=8, color="#555555", style="italic")
        else:
            ax.barh(y, value, height=height * 0.9, color=colour, alpha=0.35 if excluded else 1.0,
                    hatch="///" if excluded else None, edgecolor=colour if excluded else "none", lw=0.6)
            ax.text(value + xmax * 0.01, y, num(value, 3), va="center", fontsize=8, color="#333333")
        base = (g.baseline or {}).get(rate)
        if base is not None:
            ax.plot([base], [y], marker="|", color="black", ms=9, mew=1.6, ls="none")


def _group_tick(label: str, size: int | None, excluded: str | None) -> str:
    """Return a tick label: one line per grouping column (at most two), then the group size."""
    parts = [p for part in label.split(", ") for p in textwrap.wrap(part, 22, max_lines=1, placeholder="…")]
    lines = parts[:2] or ["(missing)"]
    if len(parts) > 2:
        lines[-1] += ", …"
    note = f"n={num(size)}" + (" · excluded" if excluded else "")
    return "\n".join(lines + [note])


def _group_legend(ax: Axes, panel: FairnessPanel) -> None:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles: list[Any] = [Patch(color=RATE_COLOURS[j % len(RATE_COLOURS)], label=r) for j, r in enumerate(panel.rates)]
    if any(g.baseline for g in panel.groups):
        handles.append(Line2D([], [], marker="|", color="black", ls="none", ms=9, mew=1.6, label="production"))
    if any(g.excluded for g in panel.groups):
        handles.append(Patch(facecolor="white", edgecolor="#555555", hatch="///", label="excluded"))
    ax.legend(handles=handles, loc="lower left", bbox_to_anchor=(0, 1.0), ncol=len(handles), frameon=False,
              borderaxespad=0.3, handlelength=1.4, columnspacing=1.0)


# ---------------------------------------------------------------- robustness


def severity_curves(panel: CurvePanel, salt: str) -> str:
    """Return one plot per measure (metric, flip rate, score shift) against perturbation severity."""
    n = len(panel.series)
    height = 0.55 + 1.9 * n
    with _plotting(salt) as figure:
        fig = figure(figsize=(WIDTH_IN, height))
        axes = fig.subplots(n, 1, squeeze=False, sharex=True)
        for ax, series in zip(axes[:, 0], panel.series):
            _curve(ax, series)
        axes[-1, 0].set_xlabel(f"severity of {panel.perturbation}")
        axes[0, 0].legend(loc="lower left", bbox_to_anchor=(0, 1.0), ncol=4, frameon=False, borderaxespad=0.3,
                          handlelength=1.6, columnspacing=1.0)
        fig.subplots_adjust(left=0.15, right=0.97, top=1 - 0.42 / height, bottom=0.5 / height, hspace=0.25)
        return to_svg(fig, salt, f"Severity curves: {panel.title}")


def _curve(ax: Axes, s: Series) -> None:
    x = list(s.severities)
    cand = [math.nan if v is None else v for v in s.candidate]
    ax.plot(x, cand, "-o", color=CANDIDATE, lw=1.8, ms=4.5, label="candidate", zorder=3)
    if s.baseline is not None:
        base = [math.nan if v is None else v for v in s.baseline]
        ax.plot(x, base, "--s", color=PRODUCTION, lw=1.4, ms=3.5, label="production", zorder=2)
    for i, limit in enumerate(s.limits):
        ax.axhline(limit.value, color=LIMIT, ls="--", lw=1.1, label="limit" if i == 0 else None, zorder=1)
        ax.text(1.0, limit.value, limit.label + " ", color=LIMIT, fontsize=8.5, ha="right",
                va="top" if limit.bad_above else "bottom", transform=ax.get_yaxis_transform())
    failing = [(sev, v) for sev, v in zip(x, cand) if sev in s.failing and not math.isnan(v)]
    if failing:
        xs, ys = zip(*failing)
        ax.scatter(xs, ys, s=130, facecolors="none", edgecolors=LIMIT, linewidths=1.6, zorder=4,
                   label="check not passed")
    ax.set_ylabel(s.measure)
    ax.grid(color="#eeeeee", lw=0.6)
    ax.set_axisbelow(True)
    ax.yaxis.set_major_locator(_locator())
