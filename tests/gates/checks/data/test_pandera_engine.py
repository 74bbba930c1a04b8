"""pandera engine: one check per declared (column, check), counted from pandera's own failure cases."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gates.checks.data import pandera_engine
from gates.config import load_policy
from gates.errors import UserError
from gates.results import Status
from tests.gates.checks.data.conftest import RunData, mixed_frame, write_policy

SCHEMA = """\
schema_type: dataframe
columns:
  age:
    dtype: float64
    nullable: false
    checks: {greater_than_or_equal_to: 30, less_than_or_equal_to: 80}
  sex:
    dtype: str
    checks: {isin: [F, M]}
  id:
    dtype: int64
    unique: true
"""

MODEL = """\
import pandera.pandas as pa
from pandera.typing import Series


class Eval(pa.DataFrameModel):
    age: Series[float] = pa.Field(ge=30, nullable=True)
    income: Series[float] = pa.Field(gt=0)
    missing: Series[int] = pa.Field(ge=0)
"""


def test_yaml_schema_counts_each_failing_check_like_pandas(run_data: RunData, tmp_path: Path) -> None:
    (tmp_path / "schema.yaml").write_text(SCHEMA, encoding="utf-8")
    df = mixed_frame(500, seed=1)
    df.loc[[1, 2], "id"] = 7
    res = run_data(df, "pandera: schema.yaml")
    age = df["age"].dropna()
    expected = {
        "data.pandera.not_nullable[age]": int(df["age"].isna().sum()),
        "data.pandera.greater_than_or_equal_to[age]": int((age < 30).sum()),
        "data.pandera.less_than_or_equal_to[age]": int((age > 80).sum()),
        "data.pandera.isin[sex]": int((~df["sex"].isin(["F", "M"])).sum()),
        "data.pandera.field_uniqueness[id]": int(df["id"].duplicated(keep=False).sum()),
    }
    for check_id, count in expected.items():
        assert count > 0, check_id
        assert res[check_id].status is Status.FAIL, check_id
        assert res[check_id].observed == count, check_id
    for check_id in ("data.pandera.dtype[age]", "data.pandera.column_in_dataframe[sex]", "data.pandera.dtype[id]"):
        assert res[check_id].status is Status.PASS
        assert res[check_id].observed == 0
    examples = res["data.pandera.isin[sex]"].details["examples"]
    assert len(examples) == 20  # max_failure_cases by default, never the whole table
    assert all(df["sex"][e["index"]] == e["value"] == "X" for e in examples)


def test_python_model_reference_with_missing_column(run_data: RunData, tmp_path: Path) -> None:
    (tmp_path / "my_schemas.py").write_text(MODEL, encoding="utf-8")
    df = mixed_frame(300)
    df.loc[:4, "income"] = -1.0
    res = run_data(df, "pandera: my_schemas:Eval")
    assert res["data.pandera.greater_than[income]"].observed == 5
    assert res["data.pandera.greater_than_or_equal_to[age]"].observed == int((df["age"] < 30).sum())
    missing = res["data.pandera.column_in_dataframe[missing]"]
    assert missing.status is Status.FAIL
    assert missing.observed == len(df)
    assert missing.reason == "missing_column"
    assert res["data.pandera.greater_than_or_equal_to[missing]"].status is Status.SKIPPED


def test_wrong_dtype_and_a_check_that_raises(run_data: RunData, tmp_path: Path) -> None:
    (tmp_path / "schema.yaml").write_text(SCHEMA, encoding="utf-8")
    df = mixed_frame(200)
    df["age"] = df["age"].astype(str)
    res = run_data(df, "{pandera: {schema: schema.yaml, severity: warn}, checks: {row_count: {min: 1}}}")
    dtype = res["data.pandera.dtype[age]"]
    assert dtype.status is Status.WARN and not dtype.blocking
    assert dtype.observed == int(df["age"].notna().sum())
    raised = res["data.pandera.greater_than_or_equal_to[age]"]
    assert raised.reason == "check_error"
    assert "TypeError" in raised.message


WIDE = """\
import pandera.pandas as pa

SCHEMA = pa.DataFrameSchema({"a": pa.Column(int), "b": pa.Column(int)}, unique=["a", "b"], strict=True,
                            checks=[pa.Check(lambda d: d["a"] < d["b"], name="a_below_b")])
