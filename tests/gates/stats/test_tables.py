"""Sums over the short axes of count tables equal numpy's own sums, bit for bit."""
from __future__ import annotations

import numpy as np
import pytest

from gates.stats.tables import SHORT_AXIS, axis_sum, diagonal_sum


@pytest.fixture
def tables() -> np.ndarray:
    """Multinomial replicate tables (B, S, K, K, Kb) of counts, as the gates draw them."""
    rng = np.random.default_rng(3)
    return rng.multinomial(20_000, rng.dirichlet(np.ones(5 * 2 * 2 * 2)), size=300).reshape(300, 5, 2, 2, 2) * 1.0


@pytest.mark.parametrize("axis", [-1, -2, -3, 1, 0, (-2, -1), (1, -1), (-3, -2, -1)])
def test_counts_sum_exactly_as_numpy(tables: np.ndarray, axis: int | tuple[int, ...]) -> None:
    got = axis_sum(tables, axis)
    want = tables.sum(axis=axis)
    assert got.shape == want.shape
    assert np.array_equal(got, want)


def test_fractions_sum_to_the_same_floats() -> None:
    a = np.random.default_rng(4).random((50, 3, 4))
    assert np.array_equal(axis_sum(a, -1), a.sum(axis=-1))
    assert np.array_equal(axis_sum(a, 1), a.sum(axis=1))


def test_a_long_axis_integers_and_empty_axes_fall_back_to_numpy() -> None:
    long = np.arange(3.0 * (SHORT_AXIS + 1)).reshape(3, SHORT_AXIS + 1)
    assert np.array_equal(axis_sum(long, -1), long.sum(axis=-1))
    ints = np.arange(12).reshape(3, 2, 2)
    assert axis_sum(ints, -1).dtype == ints.sum(axis=-1).dtype
    assert np.array_equal(axis_sum(ints, (-2, -1)), [6, 22, 38])
    assert axis_sum(np.zeros((4, 0)), -1).tolist() == [0.0] * 4


def test_the_result_is_a_new_array(tables: np.ndarray) -> None:
    before = tables.copy()
    out = axis_sum(tables, -1)
    out += 1
    assert np.array_equal(tables, before)


def test_diagonal_sum_is_the_trace() -> None:
    t = np.random.default_rng(5).integers(0, 100, (40, 3, 3, 3)).astype(float)
    assert np.array_equal(diagonal_sum(t), np.trace(t, axis1=-2, axis2=-1))
    # hand-made: rows 0 and 1 on the diagonal of a 2x2 table
    assert diagonal_sum(np.array([[[4.0, 1.0], [2.0, 7.0]]])).tolist() == [11.0]
    ints = np.arange(8).reshape(2, 2, 2)
    assert diagonal_sum(ints).tolist() == [3, 11]
