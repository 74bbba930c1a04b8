"""Benchmark the fairness gate against fairlearn's MetricFrame doing the same work.

Data: 1,000,000 scored rows with three sensitive columns (sex: 2 values, race: 5, age_band: 4,
skewed so some groups are small), a binary target and two correlated models' labels. The gate is
asked for four groupings (sex, race, age_band and the intersection sex & race) and four disparity
metrics (demographic parity difference and ratio, equalized odds difference with
``no_worse_than_baseline``, equal opportunity ratio), 1000 bootstrap replicates, Holm correction:
20 checks, every one with a paired interval, every group's table in ``details``.

Workloads, each in its own subprocess (fresh memory):

* ``gate``: ``gates.checks.fairness.assess`` on the loaded frame and labels: grouping, count
  tables, all point estimates, 1000 paired replicates per grouping, decisions, details.
* ``gate_run``: the same through ``GATE.run`` on an ``EvalContext`` whose models are prediction
  columns of a Parquet file (includes reading the file).
* ``fairlearn``: fairlearn's point estimates alone for the same checks: one ``MetricFrame``
  (selection_rate, tpr, fpr) per grouping and model, then ``difference``/``ratio``.
* ``fairlearn_boot``: fairlearn's own bootstrap (``MetricFrame(n_boot=..., ci_quantiles=...)``)
  on one grouping and one model with a few replicates; the cost of 1000 replicates for every
  grouping and both models is extrapolated linearly (fairlearn resamples and recomputes the whole
  frame per replicate). fairlearn's replicates are not paired across models, so it has no
  interval for ``no_worse_than_baseline`` at all.
* ``bincount``: the floor: one ``np.bincount`` per grouping over (group, y, candidate, baseline).

Time is the best of ``--repeat`` runs after a warm-up (fairlearn: one run, minutes each); peak
memory is the largest resident-set growth above the level before the first run (sampled every
2 ms from /proc/self/statm).

    python bench/bench_fairness.py                 # full size, prints a Markdown table
    python bench/bench_fairness.py --rows 100000 --repeat 1
"""
from __future__ import annotations

import argparse
import functools
import json
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

GROUPINGS: list[list[str]] = [["sex"], ["race"], ["age_band"], ["sex", "race"]]
SPEC: dict[str, Any] = {
    "bootstrap": 1000,
    "groups": [g[0] if len(g) == 1 else g for g in GROUPINGS],
    "metrics": {
        "demographic_parity_difference": {"max": 0.1},
        "demographic_parity_ratio": {"min": 0.8},
        "equalized_odds_difference": {"max": 0.1, "no_worse_than_baseline": True, "margin": 0.01},
        "equal_opportunity_ratio": {"min": 0.8},
    },
}
FAIRLEARN_BOOT = 3  # replicates actually run by fairlearn_boot (then extrapolated to 1000)


# ---------------------------------------------------------------- data


def make_frame(n: int, seed: int = 0) -> pd.DataFrame:
    """Return the benchmark frame: sensitive columns, target, two models' labels."""
    rng = np.random.default_rng(seed)
    sex = rng.choice(["F", "M"], n, p=[0.45, 0.55])
    race = rng.choice(["A", "B", "C", "D", "E"], n, p=[0.6, 0.2, 0.12, 0.06, 0.02])
    age = rng.choice(["<25", "25-40", "40-60", "60+"], n, p=[0.2, 0.35, 0.3, 0.15])
    y = (rng.random(n) < np.where(race == "A", 0.35, 0.3)).astype(np.int64)
    shared = rng.random(n)
    tpr = np.where(sex == "F", 0.78, 0.82)

    def model(noise: float) -> np.ndarray:
        u = np.where(rng.random(n) < noise, rng.random(n), shared)
        return np.where(y == 1, u < tpr, u < 0.1).astype(np.int64)

    return pd.DataFrame({"sex": pd.array(sex, dtype="str"), "race": pd.array(race, dtype="str"),
                         "age_band": pd.array(age, dtype="str"), "label": y,
                         "cand_pred": model(0.3), "base_pred": model(0.3)})


POLICY = """\
version: 1
model:
  name: bench
  task: binary_classification
  candidate: {predictions: cand_pred}
  baseline: {predictions: base_pred}
data:
  eval: eval.parquet
  target: label
  sensitive: [sex, race, age_band]
gates:
  fairness: %s
"""


# ---------------------------------------------------------------- workloads (run in a subprocess)


def workload(name: str, folder: Path) -> Callable[[], Any]:
    """Return a no-argument function doing workload ``name`` (data loaded before timing)."""
    if name == "gate_run":
        return _gate_run(folder)
    df = pd.read_parquet(folder / "eval.parquet")
    if name == "gate":
        return functools.partial(_gate, df)
    if name == "fairlearn":
        return functools.partial(_fairlearn, df)
    if name == "fairlearn_boot":
        return functools.partial(_fairlearn_boot, df)
    if name == "bincount":
        return functools.partial(_bincount, df)
    raise SystemExit(f"unknown workload {name}")


def _gate(df: pd.DataFrame) -> Any:
    from gates.checks.fairness import assess, eval_data
    from gates.context import Predictions, make_rng

    y = df["label"].to_numpy()
    data = eval_data("binary_classification", y, Predictions(df["cand_pred"].to_numpy(), None),
                     Predictions(df["base_pred"].to_numpy(), None), 1, (0, 1))
    results = assess(df, data, SPEC, functools.partial(make_rng, 1))
    return len(results)


