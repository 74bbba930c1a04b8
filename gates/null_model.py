"""The symmetrised (null) population of a paired eval set, and simulated eval sets drawn from it.

To know what a gate decides when the candidate is truly as good as the baseline, ``calibrate``
needs eval sets from a world where the two models are exchangeable. The eval rows give one: every
row counts once as measured and once with the candidate's and baseline's outputs swapped. That
keeps each model's relation to the target and the within-row correlation of the two models (what
a paired interval's width depends on), and makes the true difference of every metric exactly 0.

A simulated eval set of ``n`` rows is drawn from this population without touching rows again:

* one multinomial draw of the joint cell table (finest slice, y, candidate label, baseline label):
  every confusion metric (accuracy, f1, ...) of both models is evaluated exactly on it, as the
  regression gate's bootstrap does (``gates.estimates``);
* metrics with a per-row influence function (ROC AUC, average precision, score means; see
  :mod:`gates.influence`) as ``d = (1/n) sum(phi)``: the mean of ``phi`` in each cell moves with
  the same multinomial counts (so accuracy and AUC stay coupled as on real data), the rest is
  normal with the pooled within-cell covariance. Their standard error at ``n`` rows is
  ``sqrt(mean(phi**2) / n)``, DeLong's for AUC.

With clusters (``data.cluster``) a cluster is swapped as a whole, so the normal part's covariance is
that of cluster totals of ``phi`` (the cluster-robust form: ``sqrt(sum_g Phi_g**2) / n`` for a mean).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gates.context import Predictions
from gates.estimates import Slicing, multinomial_tables
from gates.influence import difference_influence, take
from gates.metrics import REGRESSION, Metric, encode_labels

PER_EXAMPLE = "per_example"
METHOD_MULTINOMIAL = "multinomial"
METHOD_NORMAL = "normal"


@dataclass(frozen=True)
class Target:
    """A metric on one slice of one slicing whose null difference is simulated."""

    metric: Metric
    slicing: int
    slice: int


@dataclass(frozen=True)
class NullModel:
    """The symmetrised population of one eval set, as cell counts plus influence values.

    ``cells`` has shape ``(C, K, K, K)`` over (finest slice, y, candidate label, baseline label),
    already symmetrised (the table and its candidate/baseline transpose, averaged), so it sums to
    ``n``. ``row_cell`` and ``twin_cell`` give each row's cell as measured and with models swapped.
    """

    y: np.ndarray
    candidate: Predictions
    baseline: Predictions
    slicings: Sequence[Slicing | None]
    finest: np.ndarray
    to_slice: Mapping[int, np.ndarray]
    cells: np.ndarray
    row_cell: np.ndarray
    twin_cell: np.ndarray
    positive: int
    positive_label: Any
    classes: tuple[Any, ...] | None
    clusters: np.ndarray | None = None

    @classmethod
    def of(cls, y: np.ndarray, candidate: Predictions, baseline: Predictions, slicings: Sequence[Slicing | None], *,
           task: str, positive_label: Any, classes: tuple[Any, ...] | None,
           clusters: np.ndarray | None = None) -> NullModel:
        """``clusters``: each row's cluster code, when rows of a cluster are not independent."""
        y = np.asarray(y)
        finest, to_slice = _finest(slicings, len(y))
        codes: tuple[np.ndarray, ...]
        if task in (REGRESSION, PER_EXAMPLE):  # no labels: cells are slices only
            codes, k, positive = (np.zeros(len(y), dtype=np.int64),) * 3, 1, -1
        else:
            enc = encode_labels(y, candidate.labels, baseline.labels, positive_label=positive_label, classes=classes)
            codes, k, positive = enc.codes, enc.k, enc.positive
        n_fine = int(finest.max()) + 1 if len(finest) else 1
        row_cell = ((finest * k + codes[0]) * k + codes[1]) * k + codes[2]
        twin_cell = ((finest * k + codes[0]) * k + codes[2]) * k + codes[1]
        size = n_fine * k ** 3
        cells = (np.bincount(row_cell, minlength=size) + np.bincount(twin_cell, minlength=size)) / 2.0
        return cls(y, candidate, baseline, slicings, finest, to_slice, cells.reshape(n_fine, k, k, k),
                   row_cell, twin_cell, positive, positive_label, classes, clusters)

    @property
    def n(self) -> int:
        return len(self.y)

    def influence(self, target: Target) -> np.ndarray:
        """Return ``phi`` of a target's difference per row, scaled so that ``d = (1/n) sum(phi)``."""
        slicing = self.slicings[target.slicing]
        assert slicing is not None
        rows = slicing.rows[target.slice]
        phi = difference_influence(target.metric, self.y[rows], take(self.candidate, rows), take(self.baseline, rows),
                                   positive_label=self.positive_label, classes=self.classes)
        out = np.zeros(self.n)
        out[rows] = phi * (self.n / len(rows))
        return out

    def simulate(self, targets: Sequence[Target], simulations: int, rng: np.random.Generator
                 ) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Return null draws of every target's difference ``(sims, k)``, their standard errors and methods."""
        normal = [j for j, t in enumerate(targets) if t.metric.family != "confusion"]
        counted = [j for j, t in enumerate(targets) if t.metric.family == "confusion"]
        phi = np.column_stack([self.influence(targets[j]) for j in normal]) if normal else np.zeros((self.n, 0))
        means, root = self._cell_model(phi)
        draws = np.empty((simulations, len(targets)))
        start = 0
        for tables in multinomial_tables(self.cells, simulations, rng):
            c = len(tables)
            flat = tables.reshape(c, -1)
            if normal:
                noise = rng.standard_normal((c, len(normal))) @ root.T
                draws[start:start + c, normal] = (flat @ means) / self.n + noise / math.sqrt(self.n)
            for j in counted:
                draws[start:start + c, j] = self._counted(tables, targets[j])
            start += c
        probs = self.cells.ravel() / self.n
        ses = np.empty(len(targets))
        if normal:
            ses[normal] = np.sqrt((probs @ means ** 2 + np.diag(root @ root.T)) / self.n)
        for j in counted:
            ses[j] = np.nanstd(draws[:, j], ddof=1) if simulations > 1 else np.nan
        methods = [METHOD_MULTINOMIAL if t.metric.family == "confusion" else METHOD_NORMAL for t in targets]
        return draws, ses, methods

    def _cell_model(self, phi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return each cell's mean influence ``(C, k)`` and a square root of the within-cell covariance.

        The doubled population holds every row twice: ``phi`` in its own cell and ``-phi`` in its twin's.
        """
        size, k = self.cells.size, phi.shape[1]
        counts = 2.0 * self.cells.ravel()
        sums = np.zeros((size, k))
        np.add.at(sums, self.row_cell, phi)
        np.add.at(sums, self.twin_cell, -phi)
        means = np.divide(sums, counts[:, None], out=np.zeros_like(sums), where=counts[:, None] > 0)
        resid_row, resid_twin = phi - means[self.row_cell], -phi - means[self.twin_cell]
        if self.clusters is not None:  # a cluster moves as one: the covariance of its totals
            resid_row, resid_twin = _totals(resid_row, self.clusters), _totals(resid_twin, self.clusters)
        cov = (resid_row.T @ resid_row + resid_twin.T @ resid_twin) / (2.0 * self.n)
        vals, vecs = np.linalg.eigh(cov) if k else (np.zeros(0), np.zeros((0, 0)))
        return means, vecs * np.sqrt(np.clip(vals, 0.0, None))

    def _counted(self, tables: np.ndarray, target: Target) -> np.ndarray:
        """Return a confusion metric's difference on simulated tables ``(c, C, K, K, K)``, one per table."""
        slice_of = self.to_slice[target.slicing]
        mine = tables[:, slice_of == target.slice].sum(axis=1)
        assert target.metric.counts is not None
        cand = target.metric.counts(mine.sum(axis=-1), self.positive)
        base = target.metric.counts(mine.sum(axis=-2), self.positive)
        return np.asarray(cand - base, dtype=np.float64)


def _totals(values: np.ndarray, clusters: np.ndarray) -> np.ndarray:
    """Return the per-cluster column sums ``(G, k)`` of ``values`` ``(n, k)``."""
    _, inverse = np.unique(clusters, return_inverse=True)
    inverse = inverse.ravel()
    g = int(inverse.max()) + 1 if len(inverse) else 0
    return np.stack([np.bincount(inverse, weights=values[:, j], minlength=g) for j in range(values.shape[1])],
                    axis=1) if values.shape[1] else np.zeros((g, 0))


def _finest(slicings: Sequence[Slicing | None], n: int) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """Return each row's code in the finest partition of every slicing, and each slicing's slice per code."""
    present = [(i, s) for i, s in enumerate(slicings) if s is not None and s.n_slices > 1]
    combined = np.zeros(n, dtype=np.int64)
    for _, s in present:  # mixed radix: one integer per combination of slice codes
        combined = combined * s.n_slices + s.codes
    uniq, finest = np.unique(combined, return_inverse=True)
    first = np.zeros(len(uniq), dtype=np.int64)
    first[finest] = np.arange(n)  # any row of a finest code has the same slice in every slicing
    out = {i: np.zeros(len(uniq), dtype=np.int64) for i, s in enumerate(slicings) if s is not None}
    out.update({i: s.codes[first].astype(np.int64) for i, s in present})
    return finest.astype(np.int64), out
