"""A check's typed identity and the reason codes every gate shares.

A :class:`CheckId` is built once, where a gate plans the check, and travels on the
:class:`~gates.results.CheckResult`. Its text form is DESIGN section 6's ``GATE.NAME.KIND[SCOPE]``;
readers (reporters, publishers, chart data, pytest items) use its fields or the ``name``/``kind``/
``scope`` fields report.json carries, never a parse of the text. SCOPE may hold any character but
a newline (slice values with spaces, ``=``, ``&``, brackets, accents, emoji).
"""
from __future__ import annotations

import enum
from dataclasses import dataclass


class Reason(enum.StrEnum):
    """Why a check is not a plain pass: one list for every gate, enumerated in the report schema."""

    WITHIN_THRESHOLD = "within_threshold"
    THRESHOLD_BREACHED = "threshold_breached"
    INCONCLUSIVE = "inconclusive"
    NO_BASELINE = "no_baseline"
    BASELINE_REQUIRED = "baseline_required"
    MISSING_SCORES = "missing_scores"
    MISSING_COLUMN = "missing_column"
    SLICE_TOO_SMALL = "slice_too_small"
    TOO_FEW_ROWS = "too_few_rows"
    UNDEFINED = "undefined"
    NO_INTERVAL = "no_interval"
    BAD_DATA = "bad_data"
    BAD_ROWS = "bad_rows"
    ALL_NULL = "all_null"
    NO_ROWS = "no_rows"
    NOT_NUMERIC = "not_numeric"
    TYPE_MISMATCH = "type_mismatch"
    CHECK_ERROR = "check_error"
    SCHEMA_ERROR = "schema_error"
    PREDICT_FAILED = "predict_failed"
    MODEL_REJECTS_NAN = "model_rejects_nan"
    NOT_COMPUTABLE = "not_computable"
    GATE_ERROR = "gate_error"
    TEST_SKIPPED = "test_skipped"
    NOT_DISTRIBUTABLE = "not_distributable"


@dataclass(frozen=True, order=True)
class CheckId:
    """``gate.name[.kind][[scope]]``: the gate, the metric or check name, the threshold kind, the scope.

    >>> str(CheckId("fairness", "equalized_odds_difference", "max", "race&sex"))
    'fairness.equalized_odds_difference.max[race&sex]'
    >>> str(CheckId("data", "not_null", scope="job title [EU]"))
    'data.not_null[job title [EU]]'
    """

    gate: str
    name: str
    kind: str = ""
    scope: str = ""

    def __post_init__(self) -> None:
        for field, banned in (("gate", ".[]\n"), ("name", "[]\n"), ("kind", ".[]\n")):
            value = getattr(self, field)
            if not isinstance(value, str) or any(ch in value for ch in banned):
                raise ValueError(f"check id {field} {value!r} may not hold any of {banned!r}")
        if "\n" in self.scope or "\r" in self.scope:
            raise ValueError(f"check id scope {self.scope!r} may not hold a newline")

    def __str__(self) -> str:
        text = f"{self.gate}.{self.name}" + (f".{self.kind}" if self.kind else "")
        return text + (f"[{self.scope}]" if self.scope else "")

    def with_scope(self, scope: str) -> CheckId:
        return CheckId(self.gate, self.name, self.kind, scope)

    def as_dict(self) -> dict[str, str]:
        """Return the fields report.json carries beside ``id``."""
        return {"name": self.name, "kind": self.kind, "scope": self.scope}
