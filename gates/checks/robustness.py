"""The robustness gate: does the candidate hold up under the corruption real inputs suffer?

For each configured perturbation and severity the gate corrupts one copy of the model's feature
columns (seeded, :mod:`gates.perturbations`), scores it with one batched predict per model, and
measures against the *same model's* clean predictions (cached in the context, never recomputed):

* the drop of any registry metric (``max_drop``, ``max_relative_drop``; ``min``/``max`` bound the
  perturbed value), oriented by the metric's direction so a drop always means "got worse";
* ``flip_rate``: the share of rows whose predicted label changes;
* ``score_shift``: the mean absolute change of the score (binary: the positive-class
  probability; multiclass: half the L1 distance between probability vectors; regression: the
  prediction);
* ``no_worse_than_baseline``: the candidate's drop (or flip rate, or shift) minus production's under
  the identical perturbation, with a paired interval, decided like a regression check.

Invariance checks shuffle (or replace) a column and require predictions not to move; directional
checks raise a column by a step and require the score not to move against the stated direction.
Every check of a perturbation carries its severity curve in ``details`` for the reporters to chart.
"""
from __future__ import annotations

import difflib
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from gates.checks import GateKind, GateSetup, NamedColumn, Spec, listed_columns
from gates.context import EvalContext, Predictions, Role
from gates.contrasts import contrast_estimate, paired_mean
from gates.errors import UserError
from gates.identity import CheckId
from gates.intervals import Estimate, negate
from gates.metrics import Metric, metric_names, metric_registry
from gates.perturbations import (
    PERTURBATIONS,
    ColumnStats,
    is_numeric,
    perturb,
    replace_column,
    select_columns,
    shuffle_column,
    step_column,
)
from gates.results import CheckResult, Outcome, Status
from gates.stats.settings import WithIntervals
from gates.stats import IntervalSettings, Member, decide_family
from gates.stats.family import decide_bounds, to_status

GATE_NAME = "robustness"
NWB = "no_worse_than_baseline"
OWN_MEASURES = ("flip_rate", "score_shift")
METRIC_KINDS = ("min", "max", "max_drop", "max_relative_drop", NWB)
OWN_KINDS = ("max", NWB)

#: a score moving by at most this much counts as unchanged (float noise, not a dependence)
DEFAULT_TOLERANCE = 1e-6
DEFAULT_MAX_FRACTION = 0.0

# ---------------------------------------------------------------- messages (config)
MSG_EMPTY = "the robustness gate has no checks: add perturbations, invariance or directional"
MSG_UNKNOWN_MEASURE = ("unknown metric '{name}' for {task}{hint}; robustness takes flip_rate, score_shift "
                       "or one of {names}")
MSG_CHURN = "'{name}' compares two models; under a perturbation use flip_rate (a model against its own clean labels)"
MSG_KIND = "'{kind}' does not apply to {name}; use {allowed}"
MSG_NO_THRESHOLD = "no threshold: give at least one of {allowed}"
MSG_MARGIN_ALONE = "margin only applies with no_worse_than_baseline: true"
MSG_FLIP_REGRESSION = "flip_rate needs class labels; for regression use score_shift"
MSG_NO_THRESHOLDS = ("no thresholds for this perturbation: add metrics here or under gates.robustness.metrics, "
                     "e.g. flip_rate: {max: 0.05}")
MSG_METRICS_UNUSED = "metrics apply to perturbations, and none is configured"
MSG_NOT_FEATURE = "'{col}' is not one of data.features"
MSG_DIRECTIONAL_TASK = "directional checks need one score per row: binary classification or regression"

# ---------------------------------------------------------------- messages (results)
MSG_NO_MODEL = "the candidate is given as prediction columns, so it cannot be re-scored on perturbed inputs"
MSG_PER_EXAMPLE = ("a per_example candidate is its eval harness's scores: there is no model to perturb "
                   "and re-score, so robustness does not apply")
MSG_BASELINE_NO_MODEL = "the baseline is given as prediction columns, so it cannot be re-scored on perturbed inputs"
MSG_NO_BASELINE = "no baseline to compare with"
MSG_NO_BASELINE_REQUIRED = "no baseline to compare with, and a baseline is required"
MSG_CLEAN_FAILED = "the {role} model raised on the clean eval data: {problem}"
MSG_PREDICT_FAILED = "the {role} model raised on the {scope} copy: {problem}"
MSG_NAN_REJECTED = (
    "the {role} model cannot take missing values ({problem}); set impute: median or impute: mode "
    "under gates.robustness.perturbations.missing to measure imputed missing values instead"
)
MSG_UNKNOWN_COLUMN = "'{col}' ({where}) is not a model feature"
MSG_NOT_NUMERIC = "'{col}' ({where}) is not a number column, so {what} cannot apply to it"
MSG_NO_COLUMNS = "no model feature matches columns: {selector} ({where})"
MSG_NOT_COMPUTABLE = "{measure} is undefined under {scope}: {problem}"
MSG_NO_SCORES = "the model gives no scores"
MSG_NO_LABELS = "regression has no labels to flip"
MSG_DROP = "{measure} went from {clean:.4g} to {value:.4g} under {scope}: drop {drop:.4g} (max_drop {bound:g})"
MSG_RELATIVE_DROP = "{measure} went from {clean:.4g} to {value:.4g} under {scope}: {rel:.2%} drop (allowed {bound:.2%})"
MSG_BOUND = "{measure} is {value:.4g} under {scope} ({kind} {bound:g})"
MSG_FLIP = "{value:.2%} of predicted labels flipped under {scope} (max {bound:.2%})"
MSG_SHIFT = "scores moved by {value:.4g} on average under {scope} (max {bound:g})"
MSG_VERSUS = ("{what} under {scope}: candidate {cand:.4g}, baseline {base:.4g}, difference {delta:+.4g} "
              "[{lo:.4g}, {hi:.4g}] at {level:.1%}, margin {margin:g}")
