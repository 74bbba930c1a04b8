"""The regression gate on partitions: shipped models predict each partition; cells merge into the
embedded run's point values and (identical) multinomial intervals."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import skops.io as sio
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

from gates.checks.regression import GATE
from gates.config import load_policy
from gates.context import EvalContext
from gates.engine.context import PartitionedContext
from gates.engine.local import LocalEngine
from gates.engine.runner import run_gate
from gates.reporters.json_report import check_to_dict
from tests.conftest import write_parquet_parts

POLICY = """\
version: 1
model:
  name: cancer
  task: binary_classification
  candidate: candidate.skops
  baseline: {baseline}
  positive_label: 1
  trusted_types: [sklearn.tree._tree.Tree]   # the tree baseline
data: {{eval: eval, target: target, features: {features}}}
seed: 11
gates:
  regression:
    bootstrap: 400
    multiple_testing: holm
    min_slice_size: 40
    slices: [site, [site, band]]
    metrics:
      accuracy: {{min: 0.8, max_drop: 0.01}}
      f1: {{max_relative_drop: 0.02}}
      recall: {{min: 0.9}}
      churn: {{max: 0.05}}
"""


def make_project(folder: Path, baseline: str = "baseline.skops") -> Path:
    """scikit-learn's breast cancer data as 3 Parquet files; a logistic candidate and a tree baseline."""
    data = load_breast_cancer(as_frame=True)
    frame = data.frame.rename(columns=lambda c: c.replace(" ", "_"))
    features = [c for c in frame.columns if c != "target"][:8]
    rng = np.random.default_rng(5)
    frame["site"] = rng.choice(["north", "south", "east"], len(frame))
    frame["band"] = np.where(frame[features[0]] > frame[features[0]].median(), "high", "low")
    X, y = frame[features], frame["target"]
    sio.dump(LogisticRegression(max_iter=2000).fit(X.iloc[::2], y.iloc[::2]), folder / "candidate.skops")
    sio.dump(DecisionTreeClassifier(max_depth=3, random_state=0).fit(X.iloc[::2], y.iloc[::2]),
             folder / "baseline.skops")
    write_parquet_parts(folder / "eval", frame, 3, 64)
    text = POLICY.format(baseline=baseline, features="[" + ", ".join(features) + "]")
    (folder / "gates.yaml").write_text(text)
    return folder / "gates.yaml"


def by_id(results: list[Any]) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in (check_to_dict(c) for c in results)}


def assert_same(embedded: dict[str, dict[str, Any]], partitioned: dict[str, dict[str, Any]]) -> None:
    assert list(partitioned) == list(embedded)
    for cid, want in embedded.items():
        got = partitioned[cid]
        assert got["status"] == want["status"], cid
        for key in ("observed", "baseline", "delta"):
            if want.get(key) is None:
                assert got.get(key) is None, (cid, key)
            else:
                assert got[key] == pytest.approx(want[key], rel=1e-9), (cid, key)
        assert got.get("ci") == want.get("ci"), cid  # the same cells and stream: the same replicates


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path)


def test_partitions_give_the_embedded_checks_and_intervals(project: Path) -> None:
    policy = load_policy(project)
    embedded = by_id(GATE.run(EvalContext(policy), policy.gates["regression"]))
    ctx = PartitionedContext(policy, engine=LocalEngine(), partition_rows=50)
    assert len(ctx.eval_partitions) >= 6
    partitioned = by_id(run_gate(ctx, "regression", policy.gates["regression"]))
    assert_same(embedded, partitioned)
    assert any("[site=" in i for i in partitioned) and any("band=" in i for i in partitioned)
    assert {c["status"] for c in partitioned.values()} >= {"pass", "fail"}
    # the point value is scikit-learn's on the whole data
    from sklearn.metrics import accuracy_score

    frame = pd.read_parquet(project.parent / "eval")
    model = sio.load(project.parent / "candidate.skops", trusted=sio.get_untrusted_types(
        file=project.parent / "candidate.skops"))
    want = accuracy_score(frame["target"], model.predict(frame[list(policy.data.features or ())]))
    assert partitioned["regression.accuracy.min"]["observed"] == pytest.approx(want, rel=1e-12)


def test_without_a_baseline_relative_checks_skip_as_embedded(tmp_path: Path) -> None:
    policy = load_policy(make_project(tmp_path, baseline="none"))
    embedded = by_id(GATE.run(EvalContext(policy), policy.gates["regression"]))
    ctx = PartitionedContext(policy, engine=LocalEngine(), partition_rows=100)
    assert_same(embedded, by_id(run_gate(ctx, "regression", policy.gates["regression"])))


