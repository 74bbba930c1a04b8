"""The fairness gate: per-group metrics, disparities between groups, and intervals on them.

Each configured metric is a disparity (fairlearn's ``demographic_parity_difference``,
``equalized_odds_ratio``, ..., or ``<group metric>_difference`` / ``_ratio``) measured over each
grouping (a sensitive column, or an intersection written as a list). A threshold kind gives one
check: ``min``/``max`` bound the candidate's disparity, ``no_worse_than_baseline`` compares it
with the baseline's on the same rows, paired. Every disparity gets a paired bootstrap interval
(:mod:`gates.groups`), decided like a regression check by :mod:`gates.decisions`, with multiple
testing over the gate's interval checks.

Small groups are honest: a group below ``min_group_size`` (or a rate whose denominator, such as
the group's positives for ``tpr``, is below ``min_positives``) is listed in ``details.groups``
with the reason and left out of the disparity; an undefined rate is ``null``, never 0.
"""
from __future__ import annotations

import dataclasses
import difflib
import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from gates.checks import GateKind, GateSetup, Spec
from gates.decisions import (
    Correction,
    Rule,
    adjusted_levels,
    decide_margin,
    holm_gate,
    holm_order,
    to_status,
)
from gates.groups import (
    EvalData,
    GroupPair,
    GroupStats,
    GroupValues,
    combine,
    disparity,
    eval_data,
    group_index,
    group_metric_names,
    is_rate,
    plain,
)
from gates.intervals import Estimate
from gates.metrics import BINARY, MULTICLASS, REGRESSION
from gates.results import CheckResult, Outcome

GATE_NAME = "fairness"

DEFAULTS: Mapping[str, Any] = {
    "severity": "block", "decision": "non_inferiority", "on_inconclusive": "fail", "confidence": 0.95,
    "bootstrap": 1000, "multiple_testing": "holm", "min_group_size": 30, "min_positives": 10,
}
#: the default allowed worsening of a disparity for ``no_worse_than_baseline``
DEFAULT_MARGIN = 0.01
KINDS = ("min", "max", "no_worse_than_baseline")

#: fairlearn's named disparity metrics: the group rates they compare and how
NAMED: Mapping[str, tuple[tuple[str, ...], str]] = {
    "demographic_parity_difference": (("selection_rate",), "difference"),
    "demographic_parity_ratio": (("selection_rate",), "ratio"),
    "equalized_odds_difference": (("tpr", "fpr"), "difference"),
    "equalized_odds_ratio": (("tpr", "fpr"), "ratio"),
    "equal_opportunity_difference": (("tpr",), "difference"),
    "equal_opportunity_ratio": (("tpr",), "ratio"),
}
#: per-group metrics shown beside the ones a check involves (binary tasks), as in DESIGN's report
CONTEXT_RATES = ("selection_rate", "tpr", "fpr")

