"""The client's side of a partitioned run: what it learns about the data from the workers' partials."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gates.config import load_policy
from gates.context import EvalContext
from gates.datasets import Partition
from gates.engine.context import PartitionedContext
from gates.engine.local import LocalEngine

POLICY = """\
version: 1
model: {name: demo, task: regression, candidate: {predictions: pred}, baseline: none}
data: {eval: eval, target: y, cluster: c}
gates:
  regression:
    metrics: {mae: {max: 10}}
"""

#: per file, the cluster values of its rows (None: no cluster) in the Arrow type all files share;
#: a file with a missing integer reaches pandas as float64 (1.0), one without as int64 (1)
CLUSTERS: dict[str, tuple[pa.DataType, list[list[Any]]]] = {
    "integers, some files with missing ones": (pa.int64(), [
        [1, 2, 3, 3, 4],
        [3, None, 4, 5, None],
        [None, 6, 1, 7, 7],
        [8, 8, 2, 9, 1]]),
    "floats: integral, not, signed zeros": (pa.float64(), [
        [1.0, 1.5, 0.0, None, 2.0],
        [-0.0, 1.5, 3.0, 1.0, 2.5],
        [None, None, 2.5, 4.0, 1.0],
        [7.0, 7.0, 7.5, 0.0, 1.0]]),
    "texts": (pa.string(), [
        ["a", "1", "1.0", "C:\\new", None],
        ["", "a", None, "b", "1"],
        ["b", "C:\\new", "é", "", "x\ny"],
        [None, None, "a", "z", "1"]]),
    "booleans, some files with missing ones": (pa.bool_(), [
        [True, False, True, True, False],
        [None, True, None, False, True],
        [False, False, True, False, True],
        [None, None, None, True, None]]),
}


def clustered_project(folder: Path, kind: pa.DataType, files: list[list[Any]]) -> Path:
    """Parquet files whose rows carry ``files``' cluster values; every file's third row has no target."""
    rng = np.random.default_rng(0)
    (folder / "eval").mkdir()
    for i, values in enumerate(files):
        y = rng.normal(size=len(values))
        y[2] = np.nan
        pq.write_table(pa.table({"y": y, "pred": rng.normal(size=len(values)), "other": rng.normal(size=len(values)),
                                 "c": pa.array(values, type=kind)}), folder / "eval" / f"part-{i}.parquet")
    (folder / "gates.yaml").write_text(POLICY)
    return folder / "gates.yaml"


def by_hand(files: list[list[Any]]) -> int:
    """The scored rows' clusters counted from the values: each distinct one, and each missing one alone."""
    scored = [v for values in files for i, v in enumerate(values) if i != 2]
    return len({v for v in scored if v is not None}) + sum(v is None for v in scored)


@pytest.mark.parametrize("case", list(CLUSTERS))
def test_the_clusters_counted_from_partitions_are_the_embedded_count(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, case: str) -> None:
    kind, files = CLUSTERS[case]
    policy = load_policy(clustered_project(tmp_path, kind, files))
    read: list[tuple[str, ...] | None] = []
    real = Partition.read

    def recorded(self: Partition, columns: Any = None) -> Any:
        read.append(None if columns is None else tuple(columns))
        return real(self, columns)

    monkeypatch.setattr(Partition, "read", recorded)
    ctx = PartitionedContext(policy, engine=LocalEngine())
    found = ctx.n_clusters
    assert len(ctx.eval_partitions) == 4 and len(read) == 4
    assert all(columns is not None and sorted(columns) == ["c", "y"] for columns in read), read  # never the rest
    monkeypatch.undo()
    assert found == EvalContext(policy).data_info["eval"]["clusters"] == by_hand(files)