SCORES = """\
      log_loss: {max: 0.5, max_drop: 0.02}
      brier: {max_relative_drop: 0.05}
      roc_auc: {min: 0.9, max_drop: 0.01}
      average_precision: {max_drop: 0.01}
"""


def assert_close(embedded: dict[str, dict[str, Any]], partitioned: dict[str, dict[str, Any]]) -> None:
    """Same checks, statuses and values; intervals equal up to float rounding (sums merged in another order)."""
    assert list(partitioned) == list(embedded)
    for cid, want in embedded.items():
        got = partitioned[cid]
        assert (got["status"], got.get("ci_method"), got.get("reason")) == \
            (want["status"], want.get("ci_method"), want.get("reason")), cid
        for key in ("observed", "baseline", "delta", "half_width"):
            if want.get(key) is None:
                assert got.get(key) is None, (cid, key)
            else:
                assert got[key] == pytest.approx(want[key], rel=1e-9, abs=1e-12), (cid, key)
        if want.get("ci") is None:
            assert got.get("ci") is None, cid
        else:
            assert got["ci"] == pytest.approx(want["ci"], rel=1e-9, abs=1e-12), cid


def score_policy(project: Path) -> Any:
    text = project.read_text()
    start = text.index("      accuracy:")
    project.write_text(text[:start] + SCORES)
    return load_policy(project)


def test_row_means_auc_and_average_precision_merge_into_the_embedded_checks(project: Path) -> None:
    policy = score_policy(project)
    spec = policy.gates["regression"]
    embedded = by_id(GATE.run(EvalContext(policy), spec))
    small = by_id(run_gate(PartitionedContext(policy, engine=LocalEngine(), partition_rows=50), "regression", spec))
    large = by_id(run_gate(PartitionedContext(policy, engine=LocalEngine(), partition_rows=200), "regression", spec))
    assert_close(embedded, small)
    assert_close(small, large)  # the row-keyed weights do not depend on the partitioning
    methods = {c["ci_method"] for c in small.values() if c.get("ci_method")}
    assert methods == {"bootstrap-rows", "delong", "delta-method"}  # 569 rows: the Poisson bootstrap
    assert {c["status"] for c in small.values()} >= {"pass", "fail"}
    # point values against scikit-learn on the whole data
    from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

    frame = pd.read_parquet(project.parent / "eval")
    X, y = frame[list(policy.data.features or ())], frame["target"]
    p = {}
    for role in ("candidate", "baseline"):
        path = project.parent / f"{role}.skops"
        p[role] = sio.load(path, trusted=sio.get_untrusted_types(file=path)).predict_proba(X)[:, 1]
    assert small["regression.roc_auc.min"]["observed"] == pytest.approx(roc_auc_score(y, p["candidate"]), rel=1e-12)
    assert small["regression.roc_auc.max_drop"]["baseline"] == pytest.approx(roc_auc_score(y, p["baseline"]),
                                                                             rel=1e-12)
    assert small["regression.average_precision.max_drop"]["delta"] == pytest.approx(
        average_precision_score(y, p["candidate"]) - average_precision_score(y, p["baseline"]), rel=1e-9)
    assert small["regression.log_loss.max"]["observed"] == pytest.approx(log_loss(y, p["candidate"]), rel=1e-9)
    assert small["regression.brier.max_relative_drop"]["baseline"] == pytest.approx(
        brier_score_loss(y, p["baseline"]), rel=1e-9)
    sliced = [c for c in small.values() if "[site=" in c["id"] and c["status"] != "skipped"]
    assert sliced and all(c["details"]["rows"] < 569 for c in sliced)


