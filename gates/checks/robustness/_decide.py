"""Deciding robustness checks: bounds on the perturbed measures, and the baseline comparisons as a family.

``min``/``max``/``max_drop``/``max_relative_drop`` and the flip-rate and score-shift bounds are
decided on the point value. ``no_worse_than_baseline`` compares the candidate's drop (or flip
rate, or shift) with the baseline's under the identical perturbation on a paired interval; those
checks are measured first and decided together by :func:`gates.stats.decide_family`.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gates.checks.robustness._measure import MSG_NOT_COMPUTABLE, Point, Scorer
from gates.checks.robustness._plan import GATE_NAME, NWB, Plan, PerturbationPlan, Threshold
from gates.checks import REASON_NOT_DISTRIBUTABLE
from gates.identity import CheckId
from gates.intervals import Estimate, negate
from gates.metrics import metric_registry
from gates.results import CheckResult, Outcome
from gates.stats import Member, decide_family
from gates.stats.family import decide_bounds, to_status

MSG_BASELINE_NO_MODEL = "the baseline is given as prediction columns, so it cannot be re-scored on perturbed inputs"
MSG_NO_BASELINE = "no baseline to compare with"
MSG_NO_BASELINE_REQUIRED = "no baseline to compare with, and a baseline is required"
MSG_DROP = "{measure} went from {clean:.4g} to {value:.4g} under {scope}: drop {drop:.4g} (max_drop {bound:g})"
MSG_RELATIVE_DROP = "{measure} went from {clean:.4g} to {value:.4g} under {scope}: {rel:.2%} drop (allowed {bound:.2%})"
MSG_BOUND = "{measure} is {value:.4g} under {scope} ({kind} {bound:g})"
MSG_FLIP = "{value:.2%} of predicted labels flipped under {scope} (max {bound:.2%})"
MSG_SHIFT = "scores moved by {value:.4g} on average under {scope} (max {bound:g})"
MSG_VERSUS = ("{what} under {scope}: candidate {cand:.4g}, baseline {base:.4g}, difference {delta:+.4g} "
              "[{lo:.4g}, {hi:.4g}] at {level:.1%}, margin {margin:g}")
MSG_STRADDLES = "; the interval straddles {bound:g} (half-width {hw:.4g})"


@dataclass(frozen=True)
class Judge:
    """Decides the checks of one gate run: the scorer's measures against the plan's thresholds."""

    scorer: Scorer
    plan: Plan

    def baseline_problem(self) -> tuple[Outcome, str, str] | None:
        """Return why no baseline can be compared (outcome, message, reason), or None when one can."""
        if not self.scorer.ctx.has_baseline:
            if getattr(self.scorer.ctx, "require_baseline", False):
                return Outcome.FAIL, MSG_NO_BASELINE_REQUIRED, "no_baseline"
            return Outcome.SKIPPED, MSG_NO_BASELINE, "no_baseline"
        if self.scorer.ctx.model("baseline") is None:
            return Outcome.SKIPPED, MSG_BASELINE_NO_MODEL, "no_model"
        return None

    def result(self, check_id: CheckId, t: Threshold | None, outcome: Outcome, message: str, reason: str, *,
               is_blocking: bool | None = None, threshold: Mapping[str, Any] | None = None,
               **fields: Any) -> CheckResult:
        blocking = t.is_blocking if t is not None else bool(is_blocking)
        return CheckResult(id=str(check_id), check_id=check_id, gate=GATE_NAME, blocking=blocking, message=message, reason=reason,
                           status=to_status(outcome, blocking, self.plan.on_inconclusive),
                           threshold=t.as_dict() if t is not None else dict(threshold or {}), **fields)

    def judge(self, p: PerturbationPlan, t: Threshold, pt: Point, details: dict[str, Any]) -> CheckResult | Versus:
        """Decide one threshold at one severity (baseline comparisons are decided later, as a family)."""
        cid, scope = p.check_id(t, pt.severity), p.scope(pt.severity)
        refused = self.scorer.refuses(t)
        if refused is not None:
            return self.result(cid, t, Outcome.ERROR, refused, REASON_NOT_DISTRIBUTABLE, details=details)
        for side in (pt.candidate, pt.baseline if t.kind == NWB else None):
            if side is not None and side.error is not None:
                return self.result(cid, t, Outcome.ERROR, side.error, side.reason, details=details)
            if side is not None and t.measure in side.problems:
                return self.result(cid, t, Outcome.ERROR, side.problems[t.measure], "not_computable", details=details)
        if t.kind == NWB:
            return self.versus(cid, scope, t, pt, details)
        value = pt.candidate.values[t.measure]
        if t.is_own:
            template = MSG_FLIP if t.measure == "flip_rate" else MSG_SHIFT
            outcome = decide_bounds(value, maximum=t.bound)
            return self.result(cid, t, outcome, template.format(value=value, scope=scope, bound=t.bound),
                               reason_of(outcome), observed=value, details=details)
        return self.judge_metric(cid, scope, t, value, details)

    def judge_metric(self, cid: CheckId, scope: str, t: Threshold, value: float, details: dict[str, Any]) -> CheckResult:
        clean = self.scorer.clean_value("candidate", t.measure)
        drop = metric_registry()[t.measure].direction * (clean - value)
        if t.kind in ("min", "max"):
            outcome = decide_bounds(value, **{("minimum" if t.kind == "min" else "maximum"): t.bound})
            message = MSG_BOUND.format(measure=t.measure, value=value, scope=scope, kind=t.kind, bound=t.bound)
        elif t.kind == "max_drop":
            outcome = decide_bounds(drop, maximum=t.bound)
            message = MSG_DROP.format(measure=t.measure, clean=clean, value=value, scope=scope, drop=drop,
                                      bound=t.bound)
        else:
            rel = drop / abs(clean) if clean else float("nan")
            outcome = decide_bounds(rel, maximum=t.bound)
            message = MSG_RELATIVE_DROP.format(measure=t.measure, clean=clean, value=value, scope=scope, rel=rel,
                                               bound=t.bound)
        if not (math.isfinite(value) and math.isfinite(clean)):
            outcome, message = Outcome.ERROR, MSG_NOT_COMPUTABLE.format(measure=t.measure, scope=scope,
                                                                        problem="the metric is undefined on these rows")
        return self.result(cid, t, outcome, message, reason_of(outcome), observed=value, delta=value - clean,
                           details=details)

    def versus(self, cid: CheckId, scope: str, t: Threshold, pt: Point, details: dict[str, Any]) -> Versus:
        """Return the paired estimate of (candidate - baseline) drop, flip rate or shift, undecided."""
        assert pt.baseline is not None
        cand, base, s = pt.candidate, pt.baseline, self.scorer
        if t.is_own:
            est = s.paired(pt, t.measure)
            return Versus(self, cid, scope, t, est, cand.values[t.measure], base.values[t.measure], details)
        metric = metric_registry()[t.measure]
        values = [s.clean_value("candidate", t.measure), cand.values[t.measure],
                  s.clean_value("baseline", t.measure), base.values[t.measure]]
        weights = metric.direction * np.array([1.0, -1.0, -1.0, 1.0])
        est = s.contrast(metric, pt, weights, values, n_boot=self.plan.n_boot, rng=s.ctx.rng(str(cid)))
        observed = metric.direction * (values[0] - values[1])
        baseline = metric.direction * (values[2] - values[3])
        return Versus(self, cid, scope, t, est, observed, baseline, details)


def reason_of(outcome: Outcome) -> str:
    """Return the reason code of a bound's outcome."""
    return {Outcome.PASS: "within_threshold", Outcome.FAIL: "threshold_breached",
            Outcome.INCONCLUSIVE: "inconclusive"}.get(outcome, "not_computable")


