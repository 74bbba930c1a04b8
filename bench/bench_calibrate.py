"""Benchmark ``model-gates calibrate`` against calibrating by re-running the gate on simulated eval sets.

Data: a gradient-boosting classifier and a shallower baseline trained on synthetic rows
(``sklearn.datasets.make_classification``), both scored on ``--rows`` held-out rows (default
100,000), given to the policy as prediction columns. The policy has three baseline-relative checks
(``roc_auc``, ``accuracy`` and ``log_loss`` ``max_drop``), bootstrap 1000, Holm; a second policy adds
``slices: [region]`` (5 regions: 18 checks in one Holm family).

Work measured (CPU seconds, ``time.process_time``, best of ``--repeat`` after one warm-up):

* ours: :func:`gates.calibration.calibrate` with ``--simulations`` simulated eval sets (default
  1000) per scenario, and its parts: the regression gate's own estimates (what ``model-gates run``
  computes anyway, reused for the reported half-widths), the symmetrised null model and its
  draws, and the replay of the gate's decision rule in the three scenarios.
* naive: what calibrating without the null model costs: per simulated eval set, draw ``n`` rows
  from the symmetrised rows and run the gate's paired estimates (1000 replicates) and decision.
  It is linear in simulations, so it runs ``--naive-simulations`` (default 3) and is scaled.
* inference: the candidate's own ``predict_proba`` on the eval rows, the cost a gate run cannot avoid.

    python bench/bench_calibrate.py                 # prints a Markdown table
    python bench/bench_calibrate.py --rows 20000 --repeat 1
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
from sklearn.datasets import make_classification
from sklearn.ensemble import HistGradientBoostingClassifier

from gates.calibration import calibrate, regression_family, summarise
from gates.checks import regression
from gates.config import load_policy
from gates.context import EvalContext, Predictions
from gates.estimates import paired_estimates, whole
from gates.metrics import metric_registry
from gates.null_model import NullModel, Target

METRICS = {"roc_auc": {"max_drop": 0.005}, "accuracy": {"max_drop": 0.01}, "log_loss": {"max_drop": 0.01}}


def scored_rows(n_rows: int, seed: int) -> tuple[Any, np.ndarray, pd.DataFrame]:
    """Return the candidate model, the eval features and a frame with labels and both models' predictions."""
    X, y = make_classification(n_samples=n_rows + 40_000, n_features=20, n_informative=8, flip_y=0.05,
                               random_state=seed)
    cand = HistGradientBoostingClassifier(max_iter=200, random_state=seed).fit(X[:40_000], y[:40_000])
    base = HistGradientBoostingClassifier(max_iter=60, max_depth=3, random_state=seed).fit(X[:40_000], y[:40_000])
    X_eval = X[40_000:]
    frame = pd.DataFrame({"label": y[40_000:],
                          "region": np.random.default_rng(seed).choice(list("abcde"), n_rows)})
    for role, model in (("cand", cand), ("base", base)):
        p = model.predict_proba(X_eval)[:, 1]
        frame[f"{role}_score"], frame[f"{role}_pred"] = p, (p >= 0.5).astype(int)
    return cand, X_eval, frame


def write_policy(folder: Path, frame: pd.DataFrame, slices: bool) -> Path:
    frame.to_parquet(folder / "eval.parquet")
    section: dict[str, Any] = {"bootstrap": 1000, "metrics": METRICS}
    if slices:
        section["slices"] = ["region"]
    doc = {"version": 1, "model": {"name": "bench", "task": "binary_classification", "positive_label": 1,
                                   "candidate": {"predictions": "cand_pred", "scores": "cand_score"},
                                   "baseline": {"predictions": "base_pred", "scores": "base_score"}},
           "data": {"eval": "eval.parquet", "target": "label"}, "seed": 1, "gates": {"regression": section}}
    path = folder / ("sliced.yaml" if slices else "gates.yaml")
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


def loaded_context(path: Path) -> EvalContext:
    """Return a context with data and predictions loaded (calibrate's own work starts after)."""
    ctx = EvalContext(load_policy(path))
    ctx.predictions("candidate")
    ctx.predictions("baseline")
    return ctx


