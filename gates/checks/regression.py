"""The regression gate: is the candidate at least as good as the baseline, on the same rows?

One check per (metric, threshold kind, slice): ``min``/``max`` bound the candidate's point value;
``max_drop``, ``max_relative_drop`` and ``min_gain`` bound the paired difference
``d = candidate - baseline`` (oriented by the metric's direction, so a drop always means "got
worse"), decided by ``point`` or ``non_inferiority`` on the difference's interval (DESIGN section 5).
The baseline-relative interval checks form one family for ``multiple_testing``. Estimates come from
:mod:`gates.estimates`, decisions from :mod:`gates.decisions`.
"""
from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gates import per_example
from gates.checks import GateKind, GateSetup, NamedColumn, Spec, listed_columns
from gates.clusters import NORMAL_MIN_CLUSTERS, ClusterIndex, normal_mean
from gates.context import EvalContext, Predictions
from gates.identity import CheckId, Reason
from gates.estimates import (
    SliceEstimate,
    Slicing,
    paired_estimates_many,
    slice_by,
    whole,
)
from gates.intervals import Estimate, negate
from gates.stats import Correction, FamilyDecision, IntervalSettings, Member, Rule, decide_family
from gates.stats.family import decide_bounds, to_status
from gates.stats.weights import eval_row_keys, stream_seed
from gates.metrics import (
    BINARY,
    MULTICLASS,
    REGRESSION,
    Metric,
    metric_names,
    metric_registry,
)
from gates.results import CheckResult, Outcome

GATE_NAME = "regression"
ABSOLUTE = ("min", "max")
RELATIVE = ("max_drop", "max_relative_drop", "min_gain")
DEFAULTS: Mapping[str, Any] = {**IntervalSettings().as_dict(), "min_slice_size": 200, "severity": "block"}

REASON_PASS = Reason.WITHIN_THRESHOLD
REASON_FAIL = Reason.THRESHOLD_BREACHED
REASON_INCONCLUSIVE = Reason.INCONCLUSIVE
REASON_NO_BASELINE = Reason.NO_BASELINE
REASON_BASELINE_REQUIRED = Reason.BASELINE_REQUIRED
REASON_SLICE_TOO_SMALL = Reason.SLICE_TOO_SMALL
REASON_MISSING_SCORES = Reason.MISSING_SCORES
REASON_MISSING_COLUMN = Reason.MISSING_COLUMN
REASON_UNDEFINED = Reason.UNDEFINED
REASON_BAD_DATA = Reason.BAD_DATA

MSG_UNKNOWN_METRIC = "unknown metric '{name}'{hint}; known metrics for {task}: {known}"
MSG_WRONG_TASK = "metric '{name}' is not defined for {task}{hint}; metrics for {task}: {known}"
MSG_CHURN_KINDS = "churn takes only 'max' (the largest share of rows whose label may differ), got '{kind}'"
MSG_MIN_ABOVE_MAX = "min ({lo}) is above max ({hi})"
MSG_UNKNOWN_SCORE = "unknown metric '{name}'{hint}; the per_example scores are: {known}"
MSG_CLUSTER_FAMILY = ("data.cluster: {name} cannot resample clusters yet; with clusters the regression gate "
                      "takes per_example scores and row-mean metrics ({row_means})")
MSG_BETTER_TASK = "better applies to per_example scores; {name}'s direction is known ({way} is better)"
MSG_NO_BASELINE = "no baseline model, so there is nothing to compare with; check skipped"
MSG_BASELINE_REQUIRED = "no baseline model, and --require-baseline is set"
MSG_SLICE_TOO_SMALL = "slice has {rows} {unit}, fewer than min_slice_size {min}; check skipped"
MSG_NO_SCORES = "{metric} needs scores but the {role} gives none (a model without predict_proba, or no scores column)"
MSG_SCORE_SHAPE = "{metric} needs {expected} from the {role}, got an array of shape {shape}"
MSG_NOT_PROBA = "{metric} needs probabilities in [0, 1] from the {role}, got values in [{lo:.4g}, {hi:.4g}]"
MSG_SCORES_MISSING_VALUES = "the {role}'s scores contain missing values"
MSG_MISSING_COLUMN = "slice column '{column}' is not in the eval data"
MSG_UNDEFINED = "{metric} is undefined on these rows (for example a single class, or too few positives)"
MSG_BAD_DATA = "{metric} could not be computed: {problem}"
MSG_BOUND_PASS = "{metric} {observed} is within the {kind} {value} (interval {ci})"
MSG_BOUND_FAIL = "{metric} {observed} is {side} the {kind} {value} (interval {ci})"
MSG_MARGIN_PASS = "interval {ci} of the change lies {good} the limit {limit} ({threshold})"
MSG_MARGIN_FAIL = "interval {ci} of the change lies entirely {bad} the limit {limit} ({threshold}): worse than allowed"
MSG_MARGIN_INCONCLUSIVE = "interval {ci} straddles the limit {limit} ({threshold}); half-width {hw} {cmp} margin {margin}"
MSG_TOO_FEW_ROWS = ": too few rows to demonstrate a {margin} margin"
MSG_POINT_PASS = "change {delta} is {good} the limit {limit} ({threshold}; point decision, interval {ci})"
MSG_POINT_FAIL = "change {delta} is {bad} the limit {limit} ({threshold}; point decision, interval {ci})"
MSG_HOLM_STOPPED = "; would pass at its own level, but Holm's step-down stopped at a check with a smaller p-value"


