"""calibrate against a known generative model, and against ``model-gates run`` on the same data.

The generative model: a binary target and two binormal scorers (score | y ~ N(mu * y, 1)), whose
noises correlate with rho, so ROC AUC = Phi(mu / sqrt(2)) exactly. "As good" gives both scorers
the same mu; "worse" lowers the candidate's mu until its true AUC is twice the margin lower. The
engine's own decisions (paired estimates + the regression gate's family rule) over many seeded
draws are the truth that calibrate's predictions, made from one draw, must match.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from gates.stats import Correction, IntervalSettings, Member, Rule, decide_family
from gates import calibration as cal
from gates.checks import regression
from gates.config import load_policy
from gates.context import EvalContext, Predictions, make_rng
from gates.decisions import to_status
from gates.errors import UserError
from gates.estimates import paired_estimates, whole
from gates.intervals import delong_paired
from gates.metrics import metric_registry
from gates.results import FAILING, Outcome
from gates.runner import run_policy

NORMAL = NormalDist()
RHO = 0.6
MU = 1.0
AUC = NORMAL.cdf(MU / math.sqrt(2))
AUC_MARGIN = 0.02
ACC_MARGIN = 0.03
MU_WORSE = math.sqrt(2) * NORMAL.inv_cdf(AUC - 2 * AUC_MARGIN)  # true AUC lower by twice the margin
DRAWS = 400
SIMULATIONS = 2000
METRICS = {"roc_auc": {"max_drop": AUC_MARGIN}, "accuracy": {"max_drop": ACC_MARGIN}}
SETTINGS = IntervalSettings()  # the gates' defaults: non_inferiority, 95%, holm, on_inconclusive fail
CODES = {Outcome.PASS: 0, Outcome.INCONCLUSIVE: 1, Outcome.FAIL: 2, Outcome.ERROR: 3}


def binormal(rng: np.random.Generator, n: int, mu_candidate: float) -> pd.DataFrame:
    """Return a draw of the generative model; labels threshold each score at its classes' midpoint."""
    y = (rng.random(n) < 0.5).astype(int)
    z = rng.standard_normal((n, 2))
    cand = mu_candidate * y + z[:, 0]
    base = MU * y + RHO * z[:, 0] + math.sqrt(1 - RHO ** 2) * z[:, 1]
    return pd.DataFrame({"label": y, "cand_score": cand, "cand_pred": (cand > mu_candidate / 2).astype(int),
                         "base_score": base, "base_pred": (base > MU / 2).astype(int)})


def as_probabilities(df: pd.DataFrame) -> pd.DataFrame:
    """Return ``df`` with scores mapped into (0, 1) by the logistic function (ranks, so AUCs, unchanged)."""
    out = df.copy()
    for col in ("cand_score", "base_score"):
        out[col] = 1 / (1 + np.exp(-out[col]))
    return out


def engine(n: int, mu_candidate: float, metrics: dict[str, Any] = METRICS, seed: int = 0) -> dict[str, Any]:
    """Return the regression gate's outcome shares over ``DRAWS`` draws, per check, and its family-wise block rate."""
    names = list(metrics)
    registry = metric_registry()
    codes = np.zeros((DRAWS, len(names)), dtype=int)
    blocked = np.zeros(DRAWS, dtype=bool)
    for r in range(DRAWS):
        df = binormal(make_rng(seed, "draw", str(r)), n, mu_candidate)
        cand = Predictions(df["cand_pred"].to_numpy(), df["cand_score"].to_numpy())
        base = Predictions(df["base_pred"].to_numpy(), df["base_score"].to_numpy())
        found = paired_estimates(df["label"].to_numpy(), cand, base, [registry[m] for m in names], whole(n),
                                 n_boot=400, rng=lambda family, r=r: make_rng(seed, "boot", family, str(r)),
                                 positive_label=1)
        estimates = [found[m][0].difference for m in names]
        family = decide_family(SETTINGS, [Member(e, metrics[m]["max_drop"]) for e, m in zip(estimates, names)])
        gated = [d.outcome for d in family.members]
        codes[r] = [CODES[o] for o in gated]
        blocked[r] = any(to_status(o, True, SETTINGS.on_inconclusive) in FAILING for o in gated)
    shares = {m: np.bincount(codes[:, j], minlength=4)[:3] / DRAWS for j, m in enumerate(names)}
    return {"shares": shares, "blocked": float(blocked.mean())}


