"""Run a pandera schema (its YAML file, or a Python ``package.module:schema``) as data checks.

Validation is lazy, so every problem is found in one pass. Each declared (column, check) becomes
one check ``data.pandera.<check>[<column>]`` (``data.pandera.<check>`` for a dataframe-wide
check): ``pass`` with observed 0, or ``fail`` with the number of failing rows and at most
``max_failure_cases`` examples read from pandera's failure cases, never the whole table. A check
that raised on the data (a comparison on the wrong dtype) is ``error``; checks on a column that
is missing are ``skipped`` (the missing column fails ``column_in_dataframe``).
pandera is imported only here, only when a policy uses it.
"""
from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
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
    json_value,
    make_result,
)
from gates.results import CheckResult, Outcome

MSG_LOAD = "cannot load the pandera schema {ref}: {problem}"
MSG_NOT_SCHEMA = "{ref} is a {kind}, not a pandera DataFrameSchema or DataFrameModel"
MSG_NO_MODULE = "cannot find Python module '{module}' (looked in {base} and the installed packages)"
MSG_RAISED = "pandera could not validate {label}: {problem}"
MSG_PASS = "{label} passes {check}"
MSG_FAIL_ROWS = "{n} rows of {label} fail {check}"
MSG_FAIL = "{label} fails {check}: {cases}"
MSG_MISSING = "column '{col}' is missing from {label}"
MSG_DTYPE = "column '{col}' of {label} has dtype {cases}, not the schema's"
MSG_CHECK_ERROR = "{check} raised on {label}: {problem}"
MSG_SKIPPED = "not checked: column '{col}' is missing from {label}"

#: ``package.module:attribute`` (a YAML path never matches: it has a suffix and no colon-identifier)
PYTHON_REF = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
#: pandera's built-in column checks, named as its failure cases name them
NOT_NULLABLE, UNIQUE, PRESENT, DTYPE = "not_nullable", "field_uniqueness", "column_in_dataframe", "dtype"
EXTRA_COLUMNS, MULTI_UNIQUE = "column_in_schema", "multiple_fields_uniqueness"

_Key = tuple[str | None, str, int | None]  # (column, check kind, check index)
_Name = tuple[str, str]  # (check name, column scope) of a check's id


def is_python_ref(ref: str) -> bool:
    """True when ``ref`` names a Python object (``pkg.mod:schema``) rather than a YAML file."""
    return bool(PYTHON_REF.match(ref))


def schema_problem(ref: str, base_dir: Path) -> str | None:
    """Return why ``ref`` cannot be a schema (a missing file or module), or None; imports nothing heavy."""
    if not is_python_ref(ref):
        path = base_dir / ref
        return None if path.is_file() else f"file not found: {ref}"
    module = ref.partition(":")[0]
    with _importable_from(base_dir):
        try:
            found = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            found = None
    return None if found is not None else MSG_NO_MODULE.format(module=module, base=base_dir)


def load_schema(ref: str, base_dir: Path) -> Any:
    """Return the pandera DataFrameSchema that ``ref`` names (YAML path or ``pkg.mod:schema``)."""
    import pandera.pandas as pa

    if not is_python_ref(ref):
        return pa.DataFrameSchema.from_yaml(base_dir / ref)
    module_name, _, attr = ref.partition(":")
    with _importable_from(base_dir):
        obj = getattr(importlib.import_module(module_name), attr)
    if isinstance(obj, type) and issubclass(obj, pa.DataFrameModel):
        return obj.to_schema()
    if isinstance(obj, pa.DataFrameSchema):
        return obj
    raise TypeError(MSG_NOT_SCHEMA.format(ref=ref, kind=type(obj).__name__))


@contextmanager
def _importable_from(base_dir: Path) -> Iterator[None]:
    """Let a schema module that sits next to gates.yaml be imported, without leaving a trace."""
    entry = str(base_dir)
    added = entry not in sys.path
    if added:
        sys.path.insert(0, entry)
    try:
        yield
    finally:
        if added:
            sys.path.remove(entry)


