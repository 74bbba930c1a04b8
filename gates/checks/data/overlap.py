"""Train/eval overlap: the share of eval rows found verbatim in the reference (leakage of rows).

``data.overlap.max``: ``observed`` is the fraction of eval rows whose values, on the compared
columns, equal some reference row's; details hold the count and a few example row indices. Rows
are compared by a 64-bit hash of their values (pandas' ``hash_pandas_object``), one vectorised
pass per frame; numbers are compared as float64 so an int column in one frame matches the same
values stored as floats in the other (CSV readers do that when a column has nulls).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from gates.checks.data._common import (
    REASON_CHECK_ERROR,
    REASON_MISSING_COLUMN,
    REASON_NO_ROWS,
    REASON_THRESHOLD,
    Settings,
    data_id,
    examples,
    first_line,
    make_result,
)
from gates.checks.data._plan import SectionPlan, plan_section
from gates.results import CheckResult, Outcome

CHECK_ID = data_id("overlap", "max")
MSG_OVERLAP = "{n} of {total} eval rows ({fraction:.2%}) appear verbatim in the reference"
MSG_LIMIT = "; at most {limit:.2%} allowed"
MSG_MISSING = "cannot compare rows: column '{col}' is missing from the {where} data"
MSG_NO_COLUMNS = "cannot compare rows: the eval and reference data share no column"
MSG_EMPTY = "cannot compare rows: the {where} data has no rows"
MSG_CANNOT_HASH = "cannot compare rows: {problem}"


def overlap_columns(spec: Mapping[str, Any], eval_frame: pd.DataFrame, reference: pd.DataFrame,
                    skip: set[str]) -> list[str]:
    """Return ``overlap.columns``, or every column both frames share (less ``skip``), in eval order."""
    if spec.get("columns"):
        return [str(c) for c in spec["columns"]]
    shared = set(reference.columns)
    return [str(c) for c in eval_frame.columns if c in shared and c not in skip]


def row_hashes(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """Return one uint64 hash per row of ``frame[columns]``, numbers normalised to float64."""
    normal = {}
    for col in columns:
        series = frame[col]
        if ptypes.is_numeric_dtype(series.dtype) and not ptypes.is_bool_dtype(series.dtype):
            series = pd.Series(series.to_numpy(dtype=float, na_value=np.nan), index=series.index)
        normal[col] = series.reset_index(drop=True)
    return pd.util.hash_pandas_object(pd.DataFrame(normal), index=False).to_numpy()


def run_overlap(eval_frame: pd.DataFrame, reference: pd.DataFrame, spec: SectionPlan | Mapping[str, Any],
                skip: set[str], settings: Settings) -> list[CheckResult]:
    """Return the overlap check: the share of eval rows that also occur in the reference (``spec``:
    the section's plan; a mapping is planned here)."""
    plan = plan_section(spec, settings.severity)
    limit, blocking = float(plan.spec.get("max_fraction", 0.0)), plan.blocking
    threshold = {"max": limit}
    columns = overlap_columns(plan.spec, eval_frame, reference, skip)

    def error(reason: str, message: str) -> list[CheckResult]:
        return [make_result(CHECK_ID, outcome=Outcome.ERROR, blocking=blocking, reason=reason,
                            threshold=threshold, message=message)]

    if not columns:
        return error(REASON_MISSING_COLUMN, MSG_NO_COLUMNS)
    for where, frame in (("eval", eval_frame), ("reference", reference)):
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            return error(REASON_MISSING_COLUMN, MSG_MISSING.format(col=missing[0], where=where))
        if len(frame) == 0:
            return error(REASON_NO_ROWS, MSG_EMPTY.format(where=where))
    try:
        found = pd.Series(row_hashes(eval_frame, columns)).isin(row_hashes(reference, columns)).to_numpy()
    except Exception as exc:  # noqa: BLE001 -- cell values are arbitrary user data (unhashable objects)
        return error(REASON_CHECK_ERROR, MSG_CANNOT_HASH.format(problem=first_line(exc)))
    n = int(found.sum())
    fraction = n / len(eval_frame)
    ok = fraction <= limit
    message = MSG_OVERLAP.format(n=n, total=len(eval_frame), fraction=fraction)
    message += "" if ok else MSG_LIMIT.format(limit=limit)
    rows = eval_frame.index[np.flatnonzero(found)[:settings.max_failure_cases]]
    return [make_result(CHECK_ID, outcome=Outcome.PASS if ok else Outcome.FAIL, blocking=blocking,
                        observed=fraction, threshold=threshold, reason=REASON_THRESHOLD, message=message,
                        details={"rows": n, "eval_rows": len(eval_frame), "columns": columns,
                                 "examples": examples(rows, None, settings.max_failure_cases)})]
