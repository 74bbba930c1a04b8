"""The regression gate end to end: gates.yaml + eval.csv in tmp_path -> Policy -> EvalContext -> results."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn import metrics as skm

from gates.checks import regression as rg
from gates.config import load_policy
from gates.context import EvalContext
from gates.errors import UserError
from gates.metrics import metric_names
from gates.results import CheckResult, Status
from tests.conftest import count_calls

BINARY = "binary_classification"


def frame(n: int = 3000, *, shift: float = 0.0, seed: int = 0) -> pd.DataFrame:
    """Labels, a baseline scorer and a correlated candidate; ``shift`` < 0 makes the candidate worse."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    shared = rng.normal(size=n)
    base = 1 / (1 + np.exp(-(1.2 * (2 * y - 1) + shared + 0.3 * rng.normal(size=n))))
    cand = 1 / (1 + np.exp(-((1.2 + shift) * (2 * y - 1) + shared + 0.3 * rng.normal(size=n))))
    return pd.DataFrame({
        "label": y,
        "group": rng.choice(["a", "b"], n, p=[0.6, 0.4]),
        "region": rng.choice(["north", "south", "east"], n, p=[0.5, 0.45, 0.05]),
        "cand_score": cand, "cand_pred": (cand >= 0.5).astype(int),
        "base_score": base, "base_pred": (base >= 0.5).astype(int),
    })


CANDIDATE = {"predictions": "cand_pred", "scores": "cand_score"}
BASELINE = {"predictions": "base_pred", "scores": "base_score"}


def write(tmp_path: Path, df: pd.DataFrame, regression: dict[str, Any], *, task: str = BINARY,
          candidate: Any = None, baseline: Any = "columns") -> Path:
    df.to_csv(tmp_path / "eval.csv", index=False)
    model = {"name": "demo", "task": task, "candidate": candidate or CANDIDATE,
             "baseline": BASELINE if baseline == "columns" else baseline}
    if task == BINARY:
        model["positive_label"] = 1
    doc = {"version": 1, "model": model, "data": {"eval": "eval.csv", "target": "label"}, "seed": 7,
           "gates": {"regression": {"bootstrap": 400, **regression}}}
    path = tmp_path / "gates.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def run(path: Path, *, require_baseline: bool = False) -> dict[str, CheckResult]:
    policy = load_policy(path)
    ctx = EvalContext(policy, require_baseline=require_baseline)
    results = rg.GATE.run(ctx, policy.plan("regression"))
    assert len({r.id for r in results}) == len(results)
    return {r.id: r for r in results}


def config_error(path: Path) -> str:
    with pytest.raises(UserError) as info:
        load_policy(path)
    return str(info.value)


# ---------------------------------------------------------------------------------- numbers


def test_observed_baseline_delta_and_intervals_match_sklearn(tmp_path):
    df = frame(shift=0.3)
    out = run(write(tmp_path, df, {"metrics": {"accuracy": {"min": 0.5, "max_drop": 0.05},
                                               "roc_auc": {"max_drop": 0.05},
                                               "log_loss": {"max_drop": 0.05}}}))
    assert list(out) == ["regression.accuracy.min", "regression.accuracy.max_drop", "regression.roc_auc.max_drop",
                         "regression.log_loss.max_drop"]
    y = df["label"]
    want = {"accuracy": (skm.accuracy_score(y, df.cand_pred), skm.accuracy_score(y, df.base_pred)),
            "roc_auc": (skm.roc_auc_score(y, df.cand_score), skm.roc_auc_score(y, df.base_score)),
            "log_loss": (skm.log_loss(y, df.cand_score), skm.log_loss(y, df.base_score))}
    methods = {"accuracy": "bootstrap-multinomial", "roc_auc": "delong", "log_loss": "bootstrap-rows"}
    for name, (cand, base) in want.items():
        r = out[f"regression.{name}.max_drop"]
        assert r.status is Status.PASS and r.reason == rg.REASON_PASS and r.blocking
        assert r.observed == pytest.approx(cand, rel=1e-9) and r.baseline == pytest.approx(base, rel=1e-9)
        assert r.delta == pytest.approx(cand - base, rel=1e-6)
        assert r.threshold == {"max_drop": 0.05} and r.ci_method == methods[name]
        assert r.ci[0] <= r.delta <= r.ci[1] and r.half_width == pytest.approx((r.ci[1] - r.ci[0]) / 2)
        assert r.confidence == 0.95 and r.adjusted_confidence >= 0.95
        assert r.details["family_size"] == 3 and r.details["rows"] == len(df)
    levels = sorted(out[f"regression.{name}.max_drop"].adjusted_confidence for name in want)
    assert levels == pytest.approx([0.95, 1 - 0.05 / 2, 1 - 0.05 / 3])  # holm over the 3 comparisons
    floor = out["regression.accuracy.min"]
    assert floor.status is Status.PASS and floor.threshold == {"min": 0.5} and floor.delta is None
    assert floor.ci[0] <= floor.observed <= floor.ci[1] and floor.adjusted_confidence == 0.95
    # lower-is-better: the candidate is better, so its log loss change is negative
    assert out["regression.log_loss.max_drop"].ci[1] < 0


