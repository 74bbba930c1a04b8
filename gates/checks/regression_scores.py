"""Score metrics of the regression gate on partitions: row means, ROC AUC and average precision.

The cells are the distinct combinations of the slicings' columns, counted in a first pass that
reads only those columns; the client fixes their codes and which of them belong to a slice
smaller than :data:`~gates.stats.ANALYTIC_MIN_ROWS` rows before any partition is predicted.
Each partition then returns, per cell:

* for row-mean metrics (log loss, brier, mae, rmse, r2, ...): the :class:`~gates.stats.Moments`
  of the per-row statistics, and for the cells of small slices their
  :class:`~gates.stats.PoissonSums` under weights hashed from each row's key (its position in the
  source, or ``data.id``) and the gate's seed, so partitioning changes no weight;
* for ROC AUC and average precision (binary): a score table, the rows counted per distinct
  (cell, label, candidate score, baseline score).

With ``data.cluster`` the weights are hashed from each row's cluster value and every cell is
resampled (``bootstrap-clusters``); a per_example run whose checked slices all have
:data:`~gates.clusters.NORMAL_MIN_CLUSTERS` clusters gets the scores' totals per (cell, cluster)
instead, for the cluster-robust normal interval. The counting pass returns the distinct (cell,
cluster) pairs, so slices count their clusters as embedded.

The client merges both in partition order and finalizes them with the embedded gate's own code:
the paired normal interval from the merged moments, bootstrap replicates from the merged sums,
AUC with DeLong's variance (:func:`gates.stats.ranks.delong_counts`) and average precision with
its delta-method variance from the table. All are the embedded values up to float rounding; the
score table grows with the distinct scores (at most the rows) and is held by the client.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from gates.checks import regression as rg
from gates.clusters import METHOD_BOOTSTRAP as METHOD_CLUSTERS
from gates.clusters import cluster_index, normal_from_totals
from gates.context import MSG_NO_TARGET, Predictions, target_missing
from gates.errors import UserError
from gates.engine.ranges import sample
from gates.estimates import (
    METHOD_DELONG,
    METHOD_DELTA,
    METHOD_ROWS,
    SliceEstimate,
    Slicing,
    _Block,
    _bounded,
    _row_estimates,
    slice_by,
)
from gates.intervals import Estimate
from gates.metrics import BINARY, CENTRED_ROW_STATS, MULTICLASS, Metric
from gates.per_example import MSG_MISSING_VALUES, PER_EXAMPLE, score_metric
from gates.stats import ANALYTIC_MIN_ROWS, Moments, PoissonSums, merge_all, row_keys
from gates.stats.ranks import RankSpec

if TYPE_CHECKING:
    from gates.datasets import Partition
    from gates.engine.context import PartitionedContext
    from gates.engine.shipping import ModelHandle

ROW_MEAN, RANKS = ("row_mean",), ("auc", "ranking")
#: internal column names of the score tables: a NUL never starts a data column's name, so no slice column collides
CELL, YPOS, SC, SB, N, CODE = "\0cell", "\0ypos", "\0sc", "\0sb", "\0n", "\0code"
KEY, LONE = "\0key", "\0lone"


def family_of(metric: Metric, task: str) -> str | None:
    """Return ``rows`` or ``ranks`` for a metric this module distributes for ``task``, else None."""
    if metric.family in ROW_MEAN:
        return "rows"
    if metric.family in RANKS and task == BINARY:
        return "ranks"
    return None


# --------------------------------------------------------------------------- cells


def combo_counts(part: Partition, columns: tuple[str, ...], target: str | None, y_sum: bool,
                 cluster: str | None = None) -> tuple[pd.DataFrame, float, int, pd.DataFrame | None]:
    """Return a partition's scored rows (those with a target; every row without one) counted per
    distinct combination of ``columns``, the sum of their target (with ``y_sum``, else 0), how many
    there are and, with ``cluster``, its distinct (combination, cluster key) pairs; rows without a
    cluster value, each a cluster of its own, are counted per combination in column ``LONE``
    instead (runs on a worker)."""
    if target is None and not columns and cluster is None:
        return pd.DataFrame({N: [part.rows]}), 0.0, part.rows, None
    wanted = [*columns, *([target] if target is not None else []), *([cluster] if cluster else [])]
    frame = part.read(list(dict.fromkeys(wanted)))
    if target is not None:
        frame = frame[~target_missing(frame[target])]
    total = float(frame[target].to_numpy(dtype=np.float64).sum()) if y_sum and target is not None else 0.0
    pairs = None
    table = frame[list(columns)].reset_index(drop=True)
    if cluster is not None:
        lone = frame[cluster].isna().to_numpy()
        keys = cluster_index(frame, cluster).keys
        table[LONE] = lone.astype(np.int64)
        pairs = frame[list(columns)].reset_index(drop=True).assign(**{KEY: keys})[~lone]
        pairs = pairs.drop_duplicates(ignore_index=True)
    if not columns:
        extra = {LONE: [int(table[LONE].sum())]} if cluster is not None else {}
        return pd.DataFrame({N: [len(frame)], **extra}), total, len(frame), pairs
    grouped = table.groupby(list(columns), dropna=False, sort=False)
    counts = grouped.size().rename(N).reset_index()
    if cluster is not None:
        counts[LONE] = grouped[LONE].sum().to_numpy()
    return counts, total, len(frame), pairs


@dataclass(frozen=True)
class Cells:
    """The slicings' common refinement: distinct values ``combos`` (one row per cell, ``columns``),
    rows per cell, and per slicing its :class:`Slicing` and cell membership ``(S, C)``."""

    columns: tuple[str, ...]
    combos: pd.DataFrame
    sizes: np.ndarray
    slicings: list[Slicing | None]
    members: list[np.ndarray | None]
    y_mean: float = 0.0
    #: each partition's (by its source offset) first scored row's position among the scored rows
    offsets: Mapping[int, int] = field(default_factory=dict)
    #: with ``data.cluster``: per slicing, the distinct clusters of each slice (None: slicing left out)
    clusters: list[np.ndarray | None] | None = None

    @property
    def n_scored(self) -> int:
        return int(self.sizes.sum())

    @property
    def n_cells(self) -> int:
        return len(self.sizes)

    def small(self) -> np.ndarray:
        """Cells that belong to a slice smaller than the normal interval's minimum."""
        needed = np.zeros(self.n_cells, dtype=bool)
        for members in self.members:
            if members is not None:
                few = members @ self.sizes < ANALYTIC_MIN_ROWS
                needed |= (members[few] > 0).any(axis=0)
        return needed


