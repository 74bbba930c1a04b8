"""What the charts show, read from report dicts: interval rows, fairness panels, robustness curves.

Shared by the HTML report (direct SVG) and the Markdown report (Mermaid), so both draw the same
numbers. Nothing here recomputes a statistic; it only reads the report and places threshold lines
in the units of the plotted quantity.
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gates.identity import CheckId, of_report
from gates.reporters._format import STATUS_ORDER, num

#: threshold kinds whose ``ci`` is the interval of ``delta`` (candidate - baseline)
RELATIVE_KINDS = ("no_worse_than_baseline", "max_drop", "max_relative_drop", "min_gain")


def check_key(check: Mapping[str, Any]) -> CheckId:
    """Return a report check's identity from its fields (:func:`gates.identity.of_report`), never from its id."""
    return of_report(check)


@dataclass(frozen=True)
class Limit:
    """A threshold drawn as a line: values on the ``bad_above`` side of ``value`` fail."""

    value: float
    bad_above: bool
    label: str


@dataclass(frozen=True)
class IntervalRow:
    """One row of the forest plot: a point estimate, its interval and the line it must clear."""

    check_id: str
    status: str
    point: float
    low: float
    high: float
    limit: Limit | None
    is_difference: bool
    half_width: float | None


def worst_status(statuses: Sequence[str]) -> str:
    """Return the status that needs attention first (``fail`` before ``warn`` before ``pass``)."""
    return min(statuses, key=lambda s: STATUS_ORDER.get(s, 9)) if statuses else "pass"


def higher_is_better(check: Mapping[str, Any]) -> bool:
    """Return whether a larger value of the check's plotted quantity is better.

    Robustness baseline comparisons measure "badness" (drop, flip rate, shift) minus production's;
    fairness differences are better small and ratios better large; other metrics follow the
    metric registry (log_loss, rmse... are lower-is-better), defaulting to higher-is-better.
    """
    cid = check_key(check)
    th = check.get("threshold") or {}
    if cid.gate == "robustness":
        return "no_worse_than_baseline" not in th and _registry_direction(cid.name) > 0
    if cid.gate == "fairness":
        return cid.name.endswith("ratio")
    return _registry_direction(cid.name) > 0


def _registry_direction(name: str) -> int:
    from gates.metrics import metric_registry

    metric = metric_registry().get(name)
    return 1 if metric is None else metric.direction


def check_limit(check: Mapping[str, Any]) -> Limit | None:
    """Return the check's threshold in the units of its ``delta`` (relative kinds) or ``observed``."""
    th = check.get("threshold") or {}
    higher = higher_is_better(check)
    for kind in RELATIVE_KINDS:
        if kind not in th:
            continue
        margin = _margin(kind, th, check.get("baseline"))
        if margin is None:
            return None
        signed = -margin if (higher != (kind == "min_gain")) else margin
        word = "gain" if kind == "min_gain" else "margin"
        return Limit(signed, bad_above=not higher, label=f"{word} {num(signed)}")
    for kind, bad_above in (("min", False), ("max", True)):
        if isinstance(th.get(kind), (int, float)) and not isinstance(th.get(kind), bool):
            return Limit(float(th[kind]), bad_above=bad_above, label=f"{kind} {num(th[kind])}")
    return None


def _margin(kind: str, th: Mapping[str, Any], baseline: Any) -> float | None:
    if kind == "no_worse_than_baseline":
        value = th.get("margin", 0.0)
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0
    if kind == "max_relative_drop":
        return None if baseline is None else float(th[kind]) * abs(float(baseline))
    return float(th[kind])


def is_relative(check: Mapping[str, Any]) -> bool:
    """True when the check compares with the baseline (its ``ci`` is an interval of ``delta``)."""
    return any(k in (check.get("threshold") or {}) for k in RELATIVE_KINDS)


def interval_rows(checks: Sequence[Mapping[str, Any]]) -> list[IntervalRow]:
    """Return a forest-plot row for every check with a finite two-sided interval, in report order."""
    rows = []
    for c in checks:
        ci = c.get("ci")
        relative = is_relative(c) and c.get("delta") is not None
        point = c.get("delta") if relative else c.get("observed")
        if not ci or ci[0] is None or ci[1] is None or point is None:
            continue
        rows.append(IntervalRow(c["id"], c["status"], float(point), float(ci[0]), float(ci[1]),
                                check_limit(c), relative, c.get("half_width")))
    return rows


# ---------------------------------------------------------------- fairness


