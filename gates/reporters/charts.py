"""The HTML report's charts as inline SVG, drawn from :mod:`gates.reporters._chartdata`.

Drawn directly with :mod:`gates.reporters.svg` (no plotting library): a chart is a function of
plain data and gives the same bytes for the same report. Candidate and production share each
chart where they share axes (ROC, precision-recall, reliability, residuals), and stand side by side
where they do not (confusion matrices).
"""
from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence

from gates.reporters._chartdata import (
    Confusion,
    CurveChart,
    CurvePanel,
    DriftChart,
    FairnessPanel,
    IntervalRow,
    Limit,
    Residuals,
    Series,
)
from gates.reporters._format import STATUS_WORD, num
from gates.reporters.svg import (
    AXIS,
    FONT_SIZE,
    MUTED,
    Axes,
    Canvas,
    LegendItem,
    draw_axes,
    legend,
    nice_ticks,
    span,
    text_width,
)

STATUS_COLOUR = {"pass": "#2e7d32", "fail": "#c62828", "inconclusive": "#ad1457", "error": "#6a1b9a",
                 "warn": "#e65100", "waived": "#00838f", "skipped": "#757575"}
RATE_COLOURS = ("#4878a8", "#e69138", "#6aa84f", "#8e63a8", "#a0522d", "#3d9ea6")
CANDIDATE, PRODUCTION, LIMIT, BAD_SIDE = "#1f5f99", "#8a8a8a", "#c62828", "#fdecea"
ROLE_COLOUR = {"candidate": CANDIDATE, "baseline": PRODUCTION}
ROLE_NAME = {"candidate": "candidate", "baseline": "production"}
WIDTH = 420.0
#: more groups than this are listed in the table but not drawn (the chart would be unreadable)
MAX_GROUPS = 40
TITLE_CHARS = int((WIDTH - 16) / ((FONT_SIZE - 0.5) * 0.56))


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


# ---------------------------------------------------------------- forest plot

ROW_TITLE, ROW_AXES, ROW_TICKS = 15.0, 26.0, 24.0


def forest_plot(rows: Sequence[IntervalRow], salt: str) -> str:
    """Return one small panel per interval check: point, interval, threshold line, failing side.

    Every row has its own x scale (a roc_auc difference and a disparity differ by orders of
    magnitude), so the question each row answers stays visible: is the whole interval on the
    right side of the line, and how wide is it next to the margin?
    """
    titles = [_forest_titles(r) for r in rows]
    heights = [(2 if split else 1) * ROW_TITLE + ROW_AXES + ROW_TICKS for _, _, split in titles]
    c = Canvas(WIDTH, sum(heights) + 6, salt)
    top = 4.0
    for row, (left, right, split), h in zip(rows, titles, heights):
        _forest_row(c, row, left, right, split, top)
        top += h
    return c.render("Intervals: " + ", ".join(r.check_id for r in rows))


def _forest_titles(row: IntervalRow) -> tuple[str, str, bool]:
    """Return the row's left title (its id), right title (status, numbers), and whether they need two lines."""
    right = f"{STATUS_WORD.get(row.status, row.status)}  {'Δ' if row.is_difference else ''}{num(row.point)}"
    if row.half_width is not None:
        right += f" ±{num(row.half_width, 3)}"
    left = _short(row.check_id, TITLE_CHARS)
    return left, right, len(left) + len(right) + 3 > TITLE_CHARS


