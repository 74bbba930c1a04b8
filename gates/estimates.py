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
* ``row_mean``: a Poisson(1) weight per row and replicate (the Poisson bootstrap, Hanley &
  MacGibbon 2006; mergeable across partitions, DESIGN section 12), applied as one matrix product
  per chunk of replicates (``bootstrap-rows``). :func:`paired_estimates_many` draws the weights
  once for several slicings: each slice's weighted sums are sums over the cells of the slicings'
  common refinement.

No Python loop runs over replicates x rows; loops are over chunks of replicates or over slices.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from gates.clusters import METHOD_BOOTSTRAP as METHOD_CLUSTERS
from gates.clusters import ClusterIndex, cluster_weights
from gates.intervals import (
    Estimate,
    delong_components,
    delong_paired,
    delong_single,
    multinomial_counts,
)
from gates.metrics import Metric, binary_auc, encode_labels

if TYPE_CHECKING:
    from gates.context import Predictions

METHOD_MULTINOMIAL = "bootstrap-multinomial"
METHOD_DELONG = "delong"
METHOD_ROWS = "bootstrap-rows"
METHOD_DELTA = "delta-method"

#: cells per chunk of replicates (bounds memory at a few tens of MB per chunk)
CELL_BUDGET = 4_000_000
ROW_BUDGET = 8_000_000

#: rng factory: family name -> Generator (one stream per family keeps results stable when metrics change)
RngFor = Callable[[str], np.random.Generator]


def _poisson_table(bits: int = 16) -> np.ndarray:
    """Return a lookup from a uniform ``bits``-bit integer to a Poisson(1) count (inverse CDF)."""
    size = 1 << bits
    cdf, term, edges = 0.0, math.exp(-1.0), []
    for k in range(32):
        cdf += term
        term /= k + 1
        edges.append(round(cdf * size))
    return np.searchsorted(np.asarray(edges), np.arange(size), side="right").astype(np.float32)


_POISSON = _poisson_table()
#: the same table as bytes: a lookup into 64 kB then a widening cast costs ~0.7x a float32 lookup
_POISSON_BYTES = _POISSON.astype(np.uint8)


def poisson_weights(n: int, n_boot: int, rng: np.random.Generator,
                    budget: int = ROW_BUDGET) -> Iterator[np.ndarray]:
    """Yield Poisson(1) row weights in chunks of shape ``(c, n)`` (float32), ``n_boot`` rows in all.

    Probabilities are quantised to 2**-16, far below the Monte Carlo error of any interval.
    """
    for codes in poisson_codes(n, n_boot, rng, budget):
        yield _weights(codes)


