"""Run a Great Expectations 1.x expectation suite (its exported JSON) as data checks.

The suite runs through an ephemeral context (no files, no analytics, no progress bars) on a
pandas data source with one dataframe asset whose batch definition is the whole DataFrame. Each
expectation becomes ``data.gx.<expectation_type>[<column>]`` with GX's unexpected count as
``observed`` (its observed value for aggregate expectations), a few unexpected values and row
indices as examples, and GX's severity mapped to ours: ``critical`` blocks, ``warning`` and
``info`` warn; an expectation without one takes the gate's severity.
great_expectations is imported only here (it takes seconds), only when a policy uses it.

On partitions (the dask engine) the row-wise expectations (GX's column, column-pair and
multicolumn map expectations, except those judging uniqueness or order, which span rows) run on
each partition: :func:`measure_gx` returns their element, missing and unexpected counts with at
most ``max_failure_cases`` unexpected values and rows, and :func:`merged_gx` adds them in
partition order and decides ``success`` as GX does (the ``mostly`` fraction of the rows
considered). Any other expectation is an ``error`` with reason ``not_distributable`` naming it.
"""
from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd

from gates.checks.data._common import (
    REASON_BAD_ROWS,
    REASON_CHECK_ERROR,
    REASON_MISSING_COLUMN,
    REASON_SCHEMA_ERROR,
    Settings,
    Target,
    examples,
    first_line,
    is_blocking,
    json_value,
    make_result,
)
from gates.results import CheckResult, Outcome
from gates.checks import REASON_NOT_DISTRIBUTABLE

MSG_SUITE_READ = "cannot read the expectation suite {path}: {problem}"
MSG_SUITE_SHAPE = "{path} is not a Great Expectations 1.x suite: {problem}"
MSG_BAD_EXPECTATION = "expectation {type!r} is not valid: {problem}"
MSG_RAISED = "{type} raised on {label}: {problem}"
MSG_MISSING = "{type}: column '{col}' is missing from {label}"
MSG_PASS = "{label} meets {type}{scope}"
MSG_FAIL_ROWS = "{n} of {total} rows of {label} fail {type}{scope}"
MSG_FAIL_VALUE = "{label} fails {type}{scope}: observed {observed}"
MSG_NOT_RUN = "Great Expectations could not run the suite on {label}: {problem}"
MSG_NOT_ROW_WISE = ("not computed on the dask engine: the expectation {type}{scope} is not judged row by row, "
                    "so it has no mergeable form yet (docs/scale.md)")

#: GX 1.x severities and whether they block
SEVERITY_BLOCKS = {"critical": True, "warning": False, "info": False}
#: kwargs that say where an expectation looks, not what it expects
_SCOPE_KWARGS = ("column", "column_A", "column_B", "column_list", "batch_id")
_MARK = "model_gates_index"
#: column-wide type expectations: when one fails, every non-null value of the column is of the wrong type
_TYPE_EXPECTATIONS = ("expect_column_values_to_be_of_type", "expect_column_values_to_be_in_type_list")
#: map expectations whose verdict on a row depends on other rows (uniqueness, order) or on the column's type
_NOT_ROW_WISE = ("expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique",
                 "expect_multicolumn_values_to_be_unique", "expect_column_values_to_be_increasing",
                 "expect_column_values_to_be_decreasing", *_TYPE_EXPECTATIONS)
#: the result keys a partition returns for a row-wise expectation
_COUNTS = ("element_count", "missing_count", "unexpected_count")


