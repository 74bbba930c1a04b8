"""Resampling and analytic intervals against slow, explicit paired bootstrap loops."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from gates.context import Predictions
from gates.stats import row_keys
from gates.stats.weights import POISSON
from gates.stats.weights import poisson_weights as hashed_weights
from gates.estimates import (
    multinomial_tables,
    ovr_delong,
    paired_estimates,
    paired_estimates_many,
    poisson_weights,
    slice_by,
    whole,
)
from gates.intervals import (
    HULL,
    Estimate,
    delong_covariance,
    delong_difference,
    delong_influence,
    delong_paired,
    delong_single,
    hull_interval,
    midranks,
    negate,
)
from gates.metrics import binary_auc, metric_registry, ovr_auc

QUANTILES = [0.025, 0.25, 0.5, 0.75, 0.975]


def rngs(seed: int):
    return lambda family: np.random.default_rng([seed, len(family)])


def scored(n: int, seed: int, k: int = 2):
    """Labels, a candidate and a correlated, slightly worse baseline (binary or k classes)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    shared = rng.normal(size=(n, k))
    onehot = np.eye(k)[y]
    logits_c = 1.3 * onehot + shared + 0.4 * rng.normal(size=(n, k))
    logits_b = 1.1 * onehot + shared + 0.4 * rng.normal(size=(n, k))
    if k == 2:
        pc = 1 / (1 + np.exp(-(logits_c[:, 1] - logits_c[:, 0])))
        pb = 1 / (1 + np.exp(-(logits_b[:, 1] - logits_b[:, 0])))
        return y, Predictions((pc >= 0.5).astype(int), pc, (0, 1)), Predictions((pb >= 0.5).astype(int), pb, (0, 1))
    pc = np.exp(logits_c) / np.exp(logits_c).sum(1, keepdims=True)
    pb = np.exp(logits_b) / np.exp(logits_b).sum(1, keepdims=True)
    classes = tuple(range(k))
    return y, Predictions(pc.argmax(1), pc, classes), Predictions(pb.argmax(1), pb, classes)


def slow_paired_bootstrap(y, cand, base, fn, n_boot, seed):
    """The textbook paired bootstrap: one index draw per replicate, both models scored on it."""
    rng = np.random.default_rng(seed)
    n = len(y)
    out = np.empty((n_boot, 2))
    for b in range(n_boot):
        idx = rng.integers(0, n, n)
        out[b] = fn(y[idx], cand, idx), fn(y[idx], base, idx)
    return out


def assert_same_distribution(ours: np.ndarray, theirs: np.ndarray, tol_sd: float = 0.35):
    sd = theirs.std()
    assert ours.std() == pytest.approx(sd, rel=0.12)
    diff = np.abs(np.quantile(ours, QUANTILES) - np.quantile(theirs, QUANTILES))
    assert np.all(diff < tol_sd * sd), (np.quantile(ours, QUANTILES), np.quantile(theirs, QUANTILES))


def f1_rows(yy, pred):
    tp = np.sum((yy == 1) & (pred == 1))
    return 2 * tp / (np.sum(yy == 1) + np.sum(pred == 1))


def balanced_accuracy_rows(yy, pred):
    return np.mean([np.mean(pred[yy == c] == c) for c in (0, 1)])


# the slow loops score each replicate with plain numpy on rows (the formulas are checked against
# sklearn in test_metrics.py); what is under test here is the resampling
@pytest.mark.parametrize("name,fn", [
    ("accuracy", lambda yy, p, idx: np.mean(yy == p.labels[idx])),
    ("f1", lambda yy, p, idx: f1_rows(yy, p.labels[idx])),
    ("balanced_accuracy", lambda yy, p, idx: balanced_accuracy_rows(yy, p.labels[idx])),
])
def test_multinomial_paired_bootstrap_matches_a_slow_loop(name, fn):
    y, cand, base = scored(1500, seed=1)
    est = paired_estimates(y, cand, base, [metric_registry()[name]], whole(len(y)), n_boot=3000, rng=rngs(1),
                           positive_label=1, classes=(0, 1))[name][0]
    slow = slow_paired_bootstrap(y, cand, base, fn, 600, seed=2)
    assert est.candidate == pytest.approx(fn(y, cand, np.arange(len(y))))
    assert est.difference.method == "bootstrap-multinomial"
    assert_same_distribution(est.observed.replicates, slow[:, 0])
    assert_same_distribution(est.difference.replicates, slow[:, 0] - slow[:, 1])


