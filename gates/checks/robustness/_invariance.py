"""Invariance and directional checks: move one column, and predictions must not move (or not against a direction).

Invariance shuffles (or replaces with other observed values) one column and counts the rows whose
prediction moved by more than the tolerance; directional raises one column by a step and counts
the rows whose score moved against the stated direction. The counts are mergeable
(:class:`InvarianceCounts`, :class:`DirectionalCounts`): the partitioned gate adds them over
partitions and decides with the same :func:`invariance_result` and :func:`directional_result`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gates.checks.robustness._decide import Judge, reason_of
from gates.checks.robustness._measure import label_flips, scalar_score, score_change
from gates.checks.robustness._perturb import MSG_NOT_NUMERIC, MSG_UNKNOWN_COLUMN
from gates.checks.robustness._plan import GATE_NAME, DirectionalPlan, InvariancePlan
from gates.context import Predictions
from gates.perturbations import is_numeric, replace_column, shuffle_column, step_column
from gates.results import CheckResult, Outcome
from gates.stats.family import decide_bounds

MSG_INVARIANCE = "{frac:.2%} of predictions moved by more than {tol:g} when '{col}' was {how} (max {bound:.2%})"
MSG_INVARIANCE_UNUSED = "'{col}' is not a model feature, so predictions cannot depend on it"
MSG_DIRECTIONAL = "{frac:.2%} of rows moved {against} when '{col}' rose by {step:.4g} (max {bound:.2%})"
MSG_CONSTANT = "'{col}' is constant in the eval data, so it has no default step; set step"


@dataclass(frozen=True)
class InvarianceCounts:
    """Rows, rows moved, label flips and the score changes' count, sum and maximum (None: no scores)."""

    rows: int
    changed: int
    flips: int
    shift_sum: float | None
    shift_max: float | None

    @classmethod
    def of(cls, clean: Predictions, moved_pred: Predictions, task: str, tolerance: float) -> InvarianceCounts:
        flips = label_flips(clean, moved_pred) if task != "regression" else np.zeros(len(clean.labels), bool)
        shifts = score_change(clean, moved_pred, task)
        moved = flips | (shifts > tolerance) if shifts is not None else flips
        has = shifts is not None and shifts.size > 0
        return cls(int(moved.size), int(moved.sum()), int(flips.sum()),
                   float(shifts.sum()) if shifts is not None else None,
                   float(shifts.max()) if has and shifts is not None else None)

    def merge(self, other: InvarianceCounts) -> InvarianceCounts:
        maxima = [m for m in (self.shift_max, other.shift_max) if m is not None]
        total = None if self.shift_sum is None or other.shift_sum is None else self.shift_sum + other.shift_sum
        return InvarianceCounts(self.rows + other.rows, self.changed + other.changed, self.flips + other.flips,
                                total, max(maxima) if maxima else None)


@dataclass(frozen=True)
class DirectionalCounts:
    """Rows with a value, rows against the direction, the sum of their score changes and the worst one."""

    rows: int
    against: int
    change_sum: float
    worst: float | None  # the minimum of sign x change over the rows with a value

    @classmethod
    def of(cls, change: np.ndarray, valid: np.ndarray, direction: str, tolerance: float) -> DirectionalCounts:
        sign = 1.0 if direction == "increasing" else -1.0
        against = (sign * change < -tolerance) & valid
        n = int(valid.sum())
        return cls(n, int(against.sum()), float(change[valid].sum()) if n else 0.0,
                   float((sign * change[valid]).min()) if n else None)

    def merge(self, other: DirectionalCounts) -> DirectionalCounts:
        worst = [w for w in (self.worst, other.worst) if w is not None]
        return DirectionalCounts(self.rows + other.rows, self.against + other.against,
                                 self.change_sum + other.change_sum, min(worst) if worst else None)


def invariance_threshold(inv: InvariancePlan) -> dict[str, float]:
    return {"max_fraction": inv.max_fraction, "tolerance": inv.tolerance}


def invariance_unused(judge: Judge, inv: InvariancePlan) -> CheckResult | None:
    """Return the passing check of a column that is not a feature (predictions cannot depend on it)."""
    if inv.column in judge.scorer.X.columns:
        return None
    return judge.result(inv.check_id, None, Outcome.PASS, MSG_INVARIANCE_UNUSED.format(col=inv.column),
                        "not_a_feature", is_blocking=inv.is_blocking, threshold=invariance_threshold(inv), observed=0.0)


def invariance_error(judge: Judge, inv: InvariancePlan, message: str, reason: str) -> CheckResult:
    return judge.result(inv.check_id, None, Outcome.ERROR, message, reason, is_blocking=inv.is_blocking,
                        threshold=invariance_threshold(inv))


