"""Target leakage: a single feature that, alone, predicts the target almost perfectly.

``data.leakage.max[col]`` per feature, ``observed`` = the feature's score on the eval data:
the feature is cut into at most ``LEAKAGE_BINS`` bins, fewer on small data so a bin holds about
``ROWS_PER_BIN`` rows (quantile cut points for numbers, each value when it has that few; the most
frequent values for categories; nulls one bin of their own) and
each bin predicts the majority class (classification) or the mean target (regression) it holds.
The prediction is cross-fitted over two seeded halves (bin -> prediction learnt on one half,
scored on the other), so an id-like column cannot score by memorising rows. Score: balanced
accuracy for classification (chance is 1/classes), R^2 clipped at 0 for regression.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from gates.checks.data._common import (
    REASON_CHECK_ERROR,
    REASON_MISSING_COLUMN,
    REASON_THRESHOLD,
    REASON_TOO_FEW_ROWS,
    Settings,
    data_id,
    first_line,
    make_result,
)
from gates.checks.data._plan import SectionPlan, plan_section
from gates.checks.data.drift import column_kind, numeric_edges
from gates.results import CheckResult, Outcome

LEAKAGE_BINS = 100
ROWS_PER_BIN = 20
DEFAULT_MAX_SCORE = 0.98
MIN_ROWS = 20

MSG_SCORE = "'{col}' alone predicts '{target}' with {metric} {score:.3f}{verdict} {limit}"
MSG_MISSING = "column '{col}' is missing from the eval data"
MSG_FAILED = "cannot score '{col}' for leakage: {problem}"
MSG_TOO_FEW = "not checked: only {n} eval rows have a target; at least {min_rows} are needed"


def run_leakage(frame: pd.DataFrame, target: str, task: str, spec: SectionPlan | Mapping[str, Any],
                columns: list[str], rng: np.random.Generator, settings: Settings) -> list[CheckResult]:
    """Return one leakage check per column in ``columns`` (``spec``: the section's plan; a mapping
    is planned here)."""
    plan = plan_section(spec, settings.severity)
    limit, blocking = float(plan.spec.get("max_score", DEFAULT_MAX_SCORE)), plan.blocking
    has_y = frame[target].notna().to_numpy() if target in frame.columns else np.zeros(len(frame), bool)
    first_half = rng.random(int(has_y.sum())) < 0.5
    return [_check(frame, col, target, task, has_y, first_half, limit, blocking) for col in columns]


def _check(frame: pd.DataFrame, col: str, target: str, task: str, has_y: np.ndarray, first_half: np.ndarray,
           limit: float, blocking: bool) -> CheckResult:
    check_id = data_id("leakage", "max", col)
    threshold = {"max": limit}

    def unscored(outcome: Outcome, reason: str, message: str) -> CheckResult:
        return make_result(check_id, outcome=outcome, blocking=blocking, threshold=threshold, reason=reason,
                           message=message)

    for name in (col, target):
        if name not in frame.columns:
            return unscored(Outcome.ERROR, REASON_MISSING_COLUMN, MSG_MISSING.format(col=name))
    n = int(has_y.sum())
    if n < MIN_ROWS:
        return unscored(Outcome.SKIPPED, REASON_TOO_FEW_ROWS, MSG_TOO_FEW.format(n=n, min_rows=MIN_ROWS))
    try:
        score, metric, bins = leakage_score(frame[col][has_y], frame[target][has_y], task, first_half)
    except Exception as exc:  # noqa: BLE001 -- cell values are arbitrary user data; report, never crash
        return unscored(Outcome.ERROR, REASON_CHECK_ERROR, MSG_FAILED.format(col=col, problem=first_line(exc)))
    ok = score <= limit
    return make_result(
        check_id, outcome=Outcome.PASS if ok else Outcome.FAIL, blocking=blocking, observed=score,
        threshold=threshold, reason=REASON_THRESHOLD,
        message=MSG_SCORE.format(col=col, target=target, metric=metric, score=score, limit=limit,
                                 verdict=" <=" if ok else ", above the maximum"),
        details={"metric": metric, "score": score, "bins": bins, "folds": 2, "rows": n})


def leakage_score(x: pd.Series, y: pd.Series, task: str, first_half: np.ndarray) -> tuple[float, str, int]:
    """Return (score, metric name, number of bins) of predicting ``y`` from ``x``'s bin alone."""
    codes, k = bin_codes(x, max(2, min(LEAKAGE_BINS, len(x) // ROWS_PER_BIN)))
    pred = np.empty(len(codes))
    if task == "regression":
        target = y.to_numpy(dtype=float)
        for train in (first_half, ~first_half):
            pred[~train] = _bin_means(codes[train], target[train], k)[codes[~train]]
        sst = float(np.sum((target - target.mean()) ** 2))
        r2 = 1.0 - float(np.sum((target - pred) ** 2)) / sst if sst > 0 else 0.0
        return max(0.0, r2), "r2", k
    labels, _ = pd.factorize(y, sort=True)  # ties go to the smallest label
    c = int(labels.max()) + 1
    for train in (first_half, ~first_half):
        pred[~train] = _bin_majority(codes[train], labels[train], k, c)[codes[~train]]
    recalls = [float(np.mean(pred[labels == j] == j)) for j in range(c)]
    return float(np.mean(recalls)), "balanced_accuracy", k


def bin_codes(x: pd.Series, bins: int) -> tuple[np.ndarray, int]:
    """Return a bin code per value (nulls get the last code) and the number of codes."""
    isna = x.isna().to_numpy()
    codes = np.zeros(len(x), dtype=np.int64)
    if column_kind(x) == "numeric":
        values = x.to_numpy(dtype=float, na_value=np.nan)
        edges = numeric_edges(values[~isna], bins) if (~isna).any() else np.array([])
        codes[~isna] = np.searchsorted(edges, values[~isna], side="right")
        k = len(edges) + 1
    else:
        found, uniques = pd.factorize(x[~isna].astype(object))
        counts = np.bincount(found, minlength=len(uniques)) if len(uniques) else np.array([], dtype=np.int64)
        order = np.argsort(-counts, kind="stable")
        slot = np.full(len(uniques), min(len(uniques), bins - 1))
        kept = order[:bins - 1]
        slot[kept] = np.arange(len(kept))
        codes[~isna] = slot[found] if len(found) else codes[~isna]
        k = min(len(uniques), bins - 1) + 1
    codes[isna] = k
    return codes, k + 1


def _bin_means(codes: np.ndarray, y: np.ndarray, k: int) -> np.ndarray:
    counts = np.bincount(codes, minlength=k)
    sums = np.bincount(codes, weights=y, minlength=k)
    fallback = y.mean() if len(y) else 0.0
    return np.where(counts > 0, sums / np.maximum(counts, 1), fallback)


def _bin_majority(codes: np.ndarray, labels: np.ndarray, k: int, c: int) -> np.ndarray:
    table = np.bincount(codes * c + labels, minlength=k * c).reshape(k, c)
    fallback = int(np.argmax(table.sum(axis=0)))
    return np.where(table.sum(axis=1) > 0, np.argmax(table, axis=1), fallback)