def test_a_clearly_worse_candidate_fails_with_the_reason(tmp_path):
    out = run(write(tmp_path, frame(shift=-0.8), {"metrics": {"roc_auc": {"max_drop": 0.005},
                                                              "log_loss": {"max_drop": 0.01}}}))
    auc, loss = out["regression.roc_auc.max_drop"], out["regression.log_loss.max_drop"]
    assert auc.status is Status.FAIL and auc.reason == rg.REASON_FAIL
    assert auc.ci[1] < -0.005 and "entirely below the limit -0.005" in auc.message
    assert loss.status is Status.FAIL and loss.delta > 0 and loss.ci[0] > 0.01
    assert "entirely above the limit 0.01" in loss.message


def test_too_few_rows_is_inconclusive_and_says_so(tmp_path):
    df = frame(n=300, seed=3)
    out = run(write(tmp_path, df, {"metrics": {"accuracy": {"max_drop": 0.01}}}))
    r = out["regression.accuracy.max_drop"]
    assert r.status is Status.INCONCLUSIVE and r.reason == rg.REASON_INCONCLUSIVE and r.blocking
    assert r.ci[0] < -0.01 < r.ci[1] and r.half_width > 0.01
    assert "straddles the limit -0.01" in r.message and "half-width" in r.message
    assert rg.MSG_TOO_FEW_ROWS.format(margin="0.01") in r.message
    warned = run(write(tmp_path, df, {"on_inconclusive": "warn", "metrics": {"accuracy": {"max_drop": 0.01}}}))
    assert warned["regression.accuracy.max_drop"].status is Status.WARN


def test_point_decision_passes_iff_the_change_is_within_the_margin(tmp_path):
    df = frame(shift=-0.3, seed=4)
    d = skm.accuracy_score(df.label, df.cand_pred) - skm.accuracy_score(df.label, df.base_pred)
    assert d < 0
    for margin, want in ((abs(d) + 1e-4, Status.PASS), (abs(d) - 1e-4, Status.FAIL)):
        out = run(write(tmp_path, df, {"decision": "point", "metrics": {"accuracy": {"max_drop": margin}}}))
        r = out["regression.accuracy.max_drop"]
        assert r.status is want and "point decision" in r.message
        assert r.adjusted_confidence == 0.95


def test_relative_drop_and_min_gain(tmp_path):
    df = frame(shift=0.6, seed=5)
    base_f1 = skm.f1_score(df.label, df.base_pred)
    gain = skm.f1_score(df.label, df.cand_pred) - base_f1
    out = run(write(tmp_path, df, {"multiple_testing": "none", "metrics": {
        "f1": {"max_relative_drop": 0.02, "min_gain": 0.0},
        "accuracy": {"min_gain": 0.5}}}))
    rel = out["regression.f1.max_relative_drop"]
    assert rel.details["margin"] == pytest.approx(0.02 * base_f1) and rel.status is Status.PASS
    assert "max_relative_drop 0.02 of baseline" in rel.message
    assert gain > 0 and out["regression.f1.min_gain"].status is Status.PASS
    assert out["regression.f1.min_gain"].ci[0] > 0
    assert out["regression.accuracy.min_gain"].status is Status.FAIL