def _forest_row(c: Canvas, row: IntervalRow, left: str, right: str, split: bool, top: float) -> None:
    colour = STATUS_COLOUR.get(row.status, "#333333")
    size = FONT_SIZE - 0.5
    c.text(8, top + 11, left, size=size)
    line2 = top + (ROW_TITLE if split else 0)
    c.text(WIDTH - 8, line2 + 11, right, size=size, anchor="end", colour=colour, weight="bold")
    axes_top = line2 + ROW_TITLE
    lo, hi = _forest_span([row.low, row.high, row.point]
                          + ([row.limit.value] if row.limit else []) + ([0.0] if row.is_difference else []))
    ax = Axes(12, axes_top, WIDTH - 24, ROW_AXES, (lo, hi), (-1, 1))
    if row.limit is not None:
        _limit_band(c, ax, row.limit)
    if row.is_difference:
        c.line(ax.x(0.0), ax.top, ax.x(0.0), ax.bottom, "#9e9e9e", 0.9)
    mid = ax.top + ax.height * 0.62
    c.line(ax.clip_x(row.low), mid, ax.clip_x(row.high), mid, colour, 4.2)
    c.circle(ax.x(row.point), mid, 4.6, "#ffffff", colour, 2.2)
    ticks = nice_ticks(lo, hi, 5)
    draw_axes(c, Axes(ax.left, ax.top, ax.width, ax.height, (lo, hi), (0, 1)), xticks=ticks, yticks=[], grid=False,
              left_axis=False)


def _forest_span(values: Sequence[float]) -> tuple[float, float]:
    finite = [v for v in values if math.isfinite(v)]
    lo, hi = min(finite), max(finite)
    pad = (hi - lo) * 0.12 or max(abs(hi) * 0.1, 1e-3)
    return lo - pad, hi + pad


def _limit_band(c: Canvas, ax: Axes, limit: Limit) -> None:
    x = ax.x(limit.value)
    if limit.bad_above:
        c.rect(x, ax.top, ax.right - x, ax.height, BAD_SIDE)
    else:
        c.rect(ax.left, ax.top, x - ax.left, ax.height, BAD_SIDE)
    c.line(x, ax.top, x, ax.bottom, LIMIT, 1.3, "4 3")
    room_right = (ax.right - x) >= (x - ax.left)
    label = " " + limit.label + " "
    c.text(x + (2 if room_right else -2), ax.top + 9, label, size=FONT_SIZE - 2, colour=LIMIT,
           anchor="start" if room_right else "end")


# ---------------------------------------------------------------- fairness


def group_bars(panel: FairnessPanel, salt: str) -> str:
    """Return horizontal bars of each involved rate per group, worst group first.

    Production's value is a black tick on each bar; groups excluded from the disparity (too
    small, too few positives) are hatched and say so; undefined rates are written, not drawn as 0.
    """
    groups = panel.groups[:MAX_GROUPS]
    k = max(len(panel.rates), 1)
    bar = 11.0
    per_group = max(bar * k + 10, 40.0)
    ticks = [_group_tick(g.label, g.size, g.excluded) for g in groups]
    left = min(max(max((text_width(line, FONT_SIZE - 1) for t in ticks for line in t), default=40) + 12, 90), 170)
    items = [LegendItem(r, RATE_COLOURS[j % len(RATE_COLOURS)], "box") for j, r in enumerate(panel.rates)]
    if any(g.baseline for g in panel.groups):
        items.append(LegendItem("production", "#000000", "tick"))
    if any(g.excluded for g in panel.groups):
        items.append(LegendItem("excluded", "#555555", "hatch"))
    probe = Canvas(WIDTH, 10, salt)
    legend_h = legend(probe, items, 8, 4, WIDTH - 16)
    top = 8 + legend_h
    height = top + per_group * len(groups) + 40
    c = Canvas(WIDTH, height, salt)
    legend(c, items, 8, 4, WIDTH - 16)
    xmax = _group_axis_max(panel)
    ax = Axes(left, top, WIDTH - left - 34, per_group * len(groups), (0, xmax), (0, 1))
    xt = nice_ticks(0, xmax, 5)
    draw_axes(c, ax, xticks=xt, yticks=[], xlabel="rate per group (candidate)")
    for i, g in enumerate(groups):
        y0 = ax.top + i * per_group + (per_group - bar * k) / 2
        lines = ticks[i]
        first = ax.top + i * per_group + per_group / 2 - (len(lines) - 1) * 6
        for n, line in enumerate(lines):
            c.text(left - 6, first + n * 12, line, size=FONT_SIZE - 1, anchor="end", middle=True,
                   colour=MUTED if n == len(lines) - 1 else "#1b1f24")
        for j, rate in enumerate(panel.rates):
            _rate_bar(c, ax, g, rate, j, y0 + j * bar, bar, xmax)
    return c.render(f"{panel.metric} by {panel.grouping}: " + ", ".join(panel.rates) + " per group")


