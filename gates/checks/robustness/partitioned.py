"""The robustness gate on partitioned data: perturbed copies scored where the rows live, partials merged.

A first pass reads the scored rows' perturbed columns and counts them: the clean columns'
:class:`~gates.perturbations.ColumnSummary` s (moments, range, value counts where a median, mode or
levels are needed), merged size-tiered in partition order, and each partition's first scored row (the row
keys' offset). The client settles the statistics (median, mode, levels) and ships them with the
models. Each worker then perturbs its rows with the row-keyed draws an embedded run makes for
those rows (:class:`~gates.perturbations.Draws`), predicts the clean rows and every copy once per
model, and returns partials:

* per metric and prediction set: the joint label cells (confusion metrics), the
  :class:`~gates.stats.Moments` of the per-row statistics (row means), a score table (binary ROC
  AUC and average precision); flip and score-shift sums;
* for ``no_worse_than_baseline``: the joint cells over (y, clean and perturbed candidate, clean and
  perturbed baseline) for confusion metrics, drawn on the client with the embedded contrast's
  generator (identical replicates); the moments of the per-row differences of flips or shifts
  (the paired normal interval); Poisson sums under the embedded contrast's row- or cluster-keyed weights for
  row means (the same replicates up to float rounding); for binary ROC AUC a table of rows per
  distinct (label, the four sets' scores), whose DeLong covariance is the embedded one;
* invariance ``method: replace`` and directional counts (the step: the merged std).

The client merges them and decides with the embedded gate's own :class:`Judge` and result code,
so ids, messages and details are the embedded ones. What has no partition-local form is an
``error`` check with reason ``not_distributable`` for exactly those checks: invariance
``method: shuffle`` (a permutation across all rows), ``no_worse_than_baseline`` on average
precision (each replicate reweights every row and re-ranks), and rank metrics of a multiclass task.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from gates.checks import REASON_NOT_DISTRIBUTABLE
from gates.checks.regression_scores import shift
from gates.checks.robustness import (
    clean_failed,
    no_model,
    perturbation_columns,
    results,
)
from gates.checks.robustness._decide import Judge
from gates.checks.robustness._invariance import (
    DirectionalCounts,
    InvarianceCounts,
    directional_error,
    directional_result,
    directional_step,
    invariance_error,
    invariance_result,
    invariance_threshold,
    invariance_unused,
)
from gates.checks.robustness._measure import MSG_NOT_COMPUTABLE, Point, Scorer, Side, scalar_score
from gates.checks.robustness._plan import (
    GATE_NAME,
    NWB,
    DirectionalPlan,
    InvariancePlan,
    PerturbationPlan,
    Plan,
    Threshold,
    as_plan,
)
from gates.clusters import METHOD_BOOTSTRAP as METHOD_CLUSTERS
from gates.context import EvalContext, Predictions, target_missing
from gates.engine.folding import Tiered
from gates.contrasts import METHOD_PAIRED_NORMAL, cell_replicates, row_weight_seed
from gates.estimates import METHOD_DELONG, METHOD_MULTINOMIAL, METHOD_ROWS, ap_influence
from gates.intervals import Estimate
from gates.metrics import BINARY, CENTRED_ROW_STATS, Metric, encode_labels, metric_registry
from gates.perturbations import ColumnStats, ColumnSummary, is_numeric, perturb, replace_column, step_column
from gates.results import CheckResult, Outcome
from gates.stats import Moments, PoissonSums, merge_all

if TYPE_CHECKING:
    from gates.datasets import Partition
    from gates.engine.context import PartitionedContext
    from gates.engine.shipping import ModelHandle
    from gates.policy import Policy

MSG_SHUFFLE = ("invariance method shuffle permutes '{col}' across all rows, which has no partition-local form "
               "on the dask engine; use method: replace, or engine kind local (docs/scale.md)")
MSG_NWB_RANKS = ("no_worse_than_baseline on {measure} reweights every row and re-ranks the scores in each "
                 "replicate; it has no mergeable form on the dask engine (docs/scale.md)")
MSG_RANKS_TASK = ("{measure} of a {task} task has no mergeable form on the dask engine; binary ROC AUC and "
                  "average precision do (docs/scale.md)")
#: column names of the label tables and score tables (a NUL never starts a data column's name)
N, YPOS, SC = "\0n", "\0ypos", "\0sc"
SETS = ("\0s0", "\0s1", "\0s2", "\0s3")
#: whether a perturbation's statistics need the column's value counts (median, mode, levels); scale_shift reads none
_COUNTS = {"category_swap": True, "feature_dropout": True, "gaussian_noise": False, "scale_shift": False,
           "outliers": False, "missing": True}


# --------------------------------------------------------------------------- mergeable partials


@dataclass(frozen=True)
class LabelCells:
    """Rows counted per distinct tuple of label values (one column per label set), and each set's
    labels in order of first appearance: the embedded run's label code space is rebuilt from them."""

    table: pd.DataFrame
    uniques: tuple[tuple[Any, ...], ...]

    @classmethod
    def of(cls, *labels: np.ndarray) -> LabelCells:
        cols = {str(i): np.asarray(a) for i, a in enumerate(labels)}
        table = pd.DataFrame(cols).groupby(list(cols), dropna=False, sort=False).size().rename(N).reset_index()
        return cls(table, tuple(tuple(pd.unique(np.asarray(a)).tolist()) for a in labels))

    def merge(self, other: LabelCells) -> LabelCells:
        cols = [c for c in self.table.columns if c != N]
        table = pd.concat([self.table, other.table], ignore_index=True)
        table = table.groupby(cols, dropna=False, sort=False)[N].sum().reset_index()
        uniques = tuple(tuple(pd.unique(np.asarray([*a, *b], dtype=object)).tolist())
                        for a, b in zip(self.uniques, other.uniques, strict=True))
        return LabelCells(table, uniques)

    def encoded(self, sets: Sequence[int], positive_label: Any, classes: tuple[Any, ...] | None
                ) -> tuple[list[np.ndarray], int, int, np.ndarray]:
        """Return the label sets' codes per table row, the code space's size, the positive code and the counts,
        in the code space ``encode_labels`` builds over those sets' rows."""
        enc = encode_labels(*[_tight(self.uniques[i]) for i in sets], positive_label=positive_label, classes=classes)
        index = pd.Index(list(enc.labels))
        codes = [np.asarray(index.get_indexer(self.table[str(i)]), dtype=np.int64) for i in sets]
        return codes, enc.k, enc.positive, self.table[N].to_numpy(dtype=np.float64)


