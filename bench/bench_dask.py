"""Benchmark the embedded engine against a 2-worker dask LocalCluster on 2M and 10M rows of Parquet.

Data: ROWS rows in files of 1,000,000 rows (row groups of 250,000): 4 float features, an age column
(1% nulls, whole years), a 3-value site column, a binary target, plus a 200,000-row reference,
with a logistic-regression candidate and a shallower baseline shipped as .skops files, so every
row is predicted twice. Policies (``--policy``):

- ``basic``: the data gate (row count, min/max, allowed values, null fraction of a 1%-null column,
  PSI drift on 4 columns) and the regression gate (accuracy, f1 and recall with floors and drops,
  churn, sliced by site): what bench/README.md recorded first.
- ``all``: what runs on the cluster across the gates: the data gate (the basic checks, PSI drift on
  the 4 features and ks on age, a row-wise Great Expectations expectation), the regression gate
  (confusion metrics, log_loss and binary roc_auc with floors and drops against the baseline:
  paired intervals, sliced by site), the fairness gate (selection and true-positive rates by site)
  and, when the dask engine has its partitioned form, the robustness gate (gaussian noise with
  flip-rate and accuracy thresholds).
- ``scores``: the statistics whose client-side tables grow with distinct values: binary roc_auc
  (candidate against baseline) on continuous scores and ks drift on a continuous feature.

Each (engine, rows) runs in its own subprocess: wall time and CPU seconds of ``run_policy``
(the client's, plus each worker's ``process_time`` over the run), rows/s, the client's peak RSS
(``ru_maxrss`` of the client process, which also hosts the LocalCluster's scheduler) and each
worker's peak RSS (``ru_maxrss`` inside the worker processes, read before the cluster closes), and
the 1-minute load average before and after. Engines (``--engines``): ``local`` (the embedded
engine as by default: in batches when every gate can run from partials), ``local-whole`` (the
embedded engine forced to read the whole frame: ``engine: {kind: local, batches: false}``) and ``dask`` (a LocalCluster of 2 worker processes).

    python bench/bench_dask.py                              # basic policy, 2M and 10M rows
    python bench/bench_dask.py --policy all --rows 200000   # a quick look
    python bench/bench_dask.py --policy scores --data /tmp/bench-data --engines dask
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

FILE_ROWS = 1_000_000
FEATURES = ["f0", "f1", "f2", "f3"]
ENGINES = ("local", "local-whole", "dask")
HEAD = """\
version: 1
model:
  name: bench
  task: binary_classification
  candidate: candidate.skops
  baseline: baseline.skops
data: {eval: eval, target: y, reference: reference.parquet, features: [f0, f1, f2, f3]}
seed: 3
gates:
"""
BASIC = HEAD + """\
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
ALL = HEAD + """\
  data:
    great_expectations: gx.json
    checks:
      row_count: {min: 1000}
      columns:
        f0: {min: -10, max: 10}
        age: {min: 18, max: 90, max_null_fraction: 0.02}
        site: {allowed: [a, b, c]}
    drift:
      default: {method: psi, max: 0.2}
      columns: {f0: {}, f1: {}, f2: {}, f3: {}, age: {method: ks, max: 0.05}}
  regression:
    bootstrap: 200
    slices: [site]
    metrics:
      accuracy: {min: 0.6, max_drop: 0.01}
      f1: {max_relative_drop: 0.02}
      recall: {min: 0.5}
      churn: {max: 0.2}
      log_loss: {max: 0.7, max_drop: 0.01}
      roc_auc: {min: 0.7, max_drop: 0.01}
  fairness:
    bootstrap: 200
    groups: [site]
    metrics:
      selection_rate_difference: {max: 0.05}
      tpr_difference: {max: 0.05}
"""
ROBUSTNESS = """\
  robustness:
    perturbations:
      gaussian_noise: {scale: 0.1, columns: numeric}
    metrics:
      flip_rate: {max: 0.2}
      accuracy: {max_drop: 0.05}
"""
SCORES = HEAD + """\
  data:
    drift: {columns: {f0: {method: ks, max: 0.05}}}
  regression:
    metrics:
      roc_auc: {min: 0.7, max_drop: 0.01}
"""
GX_SUITE = {"name": "bench", "id": None, "meta": {}, "notes": None, "expectations": [
    {"type": "expect_column_values_to_be_between", "kwargs": {"column": "f1", "min_value": -10, "max_value": 10},
     "meta": {}}]}


def policy_text(name: str) -> str:
    """Return the policy ``name``; ``all`` has the robustness gate when the dask engine can run it."""
    if name == "basic":
        return BASIC
    if name == "scores":
        return SCORES
    from gates.engine.runner import PARTITIONED

    return ALL + (ROBUSTNESS if "robustness" in PARTITIONED else "")


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
    (folder / "gx.json").write_text(json.dumps(GX_SUITE))


def _warm() -> None:
    import great_expectations  # noqa: F401  (seconds to import; the policy "all" reads a GX suite)

    import gates.checks.data.gx_engine  # noqa: F401
    import gates.checks.data.partitioned  # noqa: F401
    import gates.checks.fairness.partitioned  # noqa: F401
    import gates.checks.regression_partitioned  # noqa: F401
    import gates.checks.robustness.partitioned  # noqa: F401
    import gates.engine.worker  # noqa: F401
    import pyarrow.parquet  # noqa: F401
    import scipy.stats  # noqa: F401
    import skops.io  # noqa: F401
    import sklearn.linear_model  # noqa: F401