def test_churn_replicates_match_a_slow_loop():
    y, cand, base = scored(1500, seed=3)
    est = paired_estimates(y, cand, base, [metric_registry()["churn"]], whole(len(y)), n_boot=3000, rng=rngs(3),
                           positive_label=1, classes=(0, 1))["churn"][0]
    rng = np.random.default_rng(4)
    slow = np.array([np.mean(cand.labels[i] != base.labels[i]) for i in rng.integers(0, len(y), (600, len(y)))])
    assert est.candidate == pytest.approx(np.mean(cand.labels != base.labels), rel=1e-12)
    assert est.difference is None
    assert_same_distribution(est.observed.replicates, slow)


def log_loss_rows(yy, scores):
    return -np.mean(np.log(np.where(yy == 1, scores, 1 - scores)))


@pytest.mark.parametrize("name,fn", [
    ("log_loss", lambda yy, p, idx: log_loss_rows(yy, p.scores[idx])),
    ("brier", lambda yy, p, idx: np.mean((yy - p.scores[idx]) ** 2)),
])
def test_row_bootstrap_matches_a_slow_loop(name, fn):
    y, cand, base = scored(1200, seed=5)
    est = paired_estimates(y, cand, base, [metric_registry()[name]], whole(len(y)), n_boot=2000, rng=rngs(5),
                           positive_label=1, classes=(0, 1))[name][0]
    slow = slow_paired_bootstrap(y, cand, base, fn, 1500, seed=6)
    assert est.candidate == pytest.approx(fn(y, cand, np.arange(len(y))), rel=1e-9)
    assert est.baseline == pytest.approx(fn(y, base, np.arange(len(y))), rel=1e-9)
    assert est.difference.method == "bootstrap-rows"
    assert_same_distribution(est.observed.replicates, slow[:, 0])
    assert_same_distribution(est.difference.replicates, slow[:, 0] - slow[:, 1])


@pytest.mark.parametrize("name,fn", [
    ("rmse", lambda yy, p, idx: np.sqrt(np.mean((yy - p.labels[idx]) ** 2))),
    ("r2", lambda yy, p, idx: 1 - np.sum((yy - p.labels[idx]) ** 2) / np.sum((yy - yy.mean()) ** 2)),
    ("mape", lambda yy, p, idx: np.mean(np.abs(yy - p.labels[idx]) / np.abs(yy))),
])
def test_regression_metrics_row_bootstrap_matches_a_slow_loop(name, fn):
    rng = np.random.default_rng(7)
    y = 50 + 10 * rng.normal(size=1000)
    cand = Predictions(y + rng.normal(size=1000) * 3, None)
    base = Predictions(y + rng.normal(size=1000) * 3.3, None)
    est = paired_estimates(y, cand, base, [metric_registry()[name]], whole(len(y)), n_boot=2000, rng=rngs(7))[name][0]
    slow = slow_paired_bootstrap(y, cand, base, fn, 600, seed=8)
    assert est.candidate == pytest.approx(fn(y, cand, np.arange(len(y))), rel=1e-9)
    assert_same_distribution(est.difference.replicates, slow[:, 0] - slow[:, 1])


def average_precision_rows(yy, scores):
    """Average precision by thresholds from np.unique: sum over thresholds of dTP / P * TP / seen."""
    _, group = np.unique(-scores, return_inverse=True)
    positives = np.bincount(group, weights=(yy == 1).astype(float))
    tp, seen = np.cumsum(positives), np.cumsum(np.bincount(group))
    return np.sum(positives * tp / seen) / tp[-1]


