"""Clustered rows (``data.cluster``): several samples or turns of one prompt are not independent.

Two ways to get an honest interval for means of per-row values when rows come in clusters, both
from the statistics core (:mod:`gates.stats`):

* ``bootstrap-clusters``: the core's Poisson(1) weights keyed by the cluster value
  (:func:`gates.stats.weights.row_keys` with the cluster column), so every row of a cluster gets
  the same weight in each replicate and the resampling unit is the cluster (the Poisson bootstrap
  of Hanley & MacGibbon 2006, applied to clusters; mergeable across partitions, DESIGN section 12).
* ``cluster-normal``: the cluster-robust standard error of a mean, the linearisation of the ratio
  estimator ``sum_g T_g / sum_g N_g`` over cluster totals. It is the core's delta method
  (:class:`gates.stats.Moments`) applied to the pairs ``(T_g, N_g)``, which equals
  ``sqrt(G/(G-1) sum_g e_g^2) / n`` with ``e_g`` the sum of a cluster's residuals (Cameron &
  Miller 2015, "A Practitioner's Guide to Cluster-Robust Inference", CR1 with one regressor). Used
  when a slice has at least :data:`NORMAL_MIN_CLUSTERS` clusters, where it agrees with the bootstrap.

A paired difference (candidate - baseline on the same rows) is a mean of per-row differences, so
both methods apply to it unchanged. Rows whose cluster key is missing are each their own cluster.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from gates.intervals import Estimate
from gates.stats import Moments, row_keys
from gates.stats.weights import weight_chunks

METHOD_BOOTSTRAP = "bootstrap-clusters"
METHOD_NORMAL = "cluster-normal"
#: a slice with at least this many clusters uses the cluster-robust normal interval
NORMAL_MIN_CLUSTERS = 2000


@dataclass(frozen=True)
class ClusterIndex:
    """Each row's cluster as a code ``0..n_clusters-1`` (in order of first appearance) and its hashed key."""

    column: str
    codes: np.ndarray
    n_clusters: int
    keys: np.ndarray

    def count_in(self, rows: np.ndarray) -> int:
        """Return how many clusters have a row among ``rows`` (indices)."""
        return int(np.unique(self.codes[rows]).size)

    def counts_by(self, group_codes: np.ndarray, n_groups: int) -> np.ndarray:
        """Return the number of distinct clusters in each group (``group_codes`` per row)."""
        pairs = np.unique(group_codes.astype(np.int64) * self.n_clusters + self.codes)
        return np.bincount(pairs // self.n_clusters, minlength=n_groups)


def cluster_index(frame: pd.DataFrame, column: str, offset: int = 0) -> ClusterIndex:
    """Return the clusters of ``frame`` by ``column``; a missing key is a cluster of its own row.

    ``keys`` are the core's row keys of the cluster values (equal within a cluster); a row with a
    missing key is keyed by its position (``offset`` plus its index: a batch's first row's position
    among the scored rows), offset past every hash so it stays alone. A whole number is keyed as the
    integer it is, whether it came as ``3`` or ``3.0`` (and ``-0.0`` as ``0``): a batch of an integer
    column with a missing value reaches pandas as floats, one without as integers, and one cluster
    keeps one key across them.
    """
    values = frame[column]
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    codes = np.asarray(codes, dtype=np.int64)
    missing = codes < 0
    n = len(uniques)
    keys = row_keys(len(frame), values=_key_values(values, missing))
    if missing.any():
        codes[missing] = n + np.arange(int(missing.sum()))
        n += int(missing.sum())
        keys = keys.copy()
        keys[missing] = row_keys(len(frame), offset=offset)[missing] ^ np.uint64(0xA5A5A5A5A5A5A5A5)
    return ClusterIndex(column, codes, n, keys)


def _key_values(values: pd.Series, missing: np.ndarray) -> np.ndarray:
    """Return the cluster values to hash: missing ones as ``""`` (keyed apart later), whole floats as integers."""
    out = values.astype(object).where(~missing, "").to_numpy(copy=True)
    if values.dtype.kind == "f":
        v = values.to_numpy(dtype=np.float64, na_value=np.nan)
        with np.errstate(invalid="ignore"):
            whole = ~missing & np.isfinite(v) & (v == np.trunc(v)) & (np.abs(v) < 2.0 ** 63)
        out[whole] = v[whole].astype(np.int64).tolist()
    return out


def cluster_weights(keys: np.ndarray, n_boot: int, seed: int) -> Iterator[np.ndarray]:
    """Yield the core's Poisson weights ``(c, len(keys))`` for rows keyed by their cluster, in chunks."""
    yield from weight_chunks(np.asarray(keys, dtype=np.uint64), n_boot, seed)


def normal_mean(values: np.ndarray, clusters: np.ndarray) -> Estimate:
    """Return the mean of ``values`` with its cluster-robust standard error (``cluster-normal``).

    ``clusters`` holds each row's cluster code (any integers). NaN without rows; the standard
    error is NaN with a single cluster (no between-cluster variation to estimate).
    """
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return Estimate(float("nan"), METHOD_NORMAL)
    _, inverse = np.unique(clusters, return_inverse=True)
    inverse = inverse.ravel()
    totals = np.bincount(inverse, weights=v)
    sizes = np.bincount(inverse).astype(np.float64)
    return normal_from_totals(float(v.mean()), totals, sizes)


def normal_from_totals(mean: float, totals: np.ndarray, sizes: np.ndarray) -> Estimate:
    """Return ``mean`` with the cluster-robust standard error from the clusters' ``totals`` and row
    counts ``sizes`` (what :func:`normal_mean` computes from the rows; totals of batches add)."""
    if np.size(totals) < 2:
        return Estimate(mean, METHOD_NORMAL, se=float("nan"))
    (est,) = Moments.of(np.column_stack([totals, sizes])).estimate(_ratio, METHOD_NORMAL)
    return Estimate(mean, METHOD_NORMAL, se=est.se)


def _ratio(means: np.ndarray) -> np.ndarray:
    """The mean per row as a ratio of mean cluster total to mean cluster size."""
    return np.asarray(means[..., 0] / means[..., 1])
