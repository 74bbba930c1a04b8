"""Perturbations: each corrupts exactly what it says, at the rate it says, reproducibly."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gates.perturbations import (
    PERTURBATIONS,
    ColumnStats,
    ColumnSummary,
    Draws,
    category_swap,
    feature_dropout,
    gaussian_noise,
    missing,
    outliers,
    perturb,
    replace_column,
    scale_shift,
    select_columns,
    shuffle_column,
    step_column,
)
from gates.stats.weights import row_keys
from tests.row_draws import normals, uniforms

N = 20_000


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    income = rng.lognormal(10, 0.5, N)
    income[rng.random(N) < 0.05] = np.nan
    region = pd.Series(rng.choice(["north", "south", "east", "west"], N), dtype="str")
    region[rng.random(N) < 0.02] = np.nan
    return pd.DataFrame({
        "age": rng.integers(18, 90, N),
        "income": income,
        "region": region,
        "plan": pd.Categorical(rng.choice(["basic", "plus"], N)),
        "active": rng.random(N) < 0.5,
    })


def rng(seed: int = 0, n: int = N) -> Draws:
    """The row-keyed draws of one copy (keys: row positions), named like the gate's."""
    return Draws.of(seed, ("robustness", "test"), row_keys(n))


def test_select_columns_splits_by_dtype(frame: pd.DataFrame) -> None:
    features = list(frame.columns)
    assert select_columns(frame, features, "numeric") == ["age", "income"]
    assert select_columns(frame, features, "categorical") == ["region", "plan", "active"]
    assert select_columns(frame, features, "all") == features
    assert select_columns(frame, features, ["income"]) == ["income"]


def test_gaussian_noise_matches_its_definition(frame: pd.DataFrame) -> None:
    """Per column: one N(0,1) draw per row key times scale x std (an independent re-derivation)."""
    out = gaussian_noise(frame, ["age", "income"], 0.2, rng(5), ColumnStats(frame))
    for col in ("age", "income"):
        noise = normals(5, ("robustness", "test"), col, "noise", range(N)) * 0.2 * frame[col].std()
        np.testing.assert_allclose(out[col].to_numpy(), frame[col].to_numpy(dtype=float) + noise, rtol=1e-12)
    pd.testing.assert_series_equal(out["region"], frame["region"])
    diff = (out["income"] - frame["income"]).dropna()
    assert diff.std() == pytest.approx(0.2 * frame["income"].std(), rel=0.03)
    assert out["income"].isna().equals(frame["income"].isna())


def test_input_frame_is_never_modified(frame: pd.DataFrame) -> None:
    before = frame.copy()
    stats = ColumnStats(frame)
    for name, spec in PERTURBATIONS.items():
        cols = select_columns(frame, list(frame.columns), spec.default_columns)
        perturb(frame, name, cols, 1.0 if spec.severity_param == "rate" else 3.0, rng(), stats)
    pd.testing.assert_frame_equal(frame, before)


def test_missing_blanks_cells_at_the_rate(frame: pd.DataFrame) -> None:
    out = missing(frame, ["age", "region"], 0.3, rng(1), ColumnStats(frame))
    new_age = out["age"].isna() & frame["age"].notna()
    assert new_age.mean() == pytest.approx(0.3, abs=0.015)
    new_region = out["region"].isna() & frame["region"].notna()
    assert new_region.mean() == pytest.approx(0.3 * 0.98, abs=0.015)
    unchanged = ~out["age"].isna()
    assert (out.loc[unchanged, "age"] == frame.loc[unchanged, "age"]).all()


def test_missing_with_impute_fills_median_and_mode(frame: pd.DataFrame) -> None:
    out = missing(frame, ["income", "region"], 0.3, rng(2), ColumnStats(frame), impute="median")
    assert out["income"].isna().sum() == frame["income"].isna().sum()
    changed = out["income"] != frame["income"]
    assert (out.loc[changed & frame["income"].notna(), "income"] == frame["income"].median()).all()
    mode = frame["region"].value_counts().idxmax()
    changed_region = (out["region"] != frame["region"]) & frame["region"].notna()
    assert changed_region.mean() > 0.15
    assert (out.loc[changed_region, "region"] == mode).all()