@pytest.mark.parametrize("decimals", [None, 1])
def test_average_precision_delta_method_agrees_with_a_paired_bootstrap(decimals):
    y, cand, base = scored(1500, seed=20)
    if decimals is not None:  # tied scores share a threshold
        cand = Predictions(cand.labels, np.round(cand.scores, decimals), (0, 1))
    est = paired_estimates(y, cand, base, [metric_registry()["average_precision"]], whole(len(y)), n_boot=10,
                           rng=rngs(20), positive_label=1, classes=(0, 1))["average_precision"][0]
    assert est.candidate == pytest.approx(skm.average_precision_score(y, cand.scores), rel=1e-12)
    assert est.baseline == pytest.approx(skm.average_precision_score(y, base.scores), rel=1e-12)
    assert est.difference.method == "delta-method" and est.difference.replicates is None
    assert average_precision_rows(y, cand.scores) == pytest.approx(est.candidate, rel=1e-12)
    slow = slow_paired_bootstrap(y, cand, base, lambda yy, p, idx: average_precision_rows(yy, p.scores[idx]),
                                 400, 21)
    assert est.observed.se == pytest.approx(slow[:, 0].std(), rel=0.12)
    assert est.difference.se == pytest.approx((slow[:, 0] - slow[:, 1]).std(), rel=0.12)


def test_delong_agrees_with_a_paired_bootstrap_of_roc_auc():
    y, cand, base = scored(1500, seed=9)
    observed, diff = delong_paired(y == 1, cand.scores, base.scores)
    want_c, want_b = skm.roc_auc_score(y, cand.scores), skm.roc_auc_score(y, base.scores)
    assert observed.value == pytest.approx(want_c, rel=1e-12)
    assert diff.value == pytest.approx(want_c - want_b, rel=1e-9)
    assert delong_difference(y == 1, cand.scores, base.scores) == diff
    assert delong_single(y == 1, cand.scores).se == pytest.approx(observed.se, rel=1e-12)
    slow = slow_paired_bootstrap(y, cand, base, lambda yy, p, idx: binary_auc(yy == 1, p.scores[idx]), 400, 10)
    assert observed.se == pytest.approx(slow[:, 0].std(), rel=0.12)
    assert diff.se == pytest.approx((slow[:, 0] - slow[:, 1]).std(), rel=0.12)
    lo, hi = diff.interval(0.95)
    b_lo, b_hi = np.quantile(slow[:, 0] - slow[:, 1], [0.025, 0.975])
    assert abs(lo - b_lo) < 0.3 * diff.se and abs(hi - b_hi) < 0.3 * diff.se


def test_delong_matches_the_textbook_pairwise_formula():
    """DeLong et al. (1988): structural components from the explicit pairwise kernel."""
    rng = np.random.default_rng(11)
    y = rng.integers(0, 2, 120).astype(bool)
    sc, sb = np.round(rng.random(120) + 0.4 * y, 1), rng.random(120) + 0.2 * y
    kernels = []
    for s in (sc, sb):
        pos, neg = s[y][:, None], s[~y][None, :]
        kernels.append((pos > neg) + 0.5 * (pos == neg))
    v10 = np.array([k.mean(axis=1) for k in kernels])
    v01 = np.array([k.mean(axis=0) for k in kernels])
    cov = np.cov(v10) / y.sum() + np.cov(v01) / (~y).sum()
    _, diff = delong_paired(y, sc, sb)
    assert diff.se ** 2 == pytest.approx(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1], rel=1e-10)


@pytest.mark.parametrize("weighted", [False, True])
def test_ovr_delong_agrees_with_sklearn_and_a_bootstrap(weighted):
    y, cand, base = scored(1000, seed=12, k=3)
    avg = "weighted" if weighted else "macro"
    aucs, infl = ovr_delong(y, [cand.scores, base.scores], (0, 1, 2), weighted)
    assert aucs[0] == pytest.approx(skm.roc_auc_score(y, cand.scores, multi_class="ovr", average=avg), rel=1e-12)
    slow = slow_paired_bootstrap(y, cand, base, lambda yy, p, idx: ovr_auc(yy, p.scores[idx], (0, 1, 2), weighted),
                                 300, 13)
    assert np.sqrt(np.sum(infl[0] ** 2)) == pytest.approx(slow[:, 0].std(), rel=0.15)
    assert np.sqrt(np.sum((infl[0] - infl[1]) ** 2)) == pytest.approx((slow[:, 0] - slow[:, 1]).std(), rel=0.15)