def cells(ctx: PartitionedContext, settings: rg.Settings, y_sum: bool = False) -> tuple[Cells, dict[int, str]]:
    """Count the regression gate's cells (all rows, then each slicing; see :func:`count_cells`) and
    return them with the slicings whose columns are missing."""
    missing: dict[int, str] = {}
    present: list[tuple[str, ...] | None] = [()]
    for i, cols in enumerate(settings.slicings, start=1):
        absent = [c for c in cols if c not in ctx.schema.columns]
        if absent:
            missing[i] = absent[0]
        present.append(None if absent else cols)
    return count_cells(ctx, present, y_sum), missing


def count_cells(ctx: PartitionedContext, groupings: Sequence[tuple[str, ...] | None], y_sum: bool = False) -> Cells:
    """Count the cells of ``groupings`` (None: a grouping left out) in one pass over their columns
    (and the target's mean, with ``y_sum``); each grouping's groups are in the embedded order."""
    columns = tuple(dict.fromkeys(c for cols in groupings if cols for c in cols))
    target = ctx.policy.data.target
    cluster = getattr(ctx.policy.data, "cluster", None)
    parts = ctx.engine.map(combo_counts, ctx.eval_partitions, columns=columns, target=target, y_sum=y_sum,
                           cluster=cluster)
    scored = [n for _, _, n, _ in parts]
    n_scored = sum(scored)
    if n_scored == 0:
        raise UserError(MSG_NO_TARGET.format(col=target, n=ctx.n_rows), location=ctx.policy.where("data", "target"))
    y_mean = sum(total for _, total, _, _ in parts) / n_scored
    combos = pd.concat([c for c, _, _, _ in parts], ignore_index=True)
    if columns:
        combos = combos.groupby(list(columns), dropna=False, sort=False)[combos.columns[len(columns):]].sum()
        combos = combos.reset_index()
    else:
        combos = combos.sum().to_frame().T
    offsets = dict(zip((p.offset for p in ctx.eval_partitions), np.r_[0, np.cumsum(scored)[:-1]].tolist()))
    sizes = combos[N].to_numpy(dtype=np.int64)
    lone = combos[LONE].to_numpy(dtype=np.int64) if cluster is not None else None
    combos = combos[list(columns)]
    slicings: list[Slicing | None] = []
    members: list[np.ndarray | None] = []
    for cols in groupings:
        if cols is None:
            slicings.append(None)
            members.append(None)
            continue
        slicing, codes = slice_codes(cols, combos)
        m = (np.arange(slicing.n_slices)[:, None] == codes[None, :]).astype(np.float64)
        slicing = replace(slicing, counts=(m @ sizes).astype(np.int64))
        slicings.append(slicing)
        members.append(m)
    clusters = None
    if cluster is not None and lone is not None:
        pairs = pd.concat([p for _, _, _, p in parts if p is not None], ignore_index=True)
        cell = cell_codes(pairs, columns, combos)
        clusters = [None if m is None else _distinct_clusters(m, cell, pairs[KEY].to_numpy(), lone)
                    for m in members]
    return Cells(columns, combos, sizes, slicings, members, y_mean, offsets, clusters)


