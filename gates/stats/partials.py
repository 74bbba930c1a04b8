"""Mergeable partial statistics: what a batch of rows yields, how two batches merge, how a total finalizes.

Three families cover every interval the gates compute from rows:

* :class:`CellCounts`: joint counts over cells (slice or group, y, candidate label, baseline label).
  Every confusion-matrix metric is a function of them; a multinomial draw of the counts per
  replicate is the row bootstrap's exact distribution (Efron & Tibshirani 1993, ch. 6).
* :class:`Moments`: per cell, the count, mean and centred cross-products of per-row statistics
  (log loss, squared error, ...). Merged by Chan, Golub & LeVeque's (1979) pairwise formula;
  finalized as the paired normal (delta-method) interval of any smooth function of the means.
* :class:`PoissonSums`: per replicate and cell, Poisson(1)-weighted sums of per-row statistics
  (weights from :mod:`gates.stats.weights`, so any batch split gives the same sums); finalized as
  bootstrap replicates of a function of the weighted means.

Each family has ``of`` (a batch), ``merge`` (two partials of disjoint rows) and ``estimate``
(the total's point value and :class:`~gates.intervals.Estimate`). Cells are integer codes
``0..n_cells-1`` fixed by the client before any batch is read, so partials of every batch align.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

import numpy as np

from gates.intervals import Estimate
from gates.stats.budget import MEMORY_BUDGET, chunk_rows
from gates.stats.weights import weight_chunks

METHOD_MULTINOMIAL = "bootstrap-multinomial"
METHOD_POISSON = "bootstrap-rows"
METHOD_NORMAL = "paired-normal"

#: relative step of the central differences that differentiate a function of means
GRADIENT_STEP = 1e-6

P = TypeVar("P", bound="Partial")


class Partial(Protocol):
    """A statistic of a batch of rows that merges with the same statistic of other rows."""

    def merge(self: P, other: P) -> P:
        """Return the statistic of both batches' rows."""


def merge_all(parts: Sequence[P]) -> P:
    """Merge partials in the given (fixed) order: ``parts[0].merge(parts[1]).merge(parts[2])...``."""
    if not parts:
        raise ValueError("nothing to merge")
    return functools.reduce(lambda a, b: a.merge(b), parts)


# --------------------------------------------------------------------------- cell counts