def test_ovr_delong_of_one_class_is_delong():
    y, cand, _ = scored(800, seed=14)
    aucs, infl = ovr_delong(y == 1, [np.column_stack([1 - cand.scores, cand.scores])], (False, True), False)
    single = delong_single(y == 1, cand.scores)
    assert aucs[0] == pytest.approx(single.value)
    n_pos, n_neg = (y == 1).sum(), (y == 0).sum()
    # ddof 0 vs DeLong's ddof 1: equal up to (m - 1) / m
    assert np.sqrt(np.sum(infl[0] ** 2)) == pytest.approx(single.se, rel=2.0 / min(n_pos, n_neg))


def test_slices_resample_jointly_and_match_per_slice_values():
    y, cand, base = scored(3000, seed=15)
    frame = pd.DataFrame({"g": np.random.default_rng(16).choice(["a", "b", "c"], 3000, p=[0.5, 0.3, 0.2])})
    slicing = slice_by(frame, ["g"])
    reg = metric_registry()
    names = ["accuracy", "f1", "roc_auc", "log_loss", "churn"]
    est = paired_estimates(y, cand, base, [reg[n] for n in names], slicing, n_boot=400, rng=rngs(17),
                           positive_label=1, classes=(0, 1))
    assert [slicing.scope(s) for s in range(3)] == ["g=a", "g=b", "g=c"]
    for s, rows in enumerate(slicing.rows):
        assert np.array_equal(np.sort(rows), np.flatnonzero(frame["g"].to_numpy() == "abc"[s]))
        cand_s, base_s = (Predictions(p.labels[rows], p.scores[rows], (0, 1)) for p in (cand, base))
        for n in names:
            want = reg[n].compute(y[rows], cand_s, positive_label=1, classes=(0, 1), baseline=base_s)
            assert est[n][s].candidate == pytest.approx(want, rel=1e-9), (n, s)
    # a smaller slice has a wider interval
    widths = [np.diff(est["accuracy"][s].difference.interval(0.95))[0] for s in range(3)]
    assert widths[0] < widths[1] < widths[2]


def test_one_poisson_draw_serves_every_slicing():
    """Each row keeps one weight per replicate across slicings: the all-rows log loss of a replicate
    is the weighted mean over the very weights its slices use, recomputed here from the raw draw."""
    y, cand, base = scored(600, seed=21)
    g = np.random.default_rng(22).choice(["a", "b", "c"], 600, p=[0.5, 0.3, 0.2])
    slicings = [whole(600), slice_by(pd.DataFrame({"g": g}), ["g"])]
    found = paired_estimates_many(y, cand, base, [metric_registry()["log_loss"]], slicings, n_boot=50,
                                  rngs=[rngs(23), rngs(24)], positive_label=1, classes=(0, 1))
    # the draw: each row's weights hashed from its position and the seed the "rows" stream gives
    seed = int(rngs(23)("rows").integers(0, 2**63))
    weights = hashed_weights(row_keys(600), 0, 50, seed).astype(np.float64)
    loss = -np.log(np.where(y == 1, cand.scores, 1 - cand.scores))
    want_all = weights @ loss / weights.sum(axis=1)
    assert found[0]["log_loss"][0].observed.replicates == pytest.approx(want_all, rel=1e-5)
    for s, rows in enumerate(slicings[1].rows):
        want = weights[:, rows] @ loss[rows] / weights[:, rows].sum(axis=1)
        assert found[1]["log_loss"][s].observed.replicates == pytest.approx(want, rel=1e-5)