def _distinct_clusters(members: np.ndarray, cell: np.ndarray, keys: np.ndarray, lone: np.ndarray) -> np.ndarray:
    """Each slice's distinct clusters: the distinct keys of its cells' pairs, plus its rows without one."""
    slice_of = np.argmax(members, axis=0)[cell] if len(cell) else np.zeros(0, dtype=np.int64)
    distinct = pd.DataFrame({CODE: slice_of, KEY: keys}).drop_duplicates()
    counts = np.bincount(distinct[CODE].to_numpy(dtype=np.int64), minlength=members.shape[0])
    return (counts + members @ lone).astype(np.int64)


def slice_codes(cols: tuple[str, ...], combos: pd.DataFrame) -> tuple[Slicing, np.ndarray]:
    """The embedded run's slices of ``cols`` (``slice_by`` over their distinct values in first-seen
    order) and each row of ``combos``' slice code."""
    if not cols:
        return Slicing((), ((),), np.zeros(0, dtype=np.int64)), np.zeros(len(combos), dtype=np.int64)
    distinct = combos[list(cols)].drop_duplicates().reset_index(drop=True)
    slicing = slice_by(distinct, cols)
    coded = distinct.assign(**{CODE: slicing.codes})
    merged = combos[list(cols)].merge(coded, on=list(cols), how="left", sort=False)
    return slicing, merged[CODE].to_numpy(dtype=np.int64)


def cell_codes(frame: pd.DataFrame, columns: tuple[str, ...], combos: pd.DataFrame) -> np.ndarray:
    """Return each row's cell code (its combination's row in ``combos``)."""
    if not columns:
        return np.zeros(len(frame), dtype=np.int64)
    coded = combos.assign(**{CELL: np.arange(len(combos))})
    merged = frame[list(columns)].reset_index(drop=True).merge(coded, on=list(columns), how="left", sort=False)
    return merged[CELL].to_numpy(dtype=np.int64)


# --------------------------------------------------------------------------- shared by the partitioned gates


def predicted(part: Partition, plan: Any, candidate_bytes: ModelHandle | None, baseline_bytes: ModelHandle | None
              ) -> tuple[pd.DataFrame, np.ndarray, Predictions, Predictions | None] | None:
    """Return one partition's scored rows, target and both models' predictions, None when no row
    has a target (runs on a worker; ``plan`` is a :class:`gates.engine.worker.PredictPlan`)."""
    from gates.engine.worker import predict_partition, read_scored

    frame = read_scored(part, plan.policy)  # rows without a target are never scored
    if frame.empty:
        return None
    y, cand, base = predict_partition(plan, frame, candidate_bytes, baseline_bytes)
    return frame, y, cand, base


