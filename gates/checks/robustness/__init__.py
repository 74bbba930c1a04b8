"""The robustness gate: does the candidate hold up under the corruption real inputs suffer?

For each configured perturbation and severity the gate corrupts one copy of the model's feature
columns (seeded, :mod:`gates.perturbations`), scores it with one batched predict per model, and
measures against the *same model's* clean predictions (cached in the context, never recomputed):

* the drop of any registry metric (``max_drop``, ``max_relative_drop``; ``min``/``max`` bound the
  perturbed value), oriented by the metric's direction so a drop always means "got worse";
* ``flip_rate``: the share of rows whose predicted label changes;
* ``score_shift``: the mean absolute change of the score (binary: the positive-class
  probability; multiclass: half the L1 distance between probability vectors; regression: the
  prediction);
* ``no_worse_than_baseline``: the candidate's drop (or flip rate, or shift) minus production's under
  the identical perturbation, with a paired interval, decided like a regression check.

Invariance checks shuffle (or replace) a column and require predictions not to move; directional
checks raise a column by a step and require the score not to move against the stated direction.
Every check of a perturbation carries its severity curve in ``details`` for the reporters to chart.

The package: :mod:`._plan` parses and validates the section into a frozen plan, :mod:`._measure`
scores a model on a copy, :mod:`._perturb` applies each perturbation at each severity,
:mod:`._invariance` runs the one-column checks, :mod:`._decide` decides every check (the
baseline comparisons as one family); this module runs them in report order.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from gates.checks import GateKind, NamedColumn, Spec, listed_columns
from gates.checks.robustness._decide import (
    MSG_BASELINE_NO_MODEL,
    MSG_NO_BASELINE,
    MSG_NO_BASELINE_REQUIRED,
    Judge,
    Versus,
    decide_versus,
)
from gates.checks.robustness._invariance import directional, invariance
from gates.checks.robustness._measure import MSG_NAN_REJECTED, Point, Scorer
from gates.checks.robustness._perturb import curve_details, perturbation_columns, point
from gates.checks.robustness._plan import (
    GATE_NAME,
    MSG_CHURN,
    MSG_DIRECTIONAL_TASK,
    MSG_EMPTY,
    MSG_FLIP_REGRESSION,
    MSG_KIND,
    MSG_MARGIN_ALONE,
    MSG_METRICS_UNUSED,
    MSG_NO_THRESHOLD,
    MSG_NO_THRESHOLDS,
    MSG_NOT_FEATURE,
    MSG_UNKNOWN_MEASURE,
    NWB,
    PerturbationPlan,
    Plan,
    as_plan,
    declares_blocking,
    make_plan,
    parse_plan,
    validate,
)
from gates.context import EvalContext
from gates.identity import CheckId
from gates.results import CheckResult, Outcome, Status
from gates.stats.family import to_status

PointOf = Callable[[Scorer, PerturbationPlan, list[str], float, bool], Point]
CheckOf = Callable[[Judge, Any], CheckResult]

MSG_NO_MODEL = "the candidate is given as prediction columns, so it cannot be re-scored on perturbed inputs"
MSG_PER_EXAMPLE = ("a per_example candidate is its eval harness's scores: there is no model to perturb "
                   "and re-score, so robustness does not apply")


def run(ctx: EvalContext, section: Plan | Spec) -> list[CheckResult]:
    """Return every robustness check's result; prediction-column candidates skip them all.

    ``section`` is the plan made at load (a section mapping is planned here, for direct callers).
    """
    plan = as_plan(section)
    skipped = no_model(ctx, plan)
    if skipped is not None:
        return skipped
    scorer = Scorer(ctx)
    if scorer.clean_predictions("candidate") is None:
        return clean_failed(plan, scorer.clean_errors["candidate"])
    return results(Judge(scorer, plan))


def no_model(ctx: EvalContext, plan: Plan) -> list[CheckResult] | None:
    """Every check skipped when the candidate is prediction columns (or per_example), else None."""
    if ctx.model("candidate") is not None:
        return None
    why = MSG_PER_EXAMPLE if ctx.policy.model.task == "per_example" else MSG_NO_MODEL
    return [_plain(cid, blocking, threshold, Status.SKIPPED, why, "no_model")
            for cid, blocking, threshold in plan.checks()]


def clean_failed(plan: Plan, message: str) -> list[CheckResult]:
    """Every check an error when the candidate raised on the clean eval data."""
    return [_plain(cid, blocking, threshold, to_status(Outcome.ERROR, blocking), message, "predict_failed")
            for cid, blocking, threshold in plan.checks()]


def results(judge: Judge, point_of: PointOf = point, invariance_of: CheckOf = invariance,
            directional_of: CheckOf = directional) -> list[CheckResult]:
    """Return every check of the plan in report order; the baseline comparisons decided as one family.

    ``point_of``, ``invariance_of`` and ``directional_of`` measure (the embedded ones by default;
    the partitioned gate passes its own, measured from partition partials).
    """
    out: list[CheckResult | Versus] = []
    for p in judge.plan.perturbations:
        out.extend(perturbation_results(judge, p, point_of))
    out.extend(invariance_of(judge, inv) for inv in judge.plan.invariance)
    out.extend(directional_of(judge, d) for d in judge.plan.directional)
    decided = decide_versus([v for v in out if isinstance(v, Versus)], judge.plan)
    return [decided[id(r)] if isinstance(r, Versus) else r for r in out]


def perturbation_results(judge: Judge, p: PerturbationPlan, point_of: PointOf = point) -> list[CheckResult | Versus]:
    """Return the checks of one perturbation: each threshold at each severity, all on the same copies."""
    columns, problem = perturbation_columns(judge.scorer, p)
    if problem is not None:
        return [judge.result(p.check_id(t, s), t, Outcome.ERROR, problem, "unknown_column")
                for t in p.thresholds for s in p.severities]
    versus = any(t.kind == NWB for t in p.thresholds)
    blocker = judge.baseline_problem() if versus else None
    points = [point_of(judge.scorer, p, columns, s, versus and blocker is None) for s in p.severities]
    out: list[CheckResult | Versus] = []
    for t in p.thresholds:
        for pt in points:
            details = curve_details(p, columns, pt.severity, t, points, judge.scorer)
            if t.kind == NWB and blocker is not None:
                outcome, message, reason = blocker
                out.append(judge.result(p.check_id(t, pt.severity), t, outcome, message, reason, details=details))
            else:
                out.append(judge.judge(p, t, pt, details))
    return out


def _plain(cid: CheckId, blocking: bool, threshold: Mapping[str, Any], status: Status, message: str,
           reason: str) -> CheckResult:
    return CheckResult(id=str(cid), check_id=cid, gate=GATE_NAME, status=status, blocking=blocking, message=message, reason=reason,
                       threshold=dict(threshold))


def columns(spec: Spec) -> list[NamedColumn]:
    """Return the columns the section names: perturbation column lists, invariance and directional."""
    out: list[NamedColumn] = []
    for name, perturbation in (spec.get("perturbations") or {}).items():
        cols = (perturbation or {}).get("columns")
        if isinstance(cols, list):
            out.extend(listed_columns(cols, ("perturbations", name, "columns")))
    invariance = spec.get("invariance")
    if isinstance(invariance, Mapping):
        out.extend(listed_columns(invariance.get("columns"), ("invariance", "columns")))
    else:
        out.extend(listed_columns(invariance, ("invariance",)))
    out.extend((("directional", col), str(col)) for col in (spec.get("directional") or {}))
    return out


GATE = GateKind(GATE_NAME, "gate_robustness.schema.json", validate, declares_blocking, run, columns,
                plan=make_plan)


__all__ = [
    "GATE", "GATE_NAME", "MSG_BASELINE_NO_MODEL", "MSG_CHURN", "MSG_DIRECTIONAL_TASK", "MSG_EMPTY",
    "MSG_FLIP_REGRESSION", "MSG_KIND", "MSG_MARGIN_ALONE", "MSG_METRICS_UNUSED", "MSG_NAN_REJECTED",
    "MSG_NO_BASELINE", "MSG_NO_BASELINE_REQUIRED", "MSG_NO_MODEL", "MSG_NO_THRESHOLD", "MSG_NO_THRESHOLDS",
    "MSG_NOT_FEATURE", "MSG_PER_EXAMPLE", "MSG_UNKNOWN_MEASURE", "Plan", "columns", "declares_blocking",
    "as_plan", "make_plan", "parse_plan", "run", "validate",
]