def test_churn_is_the_share_of_changed_labels(tmp_path):
    df = frame(seed=6)
    churn = float(np.mean(df.cand_pred != df.base_pred))
    out = run(write(tmp_path, df, {"metrics": {"churn": {"max": round(churn + 0.01, 4)}}}))
    r = out["regression.churn.max"]
    assert r.observed == pytest.approx(churn) and r.status is Status.PASS and r.threshold == {"max": round(churn + 0.01, 4)}
    assert r.ci[0] <= churn <= r.ci[1] and r.ci_method == "bootstrap-multinomial"
    failing = run(write(tmp_path, df, {"metrics": {"churn": {"max": round(churn - 0.01, 4)}}}))
    assert failing["regression.churn.max"].status is Status.FAIL


# ---------------------------------------------------------------------------------- baselines


def test_without_a_baseline_relative_checks_skip_and_absolute_ones_run(tmp_path):
    spec = {"metrics": {"accuracy": {"min": 0.5, "max_drop": 0.01}, "churn": {"max": 0.1}}}
    path = write(tmp_path, frame(), spec, baseline="none")
    out = run(path)
    assert out["regression.accuracy.min"].status is Status.PASS
    for cid in ("regression.accuracy.max_drop", "regression.churn.max"):
        assert out[cid].status is Status.SKIPPED and out[cid].reason == rg.REASON_NO_BASELINE
        assert out[cid].message == rg.MSG_NO_BASELINE
    required = run(path, require_baseline=True)
    assert required["regression.accuracy.min"].status is Status.PASS
    for cid in ("regression.accuracy.max_drop", "regression.churn.max"):
        assert required[cid].status is Status.FAIL and required[cid].reason == rg.REASON_BASELINE_REQUIRED


def test_missing_scores_are_an_error_not_a_crash(tmp_path):
    path = write(tmp_path, frame(), {"metrics": {"accuracy": {"max_drop": 0.05}, "roc_auc": {"min": 0.6}}},
                 candidate={"predictions": "cand_pred"})
    out = run(path)
    auc = out["regression.roc_auc.min"]
    assert auc.status is Status.ERROR and auc.reason == rg.REASON_MISSING_SCORES
    assert auc.message == rg.MSG_NO_SCORES.format(metric="roc_auc", role="candidate")
    assert out["regression.accuracy.max_drop"].status is Status.PASS
    # a baseline without scores still allows the candidate's floor, not the comparison
    both = run(write(tmp_path, frame(), {"metrics": {"roc_auc": {"min": 0.6, "max_drop": 0.05}}},
                     baseline={"predictions": "base_pred"}))
    assert both["regression.roc_auc.min"].status is Status.PASS
    assert both["regression.roc_auc.max_drop"].status is Status.ERROR
    assert both["regression.roc_auc.max_drop"].message == rg.MSG_NO_SCORES.format(metric="roc_auc", role="baseline")


# ---------------------------------------------------------------------------------- slices


def test_slices_get_their_own_checks_and_small_ones_are_skipped(tmp_path):
    df = frame(n=4000, seed=7)
    spec = {"slices": ["group", ["group", "region"]], "min_slice_size": 150,
            "metrics": {"f1": {"min": 0.5, "max_drop": 0.1}}}
    out = run(write(tmp_path, df, spec))
    ids = [i for i in out if i.startswith("regression.f1.min")]
    assert ids == ["regression.f1.min", "regression.f1.min[group=a]", "regression.f1.min[group=b]",
                   "regression.f1.min[group=a&region=east]", "regression.f1.min[group=a&region=north]",
                   "regression.f1.min[group=a&region=south]", "regression.f1.min[group=b&region=east]",
                   "regression.f1.min[group=b&region=north]", "regression.f1.min[group=b&region=south]"]
    for cid, r in out.items():
        scope = r.details.get("slice", {})
        rows = df[np.logical_and.reduce([df[c] == v for c, v in scope.items()])] if scope else df
        assert r.details["rows"] == len(rows)
        if len(rows) < 150:
            assert r.status is Status.SKIPPED and r.reason == rg.REASON_SLICE_TOO_SMALL, cid
            assert r.message == rg.MSG_SLICE_TOO_SMALL.format(rows=len(rows), unit="rows", min=150)
            continue
        assert r.observed == pytest.approx(skm.f1_score(rows.label, rows.cand_pred), rel=1e-9), cid
        if "max_drop" in cid:
            want = skm.f1_score(rows.label, rows.cand_pred) - skm.f1_score(rows.label, rows.base_pred)
            assert r.delta == pytest.approx(want, rel=1e-6, abs=1e-12)
    skipped = [r for r in out.values() if r.status is Status.SKIPPED]
    assert {r.details["slice"]["region"] for r in skipped} == {"east"}


