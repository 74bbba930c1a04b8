"""Turn estimates into outcomes: floors, margins, non-inferiority and multiple testing.

All margin decisions work on a difference oriented so that higher is better
(``d = candidate - baseline``; callers negate lower-is-better metrics first), with a margin
``m >= 0`` meaning "may be worse by at most m":

* ``point``: pass iff ``d >= -m``.
* ``non_inferiority``: pass iff the interval's lower bound ``>= -m``; fail iff its upper bound
  ``< -m``; otherwise inconclusive.
"""
from __future__ import annotations

import enum
import math
from collections.abc import Sequence

from gates.intervals import Estimate
from gates.results import Outcome, Status


class Rule(enum.StrEnum):
    POINT = "point"
    NON_INFERIORITY = "non_inferiority"


class Correction(enum.StrEnum):
    NONE = "none"
    BONFERRONI = "bonferroni"
    HOLM = "holm"


def decide_margin(
    estimate: float, interval: tuple[float, float], margin: float, rule: Rule
) -> Outcome:
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


def adjusted_levels(
    estimates: Sequence[Estimate], margins: Sequence[float], confidence: float, correction: Correction
) -> list[float]:
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
    order = holm_order(estimates, margins)
    levels = [confidence] * k
    for rank, idx in enumerate(order):
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
