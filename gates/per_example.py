"""``task: per_example``: models scored example by example by an eval harness (LLMs, agents, rankers).

The candidate and the baseline are per-row score columns of the same examples,
``{scores: {correct: cand_correct, latency: cand_ms}}``. Each name is a metric whose value is the
mean of its column, in the ``row_mean`` family of :mod:`gates.metrics`, so every gate resamples it
like log loss or mae (with clusters when ``data.cluster`` is set). Higher is better unless the
metric's regression thresholds say ``better: lower`` (latency, cost).
"""
from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np

from gates.metrics import Metric

if TYPE_CHECKING:
    from gates.context import Predictions
    from gates.policy import Policy

PER_EXAMPLE = "per_example"
TASKS = frozenset({PER_EXAMPLE})

MSG_MISSING_VALUES = "score column '{column}' of the {role} has {count} missing value(s) of {rows}"
MSG_NOT_NUMERIC = "score column '{column}' of the {role} is not numeric ({dtype})"


def _mean(means: np.ndarray) -> np.ndarray:
    return means[..., 0]


def _column_of(name: str) -> Any:
    def rows(y: np.ndarray, pred: Predictions, positive: Any, classes: tuple[Any, ...] | None) -> np.ndarray:
        assert pred.scores is not None and pred.classes is not None
        j = pred.classes.index(name)
        return np.asarray(pred.scores[:, j:j + 1], dtype=np.float64)

    return rows


def score_metric(name: str, direction: int = +1) -> Metric:
    """Return the metric "mean of score ``name``" (``direction`` -1 when lower is better)."""
    return Metric(name, direction, "labels", TASKS, "row_mean", f"mean of the per-example score '{name}'",
                  row_stats=_column_of(name), from_means=_mean)


def directions(gates: Mapping[str, Any]) -> dict[str, int]:
    """Return name -> direction from ``gates.regression.metrics.NAME.better`` (higher unless said)."""
    metrics = ((gates.get("regression") or {}).get("metrics") or {})
    return {name: -1 if (th or {}).get("better") == "lower" else +1 for name, th in metrics.items()}


def score_metrics(policy: Policy) -> Mapping[str, Metric]:
    """Return the per-example metrics of a policy by name, in the candidate's order."""
    ways = directions(policy.gates)
    names = [n for n, _ in policy.model.candidate.named_scores]
    return MappingProxyType({n: score_metric(n, ways.get(n, +1)) for n in names})


def score_problem(pred: Predictions, column: str, name: str, role: str) -> str | None:
    """Return why score ``name`` of ``pred`` cannot be averaged (missing values), else None."""
    assert pred.scores is not None and pred.classes is not None
    values = pred.scores[:, pred.classes.index(name)]
    bad = int(np.count_nonzero(~np.isfinite(values)))
    if bad:
        return MSG_MISSING_VALUES.format(column=column, role=role, count=bad, rows=values.size)
    return None