def invariance(judge: Judge, inv: InvariancePlan) -> CheckResult:
    """Shuffle (or replace) one column and count the rows whose prediction moved."""
    s = judge.scorer
    unused = invariance_unused(judge, inv)
    if unused is not None:
        return unused
    draws = s.draws(GATE_NAME, "invariance", inv.column)
    if inv.method == "shuffle":
        copy = shuffle_column(s.X, inv.column, draws)
    else:
        copy = replace_column(s.X, inv.column, draws, s.stats)
    side = s.predict("candidate", copy, f"invariance[{inv.column}]", "invariance")
    if side.error is not None or side.pred is None:
        return invariance_error(judge, inv, side.error or "", side.reason)
    clean = s.clean_predictions("candidate")
    assert clean is not None
    return invariance_result(judge, inv, InvarianceCounts.of(clean, side.pred, s.task, inv.tolerance))


def invariance_result(judge: Judge, inv: InvariancePlan, c: InvarianceCounts) -> CheckResult:
    """Decide an invariance check from its counts."""
    frac = c.changed / c.rows if c.rows else 0.0
    outcome = decide_bounds(frac, maximum=inv.max_fraction)
    how = "shuffled" if inv.method == "shuffle" else "replaced by other observed values"
    details = {"method": inv.method, "rows": c.rows, "rows_changed": c.changed,
               "flip_rate": c.flips / c.rows if c.rows else 0.0,
               "max_score_change": c.shift_max,
               "mean_score_change": None if c.shift_sum is None or not c.rows else c.shift_sum / c.rows}
    message = MSG_INVARIANCE.format(frac=frac, tol=inv.tolerance, col=inv.column, how=how, bound=inv.max_fraction)
    return judge.result(inv.check_id, None, outcome, message, reason_of(outcome), is_blocking=inv.is_blocking,
                        threshold=invariance_threshold(inv), observed=frac, details=details)


def directional_error(judge: Judge, d: DirectionalPlan, message: str, reason: str) -> CheckResult:
    return judge.result(d.check_id, None, Outcome.ERROR, message, reason, is_blocking=d.is_blocking,
                        threshold={"direction": d.direction, "max_fraction": d.max_fraction})


def directional_step(judge: Judge, d: DirectionalPlan) -> float | CheckResult:
    """Return the step of a directional check (its own, else the column's std), or the error check."""
    s = judge.scorer
    where = s.ctx.policy.where("gates", GATE_NAME, "directional", d.column)
    if d.column not in s.X.columns:
        return directional_error(judge, d, MSG_UNKNOWN_COLUMN.format(col=d.column, where=where), "unknown_column")
    if not is_numeric(s.X[d.column]):
        return directional_error(judge, d, MSG_NOT_NUMERIC.format(col=d.column, where=where,
                                                                  what="a directional step"), "not_numeric")
    step = d.step if d.step is not None else s.stats.std(d.column)
    if step <= 0:
        return directional_error(judge, d, MSG_CONSTANT.format(col=d.column), "no_step")
    return step


def directional(judge: Judge, d: DirectionalPlan) -> CheckResult:
    """Raise one column by a step and count the rows whose score moved against the direction."""
    s = judge.scorer
    step = directional_step(judge, d)
    if isinstance(step, CheckResult):
        return step
    side = s.predict("candidate", step_column(s.X, d.column, step), f"directional[{d.column}]", "directional")
    if side.error is not None or side.pred is None:
        return directional_error(judge, d, side.error or "", side.reason)
    clean = s.clean_predictions("candidate")
    assert clean is not None
    pos = s.ctx.policy.model.positive_label
    change = scalar_score(side.pred, s.task, pos) - scalar_score(clean, s.task, pos)
    valid = s.X[d.column].notna().to_numpy()
    return directional_result(judge, d, step, DirectionalCounts.of(change, valid, d.direction, d.tolerance))


def directional_result(judge: Judge, d: DirectionalPlan, step: float, c: DirectionalCounts) -> CheckResult:
    """Decide a directional check from its counts."""
    sign = 1.0 if d.direction == "increasing" else -1.0
    frac = c.against / c.rows if c.rows else 0.0
    outcome = decide_bounds(frac, maximum=d.max_fraction)
    moved = "down" if d.direction == "increasing" else "up"
    details = {"direction": d.direction, "step": step, "tolerance": d.tolerance, "rows": c.rows,
               "rows_against": c.against,
               "mean_change": c.change_sum / c.rows if c.rows else None,
               "worst_change": c.worst * sign if c.worst is not None else None}
    message = MSG_DIRECTIONAL.format(frac=frac, against=moved, col=d.column, step=step, bound=d.max_fraction)
    return judge.result(d.check_id, None, outcome, message, reason_of(outcome), is_blocking=d.is_blocking,
                        threshold={"direction": d.direction, "max_fraction": d.max_fraction}, observed=frac,
                        details=details)
