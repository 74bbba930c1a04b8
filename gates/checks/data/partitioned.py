"""The data gate on partitioned data: each partition measured where it lives, the client merges.

Every partition yields a :class:`FramePartial` (row and null counts, each built-in rule's bad-row
count with at most ``max_failure_cases`` example rows, the pandera suite's results, drift
histogram counts); partials add in partition order and the client turns the total into the same
checks the embedded gate reports. Rows keep their position in the whole source as their index,
so examples name the same rows as an embedded run.

Drift bins are fixed from the reference alone: one task reads the reference's drift columns on a
worker, cuts the bins exactly as :mod:`.drift` does and counts the reference there; eval
partitions then count into those bins. KS and Wasserstein columns count distinct values instead
(reference on that worker, eval per partition), added on the client: the statistics need only
the two empirical CDFs. What has no mergeable form yet is reported as an ``error`` check with
reason ``not_distributable``, never computed from rows on the client: pandera uniqueness over
several columns, ``leakage`` and the Great Expectations expectations that are not
judged row by row (the row-wise ones run per partition, :func:`.gx_engine.measure_gx`). Built-in ``unique``
rules and pandera columns declared ``unique=True`` merge each partition's value counts; a second pass over the repeated values' columns finds
the first example rows. ``overlap`` collects the reference's distinct row hashes once and each
eval partition counts its rows among them.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from gates.checks.data import builtin as bi
from gates.checks.data import drift as dr
from gates.checks.data import overlap as ov
from gates.checks.data._common import (
    REASON_ALL_NULL,
    REASON_BAD_ROWS,
    REASON_CHECK_ERROR,
    REASON_MISSING_COLUMN,
    REASON_NOT_NUMERIC,
    REASON_NO_ROWS,
    REASON_THRESHOLD,
    REASON_TOO_FEW_ROWS,
    REASON_TYPE_MISMATCH,
    REASON_UNDEFINED,
    Settings,
    Target,
    count_outcome,
    data_id,
    examples,
    first_line,
    json_value,
    make_result,
    mask_examples,
)
from gates.engine.folding import Tiered
from gates.engine.ranges import sample
from gates.checks.data._plan import ChecksPlan, DataPlan, DriftPlan, EngineRef, SectionPlan, as_plan
from gates.identity import CheckId
from gates.results import CheckResult, Outcome, Status
from gates.checks import REASON_NOT_DISTRIBUTABLE

if TYPE_CHECKING:
    from gates.checks.data.gx_engine import BuiltSuite
    from gates.datasets import Partition
    from gates.engine.context import PartitionedContext
    from gates.policy import Policy

#: the value-count tables' columns (a NUL never starts a data column's name)
VALUE, REF, EVAL = "\0value", "\0ref", "\0eval"
MSG_NOT_DISTRIBUTABLE = "not computed on the dask engine: {what} has no mergeable form yet (docs/scale.md)"
WHAT_LEAKAGE = "leakage (a model per column)"
WHAT_UNIQUE = ("a pandera uniqueness check over several columns, on regex-matched columns or with report_duplicates "
               "other than all (duplicates can sit in different partitions)")
WHAT_PANDERA_WHOLE = "the pandera check {name} (not judged value by value)"
#: pandera's built-in checks that judge each value on its own, so a partition's failures are the data's
PANDERA_ROW_WISE = frozenset({"equal_to", "not_equal_to", "greater_than", "greater_than_or_equal_to", "less_than",
                              "less_than_or_equal_to", "in_range", "isin", "notin", "str_matches", "str_contains",
                              "str_startswith", "str_endswith", "str_length"})
PANDERA_UNIQUE = ("field_uniqueness", "multiple_fields_uniqueness")
_ROWS = re.compile(r"^\d+ rows ")


# ---------------------------------------------------------------- what a worker measures


@dataclass(frozen=True)
class Bins:
    """One drift column's bins, fixed from the reference, with the reference's counts in them."""

    kind: str
    labels: list[str]
    binning: str
    reference: np.ndarray
    reference_rows: int
    reference_non_null: int
    edges: np.ndarray | None = None
    kept: tuple[Any, ...] = ()
    seen: tuple[Any, ...] = ()
    dtype: str = ""
    problem: str | None = None
    #: ks / wasserstein: the reference's distinct values and their counts (numeric columns)
    values: tuple[np.ndarray, np.ndarray] | None = None


@dataclass(frozen=True)
class Plan:
    """What a worker needs to measure one partition of one target (eval or reference)."""

    target: str
    checks: ChecksPlan | None
    pandera: tuple[str, bool] | None
    base_dir: Path
    limit: int
    bins: Mapping[str, Bins] = field(default_factory=dict)
    #: the Great Expectations suite's expectations and the positions of the row-wise ones
    gx: tuple[list[dict[str, Any]], tuple[int, ...]] | None = None
    #: the pandera schema's columns declared ``unique=True``: their non-null values are counted
    pandera_unique: tuple[str, ...] = ()


@dataclass
class RuleCount:
    n_bad: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)
    unexpected: dict[str, list[Any]] = field(default_factory=dict)  # json key -> [value, count]
    error: str | None = None


@dataclass
class FramePartial:
    """Mergeable statistics of some rows of one target."""

    rows: int = 0
    non_null: dict[str, int] = field(default_factory=dict)
    null_examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    rules: dict[tuple[str, str], RuleCount] = field(default_factory=dict)
    pandera: list[list[CheckResult]] = field(default_factory=list)
    drift: dict[str, np.ndarray] = field(default_factory=dict)
    #: ks / wasserstein columns: distinct values and their counts (kept on the worker, see :func:`_keep_values`)
    values: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    #: ks / wasserstein columns: per partition, a sample of its distinct values and how many it has
    samples: dict[str, list[tuple[np.ndarray, int]]] = field(default_factory=dict)
    #: unique rules: each non-null value's count
    distinct: dict[str, pd.Series] = field(default_factory=dict)
    #: the Great Expectations suite's row-wise results, one per partition
    gx: list[Any] = field(default_factory=list)


def measure_partition(part: Partition, plan: Plan) -> FramePartial:
    """Return the partial statistics of one partition (runs on a worker)."""
    frame = part.read()
    out = FramePartial(rows=len(frame))
    for c in plan.checks.columns if plan.checks is not None else ():
        if c.name in frame.columns:
            _measure_column(frame[c.name], c.name, c.rules, plan.limit, out)
    for col in plan.bins:
        if col in frame.columns:
            out.non_null.setdefault(col, int(frame[col].notna().sum()))
            if plan.bins[col].values is not None:
                found = out.values[col] = dr.value_counts(dr._floats(frame[col]))
                out.samples[col] = [(sample(found[0]), len(found[0]))]
            else:
                out.drift[col] = _eval_counts(frame[col], plan.bins[col])
    if plan.pandera is not None:
        from gates.checks.data.pandera_engine import run_pandera

        ref, blocking = plan.pandera
        out.pandera.append(run_pandera(Target(plan.target, frame), ref, plan.base_dir, blocking,
                                       Settings(max_failure_cases=plan.limit)))
        for col in plan.pandera_unique:
            if col in frame.columns and col not in out.distinct:
                _count_values(frame[col], col, frame[col].notna().to_numpy(), out)
    if plan.gx is not None and plan.gx[1]:
        from gates.checks.data.gx_engine import measure_gx

        out.gx.append(measure_gx(frame, plan.gx[0], plan.gx[1], plan.limit))
    return out


def _measure_column(series: pd.Series, col: str, rules: Mapping[str, Any], limit: int, out: FramePartial) -> None:
    notna = series.notna().to_numpy()
    out.non_null[col] = int(np.count_nonzero(notna))
    if rules.get("max_null_fraction") is not None:
        out.null_examples[col] = mask_examples(series, ~notna, limit)
    for rule in bi._rules(rules):
        if rule.name == "unique":
            _count_values(series, col, notna, out)
            continue
        if rule.name in ("min", "max") and ptypes.is_datetime64_any_dtype(series.dtype):
            continue
        count = RuleCount()
        try:
            bad = np.asarray(rule.bad(series, notna), dtype=bool)
            count.n_bad = int(np.count_nonzero(bad))
            count.examples = mask_examples(series, bad, limit)
            if count.n_bad and rule.name in ("allowed", "dtype"):
                for value, n in series[bad].value_counts(dropna=False).items():
                    key = repr(json_value(value))
                    count.unexpected.setdefault(key, [json_value(value), 0])[1] += int(n)
        except Exception as exc:  # noqa: BLE001 -- cell values are arbitrary user data
            count.error = first_line(exc)
        out.rules[(col, rule.name)] = count


def _count_values(series: pd.Series, col: str, notna: np.ndarray, out: FramePartial) -> None:
    """Count each non-null value of ``col`` for its uniqueness (a built-in ``unique`` rule or a pandera
    ``unique=True`` column); values that cannot be counted leave their error as the ``unique`` rule's."""
    try:
        out.distinct[col] = series[notna].value_counts(sort=False)
    except Exception as exc:  # noqa: BLE001 -- cell values are arbitrary user data (unhashable ones)
        out.rules[(col, "unique")] = RuleCount(error=first_line(exc))


