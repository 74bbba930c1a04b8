"""Where the charts put threshold lines and what they group, checked against DESIGN section 5/6.

Each expected number is worked out by hand from the check's threshold and the metric's direction.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from gates.reporters import _chartdata as cd

GOLDEN = Path(__file__).resolve().parents[2] / "golden"
REPORT = json.loads((GOLDEN / "report_all_gates.json").read_text())
BY_ID = {c["id"]: c for c in REPORT["checks"]}


@pytest.mark.parametrize("check_id, value, bad_above", [
    # higher-is-better metric, point rule: fail iff d < -m
    ("regression.accuracy.max_drop", -0.005, False),
    # lower-is-better metric: the sign flips, fail iff d > +m
    ("regression.log_loss.max_drop", 0.005, True),
    # relative drop: margin m * |baseline| = 0.02 * 0.64
    ("regression.f1.max_relative_drop", -0.0128, False),
    # gain: d must reach +g
    ("regression.recall.min_gain[region=EU]", 0.01, False),
    # absolute floor and ceiling apply to the observed value
    ("regression.roc_auc.min", 0.8, False),
    ("fairness.equalized_odds_difference.max[sex]", 0.1, True),
    # a disparity difference is better small: candidate - production must stay below +margin
    ("fairness.equalized_odds_difference.no_worse_than_baseline[sex]", 0.01, True),
    # robustness compares "badness" (drop), so a larger delta is worse
    ("robustness.accuracy.no_worse_than_baseline[gaussian_noise=0.2]", 0.02, True),
])
def test_limit_position_and_failing_side(check_id, value, bad_above):
    limit = cd.check_limit(BY_ID[check_id])
    assert limit is not None
    assert limit.value == pytest.approx(value)
    assert limit.bad_above is bad_above


def test_interval_rows_are_every_check_with_a_two_sided_interval():
    expected = [c["id"] for c in REPORT["checks"] if c.get("ci") and None not in c["ci"]]
    rows = cd.interval_rows(REPORT["checks"])
    assert [r.check_id for r in rows] == expected
    by_id = {r.check_id: r for r in rows}
    # checks against production plot delta; absolute checks plot the observed value
    assert by_id["regression.accuracy.max_drop"].point == -0.0191 and by_id["regression.accuracy.max_drop"].is_difference
    assert by_id["regression.roc_auc.min"].point == 0.8412 and not by_id["regression.roc_auc.min"].is_difference


def test_ratio_disparities_are_higher_is_better():
    check = {"id": "fairness.demographic_parity_ratio.no_worse_than_baseline[sex]", "gate": "fairness",
             "threshold": {"no_worse_than_baseline": True, "margin": 0.05}, "baseline": 0.9}
    limit = cd.check_limit(check)
    assert limit is not None and limit.value == pytest.approx(-0.05) and not limit.bad_above


def test_relative_drop_without_baseline_draws_no_line():
    check = {"id": "regression.f1.max_relative_drop", "gate": "regression",
             "threshold": {"max_relative_drop": 0.02}, "baseline": None}
    assert cd.check_limit(check) is None


def test_fairness_panels_share_groups_per_metric_and_scope():
    panels = cd.fairness_panels(REPORT["checks"])
    assert [(p.metric, p.grouping, len(p.checks)) for p in panels] == [
        ("equalized_odds_difference", "sex", 2), ("demographic_parity_ratio", "race, sex", 1)]
    sex = panels[0]
    assert [g.size for g in sex.groups] == [512, 600, 12]
    assert sex.groups[2].excluded == "size 12 < min_group_size 30"
    assert sex.groups[2].values["tpr"] is None  # undefined stays undefined, never 0
    # tpr spreads 0.8 - 0.66 = 0.14 over included groups, fpr 0.12 - 0.1 = 0.02
    assert cd.spread(sex, "tpr") == pytest.approx(0.14) and cd.widest_rate(sex) == "tpr"


def test_robustness_curves_start_from_the_clean_model():
    panels = cd.robustness_panels(REPORT["checks"])
    assert [p.title for p in panels] == ["gaussian_noise on age, income", "missing_values on income"]
    noise = {s.measure: s for s in panels[0].series}
    assert set(noise) == {"accuracy", "flip_rate"}  # score_shift is judged by no check here
    acc = noise["accuracy"]
    assert acc.severities == (0.0, 0.05, 0.1, 0.2)
    assert acc.candidate == (0.86, 0.84, 0.82, 0.77)
    # production's clean accuracy is its perturbed value plus its drop: 0.85 + 0.01
    assert acc.baseline == pytest.approx((0.86, 0.85, 0.845, 0.83))
    # max_drop 0.05 from the clean 0.86 puts the line at 0.81
    assert [lim.value for lim in acc.limits] == [pytest.approx(0.81)]
    assert acc.failing == (0.2,)
    flips = noise["flip_rate"]
    assert flips.candidate == (0.0, 0.012, 0.031, 0.072) and flips.limits[0].value == 0.05


def test_check_key_reads_fields_not_the_id():
    check = {"id": "fairness.tpr_difference.max[team=a [b] & c]", "gate": "fairness", "name": "tpr_difference",
             "kind": "max", "scope": "team=a [b] & c"}
    assert cd.check_key(check) == cd.CheckId("fairness", "tpr_difference", "max", "team=a [b] & c")
    # the fields win over the id's text
    assert cd.check_key({**check, "id": "fairness.other.min[x]"}).name == "tpr_difference"
    # a report from before the fields: read once, in gates.identity.untyped
    assert cd.check_key({"id": "data.not_null[job]", "gate": "data"}) == cd.CheckId("data", "not_null", "", "job")
