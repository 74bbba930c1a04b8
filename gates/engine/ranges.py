"""Tables spread over the workers by value range, for statistics that rank every row.

ROC AUC's DeLong components rank each row's score among all the others, so a client that merged
the partitions' score tables would hold every distinct score: at 10M rows of continuous scores,
gigabytes. Instead each partition's table stays where it was computed (``Engine.fold_keeping``),
and :func:`spread` moves its entries, worker to worker, into ranges of one score column:

1. each partition sends the client a sample of its scores (:func:`sample`, at most
   :data:`SAMPLE_POINTS` + 1 values), from which the client fixes the ranges' edges
   (:func:`edges`): weighted quantiles, so the ranges hold about as many entries each;
2. each table is cut by those edges on its worker (an entry equal to an edge goes to the range
   above it, so all entries of one score share a range), and each range gathers its pieces from
   every partition, in partition order, merging equal entries, sorted by the score.

The client then receives a few counts per range and slice and the merged moments: its memory
follows the slices and ranges, never the rows. On the embedded engine the same steps run in
this process. :func:`ranked` gives ROC AUC with DeLong's covariance and average precision with
its influence values over ``k`` score columns (:mod:`gates.stats.ranks`), the statistics of the
merged table up to float rounding.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from gates.stats.partials import merge_all
from gates.stats.ranks import (
    RankSpec,
    ap_components,
    ap_sums,
    delong_moments,
    placements,
    range_counts,
    range_moments,
)

if TYPE_CHECKING:
    from gates.engine import Engine

#: how many evenly spaced order statistics of its entries' scores a partition sends the client
SAMPLE_POINTS = 64
#: prefixes of the columns :func:`ranked` attaches (a NUL never starts a data column): DeLong
#: components, and average-precision influences times the slice's positive share
COMPONENT, INFLUENCE = "\0v", "\0u"


def sample(values: np.ndarray) -> np.ndarray:
    """Return evenly spaced order statistics of ``values`` (first and last included), for
    :func:`edges`; NaN values are left out."""
    v = np.sort(np.asarray(values, dtype=np.float64)[~np.isnan(values)])
    if len(v) == 0:
        return v
    return v[np.linspace(0, len(v) - 1, min(len(v), SAMPLE_POINTS + 1)).round().astype(np.int64)]


def edges(samples: Sequence[tuple[np.ndarray, int]], n_ranges: int) -> np.ndarray:
    """Return the increasing edges that split entries into at most ``n_ranges`` ranges of about
    equal size: quantiles of the partitions' samples, each point of a sample of ``n`` entries
    standing for ``n / len(points)`` of them."""
    kept = [(p, n) for p, n in samples if len(p)]
    if n_ranges < 2 or not kept:
        return np.zeros(0)
    points = np.concatenate([p for p, _ in kept])
    weights = np.concatenate([np.full(len(p), n / len(p)) for p, n in kept])
    order = np.argsort(points, kind="stable")
    share = np.cumsum(weights[order]) / weights.sum()
    at = np.searchsorted(share, np.arange(1, n_ranges) / n_ranges)
    return np.unique(points[order][np.minimum(at, len(points) - 1)])


def cut(table: pd.DataFrame, column: str, bounds: np.ndarray) -> list[pd.DataFrame]:
    """Return ``table``'s entries per range of ``column`` (``len(bounds) + 1`` pieces, runs on a worker)."""
    codes = np.searchsorted(bounds, table[column].to_numpy(dtype=np.float64), side="right")
    order = np.argsort(codes, kind="stable")
    stops = np.searchsorted(codes[order], np.arange(1, len(bounds) + 1))
    return [table.iloc[rows] for rows in np.split(order, stops)]


def gather(pieces: Sequence[pd.DataFrame], column: str, keys: Sequence[str] | None, counts: Sequence[str]
           ) -> pd.DataFrame:
    """Return one range's table: its pieces in partition order, equal ``keys`` entries merged
    (their ``counts`` columns added; None: entries are already distinct), sorted by ``column``."""
    table = pd.concat(list(pieces), ignore_index=True)
    if keys is not None:
        table = table.groupby(list(keys), dropna=False, sort=False)[list(counts)].sum().reset_index()
    return table.sort_values(column, kind="stable", ignore_index=True)


def spread(engine: Engine, tables: Sequence[Any], column: str, bounds: np.ndarray, counts: Sequence[str],
           keys: Sequence[str] | None = None) -> list[Any]:
    """Return handles to the ranges of ``column`` (see :func:`gather`) of the kept ``tables``;
    the pieces move between workers, never through the client."""
    n_ranges = len(bounds) + 1
    cuts = [engine.then(cut, t, column, bounds) for t in tables]
    pieces = [[engine.then(operator.getitem, c, k) for c in cuts] for k in range(n_ranges)]
    ranges = [engine.then(gather, pieces[k], column, keys, counts) for k in range(n_ranges)]
    engine.drop(cuts)
    engine.drop([p for row in pieces for p in row])
    return ranges


