"""The fairness gate on partitioned data: group metrics from partials merged across partitions.

The groups are the distinct combinations of the groupings' columns, counted in a first pass that
reads only those columns (:func:`gates.checks.regression_scores.count_cells`). Each partition is
then predicted where it lives and returns

* its joint counts over (cell, y, candidate label, baseline label): every confusion rate
  (selection rate, tpr, fpr, ...), registry confusion metric and group count is a function of each
  group's :class:`~gates.groups.CellTable`, and the multinomial replicates are drawn from the
  merged table with the embedded run's seeded stream: the same numbers;
* for row-mean group metrics (log loss, brier, mae, ``mean_prediction``, ...): each group's sums of
  the per-row statistics and their :class:`~gates.stats.PoissonSums`, the weights hashed from each
  row's key with the embedded run's seed, so the replicates do not depend on the partitioning.

The client merges them into :class:`MergedGroupStats` and the embedded gate's own measuring and
deciding code runs on them. A per_example task's score means are row means of the score columns:
per group their raw sums and Poisson sums, as the embedded gate adds them. Group ROC AUC and
average precision (Poisson-reweighted per replicate over every row) have no mergeable form
here: the gate is then one ``fairness.not_distributable`` error. With ``data.cluster`` the
weights are hashed from the cluster value and each group's clusters are counted from the
counting pass's distinct (cell, cluster) pairs, as the embedded gate resamples and counts them.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from gates.checks import regression_scores as rs
from gates.checks.fairness import _dotted, assess, missing_grouping
from gates.checks import Spec
from gates.checks.fairness._config import GATE_NAME, FairnessPlan, as_plan, scope_of
from gates.checks.fairness._stats import (
    COUNT,
    PER_EXAMPLE,
    EvalData,
    GroupStats,
    _encode,
    group_metric,
    is_rate,
    needs_scores,
)
from gates.clusters import ClusterIndex, cluster_index
from gates.context import Predictions
from gates.errors import UserError
from gates.metrics import BINARY, REGRESSION, Encoded
from gates.results import CheckResult
from gates.stats import PoissonSums, merge_all, row_keys
from gates.stats.grouping import Grouping

if TYPE_CHECKING:
    from gates.datasets import Partition
    from gates.engine.context import PartitionedContext
    from gates.engine.shipping import ModelHandle
    from gates.policy import Policy

MSG_NOT_MERGEABLE = ("the fairness gate runs on the dask engine for confusion rates, counts and row-mean group "
                     "metrics; {names} have no mergeable form here (docs/scale.md)")
#: internal column names of the count tables: a NUL never starts a data column's name, so no group column collides
Y, C, B = "\0y", "\0candidate", "\0baseline"


def _kind(name: str, task: str) -> str | None:
    """``cells``, ``sums`` or None (no mergeable form) for group metric ``name``."""
    if task == PER_EXAMPLE:
        return "sums"
    if name == COUNT:
        return "sums" if task == REGRESSION else "cells"
    if is_rate(name, task):
        return "cells"
    family = group_metric(name, task).family
    return {"confusion": "cells", "row_mean": "sums"}.get(family)


@dataclass(frozen=True)
class FairPlan:
    """What a worker needs to measure one partition for the fairness gate."""

    predict: Any  # gates.engine.worker.PredictPlan
    columns: tuple[str, ...]
    combos: pd.DataFrame
    groups: tuple[np.ndarray, ...]  # per grouping: each cell's group code
    requests: tuple[tuple[int, str, int], ...]  # (grouping, metric, Poisson seed)
    n_boot: int
    key_column: str | None
    y_mean: float
    cells: bool
    offsets: Mapping[int, int]


@dataclass(frozen=True)
class FairPartial:
    """One partition's labels in first-seen order, joint counts per cell, and per request its
    per-group sums and Poisson sums (None when a model gives no scores the metric needs)."""

    uniques: rs.Uniques
    counts: pd.DataFrame | None
    sums: Mapping[tuple[int, str], tuple[np.ndarray, PoissonSums] | None]
    scored: tuple[bool, bool | None]


def measure_partition(part: Partition, plan: FairPlan, candidate_bytes: ModelHandle | None = None,
                      baseline_bytes: ModelHandle | None = None) -> FairPartial | None:
    """Predict one partition's scored rows and return their fairness partials, None when it has no row
    with a target (runs on a worker)."""
    found = rs.predicted(part, plan.predict, candidate_bytes, baseline_bytes)
    if found is None:
        return None
    frame, y, cand, base = found
    policy = plan.predict.policy
    task = policy.model.task
    codes = rs.cell_codes(frame, plan.columns, plan.combos)
    counts = None
    if plan.cells:
        table = pd.DataFrame({rs.CELL: codes, Y: y, C: cand.labels})
        if base is not None:
            table[B] = base.labels
        counts = table.groupby(list(table.columns), dropna=False, sort=False).size().rename(rs.N).reset_index()
    models = [m for m in (cand, base) if m is not None]
    if policy.data.cluster is not None:  # a cluster's rows share every replicate's weight
        keys = cluster_index(frame, policy.data.cluster, offset=plan.offsets[part.offset]).keys
    else:
        keys = row_keys(len(frame), offset=plan.offsets[part.offset],
                        values=None if plan.key_column is None else frame[plan.key_column].to_numpy())
    positive = policy.model.positive_label
    classes = plan.predict.classes or None
    sums: dict[tuple[int, str], tuple[np.ndarray, PoissonSums] | None] = {}
    for g, name, seed in plan.requests:
        group_codes = plan.groups[g][codes]
        n_groups = int(plan.groups[g].max()) + 1 if len(plan.groups[g]) else 1
        if task == PER_EXAMPLE:  # the scores' raw sums, as the embedded gate adds them
            values = np.column_stack([np.asarray(m.scores[:, m.classes.index(name)], dtype=np.float64)
                                      for m in models])  # type: ignore[index, union-attr]
            plain = np.column_stack([np.bincount(group_codes, weights=values[:, j], minlength=n_groups)
                                     for j in range(values.shape[1])])
            sums[(g, name)] = (plain, PoissonSums.of(keys, values, n_boot=plan.n_boot, seed=seed, cells=group_codes,
                                                     n_cells=n_groups))
            continue
        if name == COUNT:
            stats = np.zeros((len(frame), 0))
        else:
            metric = group_metric(name, task)
            if needs_scores(name, task) and any(m.scores is None for m in models):
                sums[(g, name)] = None
                continue
            stats = np.hstack([rs.row_stats(metric, y, m, positive, classes, plan.y_mean) for m in models])
        plain = np.column_stack([np.bincount(group_codes, weights=stats[:, j], minlength=n_groups)
                                 for j in range(stats.shape[1])]) if stats.shape[1] else np.zeros((n_groups, 0))
        sums[(g, name)] = (plain, PoissonSums.of(keys, stats, n_boot=plan.n_boot, seed=seed, cells=group_codes,
                                                 n_cells=n_groups, centre=stats.mean(axis=0)))
    scored = (cand.scores is not None, None if base is None else base.scores is not None)
    uniques = rs.labels_seen(y, cand, base) if plan.cells else ([], [], None)  # per_example: no labels
    return FairPartial(uniques, counts, sums, scored)


class MergedGroupStats(GroupStats):
    """:class:`GroupStats` of one grouping whose tables and sums were merged from partitions."""

    def __init__(self, data: EvalData, index: Grouping, n_boot: int, rng_for: Callable[[str], np.random.Generator],
                 sizes: np.ndarray, table: Any, sums: Mapping[str, tuple[np.ndarray, PoissonSums]],
                 clusters: tuple[str, np.ndarray] | None = None) -> None:
        super().__init__(data, index, n_boot, rng_for, keys=np.zeros(0, dtype=np.uint64))
        self.sizes = sizes
        self.units = sizes
        if clusters is not None:  # (column, each group's distinct clusters): what min_group_size counts
            column, counts = clusters
            none = np.zeros(0, dtype=np.int64)
            self.clusters = ClusterIndex(column, none, int(counts.sum()), none.astype(np.uint64))
            self.units = counts
        if table is not None:
            self.__dict__["table"] = table
        self._sums = sums

    def _row_partials(self, metric: Any) -> tuple[np.ndarray, Callable[[], PoissonSums]]:
        plain, sums = self._sums[metric.name]
        return plain, lambda: sums

    def _count_sums(self) -> PoissonSums:
        return self._sums[COUNT][1]

    def _score_partials(self, name: str) -> tuple[np.ndarray, Callable[[], np.ndarray]]:
        plain, sums = self._sums[name]
        return plain, lambda: sums.sums


def distributable(section: FairnessPlan | Spec, policy: Policy) -> str | None:
    """Return why the fairness gate cannot run from partition partials under ``policy``, or None when it can.

    :func:`run` reports this reason as its ``not_distributable`` error; the embedded engine asks
    it before choosing to read the data in batches.
    """
    task = policy.model.task
    gate_plan = as_plan(section, task, [n for n, _ in policy.model.candidate.named_scores])
    others = sorted({r for m in gate_plan.metrics for r in m.rates if _kind(r, task) is None})
    if others:
        return MSG_NOT_MERGEABLE.format(names=", ".join(others))
    return None


def run(ctx: PartitionedContext, section: FairnessPlan | Spec) -> list[CheckResult]:
    """Return the fairness gate's checks from merged partials, or its not_distributable error.

    ``section`` is the gate's plan (a section mapping is planned here).
    """
    from gates.checks import not_distributable
    from gates.engine.worker import ship_models

    policy = ctx.policy
    gate_plan = as_plan(section, policy.model.task, [n for n, _ in policy.model.candidate.named_scores])
    found = missing_grouping(ctx.schema, gate_plan, policy.data.sensitive)
    if found is not None:
        keypath, text = found
        raise UserError(f"{_dotted(keypath)}: {text}", location=policy.where(*keypath))
    task = policy.model.task
    reason = distributable(gate_plan, policy)
    if reason is not None:
        return [not_distributable(GATE_NAME, gate_plan, reason)]
    metrics = list(gate_plan.metrics)
    plan, handles = ship_models(ctx)
    from gates.checks.fairness import family_size
    from gates.checks.fairness._config import groupings

    grouped = groupings(gate_plan, policy.data.sensitive)
    summed = sorted({r for m in metrics for r in m.rates if _kind(r, task) == "sums"})
    cells = rs.count_cells(ctx, grouped, y_sum=rs.needs_y_mean(summed))
    has_baseline = ctx.has_baseline
    classes = None if task in (REGRESSION, PER_EXAMPLE) else ctx.classes
    settings = gate_plan.settings
    draft = _data(task, policy.model.positive_label, classes, _draft_encoding(task, policy, classes),
                  (True, True if has_baseline else None))
    n_boot = settings.intervals.replicates(family_size(settings, metrics, draft, len(grouped), has_baseline))
    requests = tuple((g, name, int(ctx.rng(GATE_NAME, scope_of(cols), name).integers(0, 2**63)))
                     for g, cols in enumerate(grouped) for name in summed)
    group_codes = tuple(_cell_groups(cells.members[g]) for g in range(len(grouped)))
    labelled = task not in (REGRESSION, PER_EXAMPLE)
    fair = FairPlan(plan, cells.columns, cells.combos, group_codes, requests, n_boot,
                    getattr(policy.data, "id", None), cells.y_mean, labelled, cells.offsets)
    found_parts = ctx.engine.map(measure_partition, ctx.eval_partitions, plan=ctx.engine.share(fair), **handles)
    parts = [p for p in found_parts if p is not None]
    encoded = None if not labelled else _encoding(parts, task, policy.model.positive_label, classes, has_baseline)
    scored = (all(p.scored[0] for p in parts),
              None if not has_baseline else all(bool(p.scored[1]) for p in parts))
    data = _data(task, policy.model.positive_label, classes, encoded, scored)
    counts = None if not labelled else pd.concat([p.counts for p in parts], ignore_index=True)
    by_columns = {cols: g for g, cols in enumerate(grouped)}
    cluster = policy.data.cluster

    def stats_of(columns: tuple[str, ...], n: int, streams: Callable[[str], np.random.Generator]) -> GroupStats:
        g = by_columns[columns]
        grouping = cells.slicings[g]
        assert grouping is not None and n == n_boot
        index = Grouping(grouping.columns, grouping.keys, np.zeros(0, dtype=np.int64))
        table = None if counts is None or encoded is None else _table(counts, group_codes[g], grouping, encoded,
                                                                       has_baseline)
        merged = {}
        for name in summed:
            found = [p.sums[(g, name)] for p in parts]
            if task == PER_EXAMPLE:  # raw sums: no centre to agree on
                merged[name] = (np.sum([f[0] for f in found if f is not None], axis=0),
                                merge_all([f[1] for f in found if f is not None]))
            elif all(f is not None for f in found):
                merged[name] = _merge_sums([f for f in found if f is not None], cells.n_scored)
        counted = None if cells.clusters is None else cells.clusters[g]
        return MergedGroupStats(data, index, n, streams, np.asarray(grouping.sizes), table, merged,
                                None if counted is None or cluster is None else (cluster, counted))

    return assess(ctx.schema, data, gate_plan, ctx.rng, sensitive=policy.data.sensitive,
                  require_baseline=bool(getattr(ctx, "require_baseline", False)), stats_of=stats_of)


def _cell_groups(members: np.ndarray | None) -> np.ndarray:
    """Each cell's group code, from a grouping's membership matrix ``(G, C)``."""
    assert members is not None
    return np.argmax(members, axis=0).astype(np.int64)


def _draft_encoding(task: str, policy: Any, classes: tuple[Any, ...] | None) -> Encoded | None:
    """The label codes' leading part, known before any prediction: the target's classes (then the
    positive label). Class views index them, so the family size is known before the pass."""
    if task in (REGRESSION, PER_EXAMPLE):
        return None
    pos = policy.model.positive_label if task == BINARY else None
    return _encode([np.asarray(list(classes or ()), dtype=object)], pos, classes)


def _encoding(parts: Sequence[FairPartial], task: str, positive_label: Any, classes: tuple[Any, ...] | None,
              paired: bool) -> Encoded:
    """The embedded run's label codes: classes, positive label, then labels in first-seen order."""
    arrays = rs.merged_labels([p.uniques for p in parts], paired)
    return _encode(arrays, positive_label if task == BINARY else None, classes)


