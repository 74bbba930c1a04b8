"""The regression gate on partitioned data: confusion-family metrics from joint cells merged across partitions.

Each partition is predicted where it lives (prediction columns read, or the shipped model run)
and yields, per slicing, its counts over (slice values, y, candidate label, baseline label) and
the labels in the order it first saw them. The client adds the counts, rebuilds exactly the code
space and slice order an embedded run builds (first appearance over the rows in source order;
slices sorted as ``groupby`` sorts them), and hands the dense cells to
:func:`gates.estimates.cell_estimates` with the embedded run's seeded stream: point values and
multinomial intervals are the embedded run's. The checks are planned and decided by the
regression gate's own code.

Row means (a per_example task's score means among them), ROC AUC and average precision
(binary) come from the partials of :mod:`gates.checks.regression_scores`, measured in the same
pass. A policy naming any other
metric (one-vs-rest AUC) gets one
``regression.not_distributable`` error instead, so the multiple-testing family is never
silently smaller than the embedded run's.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from gates.checks import regression as rg
from gates.checks import regression_scores as rs
from gates.estimates import Slicing, cell_estimates
from gates.metrics import encode_labels
from gates.clusters import NORMAL_MIN_CLUSTERS
from gates.per_example import PER_EXAMPLE
from gates.results import CheckResult
from gates.stats.weights import stream_seed

if TYPE_CHECKING:
    from gates.datasets import Partition
    from gates.engine.context import PartitionedContext
    from gates.engine.shipping import ModelHandle
    from gates.policy import Policy

MERGEABLE = ("confusion", "churn")
MSG_FAMILIES = ("the regression gate runs on the dask engine for confusion-matrix metrics, churn, row means "
                "and binary ROC AUC / average precision; {names} have no mergeable form here (docs/scale.md)")
#: internal column names of the count tables: a NUL never starts a data column's name, so no slice column collides
Y, C, B, N = "\0y", "\0candidate", "\0baseline", "\0n"


@dataclass(frozen=True)
class CellPlan:
    """What a worker needs to count one partition: the prediction plan and the slicings' columns."""

    predict: Any  # gates.engine.worker.PredictPlan
    slicings: tuple[tuple[str, ...], ...]
    confusion: bool = True
    scores: rs.ScorePlan | None = None


@dataclass(frozen=True)
class CellPartial:
    """One partition's labels in first-seen order and, per slicing, its sparse joint counts."""

    uniques: rs.Uniques
    counts: tuple[pd.DataFrame, ...]
    scores: rs.ScorePartial | None = None


def count_partition(part: Partition, plan: CellPlan, candidate_bytes: ModelHandle | None = None,
                    baseline_bytes: ModelHandle | None = None) -> CellPartial | None:
    """Predict one partition's scored rows and return their joint counts per slicing, None when it
    has no row with a target (runs on a worker)."""
    found = rs.predicted(part, plan.predict, candidate_bytes, baseline_bytes)
    if found is None:
        return None
    frame, y, cand, base = found
    scored = None
    if plan.scores is not None:
        preds = {"candidate": cand} if base is None else {"candidate": cand, "baseline": base}
        scored = rs.measure_scores(plan.scores, frame, y, preds, plan.scores.offsets[part.offset])
    if not plan.confusion:
        return CellPartial(([], [], None), (), scored)
    table = pd.DataFrame({Y: y, C: cand.labels})
    if base is not None:
        table[B] = base.labels
    labels = [c for c in (Y, C, B) if c in table.columns]
    counts = []
    for cols in ((), *plan.slicings):
        present = [c for c in cols if c in frame.columns]
        if len(present) < len(cols):
            counts.append(pd.DataFrame())
            continue
        joint = pd.concat([frame[present].reset_index(drop=True), table], axis=1)
        counts.append(joint.groupby([*present, *labels], dropna=False, sort=False).size().rename(N).reset_index())
    return CellPartial(rs.labels_seen(y, cand, base), tuple(counts), scored)


def distributable(section: rg.RegressionPlan | Mapping[str, Any], policy: Policy) -> str | None:
    """Return why the regression gate cannot run from partition partials under ``policy``, or None when it can.

    :func:`run` reports this reason as its ``not_distributable`` error; the embedded engine asks
    it before choosing to read the data in batches.
    """
    from gates import per_example
    from gates.metrics import metric_registry

    gate_plan = rg.as_plan(section)
    task = policy.model.task
    is_per_example = task == per_example.PER_EXAMPLE
    metrics = per_example.score_metrics(policy) if is_per_example else metric_registry()
    named = [metrics[m.name] for m in gate_plan.metrics]
    others = sorted(m.name for m in named if m.family not in MERGEABLE and rs.family_of(m, task) is None)
    if others:
        return MSG_FAMILIES.format(names=", ".join(others))
    return None


