"""Benchmark the regression gate's paired intervals against a plain sklearn bootstrap loop.

Data: a gradient-boosting classifier and a slightly different baseline trained on synthetic rows
(``sklearn.datasets.make_classification``), both scored on ``--rows`` held-out rows (default
100,000). Work measured, all with ``--replicates`` paired replicates (default 1000):

* ours: :func:`gates.estimates.paired_estimates` for accuracy, f1 and roc_auc (each alone), for
  every binary confusion metric together, for score-mean metrics (log_loss + brier), and for
  average precision; and the whole regression gate (``gates.checks.regression.run``) on a policy
  with accuracy, f1, roc_auc and churn.
* plain: the textbook paired bootstrap, one ``rng.integers`` index draw per replicate and the
  sklearn metric on both models. It is linear in replicates, so it runs ``--loop-replicates``
  (default 50) replicates and is scaled to ``--replicates``; the table says so.
* inference: the candidate model's own ``predict_proba`` on the same rows, the unavoidable cost.
* ``import gates`` and ``import gates.checks.regression`` in a fresh interpreter.

Times are CPU seconds (``time.process_time``: all threads of the process, waits for a busy machine
excluded), the best of ``--repeat`` runs after one warm-up; ratios come from this one invocation.

    python bench/bench_intervals.py                 # prints a Markdown table
    python bench/bench_intervals.py --rows 20000 --repeat 1
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm
from sklearn.datasets import make_classification
from sklearn.ensemble import HistGradientBoostingClassifier

from gates.config import load_policy
from gates.context import EvalContext, Predictions
from gates.estimates import paired_estimates, whole
from gates.metrics import metric_names, metric_registry

BINARY = "binary_classification"


def models_and_rows(n_rows: int, seed: int) -> tuple[Any, np.ndarray, np.ndarray, Predictions, Predictions]:
    """Train candidate and baseline on their own rows; return the candidate, X, y and both predictions."""
    X, y = make_classification(n_samples=n_rows + 40_000, n_features=20, n_informative=8, flip_y=0.05,
                               random_state=seed)
    X_train, y_train, X_eval, y_eval = X[:40_000], y[:40_000], X[40_000:], y[40_000:]
    cand = HistGradientBoostingClassifier(max_iter=200, random_state=seed).fit(X_train, y_train)
    base = HistGradientBoostingClassifier(max_iter=60, max_depth=3, random_state=seed).fit(X_train, y_train)
    preds = []
    for model in (cand, base):
        p = model.predict_proba(X_eval)[:, 1]
        preds.append(Predictions((p >= 0.5).astype(int), p, (0, 1)))
    return cand, X_eval, y_eval, preds[0], preds[1]


def best_time(fn: Callable[[], object], repeat: int) -> float:
    """Return the best CPU time (all threads of this process) of ``repeat`` runs after a warm-up.

    CPU seconds, not wall time: the machine is shared, and CPU time does not count the waits.
    """
    fn()
    times = []
    for _ in range(repeat):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return min(times)


def ours(y: np.ndarray, cand: Predictions, base: Predictions, names: list[str], n_boot: int) -> Callable[[], object]:
    metrics = [metric_registry()[n] for n in names]
    rng = lambda family: np.random.default_rng([1, len(family)])
    return lambda: paired_estimates(y, cand, base, metrics, whole(len(y)), n_boot=n_boot, rng=rng,
                                    positive_label=1, classes=(0, 1))


def plain_loop(y: np.ndarray, cand: Predictions, base: Predictions, fn: Callable[..., float], uses_scores: bool,
               n_boot: int) -> Callable[[], object]:
    """The textbook paired bootstrap: index draw per replicate, sklearn metric on both models."""
    c = cand.scores if uses_scores else cand.labels
    b = base.scores if uses_scores else base.labels

    def loop() -> object:
        rng = np.random.default_rng(2)
        out = np.empty((n_boot, 2))
        for r in range(n_boot):
            idx = rng.integers(0, len(y), len(y))
            out[r] = fn(y[idx], c[idx]), fn(y[idx], b[idx])
        return np.quantile(out[:, 0] - out[:, 1], [0.025, 0.975])

    return loop


def gate_run(tmp: Path, y: np.ndarray, cand: Predictions, base: Predictions, n_boot: int) -> Callable[[], object]:
    """The regression gate itself on prediction columns (data load excluded: the context caches it)."""
    pd.DataFrame({"label": y, "cp": cand.labels, "cs": cand.scores, "bp": base.labels, "bs": base.scores}
                 ).to_parquet(tmp / "eval.parquet")
    (tmp / "gates.yaml").write_text(textwrap.dedent(f"""\
        version: 1
        model:
          name: bench
          task: binary_classification
          candidate: {{predictions: cp, scores: cs}}
          baseline: {{predictions: bp, scores: bs}}
        data: {{eval: eval.parquet, target: label}}
        gates:
          regression:
            bootstrap: {n_boot}
            metrics:
              accuracy: {{min: 0.5, max_drop: 0.005}}
              f1: {{max_relative_drop: 0.01}}
              roc_auc: {{min: 0.7, max_drop: 0.005}}
              churn: {{max: 0.2}}
        """))
    from gates.checks.regression import run

    policy = load_policy(tmp / "gates.yaml")
    ctx = EvalContext(policy)
    ctx.predictions("candidate"), ctx.predictions("baseline")
    return lambda: run(ctx, policy.gates["regression"])


def import_time(module: str, repeat: int) -> float:
    code = f"import time; t = time.process_time(); import {module}; print(time.process_time() - t)"
    runs = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
            for _ in range(repeat + 1)]
    return min(runs[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--replicates", type=int, default=1000)
    parser.add_argument("--loop-replicates", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    model, X, y, cand, base = models_and_rows(args.rows, seed=0)
    B, L = args.replicates, args.loop_replicates
    scale = B / L
    inference = best_time(lambda: model.predict_proba(X), args.repeat)
    confusion = [n for n in metric_names(BINARY) if metric_registry()[n].family in ("confusion", "churn")]
    rows: list[tuple[str, float, float | None]] = []
    for name, fn, scores in (("accuracy", skm.accuracy_score, False), ("f1", skm.f1_score, False),
                             ("roc_auc", skm.roc_auc_score, True)):
        t_ours = best_time(ours(y, cand, base, [name], B), args.repeat)
        t_loop = best_time(plain_loop(y, cand, base, fn, scores, L), 1) * scale
        rows.append((name, t_ours, t_loop))
    rows.append((f"all {len(confusion)} confusion metrics + churn", best_time(ours(y, cand, base, confusion, B),
                                                                          args.repeat), None))
    rows.append(("log_loss + brier", best_time(ours(y, cand, base, ["log_loss", "brier"], B), args.repeat), None))
    rows.append(("average_precision", best_time(ours(y, cand, base, ["average_precision"], B), 1), None))
    with tempfile.TemporaryDirectory() as tmp:
        rows.append(("regression gate run (4 metrics, 6 checks)",
                     best_time(gate_run(Path(tmp), y, cand, base, B), args.repeat), None))
    print(f"{args.rows:,} rows, {B} paired replicates; plain loop timed on {L} replicates and scaled x{scale:g}; "
          f"candidate predict_proba {inference:.3f} CPU s\n")
    print("| work | ours (CPU s) | plain sklearn loop (CPU s) | speed-up | ours / predict_proba |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, t_ours, t_loop in rows:
        loop = f"{t_loop:.2f}" if t_loop is not None else "-"
        speed = f"{t_loop / t_ours:,.0f}x" if t_loop is not None else "-"
        print(f"| {name} | {t_ours:.4f} | {loop} | {speed} | {t_ours / inference:.3f} |")
    print()
    for module in ("gates", "gates.checks.regression"):
        print(f"- `import {module}`: {import_time(module, args.repeat):.3f} s")


if __name__ == "__main__":
    main()