def test_regression_row_means_use_the_paired_normal_on_large_slices(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    n = 12_500
    x = rng.normal(size=n)
    frame = pd.DataFrame({"y": 2 * x + rng.normal(size=n), "zone": rng.choice(["a", "b"], n, p=[0.9, 0.1])})
    frame["cand"] = 2 * x + rng.normal(scale=0.5, size=n)
    frame["base"] = 1.9 * x + rng.normal(scale=0.6, size=n)
    write_parquet_parts(tmp_path / "eval", frame, 2, 1000)
    (tmp_path / "gates.yaml").write_text("""\
version: 1
model: {name: reg, task: regression, candidate: {predictions: cand}, baseline: {predictions: base}}
data: {eval: eval, target: y}
seed: 4
gates:
  regression:
    bootstrap: 300
    min_slice_size: 100
    slices: [zone]
    metrics:
      mae: {max: 1.0, max_drop: 0.05}
      rmse: {max_relative_drop: 0.02}
      r2: {min: 0.5, max_drop: 0.01}
""")
    policy = load_policy(tmp_path / "gates.yaml")
    spec = policy.gates["regression"]
    embedded = by_id(GATE.run(EvalContext(policy), spec))
    ctx = PartitionedContext(policy, engine=LocalEngine(), partition_rows=3000)
    assert len(ctx.eval_partitions) >= 4
    partitioned = by_id(run_gate(ctx, "regression", spec))
    assert_close(embedded, partitioned)
    methods = {c["id"]: c.get("ci_method") for c in partitioned.values()}
    assert methods["regression.mae.max_drop"] == "paired-normal"               # 12,500 rows
    assert methods["regression.mae.max_drop[zone=a]"] == "paired-normal"       # about 11,250
    assert methods["regression.mae.max_drop[zone=b]"] == "bootstrap-rows"      # about 1,250
    err = (frame["cand"] - frame["y"]).abs()
    assert partitioned["regression.mae.max"]["observed"] == pytest.approx(err.mean(), rel=1e-12)
    sub = frame["zone"] == "b"
    assert partitioned["regression.mae.max[zone=b]"]["observed"] == pytest.approx(err[sub].mean(), rel=1e-12)


def test_a_metric_without_cells_makes_the_gate_not_distributable(tmp_path: Path) -> None:
    frame = pd.DataFrame({"y": [0, 1, 2] * 40, "p": [0, 1, 1] * 40})
    for k in range(3):
        frame[f"s{k}"] = np.where(frame["y"] == k, 0.6, 0.2)
    frame.to_parquet(tmp_path / "eval.parquet")
    (tmp_path / "gates.yaml").write_text("""\
version: 1
model: {name: m, task: multiclass_classification, candidate: {predictions: p, scores: [s0, s1, s2]}}
data: {eval: eval.parquet, target: y}
gates:
  regression:
    metrics: {accuracy: {min: 0.5}, roc_auc_ovr: {min: 0.6}}
""")
    policy = load_policy(tmp_path / "gates.yaml")
    ctx = PartitionedContext(policy, engine=LocalEngine())
    [check] = run_gate(ctx, "regression", policy.gates["regression"])
    assert check.id == "regression.not_distributable" and check.reason == "not_distributable"
    assert "roc_auc_ovr" in check.message and check.blocking


def test_rows_without_a_target_are_left_out_as_embedded(tmp_path: Path) -> None:
    """A float target with gaps: the gaps are never scored, labels read as integers, Poisson keys are
    positions among the scored rows, on one partition or many."""
    path = make_project(tmp_path)
    text = path.read_text()
    path.write_text(text[:text.index("      accuracy:")] + "      accuracy: {min: 0.8, max_drop: 0.01}\n"
                    + SCORES + "  fairness:\n    groups: [site]\n    bootstrap: 200\n    metrics:\n"
                    "      tpr_difference: {max: 0.2, no_worse_than_baseline: true}\n"
                    "      log_loss_difference: {max: 0.2}\n")
    for f in sorted((tmp_path / "eval").iterdir()):
        frame = pd.read_parquet(f)
        target = frame["target"].astype(float)
        target.iloc[::7] = np.nan
        pq.write_table(pa.Table.from_pandas(frame.assign(target=target), preserve_index=False), f,
                       row_group_size=64)
    policy = load_policy(path)
    from gates.checks.fairness import GATE as FAIRNESS

    for name, gate in (("regression", GATE), ("fairness", FAIRNESS)):
        spec = policy.gates[name]
        embedded = by_id(gate.run(EvalContext(policy), spec))
        for rows in (50, 10**6):
            got = by_id(run_gate(PartitionedContext(policy, engine=LocalEngine(), partition_rows=rows), name, spec))
            assert_close(embedded, got)
    ctx = PartitionedContext(policy, engine=LocalEngine(), partition_rows=50)
    assert ctx.classes == (0, 1)
    whole = by_id(run_gate(ctx, "regression", policy.gates["regression"]))["regression.accuracy.min"]
    assert whole["details"]["rows"] == EvalContext(policy).n_rows == ctx.n_rows < ctx.n_eval_rows