MSG_UNKNOWN_METRIC = (
    "unknown fairness metric '{name}' for a {task} task{hint}; use one of fairlearn's "
    "({named}) or <group metric>_difference / <group metric>_ratio, with a group metric among: {choices}"
)
MSG_NO_THRESHOLD = "no threshold: give min, max or no_worse_than_baseline: true"
MSG_MARGIN_ALONE = "margin applies only with no_worse_than_baseline: true"
MSG_AGG = "agg applies only to equalized_odds_difference and equalized_odds_ratio"
MSG_AVERAGE_TASK = "average applies only to multiclass_classification tasks"
MSG_AVERAGE_PER_CLASS = "average: per_class applies to one-vs-rest rates such as tpr or fpr, not to '{metric}'"
MSG_MACRO_SELECTION = (
    "selection_rate averaged over classes is 1/K in every group, so '{name}' would measure nothing; "
    "set average: per_class"
)
MSG_NO_GROUPS = "no groups to compare: set gates.fairness.groups or data.sensitive"
MSG_MISSING_COLUMN = "grouping column '{col}' is not in the eval data{hint}"
MSG_TOO_FEW_GROUPS = "{what} is undefined: {why}"
MSG_WHY_FEW = "{count} group(s) eligible for {rate}, {need} needed"
MSG_WHY_RATIO = "the {rate} ratio divides by 0 (its largest group value or the overall value is 0)"
MSG_NO_BASELINE = "skipped: no baseline to compare with (first model, or the registry alias is unset)"
MSG_NO_BASELINE_REQUIRED = "no baseline to compare with, and a baseline is required (--require-baseline)"
MSG_NO_INTERVAL = "{what} = {value}: the bootstrap interval is undefined (no replicate had enough eligible groups)"
MSG_BOUND_PASS = "{what} = {value} meets {bound} {limit}{ci}"
MSG_BOUND_FAIL = "{what} = {value} breaks {bound} {limit}{ci}"
MSG_BOUND_INCONCLUSIVE = (
    "{what} = {value}: its {conf} interval [{lo}, {hi}] straddles {bound} {limit}; half-width {hw}, "
    "too wide to tell"
)
MSG_NWTB_PASS = "{what} = {value} vs baseline {base}: not worse by more than the margin {margin}{ci}"
MSG_NWTB_FAIL = "{what} = {value} vs baseline {base}: worse than the baseline by more than the margin {margin}{ci}"
MSG_NWTB_INCONCLUSIVE = (
    "{what} = {value} vs baseline {base}: the {conf} interval of the change [{lo}, {hi}] straddles "
    "the margin {margin}; half-width {hw}, so this data cannot show a margin under {hw}"
)
MSG_CI = " with {conf} confidence (interval [{lo}, {hi}])"
MSG_EXCLUDED = "; {n} group(s) left out: {which}"
REASON_SIZE = "size {size} < min_group_size {min}"
REASON_SUPPORT = "{rate}: {support} {needs} < min_positives {min}"
REASON_UNDEFINED = "{rate} undefined: no {needs}"
REASON_UNDEFINED_OTHER = "{rate} undefined"
REASON_SUPPORT_MACRO = "{rate}: a class has {support} {needs} < min_positives {min}"
REASON_UNDEFINED_MACRO = "{rate} undefined: a class has no {needs}"


# ---------------------------------------------------------------- configuration


@dataclass(frozen=True)
class Settings:
    """Gate-wide settings with their defaults applied."""

    severity: str
    rule: Rule
    on_inconclusive: str
    confidence: float
    n_boot: int
    correction: Correction
    min_group_size: int
    min_positives: int


@dataclass(frozen=True)
class MetricSpec:
    """One configured fairness metric: what it compares and its thresholds."""

    name: str
    rates: tuple[str, ...]
    kind: str
    method: str = "between_groups"
    agg: str = "worst_case"
    average: str = "macro"
    minimum: float | None = None
    maximum: float | None = None
    no_worse: bool = False
    margin: float = DEFAULT_MARGIN
    severity: str | None = None

    @property
    def kinds(self) -> list[str]:
        found = {"min": self.minimum is not None, "max": self.maximum is not None,
                 "no_worse_than_baseline": self.no_worse}
        return [k for k in KINDS if found[k]]


def settings_of(spec: Spec) -> Settings:
    """Return the gate's settings, defaults filled in."""
    get = {**DEFAULTS, **spec}
    return Settings(severity=get["severity"], rule=Rule(get["decision"]),
                    on_inconclusive=get["on_inconclusive"], confidence=float(get["confidence"]),
                    n_boot=int(get["bootstrap"]), correction=Correction(get["multiple_testing"]),
                    min_group_size=int(get["min_group_size"]), min_positives=int(get["min_positives"]))


def resolve_metric(name: str, task: str) -> tuple[tuple[str, ...], str] | None:
    """Return (group metrics compared, ``difference`` or ``ratio``) for a metric name, or None."""
    if name in NAMED:
        return NAMED[name] if task != REGRESSION else None
    for kind in ("difference", "ratio"):
        base = name.removesuffix(f"_{kind}")
        if base != name and base in group_metric_names(task):
            return (base,), kind
    return None


