"""Train/eval overlap counted against a merge, and single-feature leakage scored on known cases."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import balanced_accuracy_score

from gates.checks.data import leakage, overlap
from gates.results import Status
from tests.gates.checks.data.conftest import RunData, mixed_frame


def test_overlap_fraction_matches_a_merge(run_data: RunData) -> None:
    ref = mixed_frame(500, seed=1).drop(columns=["id"])
    ev = mixed_frame(300, seed=2).drop(columns=["id"])
    ev.iloc[[4, 9, 50, 51, 200]] = ref.iloc[[0, 1, 2, 2, 499]].to_numpy()  # five rows copied from training
    ev["age"] = ev["age"].astype("Float64")  # same numbers, another dtype: still the same rows
    res = run_data(ev, "overlap: {max_fraction: 0.01}", reference=ref)
    cols = [c for c in ref.columns]
    merged = ev.reset_index().astype({"age": float}).merge(ref.drop_duplicates(), on=cols, how="inner")
    expected = merged["index"].nunique()
    r = res["data.overlap.max"]
    assert expected == 5
    assert r.details["rows"] == expected
    assert r.observed == pytest.approx(expected / len(ev))
    assert r.status is Status.FAIL
    assert [e["index"] for e in r.details["examples"]] == [4, 9, 50, 51, 200]
    assert "pred" not in r.details["columns"]  # a model output is not data


def test_overlap_on_chosen_columns_and_missing_ones(run_data: RunData) -> None:
    ref = mixed_frame(200, seed=1)
    ev = mixed_frame(200, seed=1).assign(target=0.5)  # same features, other labels
    res = run_data(ev, "overlap: {columns: [age, income, sex, code], max_fraction: 0.5}", reference=ref)
    assert res["data.overlap.max"].observed == 1.0
    res = run_data(ev, "overlap: {columns: [age, nowhere]}", reference=ref)
    assert res["data.overlap.max"].status is Status.ERROR
    assert res["data.overlap.max"].message == overlap.MSG_MISSING.format(col="nowhere", where="eval")


def test_row_hashes_see_numbers_not_dtypes() -> None:
    a = pd.DataFrame({"n": [1, 2, 3], "s": ["x", "y", None]})
    b = pd.DataFrame({"n": [1.0, 2.0, 4.0], "s": pd.Series(["x", "y", None], dtype="category")})
    assert (overlap.row_hashes(a, ["n", "s"]) == overlap.row_hashes(b, ["n", "s"])).tolist() == [True, True, False]


def test_leaked_feature_fails_and_honest_ones_pass(run_data: RunData) -> None:
    rng = np.random.default_rng(4)
    n = 2000
    y = rng.integers(0, 2, n)
    df = pd.DataFrame({
        "noise": rng.normal(size=n),
        "signal": y + rng.normal(0, 1.0, n),
        "leak": y * 10 + rng.normal(0, 0.1, n),  # the label in disguise
        "row_id": [f"r{i}" for i in range(n)],  # unique per row: memorising it must not score
        "label": y,
    })
    res = run_data(df, "leakage: {max_score: 0.95}", target="label", task="binary_classification")
    assert res["data.leakage.max[leak]"].status is Status.FAIL
    assert res["data.leakage.max[leak]"].observed > 0.99
    for col in ("noise", "row_id"):
        assert res[f"data.leakage.max[{col}]"].observed == pytest.approx(0.5, abs=0.05)
    assert 0.6 < res["data.leakage.max[signal]"].observed < 0.8
    assert res["data.leakage.max[signal]"].details["metric"] == "balanced_accuracy"
    assert "data.leakage.max[pred]" not in res and "data.leakage.max[label]" not in res


def test_leakage_score_equals_a_slow_cross_fitted_loop() -> None:
    rng = np.random.default_rng(7)
    n = 600
    x = pd.Series(rng.integers(0, 8, n).astype(float))
    y = pd.Series(np.where(rng.random(n) < 0.2, 1 - (x > 3), x > 3).astype(int))
    half = rng.random(n) < 0.5
    score, metric, _ = leakage.leakage_score(x, y, "binary_classification", half)
    pred = np.zeros(n, dtype=int)
    for train in (half, ~half):
        for value in x.unique():
            rows = train & (x == value).to_numpy()
            majority = y[rows].value_counts().sort_index().idxmax()
            pred[~train & (x == value).to_numpy()] = majority
    assert metric == "balanced_accuracy"
    assert score == pytest.approx(balanced_accuracy_score(y, pred))


def test_regression_leakage_is_r2(run_data: RunData) -> None:
    rng = np.random.default_rng(5)
    n = 3000
    t = rng.normal(size=n)
    df = pd.DataFrame({"copy": t * 2 + 1, "noise": rng.normal(size=n), "target": t})
    res = run_data(df, "leakage: {}")
    assert res["data.leakage.max[copy]"].observed > 0.99
    assert res["data.leakage.max[copy]"].status is Status.FAIL  # default max_score 0.98
    assert res["data.leakage.max[noise]"].observed < 0.05


class _NoText:
    """A cell value whose text cannot be taken."""

    def __str__(self) -> str:
        raise ValueError("no text")

    __repr__ = object.__repr__


def test_odd_cell_values_become_error_checks_not_crashes() -> None:
    from gates.checks.data._common import Settings
    from gates.checks.data.drift import run_drift

    odd = pd.DataFrame({"v": pd.Series([_NoText(), "a"] * 100, dtype=object), "y": np.arange(200) % 2})
    [result] = overlap.run_overlap(odd, odd, {}, set(), Settings())
    assert result.status is Status.ERROR and "no text" in result.message
    [result] = run_drift(odd, odd, {}, ["v"], Settings())
    assert result.status is Status.ERROR and result.reason == "undefined"
    mixed = pd.DataFrame({"v": pd.Series([1, "a", 2.5, None] * 50, dtype=object)})
    [result] = run_drift(mixed, mixed, {}, ["v"], Settings())
    assert result.status is Status.PASS and result.observed == 0.0  # mixed types are just categories
