"""Coverage of the fairness gate's disparity intervals on simulated data with known group rates.

Each data set draws rows into groups whose true selection rates are fixed, draws the candidate's
(and the baseline's) predictions from those rates, and runs the gate's own statistics
(:class:`GroupStats` and :func:`measure`, the shared multinomial sampler) to get the disparity's
point and bootstrap replicates. Four intervals are built from the same replicates:

* ``percentile``: the replicates' alpha/2 and 1 - alpha/2 quantiles;
* ``basic``: the reverse percentile interval ``[2 t - q_hi, 2 t - q_lo]``;
* ``bc``: the bias-corrected percentile interval (Efron 1981): ``z0 = Phi^-1(share of replicates
  below t)`` (ties half, the share kept within half a replicate of 0 and 1), quantiles at
  ``Phi(2 z0 -+ z)``;
* ``hull``: the gate's interval (:func:`gates.intervals.hull_interval`), from the lower of the
  percentile and basic lower ends to the higher of their upper ends.

Reported per scenario: coverage of the true disparity (nominal 95%), which side the gate's
interval misses on, and the share of data sets whose interval contains its own point estimate.

A second table runs the regression gate's estimates (:func:`gates.estimates.paired_estimates`) on
8 slices of 60 rows for the same symptom: where its paired differences' point sits among their
replicates, and how often its percentile interval holds the point.
``python bench/bench_fairness_coverage.py``.
"""
from __future__ import annotations

import argparse
import functools
from statistics import NormalDist

import numpy as np
import pandas as pd

from gates.checks.fairness._config import metric_specs, settings_of
from gates.checks.fairness._measure import measure
from gates.checks.fairness._stats import GroupStats, eval_data
from gates.context import Predictions, make_rng
from gates.estimates import paired_estimates, slice_by
from gates.groups import group_index
from gates.intervals import hull_interval
from gates.metrics import metric_registry

PHI = NormalDist()


def percentile(point: float, reps: np.ndarray, conf: float) -> tuple[float, float]:
    a = 1 - conf
    lo, hi = np.quantile(reps, [a / 2, 1 - a / 2])
    return float(lo), float(hi)


def basic(point: float, reps: np.ndarray, conf: float) -> tuple[float, float]:
    q_lo, q_hi = percentile(point, reps, conf)
    return 2 * point - q_hi, 2 * point - q_lo


def bc(point: float, reps: np.ndarray, conf: float) -> tuple[float, float]:
    b = reps.size
    share = (np.count_nonzero(reps < point) + 0.5 * np.count_nonzero(reps == point)) / b
    z0 = PHI.inv_cdf(min(max(share, 0.5 / b), 1 - 0.5 / b))
    z = PHI.inv_cdf(1 - (1 - conf) / 2)
    lo, hi = np.quantile(reps, [PHI.cdf(2 * z0 - z), PHI.cdf(2 * z0 + z)])
    return float(lo), float(hi)


METHODS = {"percentile": percentile, "bc": bc, "basic": basic, "hull": hull_interval}

#: name -> (group sizes, candidate rates, baseline rates or None)
SCENARIOS = {
    "8 groups x 60 rows, rates 0.30-0.37 (DPD 0.07)": ([60] * 8, np.linspace(0.30, 0.37, 8), None),
    "12 groups x 40 rows, rates 0.30-0.34 (DPD 0.04)": ([40] * 12, np.linspace(0.30, 0.34, 12), None),
    "6 groups x 150 rows, one at 0.45, rest 0.30 (DPD 0.15)": ([150] * 6, np.r_[[0.30] * 5, 0.45], None),
    "2 groups x 500 rows, 0.30 vs 0.40 (DPD 0.10)": ([500, 500], np.array([0.30, 0.40]), None),
    "paired: 8 x 80 rows, cand 0.30-0.38, base 0.30-0.36 (change 0.02)":
        ([80] * 8, np.linspace(0.30, 0.38, 8), np.linspace(0.30, 0.36, 8)),
    "paired: 2 x 400 rows, cand 0.30/0.40, base 0.30/0.40 (change 0)":
        ([400, 400], np.array([0.30, 0.40]), np.array([0.30, 0.40])),
}


def one(sizes: list[int], cand_rates: np.ndarray, base_rates: np.ndarray | None, seed: int,
        n_boot: int) -> tuple[float, np.ndarray]:
    """Return the disparity (or the paired change of disparities) and its replicates for one data set."""
    rng = np.random.default_rng(seed)
    group = np.repeat(np.arange(len(sizes)), sizes)
    n = group.size
    u = rng.random(n)  # shared: the two models agree on most rows, as real models do
    y = (rng.random(n) < 0.4).astype(int)
    cand = (u < cand_rates[group]).astype(int)
    base = None
    if base_rates is not None:
        v = np.where(rng.random(n) < 0.7, u, rng.random(n))
        base = (v < base_rates[group]).astype(int)
    data = eval_data("binary_classification", y, Predictions(cand, None),
                     None if base is None else Predictions(base, None), 1, (0, 1))
    spec = {"min_group_size": 1, "metrics": {"demographic_parity_difference": {"max": 1}}}
    settings = settings_of(spec)
    metric = metric_specs(spec, data.task)[0]
    frame = pd.DataFrame({"g": [f"g{i:02d}" for i in group]})
    stats = GroupStats(data, group_index(frame, ["g"]), n_boot, functools.partial(make_rng, seed, "fairness", "g"))
    m = measure(stats, metric, 1, "", settings)
    if base is None:
        return m.candidate, m.candidate_reps
    assert m.baseline is not None and m.baseline_reps is not None
    return m.candidate - m.baseline, m.candidate_reps - m.baseline_reps


