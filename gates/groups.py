"""Per-group statistics from one pass over the rows: group codes, count tables, rates, disparities.

The fairness gate groups the rows once per grouping (one column or an intersection of columns)
and derives every per-group rate and every disparity from small tables, in the spirit of
fairlearn's ``MetricFrame`` (``fairlearn/metrics/_metric_frame.py``) but vectorised:

* :class:`CellTable` holds joint counts over (group, y, candidate label, baseline label). Every
  confusion-matrix rate of both models in every group is a function of it, one
  ``np.bincount`` builds it, and tables of data partitions add up (:meth:`CellTable.merge`).
* :func:`confusion_rates` turns (…, K, K) confusion counts into a rate per class, with its
  denominator so small groups can be excluded honestly; leading axes may be bootstrap replicates.
* :func:`disparity` reduces per-group values to fairlearn's ``difference``/``ratio`` with
  ``between_groups`` or ``to_overall``, over the groups that are included only.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from gates.context import Predictions
from gates.intervals import multinomial_counts, row_resample_sums
from gates.metrics import (
    BINARY,
    REGRESSION,
    Encoded,
    Metric,
    encode_labels,
    metric_names,
    metric_registry,
    weighted_average_precision,
)

#: largest product of per-column cardinalities compressed with one bincount (beyond it: np.unique)
DENSE_CODES_LIMIT = 1 << 24

#: a group key: one plain (JSON-able) value per grouping column
GroupKey = tuple[Any, ...]


# ---------------------------------------------------------------- groups


@dataclass(frozen=True)
class GroupIndex:
    """Which group each row belongs to, for one grouping (a column or an intersection).

    ``keys[g]`` gives group ``g``'s value in each of ``columns``; ``codes`` (shape ``(n,)``) the
    group of every row. Only combinations that occur in the data are groups.
    """

    columns: tuple[str, ...]
    keys: tuple[GroupKey, ...]
    codes: np.ndarray

    @property
    def n_groups(self) -> int:
        return len(self.keys)

    @property
    def sizes(self) -> np.ndarray:
        return np.bincount(self.codes, minlength=self.n_groups)

    def label(self, g: int) -> dict[str, Any]:
        """Return group ``g`` as ``{column: value}``."""
        return dict(zip(self.columns, self.keys[g]))


def group_index(frame: pd.DataFrame, columns: Sequence[str]) -> GroupIndex:
    """Return the group of every row of ``frame`` for the intersection of ``columns``.

    Missing values form their own group (key ``None``) rather than dropping rows. Groups are
    ordered by their values, column by column, as fairlearn orders ``by_group``.
    """
    per_col = [_factorize(frame[c]) for c in columns]
    radix = [len(u) for _, u in per_col]
    combined = np.zeros(len(frame), dtype=np.int64)
    for codes, size in zip((c for c, _ in per_col), radix):
        combined = combined * size + codes
    observed, codes = _compress(combined, math.prod(radix))
    keys = []
    for code in observed.tolist():
        parts = []
        for size, (_, uniques) in zip(reversed(radix), reversed(per_col)):
            code, digit = divmod(code, size)
            parts.append(uniques[digit])
        keys.append(tuple(reversed(parts)))
    return GroupIndex(tuple(columns), tuple(keys), codes)


def _factorize(values: pd.Series) -> tuple[np.ndarray, list[Any]]:
    try:
        codes, uniques = pd.factorize(values, sort=True, use_na_sentinel=False)
    except TypeError:  # mixed types that do not sort: keep first-seen order
        codes, uniques = pd.factorize(values, sort=False, use_na_sentinel=False)
    return codes.astype(np.int64), [plain(u) for u in uniques]


def _compress(combined: np.ndarray, space: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (observed combined codes in order, each row's rank among them)."""
    if space <= DENSE_CODES_LIMIT:
        present = np.bincount(combined, minlength=space) > 0
        rank = np.cumsum(present) - 1
        return np.flatnonzero(present), rank[combined]
    observed, inverse = np.unique(combined, return_inverse=True)
    return observed, inverse.astype(np.int64)


