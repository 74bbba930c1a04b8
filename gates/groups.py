"""Per-group statistics from one pass over the rows: group codes, count tables, rates, disparities.

The fairness gate groups the rows once per grouping (one column or an intersection of columns)
and derives every per-group rate and every disparity from small tables, in the spirit of
fairlearn's ``MetricFrame`` (``fairlearn/metrics/_metric_frame.py``) but vectorised:

* :class:`CellTable` holds joint counts over (group, y, candidate label, baseline label). Every
  confusion-matrix rate of both models in every group is a function of it, one
  ``np.bincount`` builds it, and tables of data partitions add up (:meth:`CellTable.merge`).
* :func:`confusion_rates` turns (…, K, K) confusion counts into a rate per class, with its
  denominator so small groups can be excluded honestly; leading axes may be bootstrap replicates.
* :func:`disparity` reduces per-group values to fairlearn's ``difference``/``ratio`` with
  ``between_groups`` or ``to_overall``, over the groups that are included only.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from gates.stats.grouping import GroupKey, Grouping
from gates.stats.tables import axis_sum, diagonal_sum

#: largest product of per-column cardinalities compressed with one bincount (beyond it: np.unique)
DENSE_CODES_LIMIT = 1 << 24



# ---------------------------------------------------------------- groups


#: the fairness gate's name for the one grouping type
GroupIndex = Grouping


#: a column's factorization: each row's code and the plain value of each code
Factorized = tuple[np.ndarray, list[Any]]


def group_index(frame: pd.DataFrame, columns: Sequence[str],
                cache: dict[str, Factorized] | None = None) -> GroupIndex:
    """Return the group of every row of ``frame`` for the intersection of ``columns``.

    Missing values form their own group (key ``None``) rather than dropping rows. Groups are
    ordered by their values, column by column, as fairlearn orders ``by_group``. ``cache`` keeps
    each column's factorization for the next grouping that uses it.
    """
    cache = {} if cache is None else cache
    for c in columns:
        if c not in cache:
            cache[c] = _factorize(frame[c])
    per_col = [cache[c] for c in columns]
    if len(per_col) == 1:  # factorize yields observed values only: already dense
        codes, uniques = per_col[0]
        return GroupIndex(tuple(columns), tuple((u,) for u in uniques), codes)
    radix = [len(u) for _, u in per_col]
    combined = np.zeros(len(frame), dtype=np.int64)
    for codes, size in zip((c for c, _ in per_col), radix):
        combined = combined * size + codes
    observed, codes = _compress(combined, math.prod(radix))
    keys = []
    for code in observed.tolist():
        parts = []
        for size, (_, uniques) in zip(reversed(radix), reversed(per_col)):
            code, digit = divmod(code, size)
            parts.append(uniques[digit])
        keys.append(tuple(reversed(parts)))
    return GroupIndex(tuple(columns), tuple(keys), codes)


def _factorize(values: pd.Series) -> tuple[np.ndarray, list[Any]]:
    try:
        codes, uniques = pd.factorize(values, sort=True, use_na_sentinel=False)
    except TypeError:  # mixed types that do not sort: keep first-seen order
        codes, uniques = pd.factorize(values, sort=False, use_na_sentinel=False)
    return codes.astype(np.int64), [plain(u) for u in uniques]


def _compress(combined: np.ndarray, space: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (observed combined codes in order, each row's rank among them)."""
    if space <= DENSE_CODES_LIMIT:
        present = np.bincount(combined, minlength=space) > 0
        rank = np.cumsum(present) - 1
        return np.flatnonzero(present), rank[combined]
    observed, inverse = np.unique(combined, return_inverse=True)
    return observed, inverse.astype(np.int64)


def plain(value: Any) -> Any:
    """Return ``value`` as a plain JSON-able Python value (missing values become None)."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        value = value.item()
        return None if isinstance(value, float) and math.isnan(value) else value
    if isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


# ---------------------------------------------------------------- count tables


@dataclass(frozen=True)
class CellTable:
    """Joint row counts over (group, true label, candidate label, baseline label).

    ``counts`` has shape ``(G, K, K, Kb)`` with labels indexed in ``classes`` order; ``Kb`` is 1
    when there is no baseline. The table of a whole data set is the sum of its partitions' tables.
    """

    keys: tuple[GroupKey, ...]
    classes: tuple[Any, ...]
    counts: np.ndarray

    def merge(self, other: CellTable) -> CellTable:
        """Return the table of both partitions' rows (groups aligned by key)."""
        if other.classes != self.classes or other.counts.shape[1:] != self.counts.shape[1:]:
            raise ValueError("cannot merge count tables over different classes")
        keys = list(self.keys) + [k for k in other.keys if k not in set(self.keys)]
        out = np.zeros((len(keys), *self.counts.shape[1:]), dtype=np.int64)
        pos = {k: i for i, k in enumerate(keys)}
        out[[pos[k] for k in self.keys]] += self.counts
        out[[pos[k] for k in other.keys]] += other.counts
        return CellTable(tuple(keys), self.classes, out)