# --------------------------------------------------------------------------- settings and plan


@dataclass(frozen=True)
class Settings:
    """The gate-level options of a ``gates.regression`` section, defaults filled in."""

    intervals: IntervalSettings
    min_slice_size: int
    severity: str
    slicings: tuple[tuple[str, ...], ...]

    @classmethod
    def of(cls, spec: Spec) -> Settings:
        slicings = tuple(tuple(s) if isinstance(s, list) else (s,) for s in spec.get("slices", ()))
        return cls(IntervalSettings.of(spec), int(spec.get("min_slice_size", DEFAULTS["min_slice_size"])),
                   spec.get("severity", DEFAULTS["severity"]), slicings)

    @property
    def rule(self) -> Rule:
        return self.intervals.decision

    @property
    def confidence(self) -> float:
        return self.intervals.confidence

    @property
    def on_inconclusive(self) -> str:
        return self.intervals.on_inconclusive

    @property
    def correction(self) -> Correction:
        return self.intervals.multiple_testing


@dataclass(frozen=True)
class MetricPlan:
    """One configured metric: its thresholds in config order (kind, value) and its resolved severity."""

    name: str
    thresholds: tuple[tuple[str, float], ...]
    is_blocking: bool


@dataclass(frozen=True)
class RegressionPlan:
    """A validated regression section: the gate's settings and its metrics, severities resolved."""

    settings: Settings
    metrics: tuple[MetricPlan, ...]


def parse_plan(spec: Spec) -> RegressionPlan:
    """Return the plan of a schema-valid, validated section."""
    settings = Settings.of(spec)
    metrics = tuple(
        MetricPlan(name, tuple((kind, float(value)) for kind, value in thresholds.items()
                               if kind not in ("severity", "better")),
                   thresholds.get("severity", settings.severity) == "block")
        for name, thresholds in (spec.get("metrics") or {}).items())
    return RegressionPlan(settings, metrics)


def make_plan(spec: Spec, setup: GateSetup) -> RegressionPlan:
    """Return the section's plan after :func:`validate` (the gate's ``plan`` hook, called once at load)."""
    validate(spec, setup)
    return parse_plan(spec)


def as_plan(section: RegressionPlan | Spec) -> RegressionPlan:
    """Return ``section`` when it is a plan, else the plan of the (validated) mapping."""
    return section if isinstance(section, RegressionPlan) else parse_plan(section)


@dataclass(frozen=True)
class Check:
    """One planned check: a metric, a threshold kind and value, and a slice of ``rows`` rows.

    ``slicing`` indexes the gate's slicings (0: all rows); ``slice`` is the slice within it (-1
    when the slicing's column is missing).
    """

    metric: Metric
    kind: str
    value: float
    is_blocking: bool
    slicing: int
    slice: int
    rows: int
    check_id: CheckId
    scope: Mapping[str, Any]
    clusters: int | None = None

    @property
    def id(self) -> str:
        return str(self.check_id)

    @property
    def is_relative(self) -> bool:
        return self.kind in RELATIVE or self.metric.needs_baseline

    def threshold(self) -> dict[str, float]:
        return {self.kind: self.value}


# --------------------------------------------------------------------------- validate


