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

import numpy as np


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