def _eval_counts(series: pd.Series, bins: Bins) -> np.ndarray:
    if bins.problem is not None:
        return np.zeros(0, dtype=np.int64)
    if bins.kind == "numeric":
        values = series.to_numpy(dtype=float, na_value=np.nan)
        return dr.numeric_counts(bins.edges, values[~np.isnan(values)])  # type: ignore[arg-type]
    values = series.dropna()
    slot = np.full(len(values), len(bins.kept) + 1)  # unseen
    slot[pd.Index(list(bins.seen)).get_indexer(values) >= 0] = len(bins.kept)
    kept_at = pd.Index(list(bins.kept)).get_indexer(values)
    slot[kept_at >= 0] = kept_at[kept_at >= 0]
    return np.bincount(slot, minlength=len(bins.kept) + 2)


def reference_bins(path: Path, columns: Sequence[str], methods: Mapping[str, str], spec: Mapping[str, Any],
                   location: str) -> dict[str, Bins]:
    """Return each drift column's bins and reference counts (runs on one worker, drift columns only)."""
    from gates.datasets import read_many

    ref = read_many(path, location, columns=list(columns))
    out = {}
    for col in columns:
        s = ref[col]
        kind = dr.column_kind(s)
        non_null = int(s.notna().sum())
        if methods[col] in dr.NUMERIC_ONLY:
            counted = dr.value_counts(dr._floats(s)) if kind == "numeric" else None
            out[col] = Bins(kind, [], "", np.zeros(0), len(s), non_null, dtype=str(s.dtype), values=counted,
                            problem=None if counted is not None else "not numeric")
            continue
        if kind == "numeric":
            values = dr._floats(s)
            edges = dr.numeric_edges(values, int(spec.get("bins", dr.DEFAULT_BINS)))
            labels, binning = dr.numeric_labels(edges)
            out[col] = Bins(kind, labels, binning, dr.numeric_counts(edges, values), len(s), non_null,
                            edges=edges, dtype=str(s.dtype))
            continue
        values = s.dropna()
        codes, uniques = pd.factorize(values)
        counts = np.bincount(codes, minlength=len(uniques))
        kept = np.argsort(-counts, kind="stable")[:int(spec.get("max_categories", dr.DEFAULT_MAX_CATEGORIES))]
        seen = tuple(uniques.tolist())
        kept_values = tuple(uniques[kept].tolist())
        ref_counts = np.concatenate([counts[kept], [counts.sum() - counts[kept].sum(), 0]])
        labels = [str(v) for v in kept_values] + [dr.OTHER, dr.UNSEEN]
        out[col] = Bins(kind, labels, f"reference categories, top {len(kept)} of {len(seen)}", ref_counts,
                        len(s), non_null, kept=kept_values, seen=seen, dtype=str(s.dtype))
    return out