def _tight(values: Sequence[Any]) -> np.ndarray:
    try:
        return np.asarray(list(values))
    except (ValueError, TypeError):
        return np.asarray(list(values), dtype=object)


@dataclass(frozen=True)
class MetricPartial:
    """One metric of one prediction set on one partition: its mergeable form, or the problem computing it."""

    cells: LabelCells | None = None
    moments: Moments | None = None
    scores: pd.DataFrame | None = None
    problem: str | None = None

    def merge(self, other: MetricPartial) -> MetricPartial:
        if self.problem is not None or other.problem is not None:
            return self if self.problem is not None else other
        if self.cells is not None and other.cells is not None:
            return MetricPartial(cells=self.cells.merge(other.cells))
        if self.moments is not None and other.moments is not None:
            return MetricPartial(moments=self.moments.merge(other.moments))
        assert self.scores is not None and other.scores is not None
        table = pd.concat([self.scores, other.scores], ignore_index=True)
        return MetricPartial(scores=table.groupby([YPOS, SC], dropna=False, sort=False)[N].sum().reset_index())

    def value(self, metric: Metric, positive_label: Any, classes: tuple[Any, ...] | None) -> float:
        if self.problem is not None:
            return float("nan")
        if self.cells is not None:
            assert metric.counts is not None
            (y, pred), k, positive, n = self.cells.encoded((0, 1), positive_label, classes)
            table = np.bincount(y * k + pred, weights=n, minlength=k * k).reshape(1, k, k)
            return float(np.asarray(metric.counts(table, positive))[0])
        if self.moments is not None:
            assert metric.from_means is not None
            return float(np.asarray(metric.from_means(self.moments.mean[:1]))[0])
        assert self.scores is not None
        y = self.scores[YPOS].to_numpy(dtype=bool)
        sc, w = self.scores[SC].to_numpy(dtype=np.float64), self.scores[N].to_numpy(dtype=np.float64)
        if metric.family == "auc":
            from gates.stats.ranks import delong_counts

            return float(delong_counts(y, sc, w)[0][0])
        return float(ap_influence(y, sc, w)[0])


def row_stats(metric: Metric, y: np.ndarray, pred: Predictions, positive_label: Any,
              classes: tuple[Any, ...] | None, y_mean: float) -> np.ndarray:
    """A row-mean metric's per-row statistics (``r2``: about the whole data's target mean, so batches add up)."""
    centred = CENTRED_ROW_STATS.get(metric.name)
    assert metric.row_stats is not None
    found = metric.row_stats(y, pred, positive_label, classes) if centred is None else centred(y, pred, y_mean)
    values = np.asarray(found, dtype=np.float64)
    return values.reshape(len(y), -1)


def metric_partial(metric: Metric, y: np.ndarray, pred: Predictions, positive_label: Any,
                   classes: tuple[Any, ...] | None, y_mean: float = 0.0) -> MetricPartial:
    """Return one partition's partial of ``metric`` (runs on a worker)."""
    if metric.needs == "scores" and pred.scores is None:
        try:  # the embedded run's own complaint (no scores), word for word
            metric.compute(y, pred, positive_label=positive_label, classes=classes)
        except Exception as exc:  # noqa: BLE001 -- reported as this measure's problem
            return MetricPartial(problem=str(exc))
    try:
        if metric.family == "confusion":
            return MetricPartial(cells=LabelCells.of(y, np.asarray(pred.labels)))
        if metric.family == "row_mean":
            return MetricPartial(moments=Moments.of(row_stats(metric, y, pred, positive_label, classes, y_mean)))
        table = pd.DataFrame({YPOS: np.asarray(y) == positive_label, SC: np.asarray(pred.scores, dtype=np.float64)})
        return MetricPartial(scores=table.groupby([YPOS, SC], dropna=False, sort=False).size().rename(N).reset_index())
    except Exception as exc:  # noqa: BLE001 -- reported as this measure's problem
        return MetricPartial(problem=str(exc))