def test_shared_draw_on_crossed_slicings_matches_a_slow_loop_per_slice():
    """Two crossed slicings share one draw over their 6 joint cells; a slice's replicates still have
    the row bootstrap's distribution on its own rows, and other families keep each slicing's stream."""
    y, cand, base = scored(2400, seed=25)
    rng = np.random.default_rng(26)
    frame = pd.DataFrame({"g": rng.choice(["a", "b"], 2400), "h": rng.choice(["x", "y", "z"], 2400, p=[0.4, 0.3, 0.3])})
    slicings = [whole(2400), slice_by(frame, ["g"]), slice_by(frame, ["h"])]
    reg = metric_registry()
    metrics = [reg["brier"], reg["accuracy"]]
    streams = [rngs(27), rngs(28), rngs(29)]
    found = paired_estimates_many(y, cand, base, metrics, slicings, n_boot=2000, rngs=streams,
                                  positive_label=1, classes=(0, 1))
    for slicing, rng_i, got in zip(slicings, streams, found):
        alone = paired_estimates(y, cand, base, metrics, slicing, n_boot=2000, rng=rng_i, positive_label=1,
                                 classes=(0, 1))
        for s in range(slicing.n_slices):
            assert np.array_equal(got["accuracy"][s].difference.replicates, alone["accuracy"][s].difference.replicates)
            assert got["brier"][s].candidate == pytest.approx(alone["brier"][s].candidate, rel=1e-12)
    rows = slicings[2].rows[2]  # h=z, about 720 rows
    ys, cs, bs = y[rows], *(Predictions(p.labels[rows], p.scores[rows], (0, 1)) for p in (cand, base))
    slow = slow_paired_bootstrap(ys, cs, bs, lambda yy, p, idx: np.mean((yy - p.scores[idx]) ** 2), 400, seed=30)
    est = found[2]["brier"][2]
    assert est.candidate == pytest.approx(np.mean((ys - cs.scores) ** 2), rel=1e-9)
    assert_same_distribution(est.observed.replicates, slow[:, 0])
    assert_same_distribution(est.difference.replicates, slow[:, 0] - slow[:, 1])


def test_estimates_are_deterministic_per_seed():
    y, cand, base = scored(500, seed=18)
    metrics = [metric_registry()[n] for n in ("f1", "brier")]
    one = paired_estimates(y, cand, base, metrics, whole(500), n_boot=200, rng=rngs(1), positive_label=1, classes=(0, 1))
    two = paired_estimates(y, cand, base, metrics, whole(500), n_boot=200, rng=rngs(1), positive_label=1, classes=(0, 1))
    three = paired_estimates(y, cand, base, metrics, whole(500), n_boot=200, rng=rngs(2), positive_label=1, classes=(0, 1))
    for n in ("f1", "brier"):
        assert np.array_equal(one[n][0].difference.replicates, two[n][0].difference.replicates)
        assert not np.array_equal(one[n][0].difference.replicates, three[n][0].difference.replicates)


def test_multinomial_tables_chunk_and_keep_empty_cells_empty():
    cells = np.array([[5.0, 0.0], [3.0, 12.0]])
    chunks = list(multinomial_tables(cells, 250, np.random.default_rng(0), budget=8))
    assert sum(len(c) for c in chunks) == 250 and len(chunks) > 1
    draws = np.concatenate(chunks)
    assert np.all(draws.sum(axis=(1, 2)) == 20) and np.all(draws[:, 0, 1] == 0)
    assert draws.mean(axis=0) == pytest.approx(cells, rel=0.1)
    whole = np.concatenate(list(multinomial_tables(cells, 250, np.random.default_rng(0))))
    assert np.array_equal(whole, draws)  # the chunking does not change the draws


def test_poisson_weights_have_poisson_moments_and_cover_every_replicate():
    table = POISSON.astype(np.float64)
    assert table.mean() == pytest.approx(1.0, abs=1e-4) and table.var() == pytest.approx(1.0, abs=1e-3)
    chunks = list(poisson_weights(1000, 30, np.random.default_rng(0), budget=7000))
    assert [c.shape for c in chunks] == [(7, 1000)] * 4 + [(2, 1000)]
    w = np.concatenate(chunks)
    assert w.mean() == pytest.approx(1.0, abs=0.02) and w.var() == pytest.approx(1.0, abs=0.05)