Uniques = tuple[list[Any], list[Any], list[Any] | None]


def labels_seen(y: np.ndarray, cand: Predictions, base: Predictions | None) -> Uniques:
    """The target's, candidate's and baseline's labels in first-seen order (what a partition sends)."""
    return (pd.unique(y).tolist(), pd.unique(cand.labels).tolist(),
            None if base is None else pd.unique(base.labels).tolist())


def merged_labels(found: Sequence[Uniques], paired: bool) -> list[np.ndarray]:
    """Each role's labels in first-seen order over the partitions in source order, as arrays typed
    like the rows' labels (so the label codes are the embedded run's)."""
    out = []
    for i in range(3 if paired else 2):
        seen = pd.unique(np.asarray([v for u in found for v in u[i] or []], dtype=object))
        try:
            out.append(np.asarray(seen.tolist()))
        except (ValueError, TypeError):
            out.append(seen)
    return out


def needs_y_mean(names: Iterable[str]) -> bool:
    """True when a metric among ``names`` centres the target at the whole data's mean (``r2``)."""
    return any(n in CENTRED_ROW_STATS for n in names)


def row_stats(metric: Metric, y: np.ndarray, pred: Predictions, positive: Any, classes: tuple[Any, ...] | None,
              y_mean: float) -> np.ndarray:
    """A metric's per-row statistics ``(n, p)`` on a batch, centred at the whole data's target mean
    ``y_mean`` where the metric centres (``r2``), so batches give the embedded run's statistics."""
    assert metric.row_stats is not None
    centred = CENTRED_ROW_STATS.get(metric.name)
    stats = np.asarray(metric.row_stats(y, pred, positive, classes) if centred is None
                       else centred(y, pred, y_mean), dtype=np.float64)
    return stats[:, None] if stats.ndim == 1 else stats


# --------------------------------------------------------------------------- worker side


@dataclass(frozen=True)
class ScorePlan:
    """What a worker needs to measure score metrics: the metrics, the cells, the Poisson scheme."""

    rows: tuple[str, ...]
    ranks: tuple[str, ...]
    columns: tuple[str, ...]
    combos: pd.DataFrame
    small: np.ndarray
    n_boot: int
    seed: int
    key_column: str | None
    task: str
    positive_label: Any
    classes: tuple[Any, ...] | None
    y_mean: float = 0.0
    offsets: Mapping[int, int] = field(default_factory=dict)
    #: ``data.cluster``: rows are keyed by their cluster; with ``normal`` the cluster-robust normal
    #: interval is used on every slice (per (cell, cluster) totals), else every cell is resampled
    cluster: str | None = None
    normal: bool = False


@dataclass(frozen=True)
class RowPartial:
    """One partition's row statistics: layout ``(metric, role, width)`` of the value columns after
    the leading ones, their moments per cell, the Poisson sums of the small slices' cells and, for
    the cluster-robust normal interval, the value columns' totals per (cell, cluster key)."""

    layout: tuple[tuple[str, str, int], ...]
    moments: Moments
    sums: PoissonSums | None
    totals: pd.DataFrame | None = None


@dataclass(frozen=True)
class ScorePartial:
    """One partition's score summaries per role, row statistics and score table."""

    summaries: Mapping[str, rg.ScoreSummary]
    rows: RowPartial | None
    table: pd.DataFrame | None
    #: per_example: per (score, role), how many of the partition's values are missing (not finite)
    missing: Mapping[tuple[str, str], int] = field(default_factory=dict)
    #: per score column of ``table``, a sample of its entries' scores (:func:`gates.engine.ranges.sample`)
    samples: Mapping[str, np.ndarray] = field(default_factory=dict)
    #: how many entries ``table`` has (kept when the table stays on its worker)
    entries: int = 0

    def without_table(self) -> ScorePartial:
        """This partial without its score table (which stays where it was computed)."""
        return replace(self, table=None)


