"""Paired estimates of registry metrics on slices: point values plus their sampling distributions.

For every metric and every slice of a :class:`Slicing`, :func:`paired_estimates` returns the
candidate's value, the baseline's, an :class:`~gates.intervals.Estimate` of the candidate's value
and one of the difference ``candidate - baseline``, with both models resampled on the same rows.
Each metric family uses the cheapest method that is exact or standard (DESIGN section 11):

* ``confusion`` and ``churn``: one multinomial draw per replicate over the joint cell counts
  (slice, y, candidate label, baseline label): the row bootstrap's exact distribution of every
  confusion metric at once (``bootstrap-multinomial``).
* ``auc``: paired DeLong (binary) or its influence-function form for one-vs-rest averages
  (``delong``); no resampling.
* ``ranking`` (average precision): the delta method, from its influence function
  (``delta-method``); like DeLong, one sort and no resampling.
* ``row_mean``: on a slice of at least :data:`~gates.stats.ANALYTIC_MIN_ROWS` rows, the paired
  normal interval (delta method) from the moments of the per-row statistics (``paired-normal``;
  ``delta-method`` for one model's value), where it agrees with the bootstrap (DESIGN section 11);
  on smaller slices a Poisson(1) weight per row and replicate, hashed from the row's key, the
  replicate and the seed (:mod:`gates.stats.weights`; the Poisson bootstrap, Hanley & MacGibbon
  2006, mergeable across partitions, DESIGN section 12), as one matrix product per cell and chunk
  of replicates (``bootstrap-rows``). Both are :mod:`gates.stats.partials` over the cells of the
  slicings' common refinement, so several slicings share one pass (and one draw of weights).

No Python loop runs over replicates x rows; loops are over chunks of replicates or over slices.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from gates.clusters import METHOD_BOOTSTRAP as METHOD_CLUSTERS
from gates.clusters import ClusterIndex
from gates.intervals import (
    Estimate,
    difference_bounds,
    delong_influence,
    delong_paired,
    delong_single,
)
from gates.metrics import Metric, binary_auc, encode_labels
from gates.stats import ANALYTIC_MIN_ROWS, MEMORY_BUDGET, CellCounts, Moments, PoissonSums, chunk_rows, row_keys
from gates.stats.tables import axis_sum, diagonal_sum
from gates.stats.grouping import Grouping, whole
from gates.stats.partials import METHOD_NORMAL
from gates.stats.weights import poisson_weights as hashed_weights

if TYPE_CHECKING:
    from gates.context import Predictions

METHOD_MULTINOMIAL = "bootstrap-multinomial"
METHOD_DELONG = "delong"
METHOD_ROWS = "bootstrap-rows"
METHOD_DELTA = "delta-method"
METHOD_PAIRED_NORMAL = METHOD_NORMAL

#: rng factory: family name -> Generator (one stream per family keeps results stable when metrics change)
RngFor = Callable[[str], np.random.Generator]


def poisson_weights(n: int, n_boot: int, rng: np.random.Generator,
                    budget: int = MEMORY_BUDGET, keys: np.ndarray | None = None) -> Iterator[np.ndarray]:
    """Yield Poisson(1) row weights in chunks of shape ``(c, n)`` (float32), ``n_boot`` rows in all.

    The weights are :func:`gates.stats.weights.poisson_weights` of the rows' keys (``keys``:
    :func:`gates.stats.row_keys`, cluster keys for clustered rows; default the rows' positions),
    with a seed drawn from ``rng`` (its first draw): the one Poisson scheme of every gate.
    """
    keys = row_keys(n) if keys is None else np.asarray(keys, dtype=np.uint64)
    seed = int(rng.integers(0, 2**63))
    step = chunk_rows(n_boot, n, budget)
    for start in range(0, n_boot, step):
        yield hashed_weights(keys, start, min(n_boot, start + step), seed).astype(np.float32)


# --------------------------------------------------------------------------- slicing


#: the regression gate's name for the one grouping type (:class:`gates.stats.grouping.Grouping`)
Slicing = Grouping


def slice_by(frame: pd.DataFrame, columns: Sequence[str]) -> Slicing:
    """Return the slicing of ``frame`` by ``columns`` (missing values form their own slice)."""
    from gates.groups import group_index

    return group_index(frame, columns)


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class SliceEstimate:
    """One metric on one slice: point values and the estimates decisions are made from."""

    candidate: float
    baseline: float | None
    observed: Estimate
    difference: Estimate | None


def paired_estimates(y: np.ndarray, candidate: Predictions, baseline: Predictions | None,
                     metrics: Sequence[Metric], slicing: Slicing, *, n_boot: int, rng: RngFor,
                     positive_label: Any = None, classes: tuple[Any, ...] | None = None,
                     keys: np.ndarray | None = None, seed: int | None = None,
                     clusters: ClusterIndex | None = None) -> dict[str, list[SliceEstimate]]:
    """Return, per metric name, one :class:`SliceEstimate` per slice of ``slicing``.

    ``baseline`` None (or a baseline without scores, for a score metric) gives estimates of the
    candidate only (``baseline`` and ``difference`` None). ``churn`` needs a baseline. The caller
    checks that every score metric's candidate has scores of the right shape.
    """
    return paired_estimates_many(y, candidate, baseline, metrics, [slicing], n_boot=n_boot, rngs=[rng],
                                 positive_label=positive_label, classes=classes, keys=keys, seed=seed,
                                 clusters=clusters)[0]


def paired_estimates_many(y: np.ndarray, candidate: Predictions, baseline: Predictions | None,
                          metrics: Sequence[Metric], slicings: Sequence[Slicing], *, n_boot: int,
                          rngs: Sequence[RngFor], positive_label: Any = None,
                          classes: tuple[Any, ...] | None = None, keys: np.ndarray | None = None,
                          seed: int | None = None, clusters: ClusterIndex | None = None,
                          ) -> list[dict[str, list[SliceEstimate]]]:
    """Return :func:`paired_estimates` of every slicing, resampling the rows once for all of them.

    ``rngs[i]`` is slicing ``i``'s stream factory. The confusion family draws from each slicing's
    own ``"confusion"`` stream. The row-mean family's Poisson weights are hashed from each row's
    key (``keys``: :func:`gates.stats.row_keys`; default the row positions) and ``seed`` (default
    drawn from ``rngs[0]("rows")``), once for every slicing. With ``clusters`` every row gets its
    cluster's weight and every slice is resampled (``bootstrap-clusters``). Intervals are clipped to
    each metric's range (:attr:`gates.metrics.Metric.bounds`).
    """
    y = np.asarray(y)
    outs: list[dict[str, list[SliceEstimate]]] = []
    for slicing, rng in zip(slicings, rngs, strict=True):
        out: dict[str, list[SliceEstimate]] = {}
        counted = [m for m in metrics if m.family in ("confusion", "churn")]
        if counted:
            out.update(_confusion_family(y, candidate, baseline, counted, slicing, n_boot, rng("confusion"),
                                         positive_label, classes))
        for m in metrics:
            if m.family == "auc":
                base = baseline if baseline is not None and baseline.scores is not None else None
                out[m.name] = _auc_metric(y, candidate, base, m, slicing, positive_label, classes)
        for m in metrics:
            if m.family == "ranking":
                base = baseline if baseline is not None and baseline.scores is not None else None
                out[m.name] = _ap_metric(y == positive_label, candidate, base, slicing)
        outs.append(out)
    rowwise = [m for m in metrics if m.family == "row_mean"]
    if rowwise and slicings:
        if seed is None:
            seed = int(rngs[0]("rows").integers(0, 2**63))
        if clusters is not None:
            keys = clusters.keys
        found = _row_family(y, candidate, baseline, rowwise, slicings, n_boot, row_keys(len(y)) if keys is None
                            else keys, seed, positive_label, classes, clustered=clusters is not None)
        for out, by_metric in zip(outs, found):
            out.update(by_metric)
    by_name = {m.name: m for m in metrics}
    return [{name: [_bounded(e, by_name[name]) for e in found] for name, found in out.items()} for out in outs]


def _bounded(est: SliceEstimate, metric: Metric) -> SliceEstimate:
    """Clip the intervals of ``est`` to the metric's range (a difference to the range of differences)."""
    bounds = metric.bounds
    diff = None if est.difference is None else est.difference.within(difference_bounds(bounds))
    return SliceEstimate(est.candidate, est.baseline, est.observed.within(bounds), diff)


