"""A grouping's sizes: counted from its row codes, or given when the codes are not the rows'."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from gates.stats.grouping import Grouping


def test_sizes_are_counted_from_the_codes_or_given_without_writing_into_the_frozen_grouping() -> None:
    rows = Grouping(("region",), (("EU",), ("US",)), np.array([0, 1, 1, 0, 1]))
    np.testing.assert_array_equal(rows.sizes, [2, 3])
    # a client that merged partitions codes the distinct combinations, not rows: the counts are given
    combos = Grouping(("region",), (("EU",), ("US",)), np.array([0, 1]))
    given = dataclasses.replace(combos, counts=np.array([40, 60]))
    np.testing.assert_array_equal(given.sizes, [40, 60])
    np.testing.assert_array_equal(combos.sizes, [1, 1])  # the original is unchanged
    assert given.keys == combos.keys and given.codes is combos.codes
    with pytest.raises(dataclasses.FrozenInstanceError):
        given.counts = np.array([1, 1])  # type: ignore[misc]