@dataclass
class _Found:
    """What pandera reported for one check: failing rows, examples, or the error it raised."""

    count: int | None = 0
    examples: list[dict[str, Any]] = field(default_factory=list)
    cases: list[Any] = field(default_factory=list)
    error: str | None = None


def run_pandera(target: Target, ref: str, base_dir: Path, blocking: bool, settings: Settings) -> list[CheckResult]:
    """Validate ``target``'s frame against the schema and return one result per check."""
    try:
        schema = load_schema(ref, base_dir)
    except Exception as exc:  # noqa: BLE001 -- a user's schema file or module may fail in any way
        return [make_result(target.check_id("pandera", "schema"), outcome=Outcome.ERROR, blocking=blocking,
                            reason=REASON_SCHEMA_ERROR, message=MSG_LOAD.format(ref=ref, problem=first_line(exc)))]
    declared = _declared(schema)
    try:
        found = _validate(schema, target.frame, declared, settings.max_failure_cases)
    except Exception as exc:  # noqa: BLE001 -- pandera may raise on data it cannot even inspect
        return [make_result(target.check_id("pandera", "schema"), outcome=Outcome.ERROR, blocking=blocking,
                            reason=REASON_SCHEMA_ERROR,
                            message=MSG_RAISED.format(label=target.label, problem=first_line(exc)))]
    missing = {key[0] for key in found if key[1] == PRESENT}
    names = dict(declared)
    for key in found:
        names.setdefault(key, _name(key))
    return [_result(target, name, key, found.get(key), missing, blocking) for key, name in names.items()]


def _declared(schema: Any) -> dict[_Key, _Name]:
    """Return every check the schema declares, keyed like its failures, with its report name.

    Checks on regex-matched columns are not listed ahead (their column names are patterns);
    their failures are still reported.
    """
    out: dict[_Key, _Name] = {}
    for col, column in schema.columns.items():
        if getattr(column, "regex", False):
            continue
        col = str(col)
        if getattr(column, "required", True):
            out[(col, PRESENT, None)] = (PRESENT, col)
        if column.dtype is not None:
            out[(col, DTYPE, None)] = (DTYPE, col)
        if not column.nullable:
            out[(col, NOT_NULLABLE, None)] = (NOT_NULLABLE, col)
        if column.unique:
            out[(col, UNIQUE, None)] = (UNIQUE, col)
        out.update(_check_names(col, column.checks))
    if schema.unique:
        out[(None, MULTI_UNIQUE, None)] = (MULTI_UNIQUE, "&".join(map(str, schema.unique)))
    if schema.strict is True:
        out[(None, EXTRA_COLUMNS, None)] = (EXTRA_COLUMNS, "")
    out.update(_check_names(None, schema.checks))
    return out


def _check_names(col: str | None, checks: list[Any]) -> dict[_Key, _Name]:
    """Name each Check by its pandera name; a name used twice on one column gets ``#<index>``."""
    names = [str(getattr(c, "name", None) or f"check{i}") for i, c in enumerate(checks)]
    scope = "" if col is None else str(col)
    return {(col, "check", i): (n if names.count(n) == 1 else f"{n}#{i}", scope) for i, n in enumerate(names)}


def _name(key: _Key) -> _Name:
    col, kind, index = key
    return (kind if index is None else f"{kind}#{index}", "" if col is None else str(col))


def _validate(schema: Any, frame: pd.DataFrame, declared: dict[_Key, _Name], limit: int) -> dict[_Key, _Found]:
    """Run pandera lazily and summarise its failures per check (counts plus a few examples)."""
    import pandera.errors as pe

    try:
        schema.validate(frame, lazy=True)
    except pe.SchemaErrors as exc:
        found: dict[_Key, _Found] = {}
        for err in exc.schema_errors:
            key = _key(err, declared)
            _absorb(found.setdefault(key, _Found()), err, key, frame, limit)
        return found
    return {}


