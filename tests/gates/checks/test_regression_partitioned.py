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
    (folder / "eval").mkdir()
    for i, rows in enumerate(np.array_split(np.arange(len(frame)), 3)):
        pq.write_table(pa.Table.from_pandas(frame.iloc[rows], preserve_index=False),
                       folder / "eval" / f"part-{i}.parquet", row_group_size=64)
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


def test_a_metric_without_cells_makes_the_gate_not_distributable(project: Path) -> None:
    project.write_text(project.read_text().replace("churn: {max: 0.05}", "roc_auc: {max_drop: 0.01}"))
    policy = load_policy(project)
    ctx = PartitionedContext(policy, engine=LocalEngine())
    [check] = run_gate(ctx, "regression", policy.gates["regression"])
    assert check.id == "regression.not_distributable" and check.reason == "not_distributable"
    assert "roc_auc" in check.message and check.blocking
