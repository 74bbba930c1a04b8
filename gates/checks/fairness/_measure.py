"""Measure one disparity over one grouping: eligible groups, both models' values, the groups table."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gates.checks.fairness._config import MetricSpec, Settings, scope_of
from gates.checks.fairness._stats import (
    EvalData,
    GroupPair,
    GroupStats,
    GroupValues,
    is_rate,
)
from gates.groups import combine, disparity, plain
from gates.metrics import BINARY

CONTEXT_RATES = ("selection_rate", "tpr", "fpr")

MSG_TOO_FEW_GROUPS = "{what} is undefined: {why}"
MSG_WHY_FEW = "{count} group(s) eligible for {rate}, {need} needed"
MSG_WHY_RATIO = "the {rate} ratio divides by 0 (its largest group value or the overall value is 0)"
REASON_SIZE = "size {size} < min_group_size {min}"
REASON_SIZE_CLUSTERS = "{size} clusters < min_group_size {min}"
REASON_SUPPORT = "{rate}: {support} {needs} < min_positives {min}"
REASON_UNDEFINED = "{rate} undefined: no {needs}"
REASON_UNDEFINED_OTHER = "{rate} undefined"
REASON_SUPPORT_MACRO = "{rate}: a class has {support} {needs} < min_positives {min}"
REASON_UNDEFINED_MACRO = "{rate} undefined: a class has no {needs}"


@dataclass(frozen=True)
class Measured:
    """One disparity over one grouping (and class view), for both models, with replicates."""

    metric: MetricSpec
    scope: str
    view_label: str
    what: str
    candidate: float
    baseline: float | None
    candidate_reps: np.ndarray
    baseline_reps: np.ndarray | None
    method: str
    details: Mapping[str, Any]
    problem: str | None = None


def measure(stats: GroupStats, metric: MetricSpec, view: Any, view_label: str,
            settings: Settings) -> Measured:
    """Return the disparity ``metric`` over ``stats``' grouping, groups excluded as the rules say.

    ``view`` selects the class of one-vs-rest rates (the positive class for binary tasks, a class
    index, or a list of class indices for a macro average; None for regression); ``view_label``
    names it for ids and messages (empty unless per class).
    """
    pairs = [stats.values(rate, view) for rate in metric.rates]
    sizes = stats.units
    too_small = REASON_SIZE if stats.clusters is None else REASON_SIZE_CLUSTERS
    reasons: list[list[str]] = [[] if n >= settings.min_group_size else
                                [too_small.format(size=int(n), min=settings.min_group_size)]
                                for n in sizes]
    macro = isinstance(view, list)
    includes = [_eligible(rate, pair, sizes >= settings.min_group_size, settings, reasons, macro)
                for rate, pair in zip(metric.rates, pairs)]
    scope = scope_of(stats.index.columns)
    what = f"{metric.name} over {scope}" + (f" (class {view_label})" if view_label else "")
    values: dict[str, tuple[float | None, np.ndarray | None]] = {}
    for role in ("candidate", "baseline"):
        models = [getattr(p, role) for p in pairs]
        if any(m is None for m in models):
            values[role] = (None, None)
            continue
        point = combine([disparity(m.point, np.asarray(m.overall), inc, metric.kind, metric.method)
                         for m, inc in zip(models, includes)], metric.kind, metric.agg)
        reps = combine([disparity(m.reps, m.overall_reps, inc, metric.kind, metric.method)
                        for m, inc in zip(models, includes)], metric.kind, metric.agg)
        values[role] = (float(point), reps)
    cand, cand_reps = values["candidate"]
    base, base_reps = values["baseline"]
    assert cand is not None and cand_reps is not None
    problem = None
    if not math.isfinite(cand) or (base is not None and not math.isfinite(base)):
        problem = MSG_TOO_FEW_GROUPS.format(what=what, why=_why_undefined(metric, includes))
    details = _details(stats, metric, view, view_label, includes, reasons, settings)
    return Measured(metric, scope, view_label, what, cand, base, cand_reps, base_reps,
                    pairs[0].method, details, problem)


def _eligible(rate: str, pair: GroupPair, size_ok: np.ndarray, settings: Settings,
              reasons: list[list[str]], macro: bool) -> np.ndarray:
    """Return which groups a rate's disparity may use, adding each exclusion's reason.

    A macro average's support is its smallest class's, so every group averages the same classes.
    """
    models = [m for m in (pair.candidate, pair.baseline) if m is not None]
    support = np.min([m.support for m in models], axis=0)
    defined = np.all([np.isfinite(m.point) for m in models], axis=0)
    needs = pair.candidate.needs
    floor = settings.min_positives if needs not in ("rows", "clusters") else 0
    enough = support >= max(floor, 1)
    for g in np.flatnonzero(size_ok & ~(defined & enough)):
        if not defined[g]:
            text = REASON_UNDEFINED_OTHER
            if support[g] == 0:
                text = REASON_UNDEFINED_MACRO if macro else REASON_UNDEFINED
            reasons[g].append(text.format(rate=rate, needs=needs))
        else:
            text = REASON_SUPPORT_MACRO if macro else REASON_SUPPORT
            reasons[g].append(text.format(rate=rate, support=int(support[g]), needs=needs,
                                          min=settings.min_positives))
    return size_ok & defined & enough


def _why_undefined(metric: MetricSpec, includes: Sequence[np.ndarray]) -> str:
    need = 2 if metric.method == "between_groups" else 1
    for rate, inc in zip(metric.rates, includes):
        if int(inc.sum()) < need:
            return MSG_WHY_FEW.format(count=int(inc.sum()), rate=rate, need=need)
    return MSG_WHY_RATIO.format(rate=metric.rates[0])


def _details(stats: GroupStats, metric: MetricSpec, view: Any, view_label: str,
             includes: Sequence[np.ndarray], reasons: list[list[str]], settings: Settings) -> dict[str, Any]:
    """Return ``details``: every group, worst first, with size, positives, metrics, exclusion."""
    shown = list(metric.rates)
    if stats.data.task == BINARY:
        shown += [r for r in CONTEXT_RATES if r not in shown]
    values = {r: stats.values(r, view) for r in shown}
    positives = _positives(stats, view)
    groups = []
    for g in range(stats.index.n_groups):
        entry: dict[str, Any] = {"group": stats.index.values(g), "size": int(stats.sizes[g])}
        if stats.clusters is not None:
            entry["clusters"] = int(stats.units[g])
        if positives is not None:
            entry["positives"] = int(positives[g])
        entry["metrics"] = {r: num(values[r].candidate.point[g]) for r in shown}
        if stats.has_baseline:
            entry["baseline_metrics"] = {r: num(_baseline(values[r]).point[g]) for r in shown}
        entry["excluded"] = "; ".join(reasons[g]) if reasons[g] else False
        groups.append(entry)
    order = _worst_first(metric, [values[r] for r in metric.rates], includes, stats.sizes)
    out: dict[str, Any] = {
        "grouping": list(stats.index.columns), "rows": int(stats.sizes.sum()), "method": metric.method,
        "metrics_involved": list(metric.rates),
        "overall": {r: num(values[r].candidate.overall) for r in shown},
        "groups": [groups[g] for g in order],
        "excluded_groups": sum(1 for r in reasons if r),
        "min_group_size": settings.min_group_size, "min_positives": settings.min_positives,
        "bootstrap": settings.n_boot,
    }
    if len(metric.rates) > 1:
        out["agg"] = metric.agg
    if view_label:
        out["class"] = view_label
    return out


def _baseline(pair: GroupPair) -> GroupValues:
    assert pair.baseline is not None
    return pair.baseline


def _positives(stats: GroupStats, view: Any) -> np.ndarray | None:
    """Return each group's positives (binary) or rows of the viewed class (per class), else None."""
    if stats.data.encoded is None or not isinstance(view, (int, np.integer)):
        return None
    return stats.confusions[0][:, int(view), :].sum(axis=-1)