MSG_STRADDLES = "; the interval straddles {bound:g} (half-width {hw:.4g})"
MSG_INVARIANCE = "{frac:.2%} of predictions moved by more than {tol:g} when '{col}' was {how} (max {bound:.2%})"
MSG_INVARIANCE_UNUSED = "'{col}' is not a model feature, so predictions cannot depend on it"
MSG_DIRECTIONAL = "{frac:.2%} of rows moved {against} when '{col}' rose by {step:.4g} (max {bound:.2%})"
MSG_CONSTANT = "'{col}' is constant in the eval data, so it has no default step; set step"


# ---------------------------------------------------------------- the plan (parsed section)


@dataclass(frozen=True)
class Threshold:
    """One check kind on one measure; ``bound`` is the limit, or the margin of no_worse_than_baseline."""

    measure: str
    kind: str
    bound: float
    is_blocking: bool

    @property
    def is_own(self) -> bool:
        return self.measure in OWN_MEASURES

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {NWB: True, "margin": self.bound} if self.kind == NWB else {self.kind: self.bound}
        if not self.is_blocking:
            out["severity"] = "warn"
        return out


@dataclass(frozen=True)
class PerturbationPlan:
    name: str
    columns: str | tuple[str, ...]
    severities: tuple[float, ...]
    params: Mapping[str, Any]
    thresholds: tuple[Threshold, ...]

    def scope(self, severity: float) -> str:
        return f"{self.name}={severity_label(severity)}"

    def check_id(self, t: Threshold, severity: float) -> CheckId:
        return CheckId(GATE_NAME, t.measure, t.kind, self.scope(severity))


@dataclass(frozen=True)
class InvariancePlan:
    column: str
    method: str
    tolerance: float
    max_fraction: float
    is_blocking: bool

    @property
    def check_id(self) -> CheckId:
        return CheckId(GATE_NAME, "invariance", scope=self.column)


@dataclass(frozen=True)
class DirectionalPlan:
    column: str
    direction: str
    step: float | None
    tolerance: float
    max_fraction: float
    is_blocking: bool

    @property
    def check_id(self) -> CheckId:
        return CheckId(GATE_NAME, "directional", scope=self.column)


@dataclass(frozen=True)
class Plan(WithIntervals):
    perturbations: tuple[PerturbationPlan, ...]
    invariance: tuple[InvariancePlan, ...]
    directional: tuple[DirectionalPlan, ...]
    intervals: IntervalSettings = IntervalSettings()

    @property
    def family_size(self) -> int:
        """The blocking ``no_worse_than_baseline`` checks: the family multiple testing adjusts over."""
        return sum(1 for p in self.perturbations for t in p.thresholds if t.kind == NWB and t.is_blocking
                   for _ in p.severities)

    @property
    def n_boot(self) -> int:
        """Replicates per interval: enough for the family's most adjusted level."""
        return self.intervals.replicates(self.family_size)

    def checks(self) -> Iterator[tuple[CheckId, bool, dict[str, Any]]]:
        """Yield (check id, is_blocking, threshold) of every check the plan makes, in report order."""
        for p in self.perturbations:
            for t in p.thresholds:
                for s in p.severities:
                    yield p.check_id(t, s), t.is_blocking, t.as_dict()
        for inv in self.invariance:
            yield inv.check_id, inv.is_blocking, {"max_fraction": inv.max_fraction, "tolerance": inv.tolerance}
        for d in self.directional:
            yield d.check_id, d.is_blocking, {"direction": d.direction, "max_fraction": d.max_fraction}


def severity_label(severity: float) -> str:
    """Return the shortest text that round-trips ``severity`` (``0.1``, ``100``), for check ids."""
    return np.format_float_positional(float(severity), trim="-")


def _blocks(own: str | None, inherited: bool) -> bool:
    return inherited if own is None else own == "block"


def parse_plan(spec: Spec) -> Plan:
    """Return the checks a (schema-valid) robustness section asks for, severities resolved."""
    gate_block = spec.get("severity", "block") == "block"
    gate_metrics = spec.get("metrics") or {}
    perts = tuple(_perturbation_plan(name, body or {}, gate_metrics, gate_block)
                  for name, body in (spec.get("perturbations") or {}).items())
    return Plan(
        perturbations=perts,
        invariance=_invariance_plans(spec.get("invariance"), gate_block),
        directional=tuple(_directional_plan(col, body, gate_block)
                          for col, body in (spec.get("directional") or {}).items()),
        intervals=IntervalSettings.of(spec),
    )


