"""Invariance and directional checks: move one column, and predictions must not move (or not against a direction).

Invariance shuffles (or replaces with other observed values) one column and counts the rows whose
prediction moved by more than the tolerance; directional raises one column by a step and counts
the rows whose score moved against the stated direction.
"""
from __future__ import annotations

import numpy as np

from gates.checks.robustness._decide import Judge, reason_of
from gates.checks.robustness._measure import label_flips, scalar_score, score_change
from gates.checks.robustness._perturb import MSG_NOT_NUMERIC, MSG_UNKNOWN_COLUMN
from gates.checks.robustness._plan import GATE_NAME, DirectionalPlan, InvariancePlan
from gates.perturbations import is_numeric, replace_column, shuffle_column, step_column
from gates.results import CheckResult, Outcome
from gates.stats.family import decide_bounds

MSG_INVARIANCE = "{frac:.2%} of predictions moved by more than {tol:g} when '{col}' was {how} (max {bound:.2%})"
MSG_INVARIANCE_UNUSED = "'{col}' is not a model feature, so predictions cannot depend on it"
MSG_DIRECTIONAL = "{frac:.2%} of rows moved {against} when '{col}' rose by {step:.4g} (max {bound:.2%})"
MSG_CONSTANT = "'{col}' is constant in the eval data, so it has no default step; set step"


def invariance(judge: Judge, inv: InvariancePlan) -> CheckResult:
    """Shuffle (or replace) one column and count the rows whose prediction moved."""
    s = judge.scorer
    threshold = {"max_fraction": inv.max_fraction, "tolerance": inv.tolerance}
    if inv.column not in s.X.columns:
        return judge.result(inv.check_id, None, Outcome.PASS, MSG_INVARIANCE_UNUSED.format(col=inv.column),
                            "not_a_feature", is_blocking=inv.is_blocking, threshold=threshold, observed=0.0)
    draws = s.draws(GATE_NAME, "invariance", inv.column)
    if inv.method == "shuffle":
        copy = shuffle_column(s.X, inv.column, draws)
    else:
        copy = replace_column(s.X, inv.column, draws, s.stats)
    side = s.predict("candidate", copy, f"invariance[{inv.column}]", "invariance")
    if side.error is not None or side.pred is None:
        return judge.result(inv.check_id, None, Outcome.ERROR, side.error or "", side.reason,
                            is_blocking=inv.is_blocking, threshold=threshold)
    clean = s.clean_predictions("candidate")
    assert clean is not None
    flips = label_flips(clean, side.pred) if s.task != "regression" else np.zeros(len(s.X), bool)
    shifts = score_change(clean, side.pred, s.task)
    moved = flips | (shifts > inv.tolerance) if shifts is not None else flips
    frac = float(moved.mean()) if moved.size else 0.0
    outcome = decide_bounds(frac, maximum=inv.max_fraction)
    how = "shuffled" if inv.method == "shuffle" else "replaced by other observed values"
    details = {"method": inv.method, "rows": int(moved.size), "rows_changed": int(moved.sum()),
               "flip_rate": float(flips.mean()) if flips.size else 0.0,
               "max_score_change": None if shifts is None or not shifts.size else float(shifts.max()),
               "mean_score_change": None if shifts is None or not shifts.size else float(shifts.mean())}
    message = MSG_INVARIANCE.format(frac=frac, tol=inv.tolerance, col=inv.column, how=how, bound=inv.max_fraction)
    return judge.result(inv.check_id, None, outcome, message, reason_of(outcome), is_blocking=inv.is_blocking,
                        threshold=threshold, observed=frac, details=details)


def directional(judge: Judge, d: DirectionalPlan) -> CheckResult:
    """Raise one column by a step and count the rows whose score moved against the direction."""
    s = judge.scorer
    threshold = {"direction": d.direction, "max_fraction": d.max_fraction}
    where = s.ctx.policy.where("gates", GATE_NAME, "directional", d.column)

    def error(message: str, reason: str) -> CheckResult:
        return judge.result(d.check_id, None, Outcome.ERROR, message, reason, is_blocking=d.is_blocking,
                            threshold=threshold)

    if d.column not in s.X.columns:
        return error(MSG_UNKNOWN_COLUMN.format(col=d.column, where=where), "unknown_column")
    if not is_numeric(s.X[d.column]):
        return error(MSG_NOT_NUMERIC.format(col=d.column, where=where, what="a directional step"), "not_numeric")
    step = d.step if d.step is not None else s.stats.std(d.column)
    if step <= 0:
        return error(MSG_CONSTANT.format(col=d.column), "no_step")
    side = s.predict("candidate", step_column(s.X, d.column, step), f"directional[{d.column}]", "directional")
    if side.error is not None or side.pred is None:
        return error(side.error or "", side.reason)
    clean = s.clean_predictions("candidate")
    assert clean is not None
    pos = s.ctx.policy.model.positive_label
    change = scalar_score(side.pred, s.task, pos) - scalar_score(clean, s.task, pos)
    valid = s.X[d.column].notna().to_numpy()
    sign = 1.0 if d.direction == "increasing" else -1.0
    against = (sign * change < -d.tolerance) & valid
    n_valid = int(valid.sum())
    frac = float(against.sum() / n_valid) if n_valid else 0.0
    outcome = decide_bounds(frac, maximum=d.max_fraction)
    moved = "down" if d.direction == "increasing" else "up"
    details = {"direction": d.direction, "step": step, "tolerance": d.tolerance, "rows": n_valid,
               "rows_against": int(against.sum()),
               "mean_change": float(change[valid].mean()) if n_valid else None,
               "worst_change": float((sign * change[valid]).min() * sign) if n_valid else None}
    message = MSG_DIRECTIONAL.format(frac=frac, against=moved, col=d.column, step=step, bound=d.max_fraction)
    return judge.result(d.check_id, None, outcome, message, reason_of(outcome), is_blocking=d.is_blocking,
                        threshold=threshold, observed=frac, details=details)