@dataclass(frozen=True)
class Versus:
    """A no_worse_than_baseline check measured but not yet decided (its level depends on the family)."""

    judge: Judge
    check_id: CheckId
    scope: str
    threshold: Threshold
    estimate: Estimate  # of candidate - baseline "badness" (drop, flip rate or shift)
    observed: float
    baseline: float
    details: dict[str, Any]


def decide_versus(items: Sequence[Versus], plan: Plan) -> dict[int, CheckResult]:
    """Decide every baseline comparison with :func:`gates.stats.decide_family`; key: ``id(item)``."""
    members = [Member(negate(v.estimate), v.threshold.bound, v.threshold.is_blocking) for v in items]
    family = decide_family(plan.intervals, members)
    out = {}
    for v, d in zip(items, family.members, strict=True):
        level, outcome = d.level, d.outcome
        lo, hi = v.estimate.interval(level)
        half = (hi - lo) / 2 if math.isfinite(lo) and math.isfinite(hi) else None
        what = f"{v.threshold.measure} drop" if not v.threshold.is_own else v.threshold.measure
        message = MSG_VERSUS.format(what=what, scope=v.scope, cand=v.observed, base=v.baseline,
                                    delta=v.estimate.value, lo=lo, hi=hi, level=level, margin=v.threshold.bound)
        if outcome is Outcome.INCONCLUSIVE and half is not None:
            message += MSG_STRADDLES.format(bound=v.threshold.bound, hw=half)
        details = {**v.details, "family_size": family.size, "multiple_testing": family.correction.value}
        if v.estimate.replicates is not None:
            details["replicates"] = int(v.estimate.replicates.size)
        out[id(v)] = v.judge.result(
            v.check_id, v.threshold, outcome, message, reason_of(outcome), observed=v.observed, baseline=v.baseline,
            delta=v.estimate.value, ci=(lo, hi), ci_method=v.estimate.method, half_width=half,
            confidence=plan.confidence, adjusted_confidence=level, details=details)
    return out
