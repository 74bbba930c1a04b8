"""Decisions: margins, bounds, statuses, multiple testing, and the calibration of non-inferiority."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from gates.context import Predictions
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
from gates.estimates import paired_estimates, whole
from gates.intervals import Estimate
from gates.metrics import metric_registry
from gates.results import Outcome, Status

P, F, I, E = Outcome.PASS, Outcome.FAIL, Outcome.INCONCLUSIVE, Outcome.ERROR


@pytest.mark.parametrize("estimate,interval,margin,rule,want", [
    (-0.004, (-0.01, 0.002), 0.005, Rule.POINT, P),
    (-0.006, (-0.01, 0.002), 0.005, Rule.POINT, F),
    (-0.005, (-0.01, 0.0), 0.005, Rule.POINT, P),             # d >= -m is a pass
    (0.001, (-0.004, 0.006), 0.005, Rule.NON_INFERIORITY, P),  # lower bound above -m
    (-0.003, (-0.012, 0.004), 0.005, Rule.NON_INFERIORITY, I),  # straddles -m
    (-0.02, (-0.03, -0.012), 0.005, Rule.NON_INFERIORITY, F),  # upper bound below -m
    (0.02, (0.012, 0.03), -0.01, Rule.NON_INFERIORITY, P),     # min_gain 0.01: margin -0.01
    (0.02, (0.005, 0.03), -0.01, Rule.NON_INFERIORITY, I),
    (float("nan"), (0.0, 0.0), 0.005, Rule.POINT, E),
    (0.0, (float("nan"), float("nan")), 0.005, Rule.NON_INFERIORITY, E),
])
def test_decide_margin(estimate, interval, margin, rule, want):
    assert decide_margin(estimate, interval, margin, rule) is want


def test_decide_bounds():
    assert decide_bounds(0.8, minimum=0.8) is P
    assert decide_bounds(0.79, minimum=0.8) is F
    assert decide_bounds(0.04, maximum=0.03) is F
    assert decide_bounds(0.5, minimum=0.1, maximum=0.9) is P
    assert decide_bounds(float("nan"), minimum=0.1) is E


@pytest.mark.parametrize("outcome,blocking,on_inconclusive,want", [
    (P, True, "fail", Status.PASS), (F, True, "fail", Status.FAIL), (F, False, "fail", Status.WARN),
    (I, True, "fail", Status.INCONCLUSIVE), (I, True, "warn", Status.WARN), (I, False, "fail", Status.WARN),
    (E, True, "fail", Status.ERROR), (E, False, "fail", Status.WARN), (Outcome.SKIPPED, True, "fail", Status.SKIPPED),
])
def test_to_status(outcome, blocking, on_inconclusive, want):
    assert to_status(outcome, blocking, on_inconclusive) is want


def normal_estimates(values, ses):
    return [Estimate(v, "delong", se=s) for v, s in zip(values, ses)]


def test_bonferroni_and_none_levels():
    ests = normal_estimates([0.0, 0.01, -0.01, 0.02], [0.01] * 4)
    assert adjusted_levels(ests, [0.005] * 4, 0.95, Correction.BONFERRONI) == pytest.approx([1 - 0.05 / 4] * 4)
    assert adjusted_levels(ests, [0.005] * 4, 0.95, Correction.NONE) == [0.95] * 4
    assert adjusted_levels(ests[:1], [0.005], 0.95, Correction.HOLM) == [0.95]


def test_holm_levels_follow_the_p_value_order():
    """Holm (1979): the i-th smallest p-value (0-based) is tested at alpha / (k - i)."""
    values, ses, margins = [0.0, 0.02, -0.01, 0.01], [0.01, 0.01, 0.01, 0.02], [0.01, 0.01, 0.01, 0.01]
    ests = normal_estimates(values, ses)
    p = [stats.norm.sf((v + m) / s) for v, s, m in zip(values, ses, margins)]  # H0: d < -m
    order = list(np.argsort(p, kind="stable"))
    assert holm_order(ests, margins) == order
    levels = adjusted_levels(ests, margins, 0.9, Correction.HOLM)
    for rank, idx in enumerate(order):
        assert levels[idx] == pytest.approx(1 - 0.1 / (4 - rank))


def test_holm_gate_stops_at_the_first_check_that_does_not_pass():
    assert holm_gate([P, P, I, P], [0, 1, 2, 3]) == [P, P, I, I]
    assert holm_gate([P, F, P, P], [2, 3, 1, 0]) == [I, F, P, P]
    assert holm_gate([P, P], [1, 0]) == [P, P]


def test_holm_pass_set_equals_step_down_holm_on_p_values():
    """A check passes under holm_gate iff Holm's step-down procedure rejects its null."""
    rng = np.random.default_rng(0)
    alpha = 0.05
    for _ in range(200):
        k = int(rng.integers(2, 7))
        values, ses, margins = rng.normal(0, 0.01, k), rng.uniform(0.003, 0.01, k), np.full(k, 0.005)
        ests = normal_estimates(values, ses)
        levels = adjusted_levels(ests, list(margins), 1 - alpha, Correction.HOLM)
        outcomes = [decide_margin(e.value, e.interval(lv), m, Rule.NON_INFERIORITY)
                    for e, lv, m in zip(ests, levels, margins)]
        gated = holm_gate(outcomes, holm_order(ests, list(margins)))
        p = stats.norm.sf((values + margins) / ses)
        rejected, order = set(), np.argsort(p, kind="stable")
        for rank, idx in enumerate(order):
            if p[idx] > alpha / 2 / (k - rank):  # a two-sided interval's lower bound: alpha / 2 per side
                break
            rejected.add(int(idx))
        assert {i for i, o in enumerate(gated) if o is P} == rejected