def cell_table(index: GroupIndex, classes: Sequence[Any], y: np.ndarray, candidate: np.ndarray,
               baseline: np.ndarray | None) -> CellTable:
    """Count the rows of every (group, y, candidate, baseline) cell with one ``np.bincount``.

    ``y``, ``candidate`` and ``baseline`` are label indices into ``classes`` (0..K-1).
    """
    return table_of_cells(index, classes, label_cells(y, candidate, baseline, len(classes)),
                          baseline is not None)


def label_cells(y: np.ndarray, candidate: np.ndarray, baseline: np.ndarray | None, k: int) -> np.ndarray:
    """Return each row's (y, candidate, baseline) cell as one code, shared by every grouping."""
    code = y * k + candidate
    return code if baseline is None else code * k + baseline


def table_of_cells(index: GroupIndex, classes: Sequence[Any], cells: np.ndarray, has_baseline: bool) -> CellTable:
    """Return the :class:`CellTable` of rows whose label cells are ``cells`` (see :func:`label_cells`)."""
    k = len(classes)
    kb = k if has_baseline else 1
    per_group = k * k * kb
    counts = np.bincount(index.codes * per_group + cells, minlength=index.n_groups * per_group)
    return CellTable(index.keys, tuple(classes), counts.reshape(index.n_groups, k, k, kb))


# ---------------------------------------------------------------- rates


@dataclass(frozen=True)
class Rate:
    """A per-group metric computed from one-vs-rest confusion counts ``(tn, fp, fn, tp)``.

    ``numerator`` and ``denominator`` map those counts to the rate's parts; ``needs`` names the
    rows the rate is about (``rows``, ``positives``, ``negatives``, ``predicted positives``) so a
    group with too few of them can be excluded rather than trusted.
    """

    name: str
    numerator: Callable[..., np.ndarray]
    denominator: Callable[..., np.ndarray]
    needs: str

    def support(self, tn: np.ndarray, fp: np.ndarray, fn: np.ndarray, tp: np.ndarray) -> np.ndarray:
        """Return the count ``min_positives`` is checked against (the rows the rate is about)."""
        return SUPPORT[self.needs](tn, fp, fn, tp)


def _sum(*parts: str) -> Callable[..., np.ndarray]:
    def part(tn: np.ndarray, fp: np.ndarray, fn: np.ndarray, tp: np.ndarray) -> np.ndarray:
        cells = {"tn": tn, "fp": fp, "fn": fn, "tp": tp}
        return sum((cells[p] for p in parts), np.zeros_like(tp))

    return part


def _twice_tp_plus(tn: np.ndarray, fp: np.ndarray, fn: np.ndarray, tp: np.ndarray) -> np.ndarray:
    return 2 * tp + fp + fn


def _twice_tp(tn: np.ndarray, fp: np.ndarray, fn: np.ndarray, tp: np.ndarray) -> np.ndarray:
    return 2 * tp


SUPPORT: Mapping[str, Callable[..., np.ndarray]] = {
    "rows": _sum("tn", "fp", "fn", "tp"),
    "positives": _sum("fn", "tp"),
    "negatives": _sum("tn", "fp"),
    "predicted positives": _sum("fp", "tp"),
}

#: confusion-count rates by name; fairlearn's definitions (``_base_metrics.py``), sklearn's for f1
RATES: Mapping[str, Rate] = {r.name: r for r in (
    Rate("selection_rate", _sum("fp", "tp"), _sum("tn", "fp", "fn", "tp"), "rows"),
    Rate("tpr", _sum("tp"), _sum("fn", "tp"), "positives"),
    Rate("fnr", _sum("fn"), _sum("fn", "tp"), "positives"),
    Rate("fpr", _sum("fp"), _sum("fp", "tn"), "negatives"),
    Rate("tnr", _sum("tn"), _sum("fp", "tn"), "negatives"),
    Rate("precision", _sum("tp"), _sum("fp", "tp"), "predicted positives"),
    Rate("accuracy", _sum("tn", "tp"), _sum("tn", "fp", "fn", "tp"), "rows"),
    Rate("f1", _twice_tp, _twice_tp_plus, "positives"),
)}

