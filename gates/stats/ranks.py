"""Rank statistics from weighted score tables: ROC AUC with DeLong's variance, from counts.

A score table has one entry per distinct (label, score) combination (or (label, candidate score,
baseline score) for two models) with the number of rows that have it. Tables of disjoint rows
merge by adding the counts of equal entries, so data partitions can each count their rows and
the client adds them: the AUCs and DeLong's structural components below are exactly those of
the rows the table counts (DeLong et al. 1988), because each component depends on a row's own
score and the whole table only. The table grows with the distinct scores, not with the rows
once scores repeat.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from gates.stats.partials import Moments


def delong_counts(y_pos: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the ROC AUCs ``(k,)`` and DeLong covariance ``(k, k)`` of ``k`` score vectors over a table.

    ``scores`` is ``(k, E)``: each entry's score under each model; ``y_pos`` (E,) says whether the
    entry's rows are positives and ``weights`` (E,) how many rows it counts. Ties count half. The
    covariance is ``cov(V10) / m + cov(V01) / n`` over the rows (``ddof=1``), as
    :func:`gates.intervals.delong_paired` computes it from the rows themselves; NaN with fewer
    than 2 positives or 2 negatives. AUCs are NaN without a positive or a negative.
    """
    y = np.asarray(y_pos, dtype=bool)
    w = np.asarray(weights, dtype=np.float64)
    s = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    k = s.shape[0]
    m, n = float(w[y].sum()), float(w[~y].sum())
    if m == 0 or n == 0:
        return np.full(k, np.nan), np.full((k, k), np.nan)
    v10 = np.empty((k, int(y.sum())))
    v01 = np.empty((k, int((~y).sum())))
    for r in range(k):
        _, inv = np.unique(s[r], return_inverse=True)
        inv = inv.ravel()
        pos = np.bincount(inv, weights=w * y)
        neg = np.bincount(inv, weights=w * ~y)
        neg_below = np.cumsum(neg) - neg
        pos_above = m - np.cumsum(pos)
        v10[r] = (neg_below[inv[y]] + 0.5 * neg[inv[y]]) / n
        v01[r] = (pos_above[inv[~y]] + 0.5 * pos[inv[~y]]) / m
    wp, wn = w[y], w[~y]
    aucs = v10 @ wp / m
    if m < 2 or n < 2:
        return aucs, np.full((k, k), np.nan)
    dp = v10 - aucs[:, None]
    dn = v01 - (v01 @ wn / n)[:, None]
    cov = (dp * wp) @ dp.T / (m - 1) / m + (dn * wn) @ dn.T / (n - 1) / n
    return aucs, cov


# --------------------------------------------------------------------------- a table in value ranges
#
# A table too big for one process is spread over the workers by ranges of one score
# (gates.engine.ranges): every entry with a given score lies in the same range, ranges in score
# order. An entry's DeLong component needs the counts of the other class below (or above) its
# score in its slice: the counts of the ranges below, from each range's totals
# (:func:`range_counts`), plus those below it in its own range (:func:`placements`). The
# components of every model are attached one score at a time, each in its own spread, and their
# weighted moments per (slice, class) (:func:`range_moments`) merge over the ranges into the
# AUCs and covariance of :func:`delong_counts` (:func:`delong_moments`).