def plain(value: Any) -> Any:
    """Return ``value`` as a plain JSON-able Python value (missing values become None)."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        value = value.item()
        return None if isinstance(value, float) and math.isnan(value) else value
    if isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


# ---------------------------------------------------------------- count tables


@dataclass(frozen=True)
class CellTable:
    """Joint row counts over (group, true label, candidate label, baseline label).

    ``counts`` has shape ``(G, K, K, Kb)`` with labels indexed in ``classes`` order; ``Kb`` is 1
    when there is no baseline. The table of a whole data set is the sum of its partitions' tables.
    """

    keys: tuple[GroupKey, ...]
    classes: tuple[Any, ...]
    counts: np.ndarray

    def merge(self, other: CellTable) -> CellTable:
        """Return the table of both partitions' rows (groups aligned by key)."""
        if other.classes != self.classes or other.counts.shape[1:] != self.counts.shape[1:]:
            raise ValueError("cannot merge count tables over different classes")
        keys = list(self.keys) + [k for k in other.keys if k not in set(self.keys)]
        out = np.zeros((len(keys), *self.counts.shape[1:]), dtype=np.int64)
        pos = {k: i for i, k in enumerate(keys)}
        out[[pos[k] for k in self.keys]] += self.counts
        out[[pos[k] for k in other.keys]] += other.counts
        return CellTable(tuple(keys), self.classes, out)


def cell_table(index: GroupIndex, classes: Sequence[Any], y: np.ndarray, candidate: np.ndarray,
               baseline: np.ndarray | None) -> CellTable:
    """Count the rows of every (group, y, candidate, baseline) cell with one ``np.bincount``.

    ``y``, ``candidate`` and ``baseline`` are label indices into ``classes`` (0..K-1).
    """
    k = len(classes)
    kb = 1 if baseline is None else k
    code = (index.codes * k + y) * k + candidate
    code = code * kb + (0 if baseline is None else baseline)
    counts = np.bincount(code, minlength=index.n_groups * k * k * kb)
    return CellTable(index.keys, tuple(classes), counts.reshape(index.n_groups, k, k, kb))


# ---------------------------------------------------------------- rates


@dataclass(frozen=True)
class Rate:
    """A per-group metric computed from one-vs-rest confusion counts ``(tn, fp, fn, tp)``.

    ``numerator`` and ``denominator`` map those counts to the rate's parts; ``needs`` names the
    rows the rate is about (``rows``, ``positives``, ``negatives``, ``predicted positives``) so a
    group with too few of them can be excluded rather than trusted.
    """

    name: str
    numerator: Callable[..., np.ndarray]
    denominator: Callable[..., np.ndarray]
    needs: str

    def support(self, tn: np.ndarray, fp: np.ndarray, fn: np.ndarray, tp: np.ndarray) -> np.ndarray:
        """Return the count ``min_positives`` is checked against (the rows the rate is about)."""
        return SUPPORT[self.needs](tn, fp, fn, tp)


def _sum(*parts: str) -> Callable[..., np.ndarray]:
    def part(tn: np.ndarray, fp: np.ndarray, fn: np.ndarray, tp: np.ndarray) -> np.ndarray:
        cells = {"tn": tn, "fp": fp, "fn": fn, "tp": tp}
        return sum((cells[p] for p in parts), np.zeros_like(tp))

    return part


def _twice_tp_plus(tn: np.ndarray, fp: np.ndarray, fn: np.ndarray, tp: np.ndarray) -> np.ndarray:
    return 2 * tp + fp + fn


def _twice_tp(tn: np.ndarray, fp: np.ndarray, fn: np.ndarray, tp: np.ndarray) -> np.ndarray:
    return 2 * tp


SUPPORT: Mapping[str, Callable[..., np.ndarray]] = {
    "rows": _sum("tn", "fp", "fn", "tp"),
    "positives": _sum("fn", "tp"),
    "negatives": _sum("tn", "fp"),
    "predicted positives": _sum("fp", "tp"),
}

