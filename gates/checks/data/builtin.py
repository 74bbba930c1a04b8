"""Built-in data checks declared in gates.yaml, for teams with neither pandera nor Great Expectations.

``checks: {row_count: {min, max}, required_columns: [...], columns: {col: {dtype, min, max,
max_null_fraction, allowed, unique, regex}}}``. Each (column, rule) is one check whose
``observed`` is its number of bad rows (``null_fraction`` reports the fraction). Every rule is one
vectorised pass over its column; bad data (a missing column, wrong types, all nulls, no rows)
becomes a ``fail``, ``skipped`` or ``error`` check, never an exception.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from gates.checks.data._common import (
    REASON_ALL_NULL,
    REASON_BAD_ROWS,
    REASON_CHECK_ERROR,
    REASON_MISSING_COLUMN,
    REASON_NO_ROWS,
    REASON_NOT_NUMERIC,
    REASON_THRESHOLD,
    Settings,
    Target,
    count_outcome,
    first_line,
    make_result,
    mask_examples,
    value_counts,
)
from gates.checks.data._plan import ChecksPlan, plan_checks
from gates.identity import CheckId
from gates.results import CheckResult, Outcome

MSG_ROWS_MIN = "{label} has {n} rows; at least {limit} are required"
MSG_ROWS_MAX = "{label} has {n} rows; at most {limit} are allowed"
MSG_ROWS_OK = "{label} has {n} rows"
MSG_MISSING = "column '{col}' is missing from {label}"
MSG_PRESENT = "column '{col}' is present"
MSG_SKIPPED_MISSING = "not checked: column '{col}' is missing from {label}"
MSG_NO_ROWS = "cannot check column '{col}': {label} has no rows"
MSG_ALL_NULL = "cannot check column '{col}': every value is null"
MSG_RULE_ERROR = "cannot check column '{col}': {problem}"
MSG_NOT_NUMERIC = "column '{col}' holds {dtype} values, which have no numeric {rule}"
MSG_BAD = "{n} of {total} values of '{col}' {what}"
MSG_OK = "every value of '{col}' {what_ok}"
MSG_NULLS = "{n} of {total} values of '{col}' are null ({fraction:.2%}; at most {limit:.2%} allowed)"
MSG_NULLS_OK = "{n} of {total} values of '{col}' are null ({fraction:.2%})"

#: dtype names accepted by ``columns.<col>.dtype``
DTYPES = ("int", "float", "numeric", "bool", "string", "category", "datetime")


@dataclass(frozen=True)
class _Rule:
    """One row-level rule: its id name, threshold, bad-row mask and how messages word it."""

    name: str
    threshold: Mapping[str, Any]
    bad: Callable[[pd.Series, np.ndarray], np.ndarray]
    what: str
    what_ok: str
    needs_values: bool = True


def run_builtin(target: Target, section: ChecksPlan | Mapping[str, Any], settings: Settings) -> list[CheckResult]:
    """Return one result per declared rule of the ``checks`` section (its plan) on ``target``'s frame."""
    plan = plan_checks(section, settings.severity)
    out = _row_count(target, plan.row_count, plan.row_count_blocking)
    out.extend(_required(target, c.name, c.blocking) for c in plan.required)
    for c in plan.columns:
        out.extend(_column(target, c.name, c.rules, c.blocking, settings))
    return out


def _row_count(target: Target, spec: Mapping[str, Any], blocking: bool) -> list[CheckResult]:
    n = len(target.frame)
    out = []
    for kind, msg in (("min", MSG_ROWS_MIN), ("max", MSG_ROWS_MAX)):
        if spec.get(kind) is None:
            continue
        limit = int(spec[kind])
        ok = n >= limit if kind == "min" else n <= limit
        out.append(make_result(
            target.check_id("row_count", kind), outcome=Outcome.PASS if ok else Outcome.FAIL,
            blocking=blocking, observed=n, threshold={kind: limit}, reason=REASON_THRESHOLD,
            message=(MSG_ROWS_OK if ok else msg).format(label=target.label, n=n, limit=limit)))
    return out