@dataclass(frozen=True)
class SidePartial:
    """One model on one perturbed copy of one partition: predict error, problems, metric partials, own sums."""

    rows: int
    error: str | None = None
    reason: str = ""
    problems: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, MetricPartial] = field(default_factory=dict)
    own: Mapping[str, float] = field(default_factory=dict)  # flip_rate / score_shift: sum over rows

    def merge(self, other: SidePartial) -> SidePartial:
        if self.error is not None or other.error is not None:
            return self if self.error is not None else other
        problems = {**other.problems, **self.problems}
        metrics = {m: p.merge(other.metrics[m]) for m, p in self.metrics.items() if m in other.metrics}
        own = {m: v + other.own[m] for m, v in self.own.items() if m in other.own}
        return SidePartial(self.rows + other.rows, None, "", problems, metrics, own)


@dataclass(frozen=True)
class VersusPartial:
    """One point's paired partials: joint cells of the 5 label sets, per-row difference moments, Poisson sums."""

    joint: LabelCells | None = None
    diffs: Mapping[str, Moments] = field(default_factory=dict)
    sums: Mapping[str, PoissonSums] = field(default_factory=dict)
    scores: pd.DataFrame | None = None  # rows per distinct (label, the 4 sets' scores): binary ROC AUC

    def merge(self, other: VersusPartial) -> VersusPartial:
        joint = None if self.joint is None or other.joint is None else self.joint.merge(other.joint)
        diffs = {m: d.merge(other.diffs[m]) for m, d in self.diffs.items() if m in other.diffs}
        sums = {m: s for m, s in self.sums.items() if m in other.sums}
        scores = None
        if self.scores is not None and other.scores is not None:
            table = pd.concat([self.scores, other.scores], ignore_index=True)
            scores = table.groupby([YPOS, *SETS], dropna=False, sort=False)[N].sum().reset_index()
        return VersusPartial(joint, diffs, {m: _add_sums(s, other.sums[m]) for m, s in sums.items()}, scores)


def _add_sums(a: PoissonSums, b: PoissonSums) -> PoissonSums:
    """Merge two batches' Poisson sums taken about their own centres, about the first's centre (exact)."""
    return a.merge(PoissonSums(shift(b, a.centre), a.centre))


@dataclass(frozen=True)
class PointTask:
    """What a worker measures at one severity of one perturbation."""

    name: str
    columns: tuple[str, ...]
    severity: float
    params: Mapping[str, Any]
    scope: str
    metrics: tuple[str, ...]
    with_baseline: bool
    joint: bool
    ranked: bool  # a no_worse_than_baseline check on binary ROC AUC: the 4 sets' score table
    own_versus: tuple[str, ...]
    row_versus: Mapping[str, int]  # metric -> Poisson seed of its no_worse_than_baseline check


@dataclass(frozen=True)
class WorkPlan:
    """What every worker needs: prediction plan, statistics, row keys' offsets and the tasks."""

    predict: Any  # gates.engine.worker.PredictPlan
    offsets: Mapping[int, int]
    stats: ColumnStats
    clean_metrics: Mapping[str, tuple[str, ...]]  # role -> metrics measured on its clean predictions
    points: tuple[PointTask, ...]
    invariance: tuple[str, ...]  # method: replace columns
    directional: tuple[tuple[str, str, float, float], ...]  # column, direction, step, tolerance
    tolerance: Mapping[str, float]
    n_boot: int
    y_mean: float  # the scored rows' target mean (regression; the centre of r2's row statistics)


@dataclass(frozen=True)
class Partial:
    """One partition's measurements."""

    rows: int
    clean_errors: Mapping[str, str]
    clean: Mapping[str, Mapping[str, MetricPartial]]
    points: tuple[tuple[Mapping[str, SidePartial], VersusPartial | None], ...]
    invariance: Mapping[str, InvarianceCounts | tuple[str, str]]
    directional: Mapping[str, DirectionalCounts | tuple[str, str]]


# --------------------------------------------------------------------------- worker side


def summarise(part: Partition, target: str, columns: Mapping[str, bool], y_sum: bool
              ) -> tuple[int, float, dict[str, ColumnSummary]]:
    """Return a partition's scored rows, their target's sum (with ``y_sum``) and the summaries of
    ``columns`` (True: with value counts; runs on a worker)."""
    frame = part.read(list(dict.fromkeys([target, *columns])))
    frame = frame[~target_missing(frame[target])]
    total = float(frame[target].to_numpy(dtype=np.float64).sum()) if y_sum else 0.0
    return len(frame), total, {c: ColumnSummary.of(frame[c], counts=want) for c, want in columns.items()}


