"""From measured disparities to checks: estimates, the family's decisions, results and messages.

``min``/``max`` bound the candidate's point estimate (DESIGN section 5, as the regression gate's
``min``/``max``); their ``ci`` is the disparity's interval at the nominal level, reported only.
The ``no_worse_than_baseline`` checks are the interval family: decided by ``point`` or
``non_inferiority`` on the paired interval of candidate - baseline, with ``multiple_testing``.

Every interval is the hull of the percentile and basic bootstrap intervals (:func:`gates.intervals.hull_interval`):
a disparity over noisy group rates is biased upward and its replicates more so, so percentile
intervals can sit above the point (``ci_method``: the sampler, then ``-hull``).
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gates.checks.fairness._config import GATE_NAME, MetricSpec, Settings
from gates.checks.fairness._measure import Measured, num
from gates.identity import CheckId, Reason
from gates.intervals import HULL, Estimate, negate
from gates.results import CheckResult, Outcome
from gates.stats import Member, Rule, decide_family
from gates.stats.family import decide_bounds, to_status

MSG_NO_BASELINE = "skipped: no baseline to compare with (first model, or the registry alias is unset)"
MSG_NO_BASELINE_REQUIRED = "no baseline to compare with, and a baseline is required (--require-baseline)"
MSG_NO_INTERVAL = "{what} = {value}: the bootstrap interval is undefined (no replicate had enough eligible groups)"
MSG_UNDEFINED = "{what} is undefined"
MSG_BOUND_PASS = "{what} = {value} meets {bound} {limit} (interval [{lo}, {hi}])"
MSG_BOUND_FAIL = "{what} = {value} breaks {bound} {limit} (interval [{lo}, {hi}])"
MSG_NWTB_PASS = "{what} = {value} vs baseline {base}: not worse by more than the margin {margin}{ci}"
MSG_NWTB_FAIL = "{what} = {value} vs baseline {base}: worse than the baseline by more than the margin {margin}{ci}"
MSG_NWTB_INCONCLUSIVE = (
    "{what} = {value} vs baseline {base}: the {conf} interval of the change [{lo}, {hi}] straddles "
    "{edge} (the margin {margin}); half-width {hw}, so this data cannot show a margin under {hw}"
)
MSG_CI = " with {conf} confidence (interval [{lo}, {hi}])"
MSG_EXCLUDED = "; {n} group(s) left out: {which}"
#: how a disparity's interval is read from its replicates, appended to the sampler's name in ``ci_method``
INTERVAL_SUFFIX = f"-{HULL}"


@dataclass(frozen=True)
class Pending:
    """A check before the family's decisions: its measurement and the estimate it is decided on.

    ``raw`` is what the report shows an interval of (the disparity, or candidate - baseline);
    ``oriented`` is, for ``no_worse_than_baseline`` only (the interval family), the same estimate
    turned into "higher is better, must be >= -margin", the shape
    :func:`gates.decisions.decide_margin` takes. A ``min``/``max`` check has ``raw`` alone.
    """

    check_id: CheckId
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

    @property
    def id(self) -> str:
        return str(self.check_id)


def check_id(metric: str, kind: str, scope: str, view_label: str = "") -> CheckId:
    """Return ``fairness.<metric>.<kind>[<scope>]`` (``[<scope>;class=<c>]`` per class)."""
    suffix = f";class={view_label}" if view_label else ""
    return CheckId(GATE_NAME, metric, kind, f"{scope}{suffix}")


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
            reason = Reason.BASELINE_REQUIRED if require_baseline else Reason.NO_BASELINE
            out.append(_replace(base, preset=outcome, message=text, reason=reason))
        elif measured.problem is not None:
            out.append(_replace(base, preset=Outcome.ERROR, message=measured.problem, reason=Reason.UNDEFINED))
        else:
            out.append(_estimated(base, measured, kind))
    return out


def _estimated(p: Pending, measured: Measured, kind: str) -> Pending:
    """Attach the estimate of one threshold kind (and, for the interval family, its oriented form)."""
    method = measured.method + INTERVAL_SUFFIX
    if kind != "no_worse_than_baseline":
        return _replace(p, raw=Estimate(measured.candidate, method, measured.candidate_reps, bounds=(0.0, 1.0),
                                        reading=HULL))
    assert measured.baseline is not None and measured.baseline_reps is not None
    # disparities lie in [0, 1], so their changes in [-1, 1]
    raw = Estimate(measured.candidate - measured.baseline, method,
                   measured.candidate_reps - measured.baseline_reps, bounds=(-1.0, 1.0), reading=HULL)
    oriented = negate(raw) if measured.metric.kind == "difference" else raw  # higher is better once oriented
    return _replace(p, raw=raw, oriented=oriented, margin=measured.metric.margin)


def _replace(p: Pending, **changes: Any) -> Pending:
    return dataclasses.replace(p, **changes)


def interval_members(pending: Sequence[Pending]) -> tuple[list[int], list[Member]]:
    """Return the positions and :class:`~gates.stats.Member` values of the ``no_worse_than_baseline`` checks."""
    family = [i for i, p in enumerate(pending) if p.oriented is not None]
    members = []
    for i in family:
        est = pending[i].oriented
        assert est is not None
        members.append(Member(est, pending[i].margin, pending[i].blocking))
    return family, members


def decide(pending: Sequence[Pending], settings: Settings) -> list[CheckResult]:
    """Decide every check; the blocking ``no_worse_than_baseline`` checks form the family
    (:func:`gates.stats.decide_family`: levels adjusted under either rule, Holm's stop)."""
    family, members = interval_members(pending)
    found = decide_family(settings.intervals, members)
    decided = {i: (d.outcome, d.level) for i, d in zip(family, found.members)}
    results = []
    for i, p in enumerate(pending):
        if i in decided:
            results.append(_result(p, *decided[i], settings, found.size))
        elif p.raw is not None:
            results.append(_bound_result(p, settings))
        else:
            results.append(_preset_result(p, settings))
    return results


def _preset_result(p: Pending, settings: Settings) -> CheckResult:
    outcome = p.preset or Outcome.ERROR
    m = p.measured
    return CheckResult(
        id=p.id, check_id=p.check_id, gate=GATE_NAME, status=to_status(outcome, p.blocking, settings.on_inconclusive),
        blocking=p.blocking, message=p.message, reason=p.reason,
        observed=None if m is None else num(m.candidate),
        baseline=None if m is None or m.baseline is None else num(m.baseline),
        threshold=_threshold(p), details={} if m is None else dict(m.details))


def _result(p: Pending, outcome: Outcome, level: float, settings: Settings, family_size: int) -> CheckResult:
    m = p.measured
    assert m is not None and p.raw is not None
    lo, hi = p.raw.interval(level)
    defined = math.isfinite(lo) and math.isfinite(hi)
    message = _message(p, outcome, level, (lo, hi), settings)
    reason = {Outcome.PASS: Reason.WITHIN_THRESHOLD, Outcome.FAIL: Reason.THRESHOLD_BREACHED,
              Outcome.INCONCLUSIVE: Reason.INCONCLUSIVE, Outcome.ERROR: Reason.NO_INTERVAL}.get(outcome, "")
    return CheckResult(
        id=p.id, check_id=p.check_id, gate=GATE_NAME, status=to_status(outcome, p.blocking, settings.on_inconclusive),
        blocking=p.blocking, message=message, reason=reason,
        observed=num(m.candidate), baseline=None if m.baseline is None else num(m.baseline),
        delta=num(m.candidate - m.baseline) if p.kind == "no_worse_than_baseline" and m.baseline is not None else None,
        threshold=_threshold(p), ci=(lo, hi) if defined else None, ci_method=p.raw.method,
        half_width=(hi - lo) / 2 if defined else None, confidence=settings.confidence,
        adjusted_confidence=level, details={**m.details, "decision": settings.rule.value,
                                            "multiple_testing": settings.correction.value if family_size > 1 else "none",
                                            "family_size": family_size})


def _bound_result(p: Pending, settings: Settings) -> CheckResult:
    """Decide a ``min``/``max`` check on the candidate's point estimate; its interval is reported only."""
    m = p.measured
    assert m is not None and p.raw is not None
    limit = p.metric.maximum if p.kind == "max" else p.metric.minimum
    outcome = decide_bounds(m.candidate, **{"maximum" if p.kind == "max" else "minimum": limit})
    lo, hi = p.raw.interval(settings.confidence)
    defined = math.isfinite(lo) and math.isfinite(hi)
    if outcome is Outcome.ERROR:
        message, reason = MSG_UNDEFINED.format(what=m.what), Reason.UNDEFINED
    else:
        template = MSG_BOUND_PASS if outcome is Outcome.PASS else MSG_BOUND_FAIL
        message = template.format(what=m.what, value=_fmt(m.candidate), bound=p.kind, limit=_fmt(limit),
                                  lo=_fmt(lo), hi=_fmt(hi))
        reason = Reason.WITHIN_THRESHOLD if outcome is Outcome.PASS else Reason.THRESHOLD_BREACHED
    return CheckResult(
        id=p.id, check_id=p.check_id, gate=GATE_NAME, status=to_status(outcome, p.blocking, settings.on_inconclusive),
        blocking=p.blocking, message=message + _excluded_note(m), reason=reason,
        observed=num(m.candidate), baseline=None if m.baseline is None else num(m.baseline),
        threshold=_threshold(p), ci=(lo, hi) if defined else None, ci_method=p.raw.method,
        half_width=(hi - lo) / 2 if defined else None, confidence=settings.confidence,
        adjusted_confidence=settings.confidence, details={**m.details, "decision": Rule.POINT.value})


def _threshold(p: Pending) -> dict[str, Any]:
    if p.kind == "no_worse_than_baseline":
        return {"no_worse_than_baseline": True, "margin": p.metric.margin}
    bound = p.metric.maximum if p.kind == "max" else p.metric.minimum
    return {p.kind: bound}


def _message(p: Pending, outcome: Outcome, level: float, ci: tuple[float, float], settings: Settings) -> str:
    """Return a ``no_worse_than_baseline`` check's message."""
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
    template = {Outcome.PASS: MSG_NWTB_PASS, Outcome.FAIL: MSG_NWTB_FAIL}.get(outcome, MSG_NWTB_INCONCLUSIVE)
    edge = p.metric.margin if p.metric.kind == "difference" else -p.metric.margin  # worse side
    text = template.format(base=_fmt(m.baseline), margin=_fmt(p.metric.margin), edge=f"{edge:+.4g}", **fields)
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
