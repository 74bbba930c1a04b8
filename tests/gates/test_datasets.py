"""Data sources: one file, a folder of Parquet files or a glob; their hash, batches and partitions."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gates.config import load_policy
from gates.context import EvalContext
from gates.datasets import (
    MSG_EMPTY_FOLDER,
    MSG_EMPTY_GLOB,
    data_files,
    data_sha256,
    iter_batches,
    partitions,
)
from gates.errors import UserError
from gates.hashing import file_sha256
from gates.loading import read_table
from tests.conftest import scored_frame

POLICY = """\
version: 1
model:
  name: demo
  task: binary_classification
  candidate: {{predictions: cand_pred, scores: cand_score}}
  baseline: {{predictions: base_pred, scores: base_score}}
data:
  eval: "{eval}"
  target: label
gates:
  data:
    checks: {{row_count: {{min: 1}}}}
"""


def write_parts(folder: Path, frame: pd.DataFrame, pieces: int, row_group: int = 250) -> list[Path]:
    """Write ``frame`` as ``pieces`` Parquet files part-000.parquet ... in row order."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, chunk in enumerate(np.array_split(np.arange(len(frame)), pieces)):
        path = folder / f"part-{i:03d}.parquet"
        pq.write_table(pa.Table.from_pandas(frame.iloc[chunk], preserve_index=False), path, row_group_size=row_group)
        paths.append(path)
    return paths


@pytest.fixture
def frame() -> pd.DataFrame:
    return scored_frame(1000, seed=3)


def test_folder_and_glob_read_every_file_in_name_order(tmp_path: Path, frame: pd.DataFrame) -> None:
    write_parts(tmp_path / "eval", frame, 3)
    (tmp_path / "eval" / "_SUCCESS").write_text("")
    for source in (tmp_path / "eval", tmp_path / "eval" / "part-*.parquet"):
        got = read_table(source)
        pd.testing.assert_frame_equal(got, frame.reset_index(drop=True))


def test_hidden_files_and_other_suffixes_are_not_data(tmp_path: Path, frame: pd.DataFrame) -> None:
    write_parts(tmp_path / "eval", frame, 2)
    (tmp_path / "eval" / ".part-000.parquet.crc").write_bytes(b"x")
    (tmp_path / "eval" / "README.txt").write_text("notes")
    assert [p.name for p in data_files(tmp_path / "eval")] == ["part-000.parquet", "part-001.parquet"]
    with pytest.raises(UserError, match="README.txt is not one"):
        data_files(tmp_path / "eval" / "*")


def test_sha256_of_a_folder_is_names_and_bytes_in_order(tmp_path: Path, frame: pd.DataFrame) -> None:
    paths = write_parts(tmp_path / "a", frame, 3)
    expected = hashlib.sha256()
    for p in paths:  # the documented construction, written out independently
        data = p.read_bytes()
        expected.update(p.name.encode() + b"\0" + len(data).to_bytes(8, "little") + data)
    assert data_sha256(tmp_path / "a") == expected.hexdigest()
    assert data_sha256(tmp_path / "a" / "*.parquet") == expected.hexdigest()
    write_parts(tmp_path / "b" / "nested", frame, 3)  # same files elsewhere: same hash
    assert data_sha256(tmp_path / "b" / "nested") == expected.hexdigest()
    paths[1].rename(paths[1].with_name("part-001b.parquet"))  # a rename changes it
    assert data_sha256(tmp_path / "a") != expected.hexdigest()
    single = tmp_path / "one.parquet"
    frame.to_parquet(single)
    assert data_sha256(single) == file_sha256(single)


def test_batches_and_partitions_cover_every_row_once_with_global_positions(tmp_path: Path,
                                                                           frame: pd.DataFrame) -> None:
    write_parts(tmp_path / "eval", frame, 3, row_group=100)
    batches = list(iter_batches(tmp_path / "eval", 128))
    assert max(len(b) for b in batches) <= 128
    joined = pd.concat(batches)
    assert list(joined.index) == list(range(len(frame)))
    pd.testing.assert_frame_equal(joined.reset_index(drop=True), frame)
    parts = partitions(tmp_path / "eval", 200)
    assert [p.offset for p in parts] == np.cumsum([0] + [p.rows for p in parts[:-1]]).tolist()
    assert sum(p.rows for p in parts) == len(frame)
    read = pd.concat([p.read(["label", "x"]) for p in parts])
    assert list(read.index) == list(range(len(frame)))
    np.testing.assert_array_equal(read["x"].to_numpy(), frame["x"].to_numpy())


def test_policy_accepts_folder_and_glob_and_reports_their_hash(tmp_path: Path, frame: pd.DataFrame) -> None:
    write_parts(tmp_path / "eval", frame, 2)
    for value in ("eval", "eval/*.parquet"):
        cfg = tmp_path / "gates.yaml"
        cfg.write_text(POLICY.format(eval=value))
        ctx = EvalContext(load_policy(cfg))
        assert ctx.n_rows == len(frame)
        assert ctx.data_info["eval"]["sha256"] == data_sha256(tmp_path / "eval")


@pytest.mark.parametrize(("value", "message"), [("empty", MSG_EMPTY_FOLDER.split("{")[0]),
                                                ("eval/*.csv", MSG_EMPTY_GLOB.split("{")[0]),
                                                ("missing/*.parquet", MSG_EMPTY_GLOB.split("{")[0])])
def test_empty_folder_or_glob_is_a_located_config_error(tmp_path: Path, frame: pd.DataFrame, value: str,
                                                        message: str) -> None:
    write_parts(tmp_path / "eval", frame, 1)
    (tmp_path / "empty").mkdir()
    cfg = tmp_path / "gates.yaml"
    cfg.write_text(POLICY.format(eval=value))
    with pytest.raises(UserError) as info:
        load_policy(cfg)
    assert info.value.location == "gates.yaml:8"
    assert message in info.value.message and "data.eval" in info.value.message


def test_files_with_different_schemas_are_a_user_error(tmp_path: Path, frame: pd.DataFrame) -> None:
    write_parts(tmp_path / "eval", frame, 1)
    pd.DataFrame({"label": ["a", "b"], "x": ["u", "v"]}).to_parquet(tmp_path / "eval" / "part-999.parquet")
    with pytest.raises(UserError):
        read_table(tmp_path / "eval")
