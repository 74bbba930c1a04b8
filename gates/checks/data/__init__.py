"""The data gate: is the eval (and training) data what we expect?

One verdict from every engine a team uses, each (column, rule) one check:

* ``pandera``             a pandera schema (YAML file or ``pkg.mod:schema``)      -> :mod:`.pandera_engine`
* ``great_expectations``  a GX 1.x expectation suite (JSON)                      -> :mod:`.gx_engine`
* ``checks``              built-in rules declared in gates.yaml                   -> :mod:`.builtin`
* ``drift``               each column against ``data.reference``                  -> :mod:`.drift`
* ``overlap``             eval rows found verbatim in the reference               -> :mod:`.overlap`
* ``leakage``             a feature that alone predicts the target                -> :mod:`.leakage`

``apply_to: [eval, reference]`` runs the schema engines (pandera, GX, built-in checks) on the
reference data too, with ids ``data.reference.<rest>``. The gate reads only ``ctx.eval_frame``
(every eval row, those without a target too) and ``ctx.reference``: it never needs a model.
The target's own checks (:mod:`.target`) run before every gate, with or without this section.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gates.checks import GateKind, GateSetup, NamedColumn, listed_columns
from gates.checks.data import _plan
from gates.checks.data._common import GATE_NAME, Settings, Target
from gates.checks.data._plan import (
    CHECK_KEYS,
    DEFAULTED_KEYS,
    DataPlan,
    EngineRef,
    SectionPlan,
    as_plan,
    declares_blocking,
    engine_ref,
    parse_plan,
)
from gates.checks.data.builtin import run_builtin
from gates.checks.data.drift import HAS_P_VALUE, drift_columns, run_drift
from gates.checks.data.leakage import run_leakage
from gates.checks.data.overlap import run_overlap
from gates.results import CheckResult

if TYPE_CHECKING:
    from gates.context import EvalContext

__all__ = ["CHECK_KEYS", "DEFAULTED_KEYS", "GATE", "DataPlan", "EngineRef", "as_plan", "declares_blocking",
           "engine_ref", "make_plan", "parse_plan", "run", "validate"]

MSG_PANDERA = "cannot use the pandera schema: {problem}"
MSG_GX_MISSING = "file not found: {path}"
MSG_NEEDS_REFERENCE = "{what} needs data.reference (a reference snapshot to compare with)"
MSG_MIN_ABOVE_MAX = "min {lo} is above max {hi}"
MSG_BAD_REGEX = "invalid regular expression {pattern!r}: {problem}"
MSG_NO_P_VALUE = "min_p_value needs method ks or chi2; {method} has no p-value"
MSG_DEFAULT_NO_P_VALUE = "min_p_value needs method ks or chi2 (set default.method)"
MSG_LEAKAGE_NO_TARGET = "leakage needs a target, and a per_example policy has none"

# ---------------------------------------------------------------- validate


def validate(spec: Mapping[str, Any], setup: GateSetup) -> None:
    """Raise a located UserError for what the schema cannot say: missing files, impossible rules."""
    if spec.get("pandera") is not None:
        _validate_pandera(spec["pandera"], setup)
    if spec.get("great_expectations") is not None:
        _validate_gx(spec["great_expectations"], setup)
    needs_reference = [("apply_to", "apply_to: reference")] if "reference" in (spec.get("apply_to") or ()) else []
    needs_reference += [(k, k) for k in ("drift", "overlap") if spec.get(k) is not None]
    if setup.data.reference is None and needs_reference:
        key, what = needs_reference[0]
        raise setup.error((GATE_NAME, key), MSG_NEEDS_REFERENCE.format(what=what))
    _validate_checks(spec.get("checks") or {}, setup)
    _validate_drift(spec.get("drift") or {}, setup)
    if spec.get("leakage") is not None and setup.task == "per_example":
        raise setup.error((GATE_NAME, "leakage"), MSG_LEAKAGE_NO_TARGET)


def _validate_pandera(value: str | Mapping[str, Any], setup: GateSetup) -> None:
    from gates.checks.data.pandera_engine import schema_problem

    ref, _ = engine_ref(value, "schema")
    problem = schema_problem(ref, setup.base_dir)
    if problem is not None:
        raise setup.error((GATE_NAME, "pandera"), MSG_PANDERA.format(problem=problem))


def _validate_gx(value: str | Mapping[str, Any], setup: GateSetup) -> None:
    from gates.checks.data.gx_engine import read_suite

    ref, _ = engine_ref(value, "suite")
    path = setup.base_dir / ref
    if not path.is_file():
        raise setup.error((GATE_NAME, "great_expectations"), MSG_GX_MISSING.format(path=ref))
    try:
        read_suite(path)
    except ValueError as exc:
        raise setup.error((GATE_NAME, "great_expectations"), str(exc)) from None


def _validate_checks(checks: Mapping[str, Any], setup: GateSetup) -> None:
    rows = checks.get("row_count") or {}
    if rows.get("min") is not None and rows.get("max") is not None and rows["min"] > rows["max"]:
        raise setup.error((GATE_NAME, "checks", "row_count"), MSG_MIN_ABOVE_MAX.format(lo=rows["min"], hi=rows["max"]))
    for col, rules in (checks.get("columns") or {}).items():
        where = (GATE_NAME, "checks", "columns", col)
        if rules.get("min") is not None and rules.get("max") is not None and rules["min"] > rules["max"]:
            raise setup.error(where, MSG_MIN_ABOVE_MAX.format(lo=rules["min"], hi=rules["max"]))
        if rules.get("regex") is not None:
            try:
                re.compile(rules["regex"])
            except re.error as exc:
                msg = MSG_BAD_REGEX.format(pattern=rules["regex"], problem=exc)
                raise setup.error((*where, "regex"), msg) from None


def _validate_drift(drift: Mapping[str, Any], setup: GateSetup) -> None:
    default = drift.get("default") or {}
    if default.get("min_p_value") is not None and default.get("method") not in HAS_P_VALUE:
        msg = MSG_NO_P_VALUE.format(method=default["method"]) if default.get("method") else MSG_DEFAULT_NO_P_VALUE
        raise setup.error((GATE_NAME, "drift", "default"), msg)
    for col, rule in (drift.get("columns") or {}).items():
        method = rule.get("method") or (default.get("method") if "method" not in rule else None)
        if rule.get("min_p_value") is not None and method not in HAS_P_VALUE:
            msg = MSG_NO_P_VALUE.format(method=method) if method else MSG_DEFAULT_NO_P_VALUE
            raise setup.error((GATE_NAME, "drift", "columns", col), msg)


def make_plan(spec: Mapping[str, Any], setup: GateSetup) -> DataPlan:
    """Return the section's plan after :func:`validate` (the gate's ``plan`` hook, called once at load)."""
    validate(spec, setup)
    return _plan.parse_plan(spec)


# ---------------------------------------------------------------- run


def run(ctx: EvalContext, section: DataPlan | Mapping[str, Any]) -> list[CheckResult]:
    """Return every data check of the plan, eval data first, then reference, drift, overlap, leakage.

    ``section`` is the plan made at load (a section mapping is planned here, for direct callers).
    """
    plan = as_plan(section)
    settings = plan.settings
    base_dir = ctx.policy.base_dir
    reference = ctx.reference if ctx.policy.data.reference is not None else None
    targets = [Target("eval", ctx.eval_frame)]
    if plan.on_reference and reference is not None:
        targets.append(Target("reference", reference))
    out: list[CheckResult] = []
    for target in targets:
        out.extend(_schema_checks(target, plan, base_dir))
    skip = _model_columns(ctx)
    if plan.drift is not None and reference is not None:
        cols = drift_columns(plan.drift.spec, ctx.eval_frame, reference, ctx.policy.data.features, skip)
        out.extend(run_drift(ctx.eval_frame, reference, plan.drift, cols, settings))
    if plan.overlap is not None and reference is not None:
        out.extend(run_overlap(ctx.eval_frame, reference, plan.overlap, skip, settings))
    if plan.leakage is not None:
        out.extend(_leakage(ctx, plan.leakage, skip, settings))
    return out


def _schema_checks(target: Target, plan: DataPlan, base_dir: Path) -> list[CheckResult]:
    """Run pandera, Great Expectations and the built-in checks (whichever are configured) on one frame."""
    out: list[CheckResult] = []
    if plan.pandera is not None:
        from gates.checks.data.pandera_engine import run_pandera

        out.extend(run_pandera(target, plan.pandera.ref, base_dir, plan.pandera.is_blocking, plan.settings))
    if plan.great_expectations is not None:
        from gates.checks.data.gx_engine import run_gx

        gx = plan.great_expectations
        out.extend(run_gx(target, base_dir / gx.ref, gx.is_blocking, plan.settings))
    if plan.checks is not None:
        out.extend(run_builtin(target, plan.checks, plan.settings))
    return out


def _leakage(ctx: EvalContext, spec: SectionPlan, skip: set[str], settings: Settings) -> list[CheckResult]:
    target = ctx.policy.data.target
    columns = spec.spec.get("columns") or list(ctx.policy.data.features or
                                          [str(c) for c in ctx.eval_frame.columns if c != target and c not in skip])
    return run_leakage(ctx.eval_frame, target, ctx.policy.model.task, spec, list(columns), ctx.rng("data.leakage"),
                       settings)


def _model_columns(ctx: EvalContext) -> set[str]:
    """Return the eval columns that hold model outputs: never data to check for drift or leakage.

    A per_example run's scores are the data whose drift against a reference run matters; only its
    cluster key (an id, drifting by design) is left out.
    """
    if ctx.policy.model.task == "per_example":
        return {ctx.policy.data.cluster} if ctx.policy.data.cluster else set()
    out: set[str] = set()
    for role in ("candidate", "baseline"):
        src = getattr(ctx.policy.model, role)
        if src.kind == "columns":
            scores = [src.scores] if isinstance(src.scores, str) else list(src.scores or ())
            out.update(c for c in [src.predictions, *scores] if c)
    return out


def columns(spec: Mapping[str, Any]) -> list[NamedColumn]:
    """Return the eval columns the section names: rules' and drift's columns, leakage's list.

    ``required_columns`` is not among them: a missing required column is that check's failure.
    """
    out = _rule_columns(spec)
    out += [(("drift", "columns", col), str(col)) for col in ((spec.get("drift") or {}).get("columns") or {})]
    out += listed_columns((spec.get("leakage") or {}).get("columns"), ("leakage", "columns"))
    return out


def reference_columns(spec: Mapping[str, Any]) -> list[NamedColumn]:
    """Return the reference columns the section names: drift's, and the rules' under ``apply_to: reference``."""
    out = _rule_columns(spec) if "reference" in (spec.get("apply_to") or ()) else []
    out += [(("drift", "columns", col), str(col)) for col in ((spec.get("drift") or {}).get("columns") or {})]
    return out


def _rule_columns(spec: Mapping[str, Any]) -> list[NamedColumn]:
    return [(("checks", "columns", col), str(col)) for col in ((spec.get("checks") or {}).get("columns") or {})]


GATE = GateKind(
    name=GATE_NAME,
    schema_file="gate_data.schema.json",
    validate=validate,
    declares_blocking=declares_blocking,
    run=run,
    columns=columns,
    reference_columns=reference_columns,
    plan=make_plan,
)
