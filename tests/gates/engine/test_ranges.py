"""Statistics over tables spread by value range: the numbers of the merged table, however split."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gates.checks.data.drift import ecdf_gaps, ks_counts, merge_value_counts, value_counts, wasserstein_counts
from gates.engine.local import LocalEngine
from gates.engine.ranges import cut, edges, ranked, sample
from gates.estimates import ap_influence
from gates.stats.ranks import RankSpec, delong_counts

KEYS = ["cell", "y", "sc", "sb"]


def rows(seed: int, n: int) -> pd.DataFrame:
    """Scored rows with ties (rounded scores), a weak baseline and 4 cells."""
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.35
    sc = np.round(rng.normal(y * 1.2, 1.0), 2)
    return pd.DataFrame({"cell": rng.integers(0, 4, n), "y": y, "sc": sc,
                         "sb": np.round(sc + rng.normal(0, 0.8, n), 1)})


def tables_of(frame: pd.DataFrame, sizes: list[int]) -> list[pd.DataFrame]:
    """Consecutive partitions of ``frame``, each counted per distinct entry."""
    stops = np.r_[0, np.cumsum(sizes)]
    parts = [frame.iloc[a:b] for a, b in zip(stops[:-1], stops[1:])]
    return [p.groupby(KEYS, sort=False).size().rename("n").reset_index() for p in parts if len(p)]


SLICINGS = (np.zeros(4, dtype=np.int64), np.array([0, 1, 0, 1]), np.array([2, 0, 1, 0]))
SPEC = RankSpec("y", "n", "cell", tuple((s, int(s.max()) + 1) for s in SLICINGS))


def run(tables: list[pd.DataFrame], n_ranges: int, scores: list[str]) -> object:
    samples = {c: [(sample(t[c].to_numpy()), len(t)) for t in tables] for c in scores}
    return ranked(LocalEngine(), tables, scores, samples, SPEC, KEYS, n_ranges, auc=True, ap=True)


@pytest.mark.parametrize("sizes, n_ranges", [([4000], 1), ([700] * 6 + [3], 7), ([1, 2, 3, 3994], 40)])
def test_ranked_auc_and_ap_are_those_of_each_slice_of_the_merged_rows(sizes: list[int], n_ranges: int) -> None:
    frame = rows(3, 4000)
    found = run(tables_of(frame, sizes), n_ranges, ["sc", "sb"])
    cells, y = frame["cell"].to_numpy(), frame["y"].to_numpy()
    sc, sb = frame["sc"].to_numpy(), frame["sb"].to_numpy()
    for i, slice_of in enumerate(SLICINGS):
        aucs, cov = found.auc[i]
        aps, second, diff = found.ap[i]
        for s in range(int(slice_of.max()) + 1):
            here = slice_of[cells] == s
            want_auc, want_cov = delong_counts(y[here], np.vstack([sc[here], sb[here]]), np.ones(here.sum()))
            np.testing.assert_allclose(aucs[s], want_auc, rtol=1e-12)
            np.testing.assert_allclose(cov[s], want_cov, rtol=1e-9)
            ap_c, inf_c = ap_influence(y[here], sc[here])
            ap_b, inf_b = ap_influence(y[here], sb[here])
            pi = y[here].mean()
            np.testing.assert_allclose(aps[s], [ap_c, ap_b], rtol=1e-12)
            np.testing.assert_allclose(second[s] / pi ** 2, [np.sum(inf_c ** 2), np.sum(inf_b ** 2)], rtol=1e-9)
            np.testing.assert_allclose(diff[s] / pi ** 2, [np.sum((inf_c - inf_b) ** 2)], rtol=1e-9)
            np.testing.assert_array_equal(found.counts[i][s], [y[here].sum(), (~y[here]).sum()])


def test_one_score_and_a_slice_without_positives() -> None:
    frame = rows(5, 600)
    frame.loc[frame["cell"].isin([1, 3]), "y"] = False  # slicing 2's slice 0 (cells 1 and 3): no positive
    found = run(tables_of(frame, [200, 200, 200]), 3, ["sc"])
    aucs, cov = found.auc[2]
    assert np.isnan(aucs[0]).all() and np.isnan(cov[0]).all()
    assert np.isfinite(aucs[1:]).all()
    assert np.isnan(found.ap[2][0][0]).all()


def test_equal_values_share_a_range_and_ranges_are_in_value_order() -> None:
    values = np.repeat(np.arange(10.0), [1, 50, 2, 2, 300, 1, 1, 1, 90, 7])
    bounds = edges([(sample(values), len(values))], 6)
    pieces = cut(pd.DataFrame({"v": values}), "v", bounds)
    assert len(pieces) == len(bounds) + 1
    assert sum(len(p) for p in pieces) == len(values)
    seen = [set(p["v"]) for p in pieces]
    assert all(a.isdisjoint(b) for j, a in enumerate(seen) for b in seen[j + 1:])
    tops = [max(p["v"]) for p in pieces if len(p)]
    assert tops == sorted(tops)


@pytest.mark.parametrize("n_ranges", [1, 4, 30])
def test_ecdf_gaps_give_the_ks_and_wasserstein_of_the_merged_counts(n_ranges: int) -> None:
    rng = np.random.default_rng(11)
    ref = np.round(rng.normal(size=3000), 2)
    parts = [np.round(rng.normal(0.3, 1.2, size=int(rng.integers(1, 900))), 2) for _ in range(9)]
    ev = merge_value_counts([value_counts(p) for p in parts])
    counted = value_counts(ref)

    def table(values: tuple[np.ndarray, np.ndarray], reference: bool) -> pd.DataFrame:
        zeros = np.zeros(len(values[0]))
        n = values[1].astype(np.float64)
        return pd.DataFrame({"v": values[0], "r": n if reference else zeros, "e": zeros if reference else n})

    tables = [table(value_counts(p), False) for p in parts] + [table(counted, True)]
    samples = [(sample(t["v"].to_numpy()), len(t)) for t in tables]
    d, distance, sizes = ecdf_gaps(LocalEngine(), tables, samples, "v", ("r", "e"), n_ranges)
    assert d == ks_counts(counted, ev).value  # the CDFs are ratios of exact counts
    want = wasserstein_counts(counted, ev)
    assert distance == pytest.approx(want.extra["distance"], rel=1e-12)
    np.testing.assert_array_equal(sizes, [len(ref), sum(len(p) for p in parts)])