#: confusion-count rates by name; fairlearn's definitions (``_base_metrics.py``), sklearn's for f1
RATES: Mapping[str, Rate] = {r.name: r for r in (
    Rate("selection_rate", _sum("fp", "tp"), _sum("tn", "fp", "fn", "tp"), "rows"),
    Rate("tpr", _sum("tp"), _sum("fn", "tp"), "positives"),
    Rate("fnr", _sum("fn"), _sum("fn", "tp"), "positives"),
    Rate("fpr", _sum("fp"), _sum("fp", "tn"), "negatives"),
    Rate("tnr", _sum("tn"), _sum("fp", "tn"), "negatives"),
    Rate("precision", _sum("tp"), _sum("fp", "tp"), "predicted positives"),
    Rate("accuracy", _sum("tn", "tp"), _sum("tn", "fp", "fn", "tp"), "rows"),
    Rate("f1", _twice_tp, _twice_tp_plus, "positives"),
)}

#: other names of the same rates (sklearn's and the metric registry's)
RATE_ALIASES: Mapping[str, str] = {"recall": "tpr", "true_positive_rate": "tpr",
                                   "false_positive_rate": "fpr", "false_negative_rate": "fnr",
                                   "true_negative_rate": "tnr", "specificity": "tnr"}


def one_vs_rest(conf: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return per-class one-vs-rest (tn, fp, fn, tp), each shaped (…, K), from (…, K, K) counts.

    ``conf[..., i, j]`` counts rows with true class ``i`` predicted as ``j``.
    """
    conf = np.asarray(conf, dtype=np.float64)
    tp = np.diagonal(conf, axis1=-2, axis2=-1)
    true = conf.sum(axis=-1)
    pred = conf.sum(axis=-2)
    n = conf.sum(axis=(-2, -1))[..., None]
    fn = true - tp
    fp = pred - tp
    return n - true - fp, fp, fn, tp


def confusion_rates(conf: np.ndarray, rate: Rate, view: int | Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Return (values, supports) of ``rate`` from (…, K, K) confusion counts.

    ``view`` is a class index (one-vs-rest for that class; the positive class of a binary task) or
    a sequence of class indices (the unweighted mean over them, "macro", undefined when any class's
    rate is; its support is the smallest class's). Macro ``accuracy`` is the share of correct
    labels. A rate whose denominator is 0 is NaN (undefined), never 0.
    """
    conf = np.asarray(conf, dtype=np.float64)
    if rate.name == "accuracy" and not isinstance(view, (int, np.integer)):
        n = conf.sum(axis=(-2, -1))
        return _divide(np.trace(conf, axis1=-2, axis2=-1), n), n
    parts = one_vs_rest(conf)
    values = _divide(rate.numerator(*parts), rate.denominator(*parts))
    support = rate.support(*parts)
    if isinstance(view, (int, np.integer)):
        return values[..., int(view)], support[..., int(view)]
    cols = list(view)
    return values[..., cols].mean(axis=-1), support[..., cols].min(axis=-1)


def _divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


# ---------------------------------------------------------------- disparities


def disparity(values: np.ndarray, overall: np.ndarray, include: np.ndarray, kind: str,
              method: str) -> np.ndarray:
    """Return fairlearn's ``difference`` or ``ratio`` of per-group ``values`` (…, G).

    Only groups where ``include`` (G,) is true count; a value that is NaN (undefined in that group
    or replicate) is skipped, as pandas skips it in ``MetricFrame``. ``between_groups``: max - min,
    or min / max. ``to_overall``: the largest ``|group - overall|``, or the smallest of
    ``min(group / overall, overall / group)``. NaN when fewer than two groups (one for
    ``to_overall``) have a value.
    """
    v = np.where(include, values, np.nan)
    finite = np.isfinite(v).sum(axis=-1)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if method == "between_groups":
            hi, lo = np.nanmax(v, axis=-1), np.nanmin(v, axis=-1)
            out = hi - lo if kind == "difference" else lo / hi
            return np.where(finite >= 2, out, np.nan)
        o = np.asarray(overall, dtype=np.float64)[..., None]
        if kind == "difference":
            out = np.nanmax(np.abs(v - o), axis=-1)
        else:
            r = v / o
            out = np.nanmin(np.where(r > 1, 1 / r, r), axis=-1)
        return np.where(finite >= 1, out, np.nan)


def combine(parts: Sequence[np.ndarray], kind: str, agg: str) -> np.ndarray:
    """Combine the disparities of several rates (equalized odds: tpr and fpr) into one.

    ``worst_case`` takes the largest difference or the smallest ratio, ``mean`` their mean, as
    fairlearn's ``equalized_odds_difference``/``_ratio`` do with ``agg``. NaN if any part is.
    """
    stacked = np.stack([np.asarray(p, dtype=np.float64) for p in parts])
    if len(parts) == 1:
        return stacked[0]
    if agg == "mean":
        return stacked.mean(axis=0)
    return stacked.max(axis=0) if kind == "difference" else stacked.min(axis=0)


# ---------------------------------------------------------------- both models, by group


#: replicate chunk size of the multinomial bootstrap, in cells (bounds memory for multiclass)
CHUNK_CELLS = 4_000_000
#: group metrics that are not in the metric registry: fairlearn's ``count`` and ``mean_prediction``
COUNT = "count"
MEAN_PREDICTION = "mean_prediction"


@dataclass(frozen=True)
class EvalData:
    """What the fairness gate reads from a run: truth, both models' predictions, label codes.

    ``encoded`` holds shared integer codes of (y, candidate labels, baseline labels) for
    classification tasks (None for regression).
    """

    task: str
    y: np.ndarray
    candidate: Predictions
    baseline: Predictions | None
    positive_label: Any
    classes: tuple[Any, ...] | None
    encoded: Encoded | None

    @property
    def positive(self) -> int:
        return -1 if self.encoded is None else self.encoded.positive


def eval_data(task: str, y: np.ndarray, candidate: Predictions, baseline: Predictions | None,
              positive_label: Any, classes: tuple[Any, ...] | None) -> EvalData:
    """Return :class:`EvalData`, encoding labels once for classification tasks."""
    encoded = None
    if task != REGRESSION:
        arrays = [y, candidate.labels] + ([] if baseline is None else [baseline.labels])
        pos = positive_label if task == BINARY else None
        encoded = encode_labels(*arrays, positive_label=pos, classes=classes)
    return EvalData(task, np.asarray(y), candidate, baseline, positive_label, classes, encoded)


@dataclass(frozen=True)
class GroupValues:
    """One model's value of one group metric in every group, with paired bootstrap replicates.

    ``point`` (G,) and ``overall`` are the estimates on the data; ``support`` (G,) counts the rows
    the metric is about (``needs``: rows, positives, ...), which small-group rules are judged on.
    ``reps`` (B, G) and ``overall_reps`` (B,) are drawn on first use only, since most group
    metrics are shown in reports and never need an interval.
    """

    point: np.ndarray
    overall: float
    support: np.ndarray
    needs: str
    draw: Callable[[], tuple[np.ndarray, np.ndarray]] = field(repr=False, compare=False)

    @cached_property
    def _replicates(self) -> tuple[np.ndarray, np.ndarray]:
        return self.draw()

    @property
    def reps(self) -> np.ndarray:
        return self._replicates[0]

    @property
    def overall_reps(self) -> np.ndarray:
        return self._replicates[1]


@dataclass(frozen=True)
class GroupPair:
    """A group metric of the candidate and (if there is one) the baseline, from the same replicates."""

    candidate: GroupValues
    baseline: GroupValues | None
    method: str


class GroupStats:
    """Every group metric of both models over one grouping, computed from shared statistics.

    Confusion rates come from one :class:`CellTable` and a paired multinomial bootstrap of it;
    score-mean metrics from per-group sums and a row bootstrap within each group; other metrics
    (ROC AUC, average precision) from the metric's own function on resampled rows of each group.
    ``rng_for(name)`` gives the generator of one statistic, so adding a check never changes the
    replicates of another.
    """

    def __init__(self, data: EvalData, index: GroupIndex, n_boot: int,
                 rng_for: Callable[[str], np.random.Generator]) -> None:
        self.data = data
        self.index = index
        self.n_boot = n_boot
        self._rng_for = rng_for
        self.sizes = index.sizes
        self._cache: dict[tuple[str, Any], GroupPair] = {}

    @property
    def has_baseline(self) -> bool:
        return self.data.baseline is not None

    def values(self, name: str, view: Any) -> GroupPair:
        """Return group metric ``name`` of both models (``view``: a class index, classes, or None)."""
        key = (name, view if not isinstance(view, list) else tuple(view))
        if key not in self._cache:
            self._cache[key] = self._compute(name, view)
        return self._cache[key]

    def _compute(self, name: str, view: Any) -> GroupPair:
        if name == COUNT:
            return self._count()
        rate = RATES.get(RATE_ALIASES.get(name, name))
        if rate is not None and self.data.task != REGRESSION:
            return self._rates(rate, view)
        metric = group_metric(name, self.data.task)
        if metric.family == "confusion":
            return self._registry_confusion(metric)
        if metric.family == "row_mean":
            return self._row_mean(metric)
        return self._weighted(metric)

    # -- confusion tables

    @cached_property
    def table(self) -> CellTable:
        enc = self.data.encoded
        assert enc is not None
        base = enc.codes[2] if len(enc.codes) > 2 else None
        return cell_table(self.index, enc.labels, enc.codes[0], enc.codes[1], base)

    @cached_property
    def confusions(self) -> tuple[np.ndarray, np.ndarray | None]:
        """Per-group confusion tables (G, K, K) of the candidate and the baseline."""
        counts = self.table.counts
        base = counts.sum(axis=2) if self.has_baseline else None
        return counts.sum(axis=3), base

    @cached_property
    def replicate_confusions(self) -> tuple[np.ndarray, np.ndarray | None]:
        """Bootstrap replicates (B, G, K, K) of both models' tables, one multinomial draw each."""
        counts = self.table.counts
        g, k = counts.shape[0], counts.shape[1]
        cand = np.empty((self.n_boot, g, k, k))
        base = np.empty((self.n_boot, g, k, k)) if self.has_baseline else None
        rng = self._rng_for("cells")
        step = max(1, CHUNK_CELLS // max(counts.size, 1))
        for start in range(0, self.n_boot, step):
            stop = min(self.n_boot, start + step)
            reps = multinomial_counts(counts, stop - start, rng)
            cand[start:stop] = reps.sum(axis=4)
            if base is not None:
                base[start:stop] = reps.sum(axis=3)
        return cand, base

    def _from_tables(self, fn: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]], needs: str) -> GroupPair:
        def model(i: int) -> GroupValues | None:
            point = self.confusions[i]
            if point is None:
                return None

            def draw() -> tuple[np.ndarray, np.ndarray]:
                rep = self.replicate_confusions[i]
                assert rep is not None
                return fn(rep)[0], fn(rep.sum(axis=1))[0]

            values, support = fn(point)
            return GroupValues(values, float(fn(point.sum(axis=0))[0]), support, needs, draw)

        cand = model(0)
        assert cand is not None
        return GroupPair(cand, model(1), "multinomial_bootstrap")

    def _rates(self, rate: Rate, view: Any) -> GroupPair:
        return self._from_tables(lambda conf: confusion_rates(conf, rate, view), rate.needs)

    def _registry_confusion(self, metric: Metric) -> GroupPair:
        assert metric.counts is not None
        counts_fn, positive = metric.counts, self.data.positive

        def fn(conf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return counts_fn(conf, positive), conf.sum(axis=(-2, -1))

        return self._from_tables(fn, "rows")

    def _count(self) -> GroupPair:
        sizes = self.sizes.astype(np.float64)

        def draw() -> tuple[np.ndarray, np.ndarray]:
            if self.data.task == REGRESSION:  # rows are resampled within groups: sizes are fixed
                reps = np.broadcast_to(sizes, (self.n_boot, sizes.size))
            else:
                reps = self.replicate_confusions[0].sum(axis=(-2, -1))
            return reps, reps.sum(axis=1)

        values = GroupValues(sizes, float(sizes.sum()), sizes, "rows", draw)
        return GroupPair(values, values if self.has_baseline else None, "multinomial_bootstrap")

    # -- row means

    @cached_property
    def _order(self) -> tuple[np.ndarray, np.ndarray]:
        """Row indices sorted by group, and each group's start offset (for per-group slices)."""
        order = np.argsort(self.index.codes, kind="stable")
        starts = np.concatenate([[0], np.cumsum(self.sizes)])
        return order, starts

    def _group_rows(self, g: int) -> np.ndarray:
        order, starts = self._order
        return order[starts[g]:starts[g + 1]]

    def _row_mean(self, metric: Metric) -> GroupPair:
        """Per-group means of the metric's per-row statistics; replicates resample rows within groups."""
        assert metric.row_stats is not None and metric.from_means is not None
        from_means = metric.from_means
        models = self._models
        stats = np.hstack([np.asarray(metric.row_stats(self.data.y, m, self.data.positive_label,
                                                        self.data.classes), dtype=np.float64)
                           for m in models])
        p = stats.shape[1] // len(models)
        sizes = self.sizes.astype(np.float64)
        sums = np.column_stack([np.bincount(self.index.codes, weights=stats[:, j], minlength=sizes.size)
                                for j in range(stats.shape[1])])

        @_once
        def rep_sums() -> np.ndarray:
            rng = self._rng_for(metric.name)
            return np.stack([row_resample_sums(stats[self._group_rows(g)], self.n_boot, rng)
                             for g in range(sizes.size)], axis=1)

        def model(i: int) -> GroupValues:
            cols = slice(i * p, (i + 1) * p)

            def draw() -> tuple[np.ndarray, np.ndarray]:
                reps = rep_sums()[..., cols]
                return (np.asarray(from_means(_per_row(reps, sizes))),
                        np.asarray(from_means(reps.sum(axis=1) / sizes.sum())))

            point = np.asarray(from_means(_per_row(sums[:, cols], sizes)))
            overall = float(from_means(sums[:, cols].sum(axis=0) / sizes.sum()))
            return GroupValues(point, overall, self.sizes, "rows", draw)

        return self._pair([model(i) for i in range(len(models))], "stratified_row_bootstrap")

    # -- ranking metrics (ROC AUC, average precision): bootstrap counts as row weights

    def _weighted(self, metric: Metric) -> GroupPair:
        """Score-order metrics of every group, resampling rows within groups as integer weights."""
        order, starts = self._order
        y = self.data.y[order]
        bounds = [slice(starts[g], starts[g + 1]) for g in range(self.index.n_groups)]
        models = self._models
        fns = [self._ranking_fn(metric, m, order) for m in models]

        def values(fn: Callable[[slice, np.ndarray], np.ndarray], weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            per_group = np.stack([fn(b, weights[:, b]) for b in bounds], axis=-1)
            return per_group, fn(slice(0, len(y)), weights)

        @_once
        def rep_values() -> list[tuple[np.ndarray, np.ndarray]]:
            rng = self._rng_for(metric.name)
            step = max(1, CHUNK_CELLS // max(len(y), 1))
            parts: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in models]
            for start in range(0, self.n_boot, step):
                weights = self._resample_weights(min(step, self.n_boot - start), rng)
                for i, fn in enumerate(fns):
                    parts[i].append(values(fn, weights))
            return [(np.concatenate([p[0] for p in ps]), np.concatenate([p[1] for p in ps])) for ps in parts]

        def model(i: int) -> GroupValues:
            point, overall = values(fns[i], np.ones((1, len(y))))

            def draw() -> tuple[np.ndarray, np.ndarray]:
                drawn: tuple[np.ndarray, np.ndarray] = rep_values()[i]
                return drawn

            return GroupValues(point[0], float(overall[0]), self.sizes, "rows", draw)

        return self._pair([model(i) for i in range(len(models))], "stratified_row_bootstrap")

    def _resample_weights(self, n_boot: int, rng: np.random.Generator) -> np.ndarray:
        """Return (n_boot, n) bootstrap counts, drawn within each group, in group-sorted row order."""
        _, starts = self._order
        out = np.empty((n_boot, int(starts[-1])))
        offsets = np.arange(n_boot)[:, None]
        for g in range(self.index.n_groups):
            size = int(starts[g + 1] - starts[g])
            idx = rng.integers(0, size, (n_boot, size)) + offsets * size
            out[:, starts[g]:starts[g + 1]] = np.bincount(idx.ravel(), minlength=n_boot * size).reshape(n_boot, size)
        return out

    def _ranking_fn(self, metric: Metric, pred: Predictions, order: np.ndarray
                    ) -> Callable[[slice, np.ndarray], np.ndarray]:
        """Return f(rows, weights (B, rows)) -> (B,) for one model, rows in group-sorted order."""
        y = self.data.y[order]
        scores = np.asarray(pred.scores, dtype=np.float64)[order]
        if metric.family == "ranking":
            y_pos = y == self.data.positive_label
            return lambda rows, w: weighted_average_precision(y_pos[rows], scores[rows], w)
        if scores.ndim == 1:
            y_pos = y == self.data.positive_label
            return lambda rows, w: weighted_auc(y_pos[rows], scores[rows], w)
        classes = tuple(pred.classes or self.data.classes or ())
        weighted = metric.average == "weighted"
        return lambda rows, w: weighted_ovr_auc(y[rows], scores[rows], classes, w, weighted)

    @property
    def _models(self) -> list[Predictions]:
        return [m for m in (self.data.candidate, self.data.baseline) if m is not None]

    @staticmethod
    def _pair(values: list[GroupValues], method: str) -> GroupPair:
        return GroupPair(values[0], values[1] if len(values) > 1 else None, method)


def _once(fn: Callable[[], Any]) -> Callable[[], Any]:
    """Memoise a no-argument function (replicates shared by both models' values)."""
    cache: list[Any] = []

    def wrapper() -> Any:
        if not cache:
            cache.append(fn())
        return cache[0]

    return wrapper


def weighted_auc(y_pos: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Return ROC AUC (ties count half) for each row of ``weights`` (B, n) of row multiplicities.

    With integer bootstrap counts as weights this is the AUC of each resample; NaN where a
    resample lacks positives or negatives.
    """
    if len(scores) == 0:
        return np.full(weights.shape[0], np.nan)
    order = np.argsort(scores, kind="mergesort")
    s = scores[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    w = weights[:, order]
    pos = np.add.reduceat(w * y_pos[order], starts, axis=1)
    neg = np.add.reduceat(w * ~y_pos[order], starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg
    num = (pos * (below + 0.5 * neg)).sum(axis=1)
    den = pos.sum(axis=1) * neg.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def weighted_ovr_auc(y: np.ndarray, proba: np.ndarray, classes: Sequence[Any], weights: np.ndarray,
                     by_prevalence: bool) -> np.ndarray:
    """Return one-vs-rest ROC AUC averaged over the classes present, per row of ``weights``."""
    values, sizes = [], []
    for j, c in enumerate(classes):
        is_c = y == c
        values.append(weighted_auc(is_c, proba[:, j], weights))
        sizes.append(weights @ is_c.astype(np.float64))
    vals, counts = np.array(values), np.array(sizes)
    present = np.isfinite(vals)
    w = np.where(present, counts if by_prevalence else 1.0, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(w.sum(axis=0) > 0, (np.where(present, vals, 0) * w).sum(axis=0) / w.sum(axis=0), np.nan)


def _per_row(sums: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Divide per-group sums (…, G, p) by group sizes (G,), NaN for empty groups."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return sums / np.where(sizes > 0, sizes, np.nan)[:, None]


def _mean_prediction_rows(y: np.ndarray, pred: Predictions, positive: Any, classes: Any) -> np.ndarray:
    return np.asarray(pred.labels, dtype=np.float64)[:, None]


def _first(means: np.ndarray) -> np.ndarray:
    return means[..., 0]


#: fairlearn's mean_prediction (regression: the mean predicted value), in the registry's shape
MEAN_PREDICTION_METRIC = Metric(MEAN_PREDICTION, 0, "labels", frozenset({REGRESSION}), "row_mean",
                                "mean predicted value", row_stats=_mean_prediction_rows, from_means=_first)


def group_metric_names(task: str) -> list[str]:
    """Return every group metric a fairness check may name for ``task``."""
    names = [COUNT]
    if task == REGRESSION:
        names.append(MEAN_PREDICTION)
    else:
        names += list(RATES) + list(RATE_ALIASES)
    names += [n for n in metric_names(task) if not metric_registry()[n].needs_baseline and n not in names]
    return names


def group_metric(name: str, task: str) -> Metric:
    """Return the registry metric (or ``mean_prediction``) behind a non-rate group metric."""
    return MEAN_PREDICTION_METRIC if name == MEAN_PREDICTION else metric_registry()[name]


def is_rate(name: str, task: str) -> bool:
    """True when ``name`` is a one-vs-rest confusion rate (has a per-class view)."""
    return task != REGRESSION and RATE_ALIASES.get(name, name) in RATES