def _per_slice(point_c: np.ndarray, point_b: np.ndarray | None, reps_c: np.ndarray,
               reps_b: np.ndarray | None, method: str) -> list[SliceEstimate]:
    out = []
    for s in range(len(point_c)):
        observed = Estimate(float(point_c[s]), method, np.ascontiguousarray(reps_c[:, s]))
        diff = None
        if point_b is not None and reps_b is not None:
            diff = Estimate(float(point_c[s] - point_b[s]), method,
                            np.ascontiguousarray(reps_c[:, s] - reps_b[:, s]))
        out.append(SliceEstimate(float(point_c[s]), None if point_b is None else float(point_b[s]),
                                 observed, diff))
    return out


# --------------------------------------------------------------------------- confusion family


def joint_cells(slice_codes: np.ndarray, y: np.ndarray, cand: np.ndarray, base: np.ndarray | None,
                n_slices: int, k: int) -> np.ndarray:
    """Return joint counts of shape ``(S, K, K, Kb)`` over (slice, y, candidate, baseline) codes.

    Without a baseline ``Kb`` is 1. Candidate tables are ``cells.sum(-1)``, baseline tables
    ``cells.sum(-2)`` and the candidate-by-baseline table (churn) ``cells.sum(-3)``.
    """
    kb = k if base is not None else 1
    b = base if base is not None else np.zeros_like(y)
    flat = ((slice_codes * k + y) * k + cand) * kb + b
    return np.bincount(flat, minlength=n_slices * k * k * kb).reshape(n_slices, k, k, kb).astype(np.float64)


