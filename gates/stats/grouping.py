"""The one grouping type: which slice (regression) or group (fairness) every row belongs to."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

#: a group key: one plain (JSON-able) value per grouping column
GroupKey = tuple[Any, ...]


@dataclass(frozen=True)
class Grouping:
    """A partition of the eval rows by the values of ``columns`` (``()``: one group of all rows).

    ``keys[g]`` gives group ``g``'s value in each of ``columns``; ``codes`` (shape ``(n,)``) the
    group of every row. Only combinations that occur in the data are groups, ordered by their
    values column by column; a missing value is its own group (key ``None``). Both the regression
    gate's slices and the fairness gate's groups are groupings, and their codes are the cell
    layout the partials of :mod:`gates.stats.partials` are computed over.
    """

    columns: tuple[str, ...]
    keys: tuple[GroupKey, ...]
    codes: np.ndarray
    #: rows per group when ``codes`` do not code the rows themselves (a client that merged partitions'
    #: counts codes their distinct combinations); None: counted from ``codes``
    counts: np.ndarray | None = field(default=None, compare=False, repr=False)

    @property
    def n_groups(self) -> int:
        return len(self.keys)

    @property
    def n_slices(self) -> int:
        return len(self.keys)

    @cached_property
    def sizes(self) -> np.ndarray:
        if self.counts is not None:
            return self.counts
        return np.bincount(self.codes, minlength=self.n_groups)

    @cached_property
    def rows(self) -> list[np.ndarray]:
        """Row indices of each group, in group order."""
        if self.n_groups == 1:
            return [np.arange(len(self.codes))]
        order = np.argsort(self.codes, kind="stable")
        return np.split(order, np.cumsum(self.sizes)[:-1])

    def values(self, g: int) -> dict[str, Any]:
        """Return group ``g`` as ``{column: value}`` (a missing value is None)."""
        return dict(zip(self.columns, self.keys[g]))

    def scope(self, g: int) -> str:
        """Return the check-id scope of group ``g``: ``region=EU&channel=web``."""
        return "&".join(f"{c}={'null' if v is None else v}" for c, v in self.values(g).items())


def whole(n: int) -> Grouping:
    """Return the grouping with one group holding every row."""
    return Grouping((), ((),), np.zeros(n, dtype=np.int64))
