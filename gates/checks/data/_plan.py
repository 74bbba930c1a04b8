"""The data section as a plan: which engines run, on which frames, with which severities.

``parse_plan`` turns a (schema-valid) section into a frozen :class:`DataPlan`: the gate's
settings, the pandera and Great Expectations references with their severities resolved, and
the rule sections (``checks``, ``drift``, ``overlap``, ``leakage``) each engine reads. The gate's
``plan`` hook validates and plans once, at load; the blocking test and both runs read the plan.
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
class DataPlan:
    """A validated data section.

    ``checks``, ``drift``, ``overlap`` and ``leakage`` are the sections as written (None when
    absent), read by their engines; ``on_reference``: ``apply_to`` lists ``reference``;
    ``blocking``: some check of the section blocks.
    """

    settings: Settings
    pandera: EngineRef | None
    great_expectations: EngineRef | None
    checks: Mapping[str, Any] | None
    drift: Mapping[str, Any] | None
    overlap: Mapping[str, Any] | None
    leakage: Mapping[str, Any] | None
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
                    checks=spec.get("checks"), drift=spec.get("drift"), overlap=spec.get("overlap"),
                    leakage=spec.get("leakage"), on_reference="reference" in (spec.get("apply_to") or ()),
                    blocking=_declares_blocking(spec))


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