def read_suite(path: Path) -> list[dict[str, Any]]:
    """Return the suite's expectations (``{type, kwargs, meta, severity?}``); raise ValueError if malformed."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(MSG_SUITE_READ.format(path=path.name, problem=first_line(exc))) from None
    items = doc.get("expectations") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise ValueError(MSG_SUITE_SHAPE.format(path=path.name, problem="no 'expectations' list"))
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            hint = " (GX 0.x 'expectation_type'?)" if isinstance(item, dict) and "expectation_type" in item else ""
            raise ValueError(MSG_SUITE_SHAPE.format(path=path.name, problem=f"expectation {i} has no 'type'{hint}"))
        if item.get("severity") is not None and item["severity"] not in SEVERITY_BLOCKS:
            raise ValueError(MSG_SUITE_SHAPE.format(
                path=path.name, problem=f"expectation {i} has severity {item['severity']!r}; "
                                        f"expected one of {', '.join(SEVERITY_BLOCKS)}"))
    return items


def check_names(items: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Return ``(type, scope)`` per expectation; a (type, scope) used twice gets ``#<position>`` on its type."""
    names = [(str(item["type"]), _scope(item.get("kwargs") or {})) for item in items]
    return [n if names.count(n) == 1 else (f"{n[0]}#{i}", n[1]) for i, n in enumerate(names)]


def _scope(kwargs: Mapping[str, Any]) -> str:
    if kwargs.get("column") is not None:
        return str(kwargs["column"])
    if kwargs.get("column_A") is not None:
        return f"{kwargs['column_A']}&{kwargs.get('column_B')}"
    if isinstance(kwargs.get("column_list"), list):
        return "&".join(map(str, kwargs["column_list"]))
    return ""


def run_gx(target: Target, suite_path: Path, gate_blocking: bool, settings: Settings) -> list[CheckResult]:
    """Validate ``target``'s frame against the suite and return one result per expectation."""
    try:
        items = read_suite(suite_path)
    except ValueError as exc:
        return [make_result(target.check_id("gx", "suite"), outcome=Outcome.ERROR, blocking=gate_blocking,
                            reason=REASON_SCHEMA_ERROR, message=str(exc))]
    names = check_names(items)
    blocking = [is_blocking(_our_severity(item.get("severity")), "block" if gate_blocking else "warn")
                for item in items]
    built, invalid = _build(items)
    out: dict[int, CheckResult] = {}
    for i, problem in invalid.items():
        out[i] = make_result(target.check_id("gx", *names[i]), outcome=Outcome.ERROR, blocking=blocking[i],
                             reason=REASON_SCHEMA_ERROR,
                             message=MSG_BAD_EXPECTATION.format(type=items[i]["type"], problem=problem))
    try:
        results = _validate(target.frame, built, settings.max_failure_cases)
    except Exception as exc:  # noqa: BLE001 -- GX can fail on data it cannot load; report, do not crash
        for i in built:
            out[i] = make_result(target.check_id("gx", *names[i]), outcome=Outcome.ERROR, blocking=blocking[i],
                                 reason=REASON_CHECK_ERROR,
                                 message=MSG_NOT_RUN.format(label=target.label, problem=first_line(exc)))
        results = {}
    for i, res in results.items():
        out[i] = _result(target, names[i], items[i], res, blocking[i], settings)
    return [out[i] for i in sorted(out)]


def _our_severity(gx_severity: str | None) -> str | None:
    if gx_severity is None:
        return None
    return "block" if SEVERITY_BLOCKS.get(gx_severity, True) else "warn"


def _build(items: list[dict[str, Any]]) -> tuple[dict[int, Any], dict[int, str]]:
    """Return GX Expectation objects by position, and the problem of each one GX rejects."""
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    built: dict[int, Any] = {}
    invalid: dict[int, str] = {}
    for i, item in enumerate(items):
        meta = {**(item.get("meta") or {}), _MARK: i}
        config = {"type": item["type"], "kwargs": dict(item.get("kwargs") or {}), "meta": meta}
        if item.get("severity") is not None:
            config["severity"] = item["severity"]
        try:
            built[i] = ExpectationConfiguration(**config).to_domain_obj()
        except Exception as exc:  # noqa: BLE001 -- GX raises many types for a bad expectation
            invalid[i] = first_line(exc).splitlines()[0]
    return built, invalid


