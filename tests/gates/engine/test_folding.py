"""Folding partials in partition order: tiered merges give the one-shot merge's table exactly."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest

from gates.checks.regression_scores import CELL, N, SB, SC, YPOS
from gates.engine.folding import Tiered
from gates.engine.local import LocalEngine


def score_table(seed: int, rows: int) -> pd.DataFrame:
    """One partition's score table: rows counted per (cell, positive, score, baseline score)."""
    rng = np.random.default_rng(seed)
    t = pd.DataFrame({CELL: rng.integers(0, 3, rows), YPOS: rng.random(rows) < 0.4,
                      SC: np.round(rng.random(rows), 2), SB: np.where(rng.random(rows) < 0.1, np.nan,
                                                                       np.round(rng.random(rows), 1))})
    return t.groupby([CELL, YPOS, SC, SB], dropna=False, sort=False).size().rename(N).reset_index()


def one_shot(tables: list[pd.DataFrame]) -> pd.DataFrame:
    merged = pd.concat(tables, ignore_index=True)
    return merged.groupby([CELL, YPOS, SC, SB], dropna=False, sort=False)[N].sum().reset_index()


def merge_tables(older: pd.DataFrame, newer: pd.DataFrame) -> pd.DataFrame:
    return one_shot([older, newer])


@pytest.mark.parametrize("sizes", [[50] * 37, [5, 400, 3, 3, 900, 1, 60, 60, 60, 2000, 7], [300]])
def test_tiered_merges_of_many_partitions_give_the_one_shot_table(sizes: list[int]) -> None:
    tables = [score_table(i, n) for i, n in enumerate(sizes)]
    tiered: Tiered[pd.DataFrame] = Tiered(merge_tables, len)
    for t in tables:
        tiered.add(t)
    pd.testing.assert_frame_equal(tiered.result(), one_shot(tables))


def test_tiered_merges_only_neighbours_in_order_and_each_entry_about_log_p_times() -> None:
    merged_sizes: list[int] = []

    def merge(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
        merged_sizes.append(len(a) + len(b))
        return a + b

    tiered: Tiered[tuple[int, ...]] = Tiered(merge, len)
    for i in range(64):
        tiered.add((i,))
    assert tiered.result() == tuple(range(64))
    assert sum(merged_sizes) == 64 * 6  # a balanced binary tree: every item merged log2(64) times
    empty: Tiered[tuple[int, ...]] = Tiered(merge, len)
    assert empty.result() is None


def count(item: int, offset: int) -> tuple[int, ...]:
    return (item + offset,)


def test_local_fold_computes_one_item_at_a_time_in_order() -> None:
    live: list[int] = []

    def computing(items: list[int]) -> Iterator[int]:
        yield from items

    def merge(total: list[Any], part: tuple[int, ...]) -> list[Any]:
        live.append(len(total))
        return [*total, *part]

    assert LocalEngine().fold(count, list(computing([3, 1, 2])), merge, [], offset=10) == [13, 11, 12]
    assert live == [0, 1, 2]


def test_the_data_gates_unique_counts_merged_tiered_are_those_of_all_the_rows() -> None:
    from gates.checks.data.partitioned import FramePartial, Merging

    rng = np.random.default_rng(7)
    words = [pd.Series(rng.choice(["a", "b", "c", "d", "e", "f"], size=int(rng.integers(1, 300)))) for _ in range(29)]
    merging = Merging(limit=3)
    for w in words:
        merging.add(FramePartial(rows=len(w), distinct={"w": w.value_counts(sort=False)}))
    total = merging.result()
    all_words = pd.concat(words, ignore_index=True)
    expected = all_words.value_counts(sort=False).reindex(pd.unique(all_words))
    assert total.rows == len(all_words)
    assert total.distinct["w"].index.tolist() == expected.index.tolist()  # first appearance order
    assert total.distinct["w"].tolist() == expected.tolist()


def test_the_robustness_score_tables_merged_tiered_are_the_left_fold_of_the_partials() -> None:
    from gates.checks.robustness.partitioned import (N as RN, SC as RSC, SETS, YPOS as RYPOS, MetricPartial,
                                                     Partial, ScoreTables, SidePartial, VersusPartial)
    from gates.stats import merge_all

    rng = np.random.default_rng(3)

    def scores(n: int) -> pd.DataFrame:
        t = pd.DataFrame({RYPOS: rng.random(n) < 0.5, RSC: np.round(rng.random(n), 2)})
        return t.groupby([RYPOS, RSC], dropna=False, sort=False).size().rename(RN).reset_index()

    def versus(n: int) -> pd.DataFrame:
        t = pd.DataFrame({RYPOS: rng.random(n) < 0.5, **{s: np.round(rng.random(n), 1) for s in SETS}})
        return t.groupby([RYPOS, *SETS], dropna=False, sort=False).size().rename(RN).reset_index()

    partials = []
    for _ in range(13):
        n = int(rng.integers(1, 200))
        partials.append(Partial(n, {}, {"candidate": {"roc_auc": MetricPartial(scores=scores(n))}},
                                (({"candidate": SidePartial(n, metrics={"roc_auc": MetricPartial(scores=scores(n))})},
                                  VersusPartial(scores=versus(n))),), {}, {}))
    tables = ScoreTables()
    kept: list[Any] = []
    for p in partials:
        kept = tables.keep(kept, p)
    merged = tables.result()
    clean = merge_all([p.clean["candidate"]["roc_auc"] for p in partials]).scores
    side = merge_all([p.points[0][0]["candidate"].metrics["roc_auc"] for p in partials]).scores
    vs = merge_all([p.points[0][1] for p in partials]).scores
    pd.testing.assert_frame_equal(merged[("clean", "candidate", "roc_auc")], clean)
    pd.testing.assert_frame_equal(merged[("side", 0, "candidate", "roc_auc")], side)
    pd.testing.assert_frame_equal(merged[("versus", 0)], vs)
    assert all(len(k.clean["candidate"]["roc_auc"].scores) == 0 and len(k.points[0][1].scores) == 0 for k in kept)
