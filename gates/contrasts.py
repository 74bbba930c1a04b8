"""Paired estimates of a linear contrast of one metric over several prediction sets on the same rows.

The robustness gate's "no worse than production" compares two drops under one perturbation:
``(clean_c - perturbed_c) - (clean_b - perturbed_b)``, a contrast ``sum_j w_j * metric(P_j)`` of
four prediction sets scored on the same rows. Its interval must resample the four together, so each
family uses the same machinery as :mod:`gates.estimates`, generalised from two prediction sets to k:

* ``confusion``: one multinomial draw per replicate over the joint label cells
  (y, labels_1, ..., labels_k), only the cells seen (``bootstrap-multinomial``), by the core's one
  sampler (:meth:`gates.stats.partials.CellCounts.replicates`) within its one memory budget;
* ``auc``: DeLong's covariance of k correlated AUCs (DeLong et al. 1988) for binary tasks, its
  influence-function form for one-vs-rest averages; the contrast's variance is ``w' S w`` (``delong``);
* ``row_mean`` and ``ranking``: Poisson(1) row weights shared by the k sets (``bootstrap-rows``),
  hashed from each row's key (:func:`gates.estimates.poisson_weights`; ``keys``, default the
  rows' positions) with a seed drawn from ``rng``, so batches of the rows weigh them the same way;
  cluster keys (``data.cluster``) give a cluster's rows one weight per replicate, so whole clusters
  are resampled (``bootstrap-clusters``).

:func:`paired_mean` covers per-row measures (flip indicators, score shifts): the mean of paired
differences with its normal standard error.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import sparse

from gates.clusters import METHOD_BOOTSTRAP as METHOD_CLUSTERS
from gates.estimates import METHOD_DELONG, METHOD_MULTINOMIAL, METHOD_ROWS, ovr_delong, poisson_weights
from gates.intervals import Estimate, delong_covariance
from gates.metrics import Metric, RankedScores, encode_labels
from gates.stats.partials import CellCounts

if TYPE_CHECKING:
    from gates.context import Predictions

METHOD_PAIRED_NORMAL = "paired-normal"


def paired_mean(diff: np.ndarray) -> Estimate:
    """Return the mean of per-row paired differences with its normal (CLT) standard error."""
    n = diff.size
    if n < 2:
        return Estimate(float("nan"), METHOD_PAIRED_NORMAL)
    return Estimate(float(diff.mean()), METHOD_PAIRED_NORMAL, se=float(diff.std(ddof=1) / math.sqrt(n)))


def contrast_estimate(metric: Metric, y: np.ndarray, preds: Sequence[Predictions],
                      weights: Sequence[float] | np.ndarray, *, n_boot: int, rng: np.random.Generator,
                      positive_label: Any = None, classes: tuple[Any, ...] | None = None,
                      values: Sequence[float] | None = None, keys: np.ndarray | None = None,
                      clustered: bool = False) -> Estimate:
    """Return the paired estimate of ``sum_j weights[j] * metric(preds[j])`` over the rows of ``y``.

    Parameters
    ----------
    metric : a registry metric of family confusion, auc, row_mean or ranking.
    y : true labels (or values), one per row.
    preds : k prediction sets on the same rows.
    weights : the contrast, one weight per prediction set.
    n_boot, rng : replicates and generator for the resampled families.
    values : each set's metric value when the caller has them already (else computed here).
    keys : the rows' keys for the Poisson weights (:func:`gates.stats.weights.row_keys`; default positions).
    clustered : ``keys`` are cluster keys (:func:`gates.clusters.cluster_index`): the resampled
        families' method is ``bootstrap-clusters``.

    Examples
    --------
    >>> from gates.context import Predictions
    >>> from gates.metrics import metric_registry
    >>> y = np.array([0, 1, 1, 0, 1, 0])
    >>> a = Predictions(np.array([0, 1, 1, 0, 1, 1]), None)
    >>> b = Predictions(np.array([0, 1, 0, 0, 1, 1]), None)
    >>> est = contrast_estimate(metric_registry()["accuracy"], y, [a, b], [1.0, -1.0], n_boot=200,
    ...                         rng=np.random.default_rng(0))
    >>> round(est.value, 4), est.method
    (0.1667, 'bootstrap-multinomial')
    """
    w = np.asarray(weights, dtype=np.float64)
    y = np.asarray(y)
    if values is None:
        values = [metric.compute(y, p, positive_label=positive_label, classes=classes) for p in preds]
    value = float(np.dot(w, values))
    if not math.isfinite(value):
        return Estimate(float("nan"), "none")
    if metric.family == "confusion":
        reps = _confusion_replicates(metric, y, preds, w, n_boot, rng, positive_label, classes)
        return Estimate(value, METHOD_MULTINOMIAL, replicates=reps)
    if metric.family == "auc":
        return Estimate(value, METHOD_DELONG, se=_auc_contrast_se(metric, y, preds, w, positive_label, classes))
    if metric.family in ("row_mean", "ranking"):
        reps = _row_replicates(metric, y, preds, w, n_boot, rng, positive_label, classes, keys)
        return Estimate(value, METHOD_CLUSTERS if clustered else METHOD_ROWS, replicates=reps)
    raise ValueError(f"metric '{metric.name}' ({metric.family}) has no contrast estimator")


def _confusion_replicates(metric: Metric, y: np.ndarray, preds: Sequence[Predictions], w: np.ndarray,
                          n_boot: int, rng: np.random.Generator, positive_label: Any,
                          classes: tuple[Any, ...] | None) -> np.ndarray:
    """Draw the seen joint cells multinomially (:class:`CellCounts`); each set's confusion table is a sparse sum of cells."""
    enc = encode_labels(y, *[p.labels for p in preds], positive_label=positive_label, classes=classes)
    joint = np.zeros(len(y), dtype=np.int64)
    for codes in enc.codes:
        joint = joint * enc.k + codes
    cells, counts = np.unique(joint, return_counts=True)
    return cell_replicates(metric, cells, counts, enc.k, len(enc.codes), enc.positive, w, n_boot, rng)