# ---------------------------------------------------------------- merging, in partition order


def merge_distinct(older: pd.Series, newer: pd.Series) -> pd.Series:
    """Return the value counts of two row sets (older first): counts added, values in first appearance order."""
    return pd.concat([older, newer]).groupby(level=0, sort=False, dropna=False).sum()


class Merging:
    """The running sum of partials taken in partition order (examples: the first ``limit`` rows
    overall). The unique rules' counts, keyed by distinct values, are merged size-tiered
    (:class:`~gates.engine.folding.Tiered`), not into one growing table per partial; the ks /
    wasserstein value counts stay on the workers (:func:`_keep_values`)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.total = FramePartial()
        self._distinct: dict[str, Tiered[pd.Series]] = {}

    def add(self, p: FramePartial) -> Merging:
        """Add the next partition's partial; return self (a fold's merge)."""
        total, limit = self.total, self.limit
        total.rows += p.rows
        for col, n in p.non_null.items():
            total.non_null[col] = total.non_null.get(col, 0) + n
        for col, ex in p.null_examples.items():
            total.null_examples[col] = (total.null_examples.get(col, []) + ex)[:limit]
        for key, c in p.rules.items():
            t = total.rules.setdefault(key, RuleCount())
            t.n_bad += c.n_bad
            t.examples = (t.examples + c.examples)[:limit]
            t.error = t.error or c.error
            for k, (v, n) in c.unexpected.items():
                t.unexpected.setdefault(k, [v, 0])[1] += n
        total.pandera.extend(p.pandera)
        total.gx.extend(p.gx)
        for col, counts in p.drift.items():
            total.drift[col] = counts if col not in total.drift else total.drift[col] + counts
        for col, found in p.samples.items():
            total.samples.setdefault(col, []).extend(found)
        for col, distinct in p.distinct.items():
            self._distinct.setdefault(col, Tiered(merge_distinct, len)).add(distinct)
        return self

    def result(self) -> FramePartial:
        """Return the sum of the partials added."""
        for col, d in self._distinct.items():
            counts = d.result()
            assert counts is not None
            self.total.distinct[col] = counts
        return self.total


def _keep_values(p: FramePartial) -> tuple[FramePartial, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Split a partition's partial into what the client merges and its ks / wasserstein value
    counts, which stay on the worker to be compared in value ranges (:func:`.drift.ecdf_gaps`)."""
    return replace(p, values={}), p.values


def _value_table(values: tuple[np.ndarray, np.ndarray] | Mapping[str, tuple[np.ndarray, np.ndarray]],
                 col: str | None = None, reference: bool = False) -> pd.DataFrame:
    """A value-count table of one sample: ``values`` (or a kept partition's ``values[col]``; none
    when the partition lacks the column) counted as the reference's or the eval data's rows."""
    if col is not None:
        assert isinstance(values, Mapping)
        values = values.get(col, (np.zeros(0), np.zeros(0, dtype=np.int64)))
    assert isinstance(values, tuple)
    counts = values[1].astype(np.float64)
    zeros = np.zeros(len(counts))
    return pd.DataFrame({VALUE: values[0], REF: counts if reference else zeros, EVAL: zeros if reference else counts})


def merge(parts: Sequence[FramePartial], limit: int) -> FramePartial:
    """Return the sum of partials taken in order (examples: the first ``limit`` rows overall)."""
    merging = Merging(limit)
    for p in parts:
        merging.add(p)
    return merging.result()


def duplicate_examples(part: Partition, values: Mapping[str, list[Any]], limit: int) -> dict[str, list[dict[str, Any]]]:
    """Return, per column, the partition's first ``limit`` rows holding one of ``values`` (runs on a worker)."""
    frame = part.read(list(values))
    return {col: mask_examples(frame[col], (frame[col].notna() & frame[col].isin(dups)).to_numpy(), limit)
            for col, dups in values.items()}


def _duplicates(engine: Any, parts: Sequence[Partition], total: FramePartial, limit: int) -> None:
    """Turn the merged value counts into the unique rules' counts and examples (a second pass reads
    only the columns with repeated values, for the first ``limit`` rows holding them)."""
    repeated: dict[str, list[Any]] = {}
    for col, counts in total.distinct.items():
        if (col, "unique") in total.rules:  # a partition could not count its values
            continue
        many = counts[counts > 1]
        total.rules[(col, "unique")] = RuleCount(n_bad=int(many.sum()))
        if len(many):
            repeated[col] = many.index.tolist()
    if not repeated:
        return
    for found in engine.map(duplicate_examples, parts, values=repeated, limit=limit):
        for col, rows in found.items():
            count = total.rules[(col, "unique")]
            count.examples = (count.examples + rows)[:limit]