def cpu(fn: Callable[[], Any], repeat: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def parts(ctx: EvalContext, simulations: int, repeat: int) -> dict[str, float]:
    """Return the CPU time of calibrate's parts: the gate's estimates, the null model, the replay."""
    spec = ctx.policy.gates["regression"]
    measured, checks = regression.measure(ctx, spec)
    decided = [p for p in regression.interval_family(measured, checks) if p.oriented.is_defined]
    cand, base = ctx.predictions("candidate"), ctx.predictions("baseline")
    assert cand is not None and base is not None
    targets = [Target(p.check.metric, p.check.slicing, p.check.slice) for p in decided]

    def null() -> tuple[np.ndarray, np.ndarray, list[str]]:
        model = NullModel.of(ctx.y_true, cand, base, measured.slicings, task="binary_classification",
                             positive_label=1, classes=ctx.classes)
        return model.simulate(targets, simulations, ctx.rng("bench"))

    family, _ = regression_family(ctx, spec, simulations)
    assert family is not None
    return {"estimates": cpu(lambda: regression.measure(ctx, spec), repeat), "null": cpu(null, repeat),
            "replay": cpu(lambda: summarise([family], model="bench", rows=ctx.n_rows, simulations=simulations,
                                            seed=1), repeat)}


def naive_per_simulation(ctx: EvalContext, sims: int) -> float:
    """Return CPU seconds per simulated eval set when each one is re-estimated by the gate's bootstrap."""
    cand, base = ctx.predictions("candidate"), ctx.predictions("baseline")
    assert cand is not None and base is not None
    y, n = ctx.y_true, ctx.n_rows
    registry = metric_registry()
    metrics = [registry[m] for m in METRICS]
    settings = regression.Settings.of(ctx.policy.gates["regression"])
    rng = np.random.default_rng(0)
    start = time.process_time()
    for _ in range(sims):
        idx = rng.integers(0, 2 * n, n)
        rows, twin = idx % n, idx >= n
        c = Predictions(np.where(twin, base.labels[rows], cand.labels[rows]),
                        np.where(twin, base.scores[rows], cand.scores[rows]))
        b = Predictions(np.where(twin, cand.labels[rows], base.labels[rows]),
                        np.where(twin, cand.scores[rows], base.scores[rows]))
        found = paired_estimates(y[rows], c, b, metrics, whole(n), n_boot=1000, rng=lambda _: rng, positive_label=1)
        estimates = [found[m.name][0].difference for m in metrics]
        for _scenario in range(3):
            regression.family_outcomes(settings, estimates, [METRICS[m.name]["max_drop"] for m in metrics])
    return (time.process_time() - start) / sims


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--simulations", type=int, default=1000)
    parser.add_argument("--naive-simulations", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    model, X_eval, frame = scored_rows(args.rows, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        flat = loaded_context(write_policy(Path(tmp), frame, slices=False))
        sliced = loaded_context(write_policy(Path(tmp), frame, slices=True))
        total = cpu(lambda: calibrate(flat, simulations=args.simulations), args.repeat)
        split = parts(flat, args.simulations, args.repeat)
        sliced_total = cpu(lambda: calibrate(sliced, simulations=args.simulations), args.repeat)
        sliced_split = parts(sliced, args.simulations, args.repeat)
        naive = naive_per_simulation(flat, args.naive_simulations)
    inference = cpu(lambda: model.predict_proba(X_eval), args.repeat)
    own = total - split["estimates"]
    s = args.simulations
    rows = [
        (f"`calibrate`, 3 checks, {s} simulations x 3 scenarios", f"{total:.2f} s"),
        ("  of which the gate's own estimates (as `run`)", f"{split['estimates']:.2f} s"),
        ("  of which the null model and its draws", f"{split['null']:.3f} s"),
        ("  of which replaying the decision rule", f"{split['replay']:.3f} s"),
        ("calibrate's own work (total minus the gate's estimates)", f"{own:.2f} s"),
        (f"naive: re-estimate each simulated eval set ({args.naive_simulations} run, scaled to {s})",
         f"{naive * s:.0f} s ({naive:.2f} s each): {naive * s / total:.0f}x ours"),
        ("candidate `predict_proba` on the eval rows (inference)", f"{inference:.2f} s"),
        (f"`calibrate`, 18 checks (5 slices), {s} simulations", (
            f"{sliced_total:.2f} s (estimates {sliced_split['estimates']:.2f}, null {sliced_split['null']:.3f}, "
            f"replay {sliced_split['replay']:.2f})")),
    ]
    print(f"rows: {args.rows:,}; simulations: {s}; CPU seconds, best of {args.repeat}\n")
    print("| measurement | result |\n| --- | --- |")
    for what, result in rows:
        print(f"| {what} | {result} |")


if __name__ == "__main__":
    main()
