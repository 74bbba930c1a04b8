"""Applying a perturbation: the columns it corrupts, one row-keyed copy per severity, its severity curve.

Each severity corrupts one copy of the feature columns (:mod:`gates.perturbations`, drawn per row key from
the stream of gate, perturbation and severity) and measures the candidate, and the baseline when a check
compares with it, on that copy. Every check of a perturbation carries the whole curve.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gates.checks.robustness._measure import Point, Scorer, Side
from gates.checks.robustness._plan import GATE_NAME, PerturbationPlan, Threshold
from gates.context import Role
from gates.metrics import metric_registry
from gates.perturbations import PERTURBATIONS, is_numeric, perturb, select_columns

MSG_UNKNOWN_COLUMN = "'{col}' ({where}) is not a model feature"
MSG_NOT_NUMERIC = "'{col}' ({where}) is not a number column, so {what} cannot apply to it"
MSG_NO_COLUMNS = "no model feature matches columns: {selector} ({where})"


def point(scorer: Scorer, p: PerturbationPlan, columns: list[str], severity: float, with_baseline: bool) -> Point:
    """Corrupt one copy at ``severity`` and measure the candidate (and the baseline) on it."""
    draws = scorer.draws(GATE_NAME, p.name, str(float(severity)))
    copy = perturb(scorer.X, p.name, columns, severity, draws, scorer.stats, p.params)
    metrics = list(dict.fromkeys(t.measure for t in p.thresholds if not t.is_own))
    scope = p.scope(severity)
    roles: list[Role] = ["candidate", "baseline"] if with_baseline else ["candidate"]
    sides = [scorer.measure(r, scorer.predict(r, copy, scope, p.name), metrics, scope) for r in roles]
    return Point(severity, sides[0], sides[1] if with_baseline else None)


def perturbation_columns(scorer: Scorer, p: PerturbationPlan) -> tuple[list[str], str | None]:
    """Return the columns ``p`` corrupts, or a problem message when its list does not fit the model."""
    where = scorer.ctx.policy.where("gates", GATE_NAME, "perturbations", p.name, "columns")
    if isinstance(p.columns, str):
        cols = select_columns(scorer.X, scorer.features, p.columns)
        return cols, None if cols else MSG_NO_COLUMNS.format(selector=p.columns, where=where)
    for col in p.columns:
        if col not in scorer.X.columns:
            return [], MSG_UNKNOWN_COLUMN.format(col=col, where=where)
        if PERTURBATIONS[p.name].column_kind == "numeric" and not is_numeric(scorer.X[col]):
            return [], MSG_NOT_NUMERIC.format(col=col, where=where, what=p.name)
    return list(p.columns), None


def curve_details(p: PerturbationPlan, columns: list[str], severity: float, t: Threshold,
                  points: Sequence[Point], scorer: Scorer) -> dict[str, Any]:
    """Return the details every check of ``p`` carries: its severity curve, one point per severity.

    ``metric`` names the curve's metric: the check's own, or the perturbation's first registry
    metric for flip-rate and score-shift checks (None when it has none).
    """
    metric = t.measure if not t.is_own else next((x.measure for x in p.thresholds if not x.is_own), None)
    clean = scorer.clean_value("candidate", metric) if metric else None
    curve = [_curve_point(pt.severity, pt.candidate, metric, clean) for pt in points]
    if any(pt.baseline is not None and pt.baseline.predicted for pt in points):
        base_clean = scorer.clean_value("baseline", metric) if metric else None
        for entry, pt in zip(curve, points, strict=True):
            if pt.baseline is not None:
                entry["baseline"] = _curve_point(pt.severity, pt.baseline, metric, base_clean)
    out: dict[str, Any] = {"perturbation": p.name, "columns": columns, "severity": severity, "metric": metric,
                           "clean_metric": clean, "rows": scorer.n_rows, "curve": curve}
    out.update({k: v for k, v in p.params.items()})
    return out


def _curve_point(severity: float, side: Side, metric: str | None, clean: float | None) -> dict[str, Any]:
    value = side.values.get(metric) if metric else None
    drop = None
    if metric and value is not None and clean is not None:
        drop = metric_registry()[metric].direction * (clean - value)
    point: dict[str, Any] = {"severity": severity, "metric": value, "drop": drop,
                             "flip_rate": side.values.get("flip_rate"), "score_shift": side.values.get("score_shift")}
    if side.error is not None:
        point["error"] = side.reason
    return point