# ---------------------------------------------------------------- the client's decisions


def distributable(section: DataPlan | Mapping[str, Any], policy: Policy) -> str | None:
    """Return why some check of the data section cannot run from partition partials, or None when all can.

    :func:`run` reports those checks as ``not_distributable`` errors: ``leakage``, pandera
    uniqueness checks and the Great Expectations expectations that are not judged row by row. A
    suite or schema that cannot be read is not distributable either (the embedded gate reports
    why). The embedded engine asks this before choosing to read the data in batches.
    """
    data_plan = as_plan(section)
    if data_plan.leakage is not None:
        return MSG_NOT_DISTRIBUTABLE.format(what=WHAT_LEAKAGE)
    if data_plan.pandera is not None:
        ref = data_plan.pandera.ref
        problem = _pandera_problem(ref, _schema_or_none(ref, policy.base_dir))
        if problem is not None:
            return MSG_NOT_DISTRIBUTABLE.format(what=problem)
    gx, _, problem = _gx_suite(policy.base_dir, data_plan.great_expectations)
    if problem is not None:
        return problem
    found = [] if gx is None else gx.not_row_wise()
    if gx is not None and found:
        return MSG_NOT_DISTRIBUTABLE.format(what=f"the expectation {gx.items[found[0]]['type']}")
    return None


def _schema_or_none(ref: str, base_dir: Path) -> Any | None:
    """Return the pandera schema ``ref`` names, or None when it cannot be loaded (the embedded gate,
    and each partition, report why)."""
    from gates.checks.data.pandera_engine import load_schema

    try:
        return load_schema(ref, base_dir)
    except Exception:  # noqa: BLE001 -- a user's schema may fail in any way; the embedded gate says how
        return None


def _pandera_problem(ref: str, schema: Any | None) -> str | None:
    """Why the pandera schema's checks cannot be judged per partition (None when they all can):
    a uniqueness check over several columns (or on a regex column), or a check that is neither
    element-wise nor one of pandera's row-wise built-ins (an aggregate such as ``unique_values_eq``
    or a custom check on the whole column or frame). A schema that cannot be loaded (None) cannot
    tell, so it is refused too."""
    if schema is None:
        return f"the pandera schema {ref} (it cannot be loaded)"
    unique = [column for column in schema.columns.values() if column.unique]
    if schema.unique or len(unique) > len(_unique_columns(schema)):
        return WHAT_UNIQUE
    checks = [*schema.checks, *(c for column in schema.columns.values() for c in column.checks)]
    whole = next((c for c in checks if _judges_whole(c)), None)
    return None if whole is None else WHAT_PANDERA_WHOLE.format(name=whole.name)


def _judges_whole(check: Any) -> bool:
    """True for a pandera check whose verdict on a partition is not its share of the data's verdict.

    A row-wise built-in is known by its functions, never by its name: a custom check named
    ``in_range`` may well judge the whole column. (A schema read from YAML holds a copy of the
    built-in's dispatcher, so the functions it dispatches to are compared, not the dispatcher.)
    """
    from pandera.api.base.checks import BaseCheck

    if check.element_wise:
        return False
    name = getattr(check, "name", None)
    built_in = BaseCheck.CHECK_FUNCTION_REGISTRY.get(name) if name in PANDERA_ROW_WISE else None
    functions = getattr(getattr(check, "_check_fn", None), "_function_registry", None)
    return built_in is None or functions is None or functions != built_in._function_registry


def _pandera_whole_checks(schema: Any) -> list[tuple[str, str | None]]:
    """The (report name, column) of each pandera check judged on a whole column or frame; the column
    is None for a check on regex-matched columns, which matches that check on any column."""
    from gates.checks.data.pandera_engine import _check_names

    out: list[tuple[str, str | None]] = []
    owners = [(None, schema.checks, False),
              *((str(col), column.checks, bool(getattr(column, "regex", False)))
                for col, column in schema.columns.items())]
    for col, checks, regex in owners:
        for (_, _, i), (name, scope) in _check_names(col, checks).items():
            if _judges_whole(checks[i]):
                out.append((name, None if regex else scope))
    return out


def _unique_columns(schema: Any) -> tuple[str, ...]:
    """The columns whose ``unique=True`` merges from value counts: not regex-matched, and reporting
    every row of a repeated value (``report_duplicates: all``, pandera's default), which is what the
    merged counts give."""
    return tuple(str(col) for col, column in schema.columns.items()
                 if column.unique and not getattr(column, "regex", False)
                 and getattr(column, "report_duplicates", "all") == "all")