def validate(spec: Spec, setup: GateSetup) -> None:
    """Reject unknown metrics, metrics not defined for the task, and impossible thresholds."""
    registry = metric_registry()
    known = metric_names(setup.task)
    for name, thresholds in spec.get("metrics", {}).items():
        path = (GATE_NAME, "metrics", name)
        if setup.task == per_example.PER_EXAMPLE:
            if name not in setup.scores:
                raise setup.error(path, MSG_UNKNOWN_SCORE.format(name=name, hint=_did_you_mean(name, setup.scores),
                                                                 known=", ".join(setup.scores)))
            _validate_thresholds(name, thresholds, path, setup)
            continue
        if "better" in thresholds and name in registry:
            way = "higher" if registry[name].direction > 0 else "lower"
            raise setup.error((*path, "better"), MSG_BETTER_TASK.format(name=name, way=way))
        if name not in registry:
            hint = _did_you_mean(name, known)
            raise setup.error(path, MSG_UNKNOWN_METRIC.format(name=name, hint=hint, task=setup.task,
                                                              known=", ".join(known)))
        if setup.task not in registry[name].tasks:
            variants = [k for k in known if k.startswith(name + "_")]
            hint = f" (did you mean {' or '.join(repr(v) for v in variants)}?)" if variants else ""
            raise setup.error(path, MSG_WRONG_TASK.format(name=name, task=setup.task, hint=hint,
                                                          known=", ".join(known)))
        if setup.data.cluster is not None and registry[name].family != "row_mean":
            row_means = ", ".join(n for n in known if registry[n].family == "row_mean")
            raise setup.error(path, MSG_CLUSTER_FAMILY.format(name=name, row_means=row_means))
        _validate_thresholds(name, thresholds, path, setup)


def _validate_thresholds(name: str, thresholds: Mapping[str, Any], path: tuple[str, ...], setup: GateSetup) -> None:
    if name == "churn" and setup.task != per_example.PER_EXAMPLE:
        for kind in thresholds:
            if kind not in ("max", "severity"):
                raise setup.error((*path, kind), MSG_CHURN_KINDS.format(kind=kind))
    lo, hi = thresholds.get("min"), thresholds.get("max")
    if lo is not None and hi is not None and lo > hi:
        raise setup.error(path, MSG_MIN_ABOVE_MAX.format(lo=lo, hi=hi))


