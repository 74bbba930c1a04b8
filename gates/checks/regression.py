"""The regression gate: is the candidate at least as good as the baseline, on the same rows?

One check per (metric, threshold kind, slice): ``min``/``max`` bound the candidate's point value;
``max_drop``, ``max_relative_drop`` and ``min_gain`` bound the paired difference
``d = candidate - baseline`` (oriented by the metric's direction, so a drop always means "got
worse"), decided by ``point`` or ``non_inferiority`` on the difference's interval (DESIGN section 5).
The baseline-relative interval checks form one family for ``multiple_testing``. Estimates come from
:mod:`gates.estimates`, decisions from :mod:`gates.decisions`.
"""
from __future__ import annotations

import difflib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gates.checks import GateKind, GateSetup, Spec, declares_blocking_default
from gates.context import EvalContext, Predictions
from gates.decisions import (
    Correction,
    Rule,
    adjusted_levels,
    decide_bounds,
    decide_margin,
    holm_gate,
    holm_order,
    to_status,
)
from gates.estimates import SliceEstimate, Slicing, paired_estimates, slice_by, whole
from gates.intervals import Estimate, negate
from gates.metrics import BINARY, MULTICLASS, Metric, metric_names, metric_registry
from gates.results import CheckResult, Outcome

GATE_NAME = "regression"
ABSOLUTE = ("min", "max")
RELATIVE = ("max_drop", "max_relative_drop", "min_gain")
DEFAULTS: Mapping[str, Any] = {
    "decision": "non_inferiority", "on_inconclusive": "fail", "confidence": 0.95, "bootstrap": 1000,
    "multiple_testing": "holm", "min_slice_size": 200, "severity": "block",
}

REASON_PASS = "within_threshold"
REASON_FAIL = "threshold_breached"
REASON_INCONCLUSIVE = "inconclusive"
REASON_NO_BASELINE = "no_baseline"
REASON_BASELINE_REQUIRED = "baseline_required"
REASON_SLICE_TOO_SMALL = "slice_too_small"
REASON_MISSING_SCORES = "missing_scores"
REASON_MISSING_COLUMN = "missing_column"
REASON_UNDEFINED = "undefined"
REASON_BAD_DATA = "bad_data"

MSG_UNKNOWN_METRIC = "unknown metric '{name}'{hint}; known metrics for {task}: {known}"
MSG_WRONG_TASK = "metric '{name}' is not defined for {task}{hint}; metrics for {task}: {known}"
MSG_CHURN_KINDS = "churn takes only 'max' (the largest share of rows whose label may differ), got '{kind}'"
MSG_MIN_ABOVE_MAX = "min ({lo}) is above max ({hi})"
MSG_NO_BASELINE = "no baseline model, so there is nothing to compare with; check skipped"
MSG_BASELINE_REQUIRED = "no baseline model, and --require-baseline is set"
MSG_SLICE_TOO_SMALL = "slice has {rows} rows, fewer than min_slice_size {min}; check skipped"
MSG_NO_SCORES = "{metric} needs scores but the {role} gives none (a model without predict_proba, or no scores column)"
MSG_SCORE_SHAPE = "{metric} needs {expected} from the {role}, got an array of shape {shape}"
MSG_NOT_PROBA = "{metric} needs probabilities in [0, 1] from the {role}, got values in [{lo:.4g}, {hi:.4g}]"
MSG_SCORES_MISSING_VALUES = "the {role}'s scores contain missing values"
MSG_MISSING_COLUMN = "slice column '{column}' is not in the eval data"
MSG_UNDEFINED = "{metric} is undefined on these rows (for example a single class, or too few positives)"
MSG_BAD_DATA = "{metric} could not be computed: {problem}"
MSG_BOUND_PASS = "{metric} {observed} is within the {kind} {value} (interval {ci})"
MSG_BOUND_FAIL = "{metric} {observed} is {side} the {kind} {value} (interval {ci})"
MSG_MARGIN_PASS = "interval {ci} of the change lies {good} the limit {limit} ({threshold})"
MSG_MARGIN_FAIL = "interval {ci} of the change lies entirely {bad} the limit {limit} ({threshold}): worse than allowed"
MSG_MARGIN_INCONCLUSIVE = "interval {ci} straddles the limit {limit} ({threshold}); half-width {hw} {cmp} margin {margin}"
MSG_TOO_FEW_ROWS = ": too few rows to demonstrate a {margin} margin"
MSG_POINT_PASS = "change {delta} is {good} the limit {limit} ({threshold}; point decision, interval {ci})"
MSG_POINT_FAIL = "change {delta} is {bad} the limit {limit} ({threshold}; point decision, interval {ci})"
MSG_HOLM_STOPPED = "; would pass at its own level, but Holm's step-down stopped at a check with a smaller p-value"