@dataclass(frozen=True)
class GroupRow:
    """One group of a fairness check: its label, size and rates (None = undefined)."""

    label: str
    size: int | None
    positives: int | None
    values: Mapping[str, float | None]
    baseline: Mapping[str, float | None] | None
    excluded: str | None


@dataclass(frozen=True)
class _Panel:
    """Checks drawn together in one chart: the panel's status is the worst of theirs."""

    checks: tuple[Mapping[str, Any], ...]

    @property
    def status(self) -> str:
        return worst_status([c["status"] for c in self.checks])

    @property
    def check_ids(self) -> tuple[str, ...]:
        return tuple(c["id"] for c in self.checks)


@dataclass(frozen=True)
class FairnessPanel(_Panel):
    """Every fairness check on one (metric, grouping): they share their groups and one chart."""

    metric: str
    grouping: str
    rates: tuple[str, ...]
    groups: tuple[GroupRow, ...]
    overall: Mapping[str, float | None]


def group_label(group: Any) -> str:
    """Return ``sex=F`` / ``race=b, sex=F`` for a group mapping (text as is otherwise)."""
    if isinstance(group, Mapping):
        return ", ".join(f"{k}={v}" for k, v in group.items())
    return str(group)


def fairness_panels(checks: Sequence[Mapping[str, Any]]) -> list[FairnessPanel]:
    """Return one panel per (metric, scope) of the fairness checks that list their groups."""
    found: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for c in checks:
        cid = check_key(c)
        if cid.gate == "fairness" and (c.get("details") or {}).get("groups"):
            found.setdefault((cid.name, cid.scope), []).append(c)
    return [_fairness_panel(name, scope, members) for (name, scope), members in found.items()]


def _fairness_panel(name: str, scope: str, members: list[Mapping[str, Any]]) -> FairnessPanel:
    details = members[0]["details"]
    raw = details["groups"]
    rates = tuple(details.get("metrics_involved") or sorted({k for g in raw for k in (g.get("metrics") or {})}))
    groups = tuple(
        GroupRow(group_label(g.get("group")), g.get("size"), g.get("positives"),
                 {r: (g.get("metrics") or {}).get(r) for r in rates},
                 {r: g["baseline_metrics"].get(r) for r in rates} if g.get("baseline_metrics") else None,
                 str(g["excluded"]) if g.get("excluded") else None)
        for g in raw)
    grouping = ", ".join(details.get("grouping") or []) or scope
    return FairnessPanel(tuple(members), name, grouping, rates, groups, details.get("overall") or {})


def spread(panel: FairnessPanel, rate: str) -> float:
    """Return max - min of ``rate`` over the panel's included groups with a defined value."""
    values = [g.values[rate] for g in panel.groups if g.excluded is None and g.values.get(rate) is not None]
    return max(values) - min(values) if len(values) > 1 else 0.0  # type: ignore[type-var,operator]


def widest_rate(panel: FairnessPanel) -> str | None:
    """Return the rate with the largest gap between groups (the one driving the disparity)."""
    return max(panel.rates, key=lambda r: spread(panel, r), default=None)


# ---------------------------------------------------------------- robustness


@dataclass(frozen=True)
class Series:
    """One measure along the severities: the candidate's values, production's, and the limits."""

    measure: str
    severities: tuple[float, ...]
    candidate: tuple[float | None, ...]
    baseline: tuple[float | None, ...] | None
    limits: tuple[Limit, ...]
    failing: tuple[float, ...]


@dataclass(frozen=True)
class CurvePanel(_Panel):
    """Every robustness check of one perturbation, with its severity curves."""

    perturbation: str
    columns: tuple[str, ...]
    series: tuple[Series, ...]

    @property
    def title(self) -> str:
        cols = ", ".join(self.columns)
        return f"{self.perturbation} on {cols}" if cols else self.perturbation


#: per-point measures a robustness curve may carry, besides the named metric
OWN_MEASURES = ("flip_rate", "score_shift")
FAILING = frozenset({"fail", "inconclusive", "error", "warn", "waived"})


def robustness_panels(checks: Sequence[Mapping[str, Any]]) -> list[CurvePanel]:
    """Return one panel per perturbation (name and columns) of the checks carrying a curve."""
    found: dict[tuple[str, tuple[str, ...]], list[Mapping[str, Any]]] = {}
    for c in checks:
        details = c.get("details") or {}
        if check_key(c).gate == "robustness" and details.get("curve"):
            key = (str(details.get("perturbation") or check_key(c).scope), _columns(details))
            found.setdefault(key, []).append(c)
    return [CurvePanel(tuple(m), name, cols, _series(m)) for (name, cols), m in found.items()]