def run(ctx: PartitionedContext, section: DataPlan | Mapping[str, Any]) -> list[CheckResult]:
    """Return the data gate's checks, in the embedded gate's order, from partition partials.

    ``section`` is the gate's plan (a section mapping is planned here).
    """
    data_plan = as_plan(section)
    settings = data_plan.settings
    limit = settings.max_failure_cases
    engine, policy = ctx.engine, ctx.policy
    pandera = None if data_plan.pandera is None else (data_plan.pandera.ref, data_plan.pandera.is_blocking)
    gx, gx_blocking, gx_problem = _gx_suite(policy.base_dir, data_plan.great_expectations)
    # loaded once here; a schema that cannot be loaded has no merged checks: each partition reports why
    pandera_schema = None if pandera is None else _schema_or_none(pandera[0], policy.base_dir)
    unique_cols = () if pandera_schema is None else _unique_columns(pandera_schema)
    whole = [] if pandera_schema is None else _pandera_whole_checks(pandera_schema)
    bins: dict[str, Bins] = {}
    drift_cols: list[str] = []
    has_ref = policy.data.reference is not None
    if data_plan.drift is not None and has_ref:
        drift_cols = _drift_columns(ctx, data_plan.drift)
        bins = _bins(ctx, data_plan.drift, drift_cols)
    targets = [("eval", ctx.eval_partitions, ctx.schema)]
    if data_plan.on_reference and has_ref:
        targets.append(("reference", ctx.reference_partitions, ctx.reference_schema))
    out: list[CheckResult] = []
    eval_total: FramePartial | None = None
    kept: list[Any] = []
    for name, parts, schema in targets:
        plan = Plan(name, data_plan.checks, pandera, policy.base_dir, limit, bins if name == "eval" else {},
                    None if gx is None else (gx.items, gx.row_wise), unique_cols)
        merged, values = engine.fold_keeping(measure_partition, parts, _keep_values, Merging.add, Merging(limit),
                                             plan=engine.share(plan))
        total = merged.result()
        if name == "eval":
            kept = values
        else:
            engine.drop(values)
        _duplicates(engine, parts, total, limit)
        eval_total = eval_total or total
        target = Target(name, schema)
        if pandera is not None:
            out.extend(_pandera(total, target, pandera[1], limit, unique_cols, whole))
        if data_plan.great_expectations is not None:
            from gates.checks.data import gx_engine as gxe

            if gx is None:
                out.append(make_result(target.check_id("gx", "suite"), outcome=Outcome.ERROR, blocking=gx_blocking,
                                       reason=gxe.REASON_SCHEMA_ERROR, message=str(gx_problem)))
            else:
                out.extend(gxe.merged_gx(target, gx, total.gx, total.rows, gx_blocking, settings))
        if data_plan.checks is not None:
            out.extend(_builtin(target, total, data_plan.checks, settings))
    if drift_cols:
        assert eval_total is not None and data_plan.drift is not None
        out.extend(_drift(data_plan.drift, drift_cols, bins, eval_total, ctx.schema, settings, engine, kept))
    engine.drop(kept)
    if data_plan.overlap is not None and has_ref:
        out.extend(_overlap(ctx, data_plan.overlap, settings))
    if data_plan.leakage is not None:
        out.append(_gate_level(data_id("leakage", "max"), data_plan.leakage.blocking, WHAT_LEAKAGE))
    return out


def _gx_suite(base_dir: Path, suite: EngineRef | None) -> tuple[BuiltSuite | None, bool, str | None]:
    """Return the suite built once, with the positions of its row-wise expectations (or None and why
    the suite cannot be read), and whether its checks block."""
    if suite is None:
        return None, False, None
    from gates.checks.data.gx_engine import build_suite, read_suite

    try:
        items = read_suite(base_dir / suite.ref)
    except ValueError as exc:
        return None, suite.is_blocking, str(exc)
    return build_suite(items), suite.is_blocking, None


def reference_hashes(part: Partition, columns: list[str]) -> np.ndarray | str:
    """Return the distinct row hashes of a reference partition, or why its rows cannot be hashed (runs on a worker)."""
    try:
        return np.unique(ov.row_hashes(part.read(columns), columns))
    except Exception as exc:  # noqa: BLE001 -- cell values are arbitrary user data (unhashable objects)
        return first_line(exc)


def overlap_partition(part: Partition, columns: list[str], hashes: np.ndarray, limit: int
                      ) -> tuple[int, list[Any]] | str:
    """Return how many of an eval partition's rows hash like a reference row, and the first ``limit``
    of them (their positions in the source), or why they cannot be hashed (runs on a worker)."""
    frame = part.read(columns)
    try:
        found = np.isin(ov.row_hashes(frame, columns), hashes)
    except Exception as exc:  # noqa: BLE001 -- cell values are arbitrary user data (unhashable objects)
        return first_line(exc)
    return int(found.sum()), frame.index[np.flatnonzero(found)[:limit]].tolist()