def test_a_missing_slice_column_is_a_config_error(tmp_path):
    with pytest.raises(UserError, match=r"gates.regression.slices\[0\]: column 'nope' is not in the eval data"):
        run(write(tmp_path, frame(), {"slices": ["nope"], "metrics": {"accuracy": {"min": 0.5}}}))


@pytest.mark.parametrize("correction", ["none", "bonferroni", "holm"])
def test_multiple_testing_adjusts_the_family_of_interval_checks(tmp_path, correction):
    spec = {"multiple_testing": correction, "slices": ["group"],
            "metrics": {"accuracy": {"min": 0.5, "max_drop": 0.05}, "f1": {"max_drop": 0.05}}}
    out = run(write(tmp_path, frame(seed=8), spec))
    family = [r for r in out.values() if "max_drop" in r.id]
    assert len(family) == 6 and all(r.details["family_size"] == 6 for r in family)
    levels = sorted(r.adjusted_confidence for r in family)
    want = {"none": [0.95] * 6, "bonferroni": [1 - 0.05 / 6] * 6,
            "holm": sorted(1 - 0.05 / k for k in range(1, 7))}[correction]
    assert levels == pytest.approx(want)
    assert all(r.confidence == 0.95 for r in family)
    assert all(r.adjusted_confidence == 0.95 for r in out.values() if r.id.startswith("regression.accuracy.min"))


def test_severity_warn_turns_failures_into_warnings(tmp_path):
    df = frame(shift=-0.8, seed=9)
    out = run(write(tmp_path, df, {"metrics": {"f1": {"max_drop": 0.0, "severity": "warn"},
                                               "accuracy": {"max_drop": 0.0}}}))
    assert out["regression.f1.max_drop"].status is Status.WARN and not out["regression.f1.max_drop"].blocking
    assert out["regression.accuracy.max_drop"].status is Status.FAIL
    gate_warn = run(write(tmp_path, df, {"severity": "warn", "metrics": {
        "accuracy": {"max_drop": 0.0}, "f1": {"min": 0.0, "severity": "block"}}}))
    assert gate_warn["regression.accuracy.max_drop"].status is Status.WARN
    assert rg.declares_blocking({"metrics": {"f1": {"max_drop": 0.01}}})
    assert not rg.declares_blocking({"severity": "warn", "metrics": {"f1": {"max_drop": 0.01}}})
    assert rg.declares_blocking({"severity": "warn", "metrics": {"f1": {"max_drop": 0.01, "severity": "block"}}})


def test_the_section_is_parsed_once_per_run_into_a_frozen_plan(tmp_path, monkeypatch):
    from gates.runner import run_policy

    parsed = count_calls(monkeypatch, rg, "parse_plan")
    section = {"severity": "warn", "slices": ["group"], "metrics": {
        "accuracy": {"max_drop": 0.05, "min": 0.1, "severity": "block"}, "f1": {"max_drop": 0.05}}}
    policy = load_policy(write(tmp_path, frame(seed=4), section))
    result = run_policy(policy)
    assert len(parsed) == 1 and parsed[0][0] == policy.gates["regression"]
    plan = policy.plan("regression")
    assert [(m.name, m.thresholds, m.is_blocking) for m in plan.metrics] == [
        ("accuracy", (("max_drop", 0.05), ("min", 0.1)), True), ("f1", (("max_drop", 0.05),), False)]
    assert plan.settings.slicings == (("group",),) and plan.settings.severity == "warn"
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.metrics[0].is_blocking = False  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.settings = plan.settings  # type: ignore[misc]
    checks = {c.id: c for c in result.verdict.checks if c.gate == "regression"}
    assert checks["regression.accuracy.min[group=a]"].blocking and not checks["regression.f1.max_drop"].blocking
    # a mapping given to run directly is planned there, into the same results
    again = rg.GATE.run(EvalContext(policy), policy.gates["regression"])
    assert {r.id: r.observed for r in again} == {i: c.observed for i, c in checks.items()}