def _rate_bar(c: Canvas, ax: Axes, g: object, rate: str, j: int, y: float, bar: float, xmax: float) -> None:
    colour = RATE_COLOURS[j % len(RATE_COLOURS)]
    value = g.values.get(rate)  # type: ignore[attr-defined]
    excluded = g.excluded is not None  # type: ignore[attr-defined]
    mid = y + bar / 2
    if value is None:
        c.text(ax.left + 4, mid, f"{rate} undefined", size=FONT_SIZE - 2, colour="#555555", italic=True, middle=True)
    else:
        w = ax.x(min(value, xmax)) - ax.left
        c.rect(ax.left, y + 1, w, bar - 2, colour, opacity=0.45 if excluded else None, hatch=excluded,
               stroke=colour if excluded else None, title=f"{rate} {num(value)}")
        c.text(ax.left + w + 3, mid, num(value, 3), size=FONT_SIZE - 2, colour="#333333", middle=True)
    base = (g.baseline or {}).get(rate)  # type: ignore[attr-defined]
    if base is not None:
        x = ax.x(min(base, xmax))
        c.line(x, y - 1, x, y + bar + 1, "#000000", 2)


def _group_axis_max(panel: FairnessPanel) -> float:
    values = [v for g in panel.groups for side in (g.values, g.baseline or {}) for v in side.values() if v is not None]
    top = max(values, default=1.0)
    return 1.0 if top <= 1.0 else top * 1.1


def _group_tick(label: str, size: int | None, excluded: str | None) -> list[str]:
    """Return tick label lines: one per grouping column (at most two), then the group size."""
    parts = [p for part in label.split(", ") for p in textwrap.wrap(part, 22, max_lines=1, placeholder="…")]
    lines = parts[:2] or ["(missing)"]
    if len(parts) > 2:
        lines[-1] += ", …"
    note = f"n={num(size)}" + (" · excluded" if excluded else "")
    return lines + [note]


# ---------------------------------------------------------------- robustness

SUBPLOT = 118.0


def severity_curves(panel: CurvePanel, salt: str) -> str:
    """Return one plot per measure (metric, flip rate, score shift) against perturbation severity."""
    items = [LegendItem("candidate", CANDIDATE, "line")]
    if any(s.baseline is not None for s in panel.series):
        items.append(LegendItem("production", PRODUCTION, "dash"))
    if any(s.limits for s in panel.series):
        items.append(LegendItem("limit", LIMIT, "dash"))
    if any(s.failing for s in panel.series):
        items.append(LegendItem("check not passed", LIMIT, "ring"))
    probe = Canvas(WIDTH, 10, salt)
    top = 6 + legend(probe, items, 54, 4, WIDTH - 60)
    gap = 30.0
    height = top + len(panel.series) * (SUBPLOT + gap) + 20
    c = Canvas(WIDTH, height, salt)
    legend(c, items, 54, 4, WIDTH - 60)
    xs = sorted({x for s in panel.series for x in s.severities})
    xlim = span(xs, 0.05)
    for i, s in enumerate(panel.series):
        y0 = top + i * (SUBPLOT + gap)
        last = i == len(panel.series) - 1
        _curve(c, s, Axes(54, y0 + 16, WIDTH - 70, SUBPLOT - 16, xlim, _series_ylim(s)),
               f"severity of {panel.perturbation}" if last else "")
    return c.render(f"Severity curves: {panel.title}")


def _series_ylim(s: Series) -> tuple[float, float]:
    values = [*s.candidate, *(s.baseline or ()), *(lim.value for lim in s.limits)]
    return span(values, 0.12)