def test_estimate_intervals_and_p_values():
    reps = np.random.default_rng(0).normal(0.01, 0.02, 20000)
    est = Estimate(0.01, "bootstrap", reps)
    lo, hi = est.interval(0.9)
    assert lo == pytest.approx(0.01 - 1.645 * 0.02, abs=0.002) and hi == pytest.approx(0.01 + 1.645 * 0.02, abs=0.002)
    assert est.p_below(-0.02) == pytest.approx(0.0668, abs=0.005)  # P(N(0.01, 0.02) < -0.02)
    normal = Estimate(0.01, "delong", se=0.02)
    assert normal.p_below(-0.02) == pytest.approx(0.0668, abs=1e-3)
    assert negate(normal).interval(0.9) == pytest.approx(tuple(-x for x in reversed(normal.interval(0.9))))
    assert all(np.isnan(Estimate(float("nan"), "delong").interval(0.95)))
    assert not Estimate(float("nan"), "delong").is_defined


def test_hull_interval_spans_the_percentile_and_basic_intervals_and_holds_its_point():
    rng = np.random.default_rng(1)
    reps = rng.gamma(2.0, 0.01, 20000) + 0.06  # skewed right, mean 0.08
    q_lo, q_hi = np.quantile(reps, [0.025, 0.975])
    t = 0.08  # inside [q_lo, q_hi]: percentile and reflected ends, the wider of each
    est = Estimate(t, "bootstrap", reps, bounds=(0.0, 1.0), reading=HULL)
    assert est.interval(0.95) == pytest.approx((min(q_lo, 2 * t - q_hi), max(q_hi, 2 * t - q_lo)), abs=1e-12)
    assert est.interval(0.95)[0] < q_lo and est.interval(0.95)[1] == pytest.approx(q_hi, abs=1e-12)
    assert Estimate(t, "bootstrap", reps).interval(0.95) == pytest.approx((q_lo, q_hi), abs=1e-12)
    # below every replicate (a max over noisy group rates): the percentile interval misses t, the hull
    # reaches down to the reflection and up to the percentile end
    low = hull_interval(0.05, reps, 0.95)
    assert reps.min() > 0.05 and low == pytest.approx((0.1 - q_hi, q_hi), abs=1e-12)
    assert Estimate(0.05, "bootstrap", reps, bounds=(0.0, 1.0), reading=HULL).interval(0.95) == \
        pytest.approx((0.0, q_hi), abs=1e-12)
    # the one-sided p-value is the level at which the lower end reaches the bound
    for bound in (0.03, 0.05, 0.06):
        p = est.p_below(bound)
        assert est.interval(1 - 2 * p)[0] == pytest.approx(bound, abs=2e-3)
        assert p == pytest.approx(max(np.mean(reps > 2 * t - bound), np.mean(reps < bound)), abs=1e-3)
    assert est.p_below(t + 0.001) == 1.0  # above the point: never shown, as no interval's lower end passes t
    flipped = negate(est)
    assert flipped.reading == HULL
    assert flipped.interval(0.9) == pytest.approx(tuple(-x for x in reversed(est.interval(0.9))))
    assert est.within((-1.0, 1.0)).reading == HULL
    assert all(np.isnan(hull_interval(float("nan"), reps, 0.95)))


def test_midranks_equal_scipy_rankdata():
    from scipy.stats import rankdata

    rng = np.random.default_rng(19)
    for x in (rng.integers(0, 5, 300), rng.random(300), np.round(rng.normal(size=2000), 1), np.array([2.0])):
        assert np.array_equal(midranks(x), rankdata(x))