def test_category_swap_gives_another_observed_level(frame: pd.DataFrame) -> None:
    out = category_swap(frame, ["region", "plan"], 0.25, rng(4), ColumnStats(frame))
    levels = set(frame["region"].dropna())
    changed = out["region"] != frame["region"]
    changed &= frame["region"].notna()
    # a chosen cell always moves to a different level (k - 1 choices), so the changed share is the rate
    assert changed.mean() == pytest.approx(0.25 * 0.98, abs=0.015)
    assert set(out["region"].dropna()) <= levels
    assert out["region"].isna().equals(frame["region"].isna())
    assert out["plan"].dtype == frame["plan"].dtype
    assert (out["plan"] != frame["plan"]).mean() == pytest.approx(0.25, abs=0.015)
    # each other level is equally likely
    moved_from_north = out.loc[changed & (frame["region"] == "north"), "region"].value_counts(normalize=True)
    assert set(moved_from_north.index) == levels - {"north"}
    assert moved_from_north.max() - moved_from_north.min() < 0.06


def test_category_swap_leaves_single_level_columns_alone() -> None:
    df = pd.DataFrame({"c": ["a"] * 50})
    out = category_swap(df, ["c"], 1.0, rng(), ColumnStats(df))
    assert (out["c"] == "a").all()


def test_feature_dropout_at_rate_one_drops_the_column(frame: pd.DataFrame) -> None:
    out = feature_dropout(frame, ["age", "region"], 1.0, rng(), ColumnStats(frame))
    assert (out["age"] == frame["age"].median()).all()
    present = frame["region"].notna()
    assert (out.loc[present, "region"] == frame["region"].value_counts().idxmax()).all()
    assert out["region"].isna().equals(~present)


def test_scale_shift_multiplies_a_share_of_rows(frame: pd.DataFrame) -> None:
    out = scale_shift(frame, ["age"], 100.0, rng(6), ColumnStats(frame), rate=0.2)
    ratio = out["age"] / frame["age"]
    chosen = uniforms(6, ("robustness", "test"), "age", "mask", range(N)) < 0.2
    assert np.array_equal(ratio.to_numpy() == 100.0, chosen)
    assert set(np.unique(ratio)) == {1.0, 100.0}
    assert (ratio == 100.0).mean() == pytest.approx(0.2, abs=0.015)


def test_outliers_fall_beyond_the_observed_range(frame: pd.DataFrame) -> None:
    out = outliers(frame, ["income"], 0.1, rng(7), ColumnStats(frame), factor=0.5)
    lo, hi = frame["income"].min(), frame["income"].max()
    changed = (out["income"] != frame["income"]) & frame["income"].notna()
    assert changed.mean() == pytest.approx(0.1 * 0.95, abs=0.01)
    moved = out.loc[changed, "income"]
    span = hi - lo
    assert ((moved > hi + 0.5 * span) | (moved < lo - 0.5 * span)).all()
    assert ((moved < hi + span + 1e-6) & (moved > lo - span - 1e-6)).all()
    assert 0.4 < (moved > hi).mean() < 0.6


def test_shuffle_and_replace_keep_values_but_break_rows(frame: pd.DataFrame) -> None:
    shuffled = shuffle_column(frame, "age", rng())
    assert sorted(shuffled["age"]) == sorted(frame["age"])
    assert (shuffled["age"] != frame["age"]).mean() > 0.9
    replaced = replace_column(frame, "region", rng(), ColumnStats(frame))
    present = frame["region"].notna()
    assert (replaced.loc[present, "region"] != frame.loc[present, "region"]).all()


def test_step_column_adds_the_step(frame: pd.DataFrame) -> None:
    out = step_column(frame, "age", 2.5)
    np.testing.assert_allclose(out["age"], frame["age"] + 2.5)


@pytest.mark.parametrize("name", sorted(PERTURBATIONS))
def test_same_seed_same_cells_other_seed_other_cells(frame: pd.DataFrame, name: str) -> None:
    spec = PERTURBATIONS[name]
    cols = select_columns(frame, list(frame.columns), spec.default_columns)
    stats = ColumnStats(frame)
    severity = spec.default_severity if spec.severity_param != "rate" else 0.3
    a = perturb(frame, name, cols, severity, rng(11), stats)
    b = perturb(frame, name, cols, severity, rng(11), stats)
    c = perturb(frame, name, cols, severity, rng(12), stats)
    assert a.equals(b)
    assert not a.equals(c)
    assert not a.equals(frame)