def _curve(c: Canvas, s: Series, ax: Axes, xlabel: str) -> None:
    draw_axes(c, ax, xticks=nice_ticks(*ax.xlim, 5), yticks=nice_ticks(*ax.ylim, 4), xlabel=xlabel)
    c.text(ax.left, ax.top - 5, s.measure, size=FONT_SIZE - 0.5, weight="bold", colour=MUTED)
    for lim in s.limits:
        y = ax.clip_y(lim.value)
        c.line(ax.left, y, ax.right, y, LIMIT, 1.2, "5 3")
        c.text(ax.right - 2, y + (-3 if not lim.bad_above else 11), lim.label, size=FONT_SIZE - 2,
               anchor="end", colour=LIMIT)
    if s.baseline is not None:
        pts = [None if v is None else (ax.x(x), ax.y(v)) for x, v in zip(s.severities, s.baseline)]
        c.polyline(pts, PRODUCTION, 1.5, "5 3")
        for p in pts:
            if p is not None:
                c.square(p[0], p[1], 2.6, PRODUCTION)
    pts = [None if v is None else (ax.x(x), ax.y(v)) for x, v in zip(s.severities, s.candidate)]
    c.polyline(pts, CANDIDATE, 2.0)
    for x, p in zip(s.severities, pts):
        if p is not None:
            c.circle(p[0], p[1], 3.2, CANDIDATE)
            if x in s.failing:
                c.circle(p[0], p[1], 7.5, "none", LIMIT, 1.7)


# ---------------------------------------------------------------- model performance

PERF_H = 300.0


def _legend_block(c: Canvas, chart: CurveChart, fmt: str, top: float) -> float:
    """Draw the models' legend (with their summary number) from ``top``; return its height."""
    items = [LegendItem(ROLE_NAME[ln.role] + (f" ({fmt} {num(ln.summary, 3)})" if ln.summary is not None else ""),
                        ROLE_COLOUR[ln.role], "line" if ln.role == "candidate" else "dash") for ln in chart.lines]
    return legend(c, items, 50, top + 4, WIDTH - 56) + 4


def _class_title(c: Canvas, chart: CurveChart, multiclass: bool, y: float) -> float:
    if not multiclass:
        return y
    c.text(50, y + 11, _short(f"class {chart.label} vs rest", 60), size=FONT_SIZE, weight="bold")
    return y + 16


def _lines(c: Canvas, ax: Axes, chart: CurveChart, steps: bool = False, markers: bool = False) -> None:
    for ln in sorted(chart.lines, key=lambda ln: ln.role != "baseline"):  # production below the candidate
        colour = ROLE_COLOUR[ln.role]
        pts: list[tuple[float, float] | None] = []
        for x, y in zip(ln.xs, ln.ys):
            if x is None or y is None:
                pts.append(None)
                continue
            if steps and pts and pts[-1] is not None:
                pts.append((ax.x(x), pts[-1][1]))
            pts.append((ax.x(x), ax.y(y)))
        c.polyline(pts, colour, 2.0 if ln.role == "candidate" else 1.6, None if ln.role == "candidate" else "6 3")
        if markers:
            for p in pts:
                if p is not None:
                    c.circle(p[0], p[1], 3.0, colour)


def roc_chart(chart: CurveChart, salt: str, multiclass: bool = False) -> str:
    """Return the ROC curves of candidate and production (AUC in the legend) over the chance diagonal."""
    c = Canvas(WIDTH, PERF_H + (16 if multiclass else 0), salt)
    top = _class_title(c, chart, multiclass, 0)
    top += _legend_block(c, chart, "AUC", top)
    ax = Axes(50, top + 6, WIDTH - 66, PERF_H - top - 40 + (16 if multiclass else 0), (0, 1), (0, 1))
    draw_axes(c, ax, xticks=[0, 0.2, 0.4, 0.6, 0.8, 1], yticks=[0, 0.2, 0.4, 0.6, 0.8, 1],
              xlabel="false positive rate", ylabel="true positive rate")
    c.line(ax.x(0), ax.y(0), ax.x(1), ax.y(1), AXIS, 1, "2 3")
    _lines(c, ax, chart)
    return c.render(f"ROC curve{' of class ' + str(chart.label) if multiclass else ''}: "
                    + ", ".join(f"{ROLE_NAME[ln.role]} AUC {num(ln.summary)}" for ln in chart.lines))