@pytest.mark.parametrize("name", ["log_loss", "brier"])
def test_large_slices_use_the_paired_normal_interval_which_agrees_with_the_bootstrap(name, monkeypatch):
    """At ANALYTIC_MIN_ROWS rows the paired normal interval's ends sit within a few percent of the
    interval's width from the Poisson bootstrap's (40,000 replicates, below the threshold's switch)."""
    from gates.estimates import _row_family
    from gates.stats import ANALYTIC_MIN_ROWS

    n = ANALYTIC_MIN_ROWS
    y, cand, base = scored(n, seed=41)
    metric = metric_registry()[name]
    est = paired_estimates(y, cand, base, [metric], whole(n), n_boot=2000, rng=rngs(41), positive_label=1,
                           classes=(0, 1))[name][0]
    assert est.difference.method == "paired-normal" and est.difference.replicates is None
    assert est.observed.method == "delta-method"
    d = metric.row_stats(y, cand, 1, (0, 1))[:, 0] - metric.row_stats(y, base, 1, (0, 1))[:, 0]
    assert est.difference.value == pytest.approx(d.mean(), rel=1e-9)
    assert est.difference.se == pytest.approx(d.std(ddof=1) / np.sqrt(n), rel=1e-5)
    # the same partials with the switch out of reach: the Poisson bootstrap
    monkeypatch.setattr("gates.estimates.ANALYTIC_MIN_ROWS", n + 1)
    boot = _row_family(y, cand, base, [metric], [whole(n)], 40_000, row_keys(n), 5, 1, (0, 1))[0][name][0]
    assert boot.difference.method == "bootstrap-rows"
    for level in (0.95, 1 - 0.05 / 12):
        lo, hi = est.difference.interval(level)
        blo, bhi = boot.difference.interval(level)
        width = bhi - blo
        assert abs(lo - blo) < 0.05 * width and abs(hi - bhi) < 0.05 * width, (level, (lo, hi), (blo, bhi))


def test_auc_intervals_stay_within_the_unit_interval():
    y, cand, base = scored(60, seed=43)
    perfect = Predictions(cand.labels, np.where(y == 1, 0.9 + 0.05 * cand.scores, 0.1 * cand.scores), (0, 1))
    est = paired_estimates(y, perfect, base, [metric_registry()["roc_auc"]], whole(60), n_boot=200, rng=rngs(43),
                           positive_label=1, classes=(0, 1))["roc_auc"][0]
    lo, hi = est.observed.interval(0.999)
    assert est.candidate == 1.0 and hi <= 1.0 and lo >= 0.0
    dlo, dhi = est.difference.interval(0.999)
    assert -1.0 <= dlo <= dhi <= 1.0


def test_delong_covariance_and_influence_match_the_structural_components_by_definition():
    """Placement values from pairwise comparisons (ties half), with no midranks."""
    rng = np.random.default_rng(11)
    y = rng.integers(0, 2, 300).astype(bool)
    s = np.vstack([np.round(rng.normal(size=300) + y, 1), np.round(rng.normal(size=300) + 0.5 * y, 1)])
    wins = [(p[:, None] > q[None, :]) + 0.5 * (p[:, None] == q[None, :]) for p, q in zip(s[:, y], s[:, ~y])]
    v10 = np.stack([w.mean(axis=1) for w in wins])  # per positive: share of negatives it outranks
    v01 = np.stack([w.mean(axis=0) for w in wins])  # per negative: share of positives that outrank it
    auc, m, n = v10.mean(axis=1), int(y.sum()), int((~y).sum())
    aucs, cov = delong_covariance(y, s)
    np.testing.assert_allclose(aucs, auc, rtol=1e-12)
    np.testing.assert_allclose(cov, np.cov(v10) / m + np.cov(v01) / n, rtol=1e-10)
    aucs2, infl = delong_influence(y, s)
    np.testing.assert_allclose(aucs2, auc, rtol=1e-12)
    np.testing.assert_allclose(infl[:, y], (v10 - auc[:, None]) / m, atol=1e-14)
    np.testing.assert_allclose(infl[:, ~y], (v01 - auc[:, None]) / n, atol=1e-14)
    assert np.isnan(delong_influence(np.array([True, False, False]), s[:, :3])[1]).all()
    assert np.isnan(delong_covariance(np.array([True, False, False]), s[:, :3])[1]).all()