def _perturbation_plan(name: str, body: Mapping[str, Any], gate_metrics: Mapping[str, Any],
                       gate_block: bool) -> PerturbationPlan:
    kind = PERTURBATIONS[name]
    block = _blocks(body.get("severity"), gate_block)
    raw = body.get(kind.severity_param, kind.default_severity)
    severities = tuple(sorted({float(v) for v in (raw if isinstance(raw, list) else [raw])}))
    params = {k: body.get(k, default) for k, default in kind.params.items()}
    metrics = {**gate_metrics, **(body.get("metrics") or {})}
    thresholds = tuple(t for m, th in metrics.items() for t in _thresholds(m, th, block))
    columns = body.get("columns", kind.default_columns)
    return PerturbationPlan(name, columns if isinstance(columns, str) else tuple(columns), severities,
                            params, thresholds)


def _thresholds(measure: str, body: Mapping[str, Any], inherited: bool) -> list[Threshold]:
    block = _blocks(body.get("severity"), inherited)
    out = []
    for key, value in body.items():
        if key == NWB and value:
            out.append(Threshold(measure, NWB, float(body.get("margin", 0.0)), block))
        elif key not in (NWB, "margin", "severity"):
            out.append(Threshold(measure, key, float(value), block))
    return out


def _invariance_plans(raw: Any, gate_block: bool) -> tuple[InvariancePlan, ...]:
    if not raw:
        return ()
    body: Mapping[str, Any] = {"columns": raw} if isinstance(raw, list) else raw
    block = _blocks(body.get("severity"), gate_block)
    return tuple(InvariancePlan(col, body.get("method", "shuffle"), float(body.get("tolerance", DEFAULT_TOLERANCE)),
                                float(body.get("max_fraction", DEFAULT_MAX_FRACTION)), block)
                 for col in body["columns"])


def _directional_plan(column: str, raw: Any, gate_block: bool) -> DirectionalPlan:
    body = {"direction": raw} if isinstance(raw, str) else raw
    step = body.get("step")
    return DirectionalPlan(column, body["direction"], None if step is None else float(step),
                           float(body.get("tolerance", DEFAULT_TOLERANCE)),
                           float(body.get("max_fraction", DEFAULT_MAX_FRACTION)),
                           _blocks(body.get("severity"), gate_block))


# ---------------------------------------------------------------- validate (semantics the schema cannot say)


def validate(spec: Spec, setup: GateSetup) -> None:
    """Raise a located UserError for unknown metrics, misplaced thresholds and unknown columns."""
    at = (GATE_NAME,)
    perts = spec.get("perturbations") or {}
    if not (perts or spec.get("invariance") or spec.get("directional")):
        raise setup.error(at, MSG_EMPTY)
    if setup.task == "per_example":
        return  # every check is skipped at run time (MSG_PER_EXAMPLE): no metric or feature to resolve
    gate_metrics = spec.get("metrics") or {}
    if gate_metrics and not perts:
        raise setup.error((*at, "metrics"), MSG_METRICS_UNUSED)
    _validate_metrics(gate_metrics, setup, (*at, "metrics"))
    for name, body in perts.items():
        body = body or {}
        _validate_metrics(body.get("metrics") or {}, setup, (*at, "perturbations", name, "metrics"))
        if not {**gate_metrics, **(body.get("metrics") or {})}:
            raise setup.error((*at, "perturbations", name), MSG_NO_THRESHOLDS)
        if isinstance(body.get("columns"), list):
            _validate_features(body["columns"], setup, (*at, "perturbations", name, "columns"))
    for col in spec.get("directional") or {}:
        if setup.task == "multiclass_classification":
            raise setup.error((*at, "directional", col), MSG_DIRECTIONAL_TASK)
        _validate_features([col], setup, (*at, "directional", col))


def _validate_features(columns: Sequence[str], setup: GateSetup, at: tuple[str | int, ...]) -> None:
    features = setup.data.features
    for col in columns:
        if features is not None and col not in features:
            raise setup.error(at, MSG_NOT_FEATURE.format(col=col))


def _validate_metrics(metrics: Mapping[str, Any], setup: GateSetup, at: tuple[str | int, ...]) -> None:
    for name, body in metrics.items():
        allowed = _allowed_kinds(name, setup, (*at, name))
        for key in body:
            if key not in (*allowed, "margin", "severity"):
                raise setup.error((*at, name, key), MSG_KIND.format(kind=key, name=name, allowed=", ".join(allowed)))
        if "margin" in body and not body.get(NWB):
            raise setup.error((*at, name, "margin"), MSG_MARGIN_ALONE)
        if not any(k in body and (k != NWB or body[k]) for k in allowed):
            raise setup.error((*at, name), MSG_NO_THRESHOLD.format(allowed=", ".join(allowed)))


def _allowed_kinds(name: str, setup: GateSetup, at: tuple[str | int, ...]) -> tuple[str, ...]:
    if name in OWN_MEASURES:
        if name == "flip_rate" and setup.task == "regression":
            raise setup.error(at, MSG_FLIP_REGRESSION)
        return OWN_KINDS
    metric = metric_registry().get(name)
    names = metric_names(setup.task)
    if metric is None or setup.task not in metric.tasks:
        close = difflib.get_close_matches(name, [*OWN_MEASURES, *names], n=1, cutoff=0.6)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise setup.error(at, MSG_UNKNOWN_MEASURE.format(name=name, task=setup.task, hint=hint,
                                                         names=", ".join(n for n in names if n != "churn")))
    if metric.needs_baseline:
        raise setup.error(at, MSG_CHURN.format(name=name))
    return METRIC_KINDS