@dataclass(frozen=True)
class CellCounts:
    """Joint row counts of shape ``shape`` (for example ``(S, K, K, Kb)``), int64."""

    counts: np.ndarray

    @classmethod
    def of(cls, codes: Sequence[np.ndarray], shape: tuple[int, ...]) -> CellCounts:
        """Count rows per cell; ``codes[i]`` holds each row's index along axis ``i`` of ``shape``."""
        flat = np.ravel_multi_index(tuple(np.asarray(c, dtype=np.int64) for c in codes), shape)
        return cls(np.bincount(flat, minlength=math.prod(shape)).reshape(shape).astype(np.int64))

    def merge(self, other: CellCounts) -> CellCounts:
        if other.counts.shape != self.counts.shape:
            raise ValueError(f"cannot merge cell counts of shapes {self.counts.shape} and {other.counts.shape}")
        return CellCounts(self.counts + other.counts)

    def replicates(self, n_boot: int, rng: np.random.Generator, budget: int = MEMORY_BUDGET) -> Iterator[np.ndarray]:
        """Yield multinomial bootstrap tables in chunks ``(c, *shape)`` (float64), ``n_boot`` in all.

        Only non-empty cells are drawn (an empty cell stays empty in every replicate), so the cost
        grows with the cells seen, not with the table's size. This is the gates' one multinomial sampler.
        """
        flat = self.counts.ravel().astype(np.float64)
        nonzero = np.flatnonzero(flat)
        total = int(round(flat.sum()))
        step = chunk_rows(n_boot, flat.size, budget)
        for start in range(0, n_boot, step):
            c = min(step, n_boot - start)
            dense = np.zeros((c, flat.size))
            if total:
                dense[:, nonzero] = rng.multinomial(total, flat[nonzero] / total, size=c)
            yield dense.reshape((c, *self.counts.shape))

    def estimate(self, statistic: Callable[[np.ndarray], np.ndarray], n_boot: int,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Return ``statistic`` of the table (shape ``(...)``) and of ``n_boot`` replicates ``(B, ...)``.

        ``statistic`` maps tables ``(c, *shape)`` to values ``(c, ...)``.
        """
        point = np.asarray(statistic(self.counts[None].astype(np.float64)))[0]
        reps = np.concatenate([np.asarray(statistic(t)) for t in self.replicates(n_boot, rng)])
        return point, reps


# --------------------------------------------------------------------------- moments


@dataclass(frozen=True)
class Moments:
    """Per cell: row count ``n`` (C,), means ``mean`` (C, p) and centred cross-products ``m2`` (C, p, p)."""

    n: np.ndarray
    mean: np.ndarray
    m2: np.ndarray

    @classmethod
    def of(cls, values: np.ndarray, cells: np.ndarray | None = None, n_cells: int = 1,
           weights: np.ndarray | None = None) -> Moments:
        """Return the moments of per-row statistics ``values`` (n, p) in each cell (codes ``cells``);
        ``weights`` (n,) makes each row stand for that many rows (a table's counts)."""
        v = np.asarray(values, dtype=np.float64)
        v = v[:, None] if v.ndim == 1 else v
        codes = np.zeros(len(v), dtype=np.int64) if cells is None else np.asarray(cells, dtype=np.int64)
        w = np.ones(len(v)) if weights is None else np.asarray(weights, dtype=np.float64)
        p = v.shape[1]
        n = np.bincount(codes, weights=w, minlength=n_cells).astype(np.float64)
        sums = np.stack([np.bincount(codes, weights=w * v[:, j], minlength=n_cells) for j in range(p)], axis=1)
        sums = sums.astype(np.float64)
        mean = np.divide(sums, n[:, None], out=np.zeros_like(sums), where=n[:, None] > 0)
        resid = v - mean[codes]
        m2 = np.zeros((n_cells, p, p))
        for c in np.flatnonzero(n):
            here = codes == c
            r = resid[here]
            m2[c] = (r * w[here, None]).T @ r
        return cls(n, mean, m2)

    def merge(self, other: Moments) -> Moments:
        """Return the moments of both batches (Chan et al. 1979), cell by cell."""
        if other.mean.shape != self.mean.shape:
            raise ValueError(f"cannot merge moments of shapes {self.mean.shape} and {other.mean.shape}")
        n = self.n + other.n
        safe = np.where(n > 0, n, 1.0)
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.n / safe)[:, None]
        m2 = self.m2 + other.m2 + np.einsum("ci,cj->cij", delta, delta) * (self.n * other.n / safe)[:, None, None]
        return Moments(n, mean, m2)

    def combine(self, members: np.ndarray) -> Moments:
        """Return the moments of unions of cells: ``members`` (S, C) is 1 where cell ``c`` is in slice ``s``."""
        w = np.asarray(members, dtype=np.float64)
        n = w @ self.n
        safe = np.where(n > 0, n, 1.0)
        mean = (w @ (self.mean * self.n[:, None])) / safe[:, None]
        m2 = np.einsum("sc,cij->sij", w, self.m2)
        for s in range(w.shape[0]):
            d = self.mean - mean[s]
            m2[s] += np.einsum("c,ci,cj->ij", w[s] * self.n, d, d)
        return Moments(n, mean, m2)

    def estimate(self, fn: Callable[[np.ndarray], np.ndarray], method: str = METHOD_NORMAL) -> list[Estimate]:
        """Return, per cell, the delta-method estimate of ``fn(means)`` (``fn``: means ``(..., p)`` -> values).

        ``var = g' S g / n`` with ``g`` the gradient of ``fn`` at the means and ``S`` the rows'
        covariance (``ddof=1``): the paired normal interval when ``fn`` is a difference of two
        models' metrics. NaN for a cell with fewer than 2 rows.
        """
        out = []
        for c in range(len(self.n)):
            n = self.n[c]
            if n < 2:
                out.append(Estimate(float("nan"), method))
                continue
            value = float(fn(self.mean[c]))
            g = numeric_gradient(fn, self.mean[c])
            var = float(g @ (self.m2[c] / (n - 1)) @ g) / n
            out.append(Estimate(value, method, se=math.sqrt(max(var, 0.0)) if math.isfinite(var) else float("nan")))
        return out


def numeric_gradient(f: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> np.ndarray:
    """Return the gradient of ``f`` (means ``(p,)`` -> value) at ``x`` by central differences."""
    x = np.asarray(x, dtype=np.float64)
    steps = GRADIENT_STEP * np.maximum(1.0, np.abs(x))
    shifts = np.diag(steps)
    up = np.asarray(f(x + shifts), dtype=np.float64)
    down = np.asarray(f(x - shifts), dtype=np.float64)
    return np.asarray((up - down) / (2 * steps))


# --------------------------------------------------------------------------- Poisson-weighted sums


@dataclass(frozen=True)
class PoissonSums:
    """Per replicate and cell, Poisson-weighted sums ``(B, C, 1 + p)`` of ``values - centre`` (column 0: weights).

    ``centre`` (p,) is fixed by the client for every batch (a first pass's means, or 0): it keeps
    the sums small, so float rounding stays far below the Monte Carlo error.
    """

    sums: np.ndarray
    centre: np.ndarray

    @classmethod
    def of(cls, keys: np.ndarray, values: np.ndarray, *, n_boot: int, seed: int, cells: np.ndarray | None = None,
           n_cells: int = 1, centre: np.ndarray | None = None, budget: int = MEMORY_BUDGET) -> PoissonSums:
        """Return the weighted sums of a batch whose rows have ``keys`` (:func:`gates.stats.weights.row_keys`)."""
        v = np.asarray(values, dtype=np.float64)
        v = v[:, None] if v.ndim == 1 else v
        p = v.shape[1]
        ctr = np.zeros(p) if centre is None else np.asarray(centre, dtype=np.float64)
        codes = np.zeros(len(v), dtype=np.int64) if cells is None else np.asarray(cells, dtype=np.int64)
        order = np.argsort(codes, kind="stable")
        bounds = np.r_[0, np.cumsum(np.bincount(codes, minlength=n_cells))]
        stacked = np.hstack([np.ones((len(v), 1)), v - ctr])[order]
        ordered_keys = np.asarray(keys, dtype=np.uint64)[order]
        out = np.zeros((n_boot, n_cells, 1 + p))
        start = 0
        for w in weight_chunks(ordered_keys, n_boot, seed, budget):
            wf = w.astype(np.float64)
            for c in range(n_cells):
                a, b = bounds[c], bounds[c + 1]
                if b > a:
                    out[start:start + len(w), c] = wf[:, a:b] @ stacked[a:b]
            start += len(w)
        return cls(out, ctr)

    def merge(self, other: PoissonSums) -> PoissonSums:
        if other.sums.shape != self.sums.shape or not np.array_equal(other.centre, self.centre):
            raise ValueError("cannot merge Poisson sums of different replicates, cells or centres")
        return PoissonSums(self.sums + other.sums, self.centre)

    def means(self, members: np.ndarray | None = None) -> np.ndarray:
        """Return weighted means ``(B, S, p)`` per replicate, over cells or unions ``members`` (S, C)."""
        sums = self.sums if members is None else np.einsum("sc,bcp->bsp", np.asarray(members, float), self.sums)
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.centre + sums[..., 1:] / sums[..., :1]

    def estimate(self, fn: Callable[[np.ndarray], np.ndarray], point: np.ndarray,
                 members: np.ndarray | None = None) -> list[Estimate]:
        """Return, per cell (or union), ``fn`` of the point means ``point`` (S, p) with ``fn`` of each replicate."""
        reps = np.asarray(fn(self.means(members)))
        values = np.asarray(fn(np.asarray(point, dtype=np.float64)))
        return [Estimate(float(values[s]), METHOD_POISSON, np.ascontiguousarray(reps[:, s]))
                for s in range(len(values))]