#: other names of the same rates (sklearn's and the metric registry's)
RATE_ALIASES: Mapping[str, str] = {"recall": "tpr", "true_positive_rate": "tpr",
                                   "false_positive_rate": "fpr", "false_negative_rate": "fnr",
                                   "true_negative_rate": "tnr", "specificity": "tnr"}


def one_vs_rest(conf: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return per-class one-vs-rest (tn, fp, fn, tp), each shaped (…, K), from (…, K, K) counts.

    ``conf[..., i, j]`` counts rows with true class ``i`` predicted as ``j``.
    """
    conf = np.asarray(conf, dtype=np.float64)
    tp = np.diagonal(conf, axis1=-2, axis2=-1)
    true = axis_sum(conf, -1)
    pred = axis_sum(conf, -2)
    n = axis_sum(true, -1)[..., None]
    fn = true - tp
    fp = pred - tp
    return n - true - fp, fp, fn, tp


def confusion_rates(conf: np.ndarray, rate: Rate, view: int | Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Return (values, supports) of ``rate`` from (…, K, K) confusion counts.

    ``view`` is a class index (one-vs-rest for that class; the positive class of a binary task) or
    a sequence of class indices (the unweighted mean over them, "macro", undefined when any class's
    rate is; its support is the smallest class's). Macro ``accuracy`` is the share of correct
    labels. A rate whose denominator is 0 is NaN (undefined), never 0.
    """
    conf = np.asarray(conf, dtype=np.float64)
    if rate.name == "accuracy" and not isinstance(view, (int, np.integer)):
        n = axis_sum(conf, (-2, -1))
        return _divide(diagonal_sum(conf), n), n
    parts = one_vs_rest(conf)
    values = _divide(rate.numerator(*parts), rate.denominator(*parts))
    support = rate.support(*parts)
    if isinstance(view, (int, np.integer)):
        return values[..., int(view)], support[..., int(view)]
    cols = list(view)
    return values[..., cols].mean(axis=-1), support[..., cols].min(axis=-1)


def _divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


# ---------------------------------------------------------------- disparities


def disparity(values: np.ndarray, overall: np.ndarray, include: np.ndarray, kind: str,
              method: str) -> np.ndarray:
    """Return fairlearn's ``difference`` or ``ratio`` of per-group ``values`` (…, G).

    Only groups where ``include`` (G,) is true count; a value that is NaN (undefined in that group
    or replicate) is skipped, as pandas skips it in ``MetricFrame``. ``between_groups``: max - min,
    or min / max. ``to_overall``: the largest ``|group - overall|``, or the smallest of
    ``min(group / overall, overall / group)``. NaN when fewer than two groups (one for
    ``to_overall``) have a value.
    """
    v = np.where(include, values, np.nan)
    finite = np.isfinite(v).sum(axis=-1)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if method == "between_groups":
            hi, lo = np.nanmax(v, axis=-1), np.nanmin(v, axis=-1)
            out = hi - lo if kind == "difference" else lo / hi
            return np.where(finite >= 2, out, np.nan)
        o = np.asarray(overall, dtype=np.float64)[..., None]
        if kind == "difference":
            out = np.nanmax(np.abs(v - o), axis=-1)
        else:
            r = v / o
            out = np.nanmin(np.where(r > 1, 1 / r, r), axis=-1)
        return np.where(finite >= 1, out, np.nan)


def combine(parts: Sequence[np.ndarray], kind: str, agg: str) -> np.ndarray:
    """Combine the disparities of several rates (equalized odds: tpr and fpr) into one.

    ``worst_case`` takes the largest difference or the smallest ratio, ``mean`` their mean, as
    fairlearn's ``equalized_odds_difference``/``_ratio`` do with ``agg``. NaN if any part is.
    """
    stacked = np.stack([np.asarray(p, dtype=np.float64) for p in parts])
    if len(parts) == 1:
        return stacked[0]
    if agg == "mean":
        return stacked.mean(axis=0)
    return stacked.max(axis=0) if kind == "difference" else stacked.min(axis=0)
