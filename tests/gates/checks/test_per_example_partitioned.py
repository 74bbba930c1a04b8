"""task: per_example on partitions: the regression and fairness gates' score means (and clusters)
merged from per-partition moments and Poisson sums give the embedded checks."""
from __future__ import annotations

from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from gates.checks import fairness as fg
from gates.checks import regression as rg
from gates.config import load_policy
from gates.context import EvalContext
from gates.engine.context import PartitionedContext
from gates.engine.local import LocalEngine
from gates.engine.runner import run_gate
from tests.conftest import write_parquet_parts
from tests.gates.checks.test_regression_partitioned import assert_close, by_id
from tests.gates.test_per_example import BASELINE, CANDIDATE, evals

REGRESSION = {"min_slice_size": 30, "slices": ["language", ["language", "tier"]],
              "metrics": {"correct": {"min": 0.66, "max_drop": 0.02},
                          "latency": {"better": "lower", "max": 400.0, "max_relative_drop": 0.1}}}
FAIRNESS = {"groups": ["language", ["language", "tier"]], "min_group_size": 20,
            "metrics": {"correct_difference": {"max": 0.2, "no_worse_than_baseline": True},
                        "latency_ratio": {"min": 0.5}}}


def project(folder: Path, df: pd.DataFrame, gates: dict[str, Any], *, pieces: int = 4,
            data: dict[str, Any] | None = None) -> Path:
    """``df`` as ``pieces`` Parquet files of 40-row row groups, and a per_example policy over them."""
    write_parquet_parts(folder / "evals", df, pieces, 40)
    doc = {"version": 1, "model": {"name": "bot", "task": "per_example", "candidate": CANDIDATE,
                                   "baseline": BASELINE},
           "data": {"eval": "evals", **(data or {})}, "seed": 3, "gates": gates}
    path = folder / "gates.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def frame(seed: int = 5, n_prompts: int = 300) -> pd.DataFrame:
    df = evals(n_prompts=n_prompts, gain=0.1, seed=seed)
    df["tier"] = np.where(df["prompt_id"].str[-1].isin(list("01")), "free", "paid")
    return df


def both(path: Path, gate: str, rows: int) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    policy = load_policy(path)
    kind = {"regression": rg.GATE, "fairness": fg.GATE}[gate]
    embedded = by_id(kind.run(EvalContext(policy), policy.gates[gate]))
    ctx = PartitionedContext(policy, engine=LocalEngine(), partition_rows=rows)
    return embedded, by_id(run_gate(ctx, gate, policy.gates[gate]))


@pytest.mark.parametrize("rows", [100_000, 80])
def test_per_example_regression_on_partitions_gives_the_embedded_checks(tmp_path: Path, rows: int) -> None:
    df = frame()
    embedded, partitioned = both(project(tmp_path, df, {"regression": REGRESSION}), "regression", rows)
    assert_close(embedded, partitioned)
    assert {c["status"] for c in partitioned.values()} >= {"pass", "fail"}
    assert all(c.get("ci_method") != "not_distributable" for c in partitioned.values())
    # the point values are the score columns' means
    de = df[df["language"] == "de"]
    assert partitioned["regression.correct.min[language=de]"]["observed"] == pytest.approx(
        de["cand_correct"].mean(), rel=1e-12)
    drop = partitioned["regression.latency.max_relative_drop"]
    assert drop["observed"] == pytest.approx(df["cand_ms"].mean(), rel=1e-12)
    assert drop["baseline"] == pytest.approx(df["prod_ms"].mean(), rel=1e-12)


def test_missing_per_example_scores_are_the_embedded_errors(tmp_path: Path) -> None:
    df = frame()
    df.loc[[7, 500, 1100], "prod_ms"] = np.nan  # in three different partitions
    embedded, partitioned = both(project(tmp_path, df, {"regression": REGRESSION}), "regression", 80)
    assert_close(embedded, partitioned)
    drop = partitioned["regression.latency.max_relative_drop"]
    assert drop["status"] == "error" and "3 missing value(s) of 1200" in drop["message"]
    assert partitioned["regression.latency.max"]["status"] in ("pass", "fail")  # the candidate alone