def _did_you_mean(word: str, options: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def declares_blocking(section: RegressionPlan | Spec) -> bool:
    """True when some metric has a threshold whose severity (its own, else the gate's) is block."""
    return any(m.is_blocking for m in as_plan(section).metrics)


# --------------------------------------------------------------------------- run


@dataclass(frozen=True)
class Measured:
    """Everything measured before decisions: slicings, unusable scores, and the estimates."""

    settings: Settings
    slicings: list[Slicing | None]
    missing: Mapping[int, str]
    problems: Mapping[tuple[str, str], tuple[str, str]]
    estimates: Mapping[tuple[int, str], list[SliceEstimate] | str]
    has_baseline: bool
    require_baseline: bool
    n_boot: int


def run(ctx: EvalContext, section: RegressionPlan | Spec) -> list[CheckResult]:
    """Return one result per (metric, threshold kind, slice), in config order.

    ``section`` is the plan made at load (a section mapping is planned here, for direct callers).
    """
    measured, checks = measure(ctx, section)
    return _decide(measured, checks)


def measure(ctx: EvalContext, section: RegressionPlan | Spec) -> tuple[Measured, list[Check]]:
    """Return everything measured before decisions, and the planned checks (``calibrate`` reuses both)."""
    plan = as_plan(section)
    settings = plan.settings
    candidate = ctx.predictions("candidate")
    assert candidate is not None
    baseline = ctx.predictions("baseline")
    slicings, missing = _slicings(ctx, settings)
    checks = _plan(plan, slicings, metrics_of(ctx), ctx.clusters)
    problems = _problems(ctx, checks, candidate, baseline)
    n_boot = settings.intervals.replicates(family_size(settings, checks, missing))
    measured = Measured(settings, slicings, missing, problems,
                        _estimate(ctx, settings, slicings, checks, problems, candidate, baseline, n_boot),
                        baseline is not None, bool(getattr(ctx, "require_baseline", False)), n_boot)
    return measured, checks


def family_size(settings: Settings, checks: Sequence[Check], missing: Mapping[int, str]) -> int:
    """Return how many blocking interval checks the plan can have (replicates are drawn for that many).

    Checks of a missing slicing or a slice below ``min_slice_size`` never reach an interval.
    """
    return sum(1 for c in checks if c.kind in RELATIVE and c.is_blocking and c.slicing not in missing
               and (c.slicing == 0 or c.rows >= settings.min_slice_size))


def _slicings(ctx: EvalContext, settings: Settings) -> tuple[list[Slicing | None], dict[int, str]]:
    """Return the slicings (index 0: all rows; None where a column is missing) and the missing columns."""
    out: list[Slicing | None] = [whole(ctx.n_rows)]
    missing: dict[int, str] = {}
    for i, cols in enumerate(settings.slicings, start=1):
        absent = [c for c in cols if c not in ctx.frame.columns]
        if absent:
            missing[i] = absent[0]
        out.append(None if absent else slice_by(ctx.frame, cols))
    return out, missing


def metrics_of(ctx: EvalContext) -> Mapping[str, Metric]:
    """Return the metrics a policy may name: the registry, or a per_example policy's score metrics."""
    return per_example.score_metrics(ctx.policy) if ctx.is_per_example else metric_registry()


def _plan(plan: RegressionPlan, slicings: list[Slicing | None],
          metrics: Mapping[str, Metric] | None = None, clusters: ClusterIndex | None = None,
          cluster_counts: Sequence[Sequence[int] | None] | None = None) -> list[Check]:
    """Return every check of the plan: metric x threshold kind x (all rows, then each slice).

    With ``clusters`` (or each slicing's ``cluster_counts`` per slice, merged from partitions) a
    check counts its slice's clusters."""
    settings = plan.settings
    checks = []
    known = metric_registry() if metrics is None else metrics
    counts = cluster_counts if cluster_counts is not None else [
        None if sl is None or clusters is None else [clusters.count_in(rows) for rows in sl.rows] for sl in slicings]
    for planned in plan.metrics:
        name, blocking = planned.name, planned.is_blocking
        metric = known[name]
        for kind, value in planned.thresholds:
            base_id = CheckId(GATE_NAME, name, kind)
            for i, slicing in enumerate(slicings):
                if slicing is None:
                    scope = "&".join(settings.slicings[i - 1])
                    checks.append(Check(metric, kind, float(value), blocking, i, -1, 0, base_id.with_scope(scope), {}))
                    continue
                for s in range(slicing.n_slices):
                    cid = base_id.with_scope(slicing.scope(s)) if slicing.columns else base_id
                    n_clusters = None if counts[i] is None else counts[i][s]
                    checks.append(Check(metric, kind, float(value), blocking, i, s, int(slicing.sizes[s]), cid,
                                        slicing.values(s), n_clusters))
    return checks


def _problems(ctx: EvalContext, checks: Sequence[Check], candidate: Predictions,
              baseline: Predictions | None) -> dict[tuple[str, str], tuple[str, str]]:
    """Return why a (metric, role)'s scores cannot be used, as ``(reason, message)``."""
    out: dict[tuple[str, str], tuple[str, str]] = {}
    task = ctx.policy.model.task
    n_classes = len(ctx.classes) if task == MULTICLASS else 0
    for metric in {c.metric.name: c.metric for c in checks}.values():
        for role, pred in (("candidate", candidate), ("baseline", baseline)):
            if task == per_example.PER_EXAMPLE:
                if pred is not None and (msg := _per_example_problem(ctx, metric, pred, role)) is not None:
                    out[(metric.name, role)] = (REASON_BAD_DATA, msg)
                continue
            msg = None if pred is None else _score_problem(metric, pred, role, task, ctx.n_rows, n_classes)
            if msg is not None:
                assert pred is not None
                out[(metric.name, role)] = (REASON_MISSING_SCORES if pred.scores is None else REASON_BAD_DATA, msg)
    return out


def _per_example_problem(ctx: EvalContext, metric: Metric, pred: Predictions, role: str) -> str | None:
    """Return why a per_example score column cannot be averaged (missing values), else None."""
    column = getattr(ctx.policy.model, role).score_columns[metric.name]
    return per_example.score_problem(pred, column, metric.name, role)


@dataclass(frozen=True)
class ScoreSummary:
    """What :func:`_score_problem` needs to know of one model's scores: whether it gave any, their
    shape, whether every value is finite and their range. Summaries of disjoint rows merge."""

    present: bool
    shape: tuple[int, ...] = ()
    finite: bool = True
    lo: float = math.inf
    hi: float = -math.inf
    classes: tuple[Any, ...] | None = None

    @classmethod
    def of(cls, pred: Predictions) -> ScoreSummary:
        if pred.scores is None:
            return cls(False, classes=pred.classes)
        scores = np.asarray(pred.scores, dtype=np.float64)
        finite = bool(np.isfinite(scores).all())
        lo, hi = (float(scores.min()), float(scores.max())) if finite and scores.size else (math.inf, -math.inf)
        return cls(True, tuple(scores.shape), finite, lo, hi, pred.classes)

    def merge(self, other: ScoreSummary) -> ScoreSummary:
        """Return the summary of both batches' rows (stacked along the first axis)."""
        if not (self.present and other.present):
            return ScoreSummary(False, classes=self.classes)
        same = self.shape[1:] == other.shape[1:]
        shape = (self.shape[0] + other.shape[0], *self.shape[1:]) if same else (-1,)
        return ScoreSummary(True, shape, self.finite and other.finite, min(self.lo, other.lo),
                            max(self.hi, other.hi), self.classes)


def _score_problem(metric: Metric, pred: Predictions | ScoreSummary, role: str, task: str, n: int,
                   n_classes: int) -> str | None:
    """Return why ``pred`` (or the summary of its scores) cannot feed ``metric``, or None when it can."""
    if metric.needs != "scores":
        return None
    summary = pred if isinstance(pred, ScoreSummary) else ScoreSummary.of(pred)
    if not summary.present:
        return MSG_NO_SCORES.format(metric=metric.name, role=role)
    if task == BINARY and summary.shape != (n,):
        return MSG_SCORE_SHAPE.format(metric=metric.name, expected="one score per row", role=role,
                                      shape=summary.shape)
    width = len(summary.classes or ()) or n_classes
    if task == MULTICLASS and summary.shape != (n, width):
        return MSG_SCORE_SHAPE.format(metric=metric.name, expected=f"{width} probability columns, one per class",
                                      role=role, shape=summary.shape)
    if not summary.finite:
        return MSG_SCORES_MISSING_VALUES.format(role=role)
    if metric.family == "row_mean" and (summary.lo < 0 or summary.hi > 1):
        return MSG_NOT_PROBA.format(metric=metric.name, role=role, lo=summary.lo, hi=summary.hi)
    return None


def _estimate(ctx: EvalContext, settings: Settings, slicings: list[Slicing | None], checks: Sequence[Check],
              problems: Mapping[tuple[str, str], tuple[str, str]], candidate: Predictions,
              baseline: Predictions | None, n_boot: int) -> dict[tuple[int, str], list[SliceEstimate] | str]:
    """Return estimates per (slicing, metric), or the message of the error that prevented them.

    Metrics whose baseline cannot be used (no scores) are estimated for the candidate alone, so
    their floors still run. Each slicing draws from its own seeded stream, except the row-mean
    family, whose Poisson weights are hashed once from each row's key and the gate's seed and serve
    every slicing.
    """
    task = ctx.policy.model.task
    positive = ctx.policy.model.positive_label if task == BINARY else None
    classes = ctx.classes if task not in (REGRESSION, per_example.PER_EXAMPLE) else None
    present = {i: slicing for i, slicing in enumerate(slicings) if slicing is not None}
    wanted = {c.metric.name: c.metric for c in checks if c.slicing in present}.values()
    usable = [m for m in wanted if (m.name, "candidate") not in problems
              and not (m.needs_baseline and baseline is None)]
    paired = [m for m in usable if (m.name, "baseline") not in problems]
    alone = [m for m in usable if (m.name, "baseline") in problems and not m.needs_baseline]
    streams = [_streams(ctx, "&".join(slicing.columns)) for slicing in present.values()]
    out: dict[tuple[int, str], list[SliceEstimate] | str] = {}
    clusters = ctx.clusters
    if clusters is not None and ctx.is_per_example and _all_large(clusters, present.values(), settings.min_slice_size):
        for i, slicing in present.items():
            wanted_here = {c.metric.name for c in checks if c.slicing == i}
            for m in usable:
                if m.name in wanted_here:
                    base = baseline if m in paired else None
                    out[(i, m.name)] = _cluster_normal(ctx.y_true, candidate, base, m, slicing, clusters)
        return out
    for group, base in ((paired, baseline), (alone, None)):
        if not group:
            continue
        try:
            found: Sequence[Mapping[str, list[SliceEstimate] | str]] = paired_estimates_many(
                ctx.y_true, candidate, base, group, list(present.values()),
                n_boot=n_boot, rngs=streams, positive_label=positive, classes=classes, keys=eval_row_keys(ctx),
                seed=stream_seed(ctx.policy.seed, GATE_NAME, "rows"), clusters=clusters)
        except (ValueError, TypeError, IndexError) as exc:
            failed = {m.name: MSG_BAD_DATA.format(metric=m.name, problem=str(exc).splitlines()[0]) for m in group}
            found = [failed] * len(present)
        for i, by_metric in zip(present, found):
            wanted_here = {c.metric.name for c in checks if c.slicing == i}
            out.update({(i, name): value for name, value in by_metric.items() if name in wanted_here})
    return out


def _all_large(clusters: ClusterIndex, slicings: Sequence[Slicing], min_slice_size: int) -> bool:
    """True when every slice that gets checked has enough clusters for the cluster-robust normal interval."""
    for slicing in slicings:
        for rows in slicing.rows:
            n_clusters = clusters.count_in(rows)
            checked = not slicing.columns or n_clusters >= min_slice_size
            if checked and n_clusters < NORMAL_MIN_CLUSTERS:
                return False
    return True


def _cluster_normal(y: np.ndarray, candidate: Predictions, baseline: Predictions | None, metric: Metric,
                    slicing: Slicing, clusters: ClusterIndex) -> list[SliceEstimate]:
    """Return a per-example mean's slice estimates from the cluster-robust normal interval (no resampling)."""
    assert metric.row_stats is not None
    c = metric.row_stats(y, candidate, None, None)[:, 0]
    b = None if baseline is None else metric.row_stats(y, baseline, None, None)[:, 0]
    out = []
    for rows in slicing.rows:
        observed = normal_mean(c[rows], clusters.codes[rows])
        diff = None if b is None else normal_mean(c[rows] - b[rows], clusters.codes[rows])
        base = None if b is None else float(b[rows].mean())
        out.append(SliceEstimate(observed.value, base, observed, diff))
    return out


def _streams(ctx: EvalContext, key: str) -> Callable[[str], np.random.Generator]:
    """Return the seeded stream factory of one slicing: family name -> Generator."""
    return lambda family: ctx.rng(GATE_NAME, family, key)


# --------------------------------------------------------------------------- decisions


@dataclass(frozen=True)
class Pending:
    """A baseline-relative check waiting for its family's levels: the difference oriented so that
    higher is better, and the margin ``m`` such that it passes when ``d >= -m`` (``min_gain g``
    gives ``m = -g``)."""

    index: int
    check: Check
    est: SliceEstimate
    oriented: Estimate
    margin: float


def _decide(m: Measured, checks: Sequence[Check]) -> list[CheckResult]:
    results: list[CheckResult | None] = [None] * len(checks)
    family: list[Pending] = []
    for idx, check in enumerate(checks):
        found = _pending_or_result(m, idx, check)
        if isinstance(found, Pending):
            family.append(found)
        else:
            results[idx] = found
    for idx, result in _decide_family(m.settings, family):
        results[idx] = result
    return [r for r in results if r is not None]


def _pending_or_result(m: Measured, idx: int, check: Check) -> Pending | CheckResult:
    """Return a baseline-relative check's :class:`Pending` (decided with its family), else its result."""
    early = early_result(m, check)
    if early is not None:
        return early
    found = m.estimates[(check.slicing, check.metric.name)]
    assert not isinstance(found, str)
    est = found[check.slice]
    if check.kind in RELATIVE:
        return _pending(idx, check, est)
    return _bound_result(m.settings, check, est)


def interval_family(m: Measured, checks: Sequence[Check]) -> list[Pending]:
    """Return the baseline-relative checks that :func:`_decide_family` decides together, in check order.

    Checks skipped or in error before any interval (no baseline, small slice, unusable scores) are
    not in it; a member whose estimate is undefined is (it becomes an ``error`` result).
    """
    found = (_pending_or_result(m, idx, check) for idx, check in enumerate(checks))
    return [p for p in found if isinstance(p, Pending)]


def early_result(m: Measured, check: Check) -> CheckResult | None:
    """Return the result of a check decided before any interval (skips and errors), else None."""
    s = m.settings
    if check.slicing in m.missing:
        msg = MSG_MISSING_COLUMN.format(column=m.missing[check.slicing])
        return _result(check, s, Outcome.ERROR, REASON_MISSING_COLUMN, msg)
    size, unit = (check.rows, "rows") if check.clusters is None else (check.clusters, "clusters")
    if check.slicing > 0 and size < s.min_slice_size:
        msg = MSG_SLICE_TOO_SMALL.format(rows=size, unit=unit, min=s.min_slice_size)
        return _result(check, s, Outcome.SKIPPED, REASON_SLICE_TOO_SMALL, msg, details=_details(check))
    if (check.metric.name, "candidate") in m.problems:
        return _result(check, s, Outcome.ERROR, *m.problems[(check.metric.name, "candidate")])
    if check.is_relative and not m.has_baseline:
        if m.require_baseline:
            return _result(check, s, Outcome.FAIL, REASON_BASELINE_REQUIRED, MSG_BASELINE_REQUIRED)
        return _result(check, s, Outcome.SKIPPED, REASON_NO_BASELINE, MSG_NO_BASELINE)
    if check.is_relative and (check.metric.name, "baseline") in m.problems:
        return _result(check, s, Outcome.ERROR, *m.problems[(check.metric.name, "baseline")])
    found = m.estimates.get((check.slicing, check.metric.name))
    if isinstance(found, str):
        return _result(check, s, Outcome.ERROR, REASON_BAD_DATA, found)
    return None


def _pending(idx: int, check: Check, est: SliceEstimate) -> Pending:
    """Orient the difference so higher is better and turn the threshold into a margin."""
    assert est.difference is not None and est.baseline is not None
    oriented = est.difference if check.metric.direction > 0 else negate(est.difference)
    if check.kind == "max_drop":
        margin = check.value
    elif check.kind == "max_relative_drop":
        margin = check.value * abs(est.baseline)
    else:
        margin = -check.value
    return Pending(idx, check, est, oriented, margin)


def _decide_family(settings: Settings, family: Sequence[Pending]) -> list[tuple[int, CheckResult]]:
    """Decide the baseline-relative checks together (:func:`gates.stats.decide_family`): levels
    adjusted over the blocking members under either rule, then Holm's stop."""
    decided = decide_family(settings.intervals, members(family))
    out = []
    for p, d in zip(family, decided.members):
        if not p.oriented.is_defined:
            msg = MSG_UNDEFINED.format(metric=p.check.metric.name)
            out.append((p.index, _result(p.check, settings, Outcome.ERROR, REASON_UNDEFINED, msg,
                                         observed=p.est.candidate, baseline=p.est.baseline)))
        else:
            out.append((p.index, _margin_result(settings, decided, p, d)))
    return out


def members(family: Sequence[Pending]) -> list[Member]:
    """Return the family's members for :func:`gates.stats.decide_family` (``calibrate`` replays them)."""
    return [Member(p.oriented, p.margin, p.check.is_blocking) for p in family]


def _margin_result(settings: Settings, family: FamilyDecision, p: Pending, d: Any) -> CheckResult:
    """Build the result of a baseline-relative check; ``ci`` is on the change as measured."""
    check, direction = p.check, p.check.metric.direction
    lo, hi = d.interval
    ci = (lo, hi) if direction > 0 else (-hi, -lo)
    half_width = d.half_width
    delta = p.est.difference.value if p.est.difference is not None else float("nan")
    threshold = f"{check.kind} {_fmt(check.value)}"
    if check.kind == "max_relative_drop":
        threshold += f" of baseline {_fmt(p.est.baseline)} = {_fmt(p.margin)}"
    good, bad = ("above", "below") if direction > 0 else ("below", "above")
    words = {"ci": _fmt_ci(ci), "limit": _fmt(-p.margin * direction), "threshold": threshold, "good": good,
             "bad": bad, "delta": _fmt(delta)}
    message, reason = _margin_message(settings.rule, d.outcome, words, half_width, p, d.stopped)
    details = {**_details(check), "decision": settings.rule.value, "margin": p.margin,
               "multiple_testing": family.correction.value if check.is_blocking else Correction.NONE.value,
               "family_size": family.size}
    if p.oriented.replicates is not None:
        details["replicates"] = int(p.oriented.replicates.size)
    return _result(check, settings, d.outcome, reason, message, observed=p.est.candidate, baseline=p.est.baseline,
                   delta=delta, ci=ci, ci_method=p.oriented.method, half_width=half_width, adjusted=d.level,
                   details=details)


def _margin_message(rule: Rule, outcome: Outcome, words: Mapping[str, str], half_width: float | None,
                    p: Pending, stopped: bool) -> tuple[str, str]:
    """Return (message, reason) saying why a baseline-relative check came out as it did."""
    if outcome is Outcome.ERROR:
        return MSG_UNDEFINED.format(metric=p.check.metric.name), REASON_UNDEFINED
    if rule is Rule.POINT:
        passed = outcome is Outcome.PASS
        return (MSG_POINT_PASS if passed else MSG_POINT_FAIL).format(**words), REASON_PASS if passed else REASON_FAIL
    if outcome is Outcome.PASS:
        return MSG_MARGIN_PASS.format(**words), REASON_PASS
    if outcome is Outcome.FAIL:
        return MSG_MARGIN_FAIL.format(**words), REASON_FAIL
    hw = float("nan") if half_width is None else half_width
    text = MSG_MARGIN_INCONCLUSIVE.format(hw=_fmt(hw), cmp=">" if hw > p.margin else "<=", margin=_fmt(p.margin),
                                          **words)
    if p.check.kind != "min_gain" and hw > p.margin:
        text += MSG_TOO_FEW_ROWS.format(margin=_fmt(p.margin))
    return text + (MSG_HOLM_STOPPED if stopped else ""), REASON_INCONCLUSIVE


def _bound_result(settings: Settings, check: Check, est: SliceEstimate) -> CheckResult:
    """Decide a ``min``/``max`` check on the candidate's point value (churn: the share of changed labels)."""
    value = est.candidate
    outcome = decide_bounds(value, **({"minimum": check.value} if check.kind == "min" else {"maximum": check.value}))
    lo, hi = est.observed.interval(settings.confidence)
    half_width = (hi - lo) / 2 if math.isfinite(lo) and math.isfinite(hi) else None
    words = {"metric": check.metric.name, "observed": _fmt(value), "kind": check.kind, "value": _fmt(check.value),
             "ci": _fmt_ci((lo, hi)), "side": "below" if check.kind == "min" else "above"}
    if outcome is Outcome.ERROR:
        message, reason = MSG_UNDEFINED.format(metric=check.metric.name), REASON_UNDEFINED
    elif outcome is Outcome.PASS:
        message, reason = MSG_BOUND_PASS.format(**words), REASON_PASS
    else:
        message, reason = MSG_BOUND_FAIL.format(**words), REASON_FAIL
    details = _details(check)
    if est.observed.replicates is not None:
        details["replicates"] = int(est.observed.replicates.size)
    return _result(check, settings, outcome, reason, message, observed=value, baseline=est.baseline,
                   ci=(lo, hi), ci_method=est.observed.method, half_width=half_width,
                   adjusted=settings.confidence, details=details)


def _details(check: Check) -> dict[str, Any]:
    out: dict[str, Any] = {"rows": check.rows}
    if check.clusters is not None:
        out["clusters"] = check.clusters
    if check.scope:
        out["slice"] = dict(check.scope)
    return out


def _result(check: Check, settings: Settings, outcome: Outcome, reason: str, message: str, *,
            observed: float | None = None, baseline: float | None = None, delta: float | None = None,
            ci: tuple[float, float] | None = None, ci_method: str | None = None,
            half_width: float | None = None, adjusted: float | None = None,
            details: Mapping[str, Any] | None = None) -> CheckResult:
    has_ci = ci is not None and all(map(math.isfinite, ci))
    return CheckResult(
        id=check.id, check_id=check.check_id, gate=GATE_NAME,
        status=to_status(outcome, check.is_blocking, settings.on_inconclusive),
        blocking=check.is_blocking, message=message, reason=reason, observed=_num(observed),
        baseline=_num(baseline), delta=_num(delta), threshold=check.threshold(),
        ci=(float(ci[0]), float(ci[1])) if has_ci and ci is not None else None, ci_method=ci_method,
        half_width=_num(half_width), confidence=settings.confidence if ci_method else None,
        adjusted_confidence=adjusted if ci_method else None, details=dict(details or {}),
    )


def _num(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _fmt(x: float | None) -> str:
    return "undefined" if x is None or not math.isfinite(x) else f"{x:.4g}"


def _fmt_ci(ci: tuple[float, float]) -> str:
    return f"[{_fmt(ci[0])}, {_fmt(ci[1])}]"


def columns(spec: Spec) -> list[NamedColumn]:
    """Return the slice columns the section names."""
    return listed_columns(spec.get("slices"), ("slices",))


GATE = GateKind(GATE_NAME, "gate_regression.schema.json", validate, declares_blocking, run, columns,
                plan=make_plan)
