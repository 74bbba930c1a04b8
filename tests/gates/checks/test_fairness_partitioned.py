"""The fairness gate on partitions: merged cells and sums give the embedded gate's checks and intervals."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from gates.checks.fairness import GATE
from gates.config import load_policy
from gates.context import EvalContext
from gates.engine.context import PartitionedContext
from gates.engine.local import LocalEngine
from gates.engine.runner import run_gate
from gates.reporters.json_report import check_to_dict
from tests.gates.checks.test_regression_partitioned import assert_close as assert_same_checks
from tests.gates.checks.test_regression_partitioned import make_project
from tests.conftest import write_parquet_parts

FAIRNESS = """\
  fairness:
    groups: [site, [site, band]]
    min_group_size: 30
    min_positives: 5
    bootstrap: 300
    metrics:
      demographic_parity_difference: {max: 0.1}
      equalized_odds_ratio: {min: 0.5, no_worse_than_baseline: true, margin: 0.05}
      tpr_difference: {max: 0.2, method: to_overall, no_worse_than_baseline: true}
      log_loss_difference: {max: 0.2, no_worse_than_baseline: true}
      count_ratio: {min: 0.2}
"""


def by_id(results: list[Any]) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in (check_to_dict(c) for c in results)}


def assert_close(embedded: dict[str, dict[str, Any]], partitioned: dict[str, dict[str, Any]]) -> None:
    """The regression comparison, and the same groups with the same sizes and exclusions."""
    assert_same_checks(embedded, partitioned)
    for cid, want in embedded.items():
        got = partitioned[cid]
        for key in ("group", "size", "excluded"):
            assert [g[key] for g in got["details"]["groups"]] == [g[key] for g in want["details"]["groups"]], (cid, key)


def fair_project(folder: Path) -> Path:
    path = make_project(folder)
    text = path.read_text()
    path.write_text(text[:text.index("  regression:")] + FAIRNESS)
    return path


def test_partitions_give_the_embedded_fairness_checks(tmp_path: Path) -> None:
    policy = load_policy(fair_project(tmp_path))
    spec = policy.gates["fairness"]
    embedded = by_id(GATE.run(EvalContext(policy), spec))
    small = by_id(run_gate(PartitionedContext(policy, engine=LocalEngine(), partition_rows=50), "fairness", spec))
    large = by_id(run_gate(PartitionedContext(policy, engine=LocalEngine(), partition_rows=200), "fairness", spec))
    assert_close(embedded, small)
    assert_close(small, large)
    assert {c["ci_method"] for c in small.values() if c.get("ci_method")} >= {"bootstrap-multinomial-hull",
                                                                               "bootstrap-rows-hull"}
    assert {c["status"] for c in small.values()} >= {"pass", "fail"}
    # an independent computation: the largest gap of selection rates between sites
    from sklearn.linear_model import LogisticRegression  # noqa: F401 -- the candidate's type
    import skops.io as sio

    frame = pd.read_parquet(tmp_path / "eval")
    path = tmp_path / "candidate.skops"
    model = sio.load(path, trusted=sio.get_untrusted_types(file=path))
    chosen = model.predict(frame[list(policy.data.features or ())]) == 1
    rates = pd.Series(chosen).groupby(frame["site"].to_numpy()).mean()
    assert small["fairness.demographic_parity_difference.max[site]"]["observed"] == pytest.approx(
        rates.max() - rates.min(), rel=1e-12)


def test_regression_group_means_on_partitions(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    n = 900
    frame = pd.DataFrame({"y": rng.normal(size=n), "sex": rng.choice(["f", "m", None], n, p=[0.5, 0.45, 0.05])})
    frame["cand"] = frame["y"] + rng.normal(scale=np.where(frame["sex"] == "f", 0.5, 0.8))
    frame["base"] = frame["y"] + rng.normal(scale=0.7, size=n)
    write_parquet_parts(tmp_path / "eval", frame, 3, 100)
    (tmp_path / "gates.yaml").write_text("""\
version: 1
model: {name: reg, task: regression, candidate: {predictions: cand}, baseline: {predictions: base}}
data: {eval: eval, target: y, sensitive: [sex]}
seed: 2
gates:
  fairness:
    min_group_size: 20
    bootstrap: 200
    metrics:
      mae_difference: {max: 0.1, no_worse_than_baseline: true}
      r2_ratio: {min: 0.5}
      mean_prediction_difference: {max: 0.3}
      count_ratio: {min: 0.05}
""")
    policy = load_policy(tmp_path / "gates.yaml")
    spec = policy.gates["fairness"]
    embedded = by_id(GATE.run(EvalContext(policy), spec))
    partitioned = by_id(run_gate(PartitionedContext(policy, engine=LocalEngine(), partition_rows=150),
                                 "fairness", spec))
    assert_close(embedded, partitioned)
    err = (frame["cand"] - frame["y"]).abs().groupby(frame["sex"].fillna("?")).mean()
    assert partitioned["fairness.mae_difference.max[sex]"]["observed"] == pytest.approx(
        err.max() - err.min(), rel=1e-9)


def test_group_auc_is_not_distributable(tmp_path: Path) -> None:
    path = fair_project(tmp_path)
    path.write_text(path.read_text() + "      roc_auc_difference: {max: 0.2}\n")
    policy = load_policy(path)
    [check] = run_gate(PartitionedContext(policy, engine=LocalEngine()), "fairness", policy.gates["fairness"])
    assert check.id == "fairness.not_distributable" and check.reason == "not_distributable"
    assert "roc_auc" in check.message and check.blocking
