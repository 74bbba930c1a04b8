"""Seeded corruptions of feature columns: the inputs the robustness gate re-scores.

Each perturbation takes the model's feature frame, the columns to corrupt, one *severity* (the
parameter a severity curve varies: a noise scale, a rate, a factor), a :class:`Draws` and the
clean columns' :class:`ColumnStats`, and returns a new frame; the input frame is never modified.

Every random number is a pure function of (the run's stream for gate, perturbation and severity,
the column, the draw's name, the row's key): a uniform is the top 53 bits of SplitMix64 applied to
the row key mixed with the stream (:mod:`gates.stats.weights`), a normal is Box-Muller on two such
uniforms. Row keys are the regression gate's Poisson keys (the row's position among the scored
rows, or its ``data.id`` value), so a cell is corrupted the same way whether the rows are scored in
one frame or split into any number of partitions, and two runs with the same seed corrupt exactly
the same cells.

Column statistics (std, median, mode, observed range and levels) come from the clean columns, so
every severity of a perturbation is measured against the same yardstick; they are computed from
mergeable summaries (:class:`ColumnSummary`), the same numbers whether the rows are in one frame
or in partitions.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

import numpy as np
import pandas as pd

from gates.stats.partials import Moments
from gates.stats.weights import mix, row_keys, stream_seed

ColumnKind = Literal["numeric", "any"]
Selector = str | Sequence[str]

#: ``columns:`` keywords and what they select among the model's features
SELECTORS = ("numeric", "categorical", "all")


def is_numeric(series: pd.Series) -> bool:
    """Return True for number columns; booleans count as categorical (noise makes no sense on them)."""
    return bool(pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series))


def select_columns(frame: pd.DataFrame, features: Sequence[str], selector: Selector) -> list[str]:
    """Return the feature columns a ``columns:`` value names, in feature order for keywords.

    ``numeric`` and ``categorical`` split the features by dtype, ``all`` takes every feature, and a
    list is taken as given (callers check that its names are features).
    """
    if isinstance(selector, str):
        if selector == "all":
            return list(features)
        want_numeric = selector == "numeric"
        return [c for c in features if is_numeric(frame[c]) == want_numeric]
    return list(selector)


# ---------------------------------------------------------------- row-keyed draws


@dataclass(frozen=True)
class Draws:
    """The random numbers of one perturbed copy, each a pure function of (stream, column, name, row key).

    ``stream`` is the 64-bit seed of one gate, perturbation and severity
    (:func:`gates.stats.weights.stream_seed`); ``keys`` holds one uint64 key per row of the frame
    (:func:`gates.stats.weights.row_keys`). :meth:`take` gives the draws of a subset of the rows.

    >>> d = Draws.of(0, ("robustness", "missing", "0.1"), row_keys(4))
    >>> u = d.uniform("x", "mask")
    >>> bool(((0 <= u) & (u < 1)).all()), np.array_equal(u[2:], d.take(slice(2, 4)).uniform("x", "mask"))
    (True, True)
    """

    stream: int
    keys: np.ndarray

    @classmethod
    def of(cls, seed: int, names: Sequence[str], keys: np.ndarray) -> Draws:
        return cls(stream_seed(seed, *names), np.asarray(keys, dtype=np.uint64))

    def __len__(self) -> int:
        return len(self.keys)

    def take(self, rows: Any) -> Draws:
        return Draws(self.stream, self.keys[rows])

    def uniform(self, column: str, name: str) -> np.ndarray:
        """One U[0, 1) per row: the top 53 bits of SplitMix64 of the row key mixed with the draw's stream."""
        sub = np.uint64(stream_seed(self.stream, column, name))
        with np.errstate(over="ignore"):
            bits = mix(mix(self.keys ^ sub) + _GOLDEN)
        return (bits >> np.uint64(11)).astype(np.float64) * _UNIT

    def normal(self, column: str, name: str) -> np.ndarray:
        """One N(0, 1) per row, by Box-Muller on two uniforms."""
        radius = np.sqrt(-2.0 * np.log1p(-self.uniform(column, name + ":radius")))
        return radius * np.cos(2.0 * np.pi * self.uniform(column, name + ":angle"))

    def integers(self, column: str, name: str, low: int, high: int) -> np.ndarray:
        """One integer per row, uniform on ``low .. high - 1``."""
        span = max(int(high) - int(low), 1)
        drawn = np.floor(self.uniform(column, name) * span).astype(np.int64)
        return int(low) + np.minimum(drawn, span - 1)


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_UNIT = 2.0 ** -53


# ---------------------------------------------------------------- column statistics (mergeable)