def _all_large(cells: rs.Cells, min_slice_size: int) -> bool:
    """True when every slice that gets checked has enough clusters for the cluster-robust normal
    interval (the embedded gate's rule, from the merged cluster counts)."""
    assert cells.clusters is not None
    for slicing, counts in zip(cells.slicings, cells.clusters):
        if slicing is None or counts is None:
            continue
        for n_clusters in counts:
            checked = not slicing.columns or n_clusters >= min_slice_size
            if checked and n_clusters < NORMAL_MIN_CLUSTERS:
                return False
    return True


def run(ctx: PartitionedContext, section: rg.RegressionPlan | Mapping[str, Any]) -> list[CheckResult]:
    """Return the regression gate's checks from merged cells, or its not_distributable error.

    ``section`` is the gate's plan (a section mapping is planned here).
    """
    from gates.checks import not_distributable
    from gates.engine.worker import ship_models

    gate_plan = rg.as_plan(section)
    reason = distributable(gate_plan, ctx.policy)
    if reason is not None:
        return [not_distributable("regression", gate_plan, reason)]
    metrics = rg.metrics_of(ctx)
    task = ctx.policy.model.task
    named = [metrics[m.name] for m in gate_plan.metrics]
    settings = gate_plan.settings
    plan, handles = ship_models(ctx)
    paired = ctx.has_baseline
    scored = list({m.name: m for m in named if rs.family_of(m, task) is not None}.values())
    confusion = any(m.family in MERGEABLE for m in named)
    score_plan, cells, checks, n_boot = None, None, None, 0
    if scored:
        cells, missing = rs.cells(ctx, settings, y_sum=rs.needs_y_mean(m.name for m in scored))
        cluster = ctx.policy.data.cluster
        checks = rg._plan(gate_plan, cells.slicings, metrics, None,
                          None if cells.clusters is None else [None if c is None else c.tolist()
                                                               for c in cells.clusters])
        n_boot = settings.intervals.replicates(rg.family_size(settings, checks, missing))
        normal = task == PER_EXAMPLE and cells.clusters is not None and _all_large(cells, settings.min_slice_size)
        small = cells.small() if cluster is None else np.ones(cells.n_cells, dtype=bool)
        score_plan = rs.ScorePlan(
            tuple(m.name for m in scored if m.family in rs.ROW_MEAN),
            tuple(m.name for m in scored if m.family in rs.RANKS), cells.columns, cells.combos, small,
            n_boot, stream_seed(ctx.policy.seed, rg.GATE_NAME, "rows"), getattr(ctx.policy.data, "id", None),
            task, ctx.policy.model.positive_label if task == rg.BINARY else None,
            ctx.classes if task not in (rg.REGRESSION, PER_EXAMPLE) else None, cells.y_mean, cells.offsets,
            cluster, normal)
    cell_plan = CellPlan(plan, settings.slicings, confusion, score_plan)
    everything, tables = ctx.engine.fold_keeping(count_partition, ctx.eval_partitions, _keep_table, _append, [],
                                                 plan=ctx.engine.share(cell_plan), **handles)
    kept = rs.KeptTables.of(ctx.engine, [None if p is None else p.scores for p in everything], tables)
    parts = [p for p in everything if p is not None]
    estimates: dict[tuple[int, str], Any] = {}
    problems: dict[tuple[str, str], tuple[str, str]] = {}
    if confusion:
        enc = _encoding(ctx, parts, paired)
        slicings, missing, counted = _cells(ctx, settings, parts, enc, paired)
        if checks is None:
            checks = rg._plan(gate_plan, slicings, metrics, None)
            n_boot = settings.intervals.replicates(rg.family_size(settings, checks, missing))
        estimates.update(_estimates(ctx, slicings, checks, counted, enc.positive, paired, n_boot))
    if cells is not None and checks is not None:
        slicings = cells.slicings
        found = [p.scores for p in parts if p.scores is not None]
        n_classes = len(ctx.classes) if task == rg.MULTICLASS else 0
        roles = ("candidate", "baseline") if paired else ("candidate",)
        problems = (rs.per_example_problems(ctx.policy, scored, found, cells.n_scored, roles) if task == PER_EXAMPLE
                    else rs.problems(scored, found, task, cells.n_scored, n_classes, roles))
        here = {(c.slicing, c.metric.name) for c in checks}
        assert score_plan is not None
        found_estimates = rs.estimates(cells, scored, found, problems, paired, kept=kept,
                                       clustered=score_plan.cluster is not None, normal=score_plan.normal)
        estimates.update({k: v for k, v in found_estimates.items() if k in here})
    assert checks is not None
    measured = rg.Measured(settings, slicings, missing, problems, estimates, paired,
                           bool(getattr(ctx, "require_baseline", False)), n_boot)
    return rg._decide(measured, checks)