def measure_scores(plan: ScorePlan, frame: pd.DataFrame, y: np.ndarray, preds: Mapping[str, Any],
                   offset: int) -> ScorePartial:
    """Return a predicted partition's score partials (runs on a worker); ``frame`` holds its scored
    rows, the first of which is scored row ``offset`` of the whole data."""
    summaries = {role: rg.ScoreSummary.of(p) for role, p in preds.items()}
    n = len(frame)
    n_classes = len(plan.classes or ()) if plan.task == MULTICLASS else 0

    def usable(metric: Metric, role: str) -> bool:
        return rg._score_problem(metric, summaries[role], role, plan.task, n, n_classes) is None

    codes = cell_codes(frame, plan.columns, plan.combos)
    rows = None
    if plan.rows:
        columns, layout = [np.ones((n, 1))], []
        for name in plan.rows:
            m = metric_of(name, plan.task)
            for role, pred in preds.items():
                if usable(m, role):
                    stats = row_stats(m, y, pred, plan.positive_label, plan.classes, plan.y_mean)
                    columns.append(stats)
                    layout.append((name, role, stats.shape[1]))
        values = np.hstack(columns)
        n_cells = len(plan.small)
        moments = Moments.of(values, codes, n_cells)
        sums = None
        if plan.cluster is not None:
            keys = cluster_index(frame, plan.cluster, offset=offset).keys
        else:
            keys = row_keys(n, offset=offset,
                            values=None if plan.key_column is None else frame[plan.key_column].to_numpy())
        if plan.normal:
            table = pd.DataFrame(values, columns=[str(j) for j in range(values.shape[1])])
            table.insert(0, KEY, keys)
            table.insert(0, CELL, codes)
            totals = table.groupby([CELL, KEY], sort=False).sum().reset_index()
            return ScorePartial(summaries, RowPartial(tuple(layout), moments, None, totals), None,
                                _missing_scores(plan, preds))
        chosen = plan.small[codes]
        if chosen.any():
            centre = values.mean(axis=0)
            sums = PoissonSums.of(keys[chosen], values[chosen], n_boot=plan.n_boot, seed=plan.seed,
                                  cells=codes[chosen], n_cells=n_cells, centre=centre)
        elif plan.small.any():  # no row of this partition is in a small slice
            sums = PoissonSums(np.zeros((plan.n_boot, n_cells, 1 + values.shape[1])), np.zeros(values.shape[1]))
        rows = RowPartial(tuple(layout), moments, sums)
    table = None
    rank_metric = metric_of(plan.ranks[0], plan.task) if plan.ranks else None
    if rank_metric is not None and usable(rank_metric, "candidate"):
        t = pd.DataFrame({CELL: codes, YPOS: y == plan.positive_label,
                          SC: np.asarray(preds["candidate"].scores, dtype=np.float64)})
        base = preds.get("baseline")
        t[SB] = (np.asarray(base.scores, dtype=np.float64) if base is not None and usable(rank_metric, "baseline")
                 else np.nan)
        table = t.groupby([CELL, YPOS, SC, SB], dropna=False, sort=False).size().rename(N).reset_index()
        samples = {c: sample(table[c].to_numpy(dtype=np.float64)) for c in (SC, SB)}
        return ScorePartial(summaries, rows, table, _missing_scores(plan, preds), samples, len(table))
    return ScorePartial(summaries, rows, table, _missing_scores(plan, preds))


def _missing_scores(plan: ScorePlan, preds: Mapping[str, Predictions]) -> dict[tuple[str, str], int]:
    """per_example: how many of each (score, role)'s values are missing (not finite); else empty."""
    missing = {}
    if plan.task == PER_EXAMPLE:
        for name in plan.rows:
            for role, pred in preds.items():
                assert pred.scores is not None and pred.classes is not None
                column = np.asarray(pred.scores[:, pred.classes.index(name)], dtype=np.float64)
                missing[(name, role)] = int(np.count_nonzero(~np.isfinite(column)))
    return missing


def metric_of(name: str, task: str) -> Metric:
    """The metric ``name`` of ``task``: a per_example score's mean, else the registry's."""
    from gates.metrics import metric_registry

    return score_metric(name) if task == PER_EXAMPLE else metric_registry()[name]


