"""Seeded corruptions of feature columns: the inputs the robustness gate re-scores.

Each perturbation takes the model's feature frame, the columns to corrupt, one *severity* (the
parameter a severity curve varies: a noise scale, a rate, a factor) and a ``numpy.random.Generator``,
and returns a new frame; the input frame is never modified. Draws are made column by column in
the given order, always for every row (a mask draw, then a value draw), so a perturbation is a
pure function of (frame, columns, severity, parameters, generator state) and two runs with the
same seed corrupt exactly the same cells.

Column statistics (std, median, mode, observed range and levels) come from the clean frame, so
every severity of a perturbation is measured against the same yardstick.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

import numpy as np
import pandas as pd

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


class ColumnStats:
    """Per-column statistics of the clean frame, computed on first use and kept."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self._cache: dict[tuple[str, str], Any] = {}

    def _get(self, kind: str, column: str, compute: Callable[[pd.Series], Any]) -> Any:
        key = (kind, column)
        if key not in self._cache:
            self._cache[key] = compute(self.frame[column])
        return self._cache[key]

    def std(self, column: str) -> float:
        value = float(self._get("std", column, lambda s: s.std(skipna=True, ddof=1)))
        return value if np.isfinite(value) else 0.0

    def median(self, column: str) -> float:
        return float(self._get("median", column, lambda s: s.median(skipna=True)))

    def range(self, column: str) -> tuple[float, float]:
        lo, hi = self._get("range", column, lambda s: (s.min(skipna=True), s.max(skipna=True)))
        return float(lo), float(hi)

    def mode(self, column: str) -> Any:
        """The most frequent non-missing value (ties: the first in order of appearance)."""
        def first_mode(s: pd.Series) -> Any:
            counts = s.value_counts(dropna=True, sort=False)
            return counts.index[int(np.argmax(counts.to_numpy()))] if len(counts) else np.nan
        return self._get("mode", column, first_mode)

    def levels(self, column: str) -> tuple[np.ndarray, np.ndarray]:
        """Return (codes per row, observed levels); missing values have code -1."""
        codes, levels = self._get("levels", column, lambda s: pd.factorize(s, sort=False, use_na_sentinel=True))
        return np.asarray(codes), np.asarray(levels, dtype=object)

    def fill_value(self, column: str, impute: str) -> Any:
        """The value that stands in for a missing one: the median of a number column, else the mode."""
        if impute == "median" and is_numeric(self.frame[column]):
            return self.median(column)
        return self.mode(column)


def _floats(frame: pd.DataFrame, column: str) -> np.ndarray:
    return np.array(frame[column].to_numpy(dtype=float, na_value=np.nan), dtype=float)


def _mask(rng: np.random.Generator, n: int, rate: float) -> np.ndarray:
    return rng.random(n) < rate


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


def gaussian_noise(frame: pd.DataFrame, columns: Sequence[str], scale: float, rng: np.random.Generator,
                   stats: ColumnStats) -> pd.DataFrame:
    """Add N(0, (scale x column std)^2) noise to every row of each number column; NaN stays NaN."""
    n = len(frame)
    new = {}
    for col in columns:
        new[col] = _floats(frame, col) + rng.standard_normal(n) * (scale * stats.std(col))
    return _with(frame, new)


def missing(frame: pd.DataFrame, columns: Sequence[str], rate: float, rng: np.random.Generator,
            stats: ColumnStats, impute: str = "none") -> pd.DataFrame:
    """Blank each cell with probability ``rate``; with ``impute`` median/mode fill it back instead of NaN."""
    n = len(frame)
    new = {}
    for col in columns:
        mask = _mask(rng, n, rate)
        value = None if impute == "none" else stats.fill_value(col, impute)
        new[col] = _fill(frame[col], mask, value)
    return _with(frame, new)