def _validate(frame: pd.DataFrame, built: dict[int, Any], limit: int) -> dict[int, Any]:
    """Run the expectations as one suite on the whole DataFrame; return GX's results by position."""
    if not built:
        return {}
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(analytics_enabled=False, store_backend_defaults=InMemoryStoreBackendDefaults(),
                               progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False))
    context = gx.get_context(mode="ephemeral", project_config=config)
    asset = context.data_sources.add_pandas("model_gates").add_dataframe_asset("frame")
    batch = asset.add_batch_definition_whole_dataframe("whole").get_batch(batch_parameters={"dataframe": frame})
    suite = gx.ExpectationSuite(name="model_gates", expectations=list(built.values()))
    run = batch.validate(suite, result_format={"result_format": "SUMMARY", "partial_unexpected_count": limit})
    return {int(r.expectation_config.meta[_MARK]): r for r in run.results}


def _result(target: Target, name: tuple[str, str], item: dict[str, Any], res: Any, blocking: bool,
            settings: Settings, rows: int | None = None) -> CheckResult:
    """Turn one GX ExpectationValidationResult into a check (``rows``: the target's, when its
    frame holds only the schema)."""
    check_id = target.check_id("gx", *name)
    kwargs = dict(item.get("kwargs") or {})
    threshold = {k: v for k, v in kwargs.items() if k not in _SCOPE_KWARGS}
    scope = _scope(kwargs)
    fmt = {"label": target.label, "type": item["type"], "scope": f" on '{scope}'" if scope else ""}
    missing = [c for c in _columns(kwargs) if c not in target.frame.columns]
    if missing:
        return make_result(check_id, outcome=Outcome.FAIL, blocking=blocking,
                           observed=len(target.frame) if rows is None else rows,
                           threshold=threshold, reason=REASON_MISSING_COLUMN,
                           message=MSG_MISSING.format(col=missing[0], **fmt))
    problem = _raised(res.exception_info)
    if problem is not None:
        return make_result(check_id, outcome=Outcome.ERROR, blocking=blocking, threshold=threshold,
                           reason=REASON_CHECK_ERROR, message=MSG_RAISED.format(problem=problem, **fmt))
    result = dict(res.result or {})
    observed, details = _observed(result, bool(res.success), settings.max_failure_cases)
    if not res.success and observed is None and item["type"] in _TYPE_EXPECTATIONS:
        observed = int(target.frame[kwargs["column"]].notna().sum())
    if res.success:
        message = MSG_PASS.format(**fmt)
    elif "unexpected_count" in result:
        message = MSG_FAIL_ROWS.format(n=observed, total=result.get("element_count"), **fmt)
    else:
        message = MSG_FAIL_VALUE.format(observed=details.get("observed_value"), **fmt)
    return make_result(check_id, outcome=Outcome.PASS if res.success else Outcome.FAIL, blocking=blocking,
                       observed=observed, threshold=threshold, reason=REASON_BAD_ROWS, details=details,
                       message=message)


def _columns(kwargs: Mapping[str, Any]) -> list[str]:
    cols = [kwargs.get("column"), kwargs.get("column_A"), kwargs.get("column_B")]
    cols += list(kwargs.get("column_list") or [])
    return [c for c in cols if c is not None]


def _raised(info: Any) -> str | None:
    """Return the message of an exception GX caught while computing a metric, or None."""
    if not isinstance(info, Mapping):
        return None
    if "raised_exception" in info:
        return str(info.get("exception_message")) if info.get("raised_exception") else None
    for value in info.values():
        if isinstance(value, Mapping) and value.get("raised_exception"):
            return str(value.get("exception_message") or "unknown error").splitlines()[0]
    return None