def pr_chart(chart: CurveChart, salt: str, multiclass: bool = False) -> str:
    """Return precision against recall for both models, with the no-skill line at the prevalence."""
    c = Canvas(WIDTH, PERF_H + (16 if multiclass else 0), salt)
    top = _class_title(c, chart, multiclass, 0)
    top += _legend_block(c, chart, "AP", top)
    ax = Axes(50, top + 6, WIDTH - 66, PERF_H - top - 40 + (16 if multiclass else 0), (0, 1), (0, 1.02))
    draw_axes(c, ax, xticks=[0, 0.2, 0.4, 0.6, 0.8, 1], yticks=[0, 0.2, 0.4, 0.6, 0.8, 1],
              xlabel="recall", ylabel="precision")
    if chart.prevalence is not None:
        y = ax.y(chart.prevalence)
        c.line(ax.left, y, ax.right, y, AXIS, 1, "2 3")
        c.text(ax.right - 2, y - 3, f"no skill {num(chart.prevalence, 3)}", size=FONT_SIZE - 2, anchor="end",
               colour=MUTED)
    _lines(c, ax, chart)
    return c.render(f"Precision-recall curve{' of class ' + str(chart.label) if multiclass else ''}: "
                    + ", ".join(f"{ROLE_NAME[ln.role]} average precision {num(ln.summary)}" for ln in chart.lines))


def calibration_chart(chart: CurveChart, salt: str, multiclass: bool = False) -> str:
    """Return the reliability diagram: fraction positive against mean score per bin, with rows per bin below."""
    hist_h = 44.0
    c = Canvas(WIDTH, PERF_H + hist_h + (16 if multiclass else 0), salt)
    top = _class_title(c, chart, multiclass, 0)
    top += _legend_block(c, chart, "Brier", top)
    ax = Axes(50, top + 6, WIDTH - 66, PERF_H - top - 40 + (16 if multiclass else 0), (0, 1), (0, 1))
    draw_axes(c, ax, xticks=[0, 0.2, 0.4, 0.6, 0.8, 1], yticks=[0, 0.2, 0.4, 0.6, 0.8, 1],
              xlabel="mean predicted probability", ylabel="fraction positive")
    c.line(ax.x(0), ax.y(0), ax.x(1), ax.y(1), AXIS, 1, "2 3")
    c.text(ax.x(0.97), ax.y(0.84), "perfectly calibrated", size=FONT_SIZE - 2, anchor="end", colour=MUTED)
    _lines(c, ax, chart, markers=True)
    if chart.counts:
        hist = Axes(50, ax.bottom + 34, ax.width, hist_h - 14, (0, 1), (0, 1))
        _bin_counts(c, hist, chart)
    return c.render(f"Reliability diagram{' of class ' + str(chart.label) if multiclass else ''}: "
                    + ", ".join(f"{ROLE_NAME[ln.role]} Brier {num(ln.summary)}" for ln in chart.lines))


def _bin_counts(c: Canvas, ax: Axes, chart: CurveChart) -> None:
    """Draw rows per bin (candidate and production side by side in each bin), scaled to the fullest bin."""
    most = max((n for counts in chart.counts for n in counts), default=0) or 1
    k = max(len(counts) for counts in chart.counts)
    width = ax.width / k
    for r, (ln, counts) in enumerate(zip(chart.lines, chart.counts)):
        for i, n in enumerate(counts):
            h = ax.height * n / most
            x = ax.left + i * width + 1 + r * (width - 2) / len(chart.counts)
            c.rect(x, ax.bottom - h, (width - 2) / len(chart.counts) - 1, h, ROLE_COLOUR[ln.role],
                   opacity=0.85 if ln.role == "candidate" else 0.55, title=f"{ROLE_NAME[ln.role]}: {n} rows")
    c.line(ax.left, ax.bottom, ax.right, ax.bottom, AXIS, 1)
    c.text(ax.left - 5, ax.bottom - ax.height / 2, "rows", size=FONT_SIZE - 2, anchor="end", colour=MUTED, middle=True)


