"""Clustered resampling: cluster codes, the cluster-robust normal interval and the cluster Poisson bootstrap."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gates.clusters import (
    METHOD_BOOTSTRAP,
    METHOD_NORMAL,
    cluster_index,
    cluster_weights,
    normal_mean,
)
from gates.estimates import paired_estimates, whole
from gates.context import Predictions
from gates.per_example import score_metric


def clustered(n_clusters: int, per: int, *, rho: float = 0.6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Return (values, cluster codes): a shared cluster effect makes rows of one cluster alike."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 2 * per, n_clusters)
    codes = np.repeat(np.arange(n_clusters), sizes)
    effect = rng.normal(size=n_clusters)[codes]
    values = np.sqrt(rho) * effect + np.sqrt(1 - rho) * rng.normal(size=codes.size) + 0.5
    return values, codes


def sandwich_se(values: np.ndarray, codes: np.ndarray) -> float:
    """CR1 standard error of the intercept of ``values ~ 1``: (X'X)^-1 B (X'X)^-1 with G/(G-1)."""
    X = np.ones((values.size, 1))
    beta = np.linalg.lstsq(X, values, rcond=None)[0]
    resid = values - X @ beta
    bread = np.linalg.inv(X.T @ X)
    meat = np.zeros((1, 1))
    for g in np.unique(codes):
        s = X[codes == g].T @ resid[codes == g]
        meat += np.outer(s, s)
    g = np.unique(codes).size
    return float(np.sqrt((bread @ meat @ bread)[0, 0] * g / (g - 1)))


def test_cluster_index_codes_and_missing_keys() -> None:
    frame = pd.DataFrame({"pid": ["a", "b", "a", None, "c", None]})
    idx = cluster_index(frame, "pid")
    assert idx.n_clusters == 5  # a, b, c and each missing key alone
    assert idx.codes[0] == idx.codes[2]
    assert len({idx.codes[3], idx.codes[5]}) == 2
    assert idx.count_in(np.array([0, 2, 4])) == 2


def test_clusters_per_group_match_pandas_nunique() -> None:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"pid": rng.integers(0, 50, 600), "lang": rng.choice(["de", "en", "fr"], 600)})
    idx = cluster_index(frame, "pid")
    groups, labels = pd.factorize(frame["lang"])
    ours = idx.counts_by(groups, len(labels))
    expected = frame.groupby("lang")["pid"].nunique()
    assert [int(ours[i]) for i in range(len(labels))] == [int(expected[lab]) for lab in labels]


def test_normal_mean_equals_the_sandwich_formula() -> None:
    values, codes = clustered(300, 5)
    est = normal_mean(values, codes)
    assert est.method == METHOD_NORMAL
    assert est.value == pytest.approx(values.mean(), rel=1e-12)
    assert est.se == pytest.approx(sandwich_se(values, codes), rel=1e-7)
    naive = values.std(ddof=1) / np.sqrt(values.size)
    assert est.se > 1.5 * naive  # correlated rows: the row formula is far too narrow


def test_normal_mean_of_singletons_is_the_row_standard_error_times_the_finite_factor() -> None:
    values = np.random.default_rng(1).normal(size=400)
    est = normal_mean(values, np.arange(400))
    n = values.size
    assert est.se == pytest.approx(np.sqrt(np.sum((values - values.mean()) ** 2) / (n - 1)) / np.sqrt(n), rel=1e-7)


def test_normal_mean_single_cluster_has_no_interval() -> None:
    est = normal_mean(np.array([1.0, 0.0, 1.0]), np.zeros(3, dtype=int))
    assert np.isnan(est.interval(0.95)[0])


def test_cluster_weights_are_equal_within_a_cluster_and_independent_of_row_order() -> None:
    frame = pd.DataFrame({"pid": ["a", "a", "b", "c", "c", "c"]})
    idx = cluster_index(frame, "pid")
    (chunk,) = list(cluster_weights(idx.keys, 64, seed=5))
    assert chunk.shape == (64, 6)
    assert (chunk[:, 0] == chunk[:, 1]).all() and (chunk[:, 3] == chunk[:, 5]).all()
    assert (chunk[:, 0] != chunk[:, 2]).any()
    shuffled = cluster_index(frame.iloc[[5, 2, 0, 4, 1, 3]], "pid")
    (again,) = list(cluster_weights(shuffled.keys, 64, seed=5))
    assert (again[:, 2] == chunk[:, 0]).all() and (again[:, 1] == chunk[:, 2]).all()


def slow_cluster_bootstrap(values: np.ndarray, codes: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """The textbook cluster bootstrap: draw G clusters with replacement, take the mean of their rows."""
    rng = np.random.default_rng(seed)
    members = [np.flatnonzero(codes == g) for g in np.unique(codes)]
    out = np.empty(n_boot)
    for b in range(n_boot):
        picked = rng.integers(0, len(members), len(members))
        rows = np.concatenate([members[g] for g in picked])
        out[b] = values[rows].mean()
    return out


def test_cluster_poisson_bootstrap_agrees_with_a_slow_cluster_bootstrap() -> None:
    values, codes = clustered(200, 6, seed=4)
    base = values - 0.1 + np.random.default_rng(9).normal(scale=0.2, size=values.size)
    frame = pd.DataFrame({"pid": codes})
    cand = Predictions(values[:, None], values[:, None], ("score",))
    prod = Predictions(base[:, None], base[:, None], ("score",))
    est = paired_estimates(np.zeros(values.size), cand, prod, [score_metric("score")], whole(values.size),
                           n_boot=4000, rng=lambda f: np.random.default_rng(11),
                           clusters=cluster_index(frame, "pid"))["score"][0]
    assert est.observed.method == METHOD_BOOTSTRAP
    assert est.candidate == pytest.approx(values.mean())
    assert est.difference.value == pytest.approx((values - base).mean())
    slow = slow_cluster_bootstrap(values, codes, 4000, seed=5)
    slow_diff = slow_cluster_bootstrap(values - base, codes, 4000, seed=6)
    assert np.std(est.observed.replicates) == pytest.approx(np.std(slow), rel=0.08)
    assert np.std(est.difference.replicates) == pytest.approx(np.std(slow_diff), rel=0.08)
    assert np.std(est.observed.replicates) == pytest.approx(sandwich_se(values, codes), rel=0.08)
    rows = paired_estimates(np.zeros(values.size), cand, prod, [score_metric("score")], whole(values.size),
                            n_boot=4000, rng=lambda f: np.random.default_rng(11))["score"][0]
    assert np.std(rows.observed.replicates) < 0.75 * np.std(est.observed.replicates)