def test_results_are_deterministic(tmp_path):
    path = write(tmp_path, frame(seed=10), {"slices": ["group"], "metrics": {
        "f1": {"max_drop": 0.02}, "brier": {"max_drop": 0.01}, "average_precision": {"max_drop": 0.02}}})
    assert run(path) == run(path)


# ---------------------------------------------------------------------------------- other tasks


def test_multiclass_task(tmp_path):
    rng = np.random.default_rng(11)
    n, k = 2000, 3
    y = rng.integers(0, k, n)
    proba = rng.dirichlet(np.ones(k), n)
    proba[np.arange(n), y] += 0.6
    proba /= proba.sum(1, keepdims=True)
    df = pd.DataFrame({"label": y, **{f"p{j}": proba[:, j] for j in range(k)}, "base_pred": proba.argmax(1)})
    spec = {"metrics": {"f1_macro": {"min": 0.5}, "roc_auc_ovr": {"min": 0.6}, "log_loss": {"max": 2.0},
                        "accuracy": {"max_drop": 0.5}}}
    out = run(write(tmp_path, df, spec, task="multiclass_classification",
                    candidate={"scores": ["p0", "p1", "p2"]}, baseline={"predictions": "base_pred"}))
    assert out["regression.f1_macro.min"].observed == pytest.approx(
        skm.f1_score(y, proba.argmax(1), average="macro"), rel=1e-9)
    assert out["regression.roc_auc_ovr.min"].observed == pytest.approx(skm.roc_auc_score(y, proba, multi_class="ovr"))
    assert out["regression.log_loss.max"].observed == pytest.approx(skm.log_loss(y, proba))
    assert out["regression.accuracy.max_drop"].delta == pytest.approx(0.0, abs=1e-12)
    assert all(r.status is Status.PASS for r in out.values())


def test_regression_task(tmp_path):
    rng = np.random.default_rng(12)
    y = 10 + 3 * rng.normal(size=1500)
    df = pd.DataFrame({"label": y, "cand": y + rng.normal(size=1500), "base": y + 1.3 * rng.normal(size=1500)})
    out = run(write(tmp_path, df, {"metrics": {"rmse": {"max_drop": 0.0}, "r2": {"min": 0.5}, "mae": {"max": 5.0}}},
                    task="regression", candidate={"predictions": "cand"}, baseline={"predictions": "base"}))
    rmse = out["regression.rmse.max_drop"]
    assert rmse.observed == pytest.approx(skm.root_mean_squared_error(y, df.cand))
    assert rmse.status is Status.PASS and rmse.ci[1] < 0  # lower is better: the candidate's rmse is lower
    assert out["regression.r2.min"].observed == pytest.approx(skm.r2_score(y, df.cand))


# ---------------------------------------------------------------------------------- validation


def test_unknown_metric_names_the_known_ones_and_a_close_match(tmp_path):
    path = write(tmp_path, frame(n=50), {"metrics": {"roc_acu": {"min": 0.5}}})
    known = ", ".join(metric_names(BINARY))
    want = rg.MSG_UNKNOWN_METRIC.format(name="roc_acu", hint=" (did you mean 'roc_auc'?)", task=BINARY, known=known)
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if "roc_acu" in text)
    assert config_error(path) == f"gates.yaml:{line}: gates.regression.metrics.roc_acu: {want}"


def test_metric_of_another_task_is_rejected_with_its_variants(tmp_path):
    path = write(tmp_path, frame(n=50), {"metrics": {"f1": {"min": 0.5}}}, task="multiclass_classification")
    msg = config_error(path)
    assert "metric 'f1' is not defined for multiclass_classification (did you mean 'f1_macro' or 'f1_weighted'?)" in msg
    msg = config_error(write(tmp_path, frame(n=50), {"metrics": {"rmse": {"max": 1.0}}}))
    assert "metric 'rmse' is not defined for binary_classification" in msg