def confusion_chart(conf: Confusion, role: str, counts: tuple[tuple[int, ...], ...], salt: str) -> str:
    """Return one model's confusion matrix as shaded cells with counts and row shares."""
    k = len(conf.labels)
    labels = [_short(label, 12) for label in conf.labels]
    left = min(max(max(text_width(label, FONT_SIZE - 1) for label in labels) + 34, 60), 120)
    cell = min((WIDTH - left - 12) / k, 90.0)
    left = max(left, (WIDTH - cell * k) / 2)  # centred when there is room
    top = 38.0
    height = top + cell * k + 42
    c = Canvas(WIDTH, height, salt)
    c.text(left + cell * k / 2, 14, ROLE_NAME[role], anchor="middle", weight="bold", colour=ROLE_COLOUR[role])
    c.text(left + cell * k / 2, 30, "predicted", anchor="middle", size=FONT_SIZE - 1, colour=MUTED)
    c.text(left - 40 if left > 60 else 12, top + cell * k / 2, "actual", anchor="middle", size=FONT_SIZE - 1, colour=MUTED, rotate=-90)
    size = FONT_SIZE if cell >= 40 else FONT_SIZE - 2
    for i in range(k):
        row_total = sum(counts[i]) or 1
        c.text(left - 5, top + (i + 0.5) * cell, labels[i], size=FONT_SIZE - 1, anchor="end", middle=True)
        for j in range(k):
            share = counts[i][j] / row_total
            fill = "#2e7d32" if i == j else "#c62828"
            x, y = left + j * cell, top + i * cell
            c.rect(x, y, cell - 1.5, cell - 1.5, fill, opacity=round(0.08 + 0.8 * share, 3),
                   title=f"actual {conf.labels[i]}, predicted {conf.labels[j]}: {counts[i][j]}")
            ink = "#ffffff" if share > 0.55 else "#1b1f24"
            if cell >= 28:
                c.text(x + cell / 2, y + cell / 2 - (6 if cell >= 40 else 0), _count(counts[i][j]), size=size,
                       anchor="middle", middle=True, colour=ink, weight="bold")
            if cell >= 40:
                c.text(x + cell / 2, y + cell / 2 + 9, f"{100 * share:.1f}%", size=FONT_SIZE - 2.5, anchor="middle",
                       middle=True, colour=ink)
    for j in range(k):
        c.text(left + (j + 0.5) * cell, top + k * cell + 14, labels[j], size=FONT_SIZE - 1, anchor="middle")
    return c.render(f"Confusion matrix, {ROLE_NAME[role]}: rows actual, columns predicted ({', '.join(conf.labels)})")


def _count(n: int) -> str:
    return f"{n / 1000:.1f}k" if n >= 10_000 else str(n)