def _keep_table(part: CellPartial | None) -> tuple[CellPartial | None, pd.DataFrame | None]:
    """Split a partition's partial into what the client merges and its score table, which stays
    on the worker for ranking (:func:`gates.engine.ranges.ranked`)."""
    if part is None or part.scores is None or part.scores.table is None:
        return part, None
    return replace(part, scores=part.scores.without_table()), part.scores.table


def _append(kept: list[CellPartial | None], part: CellPartial | None) -> list[CellPartial | None]:
    kept.append(part)
    return kept


def _encoding(ctx: PartitionedContext, parts: Sequence[CellPartial], paired: bool) -> Any:
    """The embedded run's label codes: first appearance over y, then candidate, then baseline labels."""
    arrays = rs.merged_labels([p.uniques for p in parts], paired)
    task = ctx.policy.model.task
    positive = ctx.policy.model.positive_label if task == rg.BINARY else None
    return encode_labels(*arrays, positive_label=positive, classes=ctx.classes)


def _cells(ctx: PartitionedContext, settings: rg.Settings, parts: Sequence[CellPartial], enc: Any, paired: bool
           ) -> tuple[list[Slicing | None], dict[int, str], list[np.ndarray | None]]:
    labels = pd.Index(list(enc.labels))
    k, kb = enc.k, enc.k if paired else 1
    slicings: list[Slicing | None] = []
    missing: dict[int, str] = {}
    cells: list[np.ndarray | None] = []
    for i, cols in enumerate(((), *settings.slicings)):
        absent = [c for c in cols if c not in ctx.schema.columns]
        if absent:
            missing[i] = absent[0]
            slicings.append(None)
            cells.append(None)
            continue
        total = pd.concat([p.counts[i] for p in parts], ignore_index=True)
        keys = [*cols, Y, C, *([B] if paired else [])]
        total = total.groupby(keys, dropna=False, sort=False)[N].sum().reset_index()
        slicing, s = rs.slice_codes(cols, total)
        y = labels.get_indexer(total[Y])
        c = labels.get_indexer(total[C])
        b = labels.get_indexer(total[B]) if paired else np.zeros(len(total), dtype=np.int64)
        flat = ((s * k + y) * k + c) * kb + b
        dense = np.bincount(flat, weights=total[N].to_numpy(dtype=np.float64),
                            minlength=slicing.n_slices * k * k * kb).reshape(slicing.n_slices, k, k, kb)
        slicing = replace(slicing, counts=dense.sum(axis=(1, 2, 3)).astype(np.int64))  # no row codes on the client
        slicings.append(slicing)
        cells.append(dense)
    return slicings, missing, cells


def _estimates(ctx: PartitionedContext, slicings: list[Slicing | None], checks: Sequence[Any],
               cells: list[np.ndarray | None], positive: int, paired: bool, n_boot: int) -> dict[tuple[int, str], Any]:
    """Per (slicing, metric): the embedded gate's estimates, from the cells, with its seeded streams."""
    wanted = {c.metric.name: c.metric for c in checks}.values()
    usable = [m for m in wanted if m.family in MERGEABLE and not (m.needs_baseline and not paired)]
    out: dict[tuple[int, str], Any] = {}
    for i, (slicing, table) in enumerate(zip(slicings, cells)):
        if slicing is None or table is None or not usable:
            continue
        rng = rg._streams(ctx, "&".join(slicing.columns))("confusion")
        found = cell_estimates(table, usable, positive, paired, n_boot, rng)
        here = {c.metric.name for c in checks if c.slicing == i}
        out.update({(i, name): value for name, value in found.items() if name in here})
    return out