def test_churn_takes_only_max_and_min_must_not_exceed_max(tmp_path):
    msg = config_error(write(tmp_path, frame(n=50), {"metrics": {"churn": {"max_drop": 0.01}}}))
    assert msg.endswith(rg.MSG_CHURN_KINDS.format(kind="max_drop"))
    assert "gates.regression.metrics.churn.max_drop" in msg
    msg = config_error(write(tmp_path, frame(n=50), {"metrics": {"accuracy": {"min": 0.9, "max": 0.8}}}))
    assert msg.endswith(rg.MSG_MIN_ABOVE_MAX.format(lo=0.9, hi=0.8))


# ---------------------------------------------------------------------------------- the statistics core


def test_point_decisions_report_family_adjusted_levels(tmp_path):
    """multiple_testing adjusts under decision: point too; warn-only checks stay out of the family."""
    df = frame(shift=0.2)
    out = run(write(tmp_path, df, {"decision": "point", "multiple_testing": "bonferroni",
                                   "metrics": {"accuracy": {"max_drop": 0.05}, "f1": {"max_drop": 0.05},
                                               "brier": {"max_drop": 0.05},
                                               "precision": {"max_drop": 0.05, "severity": "warn"}}}))
    blocking = [out[f"regression.{m}.max_drop"] for m in ("accuracy", "f1", "brier")]
    for r in blocking:
        assert r.confidence == 0.95
        assert r.adjusted_confidence == pytest.approx(1 - 0.05 / 3)
        assert r.details["family_size"] == 3 and r.details["multiple_testing"] == "bonferroni"
    warn = out["regression.precision.max_drop"]
    assert warn.adjusted_confidence == pytest.approx(0.95)
    # the blocking intervals are the ones of a family without the warn-only check
    again = run(write(tmp_path, df, {"decision": "point", "multiple_testing": "bonferroni",
                                     "metrics": {"accuracy": {"max_drop": 0.05}, "f1": {"max_drop": 0.05},
                                                 "brier": {"max_drop": 0.05}}}))
    for r in blocking:
        assert again[r.id].ci == r.ci


def test_replicates_leave_fifty_beyond_each_end_of_the_adjusted_interval(tmp_path):
    df = frame(n=2000, shift=0.2)
    out = run(write(tmp_path, df, {"multiple_testing": "holm", "slices": ["group"], "min_slice_size": 100,
                                   "metrics": {"accuracy": {"max_drop": 0.05}, "brier": {"max_drop": 0.05}}}))
    relative = [r for r in out.values() if "max_drop" in r.threshold]
    assert len(relative) == 6
    assert max(r.adjusted_confidence for r in relative) == pytest.approx(1 - 0.05 / 6)  # Holm's first step
    assert min(r.adjusted_confidence for r in relative) == pytest.approx(0.95)         # and its last
    for r in relative:
        assert r.ci_method in ("bootstrap-multinomial", "bootstrap-rows")
        assert r.details["replicates"] == 12_000  # 100 / (0.05 / 6), above bootstrap: 400
        assert (1 - r.adjusted_confidence) / 2 * r.details["replicates"] >= 50 - 1e-9


def test_score_means_on_many_rows_use_the_paired_normal_interval(tmp_path):
    from scipy import stats

    df = frame(n=12_000, shift=0.1)
    out = run(write(tmp_path, df, {"multiple_testing": "none", "metrics": {"log_loss": {"max_drop": 0.05}}}))
    r = out["regression.log_loss.max_drop"]
    assert r.ci_method == "paired-normal" and "replicates" not in r.details
    y = df["label"].to_numpy()

    def loss(p):
        return -np.log(np.where(y == 1, p, 1 - p))

    d = loss(df["cand_score"].to_numpy()) - loss(df["base_score"].to_numpy())
    z = stats.norm.ppf(0.975)
    assert r.delta == pytest.approx(d.mean(), rel=1e-9)
    assert r.ci == pytest.approx((d.mean() - z * stats.sem(d), d.mean() + z * stats.sem(d)), rel=1e-6)