def measure_partition(part: Partition, plan: WorkPlan, candidate_bytes: ModelHandle | None = None,
                      baseline_bytes: ModelHandle | None = None) -> Partial | None:
    """Perturb, predict and measure one partition's scored rows; None when it has none (runs on a worker)."""
    from gates.engine.worker import read_scored, worker_context

    frame = read_scored(part, plan.predict.policy)
    if frame.empty:
        return None
    ctx = worker_context(plan.predict, frame, candidate_bytes, baseline_bytes)
    s = Scorer(ctx, offset=plan.offsets[part.offset])
    s.stats = plan.stats
    y = ctx.y_true
    registry = metric_registry()
    clean: dict[str, dict[str, MetricPartial]] = {}
    for role, names in plan.clean_metrics.items():
        pred = s.clean_predictions(role)  # type: ignore[arg-type]
        if pred is not None:
            clean[role] = {m: metric_partial(registry[m], y, pred, s.positive_label, s.classes, plan.y_mean)
                           for m in names}
    if s.clean_predictions("candidate") is None:
        return Partial(len(frame), dict(s.clean_errors), {}, (), {}, {})
    points = tuple(_point(s, y, task, plan.n_boot, plan.y_mean) for task in plan.points)
    invariance: dict[str, InvarianceCounts | tuple[str, str]] = {}
    clean_c = s.clean_predictions("candidate")
    assert clean_c is not None
    for col in plan.invariance:
        side = s.predict("candidate", replace_column(s.X, col, s.draws(GATE_NAME, "invariance", col), s.stats),
                         f"invariance[{col}]", "invariance")
        invariance[col] = ((side.error or "", side.reason) if side.pred is None
                           else InvarianceCounts.of(clean_c, side.pred, s.task, plan.tolerance[col]))
    directional: dict[str, DirectionalCounts | tuple[str, str]] = {}
    pos = ctx.policy.model.positive_label
    for col, direction, step, tolerance in plan.directional:
        side = s.predict("candidate", step_column(s.X, col, step), f"directional[{col}]", "directional")
        if side.pred is None:
            directional[col] = (side.error or "", side.reason)
            continue
        change = scalar_score(side.pred, s.task, pos) - scalar_score(clean_c, s.task, pos)
        directional[col] = DirectionalCounts.of(change, s.X[col].notna().to_numpy(), direction, tolerance)
    return Partial(len(frame), dict(s.clean_errors), clean, points, invariance, directional)


def _point(s: Scorer, y: np.ndarray, task: PointTask, n_boot: int, y_mean: float
           ) -> tuple[dict[str, SidePartial], VersusPartial | None]:
    registry = metric_registry()
    copy = perturb(s.X, task.name, list(task.columns), task.severity,
                   s.draws(GATE_NAME, task.name, str(float(task.severity))), s.stats, task.params)
    roles = ("candidate", "baseline") if task.with_baseline else ("candidate",)
    sides: dict[str, Side] = {r: s.measure(r, s.predict(r, copy, task.scope, task.name), [], task.scope)  # type: ignore[arg-type]
                              for r in roles}
    out = {}
    for role, side in sides.items():
        if side.pred is None:
            out[role] = SidePartial(len(y), side.error, side.reason)
            continue
        metrics = {m: metric_partial(registry[m], y, side.pred, s.positive_label, s.classes, y_mean)
                   for m in task.metrics}
        out[role] = SidePartial(len(y), None, "", dict(side.problems), metrics,
                                {m: float(rows.sum()) for m, rows in side.rows.items()})
    cand, base = sides["candidate"], sides.get("baseline")
    if base is None or cand.pred is None or base.pred is None:
        return out, None
    clean_c, clean_b = s.clean_predictions("candidate"), s.clean_predictions("baseline")
    assert clean_c is not None and clean_b is not None
    sets = [clean_c, cand.pred, clean_b, base.pred]
    joint = LabelCells.of(y, *[np.asarray(p.labels) for p in sets]) if task.joint else None
    diffs = {m: Moments.of(cand.rows[m] - base.rows[m]) for m in task.own_versus
             if m in cand.rows and m in base.rows}
    sums = {}
    for name, seed in task.row_versus.items():
        metric = registry[name]
        try:
            values = np.hstack([row_stats(metric, y, p, s.positive_label, s.classes, y_mean) for p in sets])
        except Exception:  # noqa: BLE001 -- the check is an error from the side's problems
            continue
        sums[name] = PoissonSums.of(s.weight_keys, values, n_boot=n_boot, seed=seed, centre=values.mean(axis=0))
    scores = None
    if task.ranked and all(p.scores is not None for p in sets):
        table = pd.DataFrame({YPOS: np.asarray(y) == s.positive_label,
                              **{c: np.asarray(p.scores, dtype=np.float64) for c, p in zip(SETS, sets, strict=True)}})
        scores = table.groupby([YPOS, *SETS], dropna=False, sort=False).size().rename(N).reset_index()
    return out, VersusPartial(joint, diffs, sums, scores)