# --------------------------------------------------------------------------- client side


def problems(metrics: Sequence[Metric], parts: Sequence[ScorePartial], task: str, n: int, n_classes: int,
             roles: Sequence[str]) -> dict[tuple[str, str], tuple[str, str]]:
    """The embedded gate's ``problems`` for score metrics, from the merged score summaries."""
    out: dict[tuple[str, str], tuple[str, str]] = {}
    if task == PER_EXAMPLE:
        return out
    for role in roles:
        summary = merge_all([p.summaries[role] for p in parts])
        for m in metrics:
            msg = rg._score_problem(m, summary, role, task, n, n_classes)
            if msg is not None:
                out[(m.name, role)] = (rg.REASON_MISSING_SCORES if not summary.present else rg.REASON_BAD_DATA, msg)
    return out


def per_example_problems(policy: Any, metrics: Sequence[Metric], parts: Sequence[ScorePartial], n: int,
                         roles: Sequence[str]) -> dict[tuple[str, str], tuple[str, str]]:
    """The embedded gate's ``problems`` of per_example scores (missing values), from the merged counts."""
    out: dict[tuple[str, str], tuple[str, str]] = {}
    for m in metrics:
        for role in roles:
            bad = sum(p.missing.get((m.name, role), 0) for p in parts)
            if bad:
                column = getattr(policy.model, role).score_columns[m.name]
                out[(m.name, role)] = (rg.REASON_BAD_DATA, MSG_MISSING_VALUES.format(
                    column=column, role=role, count=bad, rows=n))
    return out


def estimates(cells_: Cells, metrics: Sequence[Metric], parts: Sequence[ScorePartial],
              found_problems: Mapping[tuple[str, str], tuple[str, str]], paired: bool, *,
              kept: KeptTables, clustered: bool = False, normal: bool = False
              ) -> dict[tuple[int, str], list[SliceEstimate]]:
    """Per (slicing, metric): the embedded gate's estimates of the usable score metrics.

    ``kept``: the partitions' score tables, kept where they were computed, for ROC AUC and
    average precision (:func:`gates.engine.ranges.ranked`).

    ``clustered``: the Poisson weights were keyed by cluster and every cell resampled
    (``bootstrap-clusters``); ``normal``: the cluster-robust normal interval from the merged
    per-cluster totals (as embedded, not clipped to the metric's range)."""
    usable = [m for m in metrics if (m.name, "candidate") not in found_problems]
    with_base = {m.name: paired and (m.name, "baseline") not in found_problems for m in usable}
    out: dict[tuple[int, str], list[SliceEstimate]] = {}
    rows = [m for m in usable if m.family in ROW_MEAN]
    row_parts = [p.rows for p in parts if p.rows is not None]
    if rows and normal:
        return _normal_family(cells_, rows, with_base, row_parts)
    if rows:
        out.update(_row_family(cells_, rows, with_base, row_parts, METHOD_CLUSTERS if clustered else METHOD_ROWS))
    ranks = [m for m in usable if m.family in RANKS]
    if ranks and kept.handles:
        out.update(_rank_family(cells_, ranks, with_base, kept))
    by_name = {m.name: m for m in metrics}
    return {key: [_bounded(e, by_name[key[1]]) for e in found] for key, found in out.items()}