def test_a_row_draws_the_same_cells_in_any_partition(frame: pd.DataFrame) -> None:
    """Row-keyed draws: corrupting 3 slices of the rows (with their keys) gives the whole frame's copy."""
    stats = ColumnStats(frame)
    for name, spec in PERTURBATIONS.items():
        cols = select_columns(frame, list(frame.columns), spec.default_columns)
        whole = perturb(frame, name, cols, 0.3 if spec.severity_param == "rate" else 3.0, rng(21), stats)
        parts = [perturb(frame.iloc[a:b], name, cols, 0.3 if spec.severity_param == "rate" else 3.0,
                         rng(21).take(slice(a, b)), stats) for a, b in ((0, 7), (7, 12_000), (12_000, N))]
        pd.testing.assert_frame_equal(pd.concat(parts), whole)


def test_id_keys_follow_the_row_not_its_position(frame: pd.DataFrame) -> None:
    ids = np.arange(N)[::-1] * 7 + 3
    keyed = Draws.of(1, ("robustness", "test"), row_keys(N, values=ids))
    reordered = Draws.of(1, ("robustness", "test"), row_keys(N, values=ids[::-1]))
    assert np.array_equal(keyed.uniform("age", "mask")[::-1], reordered.uniform("age", "mask"))
    assert not np.array_equal(keyed.uniform("age", "mask"), rng(1).uniform("age", "mask"))


def test_draws_are_uniform_and_normal() -> None:
    d = rng(4, 200_000)
    u, z = d.uniform("x", "mask"), d.normal("x", "noise")
    assert 0.0 <= u.min() and u.max() < 1.0
    assert u.mean() == pytest.approx(0.5, abs=0.003) and u.var() == pytest.approx(1 / 12, rel=0.01)
    assert z.mean() == pytest.approx(0.0, abs=0.005) and z.std() == pytest.approx(1.0, rel=0.01)
    assert np.mean(z > 1.96) == pytest.approx(0.025, abs=0.002)
    assert abs(np.corrcoef(u, d.uniform("x", "side"))[0, 1]) < 0.01
    k = d.integers("x", "offset", 1, 4)
    assert set(np.unique(k)) == {1, 2, 3}
    assert np.bincount(k)[1:].min() / len(k) == pytest.approx(1 / 3, abs=0.005)


@pytest.mark.parametrize("column", ["age", "income", "region", "plan", "active"])
def test_column_summaries_merge_to_pandas(frame: pd.DataFrame, column: str) -> None:
    """Summaries of 4 uneven batches, merged in order, give pandas' statistics of the whole column."""
    series = frame[column]
    bounds = [0, 1, 5_000, 5_001, N]
    merged = ColumnSummary.of(series.iloc[0:1])
    for a, b in zip(bounds[1:-1], bounds[2:]):
        merged = merged.merge(ColumnSummary.of(series.iloc[a:b]))
    whole = ColumnStats(frame)
    split = ColumnStats(summaries={column: merged})
    present = series.dropna()
    counts = present.value_counts(sort=False)
    first_seen = list(pd.unique(present))
    if column in ("age", "income"):
        for stats in (whole, split):
            assert stats.std(column) == pytest.approx(series.std(), rel=1e-12)
            assert stats.median(column) == series.median()
            assert stats.range(column) == (series.min(), series.max())
    for stats in (whole, split):
        assert list(stats.levels(column)) == first_seen
        top = max(first_seen, key=lambda v: (counts[v], -first_seen.index(v)))
        assert stats.mode(column) == top


def test_median_and_mode_ties_are_exact() -> None:
    stats = ColumnStats(pd.DataFrame({"x": [3.0, np.nan, 1.0, 2.0, 10.0], "c": ["b", "a", "a", "b", None]}))
    assert stats.median("x") == 2.5
    assert stats.mode("c") == "b"  # both twice: the first seen wins
    assert stats.std("x") == pytest.approx(np.std([3.0, 1.0, 2.0, 10.0], ddof=1))