def _required(target: Target, col: str, blocking: bool) -> CheckResult:
    """A missing column makes every row bad, so its count is the number of rows."""
    present = col in target.frame.columns
    return make_result(
        target.check_id("required", scope=col), outcome=Outcome.PASS if present else Outcome.FAIL,
        blocking=blocking, observed=0 if present else len(target.frame), threshold={"required": True},
        reason=REASON_MISSING_COLUMN,
        message=(MSG_PRESENT if present else MSG_MISSING).format(col=col, label=target.label))


def _column(target: Target, col: str, rules: Mapping[str, Any], blocking: bool,
            settings: Settings) -> list[CheckResult]:
    """Evaluate every rule of one column; its null mask is computed once and shared."""
    notna = target.frame[col].notna().to_numpy() if col in target.frame.columns else None
    out = []
    for rule in _rules(rules):
        check_id = target.check_id(rule.name, scope=col)
        out.append(_evaluate(target, col, notna, rule, check_id, blocking, settings))
    if rules.get("max_null_fraction") is not None:
        out.append(_nulls(target, col, notna, float(rules["max_null_fraction"]), blocking, settings))
    return out


def _rules(rules: Mapping[str, Any]) -> list[_Rule]:
    """Return the row-level rules declared for one column, in a fixed order."""
    out = []
    if rules.get("dtype") is not None:
        kind = rules["dtype"]
        out.append(_Rule("dtype", {"dtype": kind}, lambda s, ok: _not_of_type(s, ok, kind),
                         f"are not of type {kind}", f"is of type {kind}"))
    if rules.get("min") is not None:
        lo = rules["min"]
        out.append(_Rule("min", {"min": lo}, lambda s, ok: _outside(s, ok, lo, None),
                         f"are below {lo} or not numbers", f"is at least {lo}"))
    if rules.get("max") is not None:
        hi = rules["max"]
        out.append(_Rule("max", {"max": hi}, lambda s, ok: _outside(s, ok, None, hi),
                         f"are above {hi} or not numbers", f"is at most {hi}"))
    if rules.get("allowed") is not None:
        allowed = list(rules["allowed"])
        out.append(_Rule("allowed", {"allowed": allowed}, lambda s, ok: _not_allowed(s, ok, allowed),
                         "are not among the allowed values", "is an allowed value"))
    if rules.get("unique"):
        out.append(_Rule("unique", {"unique": True}, _duplicated,
                         "repeat another row's value", "is unique"))
    if rules.get("regex") is not None:
        pattern = re.compile(rules["regex"])
        out.append(_Rule("regex", {"regex": pattern.pattern}, lambda s, ok: _not_matching(s, ok, pattern),
                         f"do not match {pattern.pattern!r}", f"matches {pattern.pattern!r}"))
    return out