def write_policy(folder: Path, df: pd.DataFrame, regression_section: dict[str, Any], **extra: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    df.to_csv(folder / "eval.csv", index=False)
    doc = {"version": 1,
           "model": {"name": "demo", "task": "binary_classification", "positive_label": 1,
                     "candidate": {"predictions": "cand_pred", "scores": "cand_score"},
                     "baseline": {"predictions": "base_pred", "scores": "base_score"}},
           "data": {"eval": "eval.csv", "target": "label", **extra.pop("data", {})}, "seed": 11,
           "gates": {"regression": {"bootstrap": 400, **regression_section}, **extra.pop("gates", {})}, **extra}
    path = folder / "gates.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def calibrated(path: Path, simulations: int = SIMULATIONS) -> cal.Calibration:
    return cal.calibrate(EvalContext(load_policy(path)), simulations=simulations)


def shares(rates: cal.Rates) -> np.ndarray:
    return np.array([rates.passed, rates.inconclusive, rates.failed])


# ------------------------------------------------------------------------------------ the generative model


@pytest.fixture(scope="module", params=[2000, 8000], ids=["tight", "ample"])
def regime(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Engine rates (as good, worse by 2x) and calibrate's prediction from one as-good draw, at ``n`` rows."""
    n = request.param
    one_draw = binormal(make_rng(99, "calibrate", str(n)), n, MU)
    policy = write_policy(tmp_path_factory.mktemp(f"n{n}"), one_draw, {"metrics": METRICS})
    return {"n": n, "as_good": engine(n, MU), "worse_2x": engine(n, MU_WORSE),
            "calibration": calibrated(policy)}


def test_engine_false_fail_rate_is_at_most_alpha(regime):
    """A/A: the gate says "confidently worse" in at most 5% of draws (95% confidence)."""
    for metric, (passed, inconclusive, failed) in regime["as_good"]["shares"].items():
        assert failed <= 0.05, metric


def test_engine_detects_twice_the_margin_when_rows_suffice(regime):
    failed = regime["worse_2x"]["shares"]["roc_auc"][2]
    if regime["n"] == 8000:  # margin / se ~ 4 here
        assert failed >= 0.90
    else:  # margin / se ~ 2: detection is a coin flip, which calibrate must say (next test)
        assert 0.2 < failed < 0.8


def test_predicted_rates_match_the_engines(regime):
    by_id = {c.id: c for c in regime["calibration"].checks}
    auc, acc = by_id["regression.roc_auc.max_drop"], by_id["regression.accuracy.max_drop"]
    truth = regime["as_good"]["shares"]
    assert np.abs(shares(auc.rates["as_good"]) - truth["roc_auc"]).max() <= 0.1
    assert np.abs(shares(acc.rates["as_good"]) - truth["accuracy"]).max() <= 0.1
    assert np.abs(shares(auc.rates["worse_2x"]) - regime["worse_2x"]["shares"]["roc_auc"]).max() <= 0.1
    assert abs(regime["calibration"].families[0].false_fail - regime["as_good"]["blocked"]) <= 0.1
    assert abs(regime["calibration"].false_fail - regime["as_good"]["blocked"]) <= 0.1


def test_tight_regime_is_neither_trivial_nor_hopeless(regime):
    """The comparison above means something only where rates are not all 0 or 1."""
    if regime["n"] == 2000:
        assert 0.2 < regime["as_good"]["shares"]["roc_auc"][0] < 0.8


def test_standard_error_matches_delong_on_the_draw(regime, tmp_path):
    auc = next(c for c in regime["calibration"].checks if c.id == "regression.roc_auc.max_drop")
    draw = binormal(make_rng(99, "calibrate", str(regime["n"])), regime["n"], MU)
    delong = delong_paired(draw["label"].to_numpy() == 1, draw["cand_score"].to_numpy(),
                           draw["base_score"].to_numpy())[1]
    assert auc.se == pytest.approx(delong.se, rel=0.05)


def test_rows_needed_give_the_promised_power(tmp_path):
    """At calibrate's rows for 80% power, the engine passes an equal candidate and fails a 2x worse one ~80%."""
    only_auc = {"roc_auc": {"max_drop": AUC_MARGIN}}
    draw = binormal(make_rng(5, "rows"), 2000, MU)
    check = calibrated(write_policy(tmp_path, draw, {"metrics": only_auc}), simulations=500).checks[0]
    n80 = check.rows_needed[0.8]
    assert n80 is not None and 2000 < n80 < 20000
    assert check.rows_needed[0.95] > n80
    assert engine(n80, MU, only_auc, seed=1)["shares"]["roc_auc"][0] == pytest.approx(0.8, abs=0.08)
    assert engine(n80, MU_WORSE, only_auc, seed=2)["shares"]["roc_auc"][2] == pytest.approx(0.8, abs=0.08)


# ------------------------------------------------------------------------------------ agreement with run


def rich_policy(tmp_path: Path) -> Path:
    rng = make_rng(3, "rich")
    df = as_probabilities(binormal(rng, 3000, MU))
    df["region"] = rng.choice(["north", "south"], len(df))
    df["sex"] = rng.choice(["F", "M"], len(df))
    metrics = {"roc_auc": {"min": 0.6, "max_drop": 0.02}, "accuracy": {"max_drop": 0.03},
               "log_loss": {"max_relative_drop": 0.05}, "average_precision": {"max_drop": 0.03, "severity": "warn"}}
    fairness = {"groups": ["sex"], "bootstrap": 300,
                "metrics": {"demographic_parity_difference": {"max": 0.2, "no_worse_than_baseline": True,
                                                              "margin": 0.03}}}
    return write_policy(tmp_path, df, {"metrics": metrics, "slices": ["region"], "min_slice_size": 100},
                        gates={"fairness": fairness})


def test_half_widths_are_the_ones_run_reports(tmp_path):
    path = rich_policy(tmp_path)
    result = cal.calibrate(EvalContext(load_policy(path)), simulations=200)
    reported = {c.id: c for c in run_policy(load_policy(path)).verdict.checks}
    ids = {c.id for c in result.checks}
    assert "regression.log_loss.max_relative_drop[region=south]" in ids
    assert "fairness.demographic_parity_difference.no_worse_than_baseline[sex]" in ids
    assert ids == {i for i, c in reported.items() if c.delta is not None and c.half_width is not None}
    for c in result.checks:
        assert c.half_width == pytest.approx(reported[c.id].half_width, rel=1e-12), c.id
        assert c.adjusted_confidence == pytest.approx(reported[c.id].adjusted_confidence, rel=1e-12), c.id


def test_calibration_is_deterministic(tmp_path):
    path = rich_policy(tmp_path)
    first = cal.calibrate(EvalContext(load_policy(path)), simulations=300).to_dict()
    assert cal.calibrate(EvalContext(load_policy(path)), simulations=300).to_dict() == first


def test_warn_checks_never_block(tmp_path):
    result = cal.calibrate(EvalContext(load_policy(rich_policy(tmp_path))), simulations=200)
    warn = [c for c in result.checks if c.id.startswith("regression.average_precision")]
    assert warn and all(not c.blocking and c.rates["as_good"].blocked == 0 for c in warn)


# ------------------------------------------------------------------------------------ rules and advice


def test_point_rule_false_fails_as_normal_theory_says(tmp_path):
    """Point decision: an equal candidate fails when d < -m, i.e. Phi(-m / se) of the time."""
    draw = binormal(make_rng(8, "point"), 1500, MU)
    path = write_policy(tmp_path, draw, {"decision": "point", "metrics": {"roc_auc": {"max_drop": 0.01}}})
    check = calibrated(path, simulations=4000).checks[0]
    se = delong_paired(draw["label"].to_numpy() == 1, draw["cand_score"].to_numpy(),
                       draw["base_score"].to_numpy())[1].se
    assert check.rates["as_good"].failed == pytest.approx(NORMAL.cdf(-0.01 / se), abs=0.04)
    assert check.rates["as_good"].inconclusive == 0
    assert check.rates["worse_1x"].failed == pytest.approx(0.5, abs=0.04)
    assert check.recommendation.startswith(cal.MSG_NOISY_POINT.split(":")[0])


def test_zero_margin_and_min_gain_say_so(tmp_path):
    draw = binormal(make_rng(9, "zero"), 1500, MU)
    path = write_policy(tmp_path, draw, {"metrics": {"roc_auc": {"max_drop": 0.0}, "accuracy": {"min_gain": 0.01}}})
    by_id = {c.id: c for c in calibrated(path, simulations=500).checks}
    zero, gain = by_id["regression.roc_auc.max_drop"], by_id["regression.accuracy.min_gain"]
    assert zero.rows_needed == {0.8: None, 0.95: None} and zero.power("worse_2x") is None
    assert zero.rates["as_good"].passed < 0.05
    assert zero.recommendation.startswith(cal.MSG_ZERO_MARGIN.split(":")[0])
    assert gain.margin == -0.01 and gain.rates["as_good"].blocked > 0.5
    assert gain.recommendation.startswith(cal.MSG_MIN_GAIN.split(":")[0])


def test_hopeless_underpowered_and_ready_checks_are_told_apart(tmp_path):
    draw = as_probabilities(binormal(make_rng(10, "advice"), 2000, MU))
    metrics = {"roc_auc": {"max_drop": 0.005}, "accuracy": {"max_drop": 0.03}, "log_loss": {"max_drop": 0.1}}
    by_id = {c.id: c for c in calibrated(write_policy(tmp_path, draw, {"metrics": metrics}), simulations=500).checks}
    hopeless, tight, loose = (by_id[f"regression.{m}.max_drop"] for m in metrics)
    assert hopeless.half_width > 0.005 and hopeless.rates["as_good"].passed < 0.2
    assert hopeless.recommendation.startswith(cal.MSG_CANNOT.split(":")[0])
    assert hopeless.rows_needed[0.8] > 20 * 2000
    assert tight.half_width < 0.03 and 0.2 < tight.rates["as_good"].passed < 0.8
    assert tight.recommendation.startswith(cal.MSG_UNDERPOWERED.split(":")[0])
    assert 2000 < tight.rows_needed[0.8] < 5000
    assert loose.recommendation.startswith(cal.MSG_OK.split(":")[0])
    assert loose.rows_needed[0.8] < 2000


def test_rows_needed_formula():
    z = NORMAL.inv_cdf(0.975) + NORMAL.inv_cdf(0.8)
    assert cal.rows_needed(1000, 0.01, 0.02, NORMAL.inv_cdf(0.975), 0.8) == math.ceil(1000 * (z * 0.01 / 0.02) ** 2)
    assert cal.rows_needed(1000, 0.01, 0.0, 1.96, 0.8) is None
    # Holm and Bonferroni plan at the family's most adjusted level, the one the simulated rates reach
    assert cal.critical_value(SETTINGS, 5) == pytest.approx(NORMAL.inv_cdf(1 - 0.05 / 10))
    assert cal.critical_value(SETTINGS, 1) == pytest.approx(NORMAL.inv_cdf(0.975))
    bonferroni = dataclasses.replace(SETTINGS, multiple_testing=Correction.BONFERRONI)
    assert cal.critical_value(bonferroni, 5) == pytest.approx(NORMAL.inv_cdf(1 - 0.05 / 10))
    none = dataclasses.replace(SETTINGS, multiple_testing=Correction.NONE)
    assert cal.critical_value(none, 5) == pytest.approx(NORMAL.inv_cdf(0.975))
    point = dataclasses.replace(SETTINGS, decision=Rule.POINT)
    assert cal.critical_value(point, 5) == 0.0


def test_no_baseline_is_a_user_error(tmp_path):
    draw = binormal(make_rng(1, "none"), 500, MU)
    path = write_policy(tmp_path, draw, {"metrics": {"roc_auc": {"max_drop": 0.01}}})
    doc = yaml.safe_load(path.read_text())
    doc["model"]["baseline"] = "none"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(UserError, match="compares the candidate with the baseline"):
        calibrated(path)


def test_policy_without_baseline_relative_checks_has_nothing_to_calibrate(tmp_path):
    draw = binormal(make_rng(1, "abs"), 500, MU)
    result = calibrated(write_policy(tmp_path, draw, {"metrics": {"roc_auc": {"min": 0.6}}}))
    assert result.checks == [] and result.false_fail == 0.0


@pytest.mark.parametrize("correction", [Correction.HOLM, Correction.BONFERRONI])
def test_rows_needed_agree_with_the_simulated_rates_under_multiple_testing(correction):
    """Rows needed and margins use the family's adjusted critical value, as the simulated decisions do:
    a check the simulation calls fit for 80% power never "needs" more rows than it has, and one it
    calls underpowered always does (the old unadjusted value said "needs 5,352 rows" on 15,060 rows
    whose check passed 98% of the time)."""
    settings = IntervalSettings(multiple_testing=correction)
    rows, k = 15_060, 6
    margin = 0.01
    # standard errors from comfortably powered to hopeless, at the adjusted level 1 - 0.05 / 6
    ses = np.linspace(0.0015, 0.006, k)
    members = [cal.Member(f"regression.m{i}.max_drop", "regression", True, {"max_drop": margin}, margin, rows,
                          None, 0.95, float(se), "normal") for i, se in enumerate(ses)]
    rng = np.random.default_rng(3)
    fam = cal.Family("regression", settings, members, rng.standard_normal((800, k)) * ses)
    out = cal.summarise([fam], model="m", rows=rows, simulations=800, seed=3)
    z_adjusted = NORMAL.inv_cdf(1 - 0.05 / (2 * k))
    for c in out.checks:
        assert c.rows_needed[0.8] == cal.rows_needed(rows, c.se, margin, z_adjusted, 0.8)
        aa, worse = c.rates["as_good"].passed, c.rates["worse_2x"].failed
        if aa >= 0.85 and worse >= 0.85:
            # Holm passes at least what Bonferroni's level predicts, so its advice errs on the safe side
            slack = 1.2 if correction is Correction.HOLM else 1.0
            assert c.rows_needed[0.8] <= slack * rows, (c.id, aa, worse, c.rows_needed)
            assert c.recommendation.startswith("ok")
        if aa < 0.75 or worse < 0.75:
            assert c.rows_needed[0.8] > rows, (c.id, aa, worse, c.rows_needed)
            assert c.margin_80 > margin