# ---------------------------------------------------------------------------------- calibration

N_ROWS, MARGIN, SEEDS, N_BOOT = 4000, 0.02, 200, 1000
ACCURACY = metric_registry()["accuracy"]


def simulate(seed: int, p_cand_only: float, p_base_only: float, p_both: float = 0.80):
    """Rows with given joint probabilities of (candidate right, baseline right); y is irrelevant to accuracy."""
    rng = np.random.default_rng(seed)
    probs = [p_both, p_cand_only, p_base_only, 1 - p_both - p_cand_only - p_base_only]
    kind = rng.choice(4, size=N_ROWS, p=probs)
    y = rng.integers(0, 2, N_ROWS)
    cand_right, base_right = np.isin(kind, (0, 1)), np.isin(kind, (0, 2))
    cand = np.where(cand_right, y, 1 - y)
    base = np.where(base_right, y, 1 - y)
    return y, Predictions(cand, None, (0, 1)), Predictions(base, None, (0, 1))


def decide(seed: int, p_cand_only: float, p_base_only: float) -> tuple[Outcome, tuple[float, float]]:
    y, cand, base = simulate(seed, p_cand_only, p_base_only)
    est = paired_estimates(y, cand, base, [ACCURACY], whole(N_ROWS), n_boot=N_BOOT,
                           rng=lambda fam: np.random.default_rng([seed, 99]), positive_label=1,
                           classes=(0, 1))["accuracy"][0]
    ci = est.difference.interval(0.95)
    return decide_margin(est.difference.value, ci, MARGIN, Rule.NON_INFERIORITY), ci


def test_non_inferiority_is_calibrated_over_seeds():
    """Same true accuracy: rarely fails; worse by twice the margin: fails (confidently) in most seeds.

    With these cells sd(d) = sqrt(0.1 / 4000) = 0.005, so the margin 0.02 is 4 sd: the expected false
    failure rate (fail or inconclusive) is P(Z < 1.96 - 4) = 2 %, and the expected power to fail
    a candidate worse by 0.04 is P(Z < 4 - 1.96) = 98 %.
    """
    same = [decide(seed, 0.05, 0.05) for seed in range(SEEDS)]
    false_fail = np.mean([o is not P for o, _ in same])
    assert false_fail <= 0.05
    coverage = np.mean([lo <= 0.0 <= hi for _, (lo, hi) in same])
    assert 0.91 <= coverage <= 0.98  # 95 % +- 3 binomial sd over 200 seeds

    worse = [decide(seed, 0.03, 0.07) for seed in range(SEEDS)]
    assert np.mean([o is F for o, _ in worse]) >= 0.8


def test_non_inferiority_level_at_the_margin():
    """Truly worse by exactly the margin: a pass is a false claim, at most alpha / 2 = 2.5 % (+ 3 sd)."""
    at_margin = [decide(seed, 0.04, 0.06) for seed in range(SEEDS)]  # d = -0.02
    assert np.mean([o is P for o, _ in at_margin]) <= 0.025 + 3 * np.sqrt(0.025 * 0.975 / SEEDS)
