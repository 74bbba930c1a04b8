"""A check's typed identity and the reason codes every gate shares.

A :class:`CheckId` is built once, where a gate plans the check, and travels on the
:class:`~gates.results.CheckResult`. Its text form is DESIGN section 6's ``GATE.NAME.KIND[SCOPE]``;
readers (reporters, publishers, chart data, pytest items) use its fields or the ``name``/``kind``/
``scope`` fields report.json carries, never a parse of the text. SCOPE may hold any character
(slice values with spaces, ``=``, ``&``, brackets, accents, emoji, line breaks); the text form
writes a backslash as ``\\``, a line break as ``\n`` and a carriage return as ``\r``
(:func:`one_line`), so it stays on one line and :func:`untyped` reads back exactly the value it was
written from: two different values never share an id.
"""
from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


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
    NO_MODEL = "no_model"
    NOT_A_FEATURE = "not_a_feature"
    NO_STEP = "no_step"
    GATE_ERROR = "gate_error"
    TEST_PASSED = "test_passed"
    TEST_SKIPPED = "test_skipped"
    TEST_FAILED = "test_failed"
    TEST_ERROR = "test_error"
    TEST_XFAILED = "test_xfailed"
    NOT_DISTRIBUTABLE = "not_distributable"


@dataclass(frozen=True, order=True)
class CheckId:
    """``gate.name[.kind][[scope]]``: the gate, the metric or check name, the threshold kind, the scope.

    >>> str(CheckId("fairness", "equalized_odds_difference", "max", "race&sex"))
    'fairness.equalized_odds_difference.max[race&sex]'
    >>> str(CheckId("data", "not_null", scope="job title [EU]"))
    'data.not_null[job title [EU]]'

    ``scope`` holds the value as it is; ``str()`` and :meth:`as_dict` write it escaped (:func:`one_line`).
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
        if not isinstance(self.scope, str):
            raise ValueError(f"check id scope {self.scope!r} is not text")

    def __str__(self) -> str:
        text = f"{self.gate}.{self.name}" + (f".{self.kind}" if self.kind else "")
        return text + (f"[{one_line(self.scope)}]" if self.scope else "")

    def with_scope(self, scope: str) -> CheckId:
        return CheckId(self.gate, self.name, self.kind, scope)

    def as_dict(self) -> dict[str, str]:
        """Return the fields report.json carries beside ``id`` (``scope`` written as in the id)."""
        return {"name": self.name, "kind": self.kind, "scope": one_line(self.scope)}


_ESCAPES = str.maketrans({"\\": "\\\\", "\n": "\\n", "\r": "\\r"})
#: a KIND (a pandera check's or GX expectation's name) cannot hold ``.``, ``[`` or ``]`` either
_KIND_ESCAPES = str.maketrans({"\\": "\\\\", "\n": "\\n", "\r": "\\r", ".": "\\x2e", "[": "\\x5b", "]": "\\x5d"})
_UNESCAPE = re.compile(r"\\([\\nr])")
_UNESCAPED = {"\\": "\\", "n": "\n", "r": "\r"}


def one_line(text: str) -> str:
    r"""Return ``text`` as an id writes it: ``\`` as ``\\``, a line break as ``\n``, a carriage return as ``\r``.

    A slice value or column name read from data may hold a line break; its check id then shows
    the escape (a waiver names it the same way: ``'region=north\nwest'`` in single-quoted YAML).
    The backslash itself is escaped, so a literal backslash-n in a value (``'north\\nwest'``)
    never meets a line break in one id; :func:`unescape` reverses it exactly.

    >>> one_line("north\nwest"), one_line("north\\nwest")
    ('north\\nwest', 'north\\\\nwest')
    """
    return text.translate(_ESCAPES)


def unescape(text: str) -> str:
    r"""Return the value :func:`one_line` wrote as ``text``; a backslash before any other character is kept.

    >>> unescape(one_line("a\\nb")) == "a\\nb" and unescape(one_line("a\nb")) == "a\nb"
    True
    """
    return _UNESCAPE.sub(lambda m: _UNESCAPED[m[1]], text) if "\\" in text else text


def plain_kind(text: str) -> str:
    r"""Return a name from a schema or suite as an id's KIND holds it: :func:`one_line`, and ``.``, ``[``, ``]``
    written as ``\x2e``, ``\x5b``, ``\x5d``, so two different names never share a KIND.

    >>> plain_kind("str_length"), plain_kind("ratio.max"), plain_kind("ratio_max")
    ('str_length', 'ratio\\x2emax', 'ratio_max')
    """
    return text.translate(_KIND_ESCAPES)


#: GATE, NAME and KIND hold no ``]`` either (:class:`CheckId`): a text with one there is read whole as the name
_TEXT = re.compile(r"^(?P<gate>[^.\[\]\n]+)\.(?P<name>[^.\[\]\n]+)(?:\.(?P<kind>[^.\[\]\n]+))?(?:\[(?P<scope>[^\n]*)\])?$")


def untyped(gate: str, text: str) -> CheckId:
    """Return the identity of a check that was given only as text (``GATE.NAME.KIND[SCOPE]``).

    For results of gates that build text ids (the data gate's irregular ids, third-party gates) and
    reports written before report.json carried the fields: the one place an id's text is read. The
    scope is read back with :func:`unescape`, so ``untyped(gate, str(cid)) == cid``. A text that does
    not have that shape keeps it whole as the name.
    """
    m = _TEXT.match(text)
    if m is None or (gate and m["gate"] != gate):
        name = text.removeprefix(f"{gate}.") if gate else text
        return CheckId(gate or "unknown", name.replace("[", "(").replace("]", ")").replace("\n", " "))
    return CheckId(m["gate"], m["name"], m["kind"] or "", unescape(m["scope"] or ""))


def of_report(check: Mapping[str, Any]) -> CheckId:
    """Return the identity of a report.json check from its ``gate``, ``name``, ``kind`` and ``scope`` fields.

    ``scope`` is written as in the id (:meth:`CheckId.as_dict`) and read back with :func:`unescape`.
    """
    gate = str(check.get("gate") or "")
    if "name" in check:
        return CheckId(gate, str(check["name"]), str(check.get("kind") or ""), unescape(str(check.get("scope") or "")))
    return untyped(gate, str(check.get("id", "")))
