"""The one family decision: adjusted levels under every rule, blocking members only, Holm's stop."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from gates.intervals import Estimate
from gates.results import Outcome
from gates.stats import Correction, IntervalSettings, Member, Rule, decide_family


def normal(value, se):
    return Estimate(value, "normal", se=se)


def family(rule, correction, members):
    return decide_family(IntervalSettings(decision=rule, multiple_testing=correction), members)


@pytest.mark.parametrize("rule", [Rule.POINT, Rule.NON_INFERIORITY])
@pytest.mark.parametrize("correction,k", [(Correction.BONFERRONI, 3), (Correction.HOLM, 3)])
def test_levels_are_adjusted_under_every_rule(rule, correction, k):
    members = [Member(normal(0.01 * i, 0.004), 0.005) for i in range(k)]
    fam = family(rule, correction, members)
    levels = sorted(d.level for d in fam.members)
    if correction is Correction.BONFERRONI:
        assert levels == pytest.approx([1 - 0.05 / 3] * 3)
    else:
        assert levels == pytest.approx([0.95, 1 - 0.05 / 2, 1 - 0.05 / 3])
    # the reported interval is the normal interval at the adjusted level
    for m, d in zip(members, fam.members):
        z = stats.norm.ppf(1 - (1 - d.level) / 2)
        assert d.interval == pytest.approx((m.estimate.value - z * 0.004, m.estimate.value + z * 0.004))
    assert fam.size == 3 and fam.correction is correction


def test_point_decides_on_the_point_value_with_adjusted_intervals():
    fam = family(Rule.POINT, Correction.HOLM, [Member(normal(-0.004, 0.01), 0.005), Member(normal(-0.006, 0.01), 0.005)])
    assert [d.outcome for d in fam.members] == [Outcome.PASS, Outcome.FAIL]
    assert max(d.level for d in fam.members) == pytest.approx(0.975)
    assert not any(d.stopped for d in fam.members)


def test_warn_only_members_stay_out_of_the_family():
    blocking = [Member(normal(0.01, 0.004), 0.005), Member(normal(0.02, 0.004), 0.005)]
    warn = Member(normal(0.0, 0.004), 0.005, blocking=False)
    fam = family(Rule.NON_INFERIORITY, Correction.BONFERRONI, [*blocking, warn])
    assert fam.size == 2
    assert [d.level for d in fam.members] == pytest.approx([0.975, 0.975, 0.95])
    alone = family(Rule.NON_INFERIORITY, Correction.BONFERRONI, blocking)
    assert [d.interval for d in alone.members] == [d.interval for d in fam.members[:2]]


def test_undefined_members_are_errors_outside_the_count():
    fam = family(Rule.NON_INFERIORITY, Correction.BONFERRONI,
                 [Member(normal(0.01, 0.004), 0.005), Member(Estimate(float("nan"), "normal"), 0.005)])
    assert fam.size == 1
    assert fam.members[0].level == pytest.approx(0.95)
    assert fam.members[1].outcome is Outcome.ERROR and math.isnan(fam.members[1].interval[0])


def test_holm_stop_makes_later_passes_inconclusive():
    # rank 0 (smallest p) straddles: Holm stops, so the clear pass after it cannot pass
    weak = Member(normal(-0.004, 0.003), 0.005)      # p(d < -m) ~ 0.37
    strong = Member(normal(0.5, 0.003), 0.005)        # p ~ 0
    straddle = Member(normal(0.0, 0.004), 0.005)      # p ~ 0.11
    fam = family(Rule.NON_INFERIORITY, Correction.HOLM, [weak, strong, straddle])
    outcomes = [d.outcome for d in fam.members]
    assert outcomes[1] is Outcome.PASS          # first in p-value order, passes at 1 - alpha/3
    assert outcomes[2] is Outcome.INCONCLUSIVE  # straddles at its own level: the stop starts here
    assert outcomes[0] is Outcome.INCONCLUSIVE
    pass_alone = decide_family(IntervalSettings(multiple_testing=Correction.NONE), [Member(normal(0.01, 0.004), 0.005)])
    assert pass_alone.members[0].outcome is Outcome.PASS


def test_holm_stop_is_reported():
    first = Member(normal(-0.02, 0.003), 0.005)   # fails
    later = Member(normal(0.03, 0.003), 0.005)    # passes at 0.975 but the stop holds
    fam = family(Rule.NON_INFERIORITY, Correction.HOLM, [later, first])
    # later has the smaller p-value, so it is decided first and passes; first fails after it
    assert [d.outcome for d in fam.members] == [Outcome.PASS, Outcome.FAIL]
    # z = 2.1 straddles 0 at 97.5% (z 2.24); z = 2.0 would pass at its own 95% (z 1.96), but the stop holds
    fam = family(Rule.NON_INFERIORITY, Correction.HOLM, [Member(normal(2.0, 1.0), 0.0), Member(normal(2.1, 1.0), 0.0)])
    assert [d.outcome for d in fam.members] == [Outcome.INCONCLUSIVE, Outcome.INCONCLUSIVE]
    assert [d.stopped for d in fam.members] == [True, False]
    assert [d.level for d in fam.members] == pytest.approx([0.95, 0.975])


def test_bootstrap_members_use_their_replicates():
    reps = np.random.default_rng(0).normal(0.01, 0.004, 24000)
    fam = family(Rule.NON_INFERIORITY, Correction.BONFERRONI,
                 [Member(Estimate(0.01, "b", reps), 0.005) for _ in range(12)])
    lo, hi = fam.members[0].interval
    assert (lo, hi) == pytest.approx(tuple(np.quantile(reps, [0.05 / 24, 1 - 0.05 / 24])))
    assert (reps < lo).sum() >= 49 and (reps > hi).sum() >= 49
