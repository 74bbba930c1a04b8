"""The one decision of a family of interval checks, used by every gate and by ``calibrate``.

All margin decisions work on a difference oriented so that higher is better
(``d = candidate - baseline``; callers negate lower-is-better metrics first), with a margin ``m``
meaning "may be worse by at most m" (``min_gain g`` is the margin ``-g``):

* ``point``: pass iff ``d >= -m``.
* ``non_inferiority``: pass iff the interval's lower bound ``>= -m``; fail iff its upper bound
  ``< -m``; otherwise inconclusive.

The family is a gate's *blocking* interval checks. ``multiple_testing`` adjusts their levels under
both rules (so the intervals a ``point`` decision reports are the ones a ``non_inferiority``
decision would use), Holm's step-down stop applies under ``non_inferiority``. Warn-only members
are decided alone at the nominal level: they neither join the family nor widen its intervals.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from gates.intervals import Estimate
from gates.results import Outcome, Status
from gates.stats.settings import Correction, IntervalSettings, Rule


@dataclass(frozen=True)
class Member:
    """One interval check of a family: its oriented estimate and margin, and whether it blocks."""

    estimate: Estimate
    margin: float
    blocking: bool = True


@dataclass(frozen=True)
class Decided:
    """A member's decision: outcome, the level its interval used, that (oriented) interval.

    ``stopped`` is true when the member would pass at its own level but Holm's step-down stop made
    it inconclusive.
    """

    outcome: Outcome
    level: float
    interval: tuple[float, float]
    stopped: bool = False

    @property
    def half_width(self) -> float | None:
        lo, hi = self.interval
        return (hi - lo) / 2 if math.isfinite(lo) and math.isfinite(hi) else None


@dataclass(frozen=True)
class FamilyDecision:
    """The decisions of one family, in member order, with the correction applied and the family size."""

    correction: Correction
    size: int
    members: tuple[Decided, ...]


def decide_family(settings: IntervalSettings, members: Sequence[Member]) -> FamilyDecision:
    """Decide a family of interval checks.

    Members whose estimate is undefined are ``error`` and not counted in the family size; warn-only
    members are decided alone at ``settings.confidence``.

    >>> from gates.intervals import Estimate
    >>> s = IntervalSettings(multiple_testing=Correction.BONFERRONI)
    >>> fam = decide_family(s, [Member(Estimate(0.01, "x", se=0.004), 0.0),
    ...                         Member(Estimate(0.00, "x", se=0.004), 0.005)])
    >>> fam.size, [d.outcome.value for d in fam.members], round(fam.members[0].level, 4)
    (2, ['pass', 'inconclusive'], 0.975)
    """
    family = [i for i, m in enumerate(members) if m.blocking and m.estimate.is_defined]
    correction = settings.multiple_testing if len(family) > 1 else Correction.NONE
    ests = [members[i].estimate for i in family]
    margins = [members[i].margin for i in family]
    levels = dict(zip(family, adjusted_levels(ests, margins, settings.confidence, correction)))
    out: list[Decided | None] = [None] * len(members)
    for i, m in enumerate(members):
        level = levels.get(i, settings.confidence)
        if not m.estimate.is_defined:
            out[i] = Decided(Outcome.ERROR, level, (math.nan, math.nan))
            continue
        interval = m.estimate.interval(level)
        out[i] = Decided(decide_margin(m.estimate.value, interval, m.margin, settings.decision), level, interval)
    if correction is Correction.HOLM and settings.decision is Rule.NON_INFERIORITY:
        order = [family[j] for j in holm_order(ests, margins)]
        before = [out[i].outcome for i in order]  # type: ignore[union-attr]
        after = holm_gate(before, range(len(order)))
        for i, b, a in zip(order, before, after):
            d = out[i]
            assert d is not None
            out[i] = Decided(a, d.level, d.interval, stopped=a is not b)
    return FamilyDecision(correction, len(family), tuple(d for d in out if d is not None))


def decide_margin(estimate: float, interval: tuple[float, float], margin: float, rule: Rule) -> Outcome:
    """Return the outcome of "d may be worse than 0 by at most ``margin``" under ``rule``."""
    if not math.isfinite(estimate):
        return Outcome.ERROR
    if rule is Rule.POINT:
        return Outcome.PASS if estimate >= -margin else Outcome.FAIL
    lo, hi = interval
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return Outcome.ERROR
    if lo >= -margin:
        return Outcome.PASS
    if hi < -margin:
        return Outcome.FAIL
    return Outcome.INCONCLUSIVE


def decide_bounds(value: float, minimum: float | None = None, maximum: float | None = None) -> Outcome:
    """Return pass iff ``value`` lies within the optional ``[minimum, maximum]`` (point rule)."""
    if not math.isfinite(value):
        return Outcome.ERROR
    if minimum is not None and value < minimum:
        return Outcome.FAIL
    if maximum is not None and value > maximum:
        return Outcome.FAIL
    return Outcome.PASS


def to_status(outcome: Outcome, is_blocking: bool, on_inconclusive: str = "fail") -> Status:
    """Map a measured outcome to a report status given severity and ``on_inconclusive``."""
    if outcome is Outcome.PASS:
        return Status.PASS
    if outcome is Outcome.SKIPPED:
        return Status.SKIPPED
    if outcome is Outcome.ERROR:
        return Status.ERROR if is_blocking else Status.WARN
    if outcome is Outcome.INCONCLUSIVE:
        if not is_blocking or on_inconclusive == "warn":
            return Status.WARN
        return Status.INCONCLUSIVE
    return Status.FAIL if is_blocking else Status.WARN


def adjusted_levels(estimates: Sequence[Estimate], margins: Sequence[float], confidence: float,
                    correction: Correction) -> list[float]:
    """Return the confidence level each interval check of one family should use.

    Bonferroni splits ``alpha = 1 - confidence`` evenly over the ``k`` checks. Holm (1979) orders
    checks by their one-sided p-value of inferiority (H0: d < -m) and gives rank ``i`` (0-based)
    the level ``1 - alpha / (k - i)``; :func:`holm_gate` enforces the step-down stop.
    """
    k = len(estimates)
    alpha = 1.0 - confidence
    if k <= 1 or correction is Correction.NONE:
        return [confidence] * k
    if correction is Correction.BONFERRONI:
        return [1.0 - alpha / k] * k
    levels = [confidence] * k
    for rank, idx in enumerate(holm_order(estimates, margins)):
        levels[idx] = 1.0 - alpha / (k - rank)
    return levels


def holm_order(estimates: Sequence[Estimate], margins: Sequence[float]) -> list[int]:
    """Return check indices sorted by their one-sided p-value of H0 "d < -m" (ties by index)."""
    pvals = [e.p_below(-m) if e.is_defined else 1.0 for e, m in zip(estimates, margins)]
    pvals = [1.0 if math.isnan(p) else p for p in pvals]
    return sorted(range(len(pvals)), key=lambda i: (pvals[i], i))


def holm_gate(outcomes: Sequence[Outcome], order: Sequence[int]) -> list[Outcome]:
    """Apply Holm's step-down stop: once a check in p-value order fails to pass, later ones cannot pass.

    A later check that would pass at its own level becomes inconclusive instead.
    """
    out = list(outcomes)
    stopped = False
    for idx in order:
        if stopped and out[idx] is Outcome.PASS:
            out[idx] = Outcome.INCONCLUSIVE
        if out[idx] is not Outcome.PASS:
            stopped = True
    return out
