"""Benchmark the embedded engine against a 2-worker dask LocalCluster on 2M and 10M rows of Parquet.

Data: ROWS rows in files of 1,000,000 rows (row groups of 250,000): 4 float features, an age column
(1% nulls), a 3-value site column, a binary target, plus a 200,000-row reference. Policy: the data gate
(row count, min/max, allowed values, null fraction of a 1%-null column, PSI drift on 4 columns) and the regression
gate (accuracy, f1 and recall with floors and drops, churn, sliced by site), with a logistic
regression candidate and a shallower baseline shipped as .skops files, so every row is predicted
twice.

Each (engine, rows) runs in its own subprocess: wall time, rows/s, the client's peak RSS
(``ru_maxrss`` of the client process: with dask it must not grow with the rows), and each
worker's peak RSS (``ru_maxrss`` inside the worker processes, read before the cluster closes).

    python bench/bench_dask.py                    # 2M and 10M rows, prints a Markdown table
    python bench/bench_dask.py --rows 200000      # a quick look
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

FILE_ROWS = 1_000_000
FEATURES = ["f0", "f1", "f2", "f3"]
POLICY = """\
version: 1
model:
  name: bench
  task: binary_classification
  candidate: candidate.skops
  baseline: baseline.skops
data: {eval: eval, target: y, reference: reference.parquet, features: [f0, f1, f2, f3]}
seed: 3
gates:
  data:
    checks:
      row_count: {min: 1000}
      columns:
        f0: {min: -10, max: 10}
        age: {min: 18, max: 90, max_null_fraction: 0.02}
        site: {allowed: [a, b, c]}
    drift: {default: {method: psi, max: 0.2}, columns: {f0: {}, f1: {}, f2: {}, f3: {}}}
  regression:
    bootstrap: 200
    slices: [site]
    metrics:
      accuracy: {min: 0.6, max_drop: 0.01}
      f1: {max_relative_drop: 0.02}
      recall: {min: 0.5}
      churn: {max: 0.2}
"""


def frame(n: int, seed: int) -> object:
    import pandas as pd

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    logit = x[:, 0] - 0.5 * x[:, 1] + 0.25 * x[:, 2]
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    out = pd.DataFrame(x, columns=FEATURES)
    out["age"] = np.where(rng.random(n) < 0.01, np.nan, rng.integers(18, 90, n).astype(float))
    out["site"] = rng.choice(np.array(["a", "b", "c"]), n)
    out["y"] = y
    return out


def write_data(folder: Path, rows: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    (folder / "eval").mkdir(parents=True)
    for i, start in enumerate(range(0, rows, FILE_ROWS)):
        part = frame(min(FILE_ROWS, rows - start), seed=100 + i)
        pq.write_table(pa.Table.from_pandas(part, preserve_index=False), folder / "eval" / f"part-{i:03d}.parquet",
                       row_group_size=250_000)
    ref = frame(200_000, seed=1)
    ref.to_parquet(folder / "reference.parquet")
    X = ref[FEATURES]
    sio.dump(LogisticRegression().fit(X, ref["y"]), folder / "candidate.skops")
    sio.dump(LogisticRegression(C=1e-4).fit(X[["f0", "f1"]].assign(f2=0.0, f3=0.0), ref["y"]),
             folder / "baseline.skops")
    (folder / "gates.yaml").write_text(POLICY)


def _warm() -> None:
    import gates.checks.data.partitioned  # noqa: F401
    import gates.checks.regression_partitioned  # noqa: F401
    import gates.engine.worker  # noqa: F401
    import pyarrow.parquet  # noqa: F401
    import scipy.stats  # noqa: F401
    import skops.io  # noqa: F401
    import sklearn.linear_model  # noqa: F401


def one(folder: Path, engine: str) -> dict[str, object]:
    """Run the policy once on ``engine`` in this process; return timings and peaks."""
    from gates.config import load_policy
    from gates.policy import EngineSpec
    from gates.runner import RunOptions, close_context, make_context, run_policy

    _warm()  # imports are not what is measured
    policy = load_policy(folder / "gates.yaml")
    spec = EngineSpec("dask", workers=2) if engine == "dask" else EngineSpec("local")
    t0 = time.perf_counter()
    ctx = make_context(policy, None, RunOptions(engine=spec))
    if engine == "dask":  # the workers' first imports (pandas, pyarrow, sklearn, gates) are start-up too
        ctx.engine.client.run(_warm)  # type: ignore[attr-defined]
    started = time.perf_counter()
    result = run_policy(policy, context=ctx)
    wall = time.perf_counter() - started
    workers: list[float] = []
    if engine == "dask":
        peaks = ctx.engine.client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # type: ignore[attr-defined]
        workers = [round(v / 1024, 0) for v in peaks.values()]
    close_context(ctx)
    return {"engine": engine, "rows": result.context.n_rows, "wall_s": round(wall, 2),
            "startup_s": round(started - t0, 2), "rows_per_s": round(result.context.n_rows / wall),
            "client_peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "worker_peak_mb": workers, "checks": len(result.verdict.checks),
            "partitions": result.engine["partitions"],
            "statuses": sorted({c.status.value for c in result.verdict.checks})}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="*", default=[2_000_000, 10_000_000])
    parser.add_argument("--one", nargs=2, metavar=("FOLDER", "ENGINE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(Path(args.one[0]), args.one[1])))
        return
    rows_out = []
    with tempfile.TemporaryDirectory() as tmp:
        for rows in args.rows:
            folder = Path(tmp) / str(rows)
            write_data(folder, rows)
            for engine in ("local", "dask"):
                out = subprocess.run([sys.executable, __file__, "--one", str(folder), engine], capture_output=True,
                                     text=True, check=True)
                rows_out.append(json.loads(out.stdout.strip().splitlines()[-1]))
                print(json.dumps(rows_out[-1]), file=sys.stderr)
    print("| engine | rows | partitions | start-up s | wall s | rows/s | client peak RSS MB | worker peak RSS MB |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows_out:
        workers = ", ".join(str(int(w)) for w in r["worker_peak_mb"]) or "-"  # type: ignore[attr-defined]
        print(f"| {r['engine']} | {r['rows']:,} | {r['partitions']} | {r['startup_s']} | {r['wall_s']} | "
              f"{r['rows_per_s']:,} | "
              f"{r['client_peak_mb']} | {workers} |")


if __name__ == "__main__":
    main()
