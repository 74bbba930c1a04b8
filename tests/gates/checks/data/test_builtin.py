"""Built-in checks: each (column, rule) counted like a direct pandas expression; bad data never raises."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gates.checks.data import builtin
from gates.checks.data._common import Settings, Target
from gates.errors import UserError
from gates.results import CheckResult, Status
from tests.gates.checks.data.conftest import RunData, mixed_frame


def test_each_rule_counts_its_bad_rows_like_pandas(run_data: RunData) -> None:
    df = mixed_frame(600, seed=3)
    res = run_data(df, """
        checks:
          row_count: {min: 100, max: 500}
          columns:
            age: {min: 30, max: 80, max_null_fraction: 0.01}
            income: {max: 40000}
            sex: {allowed: [F, M]}
            code: {unique: true, regex: 'C[0-4]\\d\\d'}
        """)
    nonnull_age = df["age"].dropna()
    code = df["code"]
    expected = {
        "data.row_count.max": len(df),
        "data.min[age]": int((nonnull_age < 30).sum()),
        "data.max[age]": int((nonnull_age > 80).sum()),
        "data.max[income]": int((df["income"] > 40000).sum()),
        "data.allowed[sex]": int((~df["sex"].isin(["F", "M"])).sum()),
        "data.unique[code]": int(code.duplicated(keep=False).sum()),
        "data.regex[code]": sum(re.fullmatch(r"C[0-4]\d\d", c) is None for c in code),
    }
    for check_id, count in expected.items():
        assert count > 0, check_id  # the data really breaks each rule
        assert res[check_id].observed == count, check_id
        assert res[check_id].status is Status.FAIL, check_id
    nulls = res["data.null_fraction.max[age]"]
    assert nulls.observed == pytest.approx(df["age"].isna().mean())
    assert nulls.details["null_rows"] == int(df["age"].isna().sum())
    assert nulls.status is (Status.FAIL if df["age"].isna().mean() > 0.01 else Status.PASS)
    assert res["data.row_count.min"].status is Status.PASS


def test_passing_rules_report_zero(run_data: RunData) -> None:
    df = mixed_frame(200)
    res = run_data(df, """
        checks:
          required_columns: [id]
          columns:
            id: {unique: true, dtype: int, min: 0, max_null_fraction: 0}
            sex: {allowed: [F, M, X], dtype: string, regex: '[FMX]'}
        """)
    for r in res.values():
        assert r.status is Status.PASS, r.id
        assert r.observed == 0, r.id
    assert set(res) == {"data.required[id]", "data.required[sex]", "data.dtype[id]", "data.min[id]",
                        "data.unique[id]", "data.not_null[id]", "data.dtype[sex]", "data.allowed[sex]",
                        "data.regex[sex]"}


def test_examples_are_capped_and_name_rows(run_data: RunData) -> None:
    df = mixed_frame(300)
    res = run_data(df, """
        max_failure_cases: 4
        checks: {columns: {income: {min: 1000000000}}}
        """)
    r = res["data.min[income]"]
    assert r.observed == len(df)
    assert r.details["examples"] == [{"index": i, "value": float(df["income"][i])} for i in range(4)]


def test_unseen_categories_are_counted_by_value(run_data: RunData) -> None:
    df = mixed_frame(300)
    df.loc[[3, 5, 8], "sex"] = "Q"
    df.loc[9, "sex"] = "unknown"
    res = run_data(df, "checks: {columns: {sex: {allowed: [F, M, X]}}}")
    r = res["data.allowed[sex]"]
    assert r.observed == 4
    assert r.details["unexpected_values"] == [{"value": "Q", "count": 3}, {"value": "unknown", "count": 1}]
    assert [e["index"] for e in r.details["examples"]] == [3, 5, 8, 9]


def test_a_missing_required_column_fails_its_check(run_data: RunData) -> None:
    df = mixed_frame(100).drop(columns=["age"])
    res = run_data(df, "checks: {required_columns: [age, sex]}")
    assert res["data.required[age]"].status is Status.FAIL
    assert res["data.required[age]"].observed == len(df)
    assert res["data.required[age]"].message == builtin.MSG_MISSING.format(col="age", label="the eval data")
    assert res["data.required[sex]"].status is Status.PASS


@pytest.mark.parametrize("section, key, where", [
    ("checks: {columns: {age: {min: 0, max_null_fraction: 0}}}", "checks.columns.age", "the eval data (eval.parquet)"),
    ("leakage: {columns: [income, age]}", "leakage.columns[1]", "the eval data (eval.parquet)"),
    ("drift: {columns: {age: {method: psi}}}", "drift.columns.age", "the eval data (eval.parquet)"),
])
def test_a_rule_on_a_column_the_eval_data_lacks_is_a_config_error(run_data: RunData, tmp_path: Path, section: str,
                                                                  key: str, where: str) -> None:
    df = mixed_frame(100)
    with pytest.raises(UserError) as err:
        run_data(df.drop(columns=["age"]), section, reference=df)
    assert str(err.value).startswith(f"{_line_naming(tmp_path, 'age')}: gates.data.{key}: column 'age' is not in {where}")


@pytest.mark.parametrize("section, key", [
    ("drift: {columns: {age: {method: psi}}}", "drift.columns.age"),
    ("apply_to: [eval, reference]\ncheckss: {columns: {age: {min: 0}}}".replace("checkss", "checks"),
     "checks.columns.age"),
])
def test_a_rule_on_a_column_the_reference_lacks_is_a_config_error(run_data: RunData, tmp_path: Path, section: str,
                                                                   key: str) -> None:
    df = mixed_frame(100)
    with pytest.raises(UserError) as err:
        run_data(df, section, reference=df.drop(columns=["age"]))
    assert str(err.value).startswith(f"{_line_naming(tmp_path, 'age')}: gates.data.{key}: column 'age' is not in "
                                     "the reference data (reference.parquet)")


def _line_naming(folder: Path, word: str) -> str:
    """Return ``gates.yaml:N`` of the first line of the policy that holds ``word``."""
    lines = (folder / "gates.yaml").read_text(encoding="utf-8").splitlines()
    return f"gates.yaml:{next(i for i, line in enumerate(lines, 1) if word in line)}"


def test_rules_on_the_reference_need_their_columns_only_under_apply_to(run_data: RunData) -> None:
    df = mixed_frame(100)
    res = run_data(df, "drift: {}\nchecks: {columns: {age: {min: 0}}}", reference=df.drop(columns=["age"]))
    assert res["data.min[age]"].status is Status.PASS
    assert "data.reference.min[age]" not in res


def direct(frame: pd.DataFrame, section: dict[str, object]) -> dict[str, CheckResult]:
    """Run the built-in engine on a frame no file format can hold (mixed-type object columns)."""
    return {r.id: r for r in builtin.run_builtin(Target("eval", frame), section, Settings())}


def test_wrong_dtype_counts_values_of_the_wrong_type(run_data: RunData) -> None:
    df = mixed_frame(200)
    df["income"] = df["income"].astype(str)  # a numeric column shipped as text
    res = run_data(df, """
        checks:
          columns:
            income: {dtype: float, min: 0}
            sex: {dtype: int}
            age: {dtype: int}
        """)
    assert res["data.dtype[income]"].observed == len(df)
    assert res["data.dtype[income]"].details["pandas_dtype"] in ("str", "string", "object")
    assert res["data.min[income]"].observed == 0  # the text still holds numbers >= 0
    assert res["data.dtype[sex]"].observed == len(df)
    assert res["data.dtype[age]"].observed == 0  # whole numbers stored as float (nulls) are ints


def test_mixed_object_column_counts_each_odd_value() -> None:
    mixed = pd.Series([1, 2.5, "three", None, True, 7] * 20, dtype=object)
    res = direct(pd.DataFrame({"v": mixed}), {"columns": {"v": {"dtype": "numeric", "min": 2}}})
    assert res["data.dtype[v]"].observed == 40  # "three" and True, 20 times each
    expected_min = sum(1 for v in mixed if v is not None and (isinstance(v, str) or float(v) < 2))
    assert res["data.min[v]"].observed == expected_min


def test_min_on_text_counts_non_numbers(run_data: RunData) -> None:
    df = pd.DataFrame({"v": ["1", "x", "5", None, "-3"] * 10, "target": 0.0})
    res = run_data(df, "checks: {columns: {v: {min: 0}}}")
    assert res["data.min[v]"].observed == 20  # "x" is not a number, "-3" is below 0


def test_all_null_column_is_an_error_not_a_pass(run_data: RunData) -> None:
    df = mixed_frame(100).assign(empty=np.nan)
    res = run_data(df, "checks: {columns: {empty: {min: 0, allowed: [1], max_null_fraction: 0.5}}}")
    for check_id in ("data.min[empty]", "data.allowed[empty]"):
        assert res[check_id].status is Status.ERROR
        assert res[check_id].message == builtin.MSG_ALL_NULL.format(col="empty")
    assert res["data.null_fraction.max[empty]"].status is Status.FAIL
    assert res["data.null_fraction.max[empty]"].observed == 1.0


def test_empty_reference_fails_row_count_and_errors_rules(run_data: RunData) -> None:
    df = mixed_frame(100)
    res = run_data(df, """
        apply_to: [eval, reference]
        checks: {row_count: {min: 1}, columns: {age: {min: 0}}}
        """, reference=df.iloc[:0])
    assert res["data.row_count.min"].status is Status.PASS
    assert res["data.reference.row_count.min"].status is Status.FAIL
    assert res["data.reference.row_count.min"].observed == 0
    assert res["data.reference.min[age]"].status is Status.ERROR
    assert res["data.reference.min[age]"].reason == "no_rows"


def test_reference_gets_the_same_rules(run_data: RunData) -> None:
    df = mixed_frame(200)
    ref = df.copy()
    ref.loc[:9, "age"] = 150.0
    res = run_data(df.assign(age=df["age"].clip(upper=100)), """
        apply_to: [eval, reference]
        checks: {columns: {age: {max: 100}}}
        """, reference=ref)
    assert res["data.max[age]"].observed == 0
    assert res["data.reference.max[age]"].observed == 10


def test_severity_warn_turns_failures_into_warnings(run_data: RunData) -> None:
    df = mixed_frame(100)
    res = run_data(df, """
        checks:
          severity: warn
          columns: {income: {max: 1}, id: {max: 0, severity: block}}
        """)
    assert res["data.max[income]"].status is Status.WARN
    assert not res["data.max[income]"].blocking
    assert res["data.max[id]"].status is Status.FAIL


class _NoText:
    """A cell value whose text cannot be taken (as some driver objects behave)."""

    def __str__(self) -> str:
        raise ValueError("no text")

    __repr__ = object.__repr__


def test_a_rule_that_raises_on_odd_values_becomes_an_error() -> None:
    df = pd.DataFrame({"v": pd.Series([_NoText(), "a"] * 5, dtype=object)})
    with pytest.raises(ValueError):
        df["v"].astype("string")  # what the regex rule does; the gate must not raise
    by_id = direct(df, {"columns": {"v": {"regex": "a", "allowed": ["a"]}}})
    assert by_id["data.regex[v]"].status is Status.ERROR
    assert by_id["data.regex[v]"].reason == "check_error"
    assert "no text" in by_id["data.regex[v]"].message
    assert by_id["data.allowed[v]"].observed == 5  # the other rules still run