def _worst_first(metric: MetricSpec, pairs: Sequence[GroupPair], includes: Sequence[np.ndarray],
                 sizes: np.ndarray) -> list[int]:
    """Order groups by how far they sit from the overall value (the disparity's drivers first).

    A group's score is its largest deviation over the rates involved: ``|v - overall|`` for a
    difference, ``1 - min(v/o, o/v)`` for a ratio. Excluded groups follow, largest first.
    """
    scores = np.full(sizes.size, -np.inf)
    for pair, inc in zip(pairs, includes):
        v, o = pair.candidate.point, pair.candidate.overall
        with np.errstate(all="ignore"):
            if metric.kind == "difference":
                dev = np.abs(v - o)
            else:
                r = v / o
                dev = 1 - np.where(r > 1, 1 / r, r)
        dev = np.where(inc & np.isfinite(dev), dev, -np.inf)
        scores = np.maximum(scores, dev)
    included = np.zeros(sizes.size, dtype=bool)
    for inc in includes:
        included |= inc
    keep = [g for g in np.argsort(-scores, kind="stable") if included[g]]
    rest = [g for g in np.argsort(-sizes, kind="stable") if not included[g]]
    return [int(g) for g in keep + rest]


def num(value: Any) -> float | None:
    v = float(value)
    return v if math.isfinite(v) else None




def views(data: EvalData, metric: MetricSpec) -> list[tuple[Any, str]]:
    """Return the class views a metric is measured under, each with its label for ids."""
    if data.encoded is None:
        return [(None, "")]
    if data.task == BINARY:
        return [(data.positive, "")]
    enc = data.encoded
    present = [i for i, label in enumerate(enc.labels) if data.classes is None or label in data.classes]
    if metric.average == "per_class" and all(is_rate(r, data.task) for r in metric.rates):
        return [(i, str(plain(enc.labels[i]))) for i in present]
    return [(present, "")]