def _columns(details: Mapping[str, Any]) -> tuple[str, ...]:
    cols = details.get("columns") or ()
    return (cols,) if isinstance(cols, str) else tuple(str(c) for c in cols)


def _series(members: Sequence[Mapping[str, Any]]) -> tuple[Series, ...]:
    details = members[0]["details"]
    curve = sorted(details["curve"], key=lambda p: p.get("severity") or 0.0)
    metric = details.get("metric")
    out: list[Series] = []
    judged = {check_key(c).name for c in members}
    for measure in ([metric] if metric else []) + list(OWN_MEASURES):
        key = "metric" if measure == metric else measure
        cand = [p.get(key) for p in curve]
        if all(v is None for v in cand) or (measure == "score_shift" and not _wanted_shift(judged, out)):
            continue
        base = [(p.get("baseline") or {}).get(key) for p in curve]
        has_base = any(v is not None for v in base)
        sev = [float(p.get("severity") or 0.0) for p in curve]
        clean = _clean_point(measure == metric, details, curve)
        if clean is not None:
            sev, cand, base = [0.0] + sev, [clean[0]] + cand, [clean[1]] + base
        out.append(Series(measure, tuple(sev), tuple(cand), tuple(base) if has_base else None,
                          _curve_limits(members, measure, details.get("clean_metric")),
                          _failing(members, measure)))
    return tuple(out)


def _wanted_shift(judged: set[str], drawn: Sequence[Series]) -> bool:
    """Draw the score shift when a check judges it or nothing else was drawn (regression tasks)."""
    return "score_shift" in judged or not any(s.measure == "flip_rate" for s in drawn)


def _clean_point(is_metric: bool, details: Mapping[str, Any],
                 curve: Sequence[Mapping[str, Any]]) -> tuple[float | None, float | None] | None:
    """Return (candidate, production) at severity 0: the clean metric, or 0 flips/shift.

    Production's clean metric is read back from any curve point as ``value + direction * drop``
    (``drop`` is reported as ``direction * (clean - value)``).
    """
    if any((p.get("severity") or 0.0) == 0 for p in curve):
        return None
    if not is_metric:
        return 0.0, 0.0
    if details.get("clean_metric") is None:
        return None
    base_clean = None
    for p in curve:
        b = p.get("baseline") or {}
        if b.get("metric") is not None and b.get("drop") is not None:
            base_clean = b["metric"] + _registry_direction(str(details.get("metric"))) * b["drop"]
            break
    return float(details["clean_metric"]), base_clean


def _curve_limits(members: Sequence[Mapping[str, Any]], measure: str, clean: float | None) -> tuple[Limit, ...]:
    """Return the distinct absolute limits on ``measure`` set by the perturbation's checks."""
    limits: dict[float, Limit] = {}
    for c in members:
        cid, th = check_key(c), c.get("threshold") or {}
        if cid.name != measure or "no_worse_than_baseline" in th:
            continue
        lim = _absolute_limit(th, measure, clean)
        if lim is not None:
            limits.setdefault(round(lim.value, 12), lim)
    return tuple(limits.values())


def _absolute_limit(th: Mapping[str, Any], measure: str, clean: float | None) -> Limit | None:
    if "max" in th:
        return Limit(float(th["max"]), True, f"max {num(th['max'])}")
    if "min" in th:
        return Limit(float(th["min"]), False, f"min {num(th['min'])}")
    if clean is None:
        return None
    direction = _registry_direction(measure)
    if "max_drop" in th:
        drop = float(th["max_drop"])
        label = f"max_drop {num(drop)}"
    elif "max_relative_drop" in th:
        drop = float(th["max_relative_drop"]) * abs(clean)
        label = f"max_relative_drop {num(th['max_relative_drop'])}"
    else:
        return None
    return Limit(clean - direction * drop, bad_above=direction < 0, label=label)


def _failing(members: Sequence[Mapping[str, Any]], measure: str) -> tuple[float, ...]:
    """Return the severities at which a check on ``measure`` did not pass."""
    out = {float((c.get("details") or {}).get("severity") or 0.0) for c in members
           if check_key(c).name == measure and c["status"] in FAILING}
    return tuple(sorted(out))


def worst_first(panels: Sequence[Any]) -> list[Any]:
    """Return panels ordered by their worst check's status (stable within a status)."""
    return sorted(panels, key=lambda p: STATUS_ORDER.get(p.status, 9))


