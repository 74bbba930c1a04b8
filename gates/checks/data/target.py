"""The target's own checks, always on and blocking, with or without a ``gates.data`` section.

* ``data.target.not_null``  rows without a target (null, or a number that is not finite) are
  never scored by any gate (:attr:`~gates.context.EvalContext.scored`); the check fails with
  their count.
* ``data.target.labels``    (classification) every label of the target must be one of each model's
  classes, and a binary task's target has at most two labels; the check names the unknown labels
  with their counts.

Mistakes no data can fix are config errors (:class:`~gates.errors.UserError`, exit 2), raised before
anything is scored: a target holding strings where a model knows numbers (or the reverse), and a
``positive_label`` that is not one of the labels (its default, 1, is named when that is the problem).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from gates.checks.data._common import (
    DEFAULT_MAX_FAILURE_CASES,
    REASON_BAD_ROWS,
    REASON_UNKNOWN_LABEL,
    count_outcome,
    data_id,
    json_value,
    make_result,
)
from gates.errors import UserError
from gates.results import CheckResult, Outcome

if TYPE_CHECKING:
    from gates.context import EvalContext

CHECK_NOT_NULL = data_id("target", "not_null")
CHECK_LABELS = data_id("target", "labels")
#: labels named in one message; the rest are counted ("and 12 more")
MAX_LABELS_SHOWN = 10

MSG_NOT_NULL_OK = "all {n} eval rows have a target '{col}'"
MSG_NOT_NULL = ("{k} of {n} eval rows have no target '{col}' (null or not a finite number); "
                "no gate scores them: they use the other {m} rows")
MSG_LABELS_OK = "the target's labels {labels} are {known}"
MSG_KNOWN_BY = "known to the {roles}"
MSG_NO_CLASSES = "not checked against a model: no model lists its classes"
MSG_UNKNOWN = "the {models} {verb} not know {labels}"
MSG_TOO_MANY = "a binary task's target has {n} labels: {labels}"
MSG_MIXED = "data.target: column '{col}' mixes {kinds} labels: {labels}"
MSG_TYPES = ("data.target: the target '{col}' holds {kind} labels {labels}, but the {model} has {other_kind} "
             "labels {other}; convert one to the other's type")
MSG_POSITIVE_TYPE = "model.positive_label: {label!r}{default} is {kind}, but the {what} has {other_kind} labels {labels}{hint}"
MSG_POSITIVE_UNKNOWN = "model.positive_label: {label!r}{default} is not one of the labels of the {what}: {labels}"
MSG_DEFAULT = " (the default, as model.positive_label is not set)"
MSG_YAML_BOOL = "; YAML reads unquoted yes/no/on/off as true/false: quote the label"
MSG_REGRESSION_TARGET = "data.target: task regression needs a numeric target, but column '{col}' holds {dtype} values"


@dataclass(frozen=True)
class TargetFacts:
    """What the target's checks read, from the whole frame or merged from partitions.

    ``counts`` holds each label of the scored rows with its count (None for regression), and
    ``predicted`` each prediction column's distinct values on the scored rows.
    """

    n_rows: int
    n_unscored: int
    missing_index: tuple[Any, ...]
    dtype: Any
    counts: pd.Series | None
    predicted: Mapping[str, tuple[Any, ...]]

    @property
    def n_scored(self) -> int:
        return self.n_rows - self.n_unscored


@dataclass(frozen=True)
class LabelSource:
    """The labels one model knows: an estimator's ``classes_`` or a predictions column's values."""

    role: str
    what: str  # how messages name it: "candidate model (cand.skops)"
    labels: tuple[Any, ...]
    is_classes: bool  # False: values seen in a predictions column (not the model's full class list)


def run_target_checks(ctx: EvalContext, facts: TargetFacts | None = None) -> list[CheckResult]:
    """Return ``data.target.not_null`` and, for classification, ``data.target.labels``.

    ``facts`` are those of :func:`embedded_facts` unless given (a partitioned run merges them from
    its partitions). Raises :class:`~gates.errors.UserError` for a type mismatch or an impossible
    ``positive_label``.
    """
    facts = facts if facts is not None else embedded_facts(ctx)
    out = [not_null(ctx, facts)]
    task = ctx.policy.model.task
    if task == "regression":
        _require_numeric(ctx, facts.dtype)
    else:
        out.append(labels(ctx, facts, task == "binary_classification"))
    return out


def prediction_columns(ctx: EvalContext) -> list[str]:
    """Return the prediction columns of the models given as columns (their values stand for classes)."""
    return [src.predictions for src in (ctx.policy.model.candidate, ctx.policy.model.baseline)
            if src.kind == "columns" and src.predictions]


def embedded_facts(ctx: EvalContext) -> TargetFacts:
    """Return the target's facts from the whole eval frame."""
    rows, col = ctx.scored, ctx.policy.data.target
    counts = None if ctx.policy.model.task == "regression" else pd.Series(ctx.y_true).value_counts(sort=False)
    predicted = {c: tuple(pd.unique(ctx.frame[c].dropna())) for c in prediction_columns(ctx)}
    return TargetFacts(rows.n_rows, rows.n_unscored, rows.missing_index, ctx.eval_frame[col].dtype, counts, predicted)