def _overlap(ctx: PartitionedContext, plan: SectionPlan, settings: Settings) -> list[CheckResult]:
    """:func:`.overlap.run_overlap` from partitions: the reference's distinct row hashes, collected
    once, then each eval partition's matches and first examples."""
    from gates.checks.data import _model_columns

    spec, blocking = plan.spec, plan.blocking
    limit = float(spec.get("max_fraction", 0.0))
    threshold = {"max": limit}
    ref_schema = ctx.reference_schema
    assert ref_schema is not None
    columns = ov.overlap_columns(spec, ctx.schema, ref_schema, _model_columns(ctx))

    def error(reason: str, message: str) -> list[CheckResult]:
        return [make_result(ov.CHECK_ID, outcome=Outcome.ERROR, blocking=blocking, reason=reason,
                            threshold=threshold, message=message)]

    if not columns:
        return error(REASON_MISSING_COLUMN, ov.MSG_NO_COLUMNS)
    ref_rows = sum(p.rows for p in ctx.reference_partitions)
    for where, schema, rows in (("eval", ctx.schema, ctx.n_eval_rows), ("reference", ref_schema, ref_rows)):
        missing = [c for c in columns if c not in schema.columns]
        if missing:
            return error(REASON_MISSING_COLUMN, ov.MSG_MISSING.format(col=missing[0], where=where))
        if rows == 0:
            return error(REASON_NO_ROWS, ov.MSG_EMPTY.format(where=where))
    found_ref = ctx.engine.map(reference_hashes, ctx.reference_partitions, columns=columns)
    problems = [f for f in found_ref if isinstance(f, str)]
    if problems:
        return error(REASON_CHECK_ERROR, ov.MSG_CANNOT_HASH.format(problem=problems[0]))
    hashes = np.unique(np.concatenate([f for f in found_ref if not isinstance(f, str)]))
    found = ctx.engine.map(overlap_partition, ctx.eval_partitions, columns=columns,
                           hashes=ctx.engine.share(hashes), limit=settings.max_failure_cases)
    problems = [f for f in found if isinstance(f, str)]
    if problems:
        return error(REASON_CHECK_ERROR, ov.MSG_CANNOT_HASH.format(problem=problems[0]))
    n = sum(f[0] for f in found if not isinstance(f, str))
    rows = [r for f in found if not isinstance(f, str) for r in f[1]][:settings.max_failure_cases]
    fraction = n / ctx.n_eval_rows
    ok = fraction <= limit
    message = ov.MSG_OVERLAP.format(n=n, total=ctx.n_eval_rows, fraction=fraction)
    message += "" if ok else ov.MSG_LIMIT.format(limit=limit)
    return [make_result(ov.CHECK_ID, outcome=Outcome.PASS if ok else Outcome.FAIL, blocking=blocking,
                        observed=fraction, threshold=threshold, reason=REASON_THRESHOLD, message=message,
                        details={"rows": n, "eval_rows": ctx.n_eval_rows, "columns": columns,
                                 "examples": examples(rows, None, settings.max_failure_cases)})]


def _gate_level(check_id: CheckId, blocking: bool, what: str) -> CheckResult:
    return make_result(check_id, outcome=Outcome.ERROR, blocking=blocking,
                       reason=REASON_NOT_DISTRIBUTABLE, message=MSG_NOT_DISTRIBUTABLE.format(what=what))


def _drift_columns(ctx: PartitionedContext, plan: DriftPlan) -> list[str]:
    from gates.checks.data import _model_columns

    ref_schema = ctx.reference_schema
    assert ref_schema is not None
    return dr.drift_columns(plan.spec, ctx.schema, ref_schema, ctx.policy.data.features, _model_columns(ctx))


def _bins(ctx: PartitionedContext, plan: DriftPlan, columns: list[str]) -> dict[str, Bins]:
    ref_schema = ctx.reference_schema
    assert ref_schema is not None and ctx.policy.data.reference is not None
    present = [c for c in columns if c in ref_schema.columns and c in ctx.schema.columns]
    if not present:
        return {}
    methods = {c: dr.resolve_rule(plan, c, dr.column_kind(ref_schema[c])).method for c in present}
    [found] = ctx.engine.map(reference_bins, [ctx.policy.data.reference], columns=present, methods=methods,
                             spec=dict(plan.spec), location=ctx.policy.where("data", "reference"))
    return found


def _pandera(total: FramePartial, target: Target, blocking: bool, limit: int,
             unique_cols: Sequence[str] = (), whole: Sequence[tuple[str, str | None]] = ()) -> list[CheckResult]:
    """Merge each pandera check over partitions: failing rows add, examples are the first ones; a
    column's ``unique`` check counts the rows holding a value repeated anywhere (merged value counts).
    A check in ``whole`` (judged on a whole column or frame) is a ``not_distributable`` error:
    its partitions' verdicts do not add up to the data's."""
    from gates.checks.data import pandera_engine as pe

    def judges_whole(check_id: CheckId) -> str | None:
        for name, col in whole:
            probe = target.check_id("pandera", name, col or "")
            if check_id.kind == probe.kind and (col is None or check_id.scope == probe.scope):
                return name
        return None

    by_id: dict[CheckId, list[CheckResult]] = {}
    for results in total.pandera:
        for r in results:
            by_id.setdefault(r.key, []).append(r)
    merged_unique = {}
    for col in unique_cols:
        count = total.rules.get((col, "unique"))
        if count is None:
            continue
        found = None  # a partition that could not count gives its error, never a guessed count
        if count.error is not None:
            found = pe._Found(None, error=count.error)
        elif count.n_bad:
            found = pe._Found(count.n_bad, list(count.examples))
        merged_unique[target.check_id("pandera", pe.UNIQUE, col)] = (col, found)
    out = []
    for check_id, results in by_id.items():
        if check_id in merged_unique and results[0].status is not Status.SKIPPED:
            col, found = merged_unique[check_id]
            out.append(pe._result(target, (pe.UNIQUE, col), (col, pe.UNIQUE, None), found, set(), blocking))
            continue
        whole_name = judges_whole(check_id)
        if whole_name is not None or any(u in str(check_id) for u in PANDERA_UNIQUE):
            what = WHAT_UNIQUE if whole_name is None else WHAT_PANDERA_WHOLE.format(name=whole_name)
            out.append(make_result(check_id, outcome=Outcome.ERROR, blocking=blocking, reason=REASON_NOT_DISTRIBUTABLE,
                                   message=MSG_NOT_DISTRIBUTABLE.format(what=what)))
            continue
        out.append(_merge_results(results, limit))
    return out