def cell_replicates(metric: Metric, cells: np.ndarray, counts: np.ndarray, k: int, depth: int, positive: int,
                    w: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Return the contrast's replicates from the seen joint cells: ``cells`` (sorted joint codes, base ``k``,
    ``depth`` digits: y then each prediction set) and their ``counts`` (mergeable over batches)."""
    digit = [(cells // k ** (depth - 1 - i)) % k for i in range(depth)]
    rows = np.arange(cells.size)
    to_table = [sparse.csr_matrix((np.ones(cells.size), (rows, digit[0] * k + digit[j])), shape=(cells.size, k * k))
                for j in range(1, depth)]
    assert metric.counts is not None
    out = np.empty(n_boot)
    start = 0
    for draws in CellCounts(counts).replicates(n_boot, rng):
        total = np.zeros(draws.shape[0])
        for wj, m in zip(w, to_table, strict=True):
            total += wj * metric.counts(np.asarray(draws @ m).reshape(-1, k, k), positive)
        out[start:start + draws.shape[0]] = total
        start += draws.shape[0]
    return out


def _auc_contrast_se(metric: Metric, y: np.ndarray, preds: Sequence[Predictions], w: np.ndarray,
                     positive_label: Any, classes: tuple[Any, ...] | None) -> float:
    scores = [np.asarray(p.scores, dtype=np.float64) for p in preds]
    if scores[0].ndim == 1:
        _, cov = delong_covariance(y == positive_label, np.vstack(scores))
        if not np.isfinite(cov).all():
            return float("nan")
        return math.sqrt(max(float(w @ cov @ w), 0.0))
    order = tuple(preds[0].classes or classes or ())
    _, influence = ovr_delong(y, scores, order, metric.average == "weighted")
    return float(np.sqrt(np.sum((w @ influence) ** 2)))


def row_weight_seed(rng: np.random.Generator) -> int:
    """Return the Poisson weights' seed a contrast draws from its generator (first and only draw, as
    :func:`gates.estimates.poisson_weights` draws it)."""
    return int(rng.integers(0, 2**63))


def _row_replicates(metric: Metric, y: np.ndarray, preds: Sequence[Predictions], w: np.ndarray, n_boot: int,
                    rng: np.random.Generator, positive_label: Any, classes: tuple[Any, ...] | None,
                    keys: np.ndarray | None = None) -> np.ndarray:
    """Weight every row by one Poisson(1) count per replicate, the same count for all k sets."""
    if metric.family == "ranking":
        y_pos = y == positive_label
        ranked = [RankedScores.of(y_pos, np.asarray(p.scores, dtype=np.float64)) for p in preds]
        chunks = [sum(wj * r.average_precision(weights) for wj, r in zip(w, ranked, strict=True))
                  for weights in poisson_weights(len(y), n_boot, rng, keys=keys)]
        return np.concatenate(chunks)
    assert metric.row_stats is not None and metric.from_means is not None
    stats = [metric.row_stats(y, p, positive_label, classes) for p in preds]
    width = stats[0].shape[1]
    values = np.hstack(stats)
    centre = values.mean(axis=0)
    centred = values - centre
    out = []
    for weights in poisson_weights(len(y), n_boot, rng, keys=keys):
        wd = weights.astype(np.float64)
        means = centre + (wd @ centred) / wd.sum(axis=1, keepdims=True)
        out.append(sum(wj * metric.from_means(means[:, j * width:(j + 1) * width]) for j, wj in enumerate(w)))
    return np.concatenate(out)