@dataclass(frozen=True)
class ColumnSummary:
    """Mergeable statistics of one clean column's non-missing values.

    ``moments`` (number columns): count, mean and centred sum of squares, merged by Chan's formula;
    ``lo``/``hi``: the observed range; ``counts``: each distinct value's count in order of first
    appearance (None when not asked for). Merging batches in source order keeps that order, so the
    merged summary is the summary of the concatenated rows.
    """

    numeric: bool
    moments: Moments | None
    lo: float
    hi: float
    counts: pd.Series | None
    #: the median and mode, computed once by :meth:`settled` (the value counts may then be dropped)
    fixed: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, series: pd.Series, *, counts: bool = True) -> ColumnSummary:
        numeric = is_numeric(series)
        moments, lo, hi = None, float("nan"), float("nan")
        if numeric:
            values = series.to_numpy(dtype=float, na_value=np.nan)
            values = values[~np.isnan(values)]
            moments = Moments.of(values[:, None])
            if values.size:
                lo, hi = float(values.min()), float(values.max())
        table = None
        if counts:
            codes, uniques = pd.factorize(series, sort=False, use_na_sentinel=True)
            seen = np.bincount(codes[codes >= 0], minlength=len(uniques)).astype(np.int64)
            table = pd.Series(seen, index=pd.Index(np.asarray(uniques)), dtype=np.int64)
        return cls(numeric, moments, lo, hi, table)

    def merge(self, other: ColumnSummary) -> ColumnSummary:
        moments = None
        if self.moments is not None and other.moments is not None:
            moments = self.moments.merge(other.moments)
        lo, hi = np.fmin(self.lo, other.lo), np.fmax(self.hi, other.hi)
        table = None
        if self.counts is not None and other.counts is not None:
            table = pd.concat([self.counts, other.counts]).groupby(level=0, sort=False).sum()
        return ColumnSummary(self.numeric, moments, float(lo), float(hi), table)

    @property
    def std(self) -> float:
        """The sample standard deviation (ddof=1); 0 when undefined (fewer than 2 values)."""
        if self.moments is None or self.moments.n[0] < 2:
            return 0.0
        value = math.sqrt(max(float(self.moments.m2[0, 0, 0]) / (self.moments.n[0] - 1), 0.0))
        return value if math.isfinite(value) else 0.0

    def settled(self, keep_counts: bool) -> ColumnSummary:
        """Return this summary with its median (numbers) and mode computed, the value counts kept only
        when ``keep_counts`` (the levels need them): what a worker needs, without a table per distinct value."""
        fixed = dict(self.fixed)
        if self.counts is not None:
            fixed["mode"] = self.mode
            if self.numeric:
                fixed["median"] = self.median
        return ColumnSummary(self.numeric, self.moments, self.lo, self.hi, self.counts if keep_counts else None, fixed)

    def _table(self) -> pd.Series:
        if self.counts is None:
            raise ValueError("this column summary was taken without value counts")
        return self.counts

    @property
    def median(self) -> float:
        """The exact median, from the value counts (the mean of the two middle values for an even count)."""
        if "median" in self.fixed:
            return float(self.fixed["median"])
        table = self._table().sort_index()
        n = int(table.sum())
        if n == 0:
            return float("nan")
        cum = np.cumsum(table.to_numpy())
        values = table.index.to_numpy(dtype=float)
        low = values[np.searchsorted(cum, (n - 1) // 2 + 1)]
        high = values[np.searchsorted(cum, n // 2 + 1)]
        return float((low + high) / 2)

    @property
    def mode(self) -> Any:
        """The most frequent value (ties: the first in order of appearance); NaN when none."""
        if "mode" in self.fixed:
            return self.fixed["mode"]
        table = self._table()
        return table.index[int(np.argmax(table.to_numpy()))] if len(table) else np.nan

    @property
    def levels(self) -> np.ndarray:
        """The distinct values in order of first appearance."""
        return np.asarray(self._table().index.tolist(), dtype=object)


class ColumnStats:
    """Per-column statistics of the clean columns, from :class:`ColumnSummary` s.

    ``ColumnStats(frame)`` summarises a column of ``frame`` on first use; ``ColumnStats(summaries=...)``
    takes summaries merged elsewhere (the partitioned gate's), and gives the same numbers.
    """

    def __init__(self, frame: pd.DataFrame | None = None, summaries: Mapping[str, ColumnSummary] | None = None) -> None:
        self.frame = frame
        self._summaries: dict[str, ColumnSummary] = dict(summaries or {})

    def summary(self, column: str) -> ColumnSummary:
        if column not in self._summaries:
            if self.frame is None:
                raise KeyError(f"no statistics for column '{column}'")
            self._summaries[column] = ColumnSummary.of(self.frame[column])
        return self._summaries[column]

    def std(self, column: str) -> float:
        return self.summary(column).std

    def median(self, column: str) -> float:
        return self.summary(column).median

    def range(self, column: str) -> tuple[float, float]:
        s = self.summary(column)
        return s.lo, s.hi

    def mode(self, column: str) -> Any:
        """The most frequent non-missing value (ties: the first in order of appearance)."""
        return self.summary(column).mode

    def levels(self, column: str) -> np.ndarray:
        """The observed levels, in order of first appearance."""
        return self.summary(column).levels

    def fill_value(self, column: str, impute: str) -> Any:
        """The value that stands in for a missing one: the median of a number column, else the mode."""
        if impute == "median" and self.summary(column).numeric:
            return self.median(column)
        return self.mode(column)


def level_codes(series: pd.Series, levels: np.ndarray) -> np.ndarray:
    """Return each row's position in ``levels``; -1 for a missing (or unseen) value."""
    codes: np.ndarray = pd.Index(levels, dtype=object).get_indexer(pd.Index(series.astype(object)))
    codes[series.isna().to_numpy()] = -1
    return codes


def _floats(frame: pd.DataFrame, column: str) -> np.ndarray:
    return np.array(frame[column].to_numpy(dtype=float, na_value=np.nan), dtype=float)


def _mask(draws: Draws, column: str, rate: float) -> np.ndarray:
    return draws.uniform(column, "mask") < rate


def _with(frame: pd.DataFrame, columns: Mapping[str, Any]) -> pd.DataFrame:
    """Return a new frame with ``columns`` replaced (the other columns are shared, copy-on-write)."""
    out = frame.copy(deep=False)
    for name, values in columns.items():
        out[name] = values
    return out


def _fill(series: pd.Series, mask: np.ndarray, value: Any) -> pd.Series:
    """Return ``series`` with the masked rows set to ``value`` (NaN for missing), dtype kept if it can hold it.

    Cells that were already missing stay missing: the copy differs from the clean frame only where
    a value was present.
    """
    mask = mask & series.notna().to_numpy()
    if is_numeric(series):
        values = series.to_numpy(dtype=float, copy=True, na_value=np.nan)
        values[mask] = np.nan if value is None else float(value)
        return pd.Series(values, index=series.index, name=series.name)
    if value is None:
        return series.mask(pd.Series(mask, index=series.index))
    return series.mask(pd.Series(mask, index=series.index), value)


# ---------------------------------------------------------------- the perturbations


def gaussian_noise(frame: pd.DataFrame, columns: Sequence[str], scale: float, draws: Draws,
                   stats: ColumnStats) -> pd.DataFrame:
    """Add N(0, (scale x column std)^2) noise to every row of each number column; NaN stays NaN."""
    return _with(frame, {col: _floats(frame, col) + draws.normal(col, "noise") * (scale * stats.std(col))
                         for col in columns})


def missing(frame: pd.DataFrame, columns: Sequence[str], rate: float, draws: Draws,
            stats: ColumnStats, impute: str = "none") -> pd.DataFrame:
    """Blank each cell with probability ``rate``; with ``impute`` median/mode fill it back instead of NaN."""
    new = {}
    for col in columns:
        value = None if impute == "none" else stats.fill_value(col, impute)
        new[col] = _fill(frame[col], _mask(draws, col, rate), value)
    return _with(frame, new)


def category_swap(frame: pd.DataFrame, columns: Sequence[str], rate: float, draws: Draws,
                  stats: ColumnStats) -> pd.DataFrame:
    """Give each cell, with probability ``rate``, another observed level, drawn uniformly.

    Missing cells and columns with a single level are left as they are.
    """
    new = {}
    for col in columns:
        levels = stats.levels(col)
        k = len(levels)
        if k < 2:
            continue
        original = frame[col]
        codes = level_codes(original, levels)
        swap = _mask(draws, col, rate) & (codes >= 0)
        offsets = draws.integers(col, "offset", 1, k)
        new_codes = np.where(swap, (codes + offsets) % k, codes)
        values = pd.Series(levels[np.maximum(new_codes, 0)], index=frame.index)
        values = values.where(new_codes >= 0, original)
        new[col] = values.astype(original.dtype)
    return _with(frame, new)


def feature_dropout(frame: pd.DataFrame, columns: Sequence[str], rate: float, draws: Draws,
                    stats: ColumnStats) -> pd.DataFrame:
    """Replace each cell, with probability ``rate``, by its column's median (numbers) or mode (others).

    ``rate: 1`` drops the column outright, as when an upstream feed stops and defaults fill in.
    """
    return _with(frame, {col: _fill(frame[col], _mask(draws, col, rate), stats.fill_value(col, "median"))
                         for col in columns})


def scale_shift(frame: pd.DataFrame, columns: Sequence[str], factor: float, draws: Draws,
                stats: ColumnStats, rate: float = 0.1) -> pd.DataFrame:
    """Multiply each cell, with probability ``rate``, by ``factor``: a unit error (cents for euros, x100)."""
    new = {}
    for col in columns:
        values = _floats(frame, col)
        values[_mask(draws, col, rate)] *= factor
        new[col] = values
    return _with(frame, new)


def outliers(frame: pd.DataFrame, columns: Sequence[str], rate: float, draws: Draws,
             stats: ColumnStats, factor: float = 1.0) -> pd.DataFrame:
    """Move each cell, with probability ``rate``, beyond the observed range.

    The new value lies ``factor x (1 + u)`` observed spans (max - min, or 1 for a constant column)
    above the maximum or below the minimum, side and ``u ~ U(0, 1)`` drawn per row.
    """
    new = {}
    for col in columns:
        mask = _mask(draws, col, rate)
        above = draws.uniform(col, "side") < 0.5
        lo, hi = stats.range(col)
        span = (hi - lo) if hi > lo else 1.0
        distance = factor * span * (1.0 + draws.uniform(col, "u"))
        values = _floats(frame, col)
        values[mask] = np.where(above, hi + distance, lo - distance)[mask]
        new[col] = values
    return _with(frame, new)


# ---------------------------------------------------------------- invariance and directional copies


def shuffle_column(frame: pd.DataFrame, column: str, draws: Draws) -> pd.DataFrame:
    """Return ``frame`` with ``column``'s values permuted across rows (breaks any row-level link).

    The permutation sorts the rows by one row-keyed uniform, so it moves values between any rows
    of the frame (it has no partition-local form).
    """
    values = frame[column].to_numpy(copy=True)
    order = np.argsort(draws.uniform(column, "shuffle"), kind="stable")
    return _with(frame, {column: pd.Series(values[order], index=frame.index, dtype=frame[column].dtype)})


def replace_column(frame: pd.DataFrame, column: str, draws: Draws, stats: ColumnStats) -> pd.DataFrame:
    """Return ``frame`` with every non-missing value of ``column`` swapped for another observed level."""
    return category_swap(frame, [column], 1.0, draws, stats)


def step_column(frame: pd.DataFrame, column: str, step: float) -> pd.DataFrame:
    """Return ``frame`` with ``step`` added to ``column`` (negative steps lower it)."""
    return _with(frame, {column: _floats(frame, column) + step})


# ---------------------------------------------------------------- the catalogue


Apply = Callable[..., pd.DataFrame]


@dataclass(frozen=True)
class Perturbation:
    """One kind of corruption and its configuration vocabulary.

    ``severity_param`` is the key whose values form the severity curve; ``params`` are the other
    keys with their defaults; ``column_kind`` says which columns it can act on.
    """

    name: str
    apply: Apply
    severity_param: str
    default_severity: float
    default_columns: str
    column_kind: ColumnKind
    params: Mapping[str, Any]

    @cached_property
    def keys(self) -> frozenset[str]:
        return frozenset({"columns", self.severity_param, *self.params})


PERTURBATIONS: Mapping[str, Perturbation] = {
    p.name: p for p in (
        Perturbation("gaussian_noise", gaussian_noise, "scale", 0.1, "numeric", "numeric", {}),
        Perturbation("missing", missing, "rate", 0.1, "all", "any", {"impute": "none"}),
        Perturbation("category_swap", category_swap, "rate", 0.05, "categorical", "any", {}),
        Perturbation("feature_dropout", feature_dropout, "rate", 0.1, "all", "any", {}),
        Perturbation("scale_shift", scale_shift, "factor", 100.0, "numeric", "numeric", {"rate": 0.1}),
        Perturbation("outliers", outliers, "rate", 0.01, "numeric", "numeric", {"factor": 1.0}),
    )
}


def perturb(frame: pd.DataFrame, name: str, columns: Sequence[str], severity: float,
            draws: Draws, stats: ColumnStats, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Return a corrupted copy of ``frame``: the perturbation ``name`` at ``severity``.

    Examples
    --------
    >>> df = pd.DataFrame({"x": [1.0, 2.0, 3.0]})
    >>> draws = Draws.of(0, ("robustness", "scale_shift", "100.0"), row_keys(len(df)))
    >>> out = perturb(df, "scale_shift", ["x"], 100.0, draws, ColumnStats(df), {"rate": 1.0})
    >>> out["x"].tolist()
    [100.0, 200.0, 300.0]
    """
    if len(draws) != len(frame):
        raise ValueError(f"{len(draws)} row keys for {len(frame)} rows")
    spec = PERTURBATIONS[name]
    kwargs = {**spec.params, **(params or {})}
    return spec.apply(frame, columns, float(severity), draws, stats, **kwargs)