def _observed(result: Mapping[str, Any], success: bool, limit: int) -> tuple[float | None, dict[str, Any]]:
    """Return ``observed`` (unexpected count, else a numeric observed value) and the details."""
    details: dict[str, Any] = {}
    for key in ("element_count", "missing_count", "unexpected_count", "unexpected_percent"):
        if key in result:
            details[key] = json_value(result[key])
    if "observed_value" in result:
        details["observed_value"] = _jsonish(result["observed_value"])
    if "unexpected_count" in result:
        index = list(result.get("partial_unexpected_index_list") or [])
        values = list(result.get("partial_unexpected_list") or [])
        details["examples"] = examples(index, values if len(values) == len(index) else None, limit)
        details["unexpected_values"] = _merged_counts(result.get("partial_unexpected_counts") or [], limit)
        return int(result["unexpected_count"] or 0), details
    value = result.get("observed_value")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value, details
    return (0 if success else None), details


def _merged_counts(counts: list[Mapping[str, Any]], limit: int) -> list[dict[str, Any]]:
    """Return GX's partial value counts with equal values merged (GX lists each NaN apart)."""
    merged: dict[str, dict[str, Any]] = {}
    for c in counts:
        value = json_value(c.get("value"))
        entry = merged.setdefault(json.dumps(value), {"value": value, "count": 0})
        entry["count"] += int(c.get("count", 0))
    return sorted(merged.values(), key=lambda e: (-e["count"], str(e["value"])))[:limit]


def _jsonish(value: Any) -> Any:
    """Return GX's observed value in JSON-safe form (lists and small dicts kept)."""
    if isinstance(value, Mapping):
        return {str(k): _jsonish(v) for k, v in list(value.items())[:50]}
    if isinstance(value, (list, tuple)):
        return [_jsonish(v) for v in list(value)[:50]]
    return json_value(value)


# ---------------------------------------------------------------- on partitions


@dataclass(frozen=True)
class BuiltSuite:
    """A suite's expectations built into GX objects once on the client: the objects and the problem
    of each one GX rejects, by position, and the positions of the row-wise valid ones."""

    items: list[dict[str, Any]]
    built: dict[int, Any]
    invalid: dict[int, str]
    row_wise: tuple[int, ...]

    def not_row_wise(self) -> list[int]:
        """Return the positions of the valid expectations that are not judged row by row (no partials)."""
        wise = set(self.row_wise)
        return [i for i in self.built if i not in wise]


def build_suite(items: list[dict[str, Any]]) -> BuiltSuite:
    """Return the suite's expectations built once, with the positions of those judging each row on its own."""
    built, invalid = _build(items)
    return BuiltSuite(items, built, invalid, _row_wise(items, built))


def _row_wise(items: list[dict[str, Any]], built: Mapping[int, Any]) -> tuple[int, ...]:
    """Return the positions of the built expectations that judge each row on its own."""
    from great_expectations.expectations.expectation import (
        ColumnMapExpectation,
        ColumnPairMapExpectation,
        MulticolumnMapExpectation,
    )

    kinds = (ColumnMapExpectation, ColumnPairMapExpectation, MulticolumnMapExpectation)
    return tuple(i for i, e in built.items() if isinstance(e, kinds) and items[i]["type"] not in _NOT_ROW_WISE)


@dataclass
class GxPartial:
    """One partition's row-wise expectations: GX's counts, first unexpected values and rows, or what
    GX raised; ``error`` when GX could not run the suite on the partition at all."""

    results: dict[int, dict[str, Any]] = field(default_factory=dict)
    error: str | None = None


def measure_gx(frame: pd.DataFrame, items: list[dict[str, Any]], positions: Sequence[int], limit: int) -> GxPartial:
    """Run the row-wise expectations at ``positions`` on one partition (runs on a worker); the
    frame's index is the rows' position in the whole source, so the rows GX names are those."""
    built, _ = _build(items)
    try:
        found = _validate(frame, {i: built[i] for i in positions if i in built}, limit)
    except Exception as exc:  # noqa: BLE001 -- GX can fail on data it cannot load; report, do not crash
        return GxPartial(error=first_line(exc))
    out = GxPartial()
    for i, res in found.items():
        result = dict(res.result or {})
        out.results[i] = {"raised": _raised(res.exception_info),
                          **{k: result[k] for k in _COUNTS if k in result},
                          "values": list(result.get("partial_unexpected_list") or []),
                          "index": list(result.get("partial_unexpected_index_list") or [])}
    return out