def _gate_run(folder: Path) -> Callable[[], Any]:
    from gates.checks.fairness import GATE
    from gates.config import load_policy
    from gates.context import EvalContext

    policy = load_policy(folder / "gates.yaml")

    def run() -> Any:
        ctx = EvalContext(policy)
        return len(GATE.run(ctx, policy.gates["fairness"]))

    return run


def _fairlearn_frames(df: pd.DataFrame, model: str, **boot: Any) -> list[Any]:
    from fairlearn import metrics as flm

    fns = {"selection_rate": flm.selection_rate, "tpr": flm.true_positive_rate, "fpr": flm.false_positive_rate}
    return [flm.MetricFrame(metrics=fns, y_true=df["label"], y_pred=df[model], sensitive_features=df[cols], **boot)
            for cols in GROUPINGS]


def _fairlearn(df: pd.DataFrame) -> Any:
    """The point estimates of every check, as fairlearn computes them."""
    out = []
    for model in ("cand_pred", "base_pred"):
        for mf in _fairlearn_frames(df, model):
            diff, ratio = mf.difference(), mf.ratio()
            out += [diff["selection_rate"], ratio["selection_rate"], max(diff["tpr"], diff["fpr"]), ratio["tpr"]]
    return len(out)


def _fairlearn_boot(df: pd.DataFrame) -> Any:
    from fairlearn import metrics as flm

    fns = {"selection_rate": flm.selection_rate, "tpr": flm.true_positive_rate, "fpr": flm.false_positive_rate}
    mf = flm.MetricFrame(metrics=fns, y_true=df["label"], y_pred=df["cand_pred"],
                         sensitive_features=df[GROUPINGS[-1]], n_boot=FAIRLEARN_BOOT,
                         ci_quantiles=[0.025, 0.975], random_state=0)
    return mf.difference_ci()


def _bincount(df: pd.DataFrame) -> Any:
    y, c, b = (df[k].to_numpy() for k in ("label", "cand_pred", "base_pred"))
    out = []
    for cols in GROUPINGS:
        codes = df.groupby(cols, sort=False).ngroup().to_numpy()
        out.append(np.bincount(((codes * 2 + y) * 2 + c) * 2 + b))
    return len(out)


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096 / 2**20


def measure_one(name: str, folder: Path, repeat: int) -> dict[str, float]:
    """Time one workload (best of ``repeat``, after a warm-up when repeating) and its peak memory growth.

    A single run (the fairlearn workloads, minutes each) has no warm-up: its imports happen while
    the workload is set up, before timing.
    """
    import fairlearn.metrics  # noqa: F401 -- imported before timing, like the gate's modules

    import gates.checks.fairness  # noqa: F401

    fn = workload(name, folder)
    base = _rss_mb()
    peak = [base]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss_mb())
            time.sleep(0.002)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    if repeat > 1:
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    done.set()
    sampler.join()
    return {"seconds": min(times), "peak_mb": peak[0] - base}


# ---------------------------------------------------------------- driver


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_one(args.one, Path(args.folder), args.repeat)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_frame(args.rows).to_parquet(folder / "eval.parquet")
        (folder / "gates.yaml").write_text(POLICY % json.dumps(SPEC), encoding="utf-8")
        results = {}
        for name in ("bincount", "gate", "gate_run", "fairlearn", "fairlearn_boot"):
            repeat = 1 if name.startswith("fairlearn") else args.repeat
            out = subprocess.run([sys.executable, __file__, "--one", name, "--folder", str(folder),
                                  "--repeat", str(repeat)], capture_output=True, text=True, check=True)
            results[name] = json.loads(out.stdout.strip().splitlines()[-1])
            print(name, results[name], file=sys.stderr)
    print(render(results, args.rows))


def render(results: dict[str, dict[str, float]], rows: int) -> str:
    """Return the results as a Markdown table with the ratios the design asks for."""
    gate, point = results["gate"]["seconds"], results["fairlearn"]["seconds"]
    # fairlearn_boot also builds the frame's point estimates: take one frame's share of those off
    one_frame = point / (len(GROUPINGS) * 2)
    per_rep = max(results["fairlearn_boot"]["seconds"] - one_frame, 0.0) / FAIRLEARN_BOOT
    boot_all = per_rep * 1000 * len(GROUPINGS) * 2
    def row(label: str, key: str, seconds: str) -> str:
        return f"| {label} | {seconds} | {results[key]['peak_mb']:.0f} MB |"

    lines = [
        f"| workload ({rows:,} rows, {len(GROUPINGS)} groupings, 1000 replicates) | time | peak memory |",
        "| --- | --- | --- |",
        row("one `np.bincount` per grouping (floor)", "bincount", f"{results['bincount']['seconds']:.3f} s"),
        row("fairness gate, `assess` (20 checks, all intervals)", "gate", f"{gate:.3f} s"),
        row("fairness gate, `GATE.run` incl. reading Parquet", "gate_run", f"{results['gate_run']['seconds']:.3f} s"),
        row("fairlearn MetricFrame, point estimates only", "fairlearn", f"{point:.1f} s"),
        row("fairlearn `n_boot`, per replicate (1 grouping, 1 model)", "fairlearn_boot", f"{per_rep:.1f} s"),
        f"| fairlearn `n_boot=1000`, all groupings, both models (extrapolated) | {boot_all / 3600:.1f} h | |",
        "",
        (f"Gate with intervals vs fairlearn's point estimates alone: **{point / gate:.0f}x** faster; "
         f"vs fairlearn's own bootstrap: ~{boot_all / gate:,.0f}x."),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