def _key(err: Any, declared: dict[_Key, _Name]) -> _Key:
    check, index = err.check, err.check_index
    if isinstance(check, str):
        kind = DTYPE if check.startswith("dtype(") else check
        if kind == PRESENT:
            return (str(err.failure_cases), PRESENT, None)
        column = None if kind in (EXTRA_COLUMNS, MULTI_UNIQUE) else err.column_name
        return (None if column is None else str(column), kind, None)
    column = err.column_name
    key = (None if column is None else str(column), "check", index)
    if key not in declared and getattr(check, "name", None):
        return (key[0], str(check.name), None)
    return key


def _absorb(found: _Found, err: Any, key: _Key, frame: pd.DataFrame, limit: int) -> None:
    """Add one pandera SchemaError to the summary of its check."""
    import pandera.errors as pe

    if err.reason_code == pe.SchemaErrorReason.CHECK_ERROR:
        found.error = first_line(err).removeprefix("SchemaError: ")
        found.count = None
        return
    cases = err.failure_cases
    if isinstance(cases, pd.DataFrame) and "index" in cases.columns:
        count, rows = _row_cases(cases, limit)
        found.count = (found.count or 0) + count
        found.examples = (found.examples + rows)[:limit]
        return
    if len(found.cases) < limit:
        found.cases.append(json_value(cases))
    col, kind, _ = key
    if kind == PRESENT:
        found.count = len(frame)
    elif kind == DTYPE and col in frame.columns:
        found.count = int(frame[col].notna().sum())
    else:
        found.count = None


def _row_cases(cases: pd.DataFrame, limit: int) -> tuple[int, list[dict[str, Any]]]:
    """Return the number of distinct failing rows and examples; a multi-column case lists each column."""
    index = cases["index"]
    if "column" not in cases.columns:
        head = cases.head(limit)
        return len(cases), examples(head["index"].tolist(), head["failure_case"].tolist(), limit)
    rows = pd.unique(index.to_numpy())
    first = set(rows[:limit].tolist())
    picked = cases[index.isin(first)]
    values: dict[Any, dict[str, Any]] = {}
    for i, col, value in zip(picked["index"], picked["column"], picked["failure_case"]):
        values.setdefault(i, {})[str(col)] = json_value(value)
    keys = list(values)
    return len(rows), examples(keys, [values[k] for k in keys], limit)


def _result(target: Target, name: _Name, key: _Key, found: _Found | None, missing: set[Any],
            blocking: bool) -> CheckResult:
    check_id = target.check_id("pandera", *name)
    col, kind, _ = key
    check = name[0]
    fmt = {"label": target.label, "check": check if col is None else f"{check} on '{col}'"}
    if found is None and col is not None and kind != PRESENT and col in missing:
        return make_result(check_id, outcome=Outcome.SKIPPED, blocking=blocking, reason=REASON_MISSING_COLUMN,
                           message=MSG_SKIPPED.format(col=col, label=target.label))
    if found is None:
        return make_result(check_id, outcome=Outcome.PASS, blocking=blocking, observed=0,
                           message=MSG_PASS.format(**fmt))
    if found.error is not None:
        return make_result(check_id, outcome=Outcome.ERROR, blocking=blocking, reason=REASON_CHECK_ERROR,
                           message=MSG_CHECK_ERROR.format(problem=found.error, **fmt))
    details: dict[str, Any] = {"examples": found.examples}
    if found.cases:
        details["failure_cases"] = found.cases
    cases = ", ".join(map(str, found.cases)) or "failed"
    if kind == PRESENT:
        message = MSG_MISSING.format(col=col, label=target.label)
    elif kind == DTYPE and found.cases:
        message = MSG_DTYPE.format(col=col, label=target.label, cases=cases)
    elif found.count is not None and not found.cases:
        message = MSG_FAIL_ROWS.format(n=found.count, **fmt)
    else:
        message = MSG_FAIL.format(cases=cases, **fmt)
    reason = REASON_MISSING_COLUMN if kind == PRESENT else REASON_BAD_ROWS
    return make_result(check_id, outcome=Outcome.FAIL, blocking=blocking, observed=found.count,
                       reason=reason, details=details, message=message)