def metric_specs(spec: Spec, task: str) -> list[MetricSpec]:
    """Return the configured metrics (names already validated)."""
    out = []
    for name, th in (spec.get("metrics") or {}).items():
        resolved = resolve_metric(name, task)
        assert resolved is not None, name
        out.append(MetricSpec(
            name=name, rates=resolved[0], kind=resolved[1],
            method=th.get("method", "between_groups"), agg=th.get("agg", "worst_case"),
            average=th.get("average", "macro"), minimum=th.get("min"), maximum=th.get("max"),
            no_worse=bool(th.get("no_worse_than_baseline", False)),
            margin=float(th.get("margin", DEFAULT_MARGIN)), severity=th.get("severity")))
    return out


def groupings(spec: Spec, sensitive: Sequence[str]) -> list[tuple[str, ...]]:
    """Return the groupings: ``groups`` entries (a list is an intersection), else each sensitive column."""
    entries = spec.get("groups") or list(sensitive)
    return [tuple(e) if isinstance(e, list) else (e,) for e in entries]


def scope_of(columns: Sequence[str]) -> str:
    """Return a grouping's id scope: its columns joined by ``&``."""
    return "&".join(columns)


def validate(spec: Spec, setup: GateSetup) -> None:
    """Reject what the schema cannot: unknown metric names and thresholds that do not apply."""
    if not spec.get("groups") and not setup.data.sensitive:
        raise setup.error(("fairness",), MSG_NO_GROUPS)
    for name, th in (spec.get("metrics") or {}).items():
        _validate_metric(name, th, setup.task, functools.partial(_error_at, setup, name))


def _error_at(setup: GateSetup, name: str, message: str) -> Exception:
    return setup.error(("fairness", "metrics", name), message)


def _validate_metric(name: str, th: Mapping[str, Any], task: str, error: Callable[[str], Exception]) -> None:
    resolved = resolve_metric(name, task)
    if resolved is None:
        choices = _metric_choices(task)
        close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise error(MSG_UNKNOWN_METRIC.format(name=name, task=task, hint=hint,
                                              named=", ".join(NAMED) if task != REGRESSION else "none for regression",
                                              choices=", ".join(group_metric_names(task))))
    rates, _ = resolved
    if "min" not in th and "max" not in th and not th.get("no_worse_than_baseline"):
        raise error(MSG_NO_THRESHOLD)
    if "margin" in th and not th.get("no_worse_than_baseline"):
        raise error(MSG_MARGIN_ALONE)
    if "agg" in th and len(rates) < 2:
        raise error(MSG_AGG)
    if "average" in th and task != MULTICLASS:
        raise error(MSG_AVERAGE_TASK)
    average = th.get("average", "macro")
    if task == MULTICLASS and average == "per_class" and not all(is_rate(r, task) for r in rates):
        raise error(MSG_AVERAGE_PER_CLASS.format(metric=next(r for r in rates if not is_rate(r, task))))
    if task == MULTICLASS and average == "macro" and "selection_rate" in rates:
        raise error(MSG_MACRO_SELECTION.format(name=name))


def _metric_choices(task: str) -> list[str]:
    named = list(NAMED) if task != REGRESSION else []
    return named + [f"{m}_{k}" for m in group_metric_names(task) for k in ("difference", "ratio")]


def declares_blocking(spec: Spec) -> bool:
    """True when some metric has a threshold whose severity (its own, else the gate's) is block."""
    gate = spec.get("severity", "block")
    for th in (spec.get("metrics") or {}).values():
        has_check = "min" in th or "max" in th or th.get("no_worse_than_baseline")
        if has_check and th.get("severity", gate) == "block":
            return True
    return False