def not_null(ctx: EvalContext, rows: TargetFacts) -> CheckResult:
    """Return the check that every eval row has a target; its ``observed`` is the count that has none."""
    col = ctx.policy.data.target
    examples = [{"index": json_value(i)} for i in rows.missing_index[:DEFAULT_MAX_FAILURE_CASES]]
    message = (MSG_NOT_NULL_OK.format(n=rows.n_rows, col=col) if rows.n_unscored == 0 else
               MSG_NOT_NULL.format(k=rows.n_unscored, n=rows.n_rows, col=col, m=rows.n_scored))
    return make_result(CHECK_NOT_NULL, outcome=count_outcome(rows.n_unscored), blocking=True, message=message,
                       reason=REASON_BAD_ROWS, observed=rows.n_unscored, threshold={"max": 0},
                       details={"rows": rows.n_rows, "scored_rows": rows.n_scored, "examples": examples})


def labels(ctx: EvalContext, facts: TargetFacts, is_binary: bool) -> CheckResult:
    """Return the check that the target's labels are the models' classes (binary: at most two)."""
    assert facts.counts is not None
    counts = _label_counts(ctx, facts.counts)
    sources = _sources(ctx, facts.predicted)
    _check_types(ctx, counts, sources)
    if is_binary:
        _check_positive(ctx, counts, sources)
    problems: list[str] = []
    bad = np.zeros(len(counts), dtype=bool)
    unknown: dict[str, list[dict[str, Any]]] = {}
    by_missing: dict[tuple[bool, ...], list[LabelSource]] = {}
    for src in (s for s in sources if s.is_classes):
        missing = ~counts.index.isin(list(src.labels))
        if missing.any():
            by_missing.setdefault(tuple(missing), []).append(src)
            unknown[src.role] = _table(counts[missing])
            bad |= missing
    for key, group in by_missing.items():
        models = " and the ".join(s.what for s in group)
        problems.append(MSG_UNKNOWN.format(models=models, verb="do" if len(group) > 1 else "does",
                                           labels=_show(counts[np.array(key)])))
    if is_binary and len(counts) > 2:
        problems.append(MSG_TOO_MANY.format(n=len(counts), labels=_show(counts)))
        if not unknown:
            bad |= _beyond_two(counts, ctx.policy.model.positive_label)
    details: dict[str, Any] = {"rows": facts.n_scored, "labels": _table(counts),
                               "classes": {s.role: [json_value(v) for v in s.labels] for s in sources if s.is_classes}}
    if unknown:
        details["unknown"] = unknown
    observed = int(counts[bad].sum())
    message = "; ".join(problems) if problems else _ok_message(counts, sources)
    return make_result(CHECK_LABELS, outcome=count_outcome(observed), blocking=True, message=message,
                       reason=REASON_UNKNOWN_LABEL, observed=observed, threshold={"max": 0}, details=details)


# ---------------------------------------------------------------- what is known


def _label_counts(ctx: EvalContext, counts: pd.Series) -> pd.Series:
    """Return each label of the scored rows' target with its count, labels sorted; mixed types are a config error."""
    kinds = sorted({_kind(v) for v in counts.index})
    if len(kinds) > 1:
        raise UserError(MSG_MIXED.format(col=ctx.policy.data.target, kinds=" and ".join(kinds),
                                         labels=_show(counts)), location=ctx.policy.where("data", "target"))
    return counts.sort_index()


def _sources(ctx: EvalContext, predicted: Mapping[str, tuple[Any, ...]]) -> list[LabelSource]:
    """Return what each present model says about its labels: classes_, else its predictions column's values."""
    out = []
    for role in ("candidate", "baseline"):
        src = getattr(ctx.policy.model, role)
        if src.kind == "columns":
            if src.predictions:
                values = predicted[src.predictions]
                out.append(LabelSource(role, f"{role}'s predictions column '{src.predictions}'",
                                       tuple(_plain(v) for v in values), False))
            continue
        loaded = ctx.model(role)  # type: ignore[arg-type]
        classes = _classes(loaded)
        if loaded is not None and classes is not None:
            out.append(LabelSource(role, f"{role} model ({loaded.path.name})",
                                   tuple(_plain(v) for v in np.asarray(classes).tolist()), True))
    return out