# --------------------------------------------------------------------------- client side


class PartitionedScorer:
    """The client's stand-in for :class:`Scorer`: the schema's feature columns, merged statistics and
    measures; the checks are decided by the embedded :class:`Judge` from it."""

    def __init__(self, ctx: PartitionedContext) -> None:
        self.ctx = ctx
        self.task = ctx.policy.model.task
        self.features = _features(ctx)
        self.X = ctx.schema[self.features]
        self.stats = ColumnStats(summaries={})
        self.rows = 0
        #: the cluster column (``data.cluster``): the workers key the Poisson weights by it (``bootstrap-clusters``)
        self.cluster: str | None = getattr(ctx.policy.data, "cluster", None)
        self.clean: dict[str, dict[str, MetricPartial]] = {}
        self._clean_values: dict[tuple[str, str], float] = {}
        self.clean_errors: dict[str, str] = {}
        self.points: dict[tuple[str, float], Point] = {}
        self.invariance: dict[str, InvarianceCounts | tuple[str, str]] = {}
        self.directional: dict[str, DirectionalCounts | tuple[str, str]] = {}

    @property
    def n_rows(self) -> int:
        return self.rows

    @property
    def positive_label(self) -> Any:
        return self.ctx.policy.model.positive_label if self.task == BINARY else None

    @property
    def classes(self) -> tuple[Any, ...] | None:
        return None if self.task == "regression" else self.ctx.classes

    def clean_value(self, role: str, name: str) -> float:
        """Return ``role``'s metric from the merged clean partials (computed once, as embedded)."""
        key = (role, name)
        if key not in self._clean_values:
            self._clean_values[key] = self._clean_value(role, name)
        return self._clean_values[key]

    def _clean_value(self, role: str, name: str) -> float:
        partial = self.clean.get(role, {}).get(name)
        if partial is None:
            return float("nan")
        try:
            return partial.value(metric_registry()[name], self.positive_label, self.classes)
        except Exception:  # noqa: BLE001 -- an undefined clean metric makes its checks errors, as embedded
            return float("nan")

    def refuses(self, t: Threshold) -> str | None:
        """Why a threshold has no mergeable form here (None when it has one)."""
        return refusal(t, self.task)

    def paired(self, pt: Point, measure: str) -> Estimate:
        moments = pt.merged.diffs[measure]
        n = float(moments.n[0])
        if n < 2:
            return Estimate(float("nan"), METHOD_PAIRED_NORMAL)
        sd = math.sqrt(max(float(moments.m2[0, 0, 0]) / (n - 1), 0.0))
        return Estimate(float(moments.mean[0, 0]), METHOD_PAIRED_NORMAL, se=sd / math.sqrt(n))

    def contrast(self, metric: Metric, pt: Point, weights: np.ndarray, values: Sequence[float], *, n_boot: int,
                 rng: np.random.Generator) -> Estimate:
        value = float(np.dot(weights, values))
        if not math.isfinite(value):
            return Estimate(float("nan"), "none")
        merged: VersusPartial = pt.merged
        if metric.family == "confusion":
            assert merged.joint is not None
            codes, k, positive, counts = merged.joint.encoded(range(5), self.positive_label, self.classes)
            joint = np.zeros(len(counts), dtype=np.int64)
            for c in codes:
                joint = joint * k + c
            order = np.argsort(joint, kind="stable")
            reps = cell_replicates(metric, joint[order], counts[order], k, 5, positive, weights, n_boot, rng)
            return Estimate(value, METHOD_MULTINOMIAL, replicates=reps)
        if metric.family == "auc":
            from gates.stats.ranks import delong_counts

            assert merged.scores is not None
            table = merged.scores
            _, cov = delong_counts(table[YPOS].to_numpy(dtype=bool), table[list(SETS)].to_numpy(dtype=np.float64).T,
                                   table[N].to_numpy(dtype=np.float64))
            if not np.isfinite(cov).all():
                return Estimate(value, METHOD_DELONG, se=float("nan"))
            return Estimate(value, METHOD_DELONG, se=math.sqrt(max(float(weights @ cov @ weights), 0.0)))
        assert metric.from_means is not None
        means = merged.sums[metric.name].means()[:, 0, :]
        width = means.shape[1] // 4
        reps = sum(wj * np.asarray(metric.from_means(means[:, j * width:(j + 1) * width]))
                   for j, wj in enumerate(weights))
        return Estimate(value, METHOD_CLUSTERS if self.cluster is not None else METHOD_ROWS,
                        replicates=np.asarray(reps, dtype=np.float64))


