"""Compact Mermaid charts for the Markdown report (PR comment, job summary, MR note).

GitHub and GitLab render fenced ``mermaid`` blocks natively, so a reviewer sees the worst
fairness check as bars per group and the worst robustness perturbation as a severity curve
without opening an artifact. ``xychart-beta`` has no legend and no dashed lines, so colours are
fixed by an ``init`` directive and named in one line under each chart.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from gates.reporters import _chartdata as cd
from gates.reporters._format import STATUS_ICON, STATUS_ORDER, STATUS_WORD, num

#: bar, candidate line, production line, limit line
PALETTE = ("#4878a8", "#1f5f99", "#9a9a9a", "#c62828")
MAX_BARS = 16
LABEL_CHARS = 22
HEADING = "\n**Charts**\n"


def mermaid_charts(report: Mapping[str, Any]) -> str:
    """Return Markdown with the model's ROC curve (or residuals), the worst fairness check and the
    worst robustness curve ("" if none of them)."""
    checks = report.get("checks") or []
    parts = [text for text in (_performance_chart(report.get("curves")), _fairness_chart(checks),
                               _robustness_chart(checks)) if text]
    return HEADING + "".join(parts) if parts else ""


def _fence(palette: Sequence[str], body: list[str]) -> str:
    init = '%%{init: {"themeVariables": {"xyChart": {"plotColorPalette": "' + ", ".join(palette) + '"}}}}%%'
    return "\n```mermaid\n" + "\n".join([init, "xychart-beta", *("  " + line for line in body)]) + "\n```\n"


def quoted(text: str, limit: int = LABEL_CHARS) -> str:
    """Return ``text`` as a Mermaid string: no quotes, newlines or comment markers, at most ``limit`` chars."""
    clean = re.sub(r"[\r\n\t]+", " ", re.sub(r"[\"`]", "'", str(text))).replace("%%", "%").strip()
    return f'"{_clip(clean, limit)}"'


def number(x: float) -> str:
    """Return ``x`` as a short plain decimal (Mermaid's grammar has no exponent notation)."""
    text = (f"{x:.4f}" if abs(x) >= 0.01 else f"{x:.6f}").rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _heading(checks: Sequence[Mapping[str, Any]], what: str) -> str:
    ranked = sorted(checks, key=lambda c: STATUS_ORDER.get(c["status"], 9))
    worst = ranked[0]["status"] if ranked else "pass"
    return (f"\n{STATUS_ICON.get(worst, '')} {STATUS_WORD.get(worst, worst)} · {_escape(what)} · "
            + ", ".join(f"`{c['id']}`" for c in ranked[:3]) + (" …" if len(ranked) > 3 else "") + "\n")


# ---------------------------------------------------------------- model performance

#: false positive rates at which the ROC curve is read for the chart (xychart spaces points evenly)
ROC_GRID = tuple(i / 20 for i in range(21))


def _performance_chart(curves: Mapping[str, Any] | None) -> str:
    """Return candidate and production ROC curves (binary: the positive class), else residual histograms."""
    charts = cd.curve_charts(curves, "roc")
    if charts:
        return _roc_chart(charts[0], multiclass=len(charts) > 1)
    res = cd.residuals(curves)
    return _residual_chart(res) if res is not None else ""


def _roc_chart(chart: cd.CurveChart, multiclass: bool) -> str:
    lines, palette, names = [], [], []
    for ln in chart.lines:
        tpr = _read_at(ln.xs, ln.ys, ROC_GRID)
        if tpr is None:
            continue
        lines.append(f"line [{', '.join(number(v) for v in tpr)}]")
        palette.append(PALETTE[1] if ln.role == "candidate" else PALETTE[2])
        names.append(("blue" if ln.role == "candidate" else "grey") + f" = {'candidate' if ln.role == 'candidate' else 'production'}"
                     + (f" (AUC {num(ln.summary, 3)})" if ln.summary is not None else ""))
    if not lines:
        return ""
    lines.append(f"line [{', '.join(number(v) for v in ROC_GRID)}]")
    palette.append(PALETTE[3])
    what = f"class {chart.label} vs rest" if multiclass else "ROC curve"
    body = [f"title {quoted(f'ROC curve · {what}' if multiclass else 'ROC curve', 60)}",
            f"x-axis {quoted('false positive rate')} [{', '.join(quoted(number(x)) for x in ROC_GRID)}]",
            'y-axis "true positive rate" 0 --> 1', *lines]
    heading = "\n📈 Model performance · " + _escape(what) + "\n"
    return heading + _fence(palette, body) + "Lines: " + ", ".join(names) + ", red = chance.\n"


def _read_at(xs: Sequence[float | None], ys: Sequence[float | None], grid: Sequence[float]) -> list[float] | None:
    """Return the curve's height at each grid x (the highest point at that x: ROC curves step up)."""
    pts = [(x, y) for x, y in zip(xs, ys) if x is not None and y is not None]
    if len(pts) < 2:
        return None
    out = []
    for g in grid:
        below = [y for x, y in pts if x <= g + 1e-12]
        out.append(max(below) if below else 0.0)
    return out


def _residual_chart(res: cd.Residuals) -> str:
    edges = res.edges
    step = max(1, len(edges) // 16)  # at most ~16 bars: merge neighbouring bins
    groups = [(i, min(i + step, len(edges) - 1)) for i in range(0, len(edges) - 1, step)]
    labels = [quoted(number((edges[a] + edges[b]) / 2)) for a, b in groups]
    bars, palette, names = [], [], []
    for role, counts, stats in res.hists:
        merged = [sum(counts[a:b]) for a, b in groups]
        kind = "bar" if role == "candidate" else "line"
        bars.append(f"{kind} [{', '.join(str(v) for v in merged)}]")
        palette.append(PALETTE[0] if role == "candidate" else PALETTE[2])
        rmse = stats.get("rmse")
        names.append(("bars = candidate" if role == "candidate" else "grey line = production")
                     + (f" (RMSE {num(rmse, 3)})" if isinstance(rmse, (int, float)) else ""))
    top = max(max(sum(c[a:b]) for a, b in groups) for _, c, _ in res.hists)
    body = ['title "Residuals (actual − predicted)"', f"x-axis {quoted('residual')} [{', '.join(labels)}]",
            f'y-axis "rows" 0 --> {int(top * 1.1) + 1}', *bars]
    return "\n📈 Model performance · residuals\n" + _fence(palette, body) + _escape("; ".join(names)) + ".\n"


# ---------------------------------------------------------------- fairness


def _fairness_chart(checks: Sequence[Mapping[str, Any]]) -> str:
    panels = sorted(cd.fairness_panels(checks), key=_fairness_rank)
    panel = panels[0] if panels else None
    rate = cd.widest_rate(panel) if panel else None
    if panel is None or rate is None:
        return ""
    shown = [g for g in panel.groups if g.values.get(rate) is not None][:MAX_BARS]
    if not shown:
        return ""
    columns = len(panel.grouping.split(", "))
    labels = [quoted(_clip(_short_group(g.label, columns), 18) + f" n={num(g.size)}"
                     + (" (excl.)" if g.excluded else ""), 40) for g in shown]
    values = [float(v) for g in shown if (v := g.values.get(rate)) is not None]
    top = 1.0 if max(values) <= 1.0 and min(values) >= 0 else max(values) * 1.1
    title = f"{rate} by " + panel.grouping.replace(", ", " · ")
    body = [f"title {quoted(title, 60)}",
            f"x-axis [{', '.join(labels)}]",
            f"y-axis {quoted(rate)} {number(min(0.0, min(values)))} --> {number(top)}",
            f"bar [{', '.join(number(v) for v in values)}]"]
    note = _fairness_note(panel, rate, shown)
    return _heading(panel.checks, f"{panel.metric} by {panel.grouping}") + _fence(PALETTE[:1], body) + note


def _fairness_rank(panel: cd.FairnessPanel) -> tuple[int, float]:
    """Worst status first; among equals, the panel whose groups are furthest apart."""
    return STATUS_ORDER.get(panel.status, 9), -max((cd.spread(panel, r) for r in panel.rates), default=0.0)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _short_group(label: str, columns: int) -> str:
    """Return the group's values only, ``F`` or ``F·50_plus`` (the title names the columns)."""
    parts = label.split(", ") if columns > 1 else [label]
    return "·".join(p.split("=", 1)[1] if "=" in p else p for p in parts)


def _fairness_note(panel: cd.FairnessPanel, rate: str, shown: Sequence[cd.GroupRow]) -> str:
    undefined = [g.label for g in panel.groups if g.values.get(rate) is None]
    hidden = len([g for g in panel.groups if g.values.get(rate) is not None]) - len(shown)
    bits = [f"Bars: candidate {rate} per group (largest gap among {', '.join(panel.rates)})."]
    if any(g.excluded for g in shown):
        bits.append("(excl.) = excluded from the disparity.")
    if undefined:
        bits.append(f"Undefined, not drawn: {', '.join(undefined[:5])}{' …' if len(undefined) > 5 else ''}.")
    if hidden > 0:
        bits.append(f"{hidden} more groups in report.json.")
    return " ".join(_escape(b) for b in bits) + "\n"


# ---------------------------------------------------------------- robustness


def _robustness_chart(checks: Sequence[Mapping[str, Any]]) -> str:
    panels = cd.worst_first(cd.robustness_panels(checks))
    if not panels:
        return ""
    panel = panels[0]
    series = _worst_series(panel)
    if series is None:
        return ""
    keep = [i for i in range(len(series.severities)) if series.candidate[i] is not None
            and (series.baseline is None or series.baseline[i] is not None)]
    if len(keep) < 2:
        return ""
    lines = [[series.candidate[i] for i in keep]]
    palette = [PALETTE[1]]
    if series.baseline is not None:
        lines.append([series.baseline[i] for i in keep])
        palette.append(PALETTE[2])
    limit = series.limits[0] if series.limits else None
    if limit is not None:
        lines.append([limit.value] * len(keep))
        palette.append(PALETTE[3])
    flat = [float(v) for line in lines for v in line if v is not None]
    lo, hi = _y_range(flat)
    body = [f"title {quoted(f'{series.measure} under {panel.title}', 60)}",
            f"x-axis {quoted('severity')} [{', '.join(quoted(number(series.severities[i])) for i in keep)}]",
            f"y-axis {quoted(series.measure)} {number(lo)} --> {number(hi)}",
            *(f"line [{', '.join(number(float(v)) for v in line)}]" for line in lines)]  # type: ignore[arg-type]
    legend = "Lines: blue = candidate" + (", grey = production" if series.baseline is not None else "")
    legend += f", red = limit ({_escape(limit.label)})" if limit else ""
    return _heading(panel.checks, panel.title) + _fence(palette, body) + legend + ".\n"


def _worst_series(panel: cd.CurvePanel) -> cd.Series | None:
    """Return the curve of the measure judged by the panel's worst check (else the first curve)."""
    ranked = sorted(panel.checks, key=lambda c: STATUS_ORDER.get(c["status"], 9))
    by_measure = {s.measure: s for s in panel.series}
    for c in ranked:
        name = cd.check_key(c).name
        if name in by_measure:
            return by_measure[name]
    return panel.series[0] if panel.series else None


def _y_range(values: Sequence[float]) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.1 or max(abs(hi) * 0.05, 0.01)
    lo = 0.0 if lo >= 0 and lo - pad < 0 else lo - pad
    return round(lo, 6), round(hi + pad, 6)


def _escape(text: str) -> str:
    """Return report text safe in Markdown prose (GitHub would swallow ``<X>`` as a tag)."""
    return escape(text, quote=False).replace("|", "\\|").replace("\n", " ")