# --------------------------------------------------------------------------- settings and plan


@dataclass(frozen=True)
class Settings:
    """The gate-level options of a ``gates.regression`` section, defaults filled in."""

    rule: Rule
    on_inconclusive: str
    confidence: float
    n_boot: int
    correction: Correction
    min_slice_size: int
    severity: str
    slicings: tuple[tuple[str, ...], ...]

    @classmethod
    def of(cls, spec: Spec) -> Settings:
        get = lambda key: spec.get(key, DEFAULTS[key])  # noqa: E731
        slicings = tuple(tuple(s) if isinstance(s, list) else (s,) for s in spec.get("slices", ()))
        return cls(Rule(get("decision")), get("on_inconclusive"), float(get("confidence")),
                   int(get("bootstrap")), Correction(get("multiple_testing")), int(get("min_slice_size")),
                   get("severity"), slicings)


@dataclass(frozen=True)
class Check:
    """One planned check: a metric, a threshold kind and value, a slice."""

    metric: Metric
    kind: str
    value: float
    is_blocking: bool
    slicing: int
    slice: int
    id: str
    scope: Mapping[str, Any]

    @property
    def is_relative(self) -> bool:
        return self.kind in RELATIVE or self.metric.needs_baseline

    def threshold(self) -> dict[str, float]:
        return {self.kind: self.value}


# --------------------------------------------------------------------------- validate


def validate(spec: Spec, setup: GateSetup) -> None:
    """Reject unknown metrics, metrics not defined for the task, and impossible thresholds."""
    registry = metric_registry()
    known = metric_names(setup.task)
    for name, thresholds in spec.get("metrics", {}).items():
        path = (GATE_NAME, "metrics", name)
        if name not in registry:
            hint = _did_you_mean(name, known)
            raise setup.error(path, MSG_UNKNOWN_METRIC.format(name=name, hint=hint, task=setup.task,
                                                              known=", ".join(known)))
        if setup.task not in registry[name].tasks:
            variants = [k for k in known if k.startswith(name + "_")]
            hint = f" (did you mean {' or '.join(repr(v) for v in variants)}?)" if variants else ""
            raise setup.error(path, MSG_WRONG_TASK.format(name=name, task=setup.task, hint=hint,
                                                          known=", ".join(known)))
        _validate_thresholds(name, thresholds, path, setup)


def _validate_thresholds(name: str, thresholds: Mapping[str, Any], path: tuple[str, ...], setup: GateSetup) -> None:
    if name == "churn":
        for kind in thresholds:
            if kind not in ("max", "severity"):
                raise setup.error((*path, kind), MSG_CHURN_KINDS.format(kind=kind))
    lo, hi = thresholds.get("min"), thresholds.get("max")
    if lo is not None and hi is not None and lo > hi:
        raise setup.error(path, MSG_MIN_ABOVE_MAX.format(lo=lo, hi=hi))