# ---------------------------------------------------------------- measuring one disparity


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
    sizes = stats.sizes
    reasons: list[list[str]] = [[] if n >= settings.min_group_size else
                                [REASON_SIZE.format(size=int(n), min=settings.min_group_size)]
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
    floor = settings.min_positives if needs != "rows" else 0
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
        entry: dict[str, Any] = {"group": stats.index.label(g), "size": int(stats.sizes[g])}
        if positives is not None:
            entry["positives"] = int(positives[g])
        entry["metrics"] = {r: _num(values[r].candidate.point[g]) for r in shown}
        if stats.has_baseline:
            entry["baseline_metrics"] = {r: _num(_baseline(values[r]).point[g]) for r in shown}
        entry["excluded"] = "; ".join(reasons[g]) if reasons[g] else False
        groups.append(entry)
    order = _worst_first(metric, [values[r] for r in metric.rates], includes, stats.sizes)
    out: dict[str, Any] = {
        "grouping": list(stats.index.columns), "method": metric.method,
        "metrics_involved": list(metric.rates),
        "overall": {r: _num(values[r].candidate.overall) for r in shown},
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


def _num(value: Any) -> float | None:
    v = float(value)
    return v if math.isfinite(v) else None


# ---------------------------------------------------------------- from disparities to checks


@dataclass(frozen=True)
class Pending:
    """A check before the family's decisions: its measurement and the estimate it is decided on.

    ``raw`` is what the report shows an interval of (the disparity, or candidate - baseline);
    ``oriented`` is the same estimate turned into "higher is better, must be >= -margin", the
    shape :func:`gates.decisions.decide_margin` takes.
    """

    id: str
    metric: MetricSpec
    kind: str
    measured: Measured | None
    blocking: bool
    raw: Estimate | None = None
    oriented: Estimate | None = None
    margin: float = 0.0
    preset: Outcome | None = None
    message: str = ""
    reason: str = ""


def check_id(metric: str, kind: str, scope: str, view_label: str = "") -> str:
    """Return ``fairness.<metric>.<kind>[<scope>]`` (``[<scope>;class=<c>]`` per class)."""
    suffix = f";class={view_label}" if view_label else ""
    return f"{GATE_NAME}.{metric}.{kind}[{scope}{suffix}]"


def pending_checks(measured: Measured, settings: Settings, *, has_baseline: bool,
                   require_baseline: bool) -> list[Pending]:
    """Return one pending check per threshold kind of ``measured``'s metric."""
    m = measured.metric
    blocking = (m.severity or settings.severity) == "block"
    out = []
    for kind in m.kinds:
        cid = check_id(m.name, kind, measured.scope, measured.view_label)
        base = Pending(cid, m, kind, measured, blocking)
        if kind == "no_worse_than_baseline" and not has_baseline:
            outcome = Outcome.FAIL if require_baseline else Outcome.SKIPPED
            text = MSG_NO_BASELINE_REQUIRED if require_baseline else MSG_NO_BASELINE
            out.append(_replace(base, preset=outcome, message=text, reason="no_baseline"))
        elif measured.problem is not None:
            out.append(_replace(base, preset=Outcome.ERROR, message=measured.problem, reason="undefined"))
        else:
            out.append(_estimated(base, measured, kind))
    return out


def _estimated(p: Pending, measured: Measured, kind: str) -> Pending:
    """Attach the raw and oriented estimates of one threshold kind."""
    m = measured.metric
    if kind == "no_worse_than_baseline":
        assert measured.baseline is not None and measured.baseline_reps is not None
        delta = measured.candidate - measured.baseline
        reps = measured.candidate_reps - measured.baseline_reps
        sign, offset, margin = (-1.0 if m.kind == "difference" else 1.0), 0.0, m.margin
        raw = Estimate(delta, measured.method, reps)
    else:
        bound = m.maximum if kind == "max" else m.minimum
        assert bound is not None
        sign, offset, margin = (-1.0, bound, 0.0) if kind == "max" else (1.0, -bound, 0.0)
        raw = Estimate(measured.candidate, measured.method, measured.candidate_reps)
    assert raw.replicates is not None
    oriented = Estimate(sign * raw.value + offset, raw.method, sign * raw.replicates + offset)
    return _replace(p, raw=raw, oriented=oriented, margin=margin)


def _replace(p: Pending, **changes: Any) -> Pending:
    return dataclasses.replace(p, **changes)


def decide(pending: Sequence[Pending], settings: Settings) -> list[CheckResult]:
    """Decide every check; interval levels are adjusted over the family of estimated checks."""
    family = [i for i, p in enumerate(pending) if p.oriented is not None]
    estimates = [pending[i].oriented for i in family]
    margins = [pending[i].margin for i in family]
    levels = adjusted_levels(estimates, margins, settings.confidence, settings.correction)  # type: ignore[arg-type]
    outcomes = []
    for i, level in zip(family, levels):
        est = pending[i].oriented
        assert est is not None
        outcomes.append(decide_margin(est.value, est.interval(level), pending[i].margin, settings.rule))
    if settings.correction is Correction.HOLM and settings.rule is Rule.NON_INFERIORITY:
        outcomes = holm_gate(outcomes, holm_order(estimates, margins))  # type: ignore[arg-type]
    decided = {i: (o, lv) for i, o, lv in zip(family, outcomes, levels)}
    results = []
    for i, p in enumerate(pending):
        if i in decided:
            results.append(_result(p, *decided[i], settings))
        else:
            results.append(_preset_result(p, settings))
    return results


def _preset_result(p: Pending, settings: Settings) -> CheckResult:
    outcome = p.preset or Outcome.ERROR
    m = p.measured
    return CheckResult(
        id=p.id, gate=GATE_NAME, status=to_status(outcome, p.blocking, settings.on_inconclusive),
        blocking=p.blocking, message=p.message, reason=p.reason,
        observed=None if m is None else _num(m.candidate),
        baseline=None if m is None or m.baseline is None else _num(m.baseline),
        threshold=_threshold(p), details={} if m is None else dict(m.details))


def _result(p: Pending, outcome: Outcome, level: float, settings: Settings) -> CheckResult:
    m = p.measured
    assert m is not None and p.raw is not None
    lo, hi = p.raw.interval(level)
    defined = math.isfinite(lo) and math.isfinite(hi)
    message = _message(p, outcome, level, (lo, hi), settings)
    reason = {Outcome.PASS: "within_threshold", Outcome.FAIL: "threshold_breached",
              Outcome.INCONCLUSIVE: "inconclusive", Outcome.ERROR: "no_interval"}.get(outcome, "")
    return CheckResult(
        id=p.id, gate=GATE_NAME, status=to_status(outcome, p.blocking, settings.on_inconclusive),
        blocking=p.blocking, message=message, reason=reason,
        observed=_num(m.candidate), baseline=None if m.baseline is None else _num(m.baseline),
        delta=_num(m.candidate - m.baseline) if p.kind == "no_worse_than_baseline" and m.baseline is not None else None,
        threshold=_threshold(p), ci=(lo, hi) if defined else None, ci_method=m.method,
        half_width=(hi - lo) / 2 if defined else None, confidence=settings.confidence,
        adjusted_confidence=level, details={**m.details, "decision": settings.rule.value})


def _threshold(p: Pending) -> dict[str, Any]:
    if p.kind == "no_worse_than_baseline":
        return {"no_worse_than_baseline": True, "margin": p.metric.margin}
    bound = p.metric.maximum if p.kind == "max" else p.metric.minimum
    return {p.kind: bound}


def _message(p: Pending, outcome: Outcome, level: float, ci: tuple[float, float], settings: Settings) -> str:
    m = p.measured
    assert m is not None
    lo, hi = ci
    if outcome is Outcome.ERROR:
        return MSG_NO_INTERVAL.format(what=m.what, value=_fmt(m.candidate)) + _excluded_note(m)
    conf = f"{level:.1%}".replace(".0%", "%")
    ci_text = MSG_CI.format(conf=conf, lo=_fmt(lo), hi=_fmt(hi))
    show_ci = ci_text if settings.rule is Rule.NON_INFERIORITY else ""
    fields = {"what": m.what, "value": _fmt(m.candidate), "conf": conf, "lo": _fmt(lo), "hi": _fmt(hi),
              "hw": _fmt((hi - lo) / 2), "ci": show_ci}
    if p.kind == "no_worse_than_baseline":
        template = {Outcome.PASS: MSG_NWTB_PASS, Outcome.FAIL: MSG_NWTB_FAIL}.get(outcome, MSG_NWTB_INCONCLUSIVE)
        text = template.format(base=_fmt(m.baseline), margin=_fmt(p.metric.margin), **fields)
    else:
        template = {Outcome.PASS: MSG_BOUND_PASS, Outcome.FAIL: MSG_BOUND_FAIL}.get(outcome, MSG_BOUND_INCONCLUSIVE)
        limit = p.metric.maximum if p.kind == "max" else p.metric.minimum
        text = template.format(bound=p.kind, limit=_fmt(limit), **fields)
    return text + _excluded_note(m)


def _excluded_note(m: Measured, shown: int = 3) -> str:
    left_out = [g for g in m.details.get("groups", []) if g.get("excluded")]
    if not left_out:
        return ""
    which = ", ".join(f"{_group_text(g['group'])} ({g['excluded']})" for g in left_out[:shown])
    if len(left_out) > shown:
        which += f", and {len(left_out) - shown} more"
    return MSG_EXCLUDED.format(n=len(left_out), which=which)


def _group_text(group: Mapping[str, Any]) -> str:
    return "&".join(f"{k}={v}" for k, v in group.items())


def _fmt(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "undefined"
    return f"{value:.4g}"


# ---------------------------------------------------------------- the gate


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


def assess(frame: pd.DataFrame, data: EvalData, spec: Spec, rng_for: Callable[..., np.random.Generator], *,
           sensitive: Sequence[str] = (), require_baseline: bool = False) -> list[CheckResult]:
    """Return the fairness gate's results for ``data`` grouped by columns of ``frame``.

    ``rng_for(*names)`` returns a seeded generator per name (``EvalContext.rng``); each grouping
    and statistic draws from its own, so results do not depend on which other checks exist.
    """
    settings = settings_of(spec)
    metrics = metric_specs(spec, data.task)
    pending: list[Pending] = []
    for columns in groupings(spec, sensitive):
        scope = scope_of(columns)
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            pending += _missing_column_checks(metrics, scope, missing[0], frame, settings)
            continue
        index = group_index(frame, columns)
        stats = GroupStats(data, index, settings.n_boot, functools.partial(rng_for, GATE_NAME, scope))
        for metric in metrics:
            for view, label in views(data, metric):
                measured = measure(stats, metric, view, label, settings)
                pending += pending_checks(measured, settings, has_baseline=data.baseline is not None,
                                          require_baseline=require_baseline)
    return decide(pending, settings)


def _missing_column_checks(metrics: Sequence[MetricSpec], scope: str, col: str, frame: pd.DataFrame,
                           settings: Settings) -> list[Pending]:
    close = difflib.get_close_matches(col, [str(c) for c in frame.columns], n=1, cutoff=0.6)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    text = MSG_MISSING_COLUMN.format(col=col, hint=hint)
    return [Pending(check_id(m.name, kind, scope), m, kind, None,
                    (m.severity or settings.severity) == "block",
                    preset=Outcome.ERROR, message=text, reason="missing_column")
            for m in metrics for kind in m.kinds]


def run(ctx: Any, spec: Spec) -> list[CheckResult]:
    """Run the fairness gate on an :class:`~gates.context.EvalContext`."""
    policy = ctx.policy
    candidate = ctx.predictions("candidate")
    baseline = ctx.predictions("baseline")
    task = policy.model.task
    data = eval_data(task, ctx.y_true, candidate, baseline, policy.model.positive_label,
                     None if task == REGRESSION else ctx.classes)
    return assess(ctx.frame, data, spec, ctx.rng, sensitive=policy.data.sensitive,
                  require_baseline=bool(getattr(ctx, "require_baseline", False)))


GATE = GateKind(name=GATE_NAME, schema_file="gate_fairness.schema.json", validate=validate,
                     declares_blocking=declares_blocking, run=run)
