"""Benchmark per-example score intervals with clusters against a plain cluster bootstrap loop.

Data: ``--prompts`` prompts (default 25,000) answered ``--samples`` times (default 4) by two
versions: a 0/1 ``correct`` and a latency score per answer, a prompt's difficulty shared by its
samples and both versions (100,000 rows by default). Work measured, each for one score's
candidate mean and paired difference with ``--replicates`` replicates (default 1000):

* ours: :func:`gates.estimates.paired_estimates` with ``clusters`` (``bootstrap-clusters``: the
  core's Poisson weights keyed by prompt), the same without clusters (``bootstrap-rows``), and
  :func:`gates.clusters.normal_mean` (``cluster-normal``); and the whole regression gate
  (``gates.checks.regression.run``, 2 scores x 3 thresholds, 2 slices) on the eval file.
* plain: the textbook cluster bootstrap, drawing prompts with replacement and averaging their rows
  with numpy, one replicate at a time. It is linear in replicates, so it runs ``--loop-replicates``
  (default 20) and is scaled to ``--replicates``; the table says so.

Times are CPU seconds (``time.process_time``), the best of ``--repeat`` runs after one warm-up.

    python bench/bench_per_example.py
    python bench/bench_per_example.py --prompts 5000 --repeat 1
"""
from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from gates.checks import regression as rg
from gates.clusters import cluster_index, normal_mean
from gates.config import load_policy
from gates.context import EvalContext, Predictions
from gates.estimates import paired_estimates, whole
from gates.per_example import score_metric


def frame(prompts: int, samples: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    pid = np.repeat(np.arange(prompts), samples)
    hard = rng.normal(size=prompts)[pid]
    u = rng.random(pid.size)
    ms = rng.gamma(4.0, 60.0, prompts)[pid]
    return pd.DataFrame({
        "prompt_id": pid, "language": np.where(pid % 3 == 0, "de", "en"),
        "cand_correct": (u < 1 / (1 + np.exp(hard - 1.1))).astype(int),
        "prod_correct": (u < 1 / (1 + np.exp(hard - 1.0))).astype(int),
        "cand_ms": ms * rng.lognormal(0, 0.1, pid.size), "prod_ms": ms * rng.lognormal(0, 0.1, pid.size),
    })


def best(fn: Callable[[], Any], repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return min(times)


def plain_cluster_bootstrap(values: np.ndarray, codes: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    order = np.argsort(codes, kind="stable")
    starts = np.r_[0, np.cumsum(np.bincount(codes))]
    members = [order[a:b] for a, b in zip(starts[:-1], starts[1:])]
    out = np.empty(n_boot)
    for b in range(n_boot):
        rows = np.concatenate([members[g] for g in rng.integers(0, len(members), len(members))])
        out[b] = values[rows].mean()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=25_000)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--replicates", type=int, default=1000)
    parser.add_argument("--loop-replicates", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    df = frame(args.prompts, args.samples, 0)
    n = len(df)
    clusters = cluster_index(df, "prompt_id")
    cand_v = df[["cand_correct"]].to_numpy(float)
    prod_v = df[["prod_correct"]].to_numpy(float)
    cand = Predictions(cand_v, cand_v, ("correct",))
    prod = Predictions(prod_v, prod_v, ("correct",))
    metric = [score_metric("correct")]
    y = np.zeros(n)

    def boot(with_clusters: bool) -> Any:
        return paired_estimates(y, cand, prod, metric, whole(n), n_boot=args.replicates,
                                rng=lambda f: np.random.default_rng(1), clusters=clusters if with_clusters else None)

    def normal() -> Any:
        d = cand_v[:, 0] - prod_v[:, 0]
        return normal_mean(cand_v[:, 0], clusters.codes), normal_mean(d, clusters.codes)

    rows = [("bootstrap-clusters (ours)", best(lambda: boot(True), args.repeat)),
            ("bootstrap-rows (ours, no cluster)", best(lambda: boot(False), args.repeat)),
            ("cluster-normal (ours)", best(normal, args.repeat))]
    d = cand_v[:, 0] - prod_v[:, 0]
    loop = best(lambda: (plain_cluster_bootstrap(cand_v[:, 0], clusters.codes, args.loop_replicates, 2),
                         plain_cluster_bootstrap(d, clusters.codes, args.loop_replicates, 3)), 1)
    scale = args.replicates / args.loop_replicates
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        df.to_parquet(folder / "evals.parquet")
        doc = {"version": 1, "model": {"name": "bench", "task": "per_example",
                                       "candidate": {"scores": {"correct": "cand_correct", "latency": "cand_ms"}},
                                       "baseline": {"scores": {"correct": "prod_correct", "latency": "prod_ms"}}},
               "data": {"eval": "evals.parquet", "cluster": "prompt_id"},
               "gates": {"regression": {"bootstrap": args.replicates, "slices": ["language"], "metrics": {
                   "correct": {"min": 0.5, "max_drop": 0.02},
                   "latency": {"better": "lower", "max_relative_drop": 0.1}}}}}
        (folder / "gates.yaml").write_text(yaml.safe_dump(doc))
        policy = load_policy(folder / "gates.yaml")
        gate = best(lambda: rg.run(EvalContext(policy), policy.gates["regression"]), args.repeat)
        method = rg.run(EvalContext(policy), policy.gates["regression"])[0].ci_method
    print(f"{n:,} rows in {clusters.n_clusters:,} clusters, {args.replicates} replicates\n")
    print("| work | CPU s | plain loop (CPU s) | speed-up |\n| --- | ---: | ---: | ---: |")
    for name, t in rows:
        extra = f"| {loop * scale:.2f} (x{scale:g}) | {loop * scale / t:,.0f}x |" if "cluster" in name and "no cluster" not in name else "| - | - |"
        print(f"| {name}: candidate mean and paired difference | {t:.4f} {extra}")
    print(f"| regression gate `run` (2 scores x 3 thresholds x 3 slices; {method}) | {gate:.4f} | - | - |")


if __name__ == "__main__":
    main()