def _normal_family(cells_: Cells, metrics: Sequence[Metric], with_base: Mapping[str, bool],
                   parts: Sequence[RowPartial]) -> dict[tuple[int, str], list[SliceEstimate]]:
    """Each slice's mean and cluster-robust normal interval from the merged (cell, cluster) totals."""
    merged = pd.concat([p.totals for p in parts if p.totals is not None], ignore_index=True)
    merged = merged.groupby([CELL, KEY], sort=False).sum()
    cell = merged.index.get_level_values(CELL).to_numpy(dtype=np.int64)
    keys = merged.index.get_level_values(KEY).to_numpy()
    where, start = {}, 1
    for name, role, w in parts[0].layout:
        where[(name, role)] = str(start)
        start += w
    out: dict[tuple[int, str], list[SliceEstimate]] = {}
    for i, members in enumerate(cells_.members):
        if members is None:
            continue
        by_slice = merged.groupby([np.argmax(members, axis=0)[cell], keys], sort=False).sum()
        codes = by_slice.index.get_level_values(0).to_numpy()
        for m in metrics:
            found = []
            for s_ in range(members.shape[0]):
                here = by_slice[codes == s_]
                sizes = here["0"].to_numpy(dtype=np.float64)
                c = here[where[(m.name, "candidate")]].to_numpy(dtype=np.float64)
                n = float(sizes.sum())
                observed = normal_from_totals(float(c.sum()) / n, c, sizes)
                base = diff = None
                if with_base[m.name]:
                    b = here[where[(m.name, "baseline")]].to_numpy(dtype=np.float64)
                    base = float(b.sum()) / n
                    diff = normal_from_totals(float((c - b).sum()) / n, c - b, sizes)
                found.append(SliceEstimate(observed.value, base, observed, diff))
            out[(i, m.name)] = found
    return out


def _row_family(cells_: Cells, metrics: Sequence[Metric], with_base: Mapping[str, bool],
                parts: Sequence[RowPartial], method: str = METHOD_ROWS) -> dict[tuple[int, str], list[SliceEstimate]]:
    """Merge the partitions' moments and Poisson sums of the wanted columns; estimate per slice."""
    wanted = [(m.name, role) for m in metrics for role in ("candidate", "baseline")
              if role == "candidate" or with_base[m.name]]
    chosen: list[Moments] = []
    sums: list[PoissonSums] = []
    widths: dict[tuple[str, str], int] = {}
    for part in parts:
        where, start = {}, 1
        for name, role, w in part.layout:
            where[(name, role)] = np.arange(start, start + w)
            widths[(name, role)] = w
            start += w
        idx = np.concatenate([[0], *[where[k] for k in wanted]]).astype(np.int64)
        mom = part.moments
        chosen.append(Moments(mom.n, mom.mean[:, idx], mom.m2[:, idx][:, :, idx]))
        if part.sums is not None:
            sums.append(PoissonSums(part.sums.sums[..., np.r_[0, idx + 1]], part.sums.centre[idx]))
    blocks, col = [], 1  # the merged columns in the embedded gate's order: ones, then per metric c, b
    for m in metrics:
        c = slice(col, col + widths[(m.name, "candidate")])
        b = slice(c.stop, c.stop + widths[(m.name, "baseline")]) if with_base[m.name] else None
        col = c.stop if b is None else b.stop
        blocks.append(_Block(m, c, b))
    moments = merge_all(chosen)
    merged = None
    if sums:
        centre = moments.combine(np.ones((1, len(moments.n)))).mean[0]
        merged = merge_all([PoissonSums(shift(s, centre), centre) for s in sums])
    out: dict[tuple[int, str], list[SliceEstimate]] = {}
    for i, members in enumerate(cells_.members):
        if members is None:
            continue
        mom = moments.combine(members)
        few = mom.n < ANALYTIC_MIN_ROWS
        few = few | (method == METHOD_CLUSTERS)
        means = None if merged is None or not few.any() else merged.means(members)
        for name, found in _row_estimates(blocks, mom, means, few, method).items():
            out[(i, name)] = found
    return out


def shift(s: PoissonSums, centre: np.ndarray) -> np.ndarray:
    """Return ``s``'s sums about ``centre`` instead of its own centre (exact: the sum of
    ``w (v - c)`` is the sum of ``w (v - c')`` plus ``(c' - c)`` times the sum of ``w``)."""
    out = s.sums.copy()
    out[..., 1:] += (s.centre - centre)[None, None, :] * out[..., :1]
    return out