def declares_blocking(spec: Spec) -> bool:
    """Return True when the section makes at least one blocking check."""
    return any(blocking for _, blocking, _ in parse_plan(spec).checks())


# ---------------------------------------------------------------- measuring one perturbed copy


@dataclass
class Side:
    """One model's predictions on one perturbed copy and what was measured from them.

    ``values`` maps a measure to its value (a metric's perturbed value, ``flip_rate``,
    ``score_shift``); ``problems`` says why a measure is undefined; ``rows`` keeps the per-row flips
    and shifts for the paired comparison with the baseline. ``error`` is set when predict raised.
    """

    pred: Predictions | None = None
    values: dict[str, float] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)
    rows: dict[str, np.ndarray] = field(default_factory=dict)
    error: str | None = None
    reason: str = ""


@dataclass
class Point:
    """Everything measured at one severity of one perturbation."""

    severity: float
    candidate: Side
    baseline: Side | None = None


def score_change(clean: Predictions, pert: Predictions, task: str) -> np.ndarray | None:
    """Return each row's absolute score change, or None when the model gives no scores.

    Binary: the positive-class score; multiclass: half the L1 distance between probability
    vectors (total variation, equal to the binary case's change for two classes); regression:
    the prediction.
    """
    if task == "regression":
        new, old = np.asarray(pert.labels, dtype=float), np.asarray(clean.labels, dtype=float)
    elif clean.scores is None or pert.scores is None:
        return None
    else:
        new, old = np.asarray(pert.scores, dtype=float), np.asarray(clean.scores, dtype=float)
    change: np.ndarray = np.abs(new - old)
    return change if change.ndim == 1 else 0.5 * change.sum(axis=1)


def label_flips(clean: Predictions, pert: Predictions) -> np.ndarray:
    """Return True for each row whose predicted label changed."""
    flips: np.ndarray = np.asarray(clean.labels) != np.asarray(pert.labels)
    return flips


def scalar_score(pred: Predictions, task: str, positive_label: Any) -> np.ndarray:
    """Return one number per row: the positive-class score (labels as 0/1 without scores) or the prediction."""
    if task == "regression":
        return np.asarray(pred.labels, dtype=float)
    if pred.scores is not None:
        return np.asarray(pred.scores, dtype=float)
    return np.asarray(np.asarray(pred.labels) == positive_label, dtype=float)