def crossing(row: IntervalRow) -> float:
    """Return how far the interval's failing end lies past its limit, in interval widths.

    Positive: the interval crosses the line (by that fraction of its width); negative: it clears
    it, and the closer to 0 the nearer it comes. Dividing by the width makes a roc_auc difference
    and a disparity ratio comparable. A row without a limit (or with a non-finite end) has
    nothing to approach and ranks last (``-inf``).
    """
    if row.limit is None:
        return -math.inf
    end = row.high if row.limit.bad_above else row.low
    past = end - row.limit.value if row.limit.bad_above else row.limit.value - end
    width = row.high - row.low
    scale = width if width > 0 else (abs(row.limit.value) or 1.0)
    value = past / scale
    return value if math.isfinite(value) else -math.inf


def worst_intervals_first(rows: Sequence[IntervalRow]) -> list[IntervalRow]:
    """Return interval rows by status (fail first), then by how far they cross or near their limit.

    Ties keep report order (a stable sort), so the same report always draws the same rows.
    """
    return sorted(rows, key=lambda r: (STATUS_ORDER.get(r.status, 9), -crossing(r)))


# ---------------------------------------------------------------- model performance (report["curves"])

ROLES = ("candidate", "baseline")


@dataclass(frozen=True)
class Line:
    """One model's curve: x and y values (None = undefined) and the number that sums it up."""

    role: str
    xs: tuple[float | None, ...]
    ys: tuple[float | None, ...]
    summary: float | None


@dataclass(frozen=True)
class CurveChart:
    """ROC, precision-recall or reliability curves of one class, candidate and production together."""

    kind: str  # roc | pr | calibration
    label: Any  # the class the curves are one-vs-rest for
    lines: tuple[Line, ...]
    counts: tuple[tuple[int, ...], ...] = ()  # calibration: rows per bin, per line
    prevalence: float | None = None  # pr: the no-skill line


@dataclass(frozen=True)
class Confusion:
    labels: tuple[str, ...]
    matrices: tuple[tuple[str, tuple[tuple[int, ...], ...]], ...]  # (role, counts[true][predicted])


@dataclass(frozen=True)
class Residuals:
    edges: tuple[float, ...]
    hists: tuple[tuple[str, tuple[int, ...], Mapping[str, Any]], ...]  # (role, counts, stats)


def _line(role: str, raw: Any, x: str, y: str, summary: str) -> Line | None:
    if not isinstance(raw, Mapping) or not isinstance(raw.get(x), list) or not isinstance(raw.get(y), list):
        return None
    xs, ys = tuple(_maybe(v) for v in raw[x]), tuple(_maybe(v) for v in raw[y])
    if len(xs) != len(ys) or len(xs) < 2:
        return None
    return Line(role, xs, ys, _maybe(raw.get(summary)))


def _maybe(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v) if math.isfinite(v) else None


def curve_charts(curves: Mapping[str, Any] | None, kind: str) -> list[CurveChart]:
    """Return one chart per class of ``curves[kind]`` (roc, pr or calibration) that has a line."""
    out = []
    entries = (curves or {}).get(kind)
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, Mapping):
            continue
        lines, counts = [], []
        prevalence = None
        for role in ROLES:
            raw = entry.get(role)
            if kind == "roc":
                line = _line(role, raw, "fpr", "tpr", "auc")
            elif kind == "pr":
                line = _line(role, raw, "recall", "precision", "average_precision")
                prevalence = prevalence if prevalence is not None else _maybe((raw or {}).get("prevalence"))
            else:
                line, n = _reliability(role, raw)
                counts.append(n)
            if line is not None:
                lines.append(line)
            elif kind == "calibration" and counts:
                counts.pop()
        if lines:
            out.append(CurveChart(kind, entry.get("class"), tuple(lines), tuple(counts), prevalence))
    return out


def _reliability(role: str, raw: Any) -> tuple[Line | None, tuple[int, ...]]:
    """Return the reliability line (mean score, fraction positive per non-empty bin) and the bin counts."""
    if not isinstance(raw, Mapping):
        return None, ()
    count, total, pos = raw.get("count"), raw.get("score_sum"), raw.get("positives")
    if not (isinstance(count, list) and isinstance(total, list) and isinstance(pos, list)
            and len(count) == len(total) == len(pos)):
        return None, ()
    xs, ys = [], []
    for n, s, p in zip(count, total, pos):
        n, s, p = _maybe(n), _maybe(s), _maybe(p)
        if n and s is not None and p is not None and n > 0:
            xs.append(s / n)
            ys.append(p / n)
    if not xs:
        return None, ()
    return Line(role, tuple(xs), tuple(ys), _maybe(raw.get("brier"))), tuple(int(_maybe(n) or 0) for n in count)


