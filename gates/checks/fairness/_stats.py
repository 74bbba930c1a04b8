"""Every group metric of both models over one grouping, with paired bootstrap replicates.

The statistics behind the fairness gate, all from :mod:`gates.stats`: confusion rates from a
:class:`gates.groups.CellTable` and the one multinomial sampler over its cells
(:meth:`gates.stats.CellCounts.replicates`); score-mean metrics from per-group
:class:`~gates.stats.PoissonSums`; ranking metrics (ROC AUC, average precision) with the same
hashed Poisson(1) row weights (:mod:`gates.stats.weights`), so every replicate reweights the rows
the way the regression gate's do, independently of how they are split into batches.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from gates.context import Predictions
from gates.groups import (
    RATE_ALIASES,
    RATES,
    CellTable,
    GroupIndex,
    Rate,
    confusion_rates,
    label_cells,
    plain,
    table_of_cells,
)
from gates.clusters import METHOD_BOOTSTRAP as METHOD_CLUSTERS
from gates.clusters import ClusterIndex, cluster_weights
from gates.stats import CellCounts, PoissonSums, row_keys
from gates.stats.tables import axis_sum
from gates.stats.weights import weight_chunks
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

METHOD_CELLS = "bootstrap-multinomial"
METHOD_ROWS = "bootstrap-rows"
#: group metrics that are not in the metric registry: fairlearn's ``count`` and ``mean_prediction``
COUNT = "count"
MEAN_PREDICTION = "mean_prediction"
PER_EXAMPLE = "per_example"


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

    @cached_property
    def cells(self) -> np.ndarray:
        """Each row's (y, candidate, baseline) label cell, computed once for every grouping."""
        enc = self.encoded
        assert enc is not None
        return label_cells(enc.codes[0], enc.codes[1], enc.codes[2] if len(enc.codes) > 2 else None, enc.k)


def eval_data(task: str, y: np.ndarray, candidate: Predictions, baseline: Predictions | None,
              positive_label: Any, classes: tuple[Any, ...] | None) -> EvalData:
    """Return :class:`EvalData`, encoding labels once for classification tasks."""
    encoded = None
    if task not in (REGRESSION, PER_EXAMPLE):
        arrays = [y, candidate.labels] + ([] if baseline is None else [baseline.labels])
        pos = positive_label if task == BINARY else None
        encoded = _encode(arrays, pos, classes)
    return EvalData(task, np.asarray(y), candidate, baseline, positive_label, classes, encoded)