def _merge_results(results: list[CheckResult], limit: int) -> CheckResult:
    errors = [r for r in results if r.status is Status.ERROR]
    if errors:
        return errors[0]
    failing = [r for r in results if r.reason and r.status not in (Status.PASS, Status.SKIPPED)]
    if not failing:
        return results[0]
    first = failing[0]
    n = sum(int(r.observed or 0) for r in results)
    examples = [e for r in failing for e in r.details.get("examples", [])][:limit]
    details = {**first.details, "examples": examples} if "examples" in first.details else dict(first.details)
    message = _ROWS.sub(f"{n} rows ", first.message) if first.observed is not None else first.message
    return CheckResult(id=first.id, check_id=first.check_id, gate=first.gate, status=first.status, blocking=first.blocking, message=message,
                       reason=first.reason, observed=n if first.observed is not None else None,
                       threshold=dict(first.threshold), details=details, ci_method=first.ci_method)


def _builtin(target: Target, total: FramePartial, plan: ChecksPlan, settings: Settings) -> list[CheckResult]:
    """The built-in checks of :mod:`.builtin`, decided from merged counts (same ids and messages)."""
    counted = Target(target.name, _Shape(target.frame.columns, total.rows))  # type: ignore[arg-type]
    out = bi._row_count(counted, plan.row_count, plan.row_count_blocking)
    out.extend(bi._required(counted, c.name, c.blocking) for c in plan.required)
    for c in plan.columns:
        for rule in bi._rules(c.rules):
            out.append(_rule_result(target, total, c.name, rule, c.blocking, settings.max_failure_cases))
        if c.rules.get("max_null_fraction") is not None:
            out.append(_nulls(target, total, c.name, float(c.rules["max_null_fraction"]), c.blocking))
    return out


class _Shape:
    """What the row-count and required-column checks read of a frame: its columns and length."""

    def __init__(self, columns: pd.Index, rows: int) -> None:
        self.columns, self._rows = columns, rows

    def __len__(self) -> int:
        return self._rows


def _rule_result(target: Target, total: FramePartial, col: str, rule: Any, blocking: bool, limit: int
                 ) -> CheckResult:
    check_id = target.check_id(rule.name, scope=col)

    def error(reason: str, message: str) -> CheckResult:
        return make_result(check_id, outcome=Outcome.ERROR, blocking=blocking, reason=reason,
                           threshold=rule.threshold, message=message)

    if col not in target.frame.columns:
        return make_result(check_id, outcome=Outcome.SKIPPED, blocking=blocking, reason=REASON_MISSING_COLUMN,
                           threshold=rule.threshold, message=bi.MSG_SKIPPED_MISSING.format(col=col, label=target.label))
    if total.rows == 0:
        return error(REASON_NO_ROWS, bi.MSG_NO_ROWS.format(col=col, label=target.label))
    non_null = total.non_null.get(col, 0)
    if non_null == 0:
        return error(REASON_ALL_NULL, bi.MSG_ALL_NULL.format(col=col))
    dtype = target.frame[col].dtype
    if rule.name in ("min", "max") and ptypes.is_datetime64_any_dtype(dtype):
        return error(REASON_NOT_NUMERIC, bi.MSG_NOT_NUMERIC.format(col=col, dtype=dtype, rule=rule.name))
    count = total.rules[(col, rule.name)]
    if count.error is not None:
        return error(REASON_CHECK_ERROR, bi.MSG_RULE_ERROR.format(col=col, problem=count.error))
    details: dict[str, Any] = {"rows": total.rows, "non_null": non_null, "examples": count.examples}
    if count.n_bad and rule.name in ("allowed", "dtype"):
        table = sorted(((n, v) for v, n in count.unexpected.values()), key=lambda t: (-t[0], str(t[1])))
        details["unexpected_values"] = [{"value": v, "count": n} for n, v in table[:limit]]
    if rule.name == "dtype":
        details["pandas_dtype"] = str(dtype)
    fmt = {"n": count.n_bad, "total": non_null, "col": col, "what": rule.what, "what_ok": rule.what_ok}
    return make_result(check_id, outcome=count_outcome(count.n_bad), blocking=blocking, observed=count.n_bad,
                       threshold=rule.threshold, reason=REASON_BAD_ROWS, details=details,
                       message=(bi.MSG_BAD if count.n_bad else bi.MSG_OK).format(**fmt))


def _nulls(target: Target, total: FramePartial, col: str, limit: float, blocking: bool) -> CheckResult:
    strict = limit == 0
    check_id = target.check_id("not_null", scope=col) if strict else target.check_id("null_fraction", "max", col)
    threshold = {"max_null_fraction": limit}
    if col not in target.frame.columns:
        return make_result(check_id, outcome=Outcome.SKIPPED, blocking=blocking, reason=REASON_MISSING_COLUMN,
                           threshold=threshold, message=bi.MSG_SKIPPED_MISSING.format(col=col, label=target.label))
    if total.rows == 0:
        return make_result(check_id, outcome=Outcome.ERROR, blocking=blocking, reason=REASON_NO_ROWS,
                           threshold=threshold, message=bi.MSG_NO_ROWS.format(col=col, label=target.label))
    n_null = total.rows - total.non_null.get(col, 0)
    fraction = n_null / total.rows
    ok = fraction <= limit
    fmt = {"n": n_null, "total": total.rows, "col": col, "fraction": fraction, "limit": limit}
    return make_result(
        check_id, outcome=Outcome.PASS if ok else Outcome.FAIL, blocking=blocking,
        observed=n_null if strict else fraction, threshold=threshold, reason=REASON_BAD_ROWS,
        message=(bi.MSG_NULLS_OK if ok else bi.MSG_NULLS).format(**fmt),
        details={"rows": total.rows, "null_rows": n_null, "null_fraction": fraction,
                 "examples": total.null_examples.get(col, [])})