def _data(task: str, positive_label: Any, classes: tuple[Any, ...] | None, encoded: Encoded | None,
          scored: tuple[bool, bool | None]) -> EvalData:
    """An :class:`EvalData` without rows: the task, labels, codes and which models give scores."""
    def stub(has_scores: bool | None) -> Predictions | None:
        if has_scores is None:
            return None
        return Predictions(np.zeros(0), np.zeros(0) if has_scores else None)

    candidate = stub(scored[0])
    assert candidate is not None
    return EvalData(task, np.zeros(0), candidate, stub(scored[1]), positive_label, classes, encoded)


def _table(counts: pd.DataFrame, cell_group: np.ndarray, grouping: Grouping, enc: Encoded, paired: bool) -> Any:
    """One grouping's :class:`~gates.groups.CellTable` from the merged (cell, y, candidate, baseline) counts."""
    from gates.groups import CellTable

    labels = pd.Index(list(enc.labels))
    k = len(enc.labels)
    kb = k if paired else 1
    g = cell_group[counts[rs.CELL].to_numpy(dtype=np.int64)]
    y = labels.get_indexer(counts[Y])
    c = labels.get_indexer(counts[C])
    b = labels.get_indexer(counts[B]) if paired else np.zeros(len(counts), dtype=np.int64)
    flat = ((g * k + y) * k + c) * kb + b
    dense = np.bincount(flat, weights=counts[rs.N].to_numpy(dtype=np.float64),
                        minlength=grouping.n_groups * k * k * kb)
    return CellTable(grouping.keys, tuple(enc.labels), dense.round().astype(np.int64).reshape(grouping.n_groups,
                                                                                              k, k, kb))


def _merge_sums(found: Sequence[tuple[np.ndarray, PoissonSums]], rows: int) -> tuple[np.ndarray, PoissonSums]:
    """Add the partitions' group sums, and their Poisson sums about one centre: the overall mean,
    as the embedded gate centres them."""
    plain = np.sum([f[0] for f in found], axis=0)
    centre = plain.sum(axis=0) / rows
    return plain, merge_all([PoissonSums(rs.shift(s, centre), centre) for _, s in found])