@dataclass(frozen=True)
class Ranked:
    """Per slicing of a :class:`~gates.stats.ranks.RankSpec`, what :func:`ranked` measured.

    ``auc``: the AUCs ``(S, k)`` and DeLong covariance ``(S, k, k)``; ``ap``: the average
    precisions ``(S, k)``, each model's ``sum(w * (pi * influence)**2)`` ``(S, k)`` and, for
    ``k > 1``, ``sum(w * (pi * (influence_0 - influence_r))**2)`` ``(S, k - 1)``, ``pi`` the
    slice's positive share; ``counts``: the rows ``(S, 2)`` of each slice, positives and negatives.
    """

    auc: list[tuple[np.ndarray, np.ndarray]] | None
    ap: list[tuple[np.ndarray, np.ndarray, np.ndarray]] | None
    counts: list[np.ndarray]


def ranked(engine: Engine, tables: Sequence[Any], scores: Sequence[str],
           samples: Mapping[str, Sequence[tuple[np.ndarray, int]]], spec: RankSpec, keys: Sequence[str],
           n_ranges: int, auc: bool = True, ap: bool = False) -> Ranked:
    """ROC AUC with DeLong's covariance and average precision with its influence values, of the
    ``k`` score columns ``scores`` over the kept score ``tables`` (entries keyed by ``keys``, rows
    counted in ``spec.n``), per slice: :func:`gates.stats.ranks.delong_counts` and
    :func:`gates.estimates.ap_influence` on each slice of the merged table, up to float rounding.
    ``samples``: per score column, each partition's :func:`sample` and entry count.

    Each score is a spread of its own: its ranges' counts give the offsets below each range
    (for average precision also its ranges' sums, for the sums below each range and each
    slice's AP), and each entry gets its components; the next score's spread carries them
    along. The tables handed in are released.
    """
    current, merging = list(tables), list(keys)
    aps: list[list[np.ndarray]] = []
    totals: list[np.ndarray] = []
    for r, score in enumerate(scores):
        ranges = spread(engine, current, score, edges(samples[score], n_ranges), [spec.n], merging)
        engine.drop(current)
        merging = None
        below, totals = offsets(engine.pull([engine.then(range_counts, t, spec) for t in ranges]))
        if auc:
            ranges = [engine.then(placements, t, score, f"{COMPONENT}{r}", spec, below[k], totals)
                      for k, t in enumerate(ranges)]
        if ap:
            sums = engine.pull([engine.then(ap_sums, t, score, spec, below[k], totals) for k, t in enumerate(ranges)])
            lower, whole = offsets(sums)
            with np.errstate(divide="ignore", invalid="ignore"):
                here = [w[:, 0] / t[:, 0] for w, t in zip(whole, totals)]  # AP = N / pi = sum(pos prec) / P
            aps.append(here)
            ranges = [engine.then(ap_components, t, score, f"{INFLUENCE}{r}", spec, below[k], totals, lower[k], here)
                      for k, t in enumerate(ranges)]
        current = ranges
    k = len(scores)
    found_auc = found_ap = None
    if auc:
        names = [f"{COMPONENT}{r}" for r in range(k)]
        found = engine.pull([engine.then(range_moments, t, names, spec) for t in current])
        found_auc = [delong_moments(merge_all([f[i] for f in found])) for i in range(len(spec.slices))]
    if ap:
        found = engine.pull([engine.then(_influence_moments, t, k, spec) for t in current])
        found_ap = []
        for i in range(len(spec.slices)):
            mom = merge_all([f[i] for f in found])
            second = mom.m2[:, range(mom.m2.shape[1]), range(mom.m2.shape[1])] + mom.n[:, None] * mom.mean ** 2
            found_ap.append((np.stack([a[i] for a in aps], axis=1), second[:, :k], second[:, k:]))
    engine.drop(current)
    return Ranked(found_auc, found_ap, totals)


def _influence_moments(table: pd.DataFrame, k: int, spec: RankSpec) -> list[Any]:
    """Per slicing, the weighted moments per slice of the ``k`` AP components and the first's
    differences from the others (runs on a worker)."""
    added = {}
    for i in range(len(spec.slices)):
        first = table[f"{INFLUENCE}0.{i}"].to_numpy()
        for r in range(1, k):
            added[f"{INFLUENCE}d{r}.{i}"] = first - table[f"{INFLUENCE}{r}.{i}"].to_numpy()
    names = [f"{INFLUENCE}{r}" for r in range(k)] + [f"{INFLUENCE}d{r}" for r in range(1, k)]
    return range_moments(table.assign(**added), names, spec, by_class=False)


def offsets(counts: Sequence[Sequence[np.ndarray]]) -> tuple[list[list[np.ndarray]], list[np.ndarray]]:
    """Per range, each slicing's counts in the ranges below it; and each slicing's totals."""
    below, running = [], [np.zeros_like(c) for c in counts[0]]
    for found in counts:
        below.append(running)
        running = [a + b for a, b in zip(running, found)]
    return below, running


__all__ = ["COMPONENT", "INFLUENCE", "SAMPLE_POINTS", "Ranked", "cut", "edges", "gather", "offsets", "ranked", "sample", "spread"]
