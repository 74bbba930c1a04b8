"""The metric registry: every metric a gate can name, its direction, and how to compute it fast.

Each :class:`Metric` says whether higher is better (``direction``), what it needs from a model
(``labels`` or ``scores``), for which tasks it is defined, and its ``family``, which tells the
paired estimators in :mod:`gates.estimates` how to resample it:

* ``confusion``: a function of the confusion table. Tables have shape ``(..., K, K)`` with
  ``table[..., i, j]`` the number of rows whose true label is class ``i`` and predicted label is
  class ``j``; every ``count_*`` function below accepts a batch (bootstrap replicates, groups) and
  returns the metric over the leading axes. The fairness gate reuses them on per-group tables.
* ``row_mean``: a function of the means of a few per-row statistics (log loss, brier, mae, rmse,
  r2, ...): ``row_stats`` gives an ``(n, p)`` matrix, ``from_means`` maps means ``(..., p)`` to
  the metric. Means add across partitions, so these stay mergeable.
* ``auc``: ROC AUC (binary, or one-vs-rest macro/weighted for multiclass), estimated by DeLong.
* ``ranking``: average precision, a function of the score order resampled with row weights.
* ``churn``: the share of rows whose predicted label differs between candidate and baseline.

Values equal ``sklearn.metrics`` with its defaults (``zero_division`` gives 0; macro averages run
over the labels present in ``y_true`` or in the predictions, like ``unique_labels``).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from gates.intervals import midranks
from gates.stats.tables import axis_sum, diagonal_sum

if TYPE_CHECKING:
    from gates.context import Predictions

BINARY = "binary_classification"
MULTICLASS = "multiclass_classification"
REGRESSION = "regression"
TASKS = (BINARY, MULTICLASS, REGRESSION)
CLASSIFICATION = frozenset({BINARY, MULTICLASS})

#: probabilities are clipped to [EPS, 1 - EPS] before the log, as sklearn's log_loss does
EPS = float(np.finfo(np.float64).eps)

#: ranges of the score-mean metrics (brier: 0..2 over classes, 0..1 for a binary positive class)
ROW_MEAN_BOUNDS: Mapping[str, tuple[float, float]] = {
    "log_loss": (0.0, math.inf), "brier": (0.0, 2.0), "mae": (0.0, math.inf), "mse": (0.0, math.inf),
    "rmse": (0.0, math.inf), "mape": (0.0, math.inf), "r2": (-math.inf, 1.0),
}

CountsFn = Callable[[np.ndarray, int], np.ndarray]
RowStatsFn = Callable[[np.ndarray, "Predictions", int, tuple[Any, ...] | None], np.ndarray]
MeansFn = Callable[[np.ndarray], np.ndarray]


# --------------------------------------------------------------------------- label encoding


@dataclass(frozen=True)
class Encoded:
    """Labels of several arrays mapped to shared integer codes ``0..K-1``.

    ``labels[k]`` is the label of code ``k``; ``positive`` is the code of the positive label
    (binary tasks) or -1.
    """

    codes: tuple[np.ndarray, ...]
    labels: tuple[Any, ...]
    positive: int

    @property
    def k(self) -> int:
        return len(self.labels)


def encode_labels(*arrays: np.ndarray, positive_label: Any = None,
                  classes: tuple[Any, ...] | None = None) -> Encoded:
    """Return shared integer codes for label arrays (true labels first, then predictions).

    The code space is ``classes`` (if given) followed by every other label seen, so a table built
    from the codes covers the union of labels, as ``sklearn.utils.multiclass.unique_labels`` does.
    ``positive_label`` is always given a code, so a positive class absent from the data still has
    a (zero) row and column.
    """
    seed = list(classes or ())
    if positive_label is not None and positive_label not in seed:
        seed.append(positive_label)
    parts = [np.asarray(a).ravel() for a in arrays]
    codes, uniques = pd.factorize(_join(seed, parts), use_na_sentinel=False)
    out, start = [], len(seed)
    for a in arrays:
        out.append(codes[start:start + np.size(a)].astype(np.int64))
        start += np.size(a)
    labels = tuple(uniques.tolist())
    positive = labels.index(positive_label) if positive_label is not None else -1
    return Encoded(tuple(out), labels, positive)


def _join(seed: list[Any], parts: list[np.ndarray]) -> np.ndarray:
    """Concatenate label arrays, keeping a numeric dtype when every label is a number (fast path)."""
    numeric = all(p.dtype.kind in "biuf" for p in parts) and all(
        isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in seed)
    if numeric:
        return np.concatenate([np.asarray(seed, dtype=np.float64), *parts]) if seed else np.concatenate(parts)
    return np.concatenate([np.asarray(seed, dtype=object), *[p.astype(object) for p in parts]])


def confusion_table(y_codes: np.ndarray, pred_codes: np.ndarray, k: int) -> np.ndarray:
    """Return the ``(k, k)`` confusion table of two code arrays (rows: truth, columns: prediction)."""
    flat = np.bincount(y_codes * k + pred_codes, minlength=k * k)
    return flat.reshape(k, k).astype(np.float64)


# --------------------------------------------------------------------------- count functions


def _div(num: np.ndarray, den: np.ndarray, zero: float = 0.0) -> np.ndarray:
    """Return ``num / den`` with ``zero`` where ``den == 0`` (sklearn's ``zero_division``)."""
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    out = np.full(np.broadcast(num, den).shape, zero, dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out


def class_counts(table: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return per-class (true positives, support, predicted count), each of shape ``(..., K)``."""
    tp = np.diagonal(table, axis1=-2, axis2=-1)
    return tp, axis_sum(table, -1), axis_sum(table, -2)


def count_accuracy(table: np.ndarray, positive: int = -1) -> np.ndarray:
    """Share of rows on the diagonal (NaN for an empty table)."""
    table = np.asarray(table)
    return _div(diagonal_sum(table), axis_sum(table, (-2, -1)), np.nan)


def count_balanced_accuracy(table: np.ndarray, positive: int = -1) -> np.ndarray:
    """Mean recall over classes present in the truth (sklearn drops classes without support)."""
    tp, support, _ = class_counts(table)
    present = support > 0
    recall = _div(tp, support)
    return _div((recall * present).sum(axis=-1), present.sum(axis=-1), np.nan)


def per_class_precision(table: np.ndarray) -> np.ndarray:
    tp, _, predicted = class_counts(table)
    return _div(tp, predicted)


def per_class_recall(table: np.ndarray) -> np.ndarray:
    tp, support, _ = class_counts(table)
    return _div(tp, support)


def per_class_f1(table: np.ndarray) -> np.ndarray:
    """F1 per class as ``2 tp / (2 tp + fp + fn)``, 0 when the class is absent from both sides."""
    tp, support, predicted = class_counts(table)
    return _div(2 * tp, support + predicted)


def _pick(per_class: Callable[[np.ndarray], np.ndarray]) -> CountsFn:
    def at_positive(table: np.ndarray, positive: int) -> np.ndarray:
        return per_class(table)[..., positive]

    return at_positive


def _macro(per_class: Callable[[np.ndarray], np.ndarray]) -> CountsFn:
    def macro(table: np.ndarray, positive: int = -1) -> np.ndarray:
        _, support, predicted = class_counts(table)
        present = (support + predicted) > 0
        return _div((per_class(table) * present).sum(axis=-1), present.sum(axis=-1), np.nan)

    return macro


def _weighted(per_class: Callable[[np.ndarray], np.ndarray]) -> CountsFn:
    def weighted(table: np.ndarray, positive: int = -1) -> np.ndarray:
        _, support, _ = class_counts(table)
        return _div((per_class(table) * support).sum(axis=-1), support.sum(axis=-1), np.nan)

    return weighted


count_precision = _pick(per_class_precision)
count_recall = _pick(per_class_recall)
count_f1 = _pick(per_class_f1)


def count_churn(joint: np.ndarray) -> np.ndarray:
    """Share of rows off the diagonal of a ``(..., K, K)`` candidate-by-baseline label table."""
    return 1.0 - count_accuracy(joint)


# --------------------------------------------------------------------------- per-row statistics


def _positive_proba(pred: Predictions) -> np.ndarray:
    return np.asarray(pred.scores, dtype=np.float64).reshape(-1)


def _class_proba(y: np.ndarray, pred: Predictions, classes: tuple[Any, ...] | None) -> tuple[np.ndarray, np.ndarray]:
    """Return the multiclass probability matrix and each row's true-class column (-1 if unknown)."""
    proba = np.asarray(pred.scores, dtype=np.float64)
    order = tuple(pred.classes or classes or ())
    lookup = {c: i for i, c in enumerate(order)}
    col = np.fromiter((lookup.get(v, -1) for v in np.asarray(y).tolist()), dtype=np.int64, count=len(y))
    return proba, col


def rows_log_loss(y: np.ndarray, pred: Predictions, positive: Any, classes: tuple[Any, ...] | None) -> np.ndarray:
    """Per-row negative log-likelihood of the true class, probabilities clipped as in sklearn."""
    if pred.scores is not None and np.ndim(pred.scores) == 1:
        p = _positive_proba(pred)
        p_true = np.where(np.asarray(y) == positive, p, 1.0 - p)
        return -np.log(np.clip(p_true, EPS, 1 - EPS))[:, None]
    proba, col = _class_proba(y, pred, classes)
    p_true = np.where(col >= 0, proba[np.arange(len(col)), np.maximum(col, 0)], np.nan)
    return -np.log(np.clip(p_true, EPS, 1 - EPS))[:, None]


def rows_brier(y: np.ndarray, pred: Predictions, positive: Any, classes: tuple[Any, ...] | None) -> np.ndarray:
    """Per-row squared error of the probabilities (binary: of the positive class, as sklearn)."""
    if pred.scores is not None and np.ndim(pred.scores) == 1:
        p = _positive_proba(pred)
        return ((np.asarray(y) == positive).astype(np.float64) - p)[:, None] ** 2
    proba, col = _class_proba(y, pred, classes)
    onehot = np.zeros_like(proba)
    onehot[np.arange(len(col)), np.maximum(col, 0)] = 1.0
    out = ((onehot - proba) ** 2).sum(axis=1)
    return np.where(col >= 0, out, np.nan)[:, None]


def _residual(y: np.ndarray, pred: Predictions) -> np.ndarray:
    return np.asarray(y, dtype=np.float64) - np.asarray(pred.labels, dtype=np.float64)


def rows_abs_error(y: np.ndarray, pred: Predictions, positive: Any, classes: tuple[Any, ...] | None) -> np.ndarray:
    return np.abs(_residual(y, pred))[:, None]


def rows_sq_error(y: np.ndarray, pred: Predictions, positive: Any, classes: tuple[Any, ...] | None) -> np.ndarray:
    return (_residual(y, pred) ** 2)[:, None]


def rows_abs_pct_error(y: np.ndarray, pred: Predictions, positive: Any, classes: tuple[Any, ...] | None) -> np.ndarray:
    """Per-row ``|y - yhat| / max(|y|, eps)``, sklearn's ``mean_absolute_percentage_error``."""
    yv = np.asarray(y, dtype=np.float64)
    return (np.abs(_residual(y, pred)) / np.maximum(np.abs(yv), EPS))[:, None]


def rows_r2(y: np.ndarray, pred: Predictions, positive: Any, classes: tuple[Any, ...] | None) -> np.ndarray:
    """Per-row (squared error, centred y, centred y squared); centring keeps the variance exact."""
    yv = np.asarray(y, dtype=np.float64)
    return rows_r2_about(y, pred, float(yv.mean()) if yv.size else 0.0)


def rows_r2_about(y: np.ndarray, pred: Predictions, centre: float) -> np.ndarray:
    """:func:`rows_r2` with y centred at ``centre``: batches of one data set share the whole data's
    mean, so their statistics add up (``r2_from_means`` does not depend on the centre)."""
    yc = np.asarray(y, dtype=np.float64) - centre
    return np.column_stack([_residual(y, pred) ** 2, yc, yc ** 2])


#: row statistics that centre the target at its mean, by metric: batches pass the whole data's mean
CENTRED_ROW_STATS = {"r2": rows_r2_about}


def _first(means: np.ndarray) -> np.ndarray:
    return means[..., 0]


def _sqrt_first(means: np.ndarray) -> np.ndarray:
    return np.sqrt(means[..., 0])


def r2_from_means(means: np.ndarray) -> np.ndarray:
    """``1 - SSE / SST`` from means; sklearn's ``force_finite``: 1 if both are 0, else 0 if SST is 0."""
    sse = means[..., 0]
    sst = means[..., 2] - means[..., 1] ** 2
    sst = np.where(np.abs(sst) <= 1e-15 * np.maximum(means[..., 2], 1e-300), 0.0, sst)
    r2 = 1.0 - _div(sse, sst, np.nan)
    return np.where(sst == 0, np.where(sse == 0, 1.0, 0.0), r2)


# --------------------------------------------------------------------------- score metrics


def binary_auc(y_pos: np.ndarray, scores: np.ndarray) -> float:
    """Return ROC AUC by midranks (ties count half), NaN unless both classes are present."""
    y_pos = np.asarray(y_pos, dtype=bool)
    m, n = int(y_pos.sum()), int((~y_pos).sum())
    if m == 0 or n == 0:
        return float("nan")
    ranks = midranks(scores)
    return float((ranks[y_pos].sum() - m * (m + 1) / 2.0) / (m * n))


def ovr_auc(y: np.ndarray, proba: np.ndarray, classes: tuple[Any, ...], weighted: bool) -> float:
    """Return one-vs-rest ROC AUC averaged over classes present in ``y`` (sklearn ``multi_class='ovr'``)."""
    y = np.asarray(y)
    values, weights = [], []
    for j, c in enumerate(classes):
        is_c = y == c
        if 0 < is_c.sum() < len(y):
            values.append(binary_auc(is_c, proba[:, j]))
            weights.append(float(is_c.sum()))
    if not values:
        return float("nan")
    w = np.asarray(weights) if weighted else np.ones(len(values))
    return float(np.dot(values, w) / w.sum())


@dataclass(frozen=True)
class RankedScores:
    """Scores sorted once, so average precision can be evaluated for many weightings of the rows.

    ``ends`` are the last sorted positions of the tie groups that hold a positive, ``k`` the number
    of positives up to each of them.
    """

    order: np.ndarray
    y_sorted: np.ndarray
    ends: np.ndarray
    k: np.ndarray

    @classmethod
    def of(cls, y_pos: np.ndarray, scores: np.ndarray) -> RankedScores:
        y_pos = np.asarray(y_pos, dtype=bool)
        s = np.asarray(scores, dtype=np.float64)
        order = np.argsort(-s)  # tied scores form one threshold, so the sort need not be stable
        y_sorted = y_pos[order]
        group_end = np.r_[np.flatnonzero(np.diff(s[order]) != 0), len(s) - 1] if len(s) else np.array([], int)
        positives_to = np.cumsum(y_sorted)[group_end]
        keep = np.diff(positives_to, prepend=0) > 0
        return cls(order, y_sorted, group_end[keep], positives_to[keep])

    def average_precision(self, weights: np.ndarray) -> np.ndarray:
        """Return AP for each row of ``weights`` (shape ``(B, n)`` or ``(n,)``; NaN without positives).

        ``AP = sum_j (R_j - R_{j-1}) P_j`` over thresholds (sklearn's step-wise definition), written
        as ``sum_j dTP_j * (TP_j / seen_j) / TP`` so only thresholds holding a positive are visited.
        """
        w = np.atleast_2d(np.asarray(weights))
        if len(self.k) == 0:
            return np.full(w.shape[0], np.nan)
        # bootstrap weights (float32 integers) keep exact float32 running sums below 2**24 rows;
        # float64 weights (the point estimate) are summed in float64
        acc: type[np.floating[Any]] = np.float32 if w.dtype == np.float32 and len(self.order) < (1 << 22) else np.float64
        w_sorted = np.take(w, self.order, axis=1).astype(acc, copy=False)
        seen = np.cumsum(w_sorted, axis=1, dtype=acc)[:, self.ends]
        tp = np.cumsum(w_sorted[:, self.y_sorted], axis=1, dtype=acc)[:, self.k - 1]
        total = tp[:, -1].astype(np.float64)
        step = np.diff(tp, axis=1, prepend=0)
        np.divide(tp, seen, out=tp, where=seen > 0)  # precision; tp <= seen, so 0 where nothing is seen
        ap = (step * tp).sum(axis=1, dtype=np.float64)
        return _div(ap, total, np.nan)


def weighted_average_precision(y_pos: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Return average precision of ``scores`` for each row of ``weights`` (see :class:`RankedScores`)."""
    return RankedScores.of(y_pos, scores).average_precision(weights)


def _scores_auc(y: np.ndarray, pred: Predictions, positive: Any, classes: tuple[Any, ...] | None,
                weighted: bool = False) -> float:
    scores = np.asarray(pred.scores, dtype=np.float64)
    if scores.ndim == 1:
        return binary_auc(np.asarray(y) == positive, scores)
    return ovr_auc(y, scores, tuple(pred.classes or classes or ()), weighted)


# --------------------------------------------------------------------------- the Metric type


@dataclass(frozen=True)
class Metric:
    """One metric a policy may name.

    ``direction`` is +1 when higher is better, -1 when lower is better. ``needs`` is ``labels``
    or ``scores``. Exactly the callable(s) of the metric's ``family`` are set: ``counts`` for
    ``confusion`` (table ``(..., K, K)`` and positive code -> values), ``row_stats`` and
    ``from_means`` for ``row_mean``. ``average`` is ``macro`` or ``weighted`` for averaged AUCs.
    """

    name: str
    direction: int
    needs: str
    tasks: frozenset[str]
    family: str
    description: str = ""
    counts: CountsFn | None = None
    row_stats: RowStatsFn | None = None
    from_means: MeansFn | None = None
    average: str | None = None

    @property
    def bounds(self) -> tuple[float, float]:
        """Return the range the metric can take; intervals are clipped to it (ROC AUC never exceeds 1)."""
        if self.family in ("confusion", "churn", "auc", "ranking"):
            return (0.0, 1.0)
        return ROW_MEAN_BOUNDS.get(self.name, (-math.inf, math.inf))

    @property
    def needs_baseline(self) -> bool:
        """True when the metric compares the two models (``churn``) rather than scoring one."""
        return self.family == "churn"

    def compute(self, y_true: np.ndarray, pred: Predictions, *, positive_label: Any,
                classes: tuple[Any, ...] | None, baseline: Predictions | None = None) -> float:
        """Return the metric of ``pred`` against ``y_true`` (NaN when it is undefined).

        ``baseline`` is only read by ``churn`` (the share of rows whose labels differ).
        """
        y_true = np.asarray(y_true)
        if self.family == "confusion":
            enc = encode_labels(y_true, pred.labels, positive_label=positive_label, classes=classes)
            assert self.counts is not None
            return float(self.counts(confusion_table(enc.codes[0], enc.codes[1], enc.k), enc.positive))
        if self.family == "churn":
            if baseline is None:
                return float("nan")
            enc = encode_labels(pred.labels, baseline.labels, classes=classes)
            return float(np.mean(enc.codes[0] != enc.codes[1])) if len(y_true) else float("nan")
        if self.family == "row_mean":
            assert self.row_stats is not None and self.from_means is not None
            stats = self.row_stats(y_true, pred, positive_label, classes)
            return float(self.from_means(stats.mean(axis=0))) if len(stats) else float("nan")
        if self.family == "auc":
            return _scores_auc(y_true, pred, positive_label, classes, self.average == "weighted")
        y_pos = y_true == positive_label
        return float(weighted_average_precision(y_pos, _positive_proba(pred), np.ones(len(y_true)))[0])


def _confusion(name: str, fn: CountsFn, tasks: frozenset[str], description: str) -> Metric:
    return Metric(name, +1, "labels", tasks, "confusion", description, counts=fn)


def _row_mean(name: str, needs: str, rows: RowStatsFn, means: MeansFn, tasks: frozenset[str],
              description: str, direction: int = -1) -> Metric:
    return Metric(name, direction, needs, tasks, "row_mean", description, row_stats=rows, from_means=means)


def _build() -> dict[str, Metric]:
    both = CLASSIFICATION
    binary = frozenset({BINARY})
    multi = frozenset({MULTICLASS})
    reg = frozenset({REGRESSION})
    entries = [
        _confusion("accuracy", count_accuracy, both, "share of rows predicted correctly"),
        _confusion("balanced_accuracy", count_balanced_accuracy, both, "mean recall over classes"),
        _confusion("precision", count_precision, binary, "precision of the positive class"),
        _confusion("recall", count_recall, binary, "recall (TPR) of the positive class"),
        _confusion("f1", count_f1, binary, "F1 of the positive class"),
    ]
    for base, per_class in (("precision", per_class_precision), ("recall", per_class_recall),
                            ("f1", per_class_f1)):
        entries.append(_confusion(f"{base}_macro", _macro(per_class), both, f"unweighted mean {base} over classes"))
        entries.append(_confusion(f"{base}_weighted", _weighted(per_class), both,
                                  f"{base} averaged over classes weighted by support"))
    entries += [
        Metric("roc_auc", +1, "scores", binary, "auc", "area under the ROC curve"),
        Metric("roc_auc_ovr", +1, "scores", multi, "auc", "one-vs-rest ROC AUC, unweighted mean", average="macro"),
        Metric("roc_auc_ovr_weighted", +1, "scores", multi, "auc",
               "one-vs-rest ROC AUC weighted by prevalence", average="weighted"),
        Metric("average_precision", +1, "scores", binary, "ranking", "area under the precision-recall steps"),
        _row_mean("log_loss", "scores", rows_log_loss, _first, both, "mean negative log-likelihood"),
        _row_mean("brier", "scores", rows_brier, _first, both, "mean squared error of probabilities"),
        _row_mean("mae", "labels", rows_abs_error, _first, reg, "mean absolute error"),
        _row_mean("mse", "labels", rows_sq_error, _first, reg, "mean squared error"),
        _row_mean("rmse", "labels", rows_sq_error, _sqrt_first, reg, "root mean squared error"),
        _row_mean("mape", "labels", rows_abs_pct_error, _first, reg, "mean absolute percentage error"),
        _row_mean("r2", "labels", rows_r2, r2_from_means, reg, "coefficient of determination", direction=+1),
        Metric("churn", -1, "labels", both, "churn", "share of rows whose label differs from the baseline's"),
    ]
    return {m.name: m for m in entries}


@lru_cache(maxsize=1)
def metric_registry() -> Mapping[str, Metric]:
    """Return every metric by name (built once, read-only)."""
    return MappingProxyType(_build())


def metric_names(task: str) -> list[str]:
    """Return the names of the metrics defined for ``task``, in registry order."""
    return [name for name, m in metric_registry().items() if task in m.tasks]