def _classes(loaded: Any) -> Any:
    """Return the classes a loaded model says it predicts (its adapter's, else ``classes_``), or None."""
    if loaded is None:
        return None
    adapter = getattr(loaded, "adapter", None)
    found = adapter.classes() if adapter is not None and hasattr(adapter, "classes") else None
    return found if found is not None else getattr(getattr(loaded, "estimator", None), "classes_", None)


# ---------------------------------------------------------------- config errors


def _check_types(ctx: EvalContext, counts: pd.Series, sources: Sequence[LabelSource]) -> None:
    kind = _kind(counts.index[0])
    for src in sources:
        other = {_kind(v) for v in src.labels}
        if other and other != {kind}:
            raise UserError(MSG_TYPES.format(col=ctx.policy.data.target, kind=_kinds_word(kind),
                                             labels=_show(counts), model=src.what,
                                             other_kind=_kinds_word(*sorted(other)),
                                             other=_list(src.labels)), location=ctx.policy.where("data", "target"))


def _check_positive(ctx: EvalContext, counts: pd.Series, sources: Sequence[LabelSource]) -> None:
    """Raise when positive_label cannot be one of the labels (of every model, or of a two-label target)."""
    model = ctx.policy.model
    label = model.positive_label
    given = ("model", "positive_label") in ctx.policy.lines
    where = ctx.policy.where("model", "positive_label") if given else ctx.policy.where("model")
    default = "" if given else MSG_DEFAULT
    known = [(s.what, s.labels) for s in sources if s.is_classes]
    if not known and len(counts) == 2:
        known = [("target", tuple(counts.index))]
    for what, values in known:
        kinds = {_kind(v) for v in values}
        if kinds and kinds != {_kind(label)}:
            hint = MSG_YAML_BOOL if isinstance(label, bool) else ""
            kind = "a boolean" if isinstance(label, bool) else _a_kind(_kind(label))
            raise UserError(MSG_POSITIVE_TYPE.format(label=label, default=default, kind=kind,
                                                     what=what, other_kind=_kinds_word(*sorted(kinds)),
                                                     labels=_list(values), hint=hint), location=where)
        if label not in values:
            raise UserError(MSG_POSITIVE_UNKNOWN.format(label=label, default=default, what=what, labels=_list(values)),
                            location=where)


def _require_numeric(ctx: EvalContext, dtype: Any) -> None:
    if not pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
        raise UserError(MSG_REGRESSION_TARGET.format(col=ctx.policy.data.target, dtype=dtype),
                        location=ctx.policy.where("data", "target"))


# ---------------------------------------------------------------- wording


def _beyond_two(counts: pd.Series, positive: Any) -> np.ndarray:
    """Return the labels past a binary task's two: all but the positive label and the most frequent other."""
    keep = {positive}
    others = counts[~counts.index.isin([positive])]
    if len(others):
        keep.add(others.sort_values(ascending=False, kind="stable").index[0])
    return ~counts.index.isin(list(keep))


def _ok_message(counts: pd.Series, sources: Sequence[LabelSource]) -> str:
    roles = [s.role for s in sources if s.is_classes]
    known = MSG_KNOWN_BY.format(roles=" and ".join(roles)) if roles else MSG_NO_CLASSES
    return MSG_LABELS_OK.format(labels=_show(counts), known=known)


def _show(counts: pd.Series) -> str:
    """Return ``'a' (12 rows), 'b' (3 rows)``, at most MAX_LABELS_SHOWN of them."""
    parts = [f"{_plain(v)!r} ({int(n)} row{'s' if n != 1 else ''})" for v, n in counts.items()]
    return _cap(parts)


def _list(values: Sequence[Any]) -> str:
    return "[" + _cap([repr(_plain(v)) for v in values]) + "]"


def _cap(parts: list[str]) -> str:
    if len(parts) > MAX_LABELS_SHOWN:
        return ", ".join(parts[:MAX_LABELS_SHOWN]) + f" and {len(parts) - MAX_LABELS_SHOWN} more"
    return ", ".join(parts)


def _table(counts: pd.Series) -> list[dict[str, Any]]:
    return [{"label": json_value(v), "count": int(n)} for v, n in list(counts.items())[:DEFAULT_MAX_FAILURE_CASES]]


def _kind(value: Any) -> str:
    if isinstance(value, str):
        return "string"
    if isinstance(value, (bool, int, float, np.bool_, np.number)):
        return "number"
    return type(value).__name__


def _kinds_word(*kinds: str) -> str:
    return " and ".join({"string": "string", "number": "numeric"}.get(k, k) for k in kinds)


def _a_kind(kind: str) -> str:
    return {"string": "a string", "number": "a number"}.get(kind, f"a {kind}")


def _plain(value: Any) -> Any:
    """Return a numpy scalar as the Python value it holds (so messages read 1, not np.int64(1))."""
    return value.item() if isinstance(value, np.generic) else value