def _cpu() -> float:
    return time.process_time()


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _options(engine: str) -> object:
    """Return the RunOptions of ``engine``; ``local-whole`` is the embedded engine reading the whole frame."""
    import dataclasses
    import inspect

    from gates.policy import EngineSpec
    from gates.runner import RunOptions

    if engine == "dask":
        return RunOptions(engine=EngineSpec("dask", workers=2))
    if engine == "local":
        return RunOptions(engine=EngineSpec("local"))
    if "batches" in {f.name for f in dataclasses.fields(EngineSpec)}:  # engine: {kind: local, batches: false}
        return RunOptions(engine=EngineSpec("local", batches=False))  # type: ignore[call-arg]
    raise SystemExit(f"no whole-frame switch in this version: {inspect.signature(EngineSpec)}")


def one(folder: Path, engine: str, policy_name: str) -> dict[str, object]:
    """Run policy ``policy_name`` once on ``engine`` in this process; return timings and peaks."""
    from gates.config import load_policy
    from gates.runner import close_context, make_context, run_policy

    _warm()  # imports are not what is measured
    (folder / "gates.yaml").write_text(policy_text(policy_name))
    policy = load_policy(folder / "gates.yaml")
    load_before = os.getloadavg()[0]
    rss_before = _peak_mb()
    t0 = time.perf_counter()
    ctx = make_context(policy, None, _options(engine))  # type: ignore[arg-type]
    client = getattr(getattr(ctx, "engine", None), "client", None)
    if client is not None:  # the workers' first imports (pandas, pyarrow, sklearn, gates) are start-up too
        client.run(_warm)
    started = time.perf_counter()
    cpu0 = _cpu()
    workers_cpu0 = client.run(_cpu) if client is not None else {}
    result = run_policy(policy, context=ctx)
    wall = time.perf_counter() - started
    cpu = _cpu() - cpu0
    workers: list[float] = []
    workers_cpu: list[float] = []
    if client is not None:
        workers = [round(v) for v in client.run(_peak_mb).values()]
        after = client.run(_cpu)
        workers_cpu = [round(after[k] - workers_cpu0.get(k, 0.0), 1) for k in after]
    close_context(ctx)
    checks = result.verdict.checks
    return {"engine": engine, "policy": policy_name, "rows": result.context.n_rows, "wall_s": round(wall, 2),
            "startup_s": round(started - t0, 2), "rows_per_s": round(result.context.n_rows / wall),
            "client_cpu_s": round(cpu, 1), "worker_cpu_s": workers_cpu,
            "cpu_s": round(cpu + sum(workers_cpu), 1),
            "client_rss_before_mb": round(rss_before), "client_peak_mb": round(_peak_mb()),
            "worker_peak_mb": workers, "checks": len(checks), "partitions": result.engine["partitions"],
            "gates": sorted({c.gate for c in checks}),
            "statuses": {s: sum(c.status.value == s for c in checks) for s in sorted({c.status.value for c in checks})},
            "not_distributable": sorted(c.id for c in checks if c.reason == "not_distributable"),
            "verdict": {c.id: c.status.value for c in checks},
            "load_before": round(load_before, 2), "load_after": round(os.getloadavg()[0], 2)}


def table(rows: list[dict[str, object]]) -> str:
    """Return the Markdown table of runs."""
    out = ["| policy | engine | rows | partitions | start-up s | wall s | rows/s | CPU s (client + workers) | "
           "client RSS MB (before run, peak) | worker peak RSS MB | load avg (before, after) |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        workers = ", ".join(str(int(w)) for w in r["worker_peak_mb"]) or "-"  # type: ignore[attr-defined]
        cpu = f"{r['cpu_s']} ({r['client_cpu_s']} + {' + '.join(str(c) for c in r['worker_cpu_s'])})" \
            if r["worker_cpu_s"] else str(r["cpu_s"])
        out.append(f"| {r['policy']} | {r['engine']} | {r['rows']:,} | {r['partitions']} | {r['startup_s']} | "
                   f"{r['wall_s']} | {r['rows_per_s']:,} | {cpu} | {r['client_rss_before_mb']}, {r['client_peak_mb']} | "
                   f"{workers} | "
                   f"{r['load_before']}, {r['load_after']} |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="*", default=[2_000_000, 10_000_000])
    parser.add_argument("--policy", choices=("basic", "all", "scores"), default="basic")
    parser.add_argument("--engines", nargs="*", choices=ENGINES, default=["local", "dask"])
    parser.add_argument("--data", type=Path, help="keep the generated data here (one folder per row count) "
                        "and reuse it on later runs")
    parser.add_argument("--one", nargs=3, metavar=("FOLDER", "ENGINE", "POLICY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(Path(args.one[0]), args.one[1], args.one[2])))
        return
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        root = args.data or Path(tmp)
        for rows in args.rows:
            folder = root / str(rows)
            if not (folder / "eval").is_dir():
                write_data(folder, rows)
            for engine in args.engines:
                out = subprocess.run([sys.executable, __file__, "--one", str(folder), engine, args.policy],
                                     capture_output=True, text=True)
                if out.returncode != 0:
                    sys.exit(f"{engine} on {rows:,} rows failed:\n{out.stderr}")
                runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
                print(json.dumps({k: v for k, v in runs[-1].items() if k != "verdict"}), file=sys.stderr)
    print(table(runs))
    for rows in args.rows:
        verdicts = {r["engine"]: r["verdict"] for r in runs if r["rows"] == rows}
        same = len({json.dumps(v, sort_keys=True) for v in verdicts.values()}) == 1
        print(f"{rows:,} rows: {'the same' if same else 'NOT the same'} check ids and statuses on "
              f"{', '.join(verdicts)}")


if __name__ == "__main__":
    main()