@pytest.mark.parametrize("rows", [100_000, 80])
def test_per_example_fairness_on_partitions_gives_the_embedded_checks(tmp_path: Path, rows: int) -> None:
    df = frame()
    path = project(tmp_path, df, {"fairness": FAIRNESS}, data={"sensitive": ["language"]})
    embedded, partitioned = both(path, "fairness", rows)
    assert_close(embedded, partitioned)
    for cid, want in embedded.items():
        got = partitioned[cid]
        for key in ("group", "size", "excluded"):
            assert [g[key] for g in got["details"]["groups"]] == [g[key] for g in want["details"]["groups"]]
    means = df.groupby("language")["cand_correct"].mean()
    diff = partitioned["fairness.correct_difference.max[language]"]
    assert diff["observed"] == pytest.approx(means.max() - means.min(), rel=1e-12)


# ------------------------------------------------------------------ data.cluster


@pytest.mark.parametrize("rows", [100_000, 80])
def test_clustered_scores_resample_whole_clusters_as_embedded(tmp_path: Path, rows: int) -> None:
    df = frame()
    df.loc[[3, 600, 901], "prompt_id"] = None  # rows without a cluster are clusters of their own
    gates = {"regression": {**REGRESSION, "min_slice_size": 60}, "fairness": {**FAIRNESS, "min_group_size": 40}}
    path = project(tmp_path, df, gates, data={"cluster": "prompt_id", "sensitive": ["language"]})
    embedded, partitioned = both(path, "regression", rows)
    assert_close(embedded, partitioned)
    overall = partitioned["regression.correct.max_drop"]
    assert overall["ci_method"].startswith("bootstrap-clusters")
    # slices count their clusters (a row without one is its own): min_slice_size 60 skips the smaller ones
    lone = df["prompt_id"].isna()
    prompts = (df[~lone].groupby(["language", "tier"])["prompt_id"].nunique()
               .add(df[lone].groupby(["language", "tier"]).size(), fill_value=0).astype(int))
    for (language, tier), n in prompts.items():
        got = partitioned[f"regression.correct.min[language={language}&tier={tier}]"]
        assert (got["status"] == "skipped") == (n < 60), (language, tier, n)
    assert (prompts < 60).any() and (prompts >= 60).any()
    embedded, partitioned = both(path, "fairness", rows)
    assert_close(embedded, partitioned)
    diff = partitioned["fairness.correct_difference.max[language]"]
    groups = {g["group"]["language"]: g for g in diff["details"]["groups"]}
    assert groups["de"]["clusters"] == embedded["fairness.correct_difference.max[language]"]["details"]["groups"][0][
        "clusters"] == int(prompts.loc["de"].sum())
    for cid, want in embedded.items():
        for key in ("group", "size", "clusters", "excluded"):
            assert [g[key] for g in partitioned[cid]["details"]["groups"]] == [
                g[key] for g in want["details"]["groups"]], (cid, key)


def test_many_clusters_use_the_cluster_robust_normal_interval_as_embedded(tmp_path: Path) -> None:
    df = evals(n_prompts=6300, samples=2, gain=0.05, seed=2)
    gates = {"regression": {"min_slice_size": 2050, "slices": ["language"], "metrics": REGRESSION["metrics"]}}
    path = project(tmp_path, df, gates, pieces=3, data={"cluster": "prompt_id"})
    embedded, partitioned = both(path, "regression", 1000)
    assert_close(embedded, partitioned)
    got = partitioned["regression.correct.max_drop[language=de]"]
    assert got["ci_method"].startswith("cluster-normal")
    # the cluster-robust standard error, computed here from the rows
    de = df[df["language"] == "de"]
    d = (de["cand_correct"] - de["prod_correct"]).groupby(de["prompt_id"]).agg(["sum", "size"])
    g, n = len(d), float(d["size"].sum())
    resid = d["sum"] - d["size"] * d["sum"].sum() / n
    se = float(np.sqrt(g / (g - 1) * (resid ** 2).sum()) / n)
    assert got["details"]["clusters"] == de["prompt_id"].nunique()
    assert got["delta"] == pytest.approx(de["cand_correct"].mean() - de["prod_correct"].mean(), rel=1e-9)
    assert got["half_width"] == pytest.approx(NormalDist().inv_cdf(0.975) * se, rel=1e-9)  # CR1, 95% two-sided
