"""Clustered rows (``data.cluster``): several samples or turns of one prompt are not independent.

Two ways to get an honest interval for means of per-row values when rows come in clusters:

* ``bootstrap-clusters``: every cluster gets one Poisson(1) weight per replicate and all its rows
  share it (the Poisson bootstrap of Hanley & MacGibbon 2006, applied to clusters), so the
  resampling unit is the cluster. Weights per cluster key are mergeable across partitions just as
  row weights are (DESIGN section 12).
* ``cluster-normal``: the cluster-robust standard error of a mean, the linearisation of the ratio
  estimator ``sum_g T_g / sum_g N_g`` over cluster totals, ``se = sqrt(G/(G-1) sum_g e_g^2) / n``
  with ``e_g`` the sum of a cluster's residuals (Cameron & Miller 2015, "A Practitioner's Guide to
  Cluster-Robust Inference", CR1 with one regressor). Used when a slice has at least
  :data:`NORMAL_MIN_CLUSTERS` clusters, where it agrees with the cluster bootstrap.

A paired difference (candidate - baseline on the same rows) is a mean of per-row differences, so
both methods apply to it unchanged. Rows whose cluster key is missing are each their own cluster.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from gates.intervals import Estimate

METHOD_BOOTSTRAP = "bootstrap-clusters"
METHOD_NORMAL = "cluster-normal"
#: a slice with at least this many clusters uses the cluster-robust normal interval
NORMAL_MIN_CLUSTERS = 2000
#: uniform 16-bit codes per chunk of replicates (the weights are looked up from them)
CODE_BUDGET = 8_000_000


@dataclass(frozen=True)
class ClusterIndex:
    """Each row's cluster as a code ``0..n_clusters-1`` (in order of first appearance)."""

    column: str
    codes: np.ndarray
    n_clusters: int

    def count_in(self, rows: np.ndarray) -> int:
        """Return how many clusters have a row among ``rows`` (indices)."""
        return int(np.unique(self.codes[rows]).size)

    def counts_by(self, group_codes: np.ndarray, n_groups: int) -> np.ndarray:
        """Return the number of distinct clusters in each group (``group_codes`` per row)."""
        pairs = np.unique(group_codes.astype(np.int64) * self.n_clusters + self.codes)
        return np.bincount(pairs // self.n_clusters, minlength=n_groups)


def cluster_index(frame: pd.DataFrame, column: str) -> ClusterIndex:
    """Return the clusters of ``frame`` by ``column``; a missing key is a cluster of its own row."""
    codes, uniques = pd.factorize(frame[column], use_na_sentinel=True)
    codes = np.asarray(codes, dtype=np.int64)
    missing = codes < 0
    n = len(uniques)
    if missing.any():
        codes[missing] = n + np.arange(int(missing.sum()))
        n += int(missing.sum())
    return ClusterIndex(column, codes, n)


def expanded_codes(clusters: np.ndarray, n_clusters: int, n_boot: int, rng: np.random.Generator,
                   budget: int = CODE_BUDGET) -> Iterator[np.ndarray]:
    """Yield uniform 16-bit codes of shape ``(c, len(clusters))``, equal within a cluster.

    One code is drawn per cluster and replicate and copied to the cluster's rows, so the Poisson
    weights looked up from them (:func:`gates.estimates.poisson_codes`' table) resample whole
    clusters. ``clusters`` gives each row's cluster code, rows in whatever order the caller sums.
    """
    chunk = max(1, min(n_boot, budget // max(len(clusters), 1)))
    for start in range(0, n_boot, chunk):
        c = min(chunk, n_boot - start)
        drawn = rng.integers(0, 1 << 16, size=(c, n_clusters), dtype=np.uint16)
        yield np.take(drawn, clusters, axis=1)


def normal_mean(values: np.ndarray, clusters: np.ndarray) -> Estimate:
    """Return the mean of ``values`` with its cluster-robust standard error (``cluster-normal``).

    ``clusters`` holds each row's cluster code (any integers). NaN without rows; the standard
    error is NaN with a single cluster (no between-cluster variation to estimate).
    """
    v = np.asarray(values, dtype=np.float64)
    n = v.size
    if n == 0:
        return Estimate(float("nan"), METHOD_NORMAL)
    mean = float(v.mean())
    _, inverse = np.unique(clusters, return_inverse=True)
    totals = np.bincount(inverse.ravel(), weights=v - mean)
    g = totals.size
    if g < 2:
        return Estimate(mean, METHOD_NORMAL, se=float("nan"))
    se = float(np.sqrt(g / (g - 1) * np.sum(totals ** 2)) / n)
    return Estimate(mean, METHOD_NORMAL, se=se)
