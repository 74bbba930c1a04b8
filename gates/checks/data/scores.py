"""A per_example model's score columns: always checked, blocking, with or without a ``gates.data`` section.

``data.scores.not_null[COLUMN]`` fails with the number of eval rows whose score is missing (null, or
a number that is not finite), for every score column of the candidate and the baseline: a mean
over the rows that happen to have a score would silently change what is being compared.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from gates.checks.data._common import (
    DEFAULT_MAX_FAILURE_CASES,
    REASON_BAD_ROWS,
    count_outcome,
    data_id,
    make_result,
    mask_examples,
)
from gates.identity import CheckId
from gates.results import CheckResult

if TYPE_CHECKING:
    from gates.context import EvalContext

MSG_OK = "all {n} eval rows have a {role} score in '{col}' ({name})"
MSG_MISSING = "{k} of {n} eval rows have no {role} score in '{col}' ({name}: null or not a finite number)"


def check_id(col: str) -> CheckId:
    """Return the id of the score column ``col``'s check: ``data.scores.not_null[COLUMN]``."""
    return data_id("scores", "not_null", col)


def run_score_checks(ctx: EvalContext) -> list[CheckResult]:
    """Return one ``data.scores.not_null[COLUMN]`` per score column (none unless task is per_example)."""
    if not ctx.is_per_example:
        return []
    out = []
    for role in ("candidate", "baseline"):
        src = getattr(ctx.policy.model, role)
        for name, col in src.named_scores:
            out.append(_not_null(ctx, role, name, col))
    return out


def _not_null(ctx: EvalContext, role: str, name: str, col: str) -> CheckResult:
    k, n, found = missing_scores(ctx.frame[col], DEFAULT_MAX_FAILURE_CASES)
    return score_result(role, name, col, k, n, found)


def missing_scores(series: pd.Series, limit: int) -> tuple[int, int, list[dict[str, Any]]]:
    """Return how many of ``series``' rows have no score (null or not finite), its rows, and the first
    ``limit`` of them as examples; counts of disjoint rows add."""
    values = series.to_numpy(dtype=np.float64, na_value=np.nan) if _numeric(series) else None
    bad = series.isna().to_numpy() if values is None else ~np.isfinite(values)
    return int(np.count_nonzero(bad)), len(series), mask_examples(series, bad, limit)


def score_result(role: str, name: str, col: str, k: int, n: int, found: list[dict[str, Any]]) -> CheckResult:
    """Return ``data.scores.not_null[COLUMN]``: ``k`` of ``n`` rows without a score, ``found`` the examples."""
    words = {"k": k, "n": n, "col": col, "name": name, "role": role}
    return make_result(check_id(col), outcome=count_outcome(k), blocking=True,
                       message=(MSG_MISSING if k else MSG_OK).format(**words), reason=REASON_BAD_ROWS,
                       observed=k, threshold={"max": 0},
                       details={"rows": n, "null_rows": k, "score": name, "role": role,
                                "examples": found[:DEFAULT_MAX_FAILURE_CASES]})


def _numeric(series: object) -> bool:
    import pandas as pd

    return bool(pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series))
