"""Great Expectations on partitions: the value counts of a failed map expectation are GX's own, for
values that repeat among the first unexpected ones and across partitions."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from gates.checks.data import GATE
from gates.config import load_policy
from gates.context import EvalContext
from gates.engine.local import LocalEngine
from tests.conftest import write_parquet_parts
from tests.gates.checks.data.test_gx_engine import expect, suite
from tests.gates.checks.data.test_partitioned import POLICY, by_id, run_partitioned

CITIES = ["Oslo", "oslo", "Bergen", "BERGEN", "oslo", "Tromso", "oslo", "BERGEN", "x", "Oslo"]


def _project(tmp_path: Path, rows: int) -> tuple[Path, pd.DataFrame]:
    frame = pd.DataFrame({"city": [CITIES[i % len(CITIES)] for i in range(rows)], "y": [0.0] * rows, "pred": [0.0] * rows,
                          "n": range(rows)})
    write_parquet_parts(tmp_path / "eval", frame, 4, rows // 4)
    write_parquet_parts(tmp_path / "ref", frame, 1, rows)
    (tmp_path / "suite.json").write_text(suite(
        expect("column_values_to_be_in_set", column="city", value_set=["Oslo", "Bergen", "Tromso"]),
    ))
    (tmp_path / "gates.yaml").write_text(POLICY.format(eval="eval", reference="ref", section=(
        "    max_failure_cases: 6\n    great_expectations: suite.json")))
    return tmp_path / "gates.yaml", frame


@pytest.mark.parametrize("partition_rows", [3, 7, 40])
def test_repeated_unexpected_values_are_counted_as_gx_counts_them(tmp_path: Path, partition_rows: int) -> None:
    pytest.importorskip("great_expectations")
    config, frame = _project(tmp_path, 40)
    policy = load_policy(config)
    check = "data.gx.expect_column_values_to_be_in_set[city]"
    embedded = by_id(GATE.run(EvalContext(policy), policy.gates["data"]))[check]
    got = run_partitioned(config, LocalEngine(), partition_rows)[check]
    # independently: the first 6 unexpected values in row order, counted
    bad = [c for c in frame["city"] if c not in ("Oslo", "Bergen", "Tromso")][:6]
    want = sorted(({"value": v, "count": n} for v, n in Counter(bad).items()), key=lambda e: (-e["count"], e["value"]))
    assert want[0] == {"value": "oslo", "count": 3} and embedded["details"]["unexpected_values"] == want
    assert got["details"]["unexpected_values"] == want
    assert (got["status"], got["observed"], got["details"]["examples"]) == (
        embedded["status"], embedded["observed"], embedded["details"]["examples"])


def test_merged_partition_results_hold_gxs_own_value_counts(tmp_path: Path) -> None:
    """The merged result is the one GX gives for the whole frame: partial_unexpected_counts count each
    repeated value as often as it occurs among the first unexpected ones, not once per occurrence."""
    pytest.importorskip("great_expectations")
    from gates.checks.data.gx_engine import _build, _merged_result, _validate, measure_gx

    _, frame = _project(tmp_path, 40)
    items = [expect("column_values_to_be_in_set", column="city", value_set=["Oslo", "Bergen", "Tromso"])]
    built, _ = _build(items)
    whole = _validate(frame, built, 6)[0].result
    parts = [measure_gx(frame.iloc[i:i + 7], items, [0], 6).results[0] for i in range(0, 40, 7)]
    merged = _merged_result(parts, 1.0, 6).result
    assert whole["partial_unexpected_counts"] == [{"value": "oslo", "count": 3}, {"value": "BERGEN", "count": 2},
                                                  {"value": "x", "count": 1}]
    assert merged["partial_unexpected_counts"] == whole["partial_unexpected_counts"]
    assert merged["partial_unexpected_list"] == whole["partial_unexpected_list"]
