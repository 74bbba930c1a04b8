"""The robustness section as a plan: its checks, thresholds and severities, parsed and validated.

``parse_plan`` turns a (schema-valid) section into a frozen :class:`Plan` with every severity
resolved; ``validate`` raises a located error for what the schema cannot say (unknown metrics,
misplaced thresholds, columns that are not features); ``make_plan`` does both, once, at load (the
gate's ``plan`` hook); ``declares_blocking`` and the run read the plan.
"""
from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gates.checks import GateSetup, Spec
from gates.identity import CheckId
from gates.metrics import metric_names, metric_registry
from gates.perturbations import PERTURBATIONS
from gates.stats import IntervalSettings
from gates.stats.settings import WithIntervals

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


def make_plan(spec: Spec, setup: GateSetup) -> Plan:
    """Return the section's plan after :func:`validate` (the gate's ``plan`` hook, called once at load)."""
    validate(spec, setup)
    return parse_plan(spec)


def as_plan(section: Plan | Spec) -> Plan:
    """Return ``section`` when it is a plan, else the plan of the (schema-valid, validated) mapping."""
    return section if isinstance(section, Plan) else parse_plan(section)


def declares_blocking(section: Plan | Spec) -> bool:
    """Return True when the plan makes at least one blocking check."""
    return any(blocking for _, blocking, _ in as_plan(section).checks())