def _did_you_mean(word: str, options: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def declares_blocking(spec: Spec) -> bool:
    return declares_blocking_default(spec, ("metrics",))


# --------------------------------------------------------------------------- run


def run(ctx: EvalContext, spec: Spec) -> list[CheckResult]:
    """Return one result per (metric, threshold kind, slice), in config order."""
    settings = Settings.of(spec)
    candidate = ctx.predictions("candidate")
    assert candidate is not None
    baseline = ctx.predictions("baseline")
    slicings, missing = _slicings(ctx, settings)
    checks = _plan(spec, settings, slicings, missing)
    problems = _problems(ctx, checks, candidate, baseline)
    estimates = _estimate(ctx, settings, slicings, checks, problems, candidate, baseline)
    return _decide(ctx, settings, slicings, checks, problems, estimates, baseline is not None)


def _slicings(ctx: EvalContext, settings: Settings) -> tuple[list[Slicing | None], dict[int, str]]:
    """Return the slicings (index 0: all rows; None where a column is missing) and missing columns."""
    out: list[Slicing | None] = [whole(ctx.n_rows)]
    missing: dict[int, str] = {}
    for i, cols in enumerate(settings.slicings, start=1):
        absent = [c for c in cols if c not in ctx.frame.columns]
        if absent:
            missing[i] = absent[0]
            out.append(None)
        else:
            out.append(slice_by(ctx.frame, cols))
    return out, missing


def _plan(spec: Spec, settings: Settings, slicings: list[Slicing | None], missing: dict[int, str]) -> list[Check]:
    registry = metric_registry()
    checks = []
    for name, thresholds in spec["metrics"].items():
        metric = registry[name]
        blocking = thresholds.get("severity", settings.severity) == "block"
        for kind, value in thresholds.items():
            if kind == "severity":
                continue
            base_id = f"{GATE_NAME}.{name}.{kind}"
            checks.append(Check(metric, kind, float(value), blocking, 0, 0, base_id, {}))
            for i, slicing in enumerate(slicings[1:], start=1):
                if slicing is None:
                    cols = "&".join(settings.slicings[i - 1])
                    checks.append(Check(metric, kind, float(value), blocking, i, -1, f"{base_id}[{cols}]", {}))
                    continue
                for s in range(slicing.n_slices):
                    checks.append(Check(metric, kind, float(value), blocking, i, s,
                                        f"{base_id}[{slicing.label(s)}]", slicing.values(s)))
    return checks


def _problems(ctx: EvalContext, checks: Sequence[Check], candidate: Predictions,
              baseline: Predictions | None) -> dict[str, tuple[str, str]]:
    """Return, per metric name and role, why its scores cannot be used: ``{(name, role): (reason, msg)}``."""
    out: dict[Any, tuple[str, str]] = {}
    for metric in {c.metric.name: c.metric for c in checks}.values():
        for role, pred in (("candidate", candidate), ("baseline", baseline)):
            if pred is None:
                continue
            msg = _score_problem(metric, pred, role, ctx.policy.model.task, ctx.n_rows)
            if msg is not None:
                out[(metric.name, role)] = (REASON_MISSING_SCORES if pred.scores is None else REASON_BAD_DATA, msg)
    return out


def _score_problem(metric: Metric, pred: Predictions, role: str, task: str, n: int) -> str | None:
    """Return why ``pred`` cannot feed ``metric``, or None when it can."""
    if metric.needs != "scores":
        return None
    if pred.scores is None:
        return MSG_NO_SCORES.format(metric=metric.name, role=role)
    scores = np.asarray(pred.scores, dtype=np.float64)
    if task == BINARY and scores.shape != (n,):
        return MSG_SCORE_SHAPE.format(metric=metric.name, expected="one score per row", role=role,
                                      shape=scores.shape)
    if task == MULTICLASS and (scores.ndim != 2 or scores.shape[0] != n):
        return MSG_SCORE_SHAPE.format(metric=metric.name, expected="one probability column per class",
                                      role=role, shape=scores.shape)
    if not np.isfinite(scores).all():
        return MSG_SCORES_MISSING_VALUES.format(role=role)
    if metric.family == "row_mean" and (scores.min() < 0 or scores.max() > 1):
        return MSG_NOT_PROBA.format(metric=metric.name, role=role, lo=scores.min(), hi=scores.max())
    return None


def _estimate(ctx: EvalContext, settings: Settings, slicings: list[Slicing | None], checks: Sequence[Check],
              problems: Mapping[Any, tuple[str, str]], candidate: Predictions,
              baseline: Predictions | None) -> dict[tuple[int, str], list[SliceEstimate] | str]:
    """Return estimates per (slicing, metric), or the message of the error that prevented them."""
    task = ctx.policy.model.task
    positive = ctx.policy.model.positive_label if task == BINARY else None
    classes = ctx.classes if task != "regression" else None
    out: dict[tuple[int, str], list[SliceEstimate] | str] = {}
    for i, slicing in enumerate(slicings):
        if slicing is None:
            continue
        wanted = {c.metric.name: c.metric for c in checks if c.slicing == i}
        usable = [m for m in wanted.values() if (m.name, "candidate") not in problems
                  and not (m.needs_baseline and baseline is None)]
        paired = [m for m in usable if (m.name, "baseline") not in problems]
        alone = [m for m in usable if (m.name, "baseline") in problems and not m.needs_baseline]
        key = "" if not slicing.columns else "&".join(slicing.columns)
        for group, base in ((paired, baseline), (alone, None)):
            if not group:
                continue
            try:
                found = paired_estimates(ctx.y_true, candidate, base, group, slicing, n_boot=settings.n_boot,
                                         rng=lambda fam: ctx.rng(GATE_NAME, fam, key), positive_label=positive,
                                         classes=classes)
            except (ValueError, TypeError) as exc:
                found = {m.name: MSG_BAD_DATA.format(metric=m.name, problem=str(exc).splitlines()[0]) for m in group}
            for name, value in found.items():
                out[(i, name)] = value
    return out


# --------------------------------------------------------------------------- decisions


@dataclass
class _Pending:
    """A baseline-relative interval check waiting for the family's multiple-testing levels."""

    index: int
    check: Check
    est: SliceEstimate
    oriented: Estimate
    margin: float


def _decide(ctx: EvalContext, settings: Settings, slicings: list[Slicing | None], checks: Sequence[Check],
            problems: Mapping[Any, tuple[str, str]], estimates: Mapping[tuple[int, str], Any],
            has_baseline: bool) -> list[CheckResult]:
    results: list[CheckResult | None] = [None] * len(checks)
    family: list[_Pending] = []
    for idx, check in enumerate(checks):
        early = _early_result(ctx, settings, slicings, check, problems, estimates, has_baseline)
        if early is not None:
            results[idx] = early
            continue
        est = estimates[(check.slicing, check.metric.name)][max(check.slice, 0)]
        if check.is_relative and not check.metric.needs_baseline:
            family.append(_pending(idx, check, est))
        else:
            results[idx] = _bound_result(settings, check, est, slicings)
    for idx, result in _decide_family(settings, family, slicings):
        results[idx] = result
    return [r for r in results if r is not None]


def _early_result(ctx: EvalContext, settings: Settings, slicings: list[Slicing | None], check: Check,
                  problems: Mapping[Any, tuple[str, str]], estimates: Mapping[tuple[int, str], Any],
                  has_baseline: bool) -> CheckResult | None:
    """Return the result of a check that is decided before any interval: skips and errors."""
    slicing = slicings[check.slicing]
    if slicing is None:
        column = next(c for c in settings.slicings[check.slicing - 1] if c not in ctx.frame.columns)
        return _result(check, settings, Outcome.ERROR, REASON_MISSING_COLUMN, MSG_MISSING_COLUMN.format(column=column))
    rows = int(slicing.sizes[check.slice])
    if check.slicing > 0 and rows < settings.min_slice_size:
        msg = MSG_SLICE_TOO_SMALL.format(rows=rows, min=settings.min_slice_size)
        return _result(check, settings, Outcome.SKIPPED, REASON_SLICE_TOO_SMALL, msg, details=_details(check, rows))
    if (check.metric.name, "candidate") in problems:
        reason, msg = problems[(check.metric.name, "candidate")]
        return _result(check, settings, Outcome.ERROR, reason, msg)
    if check.is_relative and not has_baseline:
        if getattr(ctx, "require_baseline", False):
            return _result(check, settings, Outcome.FAIL, REASON_BASELINE_REQUIRED, MSG_BASELINE_REQUIRED)
        return _result(check, settings, Outcome.SKIPPED, REASON_NO_BASELINE, MSG_NO_BASELINE)
    if check.is_relative and (check.metric.name, "baseline") in problems:
        reason, msg = problems[(check.metric.name, "baseline")]
        return _result(check, settings, Outcome.ERROR, reason, msg)
    found = estimates.get((check.slicing, check.metric.name))
    if isinstance(found, str):
        return _result(check, settings, Outcome.ERROR, REASON_BAD_DATA, found)
    return None


def _pending(idx: int, check: Check, est: SliceEstimate) -> _Pending:
    """Orient the difference so higher is better and turn the threshold into a margin m (pass: d >= -m)."""
    assert est.difference is not None and est.baseline is not None
    oriented = est.difference if check.metric.direction > 0 else negate(est.difference)
    if check.kind == "max_drop":
        margin = check.value
    elif check.kind == "max_relative_drop":
        margin = check.value * abs(est.baseline)
    else:
        margin = -check.value
    return _Pending(idx, check, est, oriented, margin)


def _decide_family(settings: Settings, family: Sequence[_Pending],
                   slicings: list[Slicing | None]) -> list[tuple[int, CheckResult]]:
    """Decide the baseline-relative checks together: levels adjusted over the family, then Holm's stop."""
    decided = [p for p in family if p.oriented.is_defined]
    is_interval = settings.rule is Rule.NON_INFERIORITY
    correction = settings.correction if is_interval else Correction.NONE
    levels = adjusted_levels([p.oriented for p in decided], [p.margin for p in decided],
                             settings.confidence, correction)
    outcomes = [decide_margin(p.oriented.value, p.oriented.interval(level), p.margin, settings.rule)
                for p, level in zip(decided, levels)]
    gated = outcomes
    if correction is Correction.HOLM:
        gated = holm_gate(outcomes, holm_order([p.oriented for p in decided], [p.margin for p in decided]))
    out = []
    for p, level, before, after in zip(decided, levels, outcomes, gated):
        out.append((p.index, _margin_result(settings, p, level, after, before is not after, len(decided),
                                            slicings)))
    for p in family:
        if not p.oriented.is_defined:
            msg = MSG_UNDEFINED.format(metric=p.check.metric.name)
            out.append((p.index, _result(p.check, settings, Outcome.ERROR, REASON_UNDEFINED, msg,
                                         observed=p.est.candidate, baseline=p.est.baseline)))
    return out


def _margin_result(settings: Settings, p: _Pending, level: float, outcome: Outcome, stopped: bool,
                   family_size: int, slicings: list[Slicing | None]) -> CheckResult:
    check, direction = p.check, p.check.metric.direction
    lo, hi = p.oriented.interval(level)
    ci = (lo, hi) if direction > 0 else (-hi, -lo)
    half_width = (hi - lo) / 2 if math.isfinite(lo) and math.isfinite(hi) else None
    limit = -p.margin * direction
    good, bad = ("above", "below") if direction > 0 else ("below", "above")
    threshold = f"{check.kind} {_fmt(check.value)}"
    if check.kind == "max_relative_drop":
        threshold += f" of baseline {_fmt(p.est.baseline)} = {_fmt(p.margin)}"
    words = dict(ci=_fmt_ci(ci), limit=_fmt(limit), threshold=threshold, good=good, bad=bad,
                 delta=_fmt(p.est.difference.value if p.est.difference else float("nan")))
    if outcome is Outcome.ERROR:
        message, reason = MSG_UNDEFINED.format(metric=check.metric.name), REASON_UNDEFINED
    elif settings.rule is Rule.POINT:
        message = (MSG_POINT_PASS if outcome is Outcome.PASS else MSG_POINT_FAIL).format(**words)
        reason = REASON_PASS if outcome is Outcome.PASS else REASON_FAIL
    elif outcome is Outcome.PASS:
        message, reason = MSG_MARGIN_PASS.format(**words), REASON_PASS
    elif outcome is Outcome.FAIL:
        message, reason = MSG_MARGIN_FAIL.format(**words), REASON_FAIL
    else:
        message, reason = _inconclusive_message(words, half_width, p.margin, check.kind, stopped), REASON_INCONCLUSIVE
    rows = int(slicings[check.slicing].sizes[check.slice])  # type: ignore[union-attr]
    details = {**_details(check, rows), "decision": settings.rule.value, "margin": p.margin,
               "multiple_testing": settings.correction.value, "family_size": family_size}
    if p.oriented.replicates is not None:
        details["replicates"] = int(p.oriented.replicates.size)
    return _result(check, settings, outcome, reason, message, observed=p.est.candidate, baseline=p.est.baseline,
                   delta=p.est.difference.value if p.est.difference else None, ci=ci,
                   ci_method=p.oriented.method, half_width=half_width, adjusted=level, details=details)


def _inconclusive_message(words: Mapping[str, str], half_width: float | None, margin: float, kind: str,
                          stopped: bool) -> str:
    hw = float("nan") if half_width is None else half_width
    cmp = ">" if hw > margin else "<="
    text = MSG_MARGIN_INCONCLUSIVE.format(hw=_fmt(hw), cmp=cmp, margin=_fmt(margin), **words)
    if kind != "min_gain" and hw > margin:
        text += MSG_TOO_FEW_ROWS.format(margin=_fmt(margin))
    return text + (MSG_HOLM_STOPPED if stopped else "")


def _bound_result(settings: Settings, check: Check, est: SliceEstimate, slicings: list[Slicing | None]) -> CheckResult:
    """Decide a ``min``/``max`` check on the candidate's point value (churn: the share of changed labels)."""
    value = est.candidate
    kw = {"minimum": check.value} if check.kind == "min" else {"maximum": check.value}
    outcome = decide_bounds(value, **kw)
    lo, hi = est.observed.interval(settings.confidence)
    half_width = (hi - lo) / 2 if math.isfinite(lo) and math.isfinite(hi) else None
    rows = int(slicings[check.slicing].sizes[check.slice])  # type: ignore[union-attr]
    words = dict(metric=check.metric.name, observed=_fmt(value), kind=check.kind, value=_fmt(check.value),
                 ci=_fmt_ci((lo, hi)), side="below" if check.kind == "min" else "above")
    if outcome is Outcome.ERROR:
        message, reason = MSG_UNDEFINED.format(metric=check.metric.name), REASON_UNDEFINED
    elif outcome is Outcome.PASS:
        message, reason = MSG_BOUND_PASS.format(**words), REASON_PASS
    else:
        message, reason = MSG_BOUND_FAIL.format(**words), REASON_FAIL
    details = _details(check, rows)
    if est.observed.replicates is not None:
        details["replicates"] = int(est.observed.replicates.size)
    return _result(check, settings, outcome, reason, message, observed=value, baseline=est.baseline,
                   ci=(lo, hi), ci_method=est.observed.method, half_width=half_width,
                   adjusted=settings.confidence, details=details)


def _details(check: Check, rows: int) -> dict[str, Any]:
    out: dict[str, Any] = {"rows": rows}
    if check.scope:
        out["slice"] = dict(check.scope)
    return out


def _result(check: Check, settings: Settings, outcome: Outcome, reason: str, message: str, *,
            observed: float | None = None, baseline: float | None = None, delta: float | None = None,
            ci: tuple[float, float] | None = None, ci_method: str | None = None,
            half_width: float | None = None, adjusted: float | None = None,
            details: Mapping[str, Any] | None = None) -> CheckResult:
    status = to_status(outcome, check.is_blocking, settings.on_inconclusive)
    return CheckResult(
        id=check.id, gate=GATE_NAME, status=status, blocking=check.is_blocking, message=message, reason=reason,
        observed=_num(observed), baseline=_num(baseline), delta=_num(delta), threshold=check.threshold(),
        ci=None if ci is None or not all(map(math.isfinite, ci)) else (float(ci[0]), float(ci[1])),
        ci_method=ci_method, half_width=_num(half_width),
        confidence=settings.confidence if ci_method else None, adjusted_confidence=adjusted if ci_method else None,
        details=dict(details or {}),
    )


def _num(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _fmt(x: float | None) -> str:
    return "undefined" if x is None or not math.isfinite(x) else f"{x:.4g}"


def _fmt_ci(ci: tuple[float, float]) -> str:
    return f"[{_fmt(ci[0])}, {_fmt(ci[1])}]"


GATE = GateKind(GATE_NAME, "gate_regression.schema.json", validate, declares_blocking, run)