class _GateRun:
    """One run of the gate over one context: clean predictions and statistics shared by all checks."""

    def __init__(self, ctx: EvalContext, plan: Plan) -> None:
        self.ctx = ctx
        self.plan = plan
        self.task = ctx.policy.model.task
        self.features = list(ctx.features)
        self.X = ctx.frame[self.features]
        self.stats = ColumnStats(self.X)
        self.clean: dict[Role, Predictions | None] = {}
        self.clean_errors: dict[Role, str] = {}
        self._clean_values: dict[tuple[Role, str], float] = {}

    # ------------------------------------------------------------ shared facts

    @property
    def positive_label(self) -> Any:
        return self.ctx.policy.model.positive_label if self.task == "binary_classification" else None

    @property
    def classes(self) -> tuple[Any, ...] | None:
        return None if self.task == "regression" else self.ctx.classes

    def compute(self, metric: Metric, pred: Predictions) -> float:
        return metric.compute(self.ctx.y_true, pred, positive_label=self.positive_label, classes=self.classes)

    def clean_value(self, role: Role, name: str) -> float:
        """Return ``role``'s metric on the clean predictions (computed once)."""
        key = (role, name)
        if key not in self._clean_values:
            pred = self.clean_predictions(role)
            try:
                self._clean_values[key] = float("nan") if pred is None else self.compute(metric_registry()[name], pred)
            except Exception:  # noqa: BLE001 -- an undefined clean metric makes its checks errors, not the gate
                self._clean_values[key] = float("nan")
        return self._clean_values[key]

    def clean_predictions(self, role: Role) -> Predictions | None:
        """Return ``role``'s cached clean predictions; None (with the reason kept) if its model raised."""
        if role not in self.clean:
            try:
                self.clean[role] = self.ctx.predictions(role)
            except UserError:
                raise
            except Exception as exc:  # noqa: BLE001 -- the baseline failing on clean data errs its checks only
                self.clean[role] = None
                self.clean_errors[role] = MSG_CLEAN_FAILED.format(role=role, problem=_problem(exc))
        return self.clean[role]

    def baseline_problem(self) -> tuple[Outcome, str, str] | None:
        """Return why no baseline can be compared (outcome, message, reason), or None when one can."""
        if not self.ctx.has_baseline:
            if getattr(self.ctx, "require_baseline", False):
                return Outcome.FAIL, MSG_NO_BASELINE_REQUIRED, "no_baseline"
            return Outcome.SKIPPED, MSG_NO_BASELINE, "no_baseline"
        if self.ctx.model("baseline") is None:
            return Outcome.SKIPPED, MSG_BASELINE_NO_MODEL, "no_model"
        return None

    # ------------------------------------------------------------ one perturbed copy

    def predict(self, role: Role, frame: pd.DataFrame, scope: str, perturbation: str) -> Side:
        """Score ``frame`` with one batched predict; a model that raises gives a Side with ``error``."""
        if self.clean_predictions(role) is None:
            return Side(error=self.clean_errors[role], reason="predict_failed")
        try:
            return Side(pred=self.ctx.predict(role, frame))
        except UserError:
            raise
        except Exception as exc:  # noqa: BLE001 -- a model raising on corrupt input is a finding, not a crash
            problem = _problem(exc)
            if perturbation == "missing" and _is_nan_complaint(exc):
                return Side(error=MSG_NAN_REJECTED.format(role=role, problem=problem), reason="model_rejects_nan")
            return Side(error=MSG_PREDICT_FAILED.format(role=role, scope=scope, problem=problem),
                        reason="predict_failed")

    def measure(self, role: Role, side: Side, metrics: Sequence[str], scope: str) -> Side:
        """Fill ``side`` with each metric's value, the flip rate and the score shift against clean."""
        clean = self.clean_predictions(role)
        if side.pred is None or clean is None:
            return side
        for name in metrics:
            try:
                side.values[name] = self.compute(metric_registry()[name], side.pred)
            except Exception as exc:  # noqa: BLE001 -- reported as this measure's error
                side.problems[name] = MSG_NOT_COMPUTABLE.format(measure=name, scope=scope, problem=exc)
        if self.task == "regression":
            side.problems["flip_rate"] = MSG_NOT_COMPUTABLE.format(measure="flip_rate", scope=scope,
                                                                   problem=MSG_NO_LABELS)
        else:
            side.rows["flip_rate"] = label_flips(clean, side.pred).astype(float)
        shifts = score_change(clean, side.pred, self.task)
        if shifts is None:
            side.problems["score_shift"] = MSG_NOT_COMPUTABLE.format(measure="score_shift", scope=scope,
                                                                     problem=MSG_NO_SCORES)
        else:
            side.rows["score_shift"] = shifts
        for name, rows in side.rows.items():
            side.values[name] = float(rows.mean()) if rows.size else float("nan")
        return side

    def point(self, p: PerturbationPlan, columns: list[str], severity: float, with_baseline: bool) -> Point:
        """Corrupt one copy at ``severity`` and measure the candidate (and the baseline) on it."""
        rng = self.ctx.rng(GATE_NAME, p.name, str(float(severity)))
        copy = perturb(self.X, p.name, columns, severity, rng, self.stats, p.params)
        metrics = list(dict.fromkeys(t.measure for t in p.thresholds if not t.is_own))
        scope = p.scope(severity)
        roles: list[Role] = ["candidate", "baseline"] if with_baseline else ["candidate"]
        sides = [self.measure(r, self.predict(r, copy, scope, p.name), metrics, scope) for r in roles]
        return Point(severity, sides[0], sides[1] if with_baseline else None)

    def columns(self, p: PerturbationPlan) -> tuple[list[str], str | None]:
        """Return the columns ``p`` corrupts, or a problem message when its list does not fit the model."""
        where = self.ctx.policy.where("gates", GATE_NAME, "perturbations", p.name, "columns")
        if isinstance(p.columns, str):
            cols = select_columns(self.X, self.features, p.columns)
            return cols, None if cols else MSG_NO_COLUMNS.format(selector=p.columns, where=where)
        for col in p.columns:
            if col not in self.X.columns:
                return [], MSG_UNKNOWN_COLUMN.format(col=col, where=where)
            if PERTURBATIONS[p.name].column_kind == "numeric" and not is_numeric(self.X[col]):
                return [], MSG_NOT_NUMERIC.format(col=col, where=where, what=p.name)
        return list(p.columns), None

    # ------------------------------------------------------------ results

    def results(self) -> list[CheckResult]:
        out: list[CheckResult | _Versus] = []
        for p in self.plan.perturbations:
            out.extend(self.perturbation_results(p))
        out.extend(self.invariance(inv) for inv in self.plan.invariance)
        out.extend(self.directional(d) for d in self.plan.directional)
        decided = decide_versus([v for v in out if isinstance(v, _Versus)], self.plan)
        return [decided[id(r)] if isinstance(r, _Versus) else r for r in out]

    def perturbation_results(self, p: PerturbationPlan) -> list[CheckResult | _Versus]:
        columns, problem = self.columns(p)
        if problem is not None:
            return [self.result(p.check_id(t, s), t, Outcome.ERROR, problem, "unknown_column")
                    for t in p.thresholds for s in p.severities]
        versus = any(t.kind == NWB for t in p.thresholds)
        blocker = self.baseline_problem() if versus else None
        points = [self.point(p, columns, s, versus and blocker is None) for s in p.severities]
        out: list[CheckResult | _Versus] = []
        for t in p.thresholds:
            for pt in points:
                details = curve_details(p, columns, pt.severity, t, points, self)
                if t.kind == NWB and blocker is not None:
                    outcome, message, reason = blocker
                    out.append(self.result(p.check_id(t, pt.severity), t, outcome, message, reason, details=details))
                else:
                    out.append(self.judge(p, t, pt, details))
        return out

    def result(self, check_id: CheckId, t: Threshold | None, outcome: Outcome, message: str, reason: str, *,
               is_blocking: bool | None = None, threshold: Mapping[str, Any] | None = None,
               **fields: Any) -> CheckResult:
        blocking = t.is_blocking if t is not None else bool(is_blocking)
        return CheckResult(id=str(check_id), check_id=check_id, gate=GATE_NAME, blocking=blocking, message=message, reason=reason,
                           status=to_status(outcome, blocking, self.plan.on_inconclusive),
                           threshold=t.as_dict() if t is not None else dict(threshold or {}), **fields)

    def judge(self, p: PerturbationPlan, t: Threshold, pt: Point, details: dict[str, Any]) -> CheckResult | _Versus:
        """Decide one threshold at one severity (baseline comparisons are decided later, as a family)."""
        cid, scope = p.check_id(t, pt.severity), p.scope(pt.severity)
        for side in (pt.candidate, pt.baseline if t.kind == NWB else None):
            if side is not None and side.error is not None:
                return self.result(cid, t, Outcome.ERROR, side.error, side.reason, details=details)
            if side is not None and t.measure in side.problems:
                return self.result(cid, t, Outcome.ERROR, side.problems[t.measure], "not_computable", details=details)
        if t.kind == NWB:
            return self.versus(cid, scope, t, pt, details)
        value = pt.candidate.values[t.measure]
        if t.is_own:
            template = MSG_FLIP if t.measure == "flip_rate" else MSG_SHIFT
            outcome = decide_bounds(value, maximum=t.bound)
            return self.result(cid, t, outcome, template.format(value=value, scope=scope, bound=t.bound),
                               _reason(outcome), observed=value, details=details)
        return self.judge_metric(cid, scope, t, value, details)

    def judge_metric(self, cid: CheckId, scope: str, t: Threshold, value: float, details: dict[str, Any]) -> CheckResult:
        clean = self.clean_value("candidate", t.measure)
        drop = metric_registry()[t.measure].direction * (clean - value)
        if t.kind in ("min", "max"):
            outcome = decide_bounds(value, **{("minimum" if t.kind == "min" else "maximum"): t.bound})
            message = MSG_BOUND.format(measure=t.measure, value=value, scope=scope, kind=t.kind, bound=t.bound)
        elif t.kind == "max_drop":
            outcome = decide_bounds(drop, maximum=t.bound)
            message = MSG_DROP.format(measure=t.measure, clean=clean, value=value, scope=scope, drop=drop,
                                      bound=t.bound)
        else:
            rel = drop / abs(clean) if clean else float("nan")
            outcome = decide_bounds(rel, maximum=t.bound)
            message = MSG_RELATIVE_DROP.format(measure=t.measure, clean=clean, value=value, scope=scope, rel=rel,
                                               bound=t.bound)
        if not (math.isfinite(value) and math.isfinite(clean)):
            outcome, message = Outcome.ERROR, MSG_NOT_COMPUTABLE.format(measure=t.measure, scope=scope,
                                                                        problem="the metric is undefined on these rows")
        return self.result(cid, t, outcome, message, _reason(outcome), observed=value, delta=value - clean,
                           details=details)

    def versus(self, cid: CheckId, scope: str, t: Threshold, pt: Point, details: dict[str, Any]) -> _Versus:
        """Return the paired estimate of (candidate - baseline) drop, flip rate or shift, undecided."""
        assert pt.baseline is not None
        cand, base = pt.candidate, pt.baseline
        if t.is_own:
            est = paired_mean(cand.rows[t.measure] - base.rows[t.measure])
            return _Versus(self, cid, scope, t, est, cand.values[t.measure], base.values[t.measure], details)
        metric = metric_registry()[t.measure]
        clean_c, clean_b = self.clean_predictions("candidate"), self.clean_predictions("baseline")
        assert clean_c is not None and clean_b is not None and cand.pred is not None and base.pred is not None
        values = [self.clean_value("candidate", t.measure), cand.values[t.measure],
                  self.clean_value("baseline", t.measure), base.values[t.measure]]
        weights = metric.direction * np.array([1.0, -1.0, -1.0, 1.0])
        est = contrast_estimate(metric, self.ctx.y_true, [clean_c, cand.pred, clean_b, base.pred], weights,
                                n_boot=self.plan.n_boot, rng=self.ctx.rng(str(cid)), positive_label=self.positive_label,
                                classes=self.classes, values=values)
        observed = metric.direction * (values[0] - values[1])
        baseline = metric.direction * (values[2] - values[3])
        return _Versus(self, cid, scope, t, est, observed, baseline, details)

    # ------------------------------------------------------------ invariance and directional

    def invariance(self, inv: InvariancePlan) -> CheckResult:
        """Shuffle (or replace) one column and count the rows whose prediction moved."""
        threshold = {"max_fraction": inv.max_fraction, "tolerance": inv.tolerance}
        if inv.column not in self.X.columns:
            return self.result(inv.check_id, None, Outcome.PASS, MSG_INVARIANCE_UNUSED.format(col=inv.column),
                               "not_a_feature", is_blocking=inv.is_blocking, threshold=threshold, observed=0.0)
        rng = self.ctx.rng(GATE_NAME, "invariance", inv.column)
        if inv.method == "shuffle":
            copy = shuffle_column(self.X, inv.column, rng)
        else:
            copy = replace_column(self.X, inv.column, rng, self.stats)
        side = self.predict("candidate", copy, f"invariance[{inv.column}]", "invariance")
        if side.error is not None or side.pred is None:
            return self.result(inv.check_id, None, Outcome.ERROR, side.error or "", side.reason,
                               is_blocking=inv.is_blocking, threshold=threshold)
        clean = self.clean_predictions("candidate")
        assert clean is not None
        flips = label_flips(clean, side.pred) if self.task != "regression" else np.zeros(len(self.X), bool)
        shifts = score_change(clean, side.pred, self.task)
        moved = flips | (shifts > inv.tolerance) if shifts is not None else flips
        frac = float(moved.mean()) if moved.size else 0.0
        outcome = decide_bounds(frac, maximum=inv.max_fraction)
        how = "shuffled" if inv.method == "shuffle" else "replaced by other observed values"
        details = {"method": inv.method, "rows": int(moved.size), "rows_changed": int(moved.sum()),
                   "flip_rate": float(flips.mean()) if flips.size else 0.0,
                   "max_score_change": None if shifts is None or not shifts.size else float(shifts.max()),
                   "mean_score_change": None if shifts is None or not shifts.size else float(shifts.mean())}
        message = MSG_INVARIANCE.format(frac=frac, tol=inv.tolerance, col=inv.column, how=how, bound=inv.max_fraction)
        return self.result(inv.check_id, None, outcome, message, _reason(outcome), is_blocking=inv.is_blocking,
                           threshold=threshold, observed=frac, details=details)

    def directional(self, d: DirectionalPlan) -> CheckResult:
        """Raise one column by a step and count the rows whose score moved against the direction."""
        threshold = {"direction": d.direction, "max_fraction": d.max_fraction}
        where = self.ctx.policy.where("gates", GATE_NAME, "directional", d.column)

        def error(message: str, reason: str) -> CheckResult:
            return self.result(d.check_id, None, Outcome.ERROR, message, reason, is_blocking=d.is_blocking,
                               threshold=threshold)

        if d.column not in self.X.columns:
            return error(MSG_UNKNOWN_COLUMN.format(col=d.column, where=where), "unknown_column")
        if not is_numeric(self.X[d.column]):
            return error(MSG_NOT_NUMERIC.format(col=d.column, where=where, what="a directional step"), "not_numeric")
        step = d.step if d.step is not None else self.stats.std(d.column)
        if step <= 0:
            return error(MSG_CONSTANT.format(col=d.column), "no_step")
        side = self.predict("candidate", step_column(self.X, d.column, step), f"directional[{d.column}]", "directional")
        if side.error is not None or side.pred is None:
            return error(side.error or "", side.reason)
        clean = self.clean_predictions("candidate")
        assert clean is not None
        pos = self.ctx.policy.model.positive_label
        change = scalar_score(side.pred, self.task, pos) - scalar_score(clean, self.task, pos)
        valid = self.X[d.column].notna().to_numpy()
        sign = 1.0 if d.direction == "increasing" else -1.0
        against = (sign * change < -d.tolerance) & valid
        n_valid = int(valid.sum())
        frac = float(against.sum() / n_valid) if n_valid else 0.0
        outcome = decide_bounds(frac, maximum=d.max_fraction)
        moved = "down" if d.direction == "increasing" else "up"
        details = {"direction": d.direction, "step": step, "tolerance": d.tolerance, "rows": n_valid,
                   "rows_against": int(against.sum()),
                   "mean_change": float(change[valid].mean()) if n_valid else None,
                   "worst_change": float((sign * change[valid]).min() * sign) if n_valid else None}
        message = MSG_DIRECTIONAL.format(frac=frac, against=moved, col=d.column, step=step, bound=d.max_fraction)
        return self.result(d.check_id, None, outcome, message, _reason(outcome), is_blocking=d.is_blocking,
                           threshold=threshold, observed=frac, details=details)