def residual_chart(res: Residuals, salt: str) -> str:
    """Return residual (actual − predicted) histograms of both models on shared bins, as outlines."""
    items = []
    for role, _, stats in res.hists:
        rmse = stats.get("rmse")
        items.append(LegendItem(f"{ROLE_NAME[role]}" + (f" (RMSE {num(rmse, 3)})" if isinstance(rmse, (int, float)) else ""),
                                ROLE_COLOUR[role], "box" if role == "candidate" else "dash"))
    c = Canvas(WIDTH, PERF_H, salt)
    top = 6 + legend(c, items, 50, 4, WIDTH - 56)
    most = max(max(counts) for _, counts, _ in res.hists) or 1
    ax = Axes(50, top + 6, WIDTH - 66, PERF_H - top - 52, (res.edges[0], res.edges[-1]), (0, most * 1.08))
    draw_axes(c, ax, yticks=nice_ticks(0, most * 1.08, 4), xlabel="residual (actual − predicted)", ylabel="rows")
    if res.edges[0] < 0 < res.edges[-1]:
        c.line(ax.x(0), ax.top, ax.x(0), ax.bottom, "#555555", 1, "2 3")
    for role, counts, _ in res.hists:
        colour = ROLE_COLOUR[role]
        if role == "candidate":
            for i, n in enumerate(counts):
                x0, x1 = ax.x(res.edges[i]), ax.x(res.edges[i + 1])
                c.rect(x0, ax.y(n), x1 - x0 - 0.5, ax.bottom - ax.y(n), colour, opacity=0.55,
                       title=f"candidate {num(res.edges[i])} to {num(res.edges[i + 1])}: {n}")
        else:
            pts: list[tuple[float, float] | None] = [(ax.x(res.edges[0]), ax.bottom)]
            for i, n in enumerate(counts):
                pts += [(ax.x(res.edges[i]), ax.y(n)), (ax.x(res.edges[i + 1]), ax.y(n))]
            pts.append((ax.x(res.edges[-1]), ax.bottom))
            c.polyline(pts, colour, 1.8, "5 3")
    clipped = [f"{ROLE_NAME[r]} {s.get('below', 0)} below, {s.get('above', 0)} above" for r, _, s in res.hists
               if s.get("below") or s.get("above")]
    if clipped:
        c.text(ax.left, PERF_H - 4, _short("outside the axis, in the end bins: " + "; ".join(clipped), 80),
               size=FONT_SIZE - 2.5, colour=MUTED)
    return c.render("Residuals: " + ", ".join(item.label for item in items))


# ---------------------------------------------------------------- drift


def drift_chart(d: DriftChart, salt: str) -> str:
    """Return reference and eval shares per bin as paired horizontal bars (bins in axis order)."""
    bins = d.bins[:40]
    bar = 8.0
    per = 2 * bar + 8
    labels = [_short(label, 24) for label, _, _ in bins]
    left = min(max(max(text_width(label, FONT_SIZE - 1.5) for label in labels) + 12, 60), 160)
    items = [LegendItem("reference", PRODUCTION, "box"), LegendItem("eval", CANDIDATE, "box")]
    top = 6 + legend(Canvas(WIDTH, 1, salt), items, left, 4, WIDTH - left - 8)
    height = top + per * len(bins) + 44
    c = Canvas(WIDTH, height, salt)
    legend(c, items, left, 4, WIDTH - left - 8)
    most = max(max(r, e) for _, r, e in bins) or 1.0
    xmax = min(1.0, most * 1.15)
    ax = Axes(left, top, WIDTH - left - 40, per * len(bins), (0, xmax), (0, 1))
    draw_axes(c, ax, xticks=nice_ticks(0, xmax, 4), yticks=[], xlabel="share of non-null rows")
    for i, ((_, ref, ev), label) in enumerate(zip(bins, labels)):
        y = ax.top + i * per + 4
        c.text(left - 5, y + bar, label, size=FONT_SIZE - 1.5, anchor="end", middle=True)
        for k, (share, colour, who) in enumerate(((ref, PRODUCTION, "reference"), (ev, CANDIDATE, "eval"))):
            w = ax.x(min(share, xmax)) - ax.left
            c.rect(ax.left, y + k * bar, w, bar - 1, colour, title=f"{who} {100 * share:.2f}%")
            if k == 1 or abs(ref - ev) > 0.002:
                c.text(ax.left + w + 3, y + k * bar + bar / 2, f"{100 * share:.1f}%", size=FONT_SIZE - 3,
                       colour=MUTED, middle=True)
    return c.render(f"Drift of {d.column}: reference and eval shares per bin ({d.binning or 'bins'})")