def poisson_codes(n: int, n_boot: int, rng: np.random.Generator,
                  budget: int = ROW_BUDGET) -> Iterator[np.ndarray]:
    """Yield the uniform 16-bit codes :func:`poisson_weights` turns into weights (``_POISSON[codes]``)."""
    chunk = max(1, min(n_boot, budget // max(n, 1)))
    for start in range(0, n_boot, chunk):
        c = min(chunk, n_boot - start)
        yield rng.integers(0, len(_POISSON), size=(c, n), dtype=np.uint16)


def _weights(codes: np.ndarray) -> np.ndarray:
    """Return the float32 Poisson weights of uniform codes (equal to ``_POISSON[codes]``)."""
    return _POISSON_BYTES[codes].astype(np.float32)


# --------------------------------------------------------------------------- slicing


@dataclass(frozen=True)
class Slicing:
    """A partition of the eval rows by the values of ``columns`` (``()``: one slice of all rows)."""

    columns: tuple[str, ...]
    codes: np.ndarray
    keys: tuple[tuple[Any, ...], ...]

    @property
    def n_slices(self) -> int:
        return len(self.keys)

    @cached_property
    def sizes(self) -> np.ndarray:
        return np.bincount(self.codes, minlength=self.n_slices)

    @cached_property
    def rows(self) -> list[np.ndarray]:
        """Row indices of each slice, in slice order."""
        if self.n_slices == 1:
            return [np.arange(len(self.codes))]
        order = np.argsort(self.codes, kind="stable")
        return np.split(order, np.cumsum(self.sizes)[:-1])

    def values(self, s: int) -> dict[str, Any]:
        """Return slice ``s`` as ``{column: value}`` (JSON-friendly; a missing value is None)."""
        return {c: _plain(v) for c, v in zip(self.columns, self.keys[s])}

    def label(self, s: int) -> str:
        """Return the check-id scope of slice ``s``: ``region=EU&channel=web``."""
        return "&".join(f"{c}={'null' if v is None else v}" for c, v in self.values(s).items())


def whole(n: int) -> Slicing:
    """Return the slicing with one slice holding every row."""
    return Slicing((), np.zeros(n, dtype=np.int64), ((),))


def slice_by(frame: pd.DataFrame, columns: Sequence[str]) -> Slicing:
    """Return the slicing of ``frame`` by ``columns`` (missing values form their own slice)."""
    cols = list(columns)
    try:
        grouped = frame.groupby(cols, dropna=False, sort=True)
        sizes = grouped.size()
    except TypeError:
        grouped = frame.groupby(cols, dropna=False, sort=False)
        sizes = grouped.size()
    codes = grouped.ngroup().to_numpy(dtype=np.int64)
    keys = tuple(k if isinstance(k, tuple) else (k,) for k in sizes.index.tolist())
    return Slicing(tuple(cols), codes, keys)


def _plain(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    return value.item() if isinstance(value, np.generic) else value


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
                     clusters: ClusterIndex | None = None) -> dict[str, list[SliceEstimate]]:
    """Return, per metric name, one :class:`SliceEstimate` per slice of ``slicing``.

    ``baseline`` None (or a baseline without scores, for a score metric) gives estimates of the
    candidate only (``baseline`` and ``difference`` None). ``churn`` needs a baseline. The caller
    checks that every score metric's candidate has scores of the right shape.
    """
    return paired_estimates_many(y, candidate, baseline, metrics, [slicing], n_boot=n_boot, rngs=[rng],
                                 positive_label=positive_label, classes=classes, clusters=clusters)[0]


def paired_estimates_many(y: np.ndarray, candidate: Predictions, baseline: Predictions | None,
                          metrics: Sequence[Metric], slicings: Sequence[Slicing], *, n_boot: int,
                          rngs: Sequence[RngFor], positive_label: Any = None,
                          classes: tuple[Any, ...] | None = None,
                          clusters: ClusterIndex | None = None) -> list[dict[str, list[SliceEstimate]]]:
    """Return :func:`paired_estimates` of every slicing, resampling the rows once for all of them.

    ``rngs[i]`` is slicing ``i``'s stream factory. The confusion family draws from each slicing's
    own ``"confusion"`` stream; the row-mean family draws each row's Poisson weights once, from
    ``rngs[0]("rows")``, and every slicing adds up the same weighted rows (its slices' sums are
    sums over the cells of the slicings' common refinement), so slicing costs no extra draws.
    With ``clusters`` the row-mean family gives every row its cluster's weight (``bootstrap-clusters``).
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
        found = _row_family(y, candidate, baseline, rowwise, slicings, n_boot, rngs[0]("rows"),
                            positive_label, classes, clusters)
        for out, by_metric in zip(outs, found):
            out.update(by_metric)
    return outs


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
                       budget: int = CELL_BUDGET) -> Iterator[np.ndarray]:
    """Yield bootstrap replicates of a cell table in chunks of shape ``(c, *cells.shape)``.

    Only non-empty cells are drawn (an empty cell stays empty in every replicate), so the cost
    grows with the number of distinct (slice, y, labels) combinations seen, not with K**3.
    """
    flat = cells.ravel()
    nonzero = np.flatnonzero(flat)
    chunk = max(1, min(n_boot, budget // max(flat.size, 1)))
    for start in range(0, n_boot, chunk):
        c = min(chunk, n_boot - start)
        dense = np.zeros((c, flat.size))
        dense[:, nonzero] = multinomial_counts(flat[nonzero], c, rng)
        yield dense.reshape((c, *cells.shape))


def _table_values(tables: np.ndarray, metrics: Sequence[Metric], positive: int,
                  paired: bool) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    cand = tables.sum(axis=-1)
    base = tables.sum(axis=-2) if paired else None
    out: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
    for m in metrics:
        if m.family == "churn":
            value = 1.0 - _trace_share(tables.sum(axis=-3)) if paired else np.full(cand.shape[:-2], np.nan)
            out[m.name] = (value, None)
        else:
            assert m.counts is not None
            out[m.name] = (m.counts(cand, positive), None if base is None else m.counts(base, positive))
    return out


def _trace_share(table: np.ndarray) -> np.ndarray:
    total = table.sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.trace(table, axis1=-2, axis2=-1) / total


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
        out[m.name] = _per_slice(point[m.name][0], point[m.name][1], reps_c, reps_b, METHOD_MULTINOMIAL)
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
        a, v_pos, v_neg = delong_components(is_c, np.vstack([s[:, j] for s in scores]))
        w = float(m) if weighted else 1.0
        infl[:, is_c] += w * (v_pos - a[:, None]) / m
        infl[:, ~is_c] += w * (v_neg - a[:, None]) / (n - m)
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
    """The common refinement of several slicings: its cells as contiguous runs of reordered rows."""

    order: np.ndarray
    bounds: np.ndarray
    members: list[np.ndarray]

    @classmethod
    def of(cls, slicings: Sequence[Slicing], n: int) -> _Refinement:
        """Cells are the distinct combinations of slice codes; ``members[i]`` (``(S_i, C)``, 0/1)
        says which cells make up each slice of slicing ``i``."""
        cell = np.zeros(n, dtype=np.int64)
        for slicing in slicings:
            if slicing.n_slices > 1:  # compressed after each slicing, so codes stay below n
                cell = np.unique(cell * slicing.n_slices + slicing.codes, return_inverse=True)[1].ravel()
        order = np.argsort(cell, kind="stable")
        bounds = np.r_[0, np.cumsum(np.bincount(cell))]
        first = order[bounds[:-1]]
        members = [(np.arange(s.n_slices)[:, None] == s.codes[first][None, :]).astype(np.float64)
                   for s in slicings]
        return cls(order, bounds, members)

    def sums(self, weights: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Return weighted sums ``(c, C, P)`` of ``values`` (rows in cell order) per cell and replicate."""
        if len(self.bounds) == 2:
            return (weights @ values)[:, None, :].astype(np.float64)
        return np.stack([weights[:, a:b] @ values[a:b] for a, b in zip(self.bounds[:-1], self.bounds[1:])],
                        axis=1).astype(np.float64)


def _row_family(y: np.ndarray, cand: Predictions, base: Predictions | None, metrics: Sequence[Metric],
                slicings: Sequence[Slicing], n_boot: int, rng: np.random.Generator, positive_label: Any,
                classes: tuple[Any, ...] | None, clusters: ClusterIndex | None = None,
                ) -> list[dict[str, list[SliceEstimate]]]:
    """Resample rows with Poisson weights once for every row-mean metric and every slicing together.

    Weights are drawn for the rows in cell order, so each cell's sums are one contiguous matrix
    product and no chunk of weights is ever gathered; a slice's sums are the sum of its cells'.
    """
    values, blocks = _stack_rows(y, cand, base, metrics, positive_label, classes)
    centre = values.mean(axis=0)
    centre[0] = 0.0  # the ones column counts rows; centring the others keeps float32 sums exact enough
    cells = _Refinement.of(slicings, len(y))
    ordered = (values - centre).astype(np.float32)[cells.order]
    chunks: list[list[np.ndarray]] = [[] for _ in slicings]
    if clusters is None:
        draws: Iterator[np.ndarray] = (_weights(codes) for codes in poisson_codes(len(y), n_boot, rng))
    else:  # the core's weights keyed by cluster: a cluster's rows share each replicate's weight
        seed = int(rng.integers(0, 1 << 63))
        draws = (w.astype(np.float32) for w in cluster_weights(clusters.keys[cells.order], n_boot, seed))
    for weights in draws:
        cell_sums = cells.sums(weights, ordered)
        for own, members in zip(chunks, cells.members):
            sums = members @ cell_sums
            with np.errstate(invalid="ignore", divide="ignore"):
                own.append(centre + sums / sums[..., :1])
    method = METHOD_ROWS if clusters is None else METHOD_CLUSTERS
    return [_row_estimates(blocks, np.stack([values[rows].mean(axis=0) for rows in slicing.rows]),
                           np.concatenate(own), method)
            for slicing, own in zip(slicings, chunks)]


def _row_estimates(blocks: Sequence[_Block], point_means: np.ndarray, means: np.ndarray,
                   method: str = METHOD_ROWS) -> dict[str, list[SliceEstimate]]:
    """Return each metric's estimates from its slices' mean statistics ``(S, P)`` and replicates ``(B, S, P)``."""
    out = {}
    for b in blocks:
        assert b.metric.from_means is not None
        f = b.metric.from_means
        point_b = None if b.base is None else f(point_means[:, b.base])
        reps_b = None if b.base is None else f(means[..., b.base])
        out[b.metric.name] = _per_slice(f(point_means[:, b.cand]), point_b, f(means[..., b.cand]), reps_b,
                                        method)
    return out


# --------------------------------------------------------------------------- average precision


def ap_influence(y_pos: np.ndarray, scores: np.ndarray) -> tuple[float, np.ndarray]:
    """Return average precision and its per-row influence values (``AP_hat - AP ~ mean(influence)``).

    With ``a(t) = P(Y=1, S >= t)``, ``b(t) = P(S >= t)`` and ``prec = a / b``, sklearn's average
    precision is ``AP = E[Y prec(S)] / pi`` (tied scores share a threshold). Its influence function
    (the delta method, as DeLong's components are for AUC) at a row ``(y0, s0)`` is
    ``(IF_N - AP (y0 - pi)) / pi`` with
    ``IF_N = y0 prec(s0) - N + E[Y 1{S <= s0} (y0 - prec(S)) / b(S)]`` and ``N = E[Y prec(S)]``,
    so ``var(AP_hat) ~ sum(influence**2) / n**2``. NaN without a positive.
    """
    y = np.asarray(y_pos, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    n = len(s)
    if n == 0 or not y.any():
        return float("nan"), np.full(n, np.nan)
    order = np.argsort(-s)
    ys = y[order].astype(np.float64)
    starts = np.flatnonzero(np.r_[True, s[order][1:] != s[order][:-1]])
    group = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, n]))
    seen = np.r_[starts[1:], n].astype(np.float64)            # rows with a score >= the group's
    tp = np.cumsum(np.add.reduceat(ys, starts))                 # positives among them
    prec, b = tp / seen, seen / n
    pos_per_group = np.add.reduceat(ys, starts)
    pi = ys.mean()
    big_n = float(np.sum(pos_per_group * prec)) / n
    ap = big_n / pi
    # sums over positives at or below each group's score: cumulate from the lowest group upwards
    c1 = np.cumsum((pos_per_group / b)[::-1])[::-1] / n
    c2 = np.cumsum((pos_per_group * prec / b)[::-1])[::-1] / n
    g = group
    if_n = ys * prec[g] - big_n + ys * c1[g] - c2[g]
    influence = np.empty(n)
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
