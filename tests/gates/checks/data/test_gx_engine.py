"""Great Expectations engine: each expectation one check, GX's counts and severities carried over."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gates.checks.data import gx_engine
from gates.config import load_policy
from gates.errors import UserError
from gates.results import Status
from tests.gates.checks.data.conftest import RunData, mixed_frame, write_policy


def suite(*expectations: dict[str, Any]) -> str:
    """Return a suite as GX 1.x exports it."""
    items = [{"meta": {}, **e} for e in expectations]
    return json.dumps({"name": "eval_suite", "id": None, "expectations": items, "meta": {}, "notes": None})


def expect(kind: str, severity: str | None = None, **kwargs: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"type": f"expect_{kind}", "kwargs": kwargs}
    if severity is not None:
        item["severity"] = severity
    return item


def test_suite_counts_and_severities(run_data: RunData, tmp_path: Path) -> None:
    df = mixed_frame(500, seed=2)
    (tmp_path / "suite.json").write_text(suite(
        expect("column_values_to_be_between", column="age", min_value=30, max_value=80),
        expect("column_values_to_not_be_null", "critical", column="age"),
        expect("column_values_to_be_in_set", "warning", column="sex", value_set=["F", "M"]),
        expect("column_values_to_be_unique", "info", column="code"),
        expect("table_row_count_to_be_between", min_value=1000),
        expect("column_mean_to_be_between", column="income", min_value=0, max_value=1e9),
    ), encoding="utf-8")
    res = run_data(df, "{great_expectations: suite.json, max_failure_cases: 5}")
    age = df["age"].dropna()
    between = res["data.gx.expect_column_values_to_be_between[age]"]
    assert between.observed == int(((age < 30) | (age > 80)).sum())
    assert between.status is Status.FAIL and between.blocking
    assert between.threshold == {"min_value": 30, "max_value": 80}
    assert len(between.details["examples"]) == 5
    assert all(not 30 <= df["age"][e["index"]] <= 80 for e in between.details["examples"])
    assert res["data.gx.expect_column_values_to_not_be_null[age]"].observed == int(df["age"].isna().sum())
    in_set = res["data.gx.expect_column_values_to_be_in_set[sex]"]
    assert in_set.observed == int((df["sex"] == "X").sum())
    assert in_set.status is Status.WARN and not in_set.blocking
    unique = res["data.gx.expect_column_values_to_be_unique[code]"]
    assert unique.observed == int(df["code"].duplicated(keep=False).sum())
    assert unique.status is Status.WARN
    rows = res["data.gx.expect_table_row_count_to_be_between"]
    assert rows.status is Status.FAIL and rows.observed == len(df)
    mean = res["data.gx.expect_column_mean_to_be_between[income]"]
    assert mean.status is Status.PASS
    assert mean.observed == pytest.approx(df["income"].mean())


def test_missing_column_wrong_dtype_and_invalid_expectation(run_data: RunData, tmp_path: Path) -> None:
    df = mixed_frame(200).drop(columns=["income"])
    df["age"] = df["age"].astype(str)
    (tmp_path / "suite.json").write_text(suite(
        expect("column_to_exist", column="income"),
        expect("column_values_to_be_between", column="income", min_value=0),
        expect("column_values_to_be_of_type", column="age", type_="float64"),
        expect("column_values_to_be_between", column="age", min_value=0),
        expect("column_values_to_be_between", column="id", min_value="zero"),
        expect("no_such_expectation", column="id"),
    ), encoding="utf-8")
    res = run_data(df, "great_expectations: suite.json")
    for check_id in ("data.gx.expect_column_to_exist[income]", "data.gx.expect_column_values_to_be_between[income]"):
        assert res[check_id].status is Status.FAIL
        assert res[check_id].reason == "missing_column"
        assert res[check_id].observed == len(df)
    of_type = res["data.gx.expect_column_values_to_be_of_type[age]"]
    assert of_type.status is Status.FAIL
    assert of_type.observed == int(df["age"].notna().sum())
    assert res["data.gx.expect_column_values_to_be_between[age]"].status is Status.ERROR
    for check_id in ("data.gx.expect_column_values_to_be_between[id]", "data.gx.expect_no_such_expectation[id]"):
        assert res[check_id].status is Status.ERROR
        assert res[check_id].reason == "schema_error"


def test_duplicate_expectations_get_distinct_ids() -> None:
    items = [expect("column_values_to_be_between", column="a", min_value=0),
             expect("column_values_to_be_between", column="a", max_value=9),
             expect("column_pair_values_to_be_equal", column_A="a", column_B="b")]
    assert gx_engine.check_names(items) == [("expect_column_values_to_be_between#0", "a"),
                                            ("expect_column_values_to_be_between#1", "a"),
                                            ("expect_column_pair_values_to_be_equal", "a&b")]


def test_suite_problems_are_config_errors(tmp_path: Path) -> None:
    df = mixed_frame(50)
    path = write_policy(tmp_path, df, "great_expectations: missing.json")
    with pytest.raises(UserError, match=r"gates.data.great_expectations: file not found: missing.json"):
        load_policy(path)
    (tmp_path / "old.json").write_text(json.dumps({"expectations": [{"expectation_type": "expect_x"}]}))
    path = write_policy(tmp_path, df, "great_expectations: old.json")
    with pytest.raises(UserError, match="not a Great Expectations 1.x suite: expectation 0 has no 'type'"):
        load_policy(path)
    (tmp_path / "sev.json").write_text(suite(expect("column_to_exist", "fatal", column="id")))
    path = write_policy(tmp_path, df, "great_expectations: sev.json")
    with pytest.raises(UserError, match="severity 'fatal'"):
        load_policy(path)


def test_same_suite_on_the_reference(run_data: RunData, tmp_path: Path) -> None:
    df = mixed_frame(200)
    ref = df.assign(income=np.where(np.arange(len(df)) < 6, -1.0, df["income"]))
    (tmp_path / "suite.json").write_text(suite(expect("column_values_to_be_between", column="income", min_value=0)))
    res = run_data(df, "{great_expectations: suite.json, apply_to: [eval, reference]}", reference=ref)
    assert res["data.gx.expect_column_values_to_be_between[income]"].observed == 0
    assert res["data.reference.gx.expect_column_values_to_be_between[income]"].observed == 6