"""


def test_dataframe_wide_checks_and_strict(run_data: RunData, tmp_path: Path) -> None:
    (tmp_path / "wide_schema.py").write_text(WIDE, encoding="utf-8")
    df = pd.DataFrame({"a": [1, 1, 2, 5], "b": [1, 1, 3, 4], "target": 0.0})
    res = run_data(df, "pandera: wide_schema:SCHEMA")
    unique = res["data.pandera.multiple_fields_uniqueness[a&b]"]
    assert unique.observed == 2  # rows 0 and 1 repeat (a, b)
    assert [e["index"] for e in unique.details["examples"]] == [0, 1]
    assert unique.details["examples"][0]["value"] == {"a": 1, "b": 1}
    assert res["data.pandera.a_below_b"].observed == 3  # rows 0, 1 and 3 have a >= b
    extra = res["data.pandera.column_in_schema"]
    assert extra.status is Status.FAIL
    assert extra.details["failure_cases"] == ["target", "pred"]


DOTTED = """\
import pandera.pandas as pa

SCHEMA = pa.DataFrameSchema({"a": pa.Column(int), "b": pa.Column(int)},
                            checks=[pa.Check(lambda d: d["a"] < d["b"], name="a.b"),
                                    pa.Check(lambda d: d["a"] <= 2, name="a_b"),
                                    pa.Check(lambda d: d["b"] > 0, name="in[0]")])
"""


def test_check_names_that_an_id_cannot_hold_are_escaped_so_no_two_share_an_id(run_data: RunData,
                                                                               tmp_path: Path) -> None:
    # a.b and a_b both read a_b once '.' became '_': now '.' is written \x2e, and '_' stays as it is
    (tmp_path / "dotted_schema.py").write_text(DOTTED, encoding="utf-8")
    df = pd.DataFrame({"a": [1, 1, 2, 5], "b": [1, 1, 3, 4], "target": 0.0})
    res = run_data(df, "pandera: dotted_schema:SCHEMA")
    pandera = {i: r for i, r in res.items() if i.startswith("data.pandera.")}
    assert pandera["data.pandera.a\\x2eb"].observed == int((df["a"] >= df["b"]).sum()) == 3
    assert pandera["data.pandera.a_b"].observed == int((df["a"] > 2).sum()) == 1
    assert pandera["data.pandera.in\\x5b0\\x5d"].status is Status.PASS
    assert (pandera["data.pandera.a\\x2eb"].key.kind, pandera["data.pandera.a\\x2eb"].key.name) == ("a\\x2eb", "pandera")


def test_an_object_that_is_not_a_schema_is_an_error(run_data: RunData, tmp_path: Path) -> None:
    (tmp_path / "not_schema.py").write_text("SCHEMA = 42\n", encoding="utf-8")
    res = run_data(mixed_frame(50), "pandera: not_schema:SCHEMA")
    assert res["data.pandera.schema"].status is Status.ERROR
    assert pandera_engine.MSG_NOT_SCHEMA.format(ref="not_schema:SCHEMA", kind="int") in res["data.pandera.schema"].message


def test_unloadable_schema_is_one_error_check(run_data: RunData, tmp_path: Path) -> None:
    (tmp_path / "schema.yaml").write_text("columns: [not, a, mapping, of, columns]\n", encoding="utf-8")
    res = run_data(mixed_frame(50), "pandera: schema.yaml")
    assert list(res) == ["data.pandera.schema"]
    assert res["data.pandera.schema"].status is Status.ERROR


def test_missing_schema_file_or_module_is_a_config_error(tmp_path: Path) -> None:
    path = write_policy(tmp_path, mixed_frame(50), "pandera: nowhere.yaml")
    with pytest.raises(UserError, match=r"gates.yaml:\d+: gates.data.pandera: cannot use the pandera schema: "
                                        r"file not found: nowhere.yaml"):
        load_policy(path)
    path = write_policy(tmp_path, mixed_frame(50), "pandera: no_such_module:Schema")
    with pytest.raises(UserError, match="cannot find Python module 'no_such_module'"):
        load_policy(path)


def test_reference_data_gets_the_schema_too(run_data: RunData, tmp_path: Path) -> None:
    (tmp_path / "schema.yaml").write_text(SCHEMA, encoding="utf-8")
    df = mixed_frame(200).assign(age=lambda d: d["age"].fillna(50).clip(30, 80))
    ref = df.copy()
    ref.loc[:2, "age"] = np.nan
    res = run_data(df, "{pandera: schema.yaml, apply_to: [eval, reference]}", reference=ref)
    assert res["data.pandera.not_nullable[age]"].observed == 0
    assert res["data.reference.pandera.not_nullable[age]"].observed == 3


def test_python_ref_pattern() -> None:
    assert pandera_engine.is_python_ref("pkg.schemas:Eval")
    assert not pandera_engine.is_python_ref("schemas/eval.yaml")
    assert not pandera_engine.is_python_ref("C:/schemas/eval.yaml")