def _features(ctx: PartitionedContext) -> list[str]:
    """The models' feature columns, found and checked as the embedded context does, on the zero-row schema."""
    view = EvalContext(ctx.policy)
    view.__dict__.update(frame=ctx.schema, candidate_model=ctx.model("candidate"), baseline_model=ctx.model("baseline"),
                         resolved_baseline=ctx.resolved_baseline)
    return list(view.features)


def refusal(t: Threshold, task: str) -> str | None:
    """Why threshold ``t`` has no mergeable form for ``task`` (None when it has one)."""
    if t.is_own:
        return None
    metric = metric_registry()[t.measure]
    if metric.family in ("auc", "ranking") and task != BINARY:
        return MSG_RANKS_TASK.format(measure=t.measure, task=task)
    if t.kind == NWB and metric.family == "ranking":
        return MSG_NWB_RANKS.format(measure=t.measure)
    return None


def distributable(section: Plan | Mapping[str, Any], policy: Policy) -> str | None:
    """Return why some robustness check cannot run from partition partials under ``policy``, or None
    when all can: the thresholds :func:`refusal` refuses and invariance ``method: shuffle``, which
    :func:`run` reports as ``not_distributable``. The embedded engine asks this before reading in batches."""
    plan = as_plan(section)
    shuffled = next((inv.column for inv in plan.invariance if inv.method == "shuffle"), None)
    if shuffled is not None:
        return MSG_SHUFFLE.format(col=shuffled)
    task = policy.model.task
    return next((r for p in plan.perturbations for t in p.thresholds for r in [refusal(t, task)] if r), None)


def run(ctx: PartitionedContext, section: Plan | Mapping[str, Any]) -> list[CheckResult]:
    """Return the robustness gate's checks from partition partials (``section``: the gate's plan)."""
    from gates.engine.worker import ship_models

    plan = as_plan(section)
    skipped = no_model(ctx, plan)
    if skipped is not None:
        return skipped
    s = PartitionedScorer(ctx)
    judge = Judge(s, plan)  # type: ignore[arg-type]
    columns = {p.name: perturbation_columns(s, p) for p in plan.perturbations}  # type: ignore[arg-type]
    needs = _needs(s, plan, columns)
    target = ctx.policy.data.target
    assert target is not None
    found = ctx.engine.map(summarise, ctx.eval_partitions, target=target, columns=needs,
                           y_sum=s.task == "regression")
    scored = [n for n, _, _ in found]
    s.rows = sum(scored)
    y_mean = sum(t for _, t, _ in found) / s.rows if s.rows else 0.0
    offsets = dict(zip((p.offset for p in ctx.eval_partitions), np.r_[0, np.cumsum(scored)[:-1]].tolist()))
    summaries = {c: merge_summaries([f[c] for n, _, f in found if n]) for c in needs} if s.rows else {}
    s.stats = ColumnStats(summaries=summaries)
    steps = {d.column: directional_step(judge, d) for d in plan.directional}
    settled = ColumnStats(summaries={c: _settle(c, v, plan, columns) for c, v in summaries.items()})
    tasks = _tasks(judge, plan, columns)
    with_baseline = any(t.with_baseline for t in tasks)
    predict, handles = ship_models(ctx)
    if not with_baseline:
        handles.pop("baseline_bytes", None)
    clean_metrics = {"candidate": _metrics_of(s, plan)}
    if with_baseline:
        clean_metrics["baseline"] = clean_metrics["candidate"]
    work = WorkPlan(predict, offsets, settled, clean_metrics, tasks,
                    tuple(i.column for i in plan.invariance if i.method != "shuffle" and i.column in s.X.columns),
                    tuple((d.column, d.direction, step, d.tolerance) for d in plan.directional
                          for step in [steps[d.column]] if not isinstance(step, CheckResult)),
                    {i.column: i.tolerance for i in plan.invariance}, plan.n_boot, y_mean)
    tables = ScoreTables()
    parts = ctx.engine.fold(measure_partition, ctx.eval_partitions, tables.keep, [], plan=ctx.engine.share(work),
                            **handles)
    failed = next((p.clean_errors["candidate"] for p in parts if "candidate" in p.clean_errors), None)
    if failed is not None:
        return clean_failed(plan, failed)
    _merge(s, tasks, parts, tables.result())
    return results(judge, point_of=_point_of, invariance_of=_invariance_of,  # type: ignore[arg-type]
                   directional_of=lambda j, d: _directional_of(j, d, steps[d.column]))


def _needs(s: PartitionedScorer, plan: Plan, columns: Mapping[str, tuple[list[str], str | None]]) -> dict[str, bool]:
    """The columns whose clean statistics the run reads, and whether each needs value counts."""
    needs: dict[str, bool] = {}

    def want(col: str, counts: bool) -> None:
        needs[col] = needs.get(col, False) or counts

    for p in plan.perturbations:
        cols, problem = columns[p.name]
        if problem is not None or (p.name == "missing" and p.params.get("impute", "none") == "none"):
            continue
        for col in cols:
            if p.name in _COUNTS and p.name != "scale_shift":
                want(col, _COUNTS[p.name])
    for inv in plan.invariance:
        if inv.method != "shuffle" and inv.column in s.X.columns:
            want(inv.column, True)
    for d in plan.directional:
        if d.step is None and d.column in s.X.columns and is_numeric(s.X[d.column]):
            want(d.column, False)
    return needs