@pytest.mark.parametrize("value", ["north west", "a=b", "x&y", "[EU]", "Zürich", "🚀 launch", "semi;colon"])
def test_slice_values_of_any_text_make_typed_ids(tmp_path, value):
    from gates.reporters.json_report import check_to_dict

    df = frame(n=1200)
    df["region"] = np.where(df["region"] == "north", value, df["region"])
    out = run(write(tmp_path, df, {"slices": ["region"], "min_slice_size": 10,
                                   "metrics": {"accuracy": {"max_drop": 0.05}}}))
    scoped = [r for r in out.values() if r.check_id.scope == f"region={value}"]
    assert len(scoped) == 1
    r = scoped[0]
    assert r.id == f"regression.accuracy.max_drop[region={value}]"
    assert (r.check_id.gate, r.check_id.name, r.check_id.kind) == ("regression", "accuracy", "max_drop")
    entry = check_to_dict(r)
    assert (entry["name"], entry["kind"], entry["scope"]) == ("accuracy", "max_drop", f"region={value}")


def test_a_line_break_and_a_literal_backslash_n_get_two_ids_and_a_waiver_names_one(tmp_path):
    # the id escapes the backslash too, so the two values stay apart and one waiver waives one check
    from gates.runner import run_policy

    df = frame(seed=5)
    df["region"] = np.where(df["region"] == "north", "north\nwest", np.where(df["region"] == "south", "north\\nwest",
                                                                            "east"))
    path = write(tmp_path, df, {"slices": ["region"], "metrics": {"accuracy": {"min": 1.0}}})  # both fail
    df.to_parquet(tmp_path / "eval.parquet", index=False)
    text = path.read_text().replace("eval.csv", "eval.parquet")
    broken, literal = "regression.accuracy.min[region=north\\nwest]", "regression.accuracy.min[region=north\\\\nwest]"
    path.write_text(text + f"waivers:\n  - {{check: '{broken}', reason: relabelled, expires: 2999-01-01}}\n")
    checks = {c.id: c for c in run_policy(load_policy(path)).verdict.checks}
    assert checks[broken].status is Status.WAIVED and checks[literal].status is Status.FAIL
    assert (checks[broken].key.scope, checks[literal].key.scope) == ("region=north\nwest", "region=north\\nwest")
    for cid, value in ((broken, "north\nwest"), (literal, "north\\nwest")):
        assert checks[cid].details["slice"] == {"region": value}
        assert checks[cid].details["rows"] == int((df["region"] == value).sum())
    assert not [i for i in checks if "duplicate_id" in i]


def test_two_slices_that_join_into_one_scope_block_the_verdict_and_no_waiver_hides_them(tmp_path):
    # region 'a&group=b' alone and region 'a' with group 'b' both write region=a&group=b: refused
    from gates.runner import MSG_DUPLICATE_ID, run_policy

    df = frame(seed=5)
    df["region"] = np.where(df["region"] == "north", "a&group=b", np.where(df["region"] == "south", "a", "east"))
    path = write(tmp_path, df, {"slices": ["region", ["region", "group"]], "metrics": {"accuracy": {"min": 1.0}}})
    cid = "regression.accuracy.min[region=a&group=b]"
    text = path.read_text()
    path.write_text(text + f"waivers:\n  - {{check: '{cid}', reason: hide it, expires: 2999-01-01}}\n")
    result = run_policy(load_policy(path))
    same = [c for c in result.verdict.checks if c.id == cid]
    assert len(same) == 2 and {c.status for c in same} == {Status.WAIVED}
    (dup,) = [c for c in result.verdict.checks if c.id == f"regression.duplicate_id[{cid}]"]
    assert dup.status is Status.ERROR and dup.blocking and dup.message == MSG_DUPLICATE_ID.format(n=2, id=cid)
    assert result.verdict.value == "fail"
    df.assign(region=df["region"].str.replace("&", "+", regex=False)).to_csv(tmp_path / "eval.csv", index=False)
    assert not [c for c in run_policy(load_policy(path)).verdict.checks if "duplicate_id" in c.id]
