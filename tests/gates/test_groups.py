"""Group statistics: one-pass codes and count tables that merge, rates and disparities as fairlearn defines them."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fairlearn import metrics as flm
from sklearn.metrics import confusion_matrix, precision_score, recall_score

from gates import groups
from gates.groups import (
    RATES,
    CellTable,
    cell_table,
    confusion_rates,
    disparity,
    group_index,
)


def frame(n: int = 500, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "sex": rng.choice(["F", "M"], n),
        "band": rng.choice([3, 1, 2], n),
        "region": rng.choice(["north", "south", None], n),
    })


def test_group_index_codes_intersections_in_sorted_order_with_missing_as_a_group():
    df = frame()
    index = group_index(df, ["sex", "region"])
    expected = df.groupby(["sex", "region"], dropna=False).size()
    assert index.n_groups == len(expected)
    assert [k[0] for k in index.keys] == sorted(k[0] for k in index.keys)
    for g, key in enumerate(index.keys):
        rows = (df["sex"] == key[0]) & (df["region"].isna() if key[1] is None else df["region"] == key[1])
        assert np.array_equal(index.codes == g, rows.to_numpy())
    assert (None in {k[1] for k in index.keys}) and index.values(0) == {"sex": "F", "region": "north"}
    assert index.sizes.sum() == len(df)


def test_group_index_sparse_path_equals_dense_path(monkeypatch):
    df = frame(seed=1)
    dense = group_index(df, ["sex", "band", "region"])
    monkeypatch.setattr(groups, "DENSE_CODES_LIMIT", 1)
    sparse = group_index(df, ["sex", "band", "region"])
    assert sparse.keys == dense.keys and np.array_equal(sparse.codes, dense.codes)
    assert all(isinstance(k[1], int) for k in dense.keys)  # plain Python values, JSON-able


def test_cell_table_counts_every_cell_and_partitions_merge_to_the_whole():
    rng = np.random.default_rng(12)
    df = frame(800, seed=2)
    y, c, b = (rng.integers(0, 2, len(df)) for _ in range(3))
    whole = cell_table(group_index(df, ["sex", "band"]), (0, 1), y, c, b)
    for g, key in enumerate(whole.keys):
        rows = ((df["sex"] == key[0]) & (df["band"] == key[1])).to_numpy()
        for i, j, k in np.ndindex(2, 2, 2):
            assert whole.counts[g, i, j, k] == np.sum(rows & (y == i) & (c == j) & (b == k))
    first, second = df.index < 300, df.index >= 300
    part1 = cell_table(group_index(df[first], ["sex", "band"]), (0, 1), y[first], c[first], b[first])
    part2 = cell_table(group_index(df[second].iloc[::-1], ["sex", "band"]), (0, 1),
                       y[second][::-1], c[second][::-1], b[second][::-1])
    merged = part1.merge(part2)
    order = [merged.keys.index(k) for k in whole.keys]
    assert sorted(merged.keys) == sorted(whole.keys)
    assert np.array_equal(merged.counts[order], whole.counts)
    with pytest.raises(ValueError):
        part1.merge(CellTable(part2.keys, ("a", "b"), part2.counts))


def test_confusion_rates_equal_fairlearn_and_sklearn_and_are_undefined_without_denominator():
    rng = np.random.default_rng(3)
    y, p = rng.integers(0, 2, 300), rng.integers(0, 2, 300)
    conf = confusion_matrix(y, p, labels=[0, 1])
    expected = {
        "selection_rate": flm.selection_rate(y, p), "tpr": flm.true_positive_rate(y, p),
        "fpr": flm.false_positive_rate(y, p), "fnr": flm.false_negative_rate(y, p),
        "tnr": flm.true_negative_rate(y, p), "precision": precision_score(y, p),
        "accuracy": np.mean(y == p), "f1": 2 * precision_score(y, p) * recall_score(y, p)
        / (precision_score(y, p) + recall_score(y, p)),
    }
    for name, want in expected.items():
        value, _ = confusion_rates(conf, RATES[name], 1)
        assert value == pytest.approx(want, abs=1e-12), name
    value, support = confusion_rates(np.array([[5, 2], [0, 0]]), RATES["tpr"], 1)
    assert np.isnan(value) and support == 0


def test_multiclass_rates_one_vs_rest_and_macro():
    rng = np.random.default_rng(4)
    y, p = rng.integers(0, 3, 400), rng.integers(0, 3, 400)
    conf = confusion_matrix(y, p, labels=[0, 1, 2])
    per_class = recall_score(y, p, average=None)
    for k in range(3):
        assert confusion_rates(conf, RATES["tpr"], k)[0] == pytest.approx(per_class[k], abs=1e-12)
    assert confusion_rates(conf, RATES["tpr"], [0, 1, 2])[0] == pytest.approx(
        recall_score(y, p, average="macro"), abs=1e-12)
    assert confusion_rates(conf, RATES["accuracy"], [0, 1, 2])[0] == pytest.approx(np.mean(y == p))
    batch = np.stack([conf, conf * 2])  # leading axes (replicates, groups) broadcast
    assert confusion_rates(batch, RATES["fpr"], 2)[0].shape == (2,)


def test_disparity_matches_fairlearn_aggregates_over_included_groups():
    rng = np.random.default_rng(5)
    y, p = rng.integers(0, 2, 600), rng.integers(0, 2, 600)
    sf = rng.choice(["a", "b", "c", "d"], 600)
    mf = flm.MetricFrame(metrics=flm.selection_rate, y_true=y, y_pred=p, sensitive_features=sf)
    values, overall = mf.by_group.to_numpy(), np.float64(mf.overall)
    everyone = np.ones(4, dtype=bool)
    for kind, method in (("difference", "between_groups"), ("difference", "to_overall"),
                         ("ratio", "between_groups"), ("ratio", "to_overall")):
        want = getattr(mf, kind)(method=method)
        assert disparity(values, overall, everyone, kind, method) == pytest.approx(want, abs=1e-12)
    some = np.array([True, False, True, True])
    kept = np.isin(sf, ["a", "c", "d"])
    sub = flm.MetricFrame(metrics=flm.selection_rate, y_true=y[kept], y_pred=p[kept], sensitive_features=sf[kept])
    assert disparity(values, overall, some, "difference", "between_groups") == pytest.approx(sub.difference())
    assert np.isnan(disparity(values, overall, np.array([True, False, False, False]), "ratio", "between_groups"))
    reps = np.vstack([values, [np.nan, 0.5, np.nan, np.nan]])
    out = disparity(reps, np.array([overall, 0.5]), everyone, "difference", "between_groups")
    assert out[0] == pytest.approx(mf.difference()) and np.isnan(out[1])  # one defined group: undefined


def test_combine_worst_case_and_mean():
    tpr, fpr = np.array([0.1, 0.3]), np.array([0.2, 0.1])
    assert np.array_equal(groups.combine([tpr, fpr], "difference", "worst_case"), [0.2, 0.3])
    assert np.array_equal(groups.combine([tpr, fpr], "ratio", "worst_case"), [0.1, 0.1])
    assert np.allclose(groups.combine([tpr, fpr], "ratio", "mean"), [0.15, 0.2])
