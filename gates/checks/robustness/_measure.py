"""Measuring a model on one perturbed copy: predictions, metric values, label flips, score shifts.

A :class:`Scorer` keeps each model's clean predictions (from the context, never recomputed) and
scores a perturbed copy with one batched predict; a model raising on corrupt input gives a
:class:`Side` with ``error`` (a finding, not a crash).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from gates.clusters import cluster_index
from gates.context import EvalContext, Predictions, Role
from gates.contrasts import contrast_estimate, paired_mean
from gates.errors import UserError
from gates.intervals import Estimate
from gates.metrics import Metric, metric_registry
from gates.perturbations import ColumnStats, Draws
from gates.stats.weights import row_keys

MSG_CLEAN_FAILED = "the {role} model raised on the clean eval data: {problem}"
MSG_PREDICT_FAILED = "the {role} model raised on the {scope} copy: {problem}"
MSG_NAN_REJECTED = (
    "the {role} model cannot take missing values ({problem}); set impute: median or impute: mode "
    "under gates.robustness.perturbations.missing to measure imputed missing values instead"
)
MSG_NOT_COMPUTABLE = "{measure} is undefined under {scope}: {problem}"
MSG_NO_SCORES = "the model gives no scores"
MSG_NO_LABELS = "regression has no labels to flip"


@dataclass
class Side:
    """One model's predictions on one perturbed copy and what was measured from them.

    ``values`` maps a measure to its value (a metric's perturbed value, ``flip_rate``,
    ``score_shift``); ``problems`` says why a measure is undefined; ``rows`` keeps the per-row flips
    and shifts for the paired comparison with the baseline. ``error`` is set when predict raised.
    """

    pred: Predictions | None = None
    values: dict[str, float] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)
    rows: dict[str, np.ndarray] = field(default_factory=dict)
    error: str | None = None
    reason: str = ""
    #: set by the partitioned gate: measured from partition partials (there is no ``pred`` on the client)
    measured: bool = False

    @property
    def predicted(self) -> bool:
        return self.pred is not None or self.measured


@dataclass
class Point:
    """Everything measured at one severity of one perturbation."""

    severity: float
    candidate: Side
    baseline: Side | None = None
    #: the partitioned gate's merged paired partials of this point (None embedded)
    merged: Any = None


def score_change(clean: Predictions, pert: Predictions, task: str) -> np.ndarray | None:
    """Return each row's absolute score change, or None when the model gives no scores.

    Binary: the positive-class score; multiclass: half the L1 distance between probability
    vectors (total variation, equal to the binary case's change for two classes); regression:
    the prediction.
    """
    if task == "regression":
        new, old = np.asarray(pert.labels, dtype=float), np.asarray(clean.labels, dtype=float)
    elif clean.scores is None or pert.scores is None:
        return None
    else:
        new, old = np.asarray(pert.scores, dtype=float), np.asarray(clean.scores, dtype=float)
    change: np.ndarray = np.abs(new - old)
    return change if change.ndim == 1 else 0.5 * change.sum(axis=1)


def label_flips(clean: Predictions, pert: Predictions) -> np.ndarray:
    """Return True for each row whose predicted label changed."""
    flips: np.ndarray = np.asarray(clean.labels) != np.asarray(pert.labels)
    return flips


def scalar_score(pred: Predictions, task: str, positive_label: Any) -> np.ndarray:
    """Return one number per row: the positive-class score (labels as 0/1 without scores) or the prediction."""
    if task == "regression":
        return np.asarray(pred.labels, dtype=float)
    if pred.scores is not None:
        return np.asarray(pred.scores, dtype=float)
    return np.asarray(np.asarray(pred.labels) == positive_label, dtype=float)


class Scorer:
    """Scores one context's models: clean predictions (computed once), perturbed copies, measures."""

    def __init__(self, ctx: EvalContext, offset: int = 0) -> None:
        self.ctx = ctx
        self.task = ctx.policy.model.task
        self.features = list(ctx.features)
        self.X = ctx.frame[self.features]
        self.stats = ColumnStats(self.X)
        key_column = getattr(ctx.policy.data, "id", None)
        #: the rows' keys for perturbation draws, one draw per row: ``data.id``, else the position
        self.keys = row_keys(len(self.X), offset=offset,
                             values=None if key_column is None else ctx.frame[key_column].to_numpy())
        #: the cluster column (``data.cluster``: the resampling unit of every interval), None when rows are independent
        self.cluster: str | None = getattr(ctx.policy.data, "cluster", None)
        #: the rows' keys for the Poisson weights: the cluster's (a cluster's rows share every
        #: replicate's weight, as in the regression gate), else the draws' keys
        self.weight_keys = self.keys if self.cluster is None else cluster_index(ctx.frame, self.cluster,
                                                                                offset=offset).keys
        self.clean: dict[Role, Predictions | None] = {}
        self.clean_errors: dict[Role, str] = {}
        self._clean_values: dict[tuple[Role, str], float] = {}

    # ------------------------------------------------------------ shared facts

    @property
    def n_rows(self) -> int:
        return len(self.X)

    @property
    def positive_label(self) -> Any:
        return self.ctx.policy.model.positive_label if self.task == "binary_classification" else None

    @property
    def classes(self) -> tuple[Any, ...] | None:
        return None if self.task == "regression" else self.ctx.classes

    def compute(self, metric: Metric, pred: Predictions) -> float:
        return metric.compute(self.ctx.y_true, pred, positive_label=self.positive_label, classes=self.classes)

    def clean_value(self, role: Role, name: str) -> float:
        """Return ``role``'s metric on the clean predictions (computed once)."""
        key = (role, name)
        if key not in self._clean_values:
            pred = self.clean_predictions(role)
            try:
                self._clean_values[key] = float("nan") if pred is None else self.compute(metric_registry()[name], pred)
            except Exception:  # noqa: BLE001 -- an undefined clean metric makes its checks errors, not the gate
                self._clean_values[key] = float("nan")
        return self._clean_values[key]

    def clean_predictions(self, role: Role) -> Predictions | None:
        """Return ``role``'s cached clean predictions; None (with the reason kept) if its model raised."""
        if role not in self.clean:
            try:
                self.clean[role] = self.ctx.predictions(role)
            except UserError:
                raise
            except Exception as exc:  # noqa: BLE001 -- the baseline failing on clean data errs its checks only
                self.clean[role] = None
                self.clean_errors[role] = MSG_CLEAN_FAILED.format(role=role, problem=problem_of(exc))
        return self.clean[role]

    def refuses(self, t: Any) -> str | None:
        """Return why a threshold cannot be measured by this scorer (never, embedded)."""
        return None

    def paired(self, pt: Point, measure: str) -> Estimate:
        """Return the paired estimate of the candidate's minus the baseline's flip rate or score shift."""
        assert pt.baseline is not None
        return paired_mean(pt.candidate.rows[measure] - pt.baseline.rows[measure])

    def contrast(self, metric: Metric, pt: Point, weights: np.ndarray, values: Sequence[float], *, n_boot: int,
                 rng: np.random.Generator) -> Estimate:
        """Return the paired estimate of ``weights`` times (clean and perturbed, candidate and baseline) metrics."""
        cand, base = pt.candidate, pt.baseline
        clean_c, clean_b = self.clean_predictions("candidate"), self.clean_predictions("baseline")
        assert base is not None and clean_c is not None and clean_b is not None
        assert cand.pred is not None and base.pred is not None
        return contrast_estimate(metric, self.ctx.y_true, [clean_c, cand.pred, clean_b, base.pred], weights,
                                 n_boot=n_boot, rng=rng, positive_label=self.positive_label, classes=self.classes,
                                 values=values, keys=self.weight_keys, clustered=self.cluster is not None)

    def draws(self, *names: str) -> Draws:
        """Return the row-keyed draws of one copy, named by gate, perturbation and severity (or column)."""
        return Draws.of(self.ctx.policy.seed, names, self.keys)

    # ------------------------------------------------------------ one perturbed copy

    def predict(self, role: Role, frame: pd.DataFrame, scope: str, perturbation: str) -> Side:
        """Score ``frame`` with one batched predict; a model that raises gives a Side with ``error``."""
        if self.clean_predictions(role) is None:
            return Side(error=self.clean_errors[role], reason="predict_failed")
        try:
            return Side(pred=self.ctx.predict(role, frame))
        except UserError:
            raise
        except Exception as exc:  # noqa: BLE001 -- a model raising on corrupt input is a finding, not a crash
            problem = problem_of(exc)
            if perturbation == "missing" and is_nan_complaint(exc):
                return Side(error=MSG_NAN_REJECTED.format(role=role, problem=problem), reason="model_rejects_nan")
            return Side(error=MSG_PREDICT_FAILED.format(role=role, scope=scope, problem=problem),
                        reason="predict_failed")

    def measure(self, role: Role, side: Side, metrics: Sequence[str], scope: str) -> Side:
        """Fill ``side`` with each metric's value, the flip rate and the score shift against clean."""
        clean = self.clean_predictions(role)
        if side.pred is None or clean is None:
            return side
        for name in metrics:
            try:
                side.values[name] = self.compute(metric_registry()[name], side.pred)
            except Exception as exc:  # noqa: BLE001 -- reported as this measure's error
                side.problems[name] = MSG_NOT_COMPUTABLE.format(measure=name, scope=scope, problem=exc)
        if self.task == "regression":
            side.problems["flip_rate"] = MSG_NOT_COMPUTABLE.format(measure="flip_rate", scope=scope,
                                                                   problem=MSG_NO_LABELS)
        else:
            side.rows["flip_rate"] = label_flips(clean, side.pred).astype(float)
        shifts = score_change(clean, side.pred, self.task)
        if shifts is None:
            side.problems["score_shift"] = MSG_NOT_COMPUTABLE.format(measure="score_shift", scope=scope,
                                                                     problem=MSG_NO_SCORES)
        else:
            side.rows["score_shift"] = shifts
        for name, rows in side.rows.items():
            side.values[name] = float(rows.mean()) if rows.size else float("nan")
        return side


def problem_of(exc: Exception) -> str:
    """Return an exception as one line: its type and the first line of its message."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def is_nan_complaint(exc: Exception) -> bool:
    """Return True when ``exc`` reads as a model refusing missing values."""
    text = str(exc).lower()
    return isinstance(exc, (ValueError, TypeError)) and ("nan" in text or "missing" in text)