def category_swap(frame: pd.DataFrame, columns: Sequence[str], rate: float, rng: np.random.Generator,
                  stats: ColumnStats) -> pd.DataFrame:
    """Give each cell, with probability ``rate``, another observed level, drawn uniformly.

    Missing cells and columns with a single level are left as they are.
    """
    n = len(frame)
    new = {}
    for col in columns:
        mask = _mask(rng, n, rate)
        codes, levels = stats.levels(col)
        k = len(levels)
        offsets = rng.integers(1, max(k, 2), size=n)
        if k < 2:
            continue
        swap = mask & (codes >= 0)
        new_codes = np.where(swap, (codes + offsets) % k, codes)
        values = pd.Series(levels[np.maximum(new_codes, 0)], index=frame.index)
        original = frame[col]
        values = values.where(new_codes >= 0, original)
        new[col] = values.astype(original.dtype)
    return _with(frame, new)


def feature_dropout(frame: pd.DataFrame, columns: Sequence[str], rate: float, rng: np.random.Generator,
                    stats: ColumnStats) -> pd.DataFrame:
    """Replace each cell, with probability ``rate``, by its column's median (numbers) or mode (others).

    ``rate: 1`` drops the column outright, as when an upstream feed stops and defaults fill in.
    """
    n = len(frame)
    new = {}
    for col in columns:
        mask = _mask(rng, n, rate)
        new[col] = _fill(frame[col], mask, stats.fill_value(col, "median"))
    return _with(frame, new)


def scale_shift(frame: pd.DataFrame, columns: Sequence[str], factor: float, rng: np.random.Generator,
                stats: ColumnStats, rate: float = 0.1) -> pd.DataFrame:
    """Multiply each cell, with probability ``rate``, by ``factor``: a unit error (cents for euros, x100)."""
    n = len(frame)
    new = {}
    for col in columns:
        mask = _mask(rng, n, rate)
        values = _floats(frame, col)
        values[mask] *= factor
        new[col] = values
    return _with(frame, new)


def outliers(frame: pd.DataFrame, columns: Sequence[str], rate: float, rng: np.random.Generator,
             stats: ColumnStats, factor: float = 1.0) -> pd.DataFrame:
    """Move each cell, with probability ``rate``, beyond the observed range.

    The new value lies ``factor x (1 + u)`` observed spans (max - min, or 1 for a constant column)
    above the maximum or below the minimum, side and ``u ~ U(0, 1)`` drawn per row.
    """
    n = len(frame)
    new = {}
    for col in columns:
        mask = _mask(rng, n, rate)
        above = rng.random(n) < 0.5
        u = rng.random(n)
        lo, hi = stats.range(col)
        span = (hi - lo) if hi > lo else 1.0
        distance = factor * span * (1.0 + u)
        values = _floats(frame, col)
        values[mask] = np.where(above, hi + distance, lo - distance)[mask]
        new[col] = values
    return _with(frame, new)


# ---------------------------------------------------------------- invariance and directional copies


def shuffle_column(frame: pd.DataFrame, column: str, rng: np.random.Generator) -> pd.DataFrame:
    """Return ``frame`` with ``column``'s values permuted across rows (breaks any row-level link)."""
    values = frame[column].to_numpy(copy=True)
    return _with(frame, {column: pd.Series(values[rng.permutation(len(frame))], index=frame.index,
                                           dtype=frame[column].dtype)})


def replace_column(frame: pd.DataFrame, column: str, rng: np.random.Generator,
                   stats: ColumnStats) -> pd.DataFrame:
    """Return ``frame`` with every non-missing value of ``column`` swapped for another observed level."""
    return category_swap(frame, [column], 1.0, rng, stats)


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
            rng: np.random.Generator, stats: ColumnStats, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Return a corrupted copy of ``frame``: the perturbation ``name`` at ``severity``.

    Examples
    --------
    >>> df = pd.DataFrame({"x": [1.0, 2.0, 3.0]})
    >>> out = perturb(df, "scale_shift", ["x"], 100.0, np.random.default_rng(0), ColumnStats(df), {"rate": 1.0})
    >>> out["x"].tolist()
    [100.0, 200.0, 300.0]
    """
    spec = PERTURBATIONS[name]
    kwargs = {**spec.params, **(params or {})}
    return spec.apply(frame, columns, float(severity), rng, stats, **kwargs)