def _evaluate(target: Target, col: str, notna: np.ndarray | None, rule: _Rule, check_id: CheckId, blocking: bool,
              settings: Settings) -> CheckResult:
    """Apply one rule to one column, turning unusable data into a skipped or error check."""
    frame = target.frame

    def error(reason: str, message: str) -> CheckResult:
        return make_result(check_id, outcome=Outcome.ERROR, blocking=blocking, reason=reason,
                           threshold=rule.threshold, message=message)

    if notna is None:
        return make_result(check_id, outcome=Outcome.SKIPPED, blocking=blocking, reason=REASON_MISSING_COLUMN,
                           threshold=rule.threshold, message=MSG_SKIPPED_MISSING.format(col=col, label=target.label))
    series = frame[col]
    if len(series) == 0:
        return error(REASON_NO_ROWS, MSG_NO_ROWS.format(col=col, label=target.label))
    if not notna.any():
        return error(REASON_ALL_NULL, MSG_ALL_NULL.format(col=col))
    if rule.name in ("min", "max") and ptypes.is_datetime64_any_dtype(series.dtype):
        return error(REASON_NOT_NUMERIC, MSG_NOT_NUMERIC.format(col=col, dtype=series.dtype, rule=rule.name))
    try:
        n_bad, details = _measure(series, notna, rule, settings.max_failure_cases)
    except Exception as exc:  # noqa: BLE001 -- cell values are arbitrary user data (odd types, failing __str__)
        return error(REASON_CHECK_ERROR, MSG_RULE_ERROR.format(col=col, problem=first_line(exc)))
    fmt = {"n": n_bad, "total": int(np.count_nonzero(notna)), "col": col, "what": rule.what, "what_ok": rule.what_ok}
    return make_result(check_id, outcome=count_outcome(n_bad), blocking=blocking, observed=n_bad,
                       threshold=rule.threshold, reason=REASON_BAD_ROWS, details=details,
                       message=(MSG_BAD if n_bad else MSG_OK).format(**fmt))


def _measure(series: pd.Series, notna: np.ndarray, rule: _Rule, limit: int) -> tuple[int, dict[str, Any]]:
    """Return the rule's bad-row count and details (examples, and value counts where they help)."""
    bad = np.asarray(rule.bad(series, notna), dtype=bool)
    n_bad = int(np.count_nonzero(bad))
    details: dict[str, Any] = {"rows": len(series), "non_null": int(np.count_nonzero(notna)),
                               "examples": mask_examples(series, bad, limit)}
    if n_bad and rule.name in ("allowed", "dtype"):
        details["unexpected_values"] = value_counts(series[bad], limit)
    if rule.name == "dtype":
        details["pandas_dtype"] = str(series.dtype)
    return n_bad, details


def _nulls(target: Target, col: str, notna: np.ndarray | None, limit: float, blocking: bool,
           settings: Settings) -> CheckResult:
    """``max_null_fraction: 0`` is ``data.not_null[col]`` (observed: null rows); otherwise
    ``data.null_fraction.max[col]`` (observed: the fraction, with the count in details)."""
    strict = limit == 0
    check_id = target.check_id("not_null", scope=col) if strict else target.check_id("null_fraction", "max", col)
    threshold = {"max_null_fraction": limit}
    if notna is None:
        return make_result(check_id, outcome=Outcome.SKIPPED, blocking=blocking, reason=REASON_MISSING_COLUMN,
                           threshold=threshold, message=MSG_SKIPPED_MISSING.format(col=col, label=target.label))
    series = target.frame[col]
    if len(series) == 0:
        return make_result(check_id, outcome=Outcome.ERROR, blocking=blocking, reason=REASON_NO_ROWS,
                           threshold=threshold, message=MSG_NO_ROWS.format(col=col, label=target.label))
    isna = ~notna
    n_null = len(series) - int(np.count_nonzero(notna))
    fraction = n_null / len(series)
    ok = fraction <= limit
    fmt = {"n": n_null, "total": len(series), "col": col, "fraction": fraction, "limit": limit}
    return make_result(
        check_id, outcome=Outcome.PASS if ok else Outcome.FAIL, blocking=blocking,
        observed=n_null if strict else fraction, threshold=threshold, reason=REASON_BAD_ROWS,
        message=(MSG_NULLS_OK if ok else MSG_NULLS).format(**fmt),
        details={"rows": len(series), "null_rows": n_null, "null_fraction": fraction,
                 "examples": mask_examples(series, isna, settings.max_failure_cases)})


# ---------------------------------------------------------------- vectorised bad-row masks
# Each takes the column and its non-null mask and returns a boolean array, True where a non-null
# value breaks the rule (nulls are the business of max_null_fraction, never counted twice).