def true_value(cand_rates: np.ndarray, base_rates: np.ndarray | None) -> float:
    d = float(cand_rates.max() - cand_rates.min())
    return d if base_rates is None else d - float(base_rates.max() - base_rates.min())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", type=int, default=300, help="simulated data sets per scenario")
    parser.add_argument("--bootstrap", type=int, default=2000, help="replicates per data set")
    args = parser.parse_args()
    conf = 0.95
    print(f"{args.sets} data sets per scenario, {args.bootstrap} replicates, nominal {conf:.0%}\n")
    print("| scenario | mean point - truth | " + " | ".join(f"{k} coverage" for k in METHODS)
          + " | hull misses (above / below truth) | "
          + " | ".join(f"{k} contains point" for k in METHODS) + " |")
    print("| --- " * (3 + 2 * len(METHODS)) + "|")
    for name, (sizes, cand_rates, base_rates) in SCENARIOS.items():
        truth = true_value(cand_rates, base_rates)
        covered = {k: 0 for k in METHODS}
        contains = {k: 0 for k in METHODS}
        above = below = 0  # the gate's interval lies above / below the truth
        bias = []
        for s in range(args.sets):
            point, reps = one(sizes, cand_rates, base_rates, 1000 + s, args.bootstrap)
            reps = reps[np.isfinite(reps)]
            bias.append(point - truth)
            for k, fn in METHODS.items():
                lo, hi = fn(point, reps, conf)
                covered[k] += lo <= truth <= hi
                contains[k] += lo <= point <= hi
            lo, hi = hull_interval(point, reps, conf)
            above += truth < lo
            below += truth > hi
        row = [name, f"{np.mean(bias):+.4f}"]
        row += [f"{covered[k] / args.sets:.1%}" for k in METHODS]
        row.append(f"{above / args.sets:.1%} / {below / args.sets:.1%}")
        row += [f"{contains[k] / args.sets:.1%}" for k in METHODS]
        print("| " + " | ".join(row) + " |", flush=True)
    regression(min(args.sets, 100), args.bootstrap, conf)


def regression(sets: int, n_boot: int, conf: float) -> None:
    """Print where the regression gate's paired slice differences sit among their replicates."""
    names = ["accuracy", "f1", "recall", "log_loss", "brier"]
    metrics = [metric_registry()[n] for n in names]
    found: dict[str, list[tuple[float, bool]]] = {n: [] for n in names}
    methods: dict[str, str] = {}
    for s in range(sets):
        rng = np.random.default_rng(s)
        n = 480
        y = (rng.random(n) < 0.4).astype(int)
        u = rng.random(n)
        pc = np.clip(0.3 * y + 0.7 * u, 0.01, 0.99)
        pb = np.clip(0.3 * y + 0.7 * np.where(rng.random(n) < 0.7, u, rng.random(n)), 0.01, 0.99)
        frame = pd.DataFrame({"s": np.repeat(np.arange(8), 60)})
        out = paired_estimates(y, Predictions((pc >= 0.5).astype(int), pc), Predictions((pb >= 0.5).astype(int), pb),
                               metrics, slice_by(frame, ["s"]), n_boot=n_boot,
                               rng=functools.partial(make_rng, s, "regression"), positive_label=1, classes=(0, 1))
        for name in names:
            for e in out[name]:
                d = e.difference
                assert d is not None and d.replicates is not None
                r = d.replicates[np.isfinite(d.replicates)]
                lo, hi = d.interval(conf)
                found[name].append((float(np.mean(r < d.value) + 0.5 * np.mean(r == d.value)), lo <= d.value <= hi))
                methods[name] = d.method
    print(f"\nRegression gate, {sets} data sets x 8 slices of 60 rows, candidate - baseline per slice\n")
    print("| metric | method | share of replicates below the point: median (5%-95%) "
          "| percentile interval holds the point |")
    print("| --- | --- | --- | --- |")
    for name in names:
        shares = np.array([f[0] for f in found[name]])
        held = np.mean([f[1] for f in found[name]])
        print(f"| {name} | {methods[name]} | {np.median(shares):.3f} ({np.quantile(shares, 0.05):.3f}-"
              f"{np.quantile(shares, 0.95):.3f}) | {held:.1%} |")


if __name__ == "__main__":
    main()