@dataclass(frozen=True)
class KeptTables:
    """The partitions' score tables where they were computed (``engine``'s handles), with each
    one's samples of its score columns and its entry count."""

    engine: Any
    handles: list[Any]
    samples: list[Mapping[str, np.ndarray]]
    sizes: list[int]

    @classmethod
    def of(cls, engine: Any, parts: Sequence[ScorePartial | None], handles: Sequence[Any]) -> KeptTables:
        """The tables of the partials that had one (``handles`` in the same order); the others' are released."""
        has = [p is not None and p.entries > 0 for p in parts]
        engine.drop([h for h, here in zip(handles, has) if not here])
        chosen = [p for p, here in zip(parts, has) if here and p is not None]
        return cls(engine, [h for h, here in zip(handles, has) if here], [p.samples for p in chosen],
                   [p.entries for p in chosen])

    def sampled(self, column: str) -> list[tuple[np.ndarray, int]]:
        return [(s[column], n) for s, n in zip(self.samples, self.sizes)]


def _rank_family(cells_: Cells, metrics: Sequence[Metric], with_base: Mapping[str, bool],
                 kept: KeptTables) -> dict[tuple[int, str], list[SliceEstimate]]:
    """ROC AUC and average precision per slice, ranked over the kept tables in score ranges."""
    from gates.engine.ranges import ranked

    chosen = [(i, m) for i, m in enumerate(cells_.members) if m is not None]
    spec = RankSpec(YPOS, N, CELL, tuple((np.argmax(m, axis=0), m.shape[0]) for _, m in chosen))
    paired = any(with_base[m.name] for m in metrics)
    scores = [SC, SB] if paired else [SC]
    found = ranked(kept.engine, kept.handles, scores, {c: kept.sampled(c) for c in scores}, spec,
                   [CELL, YPOS, SC, SB], len(kept.handles), auc=any(m.family == "auc" for m in metrics),
                   ap=any(m.family != "auc" for m in metrics))
    out: dict[tuple[int, str], list[SliceEstimate]] = {}
    for j, (i, members) in enumerate(chosen):
        for m in metrics:
            both = with_base[m.name]
            if m.family == "auc":
                assert found.auc is not None
                aucs, cov = found.auc[j]
                out[(i, m.name)] = [_auc(aucs[s], cov[s], both) for s in range(members.shape[0])]
            else:
                assert found.ap is not None
                aps, second, diff = found.ap[j]
                out[(i, m.name)] = [_ap(aps[s], second[s], diff[s], found.counts[j][s, 0], both)
                                    for s in range(members.shape[0])]
    return out


def _auc(aucs: np.ndarray, cov: np.ndarray, paired: bool) -> SliceEstimate:
    """A slice's estimate from its AUCs and DeLong covariance (candidate first)."""
    defined = bool(np.isfinite(cov[:2, :2] if paired else cov[:1, :1]).all())
    observed = Estimate(float(aucs[0]), METHOD_DELONG, se=math.sqrt(max(cov[0, 0], 0.0)) if defined else None)
    if not paired:
        return SliceEstimate(float(aucs[0]), None, observed, None)
    var = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    diff = Estimate(float(aucs[0] - aucs[1]), METHOD_DELONG, se=math.sqrt(max(var, 0.0)) if defined else None)
    return SliceEstimate(float(aucs[0]), float(aucs[1]), observed, diff)


def _ap(aps: np.ndarray, second: np.ndarray, diff: np.ndarray, positives: float, paired: bool) -> SliceEstimate:
    """A slice's estimate from its APs and influence sums (:class:`gates.engine.ranges.Ranked`):
    the delta method's standard error is ``sqrt(sum(w * influence**2)) / n``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        se = np.sqrt(np.r_[second, diff]) / positives if positives > 0 else np.full(len(second) + len(diff), np.nan)
    ap_c = float(aps[0])
    observed = Estimate(ap_c, METHOD_DELTA, se=float(se[0]))
    if not paired:
        return SliceEstimate(ap_c, None, observed, None)
    ap_b = float(aps[1])
    return SliceEstimate(ap_c, ap_b, observed, Estimate(ap_c - ap_b, METHOD_DELTA, se=float(se[len(second)])))


__all__ = ["Cells", "KeptTables", "ScorePartial", "ScorePlan", "Uniques", "cells", "estimates", "family_of", "labels_seen",
           "measure_scores", "merged_labels", "metric_of", "needs_y_mean", "per_example_problems", "predicted",
           "problems", "row_stats"]