def merge_summaries(found: Sequence[ColumnSummary]) -> ColumnSummary:
    """Return the merged summary of one column's partition summaries (in partition order), merged
    size-tiered (:class:`~gates.engine.folding.Tiered`): a running total of the value counts would
    re-merge every distinct value seen so far with each partition, O(P^2) over P partitions."""
    tiers: Tiered[ColumnSummary] = Tiered(ColumnSummary.merge, _n_entries)
    for summary in found:
        tiers.add(summary)
    merged = tiers.result()
    if merged is None:
        raise ValueError("nothing to merge")
    return merged


def _n_entries(summary: ColumnSummary) -> int:
    """A summary's size for :class:`Tiered`: its distinct values (1 without value counts)."""
    return 1 if summary.counts is None else max(len(summary.counts), 1)


def _settle(column: str, summary: ColumnSummary, plan: Plan, columns: Mapping[str, tuple[list[str], str | None]]
            ) -> ColumnSummary:
    """The summary the workers get: medians and modes computed here, value counts kept only for levels."""
    levels = any(inv.column == column and inv.method != "shuffle" for inv in plan.invariance) or any(
        p.name == "category_swap" and column in columns[p.name][0] for p in plan.perturbations)
    return summary.settled(keep_counts=levels)


def _metrics_of(s: PartitionedScorer, plan: Plan) -> tuple[str, ...]:
    """The registry metrics measured on the clean predictions (each perturbation's usable ones)."""
    names = [t.measure for p in plan.perturbations for t in p.thresholds if not t.is_own and s.refuses(t) is None]
    return tuple(dict.fromkeys(names))


def _tasks(judge: Judge, plan: Plan, columns: Mapping[str, tuple[list[str], str | None]]) -> tuple[PointTask, ...]:
    s = judge.scorer
    registry = metric_registry()
    out = []
    for p in plan.perturbations:
        cols, problem = columns[p.name]
        if problem is not None:
            continue
        versus = any(t.kind == NWB for t in p.thresholds)
        with_baseline = versus and judge.baseline_problem() is None
        usable = [t for t in p.thresholds if s.refuses(t) is None]
        metrics = tuple(dict.fromkeys(t.measure for t in usable if not t.is_own))
        nwb = [t for t in usable if t.kind == NWB] if with_baseline else []
        for severity in p.severities:
            rows = {t.measure: row_weight_seed(s.ctx.rng(str(p.check_id(t, severity)))) for t in nwb
                    if not t.is_own and registry[t.measure].family == "row_mean"}
            out.append(PointTask(p.name, tuple(cols), float(severity), dict(p.params), p.scope(severity), metrics,
                                 with_baseline,
                                 any(not t.is_own and registry[t.measure].family == "confusion" for t in nwb),
                                 any(not t.is_own and registry[t.measure].family == "auc" for t in nwb),
                                 tuple(dict.fromkeys(t.measure for t in nwb if t.is_own)), rows))
    return tuple(out)


class ScoreTables:
    """A fold's merge: keeps each partition's partial with its score tables (rows per distinct
    scores) taken out into size-tiered merges, keyed by where they sit in the partial."""

    def __init__(self) -> None:
        self._tiers: dict[tuple[Any, ...], Tiered[pd.DataFrame]] = {}

    def _take(self, key: tuple[Any, ...], table: pd.DataFrame) -> pd.DataFrame:
        self._tiers.setdefault(key, Tiered(_merge_scores, len)).add(table)
        return table.iloc[:0]

    def _metrics(self, key: tuple[Any, ...], metrics: Mapping[str, MetricPartial]) -> dict[str, MetricPartial]:
        return {m: p if p.scores is None else replace(p, scores=self._take((*key, m), p.scores))
                for m, p in metrics.items()}

    def keep(self, kept: list[Partial], part: Partial | None) -> list[Partial]:
        """Append ``part`` with empty score tables in place of its own (merged here instead)."""
        if part is None:
            return kept
        clean = {role: self._metrics(("clean", role), found) for role, found in part.clean.items()}
        points = []
        for i, (sides, versus) in enumerate(part.points):
            sides = {role: replace(side, metrics=self._metrics(("side", i, role), side.metrics))
                     for role, side in sides.items()}
            if versus is not None and versus.scores is not None:
                versus = replace(versus, scores=self._take(("versus", i), versus.scores))
            points.append((sides, versus))
        kept.append(replace(part, clean=clean, points=tuple(points)))
        return kept

    def result(self) -> dict[tuple[Any, ...], pd.DataFrame]:
        """Return the merged score table at each place."""
        out = {}
        for key, tiers in self._tiers.items():
            table = tiers.result()
            assert table is not None
            out[key] = table
        return out