def merged_gx(target: Target, suite: BuiltSuite, parts: Sequence[GxPartial], rows: int,
              gate_blocking: bool, settings: Settings) -> list[CheckResult]:
    """Return the suite's checks from partition results, in the embedded order; ``target.frame``
    is the schema (columns only) and ``rows`` the target's row count."""
    limit = settings.max_failure_cases
    items, built, invalid = suite.items, suite.built, suite.invalid
    names = check_names(items)
    blocking = [is_blocking(_our_severity(item.get("severity")), "block" if gate_blocking else "warn")
                for item in items]
    wise = set(suite.row_wise)
    failed = next((p.error for p in parts if p.error is not None), None)
    out = []
    for i, item in enumerate(items):
        check_id = target.check_id("gx", *names[i])
        kwargs = dict(item.get("kwargs") or {})
        scope = _scope(kwargs)
        if i in invalid:
            out.append(make_result(check_id, outcome=Outcome.ERROR, blocking=blocking[i], reason=REASON_SCHEMA_ERROR,
                                   message=MSG_BAD_EXPECTATION.format(type=item["type"], problem=invalid[i])))
        elif i not in wise:
            out.append(make_result(check_id, outcome=Outcome.ERROR, blocking=blocking[i],
                                   reason=REASON_NOT_DISTRIBUTABLE, message=MSG_NOT_ROW_WISE.format(
                                       type=item["type"], scope=f" on '{scope}'" if scope else "")))
        elif failed is not None:
            out.append(make_result(check_id, outcome=Outcome.ERROR, blocking=blocking[i], reason=REASON_CHECK_ERROR,
                                   message=MSG_NOT_RUN.format(label=target.label, problem=failed)))
        else:
            res = _merged_result([p.results[i] for p in parts], getattr(built[i], "mostly", 1.0), limit)
            out.append(_result(target, names[i], item, res, blocking[i], settings, rows=rows))
    return out


def _merged_result(found: list[dict[str, Any]], mostly: float, limit: int) -> Any:
    """Add partitions' results of one map expectation into GX's whole-data result (SUMMARY format)."""
    raised = next((f["raised"] for f in found if f["raised"] is not None), None)
    if raised is not None:
        return SimpleNamespace(success=False, result={}, exception_info={"raised_exception": True,
                                                                         "exception_message": raised})
    total = {k: sum(int(f.get(k) or 0) for f in found) for k in _COUNTS if all(k in f for f in found)}
    elements, unexpected = total.get("element_count", 0), total.get("unexpected_count", 0)
    considered = elements - total["missing_count"] if "missing_count" in total else elements
    success = elements == 0 or considered == 0 or (considered - unexpected) / considered >= mostly
    values = [v for f in found for v in f["values"]][:limit]
    result: dict[str, Any] = {**total, "unexpected_percent": unexpected / considered * 100
                              if elements > 0 and considered > 0 else None,
                              "partial_unexpected_list": values,
                              "partial_unexpected_index_list": [r for f in found for r in f["index"]][:limit]}
    if limit > 0:  # as GX: how often each of the first ``limit`` unexpected values occurs among them
        try:
            counts = sorted(Counter(_hashable(v) for v in values).items(), key=lambda c: (-c[1], c[0]))
        except TypeError:  # GX gives no counts for unhashable or unorderable values either
            counts = None
        if counts is not None:
            result["partial_unexpected_counts"] = [{"value": v, "count": n} for v, n in counts]
    return SimpleNamespace(success=success, result=result, exception_info=None)


def _hashable(value: Any) -> Any:
    """GX counts a multicolumn expectation's unexpected rows (dicts) as tuples of their values."""
    return tuple(value.values()) if isinstance(value, dict) else value