def multinomial_tables(cells: np.ndarray, n_boot: int, rng: np.random.Generator,
                       budget: int = MEMORY_BUDGET) -> Iterator[np.ndarray]:
    """Yield bootstrap replicates of a cell table in chunks of shape ``(c, *cells.shape)``.

    :meth:`gates.stats.CellCounts.replicates`, the one multinomial sampler: only non-empty cells
    are drawn, so the cost grows with the distinct (slice, y, labels) combinations seen, not K**3.
    """
    yield from CellCounts(np.asarray(cells)).replicates(n_boot, rng, budget)


def _table_values(tables: np.ndarray, metrics: Sequence[Metric], positive: int,
                  paired: bool) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    cand = axis_sum(tables, -1)
    base = axis_sum(tables, -2) if paired else None
    out: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
    for m in metrics:
        if m.family == "churn":
            value = 1.0 - _trace_share(axis_sum(tables, -3)) if paired else np.full(cand.shape[:-2], np.nan)
            out[m.name] = (value, None)
        else:
            assert m.counts is not None
            out[m.name] = (m.counts(cand, positive), None if base is None else m.counts(base, positive))
    return out


def _trace_share(table: np.ndarray) -> np.ndarray:
    total = axis_sum(table, (-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return diagonal_sum(table) / total


def _confusion_family(y: np.ndarray, cand: Predictions, base: Predictions | None, metrics: Sequence[Metric],
                      slicing: Slicing, n_boot: int, rng: np.random.Generator, positive_label: Any,
                      classes: tuple[Any, ...] | None) -> dict[str, list[SliceEstimate]]:
    arrays = [y, cand.labels] + ([base.labels] if base is not None else [])
    enc = encode_labels(*arrays, positive_label=positive_label, classes=classes)
    b = enc.codes[2] if base is not None else None
    cells = joint_cells(slicing.codes, enc.codes[0], enc.codes[1], b, slicing.n_slices, enc.k)
    return cell_estimates(cells, metrics, enc.positive, base is not None, n_boot, rng)


def cell_estimates(cells: np.ndarray, metrics: Sequence[Metric], positive: int, paired: bool, n_boot: int,
                   rng: np.random.Generator) -> dict[str, list[SliceEstimate]]:
    """Return confusion-family estimates per slice from joint cells ``(S, K, K, Kb)`` (:func:`joint_cells`).

    Cells add across data partitions, so a distributed engine merges its partitions' cells and
    calls this with the same stream: the same numbers as one pass over every row.
    """
    point = _table_values(cells, metrics, positive, paired)
    chunks = [_table_values(t, metrics, positive, paired) for t in multinomial_tables(cells, n_boot, rng)]
    out = {}
    for m in metrics:
        reps_c = np.concatenate([ch[m.name][0] for ch in chunks])
        has_b = point[m.name][1] is not None
        reps_b = np.concatenate([ch[m.name][1] for ch in chunks]) if has_b else None
        out[m.name] = [_bounded(e, m) for e in
                       _per_slice(point[m.name][0], point[m.name][1], reps_c, reps_b, METHOD_MULTINOMIAL)]
    return out


# --------------------------------------------------------------------------- AUC family


def ovr_delong(y: np.ndarray, scores: Sequence[np.ndarray], classes: Sequence[Any],
               weighted: bool) -> tuple[np.ndarray, np.ndarray]:
    """Return one-vs-rest averaged AUCs of ``r`` models and their per-row influence values.

    ``scores`` holds ``r`` matrices ``(n, K)`` (columns in ``classes`` order). Result: AUCs ``(r,)``
    and influences ``(r, n)`` such that ``AUC_hat - AUC ~ sum(influence)``, so the variance of any
    linear combination ``c`` of models is ``sum((c @ influence)**2)``. Each class contributes its
    DeLong structural components (DeLong et al. 1988), centred and divided by its positives or
    negatives; classes absent from ``y`` are left out, as sklearn does. NaN when a present class
    has fewer than 2 positives or 2 negatives.
    """
    y = np.asarray(y)
    r, n = len(scores), len(y)
    total_w, aucs, infl = 0.0, np.zeros(r), np.zeros((r, n))
    for j, c in enumerate(classes):
        is_c = y == c
        m = int(is_c.sum())
        if m == 0:
            continue
        if m < 2 or n - m < 2:
            return np.full(r, np.nan), np.full((r, n), np.nan)
        a, infl_c = delong_influence(is_c, np.vstack([s[:, j] for s in scores]))
        w = float(m) if weighted else 1.0
        infl += w * infl_c
        aucs += w * a
        total_w += w
    if total_w == 0:
        return np.full(r, np.nan), np.full((r, n), np.nan)
    return aucs / total_w, infl / total_w


def _auc_metric(y: np.ndarray, cand: Predictions, base: Predictions | None, metric: Metric, slicing: Slicing,
                positive_label: Any, classes: tuple[Any, ...] | None) -> list[SliceEstimate]:
    sc = np.asarray(cand.scores, dtype=np.float64)
    sb = None if base is None else np.asarray(base.scores, dtype=np.float64)
    out = []
    for rows in slicing.rows:
        if sc.ndim == 1:
            value_c, value_b, observed, diff = _binary_estimates(y[rows] == positive_label, sc[rows],
                                                                 None if sb is None else sb[rows])
        else:
            value_c, value_b, observed, diff = _ovr_estimates(y[rows], sc[rows], None if sb is None else sb[rows],
                                                              tuple(cand.classes or classes or ()),
                                                              metric.average == "weighted")
        observed = Estimate(value_c, METHOD_DELONG, se=observed.se)
        if diff is not None and value_b is not None:
            diff = Estimate(value_c - value_b, METHOD_DELONG, se=diff.se)
        out.append(SliceEstimate(value_c, value_b, observed, diff))
    return out


def _binary_estimates(y_pos: np.ndarray, sc: np.ndarray, sb: np.ndarray | None,
                      ) -> tuple[float, float | None, Estimate, Estimate | None]:
    """Return both AUCs and the DeLong estimates; AUCs stay defined with a single positive or negative."""
    if sb is None:
        observed, diff = delong_single(y_pos, sc), None
    else:
        observed, diff = delong_paired(y_pos, sc, sb)
    if observed.is_defined:
        value_c = observed.value
        value_b = None if diff is None else observed.value - diff.value
    else:
        value_c = binary_auc(y_pos, sc)
        value_b = None if sb is None else binary_auc(y_pos, sb)
    return value_c, value_b, observed, diff


def _ovr_estimates(y: np.ndarray, sc: np.ndarray, sb: np.ndarray | None, classes: tuple[Any, ...],
                   weighted: bool) -> tuple[float, float | None, Estimate, Estimate | None]:
    aucs, infl = ovr_delong(y, [sc] if sb is None else [sc, sb], classes, weighted)
    observed = Estimate(float(aucs[0]), METHOD_DELONG, se=float(np.sqrt(np.sum(infl[0] ** 2))))
    if sb is None:
        return float(aucs[0]), None, observed, None
    diff = Estimate(float(aucs[0] - aucs[1]), METHOD_DELONG, se=float(np.sqrt(np.sum((infl[0] - infl[1]) ** 2))))
    return float(aucs[0]), float(aucs[1]), observed, diff


# --------------------------------------------------------------------------- row-resampled families


@dataclass(frozen=True)
class _Block:
    """Where one metric's per-row statistics sit in the stacked value matrix."""

    metric: Metric
    cand: slice
    base: slice | None


def _stack_rows(y: np.ndarray, cand: Predictions, base: Predictions | None, metrics: Sequence[Metric],
                positive_label: Any, classes: tuple[Any, ...] | None) -> tuple[np.ndarray, list[_Block]]:
    """Return the ``(n, P)`` matrix of every row-mean metric's statistics (column 0: ones) and its layout."""
    columns: list[np.ndarray] = [np.ones((len(y), 1))]
    blocks, width = [], 1
    for m in metrics:
        if m.family != "row_mean":
            continue
        assert m.row_stats is not None
        own = m.row_stats(y, cand, positive_label, classes)
        columns.append(own)
        cand_cols, width = slice(width, width + own.shape[1]), width + own.shape[1]
        base_cols = None
        if base is not None and (m.needs == "labels" or base.scores is not None):
            other = m.row_stats(y, base, positive_label, classes)
            columns.append(other)
            base_cols, width = slice(width, width + other.shape[1]), width + other.shape[1]
        blocks.append(_Block(m, cand_cols, base_cols))
    return np.hstack(columns), blocks


@dataclass(frozen=True)
class _Refinement:
    """The common refinement of several slicings: each row's cell, and which cells make up each slice."""

    codes: np.ndarray
    n_cells: int
    members: list[np.ndarray]

    @classmethod
    def of(cls, slicings: Sequence[Slicing], n: int) -> _Refinement:
        """Cells are the distinct combinations of slice codes; ``members[i]`` (``(S_i, C)``, 0/1)
        says which cells make up each slice of slicing ``i``."""
        cell = np.zeros(n, dtype=np.int64)
        for slicing in slicings:
            if slicing.n_slices > 1:  # compressed after each slicing, so codes stay below n
                cell = np.unique(cell * slicing.n_slices + slicing.codes, return_inverse=True)[1].ravel()
        n_cells = int(cell.max()) + 1 if n else 1
        first = np.zeros(n_cells, dtype=np.int64)
        first[cell[::-1]] = np.arange(n)[::-1]
        members = [(np.arange(s.n_slices)[:, None] == s.codes[first][None, :]).astype(np.float64)
                   for s in slicings]
        return cls(cell, n_cells, members)


def _row_family(y: np.ndarray, cand: Predictions, base: Predictions | None, metrics: Sequence[Metric],
                slicings: Sequence[Slicing], n_boot: int, keys: np.ndarray, seed: int, positive_label: Any,
                classes: tuple[Any, ...] | None, clustered: bool = False) -> list[dict[str, list[SliceEstimate]]]:
    """Estimate every row-mean metric on every slice of every slicing from one pass of partials.

    :class:`~gates.stats.Moments` of the cells give each slice's means and, on slices of at least
    :data:`~gates.stats.ANALYTIC_MIN_ROWS` rows, the paired normal interval. Rows of the cells that
    make up a smaller slice get hashed Poisson weights (:class:`~gates.stats.PoissonSums`, one
    draw for every slicing); a slice's sums are the sums of its cells.
    """
    values, blocks = _stack_rows(y, cand, base, metrics, positive_label, classes)
    cells = _Refinement.of(slicings, len(y))
    moments = Moments.of(values, cells.codes, cells.n_cells)
    per_slicing = [moments.combine(members) for members in cells.members]
    # rows of one cluster are not independent: with clusters every slice resamples whole clusters
    small = [np.ones(len(m.n), dtype=bool) if clustered else m.n < ANALYTIC_MIN_ROWS for m in per_slicing]
    needed = np.zeros(cells.n_cells, dtype=bool)
    for members, few in zip(cells.members, small):
        needed |= (members[few] > 0).any(axis=0)
    sums = None
    if needed.any():
        rows = needed[cells.codes]
        sums = PoissonSums.of(keys[rows], values[rows], n_boot=n_boot, seed=seed, cells=cells.codes[rows],
                              n_cells=cells.n_cells, centre=values.mean(axis=0))
    method = METHOD_CLUSTERS if clustered else METHOD_ROWS
    out = []
    for members, mom, few in zip(cells.members, per_slicing, small):
        means = None if sums is None or not few.any() else sums.means(members)
        out.append(_row_estimates(blocks, mom, means, few, method))
    return out


def _row_estimates(blocks: Sequence[_Block], moments: Moments, means: np.ndarray | None, few: np.ndarray,
                   method: str = METHOD_ROWS) -> dict[str, list[SliceEstimate]]:
    """Return each metric's estimates per slice: normal from ``moments`` (S slices), or from the
    replicate means ``(B, S, P)`` where ``few`` marks a slice too small for the normal interval."""
    out = {}
    for b in blocks:
        assert b.metric.from_means is not None
        f = b.metric.from_means

        def own(m: np.ndarray, cols: slice = b.cand) -> np.ndarray:
            return np.asarray(f(m[..., cols]))

        point_c = own(moments.mean)
        point_b = None if b.base is None else own(moments.mean, b.base)
        normal_c = moments.estimate(own, METHOD_DELTA)
        normal_d = None if b.base is None else moments.estimate(lambda m, _b=b.base: own(m) - own(m, _b),
                                                                METHOD_PAIRED_NORMAL)
        reps_c = None if means is None else own(means)
        reps_b = None if means is None or b.base is None else own(means, b.base)
        found = []
        for s in range(len(point_c)):
            pb = None if point_b is None else float(point_b[s])
            if few[s] and reps_c is not None:
                observed = Estimate(float(point_c[s]), method, np.ascontiguousarray(reps_c[:, s]))
                diff = None if reps_b is None or pb is None else Estimate(
                    float(point_c[s]) - pb, method, np.ascontiguousarray(reps_c[:, s] - reps_b[:, s]))
            else:
                observed = Estimate(float(point_c[s]), METHOD_DELTA, se=normal_c[s].se)
                diff = None if normal_d is None or pb is None else Estimate(
                    float(point_c[s]) - pb, METHOD_PAIRED_NORMAL, se=normal_d[s].se)
            found.append(SliceEstimate(float(point_c[s]), pb, observed, diff))
        out[b.metric.name] = found
    return out


# --------------------------------------------------------------------------- average precision


def ap_influence(y_pos: np.ndarray, scores: np.ndarray,
                 weights: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """Return average precision and its per-row influence values (``AP_hat - AP ~ mean(influence)``).

    With ``a(t) = P(Y=1, S >= t)``, ``b(t) = P(S >= t)`` and ``prec = a / b``, sklearn's average
    precision is ``AP = E[Y prec(S)] / pi`` (tied scores share a threshold). Its influence function
    (the delta method, as DeLong's components are for AUC) at a row ``(y0, s0)`` is
    ``(IF_N - AP (y0 - pi)) / pi`` with
    ``IF_N = y0 prec(s0) - N + E[Y 1{S <= s0} (y0 - prec(S)) / b(S)]`` and ``N = E[Y prec(S)]``,
    so ``var(AP_hat) ~ sum(influence**2) / n**2``. NaN without a positive.

    ``weights`` (default 1) makes each entry stand for that many rows with its label and score
    (a merged score table): the values are those of the rows it counts, one influence per entry.
    """
    y = np.asarray(y_pos, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    size = len(s)
    if size == 0 or not y.any():
        return float("nan"), np.full(size, np.nan)
    w = np.ones(size) if weights is None else np.asarray(weights, dtype=np.float64)
    n = float(w.sum())
    order = np.argsort(-s)
    ys = y[order].astype(np.float64)
    ws = w[order]
    starts = np.flatnonzero(np.r_[True, s[order][1:] != s[order][:-1]])
    group = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, size]))
    pos_per_group = np.add.reduceat(ys * ws, starts)
    seen = np.cumsum(np.add.reduceat(ws, starts))             # rows with a score >= the group's
    tp = np.cumsum(pos_per_group)                               # positives among them
    prec, b = tp / seen, seen / n
    pi = float(pos_per_group.sum()) / n
    big_n = float(np.sum(pos_per_group * prec)) / n
    ap = big_n / pi
    # sums over positives at or below each group's score: cumulate from the lowest group upwards
    c1 = np.cumsum((pos_per_group / b)[::-1])[::-1] / n
    c2 = np.cumsum((pos_per_group * prec / b)[::-1])[::-1] / n
    g = group
    if_n = ys * prec[g] - big_n + ys * c1[g] - c2[g]
    influence = np.empty(size)
    influence[order] = (if_n - ap * (ys - pi)) / pi
    return ap, influence


def _ap_metric(y_pos: np.ndarray, cand: Predictions, base: Predictions | None,
               slicing: Slicing) -> list[SliceEstimate]:
    sc = np.asarray(cand.scores, dtype=np.float64)
    sb = None if base is None else np.asarray(base.scores, dtype=np.float64)
    out = []
    for rows in slicing.rows:
        n = len(rows)
        ap_c, inf_c = ap_influence(y_pos[rows], sc[rows])
        observed = Estimate(ap_c, METHOD_DELTA, se=float(np.sqrt(np.sum(inf_c ** 2))) / n)
        if sb is None:
            out.append(SliceEstimate(ap_c, None, observed, None))
            continue
        ap_b, inf_b = ap_influence(y_pos[rows], sb[rows])
        diff = Estimate(ap_c - ap_b, METHOD_DELTA, se=float(np.sqrt(np.sum((inf_c - inf_b) ** 2))) / n)
        out.append(SliceEstimate(ap_c, ap_b, observed, diff))
    return out