def _outside(series: pd.Series, notna: np.ndarray, lo: float | None, hi: float | None) -> np.ndarray:
    """Values below ``lo`` / above ``hi``; in a non-numeric column, values that are not numbers too."""
    if ptypes.is_numeric_dtype(series.dtype):
        values = series.to_numpy(dtype=float, na_value=np.nan) if _has_na_mask(series) else series.to_numpy()
        bad = np.zeros(len(series), dtype=bool)
    else:
        coerced = pd.to_numeric(series.astype(object), errors="coerce")
        values = coerced.to_numpy(dtype=float, na_value=np.nan)
        bad = notna & np.isnan(values)
    with np.errstate(invalid="ignore"):  # NaN compares False: nulls are never out of range
        if lo is not None:
            bad |= values < lo
        if hi is not None:
            bad |= values > hi
    return bad


def _has_na_mask(series: pd.Series) -> bool:
    """True for pandas extension dtypes (Int64, Float64, boolean) whose nulls are a separate mask."""
    return not isinstance(series.dtype, np.dtype)


def _not_allowed(series: pd.Series, notna: np.ndarray, allowed: list[Any]) -> np.ndarray:
    return notna & ~series.isin(allowed).to_numpy()


def _duplicated(series: pd.Series, notna: np.ndarray) -> np.ndarray:
    """Every row whose value occurs more than once is bad (pandera's ``report_duplicates='all'``)."""
    return notna & series.duplicated(keep=False).to_numpy()


def _not_matching(series: pd.Series, notna: np.ndarray, pattern: re.Pattern[str]) -> np.ndarray:
    """The whole value must match; non-string values are matched as their text."""
    text = series if ptypes.is_string_dtype(series.dtype) and series.dtype != object else series.astype("string")
    matched = text.str.fullmatch(pattern.pattern).to_numpy(dtype=bool, na_value=True)
    return notna & ~matched


_PYTYPES: Mapping[str, tuple[type, ...]] = {
    "int": (int, np.integer),
    "float": (int, float, np.integer, np.floating),
    "numeric": (int, float, np.integer, np.floating),
    "bool": (bool, np.bool_),
    "string": (str,),
    "category": (str,),
    "datetime": (pd.Timestamp, np.datetime64),
}


def _not_of_type(series: pd.Series, notna: np.ndarray, kind: str) -> np.ndarray:
    """Return non-null values not of ``kind``.

    A column of the right pandas dtype has none. Object columns are checked value by value (mixed
    types are common there). Integral floats count as ``int``, since pandas stores an int column
    with nulls as float; ints count as ``float``, since a CSV writes 2.0 as 2.
    """
    dtype = series.dtype
    if _dtype_matches(dtype, kind):
        return np.zeros(len(series), dtype=bool)
    if kind == "int" and ptypes.is_float_dtype(dtype):
        values = series.to_numpy(dtype=float, na_value=np.nan)
        with np.errstate(invalid="ignore"):
            return notna & (np.floor(values) != values)
    if dtype == object:
        allowed = _PYTYPES[kind]
        wrong = series.map(lambda v: not isinstance(v, allowed) or (isinstance(v, (bool, np.bool_)) and kind != "bool"))
        return notna & wrong.to_numpy(dtype=bool)
    return notna


def _dtype_matches(dtype: Any, kind: str) -> bool:
    is_bool = ptypes.is_bool_dtype(dtype)
    if kind == "int":
        return ptypes.is_integer_dtype(dtype) and not is_bool
    if kind in ("float", "numeric"):
        return ptypes.is_numeric_dtype(dtype) and not is_bool
    if kind == "bool":
        return is_bool
    if kind == "datetime":
        return ptypes.is_datetime64_any_dtype(dtype)
    if isinstance(dtype, pd.CategoricalDtype):
        return kind == "category" or ptypes.is_string_dtype(dtype.categories.dtype)
    return ptypes.is_string_dtype(dtype) and dtype != object