def _drift(plan: DriftPlan, columns: list[str], bins: Mapping[str, Bins], total: FramePartial,
           schema: pd.DataFrame, settings: Settings, engine: Any, kept: Sequence[Any]) -> list[CheckResult]:
    out: list[CheckResult] = []
    for col in columns:
        out.extend(_drift_column(plan, col, bins.get(col), total, schema, settings, _Compared(engine, kept)))
    return out


@dataclass(frozen=True)
class _Compared:
    """The eval partitions' ks / wasserstein value counts, kept on the workers (``engine``'s handles)."""

    engine: Any
    kept: Sequence[Any]

    def statistic(self, method: str, col: str, reference: tuple[np.ndarray, np.ndarray],
                  sampled: Sequence[tuple[np.ndarray, int]]) -> dr.Statistic:
        """``method`` (ks or wasserstein) of the reference's value counts against the eval data's."""
        engine = self.engine
        tables = [engine.then(_value_table, h, col) for h in self.kept]
        tables.append(engine.then(_value_table, reference, reference=True))
        samples = [*sampled, (sample(reference[0]), len(reference[0]))]
        d, distance, sizes = dr.ecdf_gaps(engine, tables, samples, VALUE, (REF, EVAL), len(tables))
        if method == "ks":
            return dr.ks_statistic(d, int(sizes[0]), int(sizes[1]))
        return dr.wasserstein_statistic(distance, reference)


def _drift_column(plan: DriftPlan, col: str, b: Bins | None, total: FramePartial, schema: pd.DataFrame,
                  settings: Settings, compared: _Compared) -> list[CheckResult]:
    """The decisions of :func:`.drift._column`, from the merged histogram or the ranged value counts."""
    min_rows = int(plan.spec.get("min_rows", dr.DEFAULT_MIN_ROWS))
    kind = b.kind if b is not None else (dr.column_kind(schema[col]) if col in schema.columns else "numeric")
    rule = dr.resolve_rule(plan, col, kind)

    def every(outcome: Outcome, reason: str, message: str) -> list[CheckResult]:
        return [make_result(cid, outcome=outcome, blocking=rule.blocking, reason=reason, message=message,
                            threshold={k: v}, ci_method=rule.method, details={"method": rule.method})
                for cid, k, v in dr._ids(col, rule)]

    if b is None:
        where = "eval" if col not in schema.columns else "reference"
        return every(Outcome.ERROR, REASON_MISSING_COLUMN, dr.MSG_MISSING.format(col=col, where=where))
    ev_n, ev_rows = total.non_null.get(col, 0), total.rows
    ev_kind = dr.column_kind(schema[col])
    if b.kind != ev_kind and ev_n and b.reference_non_null:
        return every(Outcome.ERROR, REASON_TYPE_MISMATCH, dr.MSG_KIND_CHANGED.format(
            col=col, ref_kind=b.kind, ref_dtype=b.dtype, eval_kind=ev_kind, eval_dtype=schema[col].dtype))
    if rule.method in dr.NUMERIC_ONLY and b.kind != "numeric":
        return every(Outcome.ERROR, REASON_TYPE_MISMATCH, dr.MSG_NUMERIC_ONLY.format(
            method=rule.method, col=col, kind=b.kind, dtype=b.dtype))
    for what, n in (("the reference", b.reference_non_null), ("the eval data", ev_n)):
        if n < min_rows:
            return every(Outcome.SKIPPED, REASON_TOO_FEW_ROWS,
                         dr.MSG_TOO_FEW.format(what=what, n=n, col=col, min_rows=min_rows))
    hist = None if b.values is not None else dr.Histogram(b.labels, b.reference, total.drift[col], b.binning)
    try:
        if hist is None:
            assert b.values is not None
            stat = compared.statistic(rule.method, col, b.values, total.samples.get(col, []))
        else:
            stat = {"psi": dr.psi, "js": dr.js, "chi2": dr.chi2}[rule.method](hist.reference, hist.eval)
    except Exception as exc:  # noqa: BLE001 -- as the embedded gate: report, never crash
        return every(Outcome.ERROR, REASON_UNDEFINED,
                     dr.MSG_FAILED.format(method=rule.method, col=col, problem=str(exc) or first_line(exc)))
    details: dict[str, Any] = {"method": rule.method, "statistic": stat.value}
    if stat.p_value is not None:
        details["p_value"] = stat.p_value
    details.update(stat.extra or {})
    details.update({"reference_rows": b.reference_non_null, "eval_rows": ev_n,
                    "reference_null_fraction": _fraction(b.reference_rows - b.reference_non_null, b.reference_rows),
                    "eval_null_fraction": _fraction(ev_rows - ev_n, ev_rows)})
    if rule.note:
        details["note"] = rule.note
    if hist is not None:
        details["binning"] = hist.binning
        details["bins"] = dr._bin_table(hist, settings.max_failure_cases)
    return [dr._decide(cid, k, lim, col, rule, stat, details) for cid, k, lim in dr._ids(col, rule)]


def _fraction(part: int, whole: int) -> float:
    """As ``mask.mean()`` computes it: an exact sum of 0/1 values divided by the count."""
    return part / whole if whole else 0.0
