"""Mergeable partials: batch splits give the same statistics; finalized numbers match independent ones."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import accuracy_score, log_loss

from gates.stats import CellCounts, Moments, PoissonSums, merge_all, poisson_weights, row_keys
from gates.stats.weights import stream_seed


def splits(n, parts, seed=0):
    """Return ``parts`` contiguous batches of ``range(n)`` with uneven, seeded boundaries."""
    cuts = np.sort(np.random.default_rng(seed).choice(np.arange(1, n), parts - 1, replace=False))
    return np.split(np.arange(n), cuts)


@pytest.fixture(scope="module")
def rows():
    rng = np.random.default_rng(11)
    n = 3000
    y = rng.integers(0, 2, n)
    p_c = np.clip(0.35 * y + rng.uniform(0.1, 0.6, n), 0.01, 0.99)
    p_b = np.clip(0.3 * y + rng.uniform(0.1, 0.65, n), 0.01, 0.99)
    region = rng.integers(0, 3, n)
    return y, p_c, p_b, region


def losses(y, p):
    return -np.log(np.where(y == 1, p, 1 - p))


# --------------------------------------------------------------------------- weights


def test_weights_do_not_depend_on_the_batches():
    keys = row_keys(5000)
    whole = poisson_weights(keys, 0, 37, seed=5)
    for batch in splits(5000, 7):
        assert np.array_equal(poisson_weights(row_keys(len(batch), offset=int(batch[0])), 0, 37, seed=5),
                              whole[:, batch])
    assert np.array_equal(poisson_weights(keys, 9, 30, seed=5), whole[9:30])


def test_weights_are_poisson_one_and_independent():
    w = poisson_weights(row_keys(50_000), 0, 40, seed=stream_seed(20261122, "regression", "rows"))
    counts = np.bincount(w.ravel(), minlength=6)[:6].astype(float)
    expected = stats.poisson(1).pmf(np.arange(6)) * w.size
    chi2 = ((counts[:5] - expected[:5]) ** 2 / expected[:5]).sum()
    assert chi2 < stats.chi2(4).ppf(0.999)
    corr = np.corrcoef(w[:8].astype(float))
    assert np.abs(corr[~np.eye(8, dtype=bool)]).max() < 0.03
    other = poisson_weights(row_keys(50_000), 0, 8, seed=stream_seed(20261122, "fairness", "rows"))
    assert abs(np.corrcoef(w[0].astype(float), other[0].astype(float))[0, 1]) < 0.03


def test_cluster_keys_share_weights():
    clusters = np.array(["p1", "p2", "p1", "p3", "p2", "p1", "ü 🚀 [x]=&"])
    w = poisson_weights(row_keys(7, values=clusters), 0, 50, seed=1)
    assert np.array_equal(w[:, 0], w[:, 2]) and np.array_equal(w[:, 0], w[:, 5])
    assert np.array_equal(w[:, 1], w[:, 4])
    assert not np.array_equal(w[:, 0], w[:, 1])
    ints = row_keys(4, values=np.array([3, 3, 8, 3]))
    assert ints[0] == ints[1] == ints[3] != ints[2]


# --------------------------------------------------------------------------- cell counts


def test_cell_counts_merge_exactly_and_bootstrap_matches_a_row_loop(rows):
    y, p_c, p_b, region = rows
    lc, lb = (p_c >= 0.5).astype(int), (p_b >= 0.5).astype(int)
    shape = (3, 2, 2, 2)
    whole = CellCounts.of([region, y, lc, lb], shape)
    for parts in (3, 7):
        merged = merge_all([CellCounts.of([region[b], y[b], lc[b], lb[b]], shape) for b in splits(len(y), parts)])
        assert np.array_equal(merged.counts, whole.counts)

    def accuracy_diff(tables):
        t = tables.sum(axis=1)  # all regions
        cand = np.trace(t.sum(-1), axis1=-2, axis2=-1) / t.sum(axis=(-3, -2, -1))
        base = np.trace(t.sum(-2), axis1=-2, axis2=-1) / t.sum(axis=(-3, -2, -1))
        return cand - base

    point, reps = whole.estimate(accuracy_diff, 4000, np.random.default_rng(3))
    assert point == pytest.approx(accuracy_score(y, lc) - accuracy_score(y, lb))
    slow = np.random.default_rng(4)
    loop = []
    for _ in range(1500):
        i = slow.integers(0, len(y), len(y))
        loop.append(accuracy_score(y[i], lc[i]) - accuracy_score(y[i], lb[i]))
    assert reps.std() == pytest.approx(np.std(loop), rel=0.08)
    assert np.quantile(reps, 0.025) == pytest.approx(np.quantile(loop, 0.025), abs=0.25 * reps.std())


# --------------------------------------------------------------------------- moments


def test_moments_merge_to_the_whole(rows):
    y, p_c, p_b, region = rows
    values = np.column_stack([losses(y, p_c), losses(y, p_b)])
    whole = Moments.of(values, region, 3)
    for parts in (3, 7):
        merged = merge_all([Moments.of(values[b], region[b], 3) for b in splits(len(y), parts)])
        np.testing.assert_allclose(merged.n, whole.n)
        np.testing.assert_allclose(merged.mean, whole.mean, rtol=1e-13)
        np.testing.assert_allclose(merged.m2, whole.m2, rtol=1e-11)
    for c in range(3):
        np.testing.assert_allclose(whole.m2[c] / (whole.n[c] - 1), np.cov(values[region == c].T), rtol=1e-12)
    all_rows = whole.combine(np.ones((1, 3)))
    np.testing.assert_allclose(all_rows.m2[0] / (len(y) - 1), np.cov(values.T), rtol=1e-12)
    empty = Moments.of(values[:0], region[:0], 3)  # a batch without rows (a partition whose column is all missing)
    assert empty.mean.dtype == np.float64 and not empty.n.any() and not empty.mean.any()
    again = empty.merge(whole).merge(empty)
    np.testing.assert_allclose(again.mean, whole.mean, rtol=1e-15)
    np.testing.assert_allclose(again.m2, whole.m2, rtol=1e-15)


def test_paired_normal_interval_of_a_mean_difference(rows):
    y, p_c, p_b, _ = rows
    d = losses(y, p_c) - losses(y, p_b)
    est = Moments.of(np.column_stack([losses(y, p_c), losses(y, p_b)])).estimate(lambda m: m[..., 0] - m[..., 1])[0]
    assert est.value == pytest.approx(log_loss(y, p_c) - log_loss(y, p_b))
    assert est.se == pytest.approx(stats.sem(d), rel=1e-6)
    lo, hi = est.interval(0.95)
    t = stats.norm.ppf(0.975)
    assert (lo, hi) == pytest.approx((d.mean() - t * stats.sem(d), d.mean() + t * stats.sem(d)), rel=1e-6)


def test_delta_method_of_a_root_mean(rows):
    y, p_c, _, _ = rows
    sq = (y - p_c) ** 2
    est = Moments.of(sq[:, None]).estimate(lambda m: np.sqrt(m[..., 0]))[0]
    # var(sqrt(mean)) ~ var(mean) / (4 mean)
    assert est.se == pytest.approx(stats.sem(sq) / (2 * np.sqrt(sq.mean())), rel=1e-5)


# --------------------------------------------------------------------------- Poisson sums


@pytest.mark.parametrize("parts", [3, 7])
def test_poisson_sums_do_not_depend_on_the_batches(rows, parts):
    y, p_c, p_b, region = rows
    values = np.column_stack([losses(y, p_c), losses(y, p_b)])
    centre = values.mean(axis=0)
    kw = dict(n_boot=2000, seed=99, n_cells=3, centre=centre)
    whole = PoissonSums.of(row_keys(len(y)), values, cells=region, **kw)
    merged = merge_all([PoissonSums.of(row_keys(len(b), offset=int(b[0])), values[b], cells=region[b], **kw)
                        for b in splits(len(y), parts)])
    np.testing.assert_array_equal(merged.sums[..., 0], whole.sums[..., 0])  # integer weights: exact
    np.testing.assert_allclose(merged.sums, whole.sums, rtol=1e-12, atol=1e-9)
    point = np.stack([values[region == c].mean(axis=0) for c in range(3)])
    diff = lambda m: m[..., 0] - m[..., 1]  # noqa: E731
    a, b = whole.estimate(diff, point), merged.estimate(diff, point)
    for ea, eb in zip(a, b):
        assert ea.value == eb.value
        np.testing.assert_allclose(ea.interval(0.95), eb.interval(0.95), rtol=1e-12, atol=1e-12)


def test_poisson_interval_agrees_with_a_slow_bootstrap_loop(rows):
    y, p_c, p_b, _ = rows
    values = np.column_stack([losses(y, p_c), losses(y, p_b)])
    sums = PoissonSums.of(row_keys(len(y)), values, n_boot=4000, seed=2, centre=values.mean(axis=0))
    est = sums.estimate(lambda m: m[..., 0] - m[..., 1], values.mean(axis=0)[None])[0]
    rng = np.random.default_rng(8)
    loop = []
    for _ in range(1500):
        i = rng.integers(0, len(y), len(y))
        loop.append(log_loss(y[i], p_c[i]) - log_loss(y[i], p_b[i]))
    assert est.replicates.std() == pytest.approx(np.std(loop), rel=0.08)
    lo, hi = est.interval(0.95)
    width = hi - lo
    assert lo == pytest.approx(np.quantile(loop, 0.025), abs=0.1 * width)
    assert hi == pytest.approx(np.quantile(loop, 0.975), abs=0.1 * width)


def test_merge_refuses_misaligned_partials():
    with pytest.raises(ValueError):
        CellCounts(np.zeros((2, 2))).merge(CellCounts(np.zeros((3, 2))))
    a = PoissonSums.of(row_keys(10), np.ones(10), n_boot=8, seed=1)
    b = PoissonSums.of(row_keys(10), np.ones(10), n_boot=8, seed=1, centre=np.array([0.5]))
    with pytest.raises(ValueError):
        a.merge(b)
