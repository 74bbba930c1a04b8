"""The fairness gate: numbers equal fairlearn's, small groups are honest, intervals are calibrated.

Reference numbers come from fairlearn itself (MetricFrame and its disparity functions, version
0.15) and from the doctest cases of ``shared/reference/fairlearn-cases.json``; real data is the
Toronto marijuana-arrests data set (``sklego.datasets.load_arrests``: released, colour, sex),
Palmer penguins (multiclass, sex) and sklearn's diabetes data (regression, sex and age).
"""
from __future__ import annotations

import dataclasses
import functools
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from fairlearn import metrics as flm
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    f1_score,
    log_loss,
    mean_absolute_error,
    precision_score,
    r2_score,
    recall_score,
    roc_auc_score,
)
from sklearn.tree import DecisionTreeClassifier

from gates.checks import GateSetup
from gates.checks import fairness as fx
from gates.checks.fairness import eval_data
from gates.config import load_policy
from gates.context import EvalContext, Predictions, make_rng
from gates.errors import UserError
from gates.results import Status
from tests.conftest import count_calls, trusted_types_for

CASES_FILE = (Path(__file__).resolve().parents[3] / ".." / "shared" / "reference" / "fairlearn-cases.json").resolve()
TOL = 1e-12


def case(case_id: str) -> dict[str, Any]:
    """Return one of fairlearn's cited cases; skip when the shared reference folder is not beside the project."""
    if not CASES_FILE.exists():
        pytest.skip(f"the fairlearn reference cases are not beside the project ({CASES_FILE} is missing)")
    return next(c for c in json.loads(CASES_FILE.read_text())["cases"] if c["id"] == case_id)


# ---------------------------------------------------------------- helpers


def write_policy(tmp: Path, frame: pd.DataFrame, fairness: str, *, task: str = "binary_classification",
                 candidate: str = "{predictions: cand_pred}", baseline: str = "{predictions: base_pred}",
                 target: str = "label", sensitive: tuple[str, ...] = ("sex",), positive_label: Any = 1,
                 features: tuple[str, ...] = ()) -> Path:
    """Write eval.csv and a gates.yaml whose only gate is the given fairness section."""
    frame.to_csv(tmp / "eval.csv", index=False)
    pos = "" if task != "binary_classification" else f"\n  positive_label: {json.dumps(positive_label)}"
    feats = f"\n  features: {json.dumps(list(features))}" if features else ""
    trust = trusted_types_for(tmp / candidate, tmp / baseline)
    pos += f"\n  {trust}" if trust else ""
    text = f"""\
version: 1
model:
  name: fair
  task: {task}
  candidate: {candidate}
  baseline: {baseline}{pos}
data:
  eval: eval.csv
  target: {target}
  sensitive: {json.dumps(list(sensitive))}{feats}
seed: 11
gates:
  fairness:
{textwrap.indent(textwrap.dedent(fairness), "    ")}"""
    path = tmp / "gates.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def run_gate(path: Path, **ctx_attrs: Any) -> dict[str, Any]:
    """Load the policy, run the fairness gate, return its results by id."""
    policy = load_policy(path)
    ctx = EvalContext(policy)
    for key, value in ctx_attrs.items():
        setattr(ctx, key, value)
    return {r.id: r for r in fx.GATE.run(ctx, policy.plan("fairness"))}


def group_of(result: Any, **key: Any) -> dict[str, Any]:
    return next(g for g in result.details["groups"] if g["group"] == key)


def assess_arrays(y: np.ndarray, cand: np.ndarray, base: np.ndarray | None, groups: dict[str, Any],
                  spec: dict[str, Any], *, seed: int = 1, task: str = "binary_classification",
                  positive_label: Any = 1, **kw: Any) -> dict[str, Any]:
    """Run the gate's core on arrays (no files), as the calibration loops need."""
    frame = pd.DataFrame(groups)
    classes = None if task == "regression" else tuple(sorted(pd.unique(np.asarray(y)).tolist()))
    data = eval_data(task, np.asarray(y), Predictions(np.asarray(cand), None),
                     None if base is None else Predictions(np.asarray(base), None), positive_label, classes)
    kw.setdefault("sensitive", list(groups))
    results = fx.assess(frame, data, spec, lambda *n: make_rng(seed, *n), **kw)
    return {r.id: r for r in results}


EXACT = {"min_group_size": 1, "min_positives": 0}


# ---------------------------------------------------------------- fairlearn's own cases


def test_docs_case_single_feature_matches_fairlearn_numbers():
    c = case("A_docs_single_feature")
    inp, exp = c["inputs"], c["expected"]
    y, p = np.array(inp["y_true"]), np.array(inp["y_pred"])
    spec = {**EXACT, "metrics": {
        "demographic_parity_difference": {"max": 1}, "demographic_parity_ratio": {"min": 0},
        "equalized_odds_difference": {"max": 1}, "equalized_odds_ratio": {"min": 0},
        "tpr_difference": {"max": 1, "method": "to_overall"}, "tpr_ratio": {"min": 0, "method": "to_overall"},
        "fpr_difference": {"max": 1, "method": "to_overall"}, "selection_rate_ratio": {"min": 0, "method": "to_overall"},
        "count_ratio": {"min": 0},
    }}
    res = assess_arrays(y, p, None, inp["sensitive_features"], spec)
    tol = c["tolerance"]
    for name in ("demographic_parity_difference", "equalized_odds_difference"):
        assert res[f"fairness.{name}.max[sf]"].observed == pytest.approx(exp[name], abs=tol)
    for name in ("demographic_parity_ratio", "equalized_odds_ratio"):
        assert res[f"fairness.{name}.min[sf]"].observed == pytest.approx(exp[name], abs=tol)
    assert res["fairness.tpr_difference.max[sf]"].observed == pytest.approx(exp["difference_to_overall"]["tpr"], abs=tol)
    assert res["fairness.tpr_ratio.min[sf]"].observed == pytest.approx(exp["ratio_to_overall"]["tpr"], abs=tol)
    assert res["fairness.fpr_difference.max[sf]"].observed == pytest.approx(exp["difference_to_overall"]["fpr"], abs=tol)
    assert res["fairness.selection_rate_ratio.min[sf]"].observed == pytest.approx(
        exp["ratio_to_overall"]["selection_rate"], abs=tol)
    assert res["fairness.count_ratio.min[sf]"].observed == pytest.approx(exp["ratio_between_groups"]["count"], abs=tol)
    eo = res["fairness.equalized_odds_difference.max[sf]"]
    for label, want in exp["by_group"].items():
        got = group_of(eo, sf=label)
        assert got["size"] == want["count"]
        for rate in ("tpr", "fpr", "selection_rate"):
            assert got["metrics"][rate] == pytest.approx(want[rate], abs=tol)
    assert eo.details["overall"]["tpr"] == pytest.approx(exp["overall"]["tpr"], abs=tol)


def test_docs_case_intersection_matches_fairlearn_numbers():
    c = case("B_docs_intersection_two_features")
    inp, exp, derived = c["inputs"], c["expected"], c["derived_here"]
    y, p = np.array(inp["y_true"]), np.array(inp["y_pred"])
    spec = {**EXACT, "groups": [["SF 0", "SF 1"]], "metrics": {
        "demographic_parity_difference": {"max": 1}, "demographic_parity_ratio": {"min": 0},
        "equalized_odds_difference": {"max": 1}, "equalized_odds_ratio": {"min": 0},
        "precision_difference": {"max": 1}}}
    res = assess_arrays(y, p, None, inp["sensitive_features"], spec)
    scope = "SF 0&SF 1"
    assert res[f"fairness.demographic_parity_difference.max[{scope}]"].observed == pytest.approx(
        derived["demographic_parity_difference"], abs=1e-12)
    assert res[f"fairness.demographic_parity_ratio.min[{scope}]"].observed == pytest.approx(
        derived["demographic_parity_ratio"], abs=1e-12)
    assert res[f"fairness.equalized_odds_difference.max[{scope}]"].observed == derived["equalized_odds_difference"]
    assert res[f"fairness.equalized_odds_ratio.min[{scope}]"].observed == derived["equalized_odds_ratio"]
    prec = res[f"fairness.precision_difference.max[{scope}]"]
    for key, want in exp["by_group"].items():
        a, b = key.split("|")
        got = group_of(prec, **{"SF 0": a, "SF 1": int(b)})
        assert got["size"] == want["count"]
        assert got["metrics"]["precision"] == pytest.approx(want["precision"], abs=1e-6)
        assert got["metrics"]["tpr"] == pytest.approx(want["recall"], abs=1e-6)
        assert got["metrics"]["selection_rate"] == pytest.approx(derived["selection_rate_by_group"][key], abs=1e-12)


