"""The data section as a plan: which engines run, on which frames, with which severities.

``parse_plan`` turns a (schema-valid) section into a frozen :class:`DataPlan`: the gate's
settings, the pandera and Great Expectations references, and the rule sections (``checks``,
``drift``, ``overlap``, ``leakage``), each rule with its severity resolved (most specific first:
the rule's own, its section's, the gate's). The gate's ``plan`` hook validates and plans once, at
load; the blocking test and both runs (embedded and partitioned) read the plan. Plans hold frozen
dataclasses, tuples and plain mappings only, so they pickle to dask workers.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gates.checks import declares_blocking_default
from gates.checks.data._common import DEFAULT_MAX_FAILURE_CASES, Settings, is_blocking

#: sections that hold checks (for "does this policy block on anything")
CHECK_KEYS = ("pandera", "great_expectations", "checks", "drift", "overlap", "leakage")
#: sections whose empty form still declares checks
DEFAULTED_KEYS = ("drift", "overlap", "leakage")


@dataclass(frozen=True)
class EngineRef:
    """A pandera schema or GX suite: its file or ``pkg.mod:name`` reference, and whether its checks block."""

    ref: str
    is_blocking: bool


@dataclass(frozen=True)
class ColumnRules:
    """One column of ``checks``: its rules as written (empty for a required column without rules)
    and whether their checks block."""

    name: str
    rules: Mapping[str, Any]
    blocking: bool


@dataclass(frozen=True)
class ChecksPlan:
    """The ``checks`` section: the row count limits, the required columns (``required_columns``
    then ``columns``, each once) and the columns with rules, in the order written."""

    row_count: Mapping[str, Any]
    row_count_blocking: bool
    required: tuple[ColumnRules, ...]
    columns: tuple[ColumnRules, ...]


@dataclass(frozen=True)
class DriftPlan:
    """The ``drift`` section as written, and whether each column's checks block: a column named
    under ``columns`` by its own entry, any other by ``default`` (then the section, the gate)."""

    spec: Mapping[str, Any]
    named: tuple[tuple[str, bool], ...]
    default_blocking: bool

    def blocking(self, col: str) -> bool:
        """Return whether the drift checks of ``col`` block."""
        return dict(self.named).get(col, self.default_blocking)


@dataclass(frozen=True)
class SectionPlan:
    """A one-rule section (``overlap``, ``leakage``) as written, and whether its checks block."""

    spec: Mapping[str, Any]
    blocking: bool


@dataclass(frozen=True)
class DataPlan:
    """A validated data section.

    ``checks``, ``drift``, ``overlap`` and ``leakage`` are None when absent; ``on_reference``:
    ``apply_to`` lists ``reference``; ``blocking``: some check of the section blocks.
    """

    settings: Settings
    pandera: EngineRef | None
    great_expectations: EngineRef | None
    checks: ChecksPlan | None
    drift: DriftPlan | None
    overlap: SectionPlan | None
    leakage: SectionPlan | None
    on_reference: bool
    blocking: bool


def engine_ref(value: str | Mapping[str, Any], key: str) -> tuple[str, str | None]:
    """Return (file or reference, severity) of ``pandera: REF`` / ``pandera: {schema: REF, severity}``."""
    if isinstance(value, str):
        return value, None
    return str(value[key]), value.get("severity")


def parse_plan(spec: Mapping[str, Any]) -> DataPlan:
    """Return the plan of a schema-valid, validated data section."""
    settings = Settings(severity=spec.get("severity", "block"),
                        max_failure_cases=int(spec.get("max_failure_cases", DEFAULT_MAX_FAILURE_CASES)))

    def engine(key: str, ref_key: str) -> EngineRef | None:
        if spec.get(key) is None:
            return None
        ref, severity = engine_ref(spec[key], ref_key)
        return EngineRef(ref, is_blocking(severity, settings.severity))

    return DataPlan(settings=settings, pandera=engine("pandera", "schema"),
                    great_expectations=engine("great_expectations", "suite"),
                    checks=_maybe(plan_checks, spec.get("checks"), settings.severity),
                    drift=_maybe(plan_drift, spec.get("drift"), settings.severity),
                    overlap=_maybe(plan_section, spec.get("overlap"), settings.severity),
                    leakage=_maybe(plan_section, spec.get("leakage"), settings.severity), on_reference="reference" in (spec.get("apply_to") or ()),
                    blocking=_declares_blocking(spec))


def plan_checks(section: ChecksPlan | Mapping[str, Any], gate_severity: str) -> ChecksPlan:
    """Return the plan of a ``checks`` section (a plan is returned as it is)."""
    if isinstance(section, ChecksPlan):
        return section
    own = section.get("severity")
    row_count: Mapping[str, Any] = section.get("row_count") or {}
    columns: Mapping[str, Mapping[str, Any]] = section.get("columns") or {}

    def column(col: str) -> ColumnRules:
        rules = columns.get(col) or {}
        return ColumnRules(col, rules, is_blocking(rules.get("severity"), own, gate_severity))

    required = dict.fromkeys([*(section.get("required_columns") or []), *columns])
    return ChecksPlan(row_count=row_count,
                      row_count_blocking=is_blocking(row_count.get("severity"), own, gate_severity),
                      required=tuple(column(c) for c in required), columns=tuple(column(c) for c in columns))


def plan_drift(section: DriftPlan | Mapping[str, Any], gate_severity: str) -> DriftPlan:
    """Return the plan of a ``drift`` section (a plan is returned as it is)."""
    if isinstance(section, DriftPlan):
        return section
    default_severity = (section.get("default") or {}).get("severity")
    own = section.get("severity")
    named = tuple((col, is_blocking((rule or {}).get("severity"), default_severity, own, gate_severity))
                  for col, rule in (section.get("columns") or {}).items())
    return DriftPlan(section, named, is_blocking(default_severity, own, gate_severity))


def plan_section(section: SectionPlan | Mapping[str, Any], gate_severity: str) -> SectionPlan:
    """Return the plan of an ``overlap`` or ``leakage`` section (a plan is returned as it is)."""
    if isinstance(section, SectionPlan):
        return section
    return SectionPlan(section, is_blocking(section.get("severity"), gate_severity))


def _maybe(plan: Any, section: Mapping[str, Any] | None, gate_severity: str) -> Any:
    return None if section is None else plan(section, gate_severity)


def as_plan(section: DataPlan | Mapping[str, Any]) -> DataPlan:
    """Return ``section`` when it is a plan, else the plan of the (validated) mapping."""
    return section if isinstance(section, DataPlan) else parse_plan(section)


def declares_blocking(section: DataPlan | Mapping[str, Any]) -> bool:
    """True when some check of the section blocks (a rule's severity wins over the gate's).

    An empty ``drift: {}``, ``overlap: {}`` or ``leakage: {}`` still runs with its defaults.
    """
    return as_plan(section).blocking


def _declares_blocking(spec: Mapping[str, Any]) -> bool:
    if declares_blocking_default(spec, CHECK_KEYS):
        return True
    return spec.get("severity", "block") == "block" and any(spec.get(k) == {} for k in DEFAULTED_KEYS)