@dataclass(frozen=True)
class RankSpec:
    """How a ranked table's entries are read: the positive flag and count columns, the cell
    column (None: one cell) and, per slicing, each cell's slice and the number of slices."""

    y: str
    n: str
    cell: str | None
    slices: tuple[tuple[np.ndarray, int], ...]

    def columns(self, table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The entries' positive flags, counts and cell codes."""
        cells = (np.zeros(len(table), dtype=np.int64) if self.cell is None
                 else table[self.cell].to_numpy(dtype=np.int64))
        return table[self.y].to_numpy(dtype=bool), table[self.n].to_numpy(dtype=np.float64), cells

    def grouped(self, table: pd.DataFrame, score: str) -> Iterator[tuple[int, int, _Groups]]:
        """Per slicing: its index, its number of slices and the entries grouped by (slice, ``score``)."""
        y, w, cells = self.columns(table)
        values = table[score].to_numpy(dtype=np.float64)
        for i, (slice_of, n_slices) in enumerate(self.slices):
            yield i, n_slices, _Groups.of(values, slice_of[cells], y, w)


def range_counts(table: pd.DataFrame, spec: RankSpec) -> list[np.ndarray]:
    """Per slicing, the rows ``(S, 2)`` of each slice in this range: positives, negatives."""
    y, w, cells = spec.columns(table)
    out = []
    for slice_of, n_slices in spec.slices:
        s = slice_of[cells]
        out.append(np.stack([np.bincount(s, weights=w * y, minlength=n_slices),
                             np.bincount(s, weights=w * ~y, minlength=n_slices)], axis=1))
    return out


@dataclass(frozen=True)
class _Groups:
    """A range's entries of one slicing in (slice, score) order, grouped by equal (slice, score)."""

    order: np.ndarray  # entry positions in that order
    group: np.ndarray  # each ordered entry's group
    pos: np.ndarray    # rows per group: positives, negatives
    neg: np.ndarray
    slice: np.ndarray  # each group's slice
    start: np.ndarray  # each group's slice's first group
    y: np.ndarray      # the ordered entries' positive flags

    @classmethod
    def of(cls, values: np.ndarray, s: np.ndarray, y: np.ndarray, w: np.ndarray) -> _Groups:
        order = np.lexsort((values, s))
        ss, vs, ys, ws = s[order], values[order], y[order], w[order]
        if len(order) == 0:
            none = np.zeros(0, dtype=np.int64)
            return cls(order, none, np.zeros(0), np.zeros(0), none, none, ys)
        starts = np.flatnonzero(np.r_[True, (ss[1:] != ss[:-1]) | (vs[1:] != vs[:-1])])
        group = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(order)]))
        g_slice = ss[starts]
        first = np.flatnonzero(np.r_[True, g_slice[1:] != g_slice[:-1]])
        start = first[np.searchsorted(first, np.arange(len(starts)), side="right") - 1]
        return cls(order, group, np.add.reduceat(ws * ys, starts), np.add.reduceat(ws * ~ys, starts), g_slice,
                   start, ys)

    def upto(self, x: np.ndarray) -> np.ndarray:
        """Per group, the sum of ``x`` over its slice's groups up to and including it."""
        c = np.cumsum(x)
        return c - (c - x)[self.start]

    def spread(self, per_entry: np.ndarray) -> np.ndarray:
        """Values of the ordered entries put back in the table's order."""
        out = np.empty(len(self.order))
        out[self.order] = per_entry
        return out