def test_metricframe_docstring_case():
    c = case("D_metricframe_docstring")
    inp, exp = c["inputs"], c["expected"]
    spec = {**EXACT, "metrics": {"accuracy_difference": {"max": 1}, "accuracy_ratio": {"min": 0},
                                 "selection_rate_difference": {"max": 1}, "selection_rate_ratio": {"min": 0}}}
    res = assess_arrays(np.array(inp["y_true"]), np.array(inp["y_pred"]), None, inp["sensitive_features"], spec)
    for rate in ("accuracy", "selection_rate"):
        assert res[f"fairness.{rate}_difference.max[sex]"].observed == pytest.approx(exp["difference"][rate], abs=TOL)
        assert res[f"fairness.{rate}_ratio.min[sex]"].observed == pytest.approx(exp["ratio"][rate], abs=TOL)
        for label, want in exp["by_group"].items():
            assert group_of(res[f"fairness.{rate}_ratio.min[sex]"], sex=label)["metrics"][rate] == pytest.approx(
                want[rate], abs=TOL)


# ---------------------------------------------------------------- real data, through the whole gate


@pytest.fixture(scope="module")
def arrests(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """Toronto arrests: two real models on non-sensitive features, saved as .skops files."""
    from sklego.datasets import load_arrests

    df = load_arrests(as_frame=True)
    df["employed"] = (df["employed"] == "Yes").astype(int)
    df["citizen"] = (df["citizen"] == "Yes").astype(int)
    df["age_band"] = pd.cut(df["age"], [0, 18, 25, 40, 100], labels=["<18", "18-25", "25-40", "40+"]).astype(str)
    features = ["year", "age", "employed", "citizen", "checks"]
    folder = tmp_path_factory.mktemp("arrests")
    train = df.sample(frac=0.5, random_state=0)
    evald = df.drop(train.index).reset_index(drop=True)
    cand = LogisticRegression(max_iter=1000).fit(train[features], train["released"])
    base = DecisionTreeClassifier(max_depth=3, random_state=0).fit(train[features], train["released"])
    sio.dump(cand, folder / "cand.skops")
    sio.dump(base, folder / "base.skops")
    evald["cand_score"] = cand.predict_proba(evald[features])[:, 1]
    evald["cand_pred"] = np.where(evald["cand_score"] >= 0.5, "Yes", "No")
    return folder, evald


def arrest_policy(folder: Path, frame: pd.DataFrame, fairness: str, **kw: Any) -> Path:
    kw.setdefault("candidate", "cand.skops")
    kw.setdefault("baseline", "base.skops")
    return write_policy(folder, frame, fairness, target="released", positive_label="Yes",
                        sensitive=("colour", "sex", "age_band"),
                        features=("year", "age", "employed", "citizen", "checks"), **kw)


RATE_FNS = {
    "selection_rate": flm.selection_rate, "tpr": flm.true_positive_rate, "fpr": flm.false_positive_rate,
    "fnr": flm.false_negative_rate, "tnr": flm.true_negative_rate,
}


def fairlearn_frame(y: np.ndarray, pred: np.ndarray, sf: pd.DataFrame, pos: Any) -> flm.MetricFrame:
    fns = {name: functools.partial(fn, pos_label=pos) for name, fn in RATE_FNS.items()}
    fns["precision"] = functools.partial(precision_score, pos_label=pos, zero_division=np.nan)
    fns["accuracy"] = accuracy_score
    fns["f1"] = functools.partial(f1_score, pos_label=pos)
    return flm.MetricFrame(metrics=fns, y_true=y, y_pred=pred, sensitive_features=sf)


def test_real_data_group_metrics_and_disparities_equal_fairlearn(arrests):
    folder, frame = arrests
    metrics = "\n".join(f"          {r}_difference: {{max: 1.0}}" for r in ("fnr", "tnr", "precision", "accuracy", "f1"))
    path = arrest_policy(folder, frame, f"""\
        min_group_size: 1
        min_positives: 0
        bootstrap: 200
        groups: [colour, sex, [colour, sex], [colour, sex, age_band]]
        metrics:
          demographic_parity_difference: {{max: 1.0}}
          demographic_parity_ratio: {{min: 0.0}}
          equalized_odds_difference: {{max: 1.0}}
          equalized_odds_ratio: {{min: 0.0, agg: mean}}
          equal_opportunity_difference: {{max: 1.0, method: to_overall}}
          equal_opportunity_ratio: {{min: 0.0, method: to_overall}}
{metrics}""")
    res = run_gate(path)
    policy = load_policy(path)
    ctx = EvalContext(policy)
    y, pred = ctx.y_true, ctx.predictions("candidate").labels
    model = ctx.candidate_model.estimator  # the sensitive columns were never model inputs
    assert list(model.feature_names_in_) == ["year", "age", "employed", "citizen", "checks"]
    assert np.mean(model.predict(frame[list(model.feature_names_in_)]) == pred) > 0.999
    for cols in (["colour"], ["sex"], ["colour", "sex"], ["colour", "sex", "age_band"]):
        scope = "&".join(cols)
        sf = frame[cols]
        mf = fairlearn_frame(y, pred, sf, "Yes")
        by_group = defined_only(mf.by_group, y, sf)
        if scope == "colour&sex":  # every rate defined in every group: fairlearn's own functions too
            assert by_group.equals(mf.by_group)
            assert_named_disparities(res, scope, y, pred, sf, mf)
        for rate in ("fnr", "tnr", "precision", "accuracy", "f1"):
            want = (by_group[rate].max() - by_group[rate].min())
            assert res[f"fairness.{rate}_difference.max[{scope}]"].observed == pytest.approx(want, abs=TOL)
        eo = res[f"fairness.equalized_odds_difference.max[{scope}]"].observed
        assert eo == pytest.approx(max(by_group[r].max() - by_group[r].min() for r in ("tpr", "fpr")), abs=TOL)
        check = res[f"fairness.precision_difference.max[{scope}]"]
        sizes = sf.groupby(cols).size()
        assert len(check.details["groups"]) == len(sizes) == len(mf.by_group.dropna(how="all"))
        for g in check.details["groups"]:
            key = tuple(g["group"][c] for c in cols)
            row = by_group.loc[key if len(cols) > 1 else key[0]]
            for rate in ("precision", "selection_rate", "tpr", "fpr"):
                if np.isnan(row[rate]):
                    assert g["metrics"][rate] is None, (scope, key, rate)  # fairlearn says 0 here
                else:
                    assert g["metrics"][rate] == pytest.approx(row[rate], abs=TOL), (scope, key, rate)
            assert g["size"] == sizes.loc[key if len(cols) > 1 else key[0]]


def defined_only(by_group: pd.DataFrame, y: np.ndarray, sf: pd.DataFrame) -> pd.DataFrame:
    """Return fairlearn's by_group with rates over an empty denominator set to NaN.

    fairlearn reports tpr = 0 for a group without positives (sklearn's normalised confusion
    matrix); the gate reports it as undefined, so comparisons mask those cells.
    """
    counts = pd.DataFrame({"pos": (y == "Yes").astype(int), "neg": (y != "Yes").astype(int)},
                          index=pd.MultiIndex.from_frame(sf) if sf.shape[1] > 1 else pd.Index(sf.iloc[:, 0]))
    per = counts.groupby(level=list(range(sf.shape[1]))).sum().reindex(by_group.index)
    out = by_group.copy()
    for rate in ("tpr", "fnr", "f1"):
        out.loc[per["pos"].to_numpy() == 0, rate] = np.nan
    for rate in ("fpr", "tnr"):
        out.loc[per["neg"].to_numpy() == 0, rate] = np.nan
    return out.dropna(how="all")


def assert_named_disparities(res: dict[str, Any], scope: str, y: np.ndarray, pred: np.ndarray,
                             sf: pd.DataFrame, mf: flm.MetricFrame) -> None:
    yb, pb = (y == "Yes").astype(int), (pred == "Yes").astype(int)
    named = {
        "demographic_parity_difference.max": flm.demographic_parity_difference,
        "demographic_parity_ratio.min": flm.demographic_parity_ratio,
        "equalized_odds_difference.max": flm.equalized_odds_difference,
    }
    for key, fn in named.items():
        assert res[f"fairness.{key}[{scope}]"].observed == pytest.approx(fn(yb, pb, sensitive_features=sf), abs=TOL)
    assert res[f"fairness.equalized_odds_ratio.min[{scope}]"].observed == pytest.approx(
        flm.equalized_odds_ratio(yb, pb, sensitive_features=sf, agg="mean"), abs=TOL)
    assert res[f"fairness.equal_opportunity_difference.max[{scope}]"].observed == pytest.approx(
        flm.equal_opportunity_difference(yb, pb, sensitive_features=sf, method="to_overall"), abs=TOL)
    assert res[f"fairness.equal_opportunity_ratio.min[{scope}]"].observed == pytest.approx(
        flm.equal_opportunity_ratio(yb, pb, sensitive_features=sf, method="to_overall"), abs=TOL)
    for rate in ("fnr", "tnr", "precision", "accuracy", "f1"):
        assert res[f"fairness.{rate}_difference.max[{scope}]"].observed == pytest.approx(mf.difference()[rate], abs=TOL)


def test_real_data_prediction_columns_and_no_worse_than_baseline(arrests):
    folder, frame = arrests
    frame = frame.assign(base_pred=np.where(frame["cand_score"] >= 0.6, "Yes", "No"))
    path = arrest_policy(folder, frame, """\
        groups: [colour]
        metrics:
          equalized_odds_difference: {no_worse_than_baseline: true, margin: 0.05}
          demographic_parity_ratio: {min: 0.8}""",
        candidate="{predictions: cand_pred, scores: cand_score}", baseline="{predictions: base_pred}")
    res = run_gate(path)
    r = res["fairness.equalized_odds_difference.no_worse_than_baseline[colour]"]
    yb = (frame["released"] == "Yes").astype(int)
    cand = flm.equalized_odds_difference(yb, (frame["cand_pred"] == "Yes").astype(int),
                                         sensitive_features=frame["colour"])
    base = flm.equalized_odds_difference(yb, (frame["base_pred"] == "Yes").astype(int),
                                         sensitive_features=frame["colour"])
    assert r.observed == pytest.approx(cand, abs=TOL)
    assert r.baseline == pytest.approx(base, abs=TOL)
    assert r.delta == pytest.approx(cand - base, abs=TOL)
    assert r.ci[0] <= r.delta <= r.ci[1]
    assert r.ci_method == "bootstrap-multinomial-hull"
    assert r.threshold == {"no_worse_than_baseline": True, "margin": 0.05}
    assert r.adjusted_confidence >= r.confidence == 0.95
    assert r.half_width == pytest.approx((r.ci[1] - r.ci[0]) / 2)
    assert r.status in (Status.PASS, Status.FAIL, Status.INCONCLUSIVE)


# ---------------------------------------------------------------- small groups and undefined rates


def test_small_group_is_reported_and_excluded_never_dropped(arrests):
    folder, frame = arrests
    path = arrest_policy(folder, frame, """\
        min_group_size: 150
        min_positives: 0
        decision: point
        groups: [[colour, sex]]
        metrics:
          demographic_parity_difference: {max: 1.0}""")
    r = run_gate(path)["fairness.demographic_parity_difference.max[colour&sex]"]
    sizes = frame.groupby(["colour", "sex"]).size()
    small = sizes[sizes < 150]
    assert len(small) >= 1
    assert len(r.details["groups"]) == len(sizes)  # every group listed
    assert r.details["excluded_groups"] == len(small)
    for (colour, sex), n in small.items():
        g = group_of(r, colour=colour, sex=sex)
        assert g["size"] == n
        assert g["excluded"] == fx.REASON_SIZE.format(size=n, min=150)
        assert g["metrics"]["selection_rate"] is not None  # still reported
    assert [g["excluded"] is not False for g in r.details["groups"]][-len(small):] == [True] * len(small)
    kept = sizes[sizes >= 150].index
    rows = frame.set_index(["colour", "sex"]).index.isin(kept)
    expected = flm.demographic_parity_difference(
        (frame["released"][rows] == "Yes").astype(int), (frame["cand_pred"][rows] == "Yes").astype(int),
        sensitive_features=frame.loc[rows, ["colour", "sex"]])
    assert r.observed == pytest.approx(expected, abs=TOL)
    assert "left out" in r.message and "min_group_size 150" in r.message


def no_positive_group_data(n: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    rng = np.random.default_rng(seed)
    group = np.array(["a", "b", "c"])[rng.integers(0, 3, n)]
    y = np.where(group == "c", 0, rng.integers(0, 2, n))
    pred = np.where(rng.random(n) < 0.8, y, 1 - y)
    return y, pred, {"g": group}


def test_group_without_positives_has_undefined_tpr_and_the_check_says_so():
    y, pred, groups = no_positive_group_data()
    res = assess_arrays(y, pred, None, groups, {"min_positives": 0, "metrics": {
        "equal_opportunity_difference": {"max": 1.0}, "equalized_odds_difference": {"max": 1.0}}})
    r = res["fairness.equal_opportunity_difference.max[g]"]
    c = group_of(r, g="c")
    assert c["positives"] == 0
    assert c["metrics"]["tpr"] is None  # undefined, not 0
    assert c["excluded"] == fx.REASON_UNDEFINED.format(rate="tpr", needs="positives")
    assert "tpr undefined: no positives" in r.message
    yb = y[groups["g"] != "c"]
    pb = pred[groups["g"] != "c"]
    assert r.observed == pytest.approx(flm.equal_opportunity_difference(
        yb, pb, sensitive_features=groups["g"][groups["g"] != "c"]), abs=TOL)
    eo = res["fairness.equalized_odds_difference.max[g]"]
    c = group_of(eo, g="c")
    assert c["metrics"]["fpr"] is not None and c["metrics"]["tpr"] is None
    # group c still counts for fpr: the fpr part equals fairlearn's over all groups
    fpr_part = flm.MetricFrame(metrics=flm.false_positive_rate, y_true=y, y_pred=pred,
                               sensitive_features=groups["g"]).difference()
    assert eo.observed >= fpr_part - TOL


def test_too_few_eligible_groups_is_an_error_not_a_pass():
    y, pred, groups = no_positive_group_data()
    keep = groups["g"] != "a"
    res = assess_arrays(y[keep], pred[keep], None, {"g": groups["g"][keep]},
                        {"min_positives": 0, "metrics": {"tpr_difference": {"max": 1.0}}})
    r = res["fairness.tpr_difference.max[g]"]
    assert r.status is Status.ERROR and r.reason == "undefined"
    assert fx.MSG_WHY_FEW.format(count=1, rate="tpr", need=2) in r.message


def test_min_positives_excludes_rates_with_small_denominators():
    rng = np.random.default_rng(3)
    n = 2000
    group = np.where(rng.random(n) < 0.5, "a", "b")
    y = np.where(group == "b", (rng.random(n) < 0.004).astype(int), rng.integers(0, 2, n))
    group[:3] = "b"
    y[:3] = 1
    pred = np.where(rng.random(n) < 0.9, y, 1 - y)
    res = assess_arrays(y, pred, None, {"g": group}, {"min_positives": 10, "metrics": {
        "tpr_difference": {"max": 0.5}, "fpr_difference": {"max": 0.5}}})
    b_pos = int(((group == "b") & (y == 1)).sum())
    assert 0 < b_pos < 10
    tpr = res["fairness.tpr_difference.max[g]"]
    assert group_of(tpr, g="b")["excluded"] == fx.REASON_SUPPORT.format(
        rate="tpr", support=b_pos, needs="positives", min=10)
    assert tpr.status is Status.ERROR  # one group left: no disparity to measure
    fpr = res["fairness.fpr_difference.max[g]"]
    assert group_of(fpr, g="b")["excluded"] is False and fpr.status is not Status.ERROR


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gates", *args], cwd=cwd, check=False, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "CI": "true"})


def test_missing_group_column_is_a_config_error_exit_2_one_line_no_report(tmp_path):
    frame = pd.DataFrame({"label": [0, 1] * 50, "cand_pred": [0, 1] * 50, "base_pred": [1, 1] * 50,
                          "sex": ["F", "M"] * 50})
    path = write_policy(tmp_path, frame, """\
        groups: [sexx]
        metrics:
          demographic_parity_difference: {max: 0.1}""")
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if "groups: [sexx]" in text)
    text = "column 'sexx' is not in the eval data (eval.csv) (did you mean 'sex'?)"  # checked when the data loads
    with pytest.raises(UserError) as err:
        run_gate(path)
    assert str(err.value) == f"gates.yaml:{line}: gates.fairness.groups[0]: {text}"
    res = cli("run", "-c", str(path), "--no-register", cwd=tmp_path)
    assert res.returncode == 2, res.stdout + res.stderr
    lines = res.stderr.strip().splitlines()
    assert lines == [f"model-gates: error: gates.yaml:{line}: gates.fairness.groups[0]: {text}"]
    assert not (tmp_path / "model-gates-report").exists()


def test_missing_sensitive_column_of_default_groupings_points_at_data_sensitive():
    frame = pd.DataFrame({"sex": ["F", "M"] * 50})
    found = fx.missing_grouping(frame, {"metrics": {}}, ["sex", "race"])
    assert found == (("data", "sensitive"), fx.MSG_MISSING_COLUMN.format(col="race", hint=""))
    intersection = fx.missing_grouping(frame, {"groups": ["sex", ["sex", "rase"]]}, [])
    assert intersection is not None and intersection[0] == ("gates", "fairness", "groups", 1)
    y = np.array([0, 1] * 50)
    with pytest.raises(UserError, match=r"^data\.sensitive: grouping column 'race'"):
        assess_arrays(y, y, None, {"sex": frame["sex"]}, {"metrics": {"tpr_difference": {"max": 0.1}}},
                      sensitive=["sex", "race"])


# ---------------------------------------------------------------- worst first, details, determinism


def test_groups_are_listed_worst_first_with_the_fields_the_report_needs(arrests):
    folder, frame = arrests
    path = arrest_policy(folder, frame, """\
        min_group_size: 100
        groups: [age_band]
        metrics:
          demographic_parity_difference: {max: 0.0}""")
    r = run_gate(path)["fairness.demographic_parity_difference.max[age_band]"]
    assert r.status is Status.FAIL
    groups = r.details["groups"]
    overall = r.details["overall"]["selection_rate"]
    included = [g for g in groups if not g["excluded"]]
    devs = [abs(g["metrics"]["selection_rate"] - overall) for g in included]
    assert devs == sorted(devs, reverse=True)
    assert groups[: len(included)] == included
    assert r.details["metrics_involved"] == ["selection_rate"]
    for g in groups:
        assert set(g) >= {"group", "size", "positives", "metrics", "excluded"}
        assert set(g["metrics"]) == {"selection_rate", "tpr", "fpr"}
    json.dumps(r.details)  # JSON-able as it stands


def test_same_seed_same_results_and_checks_do_not_disturb_each_other():
    y, pred, groups = no_positive_group_data(seed=4)
    base = np.where(np.random.default_rng(9).random(y.size) < 0.1, 1 - pred, pred)
    one = {"min_positives": 0, "multiple_testing": "none",
           "metrics": {"fpr_difference": {"no_worse_than_baseline": True}}}
    two = {**one, "metrics": {**one["metrics"], "selection_rate_ratio": {"min": 0.5}}}
    a = assess_arrays(y, pred, base, groups, one)
    b = assess_arrays(y, pred, base, groups, one)
    c = assess_arrays(y, pred, base, groups, two)
    cid = "fairness.fpr_difference.no_worse_than_baseline[g]"
    assert a[cid] == b[cid]
    assert a[cid].ci == c[cid].ci


# ---------------------------------------------------------------- intervals and decisions


def test_bootstrap_spread_matches_a_slow_row_bootstrap():
    rng = np.random.default_rng(5)
    n = 3000
    group = np.where(rng.random(n) < 0.3, "a", "b")
    y = rng.integers(0, 2, n)
    cand = np.where(rng.random(n) < np.where(group == "a", 0.75, 0.85), y, 1 - y)
    base = np.where(rng.random(n) < 0.2, 1 - cand, cand)
    res = assess_arrays(y, cand, base, {"g": group}, {"bootstrap": 2000, "multiple_testing": "none",
                        "metrics": {"equalized_odds_difference": {"no_worse_than_baseline": True, "max": 1}}})
    r = res["fairness.equalized_odds_difference.no_worse_than_baseline[g]"]
    assert eo_difference(y, cand, group) == pytest.approx(
        flm.equalized_odds_difference(y, cand, sensitive_features=group), abs=TOL)
    slow = []
    loop = np.random.default_rng(6)
    for _ in range(1000):  # resample rows, recompute both models' equalized odds with plain masks
        idx = loop.integers(0, n, n)
        slow.append(eo_difference(y[idx], cand[idx], group[idx]) - eo_difference(y[idx], base[idx], group[idx]))
    q_lo, q_hi = np.quantile(slow, [0.025, 0.975])
    delta = r.delta
    lo, hi = min(q_lo, 2 * delta - q_hi), max(q_hi, 2 * delta - q_lo)  # the hull of percentile and basic
    assert r.half_width == pytest.approx((hi - lo) / 2, rel=0.15)
    assert r.ci[0] == pytest.approx(lo, abs=0.02) and r.ci[1] == pytest.approx(hi, abs=0.02)


def eo_difference(y: np.ndarray, pred: np.ndarray, group: np.ndarray) -> float:
    """Equalized odds difference by plain masks (checked against fairlearn on the full data)."""
    parts = []
    for truth in (1, 0):
        rates = [pred[(group == g) & (y == truth)].mean() for g in np.unique(group)]
        parts.append(max(rates) - min(rates))
    return max(parts)


def simulate(seed: int, n: int, tpr_b_cand: float, tpr_b_base: float = 0.7) -> tuple[np.ndarray, ...]:
    """Two groups; both models have tpr 0.8 in group a; group b's tpr differs per model."""
    rng = np.random.default_rng(seed)
    group = np.where(rng.random(n) < 0.5, "a", "b")
    y = (rng.random(n) < 0.4).astype(int)
    u = rng.random(n)  # shared: the models err on the same hard rows, as real models do
    v = rng.random(n)

    def model(tpr_b: float, noise: np.ndarray) -> np.ndarray:
        tpr = np.where(group == "a", 0.8, tpr_b)
        hit = np.where(rng.random(n) < 0.5, u, noise) < tpr
        false_pos = np.where(rng.random(n) < 0.5, u, noise) < 0.1
        return np.where(y == 1, hit, false_pos).astype(int)

    return y, model(tpr_b_cand, v), model(tpr_b_base, rng.random(n)), group


def calibration_rates(tpr_b_cand: float, margin: float, seeds: range, n: int = 4000) -> dict[str, float]:
    spec = {"bootstrap": 500, "metrics": {"tpr_difference": {"no_worse_than_baseline": True, "margin": margin}}}
    statuses = []
    for seed in seeds:
        y, cand, base, group = simulate(seed, n, tpr_b_cand)
        r = assess_arrays(y, cand, base, {"g": group}, spec, seed=seed)
        statuses.append(r["fairness.tpr_difference.no_worse_than_baseline[g]"].status)
    return {s.value: statuses.count(s) / len(statuses) for s in (Status.PASS, Status.FAIL, Status.INCONCLUSIVE)}


def test_equal_disparity_rarely_fails_no_worse_than_baseline():
    rates = calibration_rates(0.7, margin=0.0, seeds=range(150))
    assert rates["fail"] <= 0.05  # confidently worse only by chance: one-sided 2.5%
    roomy = calibration_rates(0.7, margin=0.12, seeds=range(200, 260))
    assert roomy["pass"] >= 0.95  # with a margin the data can show, equal models pass


def test_no_worse_than_baseline_holds_its_level_at_the_margin():
    # the candidate's tpr gap is exactly the margin wider than the baseline's: pass <= alpha/2 (+ noise)
    rates = calibration_rates(0.65, margin=0.05, seeds=range(300, 450))
    assert rates["pass"] <= 0.06


def test_truly_worse_candidate_is_caught():
    rates = calibration_rates(0.45, margin=0.05, seeds=range(500, 560))
    assert rates["fail"] >= 0.9


def many_small_groups(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """12 teams of 40 rows: six select 12 rows, six select 13, so the observed gap is 1/40."""
    rng = np.random.default_rng(seed)
    group = np.repeat([f"t{i:02d}" for i in range(12)], 40)
    pred = np.concatenate([rng.permutation(np.r_[np.ones(12 + i // 6), np.zeros(28 - i // 6)]) for i in range(12)])
    return rng.integers(0, 2, group.size), pred.astype(int), group


def test_max_over_many_small_groups_has_an_interval_holding_its_point():
    # a max over groups of noisy rates is biased upward and its replicates more so: every
    # replicate exceeds the point, and a percentile interval would lie wholly above it
    y, pred, group = many_small_groups()
    res = assess_arrays(y, pred, None, {"team": group},
                        {"metrics": {"demographic_parity_difference": {"max": 0.2}}, **EXACT})
    r = res["fairness.demographic_parity_difference.max[team]"]
    t = flm.demographic_parity_difference(y, pred, sensitive_features=group)
    assert r.observed == pytest.approx(t, abs=TOL) and t == pytest.approx(1 / 40)
    slow = []
    loop = np.random.default_rng(3)
    for _ in range(1000):  # a plain row bootstrap of the largest gap of selection rates
        i = loop.integers(0, group.size, group.size)
        rates = [pred[i][group[i] == g].mean() for g in np.unique(group)]
        slow.append(max(rates) - min(rates))
    q_lo, q_hi = np.quantile(slow, [0.025, 0.975])
    assert q_lo > t  # the percentile interval [q_lo, q_hi] misses its point
    assert r.ci[0] <= r.observed <= r.ci[1]
    assert r.ci_method == "bootstrap-multinomial-hull"
    # the hull of [q_lo, q_hi] and the basic [2t - q_hi, 2t - q_lo], which lies below t: it spans both
    assert r.ci[0] == pytest.approx(max(2 * t - q_hi, 0.0), abs=0.02) and r.ci[1] == pytest.approx(q_hi, abs=0.02)
    assert r.status is Status.PASS and r.message.endswith(f"(interval [{r.ci[0]:.4g}, {r.ci[1]:.4g}])")


def coverage_sets(seeds: range, rates_c: np.ndarray, rates_b: np.ndarray | None, size: int
                  ) -> tuple[float, float]:
    """Return the share of data sets whose interval holds the true disparity (or change), and its point."""
    kind = "max" if rates_b is None else "no_worse_than_baseline"
    truth = float(np.ptp(rates_c)) - (0.0 if rates_b is None else float(np.ptp(rates_b)))
    covered = held = 0
    for seed in seeds:
        rng = np.random.default_rng(seed)
        group = np.repeat([f"g{i}" for i in range(len(rates_c))], size)
        u = rng.random(group.size)
        cand = (u < np.repeat(rates_c, size)).astype(int)
        base = None
        if rates_b is not None:
            v = np.where(rng.random(group.size) < 0.7, u, rng.random(group.size))
            base = (v < np.repeat(rates_b, size)).astype(int)
        spec = {"multiple_testing": "none", "metrics": {"demographic_parity_difference": {kind: True} if
                                                        rates_b is not None else {"max": 1.0}}, **EXACT}
        r = assess_arrays(rng.integers(0, 2, group.size), cand, base, {"g": group}, spec, seed=seed)
        r = r[f"fairness.demographic_parity_difference.{kind}[g]"]
        point = r.observed if rates_b is None else r.delta
        covered += r.ci[0] <= truth <= r.ci[1]
        held += r.ci[0] <= point <= r.ci[1]
    return covered / len(seeds), held / len(seeds)


def test_disparity_intervals_cover_the_true_disparity_of_small_groups():
    # 8 groups of 60 rows with selection rates 0.30-0.37: the observed max gap overshoots the true
    # 0.07 by about 0.12, so percentile intervals (above the point) covered it in 0 of 300 simulated
    # sets (bench/bench_fairness_coverage.py); the hull's basic end reflects that bias back
    covered, held = coverage_sets(range(100), np.linspace(0.30, 0.37, 8), None, 60)
    assert held == 1.0 and covered >= 0.8
    # paired changes of a disparity (no_worse_than_baseline): near nominal, and holding the point
    covered, held = coverage_sets(range(100, 200), np.linspace(0.30, 0.38, 8), np.linspace(0.30, 0.36, 8), 80)
    assert held == 1.0 and covered >= 0.85


def test_min_and_max_are_decided_on_the_point_estimate_even_when_the_interval_straddles():
    y, cand, _, group = simulate(1, 600, 0.7)
    diff_id, ratio_id = "fairness.tpr_difference.max[g]", "fairness.tpr_ratio.min[g]"
    first = assess_arrays(y, cand, None, {"g": group}, {"metrics": {"tpr_difference": {"max": 1.0},
                                                                    "tpr_ratio": {"min": 0.0}}})
    diff, ratio = first[diff_id], first[ratio_id]
    # bounds inside the interval: a compliant max (point below it), a violated min (point below it)
    max_b = diff.observed + diff.half_width / 2
    min_b = ratio.observed + ratio.half_width / 2
    metrics = {"tpr_difference": {"max": max_b}, "tpr_ratio": {"min": min_b}}
    for extra in ({}, {"decision": "point"}, {"on_inconclusive": "warn"}, {"multiple_testing": "bonferroni"}):
        res = assess_arrays(y, cand, None, {"g": group}, {"metrics": metrics, **extra})
        passed, failed = res[diff_id], res[ratio_id]
        assert passed.ci[0] < max_b < passed.ci[1] and failed.ci[0] < min_b < failed.ci[1]
        assert passed.status is Status.PASS and passed.reason == "within_threshold"
        assert failed.status is Status.FAIL and failed.reason == "threshold_breached"
        for r, first_r in ((passed, diff), (failed, ratio)):
            assert r.observed == first_r.observed and r.ci == first_r.ci  # nominal-level interval, reported only
            assert r.confidence == r.adjusted_confidence == 0.95 and r.details["decision"] == "point"
            assert r.half_width == pytest.approx((r.ci[1] - r.ci[0]) / 2)
        assert passed.message == fx.MSG_BOUND_PASS.format(
            what="tpr_difference over g", value=f"{diff.observed:.4g}", bound="max", limit=f"{max_b:.4g}",
            lo=f"{diff.ci[0]:.4g}", hi=f"{diff.ci[1]:.4g}")
        assert failed.message.startswith(f"tpr_ratio over g = {ratio.observed:.4g} breaks min {min_b:.4g} (interval [")
    warn = assess_arrays(y, cand, None, {"g": group}, {"severity": "warn", "metrics": metrics})
    assert warn[ratio_id].status is Status.WARN and warn[diff_id].status is Status.PASS


def test_multiple_testing_adjusts_levels_over_the_no_worse_than_baseline_checks_only():
    y, cand, base, group = simulate(2, 3000, 0.7)
    metrics = {"tpr_difference": {"max": 0.5, "no_worse_than_baseline": True, "margin": 0.2},
               "fpr_difference": {"max": 0.5, "no_worse_than_baseline": True, "margin": 0.2}}
    runs = {c: assess_arrays(y, cand, base, {"g": group}, {"metrics": metrics, "multiple_testing": c})
            for c in ("holm", "bonferroni", "none")}
    family = {c: [r for r in res.values() if "no_worse_than_baseline" in r.threshold] for c, res in runs.items()}
    bounds = {c: [r for r in res.values() if "max" in r.threshold] for c, res in runs.items()}
    assert sorted(r.adjusted_confidence for r in family["holm"]) == pytest.approx([0.95, 0.975])
    assert all(r.adjusted_confidence == pytest.approx(0.975) for r in family["bonferroni"])
    assert all(r.adjusted_confidence == 0.95 for r in family["none"])
    assert all(r.adjusted_confidence == r.confidence == 0.95 for rs in bounds.values() for r in rs)
    # bounds are reported at the nominal level; only the replicates (100 / (1 - L) at the family's
    # most adjusted level) move them, by Monte Carlo error
    assert [r.details["bootstrap"] for r in bounds["bonferroni"]] == [4000, 4000]
    assert [r.details["bootstrap"] for r in bounds["none"]] == [2000, 2000]
    for a, b in zip(bounds["bonferroni"], bounds["none"]):
        width = b.ci[1] - b.ci[0]
        assert a.ci == pytest.approx(b.ci, abs=0.05 * width)
    cid = "fairness.fpr_difference.no_worse_than_baseline[g]"
    assert runs["bonferroni"][cid].half_width > runs["none"][cid].half_width


def test_no_baseline_skips_and_require_baseline_fails(tmp_path):
    frame = pd.DataFrame({"label": [0, 1, 1, 0] * 50, "cand_pred": [0, 1, 0, 0] * 50,
                          "sex": ["F", "M", "M", "F", "F"] * 40})
    path = write_policy(tmp_path, frame, """\
        min_positives: 0
        metrics:
          tpr_difference: {max: 1.0, no_worse_than_baseline: true}""", baseline="none")
    res = run_gate(path)
    r = res["fairness.tpr_difference.no_worse_than_baseline[sex]"]
    assert r.status is Status.SKIPPED and r.message == fx.MSG_NO_BASELINE and r.reason == "no_baseline"
    assert res["fairness.tpr_difference.max[sex]"].status is Status.PASS
    strict = run_gate(path, require_baseline=True)["fairness.tpr_difference.no_worse_than_baseline[sex]"]
    assert strict.status is Status.FAIL and strict.message == fx.MSG_NO_BASELINE_REQUIRED


# ---------------------------------------------------------------- registry metrics, multiclass, regression


def test_registry_metrics_by_group_equal_sklearn_per_group(arrests):
    folder, frame = arrests
    path = arrest_policy(folder, frame, """\
        min_group_size: 1
        bootstrap: 100
        groups: [colour]
        metrics:
          roc_auc_difference: {max: 1.0}
          average_precision_difference: {max: 1.0}
          log_loss_ratio: {min: 0.0}
          balanced_accuracy_difference: {max: 1.0, method: to_overall}""",
        candidate="{predictions: cand_pred, scores: cand_score}", baseline="none")
    res = run_gate(path)
    y = frame["released"].to_numpy()
    per_group = {}
    for colour, part in frame.groupby("colour"):
        yt = part["released"].to_numpy()
        per_group[colour] = {
            "roc_auc": roc_auc_score(yt == "Yes", part["cand_score"]),
            "average_precision": average_precision_score(yt == "Yes", part["cand_score"]),
            "log_loss": log_loss(yt == "Yes", part["cand_score"]),
            "balanced_accuracy": balanced_accuracy_score(yt, part["cand_pred"]),
        }
    auc = res["fairness.roc_auc_difference.max[colour]"]
    assert auc.observed == pytest.approx(abs(per_group["Black"]["roc_auc"] - per_group["White"]["roc_auc"]), abs=1e-12)
    for g in auc.details["groups"]:
        assert g["metrics"]["roc_auc"] == pytest.approx(per_group[g["group"]["colour"]]["roc_auc"], abs=1e-12)
    ap = res["fairness.average_precision_difference.max[colour]"]
    assert ap.observed == pytest.approx(
        abs(per_group["Black"]["average_precision"] - per_group["White"]["average_precision"]), abs=1e-12)
    assert ap.ci[0] <= ap.observed <= ap.ci[1] and auc.ci[0] <= auc.observed <= auc.ci[1]
    assert group_of(auc, colour="Black")["excluded"] is False  # hundreds of positives and negatives
    ll = res["fairness.log_loss_ratio.min[colour]"]
    vals = [v["log_loss"] for v in per_group.values()]
    assert ll.observed == pytest.approx(min(vals) / max(vals), abs=1e-9)
    assert ll.ci_method == "bootstrap-rows-hull"
    ba = res["fairness.balanced_accuracy_difference.max[colour]"]
    overall = balanced_accuracy_score(y, frame["cand_pred"])
    assert ba.observed == pytest.approx(max(abs(v["balanced_accuracy"] - overall) for v in per_group.values()), abs=1e-12)


def test_multiclass_per_class_and_macro_rates_equal_fairlearn(tmp_path):
    from sklego.datasets import load_penguins

    df = load_penguins(as_frame=True).dropna().reset_index(drop=True)
    feats = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
    model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(df[feats].iloc[::2], df["species"].iloc[::2])
    df["cand_pred"] = model.predict(df[feats])
    base = DecisionTreeClassifier(max_depth=2, random_state=0).fit(df[feats[:2]], df["species"])
    df["base_pred"] = base.predict(df[feats[:2]])
    path = write_policy(tmp_path, df, """\
        min_group_size: 1
        min_positives: 0
        bootstrap: 200
        groups: [sex, [sex, island]]
        metrics:
          tpr_difference: {max: 1.0, average: per_class}
          equalized_odds_difference: {max: 1.0, no_worse_than_baseline: true, average: macro}
          accuracy_ratio: {min: 0.0}""", task="multiclass_classification", target="species",
                        sensitive=("sex", "island"))
    res = run_gate(path)
    y, pred = df["species"].to_numpy(), df["cand_pred"].to_numpy()
    for cls in sorted(df["species"].unique()):
        r = res[f"fairness.tpr_difference.max[sex;class={cls}]"]
        mf = flm.MetricFrame(metrics=flm.true_positive_rate, y_true=(y == cls).astype(int),
                             y_pred=(pred == cls).astype(int), sensitive_features=df["sex"])
        assert r.observed == pytest.approx(mf.difference(), abs=TOL)
        assert r.details["class"] == cls
        assert group_of(r, sex="female")["positives"] == int(((y == cls) & (df["sex"] == "female")).sum())
    macro = flm.MetricFrame(metrics=functools.partial(recall_score, average="macro"), y_true=y, y_pred=pred,
                            sensitive_features=df["sex"])
    r = res["fairness.equalized_odds_difference.no_worse_than_baseline[sex]"]
    for g in r.details["groups"]:  # every species occurs in each sex: the macro average is sklearn's
        assert g["metrics"]["tpr"] == pytest.approx(macro.by_group[g["group"]["sex"]], abs=TOL)
    # no island has all three species: the macro tpr is undefined in every (sex, island) group
    # rather than averaged over different classes per group, and the check says it cannot be computed
    r = res["fairness.equalized_odds_difference.no_worse_than_baseline[sex&island]"]
    assert all(g["metrics"]["tpr"] is None for g in r.details["groups"])
    assert all(fx.REASON_UNDEFINED_MACRO.format(rate="tpr", needs="positives") in g["excluded"]
               for g in r.details["groups"])
    assert r.status is Status.ERROR and "0 group(s) eligible for tpr" in r.message
    acc = flm.MetricFrame(metrics=accuracy_score, y_true=y, y_pred=pred, sensitive_features=df["sex"])
    assert res["fairness.accuracy_ratio.min[sex]"].observed == pytest.approx(acc.ratio(), abs=TOL)


def test_regression_group_metrics_equal_fairlearn(tmp_path):
    data = load_diabetes(as_frame=True, scaled=False)
    df = data.frame.rename(columns={"target": "y"})
    df["sex"] = df["sex"].map({1.0: "one", 2.0: "two"})
    df["age_band"] = pd.cut(df["age"], [0, 40, 55, 100], labels=["<40", "40-55", "55+"]).astype(str)
    feats = ["bmi", "bp", "s5"]
    df["cand_pred"] = LinearRegression().fit(df[feats], df["y"]).predict(df[feats])
    df["base_pred"] = LinearRegression().fit(df[["bmi"]], df["y"]).predict(df[["bmi"]])
    path = write_policy(tmp_path, df, """\
        min_group_size: 1
        bootstrap: 200
        groups: [sex, [sex, age_band]]
        metrics:
          mae_difference: {max: 100, no_worse_than_baseline: true, margin: 5}
          rmse_ratio: {min: 0.0}
          mean_prediction_difference: {max: 100, method: to_overall}
          r2_difference: {max: 10}""", task="regression", target="y", sensitive=("sex", "age_band"))
    res = run_gate(path)
    y = df["y"].to_numpy()
    for cols in (["sex"], ["sex", "age_band"]):
        scope = "&".join(cols)
        sf = df[cols]
        mae_c = flm.MetricFrame(metrics=mean_absolute_error, y_true=y, y_pred=df["cand_pred"], sensitive_features=sf)
        mae_b = flm.MetricFrame(metrics=mean_absolute_error, y_true=y, y_pred=df["base_pred"], sensitive_features=sf)
        r = res[f"fairness.mae_difference.no_worse_than_baseline[{scope}]"]
        assert r.observed == pytest.approx(mae_c.difference(), abs=1e-9)
        assert r.baseline == pytest.approx(mae_b.difference(), abs=1e-9)
        assert r.ci_method == "bootstrap-rows-hull"
        rmse = flm.MetricFrame(metrics=lambda a, b: float(np.sqrt(np.mean((a - b) ** 2))), y_true=y,
                               y_pred=df["cand_pred"], sensitive_features=sf)
        assert res[f"fairness.rmse_ratio.min[{scope}]"].observed == pytest.approx(rmse.ratio(), abs=1e-9)
        mean = flm.MetricFrame(metrics=flm.mean_prediction, y_true=y, y_pred=df["cand_pred"], sensitive_features=sf)
        assert res[f"fairness.mean_prediction_difference.max[{scope}]"].observed == pytest.approx(
            mean.difference(method="to_overall"), abs=1e-9)
        r2 = flm.MetricFrame(metrics=r2_score, y_true=y, y_pred=df["cand_pred"], sensitive_features=sf)
        assert res[f"fairness.r2_difference.max[{scope}]"].observed == pytest.approx(r2.difference(), abs=1e-9)
        for g in r.details["groups"]:
            key = tuple(g["group"][c] for c in cols)
            want = mae_c.by_group.loc[key if len(cols) > 1 else key[0]]
            assert g["metrics"]["mae"] == pytest.approx(want, abs=1e-9)
            assert "positives" not in g


# ---------------------------------------------------------------- configuration


def setup_for(task: str = "binary_classification", sensitive: tuple[str, ...] = ("sex",)) -> GateSetup:
    from gates.policy import DataSpec

    def error(path: tuple[Any, ...], msg: str) -> UserError:
        return UserError(".".join(map(str, path)) + ": " + msg)

    return GateSetup(task=task, base_dir=Path("."), data=DataSpec(eval=Path("e.csv"), target="y",
                     sensitive=sensitive), where=lambda *p: "gates.yaml", error=error)  # type: ignore[arg-type]


@pytest.mark.parametrize(("metrics", "task", "message"), [
    ({"demographic_parity_diference": {"max": 0.1}}, "binary_classification", "did you mean 'demographic_parity_difference'?"),
    ({"demographic_parity_difference": {"max": 0.1}}, "regression", "unknown fairness metric"),
    ({"tpr_difference": {"method": "to_overall"}}, "binary_classification", fx.MSG_NO_THRESHOLD),
    ({"tpr_difference": {"max": 0.1, "margin": 0.02}}, "binary_classification", fx.MSG_MARGIN_ALONE),
    ({"tpr_difference": {"max": 0.1, "agg": "mean"}}, "binary_classification", fx.MSG_AGG),
    ({"tpr_difference": {"max": 0.1, "average": "macro"}}, "binary_classification", fx.MSG_AVERAGE_TASK),
    ({"demographic_parity_difference": {"max": 0.1}}, "multiclass_classification",
     fx.MSG_MACRO_SELECTION.format(name="demographic_parity_difference")),
    ({"balanced_accuracy_difference": {"max": 0.1, "average": "per_class"}}, "multiclass_classification",
     fx.MSG_AVERAGE_PER_CLASS.format(metric="balanced_accuracy")),
    ({"churn_difference": {"max": 0.1}}, "binary_classification", "unknown fairness metric"),
])
def test_validate_rejects_what_the_schema_cannot(metrics, task, message):
    with pytest.raises(UserError) as info:
        fx.validate({"metrics": metrics}, setup_for(task))
    assert message in str(info.value)
    assert str(info.value).startswith(f"fairness.metrics.{next(iter(metrics))}: ")


def test_validate_needs_groups_and_accepts_generic_names():
    with pytest.raises(UserError, match=fx.MSG_NO_GROUPS):
        fx.validate({"metrics": {"tpr_difference": {"max": 0.1}}}, setup_for(sensitive=()))
    fx.validate({"metrics": {"roc_auc_ratio": {"min": 0.9}, "f1_difference": {"max": 0.1},
                             "equalized_odds_ratio": {"min": 0.8, "agg": "mean"}}}, setup_for())
    fx.validate({"metrics": {"mae_difference": {"max": 1}, "mean_prediction_ratio": {"min": 0.9}}},
                setup_for("regression"))


def test_config_errors_point_into_the_file(tmp_path):
    frame = pd.DataFrame({"label": [0, 1], "cand_pred": [0, 1], "base_pred": [0, 1], "sex": ["F", "M"]})
    path = write_policy(tmp_path, frame, """\
        metrics:
          equalized_odds_diference: {max: 0.1}""")
    with pytest.raises(UserError) as info:
        load_policy(path)
    text = str(info.value)
    assert text.startswith("gates.yaml:") and "did you mean 'equalized_odds_difference'" in text
    path = write_policy(tmp_path, frame, """\
        metrics:
          tpr_difference: {max: 0.1, avg: macro}""")
    with pytest.raises(UserError, match="unknown threshold 'avg'"):
        load_policy(path)


def test_declares_blocking_follows_severity():
    assert fx.declares_blocking({"metrics": {"tpr_difference": {"max": 0.1}}})
    assert not fx.declares_blocking({"severity": "warn", "metrics": {"tpr_difference": {"max": 0.1}}})
    assert fx.declares_blocking({"severity": "warn", "metrics": {"tpr_difference": {"max": 0.1, "severity": "block"}}})
    assert not fx.declares_blocking({"metrics": {"tpr_difference": {"no_worse_than_baseline": False, "max": 0.1,
                                                                    "severity": "warn"}}})


def test_the_plan_resolves_severities_and_tells_blocking_like_the_section():
    sections = [{"metrics": {"tpr_difference": {"max": 0.1}}},
                {"severity": "warn", "metrics": {"tpr_difference": {"max": 0.1}}},
                {"severity": "warn", "metrics": {"tpr_difference": {"max": 0.1, "severity": "block"}},
                 "groups": ["sex", ["sex", "race"]]}]
    for section in sections:
        plan = fx.make_plan(section, setup_for())
        assert fx.declares_blocking(plan) is fx.declares_blocking(section)
    plan = fx.make_plan(sections[2], setup_for())
    assert [(m.name, m.severity, m.maximum) for m in plan.metrics] == [("tpr_difference", "block", 0.1)]
    assert plan.settings.severity == "warn" and plan.groups == (("sex",), ("sex", "race"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.metrics[0].severity = "warn"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.groups = ()  # type: ignore[misc]
    with pytest.raises(UserError, match=fx.MSG_NO_THRESHOLD):
        fx.make_plan({"metrics": {"tpr_difference": {"method": "to_overall"}}}, setup_for())


def test_the_section_is_parsed_once_per_run(tmp_path, monkeypatch):
    from gates.checks.fairness import _config
    from gates.runner import run_policy

    parsed = count_calls(monkeypatch, _config, "parse_plan")
    rng = np.random.default_rng(3)
    n = 400
    frame = pd.DataFrame({"label": rng.integers(0, 2, n), "cand_pred": rng.integers(0, 2, n),
                          "base_pred": rng.integers(0, 2, n), "sex": rng.choice(["F", "M"], n)})
    policy = load_policy(write_policy(tmp_path, frame, """\
        bootstrap: 200
        metrics:
          tpr_difference: {max: 0.5, no_worse_than_baseline: true, margin: 0.2}"""))
    result = run_policy(policy)
    assert len(parsed) == 1 and parsed[0][0] == policy.gates["fairness"]
    ids = sorted(c.id for c in result.verdict.checks if c.gate == "fairness")
    assert ids == ["fairness.tpr_difference.max[sex]", "fairness.tpr_difference.no_worse_than_baseline[sex]"]
    # a mapping given to run directly is planned there, into the same results
    again = {r.id: r for r in fx.GATE.run(EvalContext(policy), policy.gates["fairness"])}
    assert [again[i].observed for i in ids] == [c.observed for c in sorted(
        (c for c in result.verdict.checks if c.gate == "fairness"), key=lambda c: c.id)]


def test_weighted_auc_with_bootstrap_counts_is_the_resample_auc():
    from gates.checks.fairness._stats import weighted_auc, weighted_ovr_auc

    rng = np.random.default_rng(8)
    y = rng.integers(0, 2, 300).astype(bool)
    scores = np.round(rng.random(300), 2)  # ties count half, as in roc_auc_score
    idx = rng.integers(0, 300, (3, 300))
    weights = np.stack([np.bincount(i, minlength=300) for i in idx]).astype(float)
    got = weighted_auc(y, scores, weights)
    assert got == pytest.approx([roc_auc_score(y[i], scores[i]) for i in idx], abs=1e-12)
    assert np.isnan(weighted_auc(np.zeros(5, bool), np.arange(5.0), np.ones((1, 5))))[0]
    labels = rng.integers(0, 3, 300)
    proba = rng.dirichlet(np.ones(3), 300)
    for by_prevalence, avg in ((False, "macro"), (True, "weighted")):
        got = weighted_ovr_auc(labels, proba, (0, 1, 2), weights, by_prevalence)
        assert got == pytest.approx([roc_auc_score(labels[i], proba[i], multi_class="ovr", average=avg)
                                     for i in idx], abs=1e-12)


def test_score_metric_without_scores_is_an_error_naming_the_model():
    y, pred, groups = no_positive_group_data()
    res = assess_arrays(y, pred, pred, groups, {"metrics": {"roc_auc_difference": {"max": 0.1},
                                                            "tpr_difference": {"max": 1.0}}})
    r = res["fairness.roc_auc_difference.max[g]"]
    assert r.status is Status.ERROR and r.reason == "missing_scores"
    assert r.message == fx.MSG_NO_SCORES.format(metric="roc_auc_difference", role="candidate")
    assert res["fairness.tpr_difference.max[g]"].status is not Status.ERROR


def test_inconclusive_no_worse_than_baseline_says_what_margin_the_data_could_show():
    y, cand, base, group = simulate(3, 800, 0.7)
    res = assess_arrays(y, cand, base, {"g": group}, {"metrics": {
        "tpr_difference": {"no_worse_than_baseline": True}, "tpr_ratio": {"no_worse_than_baseline": True}}})
    diff = res["fairness.tpr_difference.no_worse_than_baseline[g]"]
    ratio = res["fairness.tpr_ratio.no_worse_than_baseline[g]"]
    assert diff.status is Status.INCONCLUSIVE and ratio.status is Status.INCONCLUSIVE
    assert f"+{fx.DEFAULT_MARGIN} (the margin {fx.DEFAULT_MARGIN})" in diff.message
    assert f"-{fx.DEFAULT_MARGIN} (the margin {fx.DEFAULT_MARGIN})" in ratio.message
    assert f"cannot show a margin under {diff.half_width:.4g}" in diff.message
    assert diff.ci[0] < fx.DEFAULT_MARGIN < diff.ci[1]


def test_auc_by_group_needs_min_positives_of_the_rarer_class():
    rng = np.random.default_rng(9)
    n = 1500
    group = np.where(rng.random(n) < 0.5, "a", "b")
    y = np.where(group == "b", (rng.random(n) < 0.005).astype(int), rng.integers(0, 2, n))
    y[np.flatnonzero(group == "b")[:2]] = 1
    scores = np.clip(0.3 * y + rng.random(n) * 0.7, 0, 1)
    frame = pd.DataFrame({"g": group})
    data = eval_data("binary_classification", y, Predictions((scores >= 0.5).astype(int), scores), None, 1, (0, 1))
    res = fx.assess(frame, data, {"groups": ["g"], "metrics": {"roc_auc_difference": {"max": 0.2}}},
                    lambda *n: make_rng(1, *n))
    r = res[0]
    b_pos = int(y[group == "b"].sum())
    assert group_of(r, g="b")["excluded"] == fx.REASON_SUPPORT.format(
        rate="roc_auc", support=b_pos, needs="positives or negatives", min=10)
    assert r.status is Status.ERROR


# ---------------------------------------------------------------- the statistics core


def test_point_decisions_adjust_levels_and_warn_only_checks_stay_out():
    y, cand, base, group = simulate(3, 3000, 0.7)
    metrics = {"tpr_difference": {"no_worse_than_baseline": True, "margin": 0.2},
               "fpr_difference": {"no_worse_than_baseline": True, "margin": 0.2},
               "selection_rate_difference": {"no_worse_than_baseline": True, "margin": 0.2, "severity": "warn"}}
    out = assess_arrays(y, cand, base, {"g": group}, {"metrics": metrics, "decision": "point",
                                                      "multiple_testing": "bonferroni", "bootstrap": 300})
    blocking = [out[f"fairness.{m}.no_worse_than_baseline[g]"] for m in ("tpr_difference", "fpr_difference")]
    for r in blocking:
        assert r.adjusted_confidence == pytest.approx(0.975)
        assert r.details["family_size"] == 2 and r.details["multiple_testing"] == "bonferroni"
        assert r.details["bootstrap"] == 4000  # 100 / (0.05 / 2), above bootstrap: 300
    warn = out["fairness.selection_rate_difference.no_worse_than_baseline[g]"]
    assert warn.adjusted_confidence == pytest.approx(0.95) and not warn.blocking


@pytest.mark.parametrize("value", ["F W", "a=b", "x&y", "[EU]", "Zoë", "🚀", "a;class=b"])
def test_group_values_of_any_text_keep_typed_ids(value):
    y, cand, base, group = simulate(4, 800, 0.7)
    groups = np.where(group == "a", value, "other")
    out = assess_arrays(y, cand, base, {"team name": groups},
                        {"metrics": {"tpr_difference": {"max": 0.5}}, **EXACT})
    (r,) = out.values()
    assert r.check_id.scope == "team name" and r.id == "fairness.tpr_difference.max[team name]"
    assert {g["group"]["team name"] for g in r.details["groups"]} == {value, "other"}


def test_score_mean_disparities_resample_with_poisson_weights_like_a_slow_loop():
    """brier_difference's replicates: per-row Poisson(1) weights, compared with a slow row bootstrap loop."""
    rng = np.random.default_rng(9)
    n = 1500
    group = rng.choice(["a", "b"], n)
    y = rng.integers(0, 2, n)
    p = np.clip(0.5 * y + rng.uniform(0, 0.5, n) + np.where(group == "a", 0.05, -0.05), 0, 1)
    frame = pd.DataFrame({"g": group})
    data = eval_data("binary_classification", y, Predictions((p >= 0.5).astype(int), p), None, 1, (0, 1))
    results = fx.assess(frame, data, {"metrics": {"brier_difference": {"max": 1.0}}, "bootstrap": 4000, **EXACT},
                        lambda *names: make_rng(5, *names), sensitive=["g"])
    (r,) = results
    sq = (y - p) ** 2
    point = abs(sq[group == "a"].mean() - sq[group == "b"].mean())
    assert r.observed == pytest.approx(point, rel=1e-9)
    assert r.ci_method == "bootstrap-rows-hull"
    slow = []
    loop = np.random.default_rng(6)
    for _ in range(1000):
        i = loop.integers(0, n, n)
        slow.append(abs(sq[i][group[i] == "a"].mean() - sq[i][group[i] == "b"].mean()))
    q_lo, q_hi = np.quantile(slow, [0.025, 0.975])
    lo, hi = max(min(q_lo, 2 * point - q_hi), 0.0), max(q_hi, 2 * point - q_lo)  # the hull, clipped to [0, 1]
    width = hi - lo
    assert r.ci[0] == pytest.approx(lo, abs=0.12 * width) and r.ci[1] == pytest.approx(hi, abs=0.12 * width)