def confusion(curves: Mapping[str, Any] | None) -> Confusion | None:
    raw = (curves or {}).get("confusion")
    if not isinstance(raw, Mapping) or not isinstance(raw.get("labels"), list):
        return None
    labels = tuple(str(x) for x in raw["labels"])
    k = len(labels)
    mats = []
    for role in ROLES:
        m = raw.get(role)
        if (isinstance(m, list) and len(m) == k
                and all(isinstance(r, list) and len(r) == k and all(_maybe(v) is not None for v in r) for r in m)):
            mats.append((role, tuple(tuple(int(v) for v in r) for r in m)))
    return Confusion(labels, tuple(mats)) if mats and k else None


def residuals(curves: Mapping[str, Any] | None) -> Residuals | None:
    raw = (curves or {}).get("residuals")
    if not isinstance(raw, Mapping) or not isinstance(raw.get("edges"), list):
        return None
    edges = tuple(v for v in (_maybe(e) for e in raw["edges"]) if v is not None)
    hists = []
    for role in ROLES:
        h = raw.get(role)
        counts = h.get("counts") if isinstance(h, Mapping) else None
        if isinstance(counts, list) and len(counts) == len(edges) - 1 and all(_maybe(v) is not None for v in counts):
            hists.append((role, tuple(int(v) for v in counts), h))
    return Residuals(edges, tuple(hists)) if hists and len(edges) > 1 else None


# ---------------------------------------------------------------- drift

#: passing drift checks drawn besides every one that does not pass (the nearest their limit)
DRIFT_PASSING = 3


@dataclass(frozen=True)
class DriftChart:
    """A drift check's column: reference and eval share per bin, in bin order."""

    check: Mapping[str, Any]
    column: str
    bins: tuple[tuple[str, float, float], ...]  # (label, reference share, eval share)
    binning: str

    @property
    def status(self) -> str:
        return str(self.check["status"])


def drift_charts(checks: Sequence[Mapping[str, Any]], curves: Mapping[str, Any] | None,
                 passing: int = DRIFT_PASSING) -> list[DriftChart]:
    """Return a chart for every drift check that does not pass and the ``passing`` nearest their limit.

    Bins come from the check's ``details.bins`` (psi, js, chi2) or the run's ``curves.drift``
    (methods that keep none); a check with neither has no chart.
    """
    found = []
    for c in checks:
        cid = check_key(c)
        if cid.gate != "data" or cid.name != "drift" or not cid.scope:
            continue
        column = cid.scope
        details = c.get("details") or {}
        stored = ((curves or {}).get("drift") or {}).get(column) if isinstance((curves or {}).get("drift"), Mapping) else None
        raw = details.get("bins") or (stored or {}).get("bins")
        bins = _bins(raw)
        if bins:
            found.append(DriftChart(c, column, bins, str(details.get("binning") or (stored or {}).get("binning") or "")))
    attention = [d for d in found if d.status != "pass"]
    calm = sorted((d for d in found if d.status == "pass"), key=lambda d: -_closeness(d.check))[:passing]
    return sorted(attention, key=lambda d: STATUS_ORDER.get(d.status, 9)) + calm


def _bins(raw: Any) -> tuple[tuple[str, float, float], ...]:
    if not isinstance(raw, list):
        return ()
    rows = [(str(b.get("bin")), float(b["reference"]), float(b["eval"])) for b in raw
            if isinstance(b, Mapping) and _maybe(b.get("reference")) is not None and _maybe(b.get("eval")) is not None]
    lower = [_lower_bound(label) for label, _, _ in rows]
    if rows and all(v is not None for v in lower):
        return tuple(r for _, r in sorted(zip(lower, rows), key=lambda t: t[0]))  # numeric bins in axis order
    return tuple(sorted(rows, key=lambda r: -r[1]))  # categories by their reference share


def _lower_bound(label: str) -> float | None:
    m = re.match(r"^\[\s*([^,\s]+)\s*,", label)
    if m is None:
        return None
    try:
        return float(m[1])
    except ValueError:
        return None


def _closeness(check: Mapping[str, Any]) -> float:
    """Return observed / limit of a ``max`` drift check (1 = at the limit); 0 when unknown."""
    limit = (check.get("threshold") or {}).get("max")
    observed = check.get("observed")
    if not isinstance(limit, (int, float)) or not isinstance(observed, (int, float)) or not limit:
        return 0.0
    return float(observed) / float(limit)