def _merge_scores(older: pd.DataFrame, newer: pd.DataFrame) -> pd.DataFrame:
    """Return the score table of two tables' rows (older first): counts of equal entries added, in
    first appearance order, so any grouping of consecutive partitions gives the same table."""
    cols = [c for c in older.columns if c != N]
    return pd.concat([older, newer], ignore_index=True).groupby(cols, dropna=False, sort=False)[N].sum().reset_index()


def _scored(partial: MetricPartial, tables: Mapping[tuple[Any, ...], pd.DataFrame], key: tuple[Any, ...]
            ) -> MetricPartial:
    """``partial`` with its merged score table put back (a problem or another form stays as it is)."""
    if partial.problem is not None or partial.scores is None or key not in tables:
        return partial
    return replace(partial, scores=tables[key])


def _merge(s: PartitionedScorer, tasks: Sequence[PointTask], parts: Sequence[Partial],
           tables: Mapping[tuple[Any, ...], pd.DataFrame] | None = None) -> None:
    """Merge the partitions' partials in partition order into the scorer's measures.

    ``tables``: the score tables already merged (:class:`ScoreTables`), the partials holding
    empty ones in their place."""
    registry = metric_registry()
    tables = tables or {}
    for role in ("candidate", "baseline"):
        errors = [p.clean_errors[role] for p in parts if role in p.clean_errors]
        if errors:
            s.clean_errors[role] = errors[0]
            continue
        found = [p.clean[role] for p in parts if role in p.clean]
        if found:
            s.clean[role] = {m: _scored(merge_all([f[m] for f in found]), tables, ("clean", role, m))
                             for m in found[0]}
    for i, task in enumerate(tasks):
        sides: dict[str, Side] = {}
        for role in ("candidate", "baseline") if task.with_baseline else ("candidate",):
            side = merge_all([p.points[i][0][role] for p in parts])
            if side.error is not None:
                sides[role] = Side(error=side.error, reason=side.reason)
                continue
            out = Side(measured=True, problems=dict(side.problems))
            for m in task.metrics:
                partial = _scored(side.metrics[m], tables, ("side", i, role, m))
                if partial.problem is not None:
                    out.problems[m] = MSG_NOT_COMPUTABLE.format(measure=m, scope=task.scope, problem=partial.problem)
                    continue
                try:
                    out.values[m] = partial.value(registry[m], s.positive_label, s.classes)
                except Exception as exc:  # noqa: BLE001 -- reported as this measure's error, as embedded
                    out.problems[m] = MSG_NOT_COMPUTABLE.format(measure=m, scope=task.scope, problem=exc)
            for m, total in side.own.items():
                out.values[m] = total / side.rows if side.rows else float("nan")
            sides[role] = out
        versus = [p.points[i][1] for p in parts]
        merged = merge_all([v for v in versus if v is not None]) if all(v is not None for v in versus) else None
        if merged is not None and merged.scores is not None and ("versus", i) in tables:
            merged = replace(merged, scores=tables[("versus", i)])
        s.points[(task.name, task.severity)] = Point(task.severity, sides["candidate"], sides.get("baseline"), merged)
    for col in {c for p in parts for c in p.invariance}:
        s.invariance[col] = _merge_counts([p.invariance[col] for p in parts])
    for col in {c for p in parts for c in p.directional}:
        s.directional[col] = _merge_counts([p.directional[col] for p in parts])


def _merge_counts(found: Sequence[Any]) -> Any:
    errors = [f for f in found if isinstance(f, tuple)]
    return errors[0] if errors else merge_all(list(found))


def _point_of(s: PartitionedScorer, p: PerturbationPlan, columns: list[str], severity: float,
              with_baseline: bool) -> Point:
    point = s.points[(p.name, float(severity))]
    return point if with_baseline else Point(point.severity, point.candidate, None, None)


def _invariance_of(judge: Judge, inv: InvariancePlan) -> CheckResult:
    unused = invariance_unused(judge, inv)
    if unused is not None:
        return unused
    if inv.method == "shuffle":
        return judge.result(inv.check_id, None, Outcome.ERROR, MSG_SHUFFLE.format(col=inv.column),
                            REASON_NOT_DISTRIBUTABLE, is_blocking=inv.is_blocking,
                            threshold=invariance_threshold(inv))
    found = judge.scorer.invariance[inv.column]  # type: ignore[attr-defined]
    if isinstance(found, tuple):
        return invariance_error(judge, inv, *found)
    return invariance_result(judge, inv, found)


def _directional_of(judge: Judge, d: DirectionalPlan, step: Any) -> CheckResult:
    if isinstance(step, CheckResult):
        return step
    found = judge.scorer.directional[d.column]  # type: ignore[attr-defined]
    if isinstance(found, tuple):
        return directional_error(judge, d, *found)
    return directional_result(judge, d, step, found)


__all__ = ["LabelCells", "MetricPartial", "PartitionedScorer", "measure_partition", "run", "summarise"]
