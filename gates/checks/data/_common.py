"""What every data-check engine shares: the frame under check, severities, results and examples.

Engines (built-in checks, pandera, Great Expectations, drift, overlap, leakage) measure; this
module turns a measurement into a :class:`~gates.results.CheckResult` the same way for all of
them, so a failing rule always reports its count of bad rows as ``observed`` and at most
``max_failure_cases`` example rows in ``details.examples``.
"""
from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from gates.decisions import to_status
from gates.identity import CheckId, plain_kind
from gates.results import CheckResult, Outcome

GATE_NAME = "data"
DEFAULT_MAX_FAILURE_CASES = 20
#: longest example value kept in a report (long strings are cut)
MAX_VALUE_CHARS = 120

# stable reason codes shared by the engines
REASON_BAD_ROWS = "bad_rows"
REASON_THRESHOLD = "threshold_breached"
REASON_MISSING_COLUMN = "missing_column"
REASON_ALL_NULL = "all_null"
REASON_NO_ROWS = "no_rows"
REASON_NOT_NUMERIC = "not_numeric"
REASON_CHECK_ERROR = "check_error"
REASON_SCHEMA_ERROR = "schema_error"
REASON_TOO_FEW_ROWS = "too_few_rows"
REASON_TYPE_MISMATCH = "type_mismatch"
REASON_UNDEFINED = "undefined"
REASON_UNKNOWN_LABEL = "unknown_label"


@dataclass(frozen=True)
class Target:
    """One DataFrame under check (the eval data or the reference) and how its check ids read.

    Checks on the eval data keep the ids of DESIGN section 6 (``data.min[age]``); the same rule on
    the reference data gets ``reference.`` before its name (``data.reference.min[age]``: name
    ``reference.min``, scope ``age``).
    """

    name: str
    frame: pd.DataFrame

    def check_id(self, name: str, kind: str = "", scope: str = "") -> CheckId:
        """Return the typed id of check ``name`` (``kind``, ``scope``) on this frame."""
        return data_id(name if self.name == "eval" else f"{self.name}.{name}", kind, scope)

    @property
    def label(self) -> str:
        """How messages name this frame."""
        return "the eval data" if self.name == "eval" else f"the {self.name} data"


@dataclass(frozen=True)
class Settings:
    """Gate-wide options every engine reads."""

    severity: str = "block"
    max_failure_cases: int = DEFAULT_MAX_FAILURE_CASES


def data_id(name: str, kind: str = "", scope: str = "") -> CheckId:
    """Return a data check's typed id.

    ``kind`` may be a name from a pandera schema or a GX suite: a backslash, ``.``, ``[``, ``]`` and
    line breaks in it are escaped (:func:`gates.identity.plain_kind`: ``ratio.max`` is ``ratio\\x2emax``),
    so two names never share an id. ``scope`` (columns, from the data) keeps every character; the
    id writes it escaped (:func:`gates.identity.one_line`).
    """
    return CheckId(GATE_NAME, name, plain_kind(kind), str(scope))


def is_blocking(*severities: str | None) -> bool:
    """Return True unless the first severity that is set (most specific first) is ``warn``."""
    for severity in severities:
        if severity is not None:
            return severity == "block"
    return True


def make_result(check_id: CheckId, *, outcome: Outcome, blocking: bool, message: str, reason: str = "",
                observed: float | None = None, threshold: Mapping[str, Any] | None = None,
                details: Mapping[str, Any] | None = None, ci_method: str | None = None) -> CheckResult:
    """Return the CheckResult of one data check; severity turns a failure into ``fail`` or ``warn``."""
    return CheckResult(
        id=str(check_id), check_id=check_id, gate=GATE_NAME, status=to_status(outcome, blocking), blocking=blocking,
        message=message, reason=reason if outcome is not Outcome.PASS else "",
        observed=_number(observed), threshold=dict(threshold or {}), details=dict(details or {}),
        ci_method=ci_method,
    )


def count_outcome(count: int) -> Outcome:
    """Return pass for no bad rows, fail otherwise."""
    return Outcome.PASS if count == 0 else Outcome.FAIL


def examples(index: Sequence[Any] | pd.Index, values: Sequence[Any] | None, limit: int) -> list[dict[str, Any]]:
    """Return at most ``limit`` example rows as ``{"index": ..., "value": ...}`` (JSON-safe)."""
    rows = []
    for i, label in enumerate(list(index[:limit])):
        row: dict[str, Any] = {"index": json_value(label)}
        if values is not None:
            row["value"] = json_value(values[i])
        rows.append(row)
    return rows


def mask_examples(series: pd.Series, bad: np.ndarray, limit: int) -> list[dict[str, Any]]:
    """Return the first ``limit`` rows of ``series`` where ``bad`` is True, as examples."""
    positions = np.flatnonzero(bad)[:limit]
    return examples(series.index[positions], series.iloc[positions].tolist(), limit)


def value_counts(values: pd.Series, limit: int) -> list[dict[str, Any]]:
    """Return the ``limit`` most frequent values with their counts (ties broken by text)."""
    counts = values.value_counts(dropna=False)
    table = sorted(((int(n), json_value(v)) for v, n in counts.items()), key=lambda t: (-t[0], str(t[1])))
    return [{"value": v, "count": n} for n, v in table[:limit]]


def json_value(value: Any) -> Any:
    """Return a JSON-safe, deterministic stand-in for one cell value."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        if math.isnan(f):
            return None
        return f if math.isfinite(f) else ("inf" if f > 0 else "-inf")
    if isinstance(value, str):
        return value if len(value) <= MAX_VALUE_CHARS else value[:MAX_VALUE_CHARS] + "..."
    if isinstance(value, (pd.Timestamp, dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): json_value(v) for k, v in list(value.items())[:MAX_VALUE_CHARS]}
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value[:MAX_VALUE_CHARS]]
    text = repr(value)
    return text if len(text) <= MAX_VALUE_CHARS else text[:MAX_VALUE_CHARS] + "..."


def first_line(exc: BaseException) -> str:
    """Return an exception's first message line, prefixed by its type."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _number(value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        return int(value)  # a count stays an integer in report.json
    f = float(value)
    return f if math.isfinite(f) else None
