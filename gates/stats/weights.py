"""Poisson(1) bootstrap weights seeded by a hash of (row key, replicate, seed).

The Poisson bootstrap (Hanley & MacGibbon 2006; Chamandy et al. 2012) gives each row an independent
Poisson(1) count per replicate instead of drawing ``n`` rows with replacement. Its distribution
matches the multinomial bootstrap's for large ``n``, and a row's weight depends only on its key,
the replicate and the seed, so any split of the rows into batches (files, Dask partitions) draws
the same weights and the weighted sums of the batches add up to those of the whole.

The weight of (key, replicate r) comes from SplitMix64 (Steele et al. 2014) applied to the row's
mixed key plus ``(r // 4 + 1)`` times the golden-ratio increment: one 64-bit hash gives four
replicates (16 bits each), each 16-bit code read through the inverse CDF of Poisson(1) quantised
to 2**-16 (far below any interval's Monte Carlo error).
"""
from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd

from gates.stats.budget import MEMORY_BUDGET, chunk_rows

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_LANES = 4
_SHIFTS = np.arange(_LANES, dtype=np.uint64)[:, None] * np.uint64(16)


def poisson_table(bits: int = 16) -> np.ndarray:
    """Return a lookup from a uniform ``bits``-bit integer to a Poisson(1) count (inverse CDF), uint8."""
    size = 1 << bits
    cdf, term, edges = 0.0, math.exp(-1.0), []
    for k in range(32):
        cdf += term
        term /= k + 1
        edges.append(round(cdf * size))
    return np.searchsorted(np.asarray(edges), np.arange(size), side="right").astype(np.uint8)


POISSON = poisson_table()


def mix(x: np.ndarray) -> np.ndarray:
    """Return SplitMix64's finaliser of uint64 values (a bijection with good avalanche)."""
    x = np.asarray(x, dtype=np.uint64)
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * _M1
        x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


def stream_seed(seed: int, *names: str) -> int:
    """Return a 64-bit seed for one named stream of a run (``stream_seed(policy.seed, "regression")``)."""
    h = hashlib.blake2b(repr((int(seed), *names)).encode(), digest_size=8)
    return int.from_bytes(h.digest(), "little")


def row_keys(n: int, *, offset: int = 0, values: Sequence[Any] | np.ndarray | pd.Series | None = None) -> np.ndarray:
    """Return the uint64 row keys of a batch of ``n`` rows.

    With ``values`` (the cluster column when ``data.cluster`` is set, else a declared id column)
    the key is a stable hash of each value (``pandas.util.hash_array``: the same value gives the same
    key in every process), so rows of one cluster share their weights. Without, it is the row's
    position in the whole eval data: ``offset`` (the batch's first row) plus its index.
    """
    if values is None:
        return np.arange(offset, offset + n, dtype=np.uint64)
    arr = np.asarray(values)
    if len(arr) != n:
        raise ValueError(f"{len(arr)} key values for {n} rows")
    if arr.dtype.kind in "iub":
        return mix(arr.astype(np.int64).view(np.uint64) ^ np.uint64(0x5BD1E995))
    return np.asarray(pd.util.hash_array(arr.astype(object), categorize=False), dtype=np.uint64)


def poisson_weights(keys: np.ndarray, start: int, stop: int, seed: int) -> np.ndarray:
    """Return the Poisson(1) weights ``(stop - start, n)`` (uint8) of replicates ``start..stop-1``.

    >>> w = poisson_weights(row_keys(200_000), 0, 8, seed=7)
    >>> w.shape, round(float(w.mean()), 2), round(float(w.var()), 2)
    ((8, 200000), 1.0, 1.0)
    """
    base = mix(np.asarray(keys, dtype=np.uint64) ^ mix(np.uint64(seed % (1 << 64))))
    first, last = start // _LANES, (stop - 1) // _LANES + 1
    blocks = np.arange(first + 1, last + 1, dtype=np.uint64)[:, None]
    with np.errstate(over="ignore"):
        hashed = mix(base[None, :] + blocks * _GOLDEN)
    codes = ((hashed[:, None, :] >> _SHIFTS[None]) & np.uint64(0xFFFF)).astype(np.uint16)
    codes = codes.reshape(-1, len(base))[start - first * _LANES: stop - first * _LANES]
    return POISSON[codes]


def weight_chunks(keys: np.ndarray, n_boot: int, seed: int, budget: int = MEMORY_BUDGET) -> Iterator[np.ndarray]:
    """Yield :func:`poisson_weights` of replicates ``0..n_boot-1`` in chunks that fit the budget."""
    step = chunk_rows(n_boot, len(keys), budget)
    step = max(_LANES, step - step % _LANES)
    for start in range(0, n_boot, step):
        yield poisson_weights(keys, start, min(n_boot, start + step), seed)


def eval_row_keys(ctx: Any) -> np.ndarray:
    """Return the row keys of an eval context's rows: its ``data.cluster`` column, else its declared
    id column (``data.id``), else the row positions (the one rule every gate uses)."""
    data = ctx.policy.data
    for column in (getattr(data, "cluster", None), getattr(data, "id", None)):
        if column:
            return row_keys(ctx.n_rows, values=ctx.frame[column].to_numpy())
    return row_keys(ctx.n_rows)