def _reason(outcome: Outcome) -> str:
    return {Outcome.PASS: "within_threshold", Outcome.FAIL: "threshold_breached",
            Outcome.INCONCLUSIVE: "inconclusive"}.get(outcome, "not_computable")


def _problem(exc: Exception) -> str:
    """Return an exception as one line: its type and the first line of its message."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _is_nan_complaint(exc: Exception) -> bool:
    text = str(exc).lower()
    return isinstance(exc, (ValueError, TypeError)) and ("nan" in text or "missing" in text)


# ---------------------------------------------------------------- severity curves


def curve_details(p: PerturbationPlan, columns: list[str], severity: float, t: Threshold,
                  points: Sequence[Point], run: _GateRun) -> dict[str, Any]:
    """Return the details every check of ``p`` carries: its severity curve, one point per severity.

    ``metric`` names the curve's metric: the check's own, or the perturbation's first registry
    metric for flip-rate and score-shift checks (None when it has none).
    """
    metric = t.measure if not t.is_own else next((x.measure for x in p.thresholds if not x.is_own), None)
    clean = run.clean_value("candidate", metric) if metric else None
    curve = [_curve_point(pt.severity, pt.candidate, metric, clean) for pt in points]
    if any(pt.baseline is not None and pt.baseline.pred is not None for pt in points):
        base_clean = run.clean_value("baseline", metric) if metric else None
        for entry, pt in zip(curve, points, strict=True):
            if pt.baseline is not None:
                entry["baseline"] = _curve_point(pt.severity, pt.baseline, metric, base_clean)
    out: dict[str, Any] = {"perturbation": p.name, "columns": columns, "severity": severity, "metric": metric,
                           "clean_metric": clean, "rows": len(run.X), "curve": curve}
    out.update({k: v for k, v in p.params.items()})
    return out


def _curve_point(severity: float, side: Side, metric: str | None, clean: float | None) -> dict[str, Any]:
    value = side.values.get(metric) if metric else None
    drop = None
    if metric and value is not None and clean is not None:
        drop = metric_registry()[metric].direction * (clean - value)
    point: dict[str, Any] = {"severity": severity, "metric": value, "drop": drop,
                             "flip_rate": side.values.get("flip_rate"), "score_shift": side.values.get("score_shift")}
    if side.error is not None:
        point["error"] = side.reason
    return point


# ---------------------------------------------------------------- versus production


@dataclass(frozen=True)
class _Versus:
    """A no_worse_than_baseline check measured but not yet decided (its level depends on the family)."""

    run: _GateRun
    check_id: CheckId
    scope: str
    threshold: Threshold
    estimate: Estimate  # of candidate - baseline "badness" (drop, flip rate or shift)
    observed: float
    baseline: float
    details: dict[str, Any]


def decide_versus(items: Sequence[_Versus], plan: Plan) -> dict[int, CheckResult]:
    """Decide every baseline comparison with :func:`gates.stats.decide_family`; key: ``id(item)``."""
    members = [Member(negate(v.estimate), v.threshold.bound, v.threshold.is_blocking) for v in items]
    family = decide_family(plan.intervals, members)
    out = {}
    for v, d in zip(items, family.members, strict=True):
        level, outcome = d.level, d.outcome
        lo, hi = v.estimate.interval(level)
        half = (hi - lo) / 2 if math.isfinite(lo) and math.isfinite(hi) else None
        what = f"{v.threshold.measure} drop" if not v.threshold.is_own else v.threshold.measure
        message = MSG_VERSUS.format(what=what, scope=v.scope, cand=v.observed, base=v.baseline,
                                    delta=v.estimate.value, lo=lo, hi=hi, level=level, margin=v.threshold.bound)
        if outcome is Outcome.INCONCLUSIVE and half is not None:
            message += MSG_STRADDLES.format(bound=v.threshold.bound, hw=half)
        details = {**v.details, "family_size": family.size, "multiple_testing": family.correction.value}
        if v.estimate.replicates is not None:
            details["replicates"] = int(v.estimate.replicates.size)
        out[id(v)] = v.run.result(
            v.check_id, v.threshold, outcome, message, _reason(outcome), observed=v.observed, baseline=v.baseline,
            delta=v.estimate.value, ci=(lo, hi), ci_method=v.estimate.method, half_width=half,
            confidence=plan.confidence, adjusted_confidence=level, details=details)
    return out


# ---------------------------------------------------------------- the gate


def run(ctx: EvalContext, spec: Spec) -> list[CheckResult]:
    """Return every robustness check's result; prediction-column candidates skip them all."""
    plan = parse_plan(spec)
    if ctx.model("candidate") is None:
        why = MSG_PER_EXAMPLE if ctx.policy.model.task == "per_example" else MSG_NO_MODEL
        return [_plain(cid, blocking, threshold, Status.SKIPPED, why, "no_model")
                for cid, blocking, threshold in plan.checks()]
    gate_run = _GateRun(ctx, plan)
    if gate_run.clean_predictions("candidate") is None:
        message = gate_run.clean_errors["candidate"]
        return [_plain(cid, blocking, threshold, to_status(Outcome.ERROR, blocking), message, "predict_failed")
                for cid, blocking, threshold in plan.checks()]
    return gate_run.results()


def _plain(cid: CheckId, blocking: bool, threshold: Mapping[str, Any], status: Status, message: str,
           reason: str) -> CheckResult:
    return CheckResult(id=str(cid), check_id=cid, gate=GATE_NAME, status=status, blocking=blocking, message=message, reason=reason,
                       threshold=dict(threshold))


def columns(spec: Spec) -> list[NamedColumn]:
    """Return the columns the section names: perturbation column lists, invariance and directional."""
    out: list[NamedColumn] = []
    for name, perturbation in (spec.get("perturbations") or {}).items():
        cols = (perturbation or {}).get("columns")
        if isinstance(cols, list):
            out.extend(listed_columns(cols, ("perturbations", name, "columns")))
    invariance = spec.get("invariance")
    if isinstance(invariance, Mapping):
        out.extend(listed_columns(invariance.get("columns"), ("invariance", "columns")))
    else:
        out.extend(listed_columns(invariance, ("invariance",)))
    out.extend((("directional", col), str(col)) for col in (spec.get("directional") or {}))
    return out


GATE = GateKind(GATE_NAME, "gate_robustness.schema.json", validate, declares_blocking, run, columns)
