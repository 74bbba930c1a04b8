"""Drift of each column of the eval data against the reference snapshot.

Methods, one check ``data.drift.max[col]`` per column (plus ``data.drift.min_p_value[col]`` when a
p-value floor is set); ``observed`` is the statistic, never a p-value; ``ci_method`` and
``details.method`` name the method:

* ``psi``  population stability index ``sum((q - p) * ln(q / p))`` over bins (p: reference
  shares, q: eval shares); an empty bin's share is floored at ``PSI_FLOOR`` so PSI stays finite.
* ``js``   Jensen-Shannon distance, base 2 (in [0, 1]): ``sqrt(KL(p||m)/2 + KL(q||m)/2)``, m = (p+q)/2.
* ``chi2`` chi-square test of homogeneity on the 2 x bins table of counts (no continuity
  correction, as ``scipy.stats.chi2_contingency(correction=False)``); details hold p and dof.
* ``ks``   two-sample Kolmogorov-Smirnov statistic on the raw values; asymptotic p-value
  ``kstwo.sf(D, round(n*m/(n+m)))`` as ``scipy.stats.ks_2samp(method="asymp")``. Numeric only.
* ``wasserstein``  first Wasserstein distance on the raw values divided by the reference's
  standard deviation (ddof 0), so 0.1 means "moved a tenth of a standard deviation". Numeric only.

Binning (psi, js, chi2) is fixed by the reference alone, so it is reproducible and the counts of
data partitions add up (DESIGN section 12). Numeric columns: cut points are the reference's
quantiles at 1/b, ..., (b-1)/b (numpy's "linear" method), de-duplicated; when the reference has at
most b distinct values each value starts its own bin. Bins are [lo, hi); the outer ones are open,
so eval values beyond the reference's range land in the first or last bin. Categorical columns:
the reference's ``max_categories`` most frequent values (ties: first seen) are bins, its other values
share ``(other)``, and eval values never seen in the reference share ``(unseen)``. Nulls are left
out of every statistic (their shares are in details; the null checks judge them). Default method:
psi for numeric columns, js for categorical ones (bool, string, category).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from gates.checks.data._common import (
    REASON_MISSING_COLUMN,
    REASON_THRESHOLD,
    REASON_TOO_FEW_ROWS,
    REASON_TYPE_MISMATCH,
    REASON_UNDEFINED,
    Settings,
    data_id,
    first_line,
    make_result,
)
from gates.checks.data._plan import DriftPlan, plan_drift
from gates.identity import CheckId
from gates.results import CheckResult, Outcome

METHODS = ("psi", "js", "wasserstein", "ks", "chi2")
NUMERIC_ONLY = frozenset({"ks", "wasserstein"})
HAS_P_VALUE = frozenset({"ks", "chi2"})
DEFAULT_METHOD = {"numeric": "psi", "categorical": "js"}
#: thresholds used when a rule names none: PSI 0.2 is the usual "significant shift" line; JS
#: distance and normalised Wasserstein 0.1 follow Evidently's defaults; chi2 tests at 5%.
DEFAULT_MAX = {"psi": 0.2, "js": 0.1, "wasserstein": 0.1, "ks": 0.1}
DEFAULT_MIN_P = {"chi2": 0.05}
DEFAULT_BINS = 10
DEFAULT_MIN_ROWS = 100
DEFAULT_MAX_CATEGORIES = 50
#: leading reference values looked at first: more than ``bins`` distinct among them spares sorting the column
FEW_DISTINCT_PREFIX = 256
PSI_FLOOR = 1e-4
OTHER, UNSEEN = "(other)", "(unseen)"

MSG_TOO_FEW = "not checked: {what} has {n} non-null values of '{col}', fewer than min_rows {min_rows}"
MSG_MISSING = "column '{col}' is missing from the {where} data"
MSG_NUMERIC_ONLY = "{method} needs a numeric column; '{col}' is {kind} ({dtype})"
MSG_KIND_CHANGED = ("column '{col}' is {ref_kind} in the reference ({ref_dtype}) "
                    "but {eval_kind} in the eval data ({eval_dtype})")
MSG_CONSTANT = "normalised Wasserstein is undefined: every reference value is the same"
MSG_FAILED = "cannot compute {method} drift of '{col}': {problem}"
MSG_MAX = "{method} drift of '{col}' is {value:.4g}{verdict} {limit}"
MSG_MIN_P = "{method} test of '{col}': p = {p:.3g}{verdict} {limit} (statistic {value:.4g})"


@dataclass(frozen=True)
class DriftRule:
    """The resolved rule of one column: method, thresholds and whether it blocks."""

    method: str
    max: float | None
    min_p_value: float | None
    blocking: bool
    note: str = ""


@dataclass(frozen=True)
class Histogram:
    """Counts of the reference and eval values per bin; bins come from the reference only."""

    labels: list[str]
    reference: np.ndarray
    eval: np.ndarray
    binning: str


@dataclass(frozen=True)
class Statistic:
    value: float
    p_value: float | None = None
    extra: Mapping[str, Any] | None = None


def column_kind(series: pd.Series) -> str:
    """Return ``numeric`` for numbers (not bool), ``categorical`` for anything else."""
    dtype = series.dtype
    return "numeric" if ptypes.is_numeric_dtype(dtype) and not ptypes.is_bool_dtype(dtype) else "categorical"


def resolve_rule(plan: DriftPlan, col: str, kind: str) -> DriftRule:
    """Return one column's rule: its own entry, else ``default``, else the method for its kind.

    Thresholds belong to a method: a column that names its own method does not inherit the
    default's thresholds; a default method a column's kind cannot use falls back to the kind's.
    Whether it blocks was resolved in the plan.
    """
    spec = plan.spec
    default: Mapping[str, Any] = spec.get("default") or {}
    own: Mapping[str, Any] = (spec.get("columns") or {}).get(col) or {}
    base = default if "method" not in own else {}
    method = own.get("method") or base.get("method") or DEFAULT_METHOD[kind]
    note = ""
    if "method" not in own and method in NUMERIC_ONLY and kind != "numeric":
        note = f"default method {method} needs numbers; used {DEFAULT_METHOD[kind]}"
        method, base = DEFAULT_METHOD[kind], {}
    hi = own.get("max", base.get("max"))
    lo_p = own.get("min_p_value", base.get("min_p_value"))
    if hi is None and lo_p is None:
        hi, lo_p = DEFAULT_MAX.get(method), DEFAULT_MIN_P.get(method)
    return DriftRule(method, hi, lo_p, plan.blocking(col), note)


def drift_columns(spec: Mapping[str, Any], eval_frame: pd.DataFrame, reference: pd.DataFrame,
                  features: tuple[str, ...] | None, skip: set[str]) -> list[str]:
    """Return the columns to check: ``data.features`` (else every column both frames share, less
    ``skip``), plus every column named under ``drift.columns``, less ``drift.exclude``."""
    if features:
        base = list(features)
    else:
        shared = set(reference.columns)
        base = [str(c) for c in eval_frame.columns if c in shared and c not in skip]
    named = list((spec.get("columns") or {}))
    excluded = set(spec.get("exclude") or ())
    return [c for c in dict.fromkeys([*base, *named]) if c not in excluded]


def run_drift(eval_frame: pd.DataFrame, reference: pd.DataFrame, spec: DriftPlan | Mapping[str, Any],
              columns: list[str], settings: Settings) -> list[CheckResult]:
    """Return the drift checks of ``columns``: eval data against the reference (``spec``: the
    section's plan; a mapping is planned here)."""
    plan = plan_drift(spec, settings.severity)
    out: list[CheckResult] = []
    for col in columns:
        out.extend(_column(eval_frame, reference, plan, col, settings))
    return out


def _ids(col: str, rule: DriftRule) -> list[tuple[CheckId, str, float]]:
    kinds = [("max", rule.max), ("min_p_value", rule.min_p_value)]
    return [(data_id("drift", k, col), k, float(v)) for k, v in kinds if v is not None]


def _column(eval_frame: pd.DataFrame, reference: pd.DataFrame, plan: DriftPlan, col: str,
            settings: Settings) -> list[CheckResult]:
    spec = plan.spec
    min_rows = int(spec.get("min_rows", DEFAULT_MIN_ROWS))
    missing = [w for w, f in (("eval", eval_frame), ("reference", reference)) if col not in f.columns]
    source = reference if col in reference.columns else eval_frame
    kind = column_kind(source[col]) if col in source.columns else "numeric"
    rule = resolve_rule(plan, col, kind)

    def every(outcome: Outcome, reason: str, message: str) -> list[CheckResult]:
        return [make_result(cid, outcome=outcome, blocking=rule.blocking, reason=reason, message=message,
                            threshold={k: v}, ci_method=rule.method, details={"method": rule.method})
                for cid, k, v in _ids(col, rule)]

    if missing:
        return every(Outcome.ERROR, REASON_MISSING_COLUMN, MSG_MISSING.format(col=col, where=missing[0]))
    ref, ev = reference[col], eval_frame[col]
    problem = _kind_problem(col, ref, ev, rule.method)
    if problem is not None:
        return every(Outcome.ERROR, REASON_TYPE_MISMATCH, problem)
    ref_n, ev_n = int(ref.notna().sum()), int(ev.notna().sum())
    for what, n in (("the reference", ref_n), ("the eval data", ev_n)):
        if n < min_rows:
            return every(Outcome.SKIPPED, REASON_TOO_FEW_ROWS,
                         MSG_TOO_FEW.format(what=what, n=n, col=col, min_rows=min_rows))
    try:
        stat, hist = measure(ref, ev, rule.method, kind, spec)
    except Exception as exc:  # noqa: BLE001 -- cell values are arbitrary user data; report, never crash
        return every(Outcome.ERROR, REASON_UNDEFINED,
                     MSG_FAILED.format(method=rule.method, col=col, problem=str(exc) or first_line(exc)))
    details = _details(rule, stat, hist, ref, ev, settings.max_failure_cases)
    return [_decide(cid, k, limit, col, rule, stat, details) for cid, k, limit in _ids(col, rule)]


def _kind_problem(col: str, ref: pd.Series, ev: pd.Series, method: str) -> str | None:
    ref_kind, ev_kind = column_kind(ref), column_kind(ev)
    if ref_kind != ev_kind and ev.notna().any() and ref.notna().any():
        return MSG_KIND_CHANGED.format(col=col, ref_kind=ref_kind, ref_dtype=ref.dtype,
                                       eval_kind=ev_kind, eval_dtype=ev.dtype)
    if method in NUMERIC_ONLY and ref_kind != "numeric":
        return MSG_NUMERIC_ONLY.format(method=method, col=col, kind=ref_kind, dtype=ref.dtype)
    return None


def _decide(check_id: CheckId, kind: str, limit: float, col: str, rule: DriftRule, stat: Statistic,
            details: Mapping[str, Any]) -> CheckResult:
    if kind == "max":
        ok = stat.value <= limit
        message = MSG_MAX.format(method=rule.method, col=col, value=stat.value, limit=limit,
                                 verdict=" <=" if ok else ", above the maximum")
    else:
        p = stat.p_value if stat.p_value is not None else math.nan
        ok = p >= limit
        message = MSG_MIN_P.format(method=rule.method, col=col, p=p, value=stat.value, limit=limit,
                                   verdict=" >=" if ok else ", below the minimum")
    outcome = Outcome.PASS if ok else Outcome.FAIL
    if not math.isfinite(stat.value):
        outcome = Outcome.ERROR
    return make_result(check_id, outcome=outcome, blocking=rule.blocking, observed=stat.value,
                       threshold={kind: limit}, reason=REASON_THRESHOLD, message=message,
                       ci_method=rule.method, details=details)


def _details(rule: DriftRule, stat: Statistic, hist: Histogram | None, ref: pd.Series, ev: pd.Series,
             limit: int) -> dict[str, Any]:
    details: dict[str, Any] = {"method": rule.method, "statistic": stat.value}
    if stat.p_value is not None:
        details["p_value"] = stat.p_value
    details.update(stat.extra or {})
    details.update({"reference_rows": int(ref.notna().sum()), "eval_rows": int(ev.notna().sum()),
                    "reference_null_fraction": float(ref.isna().mean()) if len(ref) else 0.0,
                    "eval_null_fraction": float(ev.isna().mean()) if len(ev) else 0.0})
    if rule.note:
        details["note"] = rule.note
    if hist is not None:
        details["binning"] = hist.binning
        details["bins"] = _bin_table(hist, limit)
    return details


def _bin_table(hist: Histogram, limit: int) -> list[dict[str, Any]]:
    """Return the ``limit`` bins whose share moved most, with both shares."""
    p, q = _shares(hist.reference), _shares(hist.eval)
    order = sorted(range(len(p)), key=lambda i: (-abs(q[i] - p[i]), i))[:limit]
    return [{"bin": hist.labels[i], "reference": float(p[i]), "eval": float(q[i])} for i in order]


# ---------------------------------------------------------------- statistics


def measure(ref: pd.Series, ev: pd.Series, method: str, kind: str,
            spec: Mapping[str, Any] | None = None) -> tuple[Statistic, Histogram | None]:
    """Return the drift statistic of ``method`` between the non-null values of two columns."""
    spec = spec or {}
    if method in NUMERIC_ONLY:
        r, e = _floats(ref), _floats(ev)
        return (ks(r, e) if method == "ks" else wasserstein(r, e)), None
    if kind == "numeric":
        hist = numeric_histogram(_floats(ref), _floats(ev), int(spec.get("bins", DEFAULT_BINS)))
    else:
        hist = categorical_histogram(ref, ev, int(spec.get("max_categories", DEFAULT_MAX_CATEGORIES)))
    stat = {"psi": psi, "js": js, "chi2": chi2}[method](hist.reference, hist.eval)
    return stat, hist


def _floats(series: pd.Series) -> np.ndarray:
    values = series.to_numpy(dtype=float, na_value=np.nan)
    return values[~np.isnan(values)]


def numeric_edges(ref: np.ndarray, bins: int) -> np.ndarray:
    """Return the interior cut points of the reference (see the module docstring)."""
    if len(np.unique(ref[:FEW_DISTINCT_PREFIX])) <= bins:  # else the whole column has more than ``bins`` values
        distinct = np.unique(ref)
        if len(distinct) <= bins:
            return distinct[1:]
    return np.unique(np.quantile(ref, np.arange(1, bins) / bins))


def numeric_histogram(ref: np.ndarray, ev: np.ndarray, bins: int) -> Histogram:
    edges = numeric_edges(ref, bins)
    labels, binning = numeric_labels(edges)
    return Histogram(labels, numeric_counts(edges, ref), numeric_counts(edges, ev), binning)


def numeric_counts(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Return the count of ``values`` (non-null floats) in each bin cut at ``edges``."""
    return np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)


def numeric_labels(edges: np.ndarray) -> tuple[list[str], str]:
    """Return each numeric bin's label and the binning's description."""
    k = len(edges) + 1
    bounds = [-np.inf, *edges.tolist(), np.inf]
    return [f"[{bounds[i]:.6g}, {bounds[i + 1]:.6g})" for i in range(k)], f"reference quantiles, {k} bins"


def categorical_histogram(ref: pd.Series, ev: pd.Series, max_categories: int) -> Histogram:
    """Bin by the reference's most frequent values; the rest share ``(other)``/``(unseen)``.

    Ties in frequency go to the value seen first in the reference, so the bins are a function of
    the reference alone.
    """
    ref_v, ev_v = ref.dropna(), ev.dropna()
    codes, uniques = pd.factorize(pd.concat([ref_v, ev_v], ignore_index=True))  # first the reference's values
    ref_codes, ev_codes = codes[:len(ref_v)], codes[len(ref_v):]
    ref_counts = np.bincount(ref_codes, minlength=len(uniques))
    seen = np.flatnonzero(ref_counts)
    kept = seen[np.argsort(-ref_counts[seen], kind="stable")][:max_categories]
    slot = np.full(len(uniques), len(kept) + 1)  # unseen by default
    slot[seen] = len(kept)  # seen but not kept: other
    slot[kept] = np.arange(len(kept))
    k = len(kept) + 2
    r = np.bincount(slot[ref_codes], minlength=k)
    e = np.bincount(slot[ev_codes], minlength=k)
    labels = [str(uniques[c]) for c in kept] + [OTHER, UNSEEN]
    return Histogram(labels, r, e, f"reference categories, top {len(kept)} of {len(seen)}")


def _shares(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total else np.zeros(len(counts))


def psi(ref_counts: np.ndarray, ev_counts: np.ndarray) -> Statistic:
    p = np.maximum(_shares(ref_counts), PSI_FLOOR)
    q = np.maximum(_shares(ev_counts), PSI_FLOOR)
    return Statistic(float(np.sum((q - p) * np.log(q / p))))


def js(ref_counts: np.ndarray, ev_counts: np.ndarray) -> Statistic:
    p, q = _shares(ref_counts), _shares(ev_counts)
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        nz = a > 0
        return float(np.sum(a[nz] * np.log2(a[nz] / m[nz])))

    return Statistic(math.sqrt(max(0.0, (kl(p) + kl(q)) / 2)))


def chi2(ref_counts: np.ndarray, ev_counts: np.ndarray) -> Statistic:
    """Pearson's chi-square on the 2 x k table; bins empty in both samples are dropped."""
    from scipy.stats import chi2 as chi2_dist

    table = np.vstack([ref_counts, ev_counts]).astype(float)
    table = table[:, table.sum(axis=0) > 0]
    dof = table.shape[1] - 1
    if dof < 1:
        return Statistic(0.0, 1.0, {"dof": 0})
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    stat = float(np.sum((table - expected) ** 2 / expected))
    return Statistic(stat, float(chi2_dist.sf(stat, dof)), {"dof": int(dof)})


def ks(ref: np.ndarray, ev: np.ndarray) -> Statistic:
    """Two-sample KS: the largest gap between the two empirical CDFs, at every observed value."""
    from scipy.stats import kstwo

    r, e = np.sort(ref), np.sort(ev)
    points = np.concatenate([r, e])
    gap = np.abs(np.searchsorted(r, points, side="right") / len(r)
                 - np.searchsorted(e, points, side="right") / len(e))
    d = float(gap.max())
    en = len(r) * len(e) / (len(r) + len(e))
    return Statistic(d, float(np.clip(kstwo.sf(d, np.round(en)), 0.0, 1.0)))


def wasserstein(ref: np.ndarray, ev: np.ndarray) -> Statistic:
    """W1 = integral of |F_ref - F_eval|, divided by the reference's standard deviation."""
    r, e = np.sort(ref), np.sort(ev)
    points = np.sort(np.concatenate([r, e]), kind="stable")  # two sorted runs: a merge
    widths = np.diff(points)
    cdf_r = np.searchsorted(r, points[:-1], side="right") / len(r)
    cdf_e = np.searchsorted(e, points[:-1], side="right") / len(e)
    distance = float(np.sum(np.abs(cdf_r - cdf_e) * widths))
    scale = float(np.std(r))
    if scale == 0.0:
        if distance == 0.0:
            return Statistic(0.0, None, {"distance": 0.0, "reference_std": 0.0})
        raise ValueError(MSG_CONSTANT)
    return Statistic(distance / scale, None, {"distance": distance, "reference_std": scale})


def value_counts(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the distinct values of a float array (sorted) and how often each occurs."""
    distinct, counts = np.unique(np.asarray(values, dtype=np.float64), return_counts=True)
    return distinct, counts.astype(np.int64)


def merge_value_counts(parts: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Return the value counts of the rows of every part (counts of equal values added)."""
    values = np.concatenate([v for v, _ in parts]) if parts else np.zeros(0)
    counts = np.concatenate([c for _, c in parts]) if parts else np.zeros(0, dtype=np.int64)
    distinct, inverse = np.unique(values, return_inverse=True)
    return distinct, np.bincount(inverse.ravel(), weights=counts, minlength=len(distinct)).astype(np.int64)


def _cdfs(ref: tuple[np.ndarray, np.ndarray], ev: tuple[np.ndarray, np.ndarray]
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Both empirical CDFs at every distinct value of either sample (sorted), from value counts."""
    points = np.union1d(ref[0], ev[0])
    out = []
    for values, counts in (ref, ev):
        seen = np.r_[0, np.cumsum(counts)]
        out.append(seen[np.searchsorted(values, points, side="right")] / seen[-1])
    return points, out[0], out[1]


def ks_counts(ref: tuple[np.ndarray, np.ndarray], ev: tuple[np.ndarray, np.ndarray]) -> Statistic:
    """:func:`ks` from each sample's value counts (:func:`value_counts`): the same statistic and p-value."""
    _, cdf_r, cdf_e = _cdfs(ref, ev)
    return ks_statistic(float(np.abs(cdf_r - cdf_e).max()), int(ref[1].sum()), int(ev[1].sum()))


def ks_statistic(d: float, n_r: int, n_e: int) -> Statistic:
    """The KS statistic ``d`` of samples of ``n_r`` and ``n_e`` values with its asymptotic p-value."""
    from scipy.stats import kstwo

    en = n_r * n_e / (n_r + n_e)
    return Statistic(d, float(np.clip(kstwo.sf(d, np.round(en)), 0.0, 1.0)))


def wasserstein_counts(ref: tuple[np.ndarray, np.ndarray], ev: tuple[np.ndarray, np.ndarray]) -> Statistic:
    """:func:`wasserstein` from each sample's value counts: the same statistic up to float rounding."""
    points, cdf_r, cdf_e = _cdfs(ref, ev)
    return wasserstein_statistic(float(np.sum(np.abs(cdf_r[:-1] - cdf_e[:-1]) * np.diff(points))), ref)


def wasserstein_statistic(distance: float, ref: tuple[np.ndarray, np.ndarray]) -> Statistic:
    """The Wasserstein ``distance`` scaled by the reference's standard deviation (from its value counts)."""
    values, counts = ref
    n = counts.sum()
    mean = float(np.sum(values * counts) / n)
    scale = float(np.sqrt(np.sum(counts * (values - mean) ** 2) / n))
    if scale == 0.0:
        if distance == 0.0:
            return Statistic(0.0, None, {"distance": 0.0, "reference_std": 0.0})
        raise ValueError(MSG_CONSTANT)
    return Statistic(distance / scale, None, {"distance": distance, "reference_std": scale})


# --------------------------------------------------------------------------- value counts in value ranges


def cdf_range(table: pd.DataFrame, value: str, counts: tuple[str, str], below: np.ndarray, totals: np.ndarray
              ) -> tuple[float, float, float, float, float] | None:
    """One value range's part of the two CDFs' comparison (``table``: its distinct values,
    sorted, with each sample's count; ``below``/``totals``: each sample's rows in the ranges below
    and in all): the largest gap, the gap's integral between its values, its first and last
    value and the gap at the last; None for an empty range (runs on a worker)."""
    if table.empty:
        return None
    points = table[value].to_numpy(dtype=np.float64)
    seen = np.cumsum(table[list(counts)].to_numpy(dtype=np.float64), axis=0) + below
    gap = np.abs(seen[:, 0] / totals[0] - seen[:, 1] / totals[1])
    return (float(gap.max()), float(np.sum(gap[:-1] * np.diff(points))), float(points[0]), float(points[-1]),
            float(gap[-1]))


def join_ranges(found: Sequence[tuple[float, float, float, float, float] | None]) -> tuple[float, float]:
    """The largest gap and the gap's integral over every range (:func:`cdf_range`, in value order):
    between two ranges the gap stays the one at the lower range's last value."""
    d = distance = 0.0
    last: tuple[float, float] | None = None
    for part in found:
        if part is None:
            continue
        top, within, first, end, gap = part
        d = max(d, top)
        distance += within + (0.0 if last is None else last[1] * (first - last[0]))
        last = (end, gap)
    return d, distance


def ecdf_gaps(engine: Any, tables: Sequence[Any], samples: Sequence[tuple[np.ndarray, int]], value: str,
              counts: tuple[str, str], n_ranges: int) -> tuple[float, float, np.ndarray]:
    """The two samples' empirical CDFs compared over the kept value-count ``tables`` (column
    ``value`` and each sample's count column ``counts``): the largest gap (the KS statistic), the
    integral of the gap (the Wasserstein distance) and each sample's size, as
    :func:`gates.checks.data.drift.ks_counts` and ``wasserstein_counts`` compute them from the
    merged counts, up to float rounding. The tables handed in are released."""
    from gates.engine.ranges import edges, offsets, spread

    ranges = spread(engine, tables, value, edges(samples, n_ranges), list(counts), [value])
    engine.drop(tables)
    sizes = engine.pull([engine.then(_totals, t, counts) for t in ranges])
    below, totals = offsets([[s] for s in sizes])
    found = engine.pull([engine.then(cdf_range, t, value, counts, below[k][0], totals[0])
                         for k, t in enumerate(ranges)])
    engine.drop(ranges)
    d, distance = join_ranges(found)
    return d, distance, totals[0]


def _totals(table: pd.DataFrame, counts: Sequence[str]) -> np.ndarray:
    return table[list(counts)].to_numpy(dtype=np.float64).sum(axis=0)