def _encode(arrays: Sequence[np.ndarray], positive_label: Any, classes: tuple[Any, ...] | None) -> Encoded:
    """Return shared label codes as :func:`gates.metrics.encode_labels` does, by hashing.

    The code space is ``classes``, then the positive label, then other labels in order of
    appearance; looking each array up in one index keeps numeric labels numeric (no object copies
    of a million rows).
    """
    labels = list(classes or ())
    if positive_label is not None and positive_label not in labels:
        labels.append(positive_label)
    for a in arrays:
        labels += [u for u in pd.unique(np.asarray(a).ravel()) if u not in labels]
    index = pd.Index(labels)
    codes = tuple(index.get_indexer(np.asarray(a).ravel()).astype(np.int64) for a in arrays)
    if any((c < 0).any() for c in codes):  # mixed types that do not hash alike: the generic encoder
        return encode_labels(*arrays, positive_label=positive_label, classes=classes)
    positive = labels.index(positive_label) if positive_label is not None else -1
    return Encoded(codes, tuple(plain(v) for v in labels), positive)


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
    ``rng_for(name)`` gives the generator of one statistic (and the seed of its Poisson weights), so
    adding a check never changes the replicates of another. ``keys`` are the rows' keys
    (:func:`gates.stats.row_keys`; default their positions).
    """

    def __init__(self, data: EvalData, index: GroupIndex, n_boot: int,
                 rng_for: Callable[[str], np.random.Generator], keys: np.ndarray | None = None,
                 clusters: ClusterIndex | None = None) -> None:
        self.data = data
        self.index = index
        self.n_boot = n_boot
        self._rng_for = rng_for
        if clusters is not None:  # a cluster's rows share every replicate's weight
            keys = clusters.keys
        self.keys = row_keys(len(index.codes)) if keys is None else keys
        self.sizes = index.sizes
        self.clusters = clusters
        #: what min_group_size counts: each group's clusters when there are clusters, else its rows
        self.units = self.sizes if clusters is None else clusters.counts_by(index.codes, index.n_groups)
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
        if self.data.task == PER_EXAMPLE:
            return self._score_mean(name)
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
        return table_of_cells(self.index, enc.labels, self.data.cells, base is not None)

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
        start = 0
        for reps in CellCounts(counts).replicates(self.n_boot, self._rng_for("cells")):
            stop = start + len(reps)
            cand[start:stop] = axis_sum(reps, 4)
            if base is not None:
                base[start:stop] = axis_sum(reps, 3)
            start = stop
        return cand, base

    def _from_tables(self, fn: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]], needs: str) -> GroupPair:
        def model(i: int) -> GroupValues | None:
            point = self.confusions[i]
            if point is None:
                return None

            def draw() -> tuple[np.ndarray, np.ndarray]:
                rep = self.replicate_confusions[i]
                assert rep is not None
                return fn(rep)[0], fn(axis_sum(rep, 1))[0]

            values, support = fn(point)
            return GroupValues(values, float(fn(point.sum(axis=0))[0]), support, needs, draw)

        cand = model(0)
        assert cand is not None
        return GroupPair(cand, model(1), METHOD_CELLS)

    def _rates(self, rate: Rate, view: Any) -> GroupPair:
        return self._from_tables(lambda conf: confusion_rates(conf, rate, view), rate.needs)

    def _registry_confusion(self, metric: Metric) -> GroupPair:
        assert metric.counts is not None
        counts_fn, positive = metric.counts, self.data.positive

        def fn(conf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return counts_fn(conf, positive), axis_sum(conf, (-2, -1))

        return self._from_tables(fn, "rows")

    def _count(self) -> GroupPair:
        sizes = self.sizes.astype(np.float64)

        def draw() -> tuple[np.ndarray, np.ndarray]:
            if self.data.task == REGRESSION:  # the Poisson weights' group totals
                reps = self._count_sums().sums[..., 0]
            else:
                reps = axis_sum(self.replicate_confusions[0], (-2, -1))
            return reps, axis_sum(reps, 1)

        values = GroupValues(sizes, float(sizes.sum()), sizes, "rows", draw)
        return GroupPair(values, values if self.has_baseline else None, METHOD_CELLS)

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

    def _seed(self, name: str) -> int:
        return int(self._rng_for(name).integers(0, 2**63))

    def _poisson_sums(self, stats: np.ndarray, name: str) -> PoissonSums:
        """Return per-group Poisson-weighted sums of per-row ``stats`` (the weights of stream ``name``)."""
        centre = stats.mean(axis=0) if len(stats) else np.zeros(stats.shape[1])
        return PoissonSums.of(self.keys, stats, n_boot=self.n_boot, seed=self._seed(name), cells=self.index.codes,
                              n_cells=self.index.n_groups, centre=centre)

    def _count_sums(self) -> PoissonSums:
        """Per-group totals of the Poisson weights of stream ``count`` (a regression group's size replicates)."""
        return self._poisson_sums(np.zeros((len(self.keys), 0)), COUNT)

    def _row_partials(self, metric: Metric) -> tuple[np.ndarray, Callable[[], PoissonSums]]:
        """Return per-group sums ``(G, P)`` of the metric's per-row statistics (both models side by
        side) and a function giving their Poisson-weighted sums (drawn on first use)."""
        assert metric.row_stats is not None
        stats = np.hstack([np.asarray(metric.row_stats(self.data.y, m, self.data.positive_label,
                                                        self.data.classes), dtype=np.float64)
                           for m in self._models])
        sums = np.column_stack([np.bincount(self.index.codes, weights=stats[:, j], minlength=self.index.n_groups)
                                for j in range(stats.shape[1])])

        @_once
        def rep_sums() -> PoissonSums:
            return self._poisson_sums(stats, metric.name)

        return sums, rep_sums

    def _row_mean(self, metric: Metric) -> GroupPair:
        """Per-group means of the metric's per-row statistics; replicates weight rows by Poisson(1)."""
        assert metric.from_means is not None
        from_means = metric.from_means
        models = self._models
        sums, rep_sums = self._row_partials(metric)
        p = sums.shape[1] // len(models)
        sizes = self.sizes.astype(np.float64)

        def model(i: int) -> GroupValues:
            cols = slice(i * p, (i + 1) * p)

            def draw() -> tuple[np.ndarray, np.ndarray]:
                sums = rep_sums()
                per_group = sums.means()[..., cols]
                overall = sums.means(np.ones((1, sizes.size)))[:, 0, cols]
                return np.asarray(from_means(per_group)), np.asarray(from_means(overall))

            point = np.asarray(from_means(_per_row(sums[:, cols], sizes)))
            overall = float(from_means(sums[:, cols].sum(axis=0) / sizes.sum()))
            return GroupValues(point, overall, self.sizes, "rows", draw)

        return self._pair([model(i) for i in range(len(models))], METHOD_ROWS)

    # -- per-example scores: group means, whole clusters resampled with the core's Poisson weights

    def _score_partials(self, name: str) -> tuple[np.ndarray, Callable[[], np.ndarray]]:
        """Return per-group sums ``(G, models)`` of score ``name`` and a function giving their
        Poisson-weighted sums ``(B, G, 1 + models)`` (column 0: the weights; drawn on first use)."""
        order, starts = self._order
        models = self._models
        assert all(m.classes is not None and m.scores is not None for m in models)
        values = np.column_stack([m.scores[:, m.classes.index(name)] for m in models])  # type: ignore[union-attr]
        ones = np.hstack([np.ones((len(values), 1)), values])[order]
        sums = np.column_stack([np.bincount(self.index.codes, weights=values[:, j], minlength=self.index.n_groups)
                                for j in range(values.shape[1])])
        keys = self.keys[order]

        @_once
        def rep_sums() -> np.ndarray:
            seed = int(self._rng_for(name).integers(0, 1 << 63))
            parts = [np.stack([w[:, a:b].astype(np.float64) @ ones[a:b] for a, b in zip(starts[:-1], starts[1:])],
                              axis=1) for w in cluster_weights(keys, self.n_boot, seed)]
            return np.concatenate(parts)  # (B, G, 1 + models)

        return sums, rep_sums

    def _score_mean(self, name: str) -> GroupPair:
        """Per-group means of score ``name`` of both models; replicates weight rows (or clusters) by Poisson(1)."""
        models = self._models
        sizes = self.sizes.astype(np.float64)
        sums, rep_sums = self._score_partials(name)

        def model(i: int) -> GroupValues:
            def draw() -> tuple[np.ndarray, np.ndarray]:
                reps = rep_sums()
                with np.errstate(invalid="ignore", divide="ignore"):
                    return reps[..., 1 + i] / reps[..., 0], reps[..., 1 + i].sum(axis=1) / reps[..., 0].sum(axis=1)

            with np.errstate(invalid="ignore", divide="ignore"):
                point = sums[:, i] / np.where(sizes > 0, sizes, np.nan)
            return GroupValues(point, float(sums[:, i].sum() / sizes.sum()), self.units,
                               "rows" if self.clusters is None else "clusters", draw)

        method = METHOD_ROWS if self.clusters is None else METHOD_CLUSTERS
        return self._pair([model(i) for i in range(len(models))], method)

    # -- ranking metrics (ROC AUC, average precision): Poisson counts as row weights

    def _weighted(self, metric: Metric) -> GroupPair:
        """Score-order metrics of every group, each replicate weighting the rows by hashed Poisson(1) counts."""
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
            parts: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in models]
            for weights in weight_chunks(self.keys[order], self.n_boot, self._seed(metric.name)):
                w = weights.astype(np.float64)
                for i, fn in enumerate(fns):
                    parts[i].append(values(fn, w))
            return [(np.concatenate([p[0] for p in ps]), np.concatenate([p[1] for p in ps])) for ps in parts]

        def model(i: int) -> GroupValues:
            point, overall = values(fns[i], np.ones((1, len(y))))

            def draw() -> tuple[np.ndarray, np.ndarray]:
                drawn: tuple[np.ndarray, np.ndarray] = rep_values()[i]
                return drawn

            return GroupValues(point[0], float(overall[0]), support, needs, draw)

        support, needs = self._ranking_support(metric)
        return self._pair([model(i) for i in range(len(models))], METHOD_ROWS)

    def _ranking_support(self, metric: Metric) -> tuple[np.ndarray, str]:
        """Return the rows a binary ranking metric rests on: positives (AP), the rarer class (AUC)."""
        if self.data.task != BINARY:
            return self.sizes, "rows"
        positives = np.bincount(self.index.codes, weights=self.data.y == self.data.positive_label,
                                minlength=self.index.n_groups).astype(np.int64)
        if metric.family == "ranking":
            return positives, "positives"
        return np.minimum(positives, self.sizes - positives), "positives or negatives"

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


def group_metric_names(task: str, scores: Sequence[str] = ()) -> list[str]:
    """Return every group metric a fairness check may name for ``task`` (per_example: its ``scores``)."""
    if task == PER_EXAMPLE:
        return list(scores)
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
    return task not in (REGRESSION, PER_EXAMPLE) and RATE_ALIASES.get(name, name) in RATES


def needs_scores(name: str, task: str) -> bool:
    """True when group metric ``name`` is computed from scores rather than labels."""
    if task == PER_EXAMPLE or name in (COUNT, MEAN_PREDICTION) or is_rate(name, task):
        return False
    return group_metric(name, task).needs == "scores"