def placements(table: pd.DataFrame, score: str, into: str, spec: RankSpec, below: Sequence[np.ndarray],
               totals: Sequence[np.ndarray]) -> pd.DataFrame:
    """Return ``table`` (one range of ``score``) with each entry's DeLong component under
    ``score`` per slicing ``i`` in column ``f"{into}.{i}"``: for a positive, the share of its
    slice's negatives below its score (ties half), for a negative the share of positives above.

    ``below[i]`` and ``totals[i]`` are slicing ``i``'s ``(S, 2)`` counts (positives, negatives)
    in the ranges below this one and in all ranges.
    """
    added = {}
    for i, _, g in spec.grouped(table, score):
        s = g.slice
        pos_upto = below[i][s, 0] + g.upto(g.pos)
        neg_before = below[i][s, 1] + g.upto(g.neg) - g.neg
        m, n = totals[i][s, 0], totals[i][s, 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            v10 = (neg_before + 0.5 * g.neg) / n
            v01 = (m - pos_upto + 0.5 * g.pos) / m
        added[f"{into}.{i}"] = g.spread(np.where(g.y, v10[g.group], v01[g.group]))
    return table.assign(**added)


def _precision(g: _Groups, below: np.ndarray, totals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per group: the precision at its score and the share of its slice's rows at or above it."""
    s = g.slice
    rows = totals[s].sum(axis=1)
    seen = rows - below[s].sum(axis=1) - (g.upto(g.pos + g.neg) - g.pos - g.neg)
    tp = totals[s, 0] - below[s, 0] - (g.upto(g.pos) - g.pos)
    with np.errstate(divide="ignore", invalid="ignore"):
        return tp / seen, seen / rows


def ap_sums(table: pd.DataFrame, score: str, spec: RankSpec, below: Sequence[np.ndarray],
            totals: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Per slicing, this range's ``(S, 3)`` sums over groups of ``pos * prec``, ``pos / b`` and
    ``pos * prec / b`` (see :func:`gates.estimates.ap_influence`; ``below``/``totals`` as in
    :func:`placements`)."""
    out = []
    for i, n_slices, g in spec.grouped(table, score):
        prec, b = _precision(g, below[i], totals[i])
        terms = [g.pos * prec, g.pos / b, g.pos * prec / b]
        out.append(np.stack([np.bincount(g.slice, weights=t, minlength=n_slices) for t in terms], axis=1))
    return out


def ap_components(table: pd.DataFrame, score: str, into: str, spec: RankSpec, below: Sequence[np.ndarray],
                  totals: Sequence[np.ndarray], lower: Sequence[np.ndarray], ap: Sequence[np.ndarray]
                  ) -> pd.DataFrame:
    """Return ``table`` with each entry's average-precision influence times its slice's positive
    share, per slicing ``i`` in column ``f"{into}.{i}"``: ``y prec + y c1 - c2 - AP y`` of
    :func:`gates.estimates.ap_influence` (its ``- N + AP pi`` cancels). ``lower[i]``: the
    :func:`ap_sums` of the ranges below, ``ap[i]`` each slice's AP."""
    added = {}
    for i, _, g in spec.grouped(table, score):
        s = g.slice
        prec, b = _precision(g, below[i], totals[i])
        rows = totals[i][s].sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            c1 = (lower[i][s, 1] + g.upto(g.pos / b)) / rows
            c2 = (lower[i][s, 2] + g.upto(g.pos * prec / b)) / rows
        ys = g.y.astype(np.float64)
        gi = g.group
        added[f"{into}.{i}"] = g.spread(ys * prec[gi] + ys * c1[gi] - c2[gi] - ap[i][s][gi] * ys)
    return table.assign(**added)


def range_moments(table: pd.DataFrame, components: Sequence[str], spec: RankSpec, by_class: bool = True
                  ) -> list[Moments]:
    """Per slicing ``i``, the weighted moments of the components ``f"{c}.{i}"`` per cell
    ``2 * slice + (entry is a negative)`` (``by_class``; else per slice)."""
    y, w, cells = spec.columns(table)
    out = []
    for i, (slice_of, n_slices) in enumerate(spec.slices):
        codes = 2 * slice_of[cells] + (~y) if by_class else slice_of[cells]
        values = table[[f"{c}.{i}" for c in components]].to_numpy(dtype=np.float64)
        out.append(Moments.of(values, codes, (2 if by_class else 1) * n_slices, weights=w))
    return out


def delong_moments(moments: Moments) -> tuple[np.ndarray, np.ndarray]:
    """Per slice, the AUCs ``(S, k)`` and DeLong covariance ``(S, k, k)`` from the merged
    :func:`range_moments`: what :func:`delong_counts` gives on each slice's table."""
    m, n = moments.n[0::2], moments.n[1::2]
    k = moments.mean.shape[1]
    aucs = moments.mean[0::2].copy()
    aucs[(m == 0) | (n == 0)] = np.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        cov = (moments.m2[0::2] / ((m - 1) * m)[:, None, None]
               + moments.m2[1::2] / ((n - 1) * n)[:, None, None])
    cov[(m < 2) | (n < 2)] = np.full((k, k), np.nan)
    return aucs, cov
