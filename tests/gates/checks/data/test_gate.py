"""The data gate end to end: a real dataset with injected problems through every engine, config
validation, and the results rendered like any other gate's."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes

from gates.checks.data import GATE, MSG_MIN_ABOVE_MAX, MSG_NEEDS_REFERENCE, MSG_NO_P_VALUE
from gates.config import MSG_VACUOUS, load_policy
from gates.context import EvalContext
from gates.errors import UserError
from gates.identity import CheckId
from gates.results import Status
from tests.gates.checks.data.conftest import RunData, mixed_frame, write_policy
from tests.conftest import count_calls

N_NULL, N_HIGH, N_UNSEEN = 7, 5, 3

PANDERA = """\
schema_type: dataframe
columns:
  age: {dtype: float64, nullable: false, checks: {less_than_or_equal_to: 0.2}}
  sex: {dtype: str, nullable: false, checks: {isin: [F, M]}}
  bmi: {dtype: float64, nullable: false}
  s5: {dtype: float64, nullable: false}
  s6: {dtype: float64, nullable: false}
"""

GX_SUITE = {"name": "diabetes", "expectations": [
    {"type": "expect_column_values_to_be_between", "kwargs": {"column": "age", "max_value": 0.2}, "meta": {}},
    {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "sex", "value_set": ["F", "M"]}, "meta": {}},
    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "bmi"}, "meta": {}},
    {"type": "expect_column_values_to_be_of_type", "kwargs": {"column": "s5", "type_": "float64"}, "meta": {}},
    {"type": "expect_column_to_exist", "kwargs": {"column": "s6"}, "meta": {}},
]}

BUILTIN = """\
checks:
  required_columns: [s6]
  columns:
    age: {max: 0.2}
    sex: {allowed: [F, M]}
    bmi: {max_null_fraction: 0}
    s5: {dtype: float}
"""


def broken_diabetes() -> pd.DataFrame:
    """scikit-learn's diabetes data with five injected problems of known size."""
    df = load_diabetes(as_frame=True).frame
    df["sex"] = np.where(df["sex"] > 0, "M", "F")
    rows = np.random.default_rng(0).permutation(len(df))
    df.loc[rows[:N_NULL], "bmi"] = np.nan
    df.loc[rows[N_NULL:N_NULL + N_HIGH], "age"] = 1.0
    df.loc[rows[20:20 + N_UNSEEN], "sex"] = "Q"
    df["s5"] = df["s5"].map(lambda v: f"{v:.5f}")
    return df.drop(columns=["s6"])


@pytest.mark.parametrize("engine", ["builtin", "pandera", "gx"])
def test_every_injected_problem_is_its_own_failing_check(engine: str, run_data: RunData, tmp_path: Path) -> None:
    df = broken_diabetes()
    n = len(df)
    (tmp_path / "schema.yaml").write_text(PANDERA, encoding="utf-8")
    (tmp_path / "suite.json").write_text(json.dumps(GX_SUITE), encoding="utf-8")
    section = {"builtin": BUILTIN, "pandera": "pandera: schema.yaml",
               "gx": "great_expectations: suite.json"}[engine]
    expected = {
        "builtin": {"data.not_null[bmi]": N_NULL, "data.max[age]": N_HIGH, "data.allowed[sex]": N_UNSEEN,
                    "data.required[s6]": n, "data.dtype[s5]": n},
        "pandera": {"data.pandera.not_nullable[bmi]": N_NULL, "data.pandera.less_than_or_equal_to[age]": N_HIGH,
                    "data.pandera.isin[sex]": N_UNSEEN, "data.pandera.column_in_dataframe[s6]": n,
                    "data.pandera.dtype[s5]": n},
        "gx": {"data.gx.expect_column_values_to_not_be_null[bmi]": N_NULL,
               "data.gx.expect_column_values_to_be_between[age]": N_HIGH,
               "data.gx.expect_column_values_to_be_in_set[sex]": N_UNSEEN,
               "data.gx.expect_column_to_exist[s6]": n,
               "data.gx.expect_column_values_to_be_of_type[s5]": n},
    }[engine]
    res = run_data(df, section)
    failing = {i: r.observed for i, r in res.items() if r.status is Status.FAIL}
    assert failing == expected
    others = {r.status for i, r in res.items() if i not in expected}
    assert others <= ({Status.PASS} if engine == "builtin" else {Status.PASS, Status.SKIPPED})  # a schema's rules on s6


@pytest.mark.parametrize(("engine", "text", "typed"), [
    ("builtin", "data.max[age]", CheckId("data", "max", "", "age")),
    ("builtin", "data.required[s6]", CheckId("data", "required", "", "s6")),
    ("pandera", "data.pandera.less_than_or_equal_to[age]", CheckId("data", "pandera", "less_than_or_equal_to", "age")),
    ("gx", "data.gx.expect_column_values_to_be_in_set[sex]",
     CheckId("data", "gx", "expect_column_values_to_be_in_set", "sex")),
])
def test_every_data_check_carries_its_typed_id(engine: str, text: str, typed: CheckId, run_data: RunData,
                                               tmp_path: Path) -> None:
    (tmp_path / "schema.yaml").write_text(PANDERA, encoding="utf-8")
    (tmp_path / "suite.json").write_text(json.dumps(GX_SUITE), encoding="utf-8")
    section = {"builtin": BUILTIN, "pandera": "pandera: schema.yaml", "gx": "great_expectations: suite.json"}[engine]
    res = run_data(broken_diabetes(), section)
    assert all(r.check_id is not None and str(r.check_id) == r.id == i for i, r in res.items())
    assert res[text].check_id == typed


def test_a_reference_check_names_its_frame_in_the_name(run_data: RunData) -> None:
    df = broken_diabetes()
    res = run_data(df, """
        apply_to: [eval, reference]
        checks: {row_count: {min: 1}, columns: {bmi: {max_null_fraction: 0.5}}}
        """, reference=df)
    assert res["data.reference.null_fraction.max[bmi]"].check_id == CheckId("data", "reference.null_fraction", "max", "bmi")
    assert res["data.reference.row_count.min"].check_id == CheckId("data", "reference.row_count", "min")
    assert res["data.null_fraction.max[bmi]"].check_id == CheckId("data", "null_fraction", "max", "bmi")


def test_gate_reads_only_data(tmp_path: Path) -> None:
    df = mixed_frame(300)
    policy = load_policy(write_policy(tmp_path, df, "{checks: {columns: {age: {min: 0}}}, drift: {}}",
                                      reference=df))
    ctx = EvalContext(policy)
    GATE.run(ctx, policy.gates["data"])
    assert ctx._predictions == {}
    assert "candidate_model" not in vars(ctx) and "features" not in vars(ctx)


@pytest.mark.parametrize(("section", "key", "message"), [
    ("drift: {}", "gates.data.drift", MSG_NEEDS_REFERENCE.format(what="drift")),
    ("overlap: {max_fraction: 0}", "gates.data.overlap", MSG_NEEDS_REFERENCE.format(what="overlap")),
    ("{apply_to: [reference], checks: {row_count: {min: 1}}}", "gates.data.apply_to",
     MSG_NEEDS_REFERENCE.format(what="apply_to: reference")),
    ("checks: {columns: {age: {min: 9, max: 1}}}", "gates.data.checks.columns.age", MSG_MIN_ABOVE_MAX.format(lo=9, hi=1)),
    ("checks: {columns: {age: {regex: '(['}}}", "gates.data.checks.columns.age.regex", "invalid regular expression"),
])
def test_semantic_config_errors_name_file_line_and_key(section: str, key: str, message: str, tmp_path: Path) -> None:
    path = write_policy(tmp_path, mixed_frame(50), section)
    with pytest.raises(UserError) as err:
        load_policy(path)
    assert str(err.value).startswith("gates.yaml:")
    assert f": {key}: {message}" in str(err.value)


def test_p_value_floor_needs_a_test_with_a_p_value(tmp_path: Path) -> None:
    df = mixed_frame(50)
    path = write_policy(tmp_path, df, "drift: {columns: {age: {method: psi, min_p_value: 0.05}}}", reference=df)
    with pytest.raises(UserError, match=MSG_NO_P_VALUE.format(method="psi")):
        load_policy(path)


def test_schema_rejects_unknown_keys_and_methods(tmp_path: Path) -> None:
    df = mixed_frame(50)
    path = write_policy(tmp_path, df, "drift: {default: {method: kl}}", reference=df)
    with pytest.raises(UserError, match="gates.data.drift.default.method: expected one of psi, js"):
        load_policy(path)
    path = write_policy(tmp_path, df, "checks: {columns: {age: {minimum: 0}}}")
    with pytest.raises(UserError, match=r"unknown key 'minimum' \(did you mean 'min'\?\)"):
        load_policy(path)


def test_warn_only_data_gate_is_vacuous(tmp_path: Path) -> None:
    path = write_policy(tmp_path, mixed_frame(50), "{severity: warn, checks: {columns: {age: {min: 0}}}}")
    with pytest.raises(UserError, match=MSG_VACUOUS.split(",")[0]):
        load_policy(path)


def test_results_render_in_report_junit_and_markdown(tmp_path: Path) -> None:
    from gates.reporters.json_report import build_report, dumps, report_schema
    from gates.reporters.junit import render_junit
    from gates.reporters.markdown import render_markdown
    from gates.runner import run_policy

    df = broken_diabetes()
    ref = load_diabetes(as_frame=True).frame.assign(sex=lambda d: np.where(d["sex"] > 0, "M", "F"))
    path = write_policy(tmp_path, df, BUILTIN + "drift: {columns: {bmi: {method: ks}}}\noverlap: {}\n",
                        reference=ref)
    result = run_policy(load_policy(path))
    report = json.loads(dumps(build_report(result)))
    jsonschema.validate(report, report_schema())
    assert report["verdict"] == "fail"
    by_id = {c["id"]: c for c in report["checks"]}
    assert by_id["data.allowed[sex]"]["observed"] == N_UNSEEN
    assert by_id["data.drift.max[bmi]"]["ci_method"] == "ks"
    assert len(by_id["data.not_null[bmi]"]["details"]["examples"]) == N_NULL
    junit = ET.fromstring(render_junit(report))
    cases = {c.get("name"): c for c in junit.iter("testcase")}
    assert cases["data.allowed[sex]"].find("failure") is not None
    assert cases["data.required[s6]"].find("failure") is not None
    markdown = render_markdown(report)
    assert "`data.allowed[sex]`" in markdown
    assert "'value': 'Q'" in markdown


def test_a_column_name_with_a_line_break_gives_one_line_ids_the_schema_accepts(tmp_path: Path) -> None:
    from gates.reporters.json_report import build_report, dumps, report_schema
    from gates.reporters.junit import render_junit
    from gates.runner import run_policy

    df = broken_diabetes().rename(columns={"age": "age\nyears", "sex": "sex [M/F] 🚻"})
    path = write_policy(tmp_path, df, 'checks: {columns: {"age\\nyears": {max: 0.2}, "sex [M/F] 🚻": {allowed: [F, M]}}}')
    report = json.loads(dumps(build_report(run_policy(load_policy(path)))))
    jsonschema.validate(report, report_schema())
    by_id = {c["id"]: c for c in report["checks"]}
    assert by_id["data.max[age\\nyears]"]["observed"] == N_HIGH
    assert by_id["data.allowed[sex [M/F] 🚻]"]["observed"] == N_UNSEEN
    assert {"data.max[age\\nyears]", "data.allowed[sex [M/F] 🚻]"} <= {
        c.get("name") for c in ET.fromstring(render_junit(report)).iter("testcase")}


def test_the_section_is_parsed_once_per_run_into_a_frozen_plan(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    from gates.checks.data import _plan
    from gates.runner import run_policy

    parsed = count_calls(monkeypatch, _plan, "parse_plan")
    frame = mixed_frame()
    section = """\
        severity: warn
        apply_to: [eval, reference]
        checks:
          row_count: {min: 10, severity: block}
          columns:
            age: {max_null_fraction: 0.5}
        drift: {}
    """
    policy = load_policy(write_policy(tmp_path, frame, section, reference=mixed_frame(seed=1)))
    result = run_policy(policy)
    assert len(parsed) == 1 and parsed[0][0] == policy.gates["data"]
    plan = policy.plan("data")
    assert isinstance(plan, _plan.DataPlan) and plan.blocking and plan.on_reference
    assert plan.settings.severity == "warn" and plan.pandera is None
    assert plan.drift == _plan.DriftPlan({}, (), False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.blocking = False  # type: ignore[misc]
    checks = {c.id: c for c in result.verdict.checks if c.gate == "data" and not c.id.startswith("data.target.")}
    assert checks["data.row_count.min"].blocking and checks["data.reference.row_count.min"].blocking
    assert not checks["data.null_fraction.max[age]"].blocking
    # a mapping given to run directly is planned there, into the same checks
    again = GATE.run(EvalContext(policy), policy.gates["data"])
    assert {r.id: r.status for r in again} == {i: c.status for i, c in checks.items()}


@pytest.mark.parametrize("section", [
    {"checks": {"row_count": {"min": 1}}},
    {"severity": "warn", "checks": {"row_count": {"min": 1}}},
    {"severity": "warn", "checks": {"row_count": {"min": 1, "severity": "block"}}},
    {"drift": {}}, {"severity": "warn", "drift": {}}, {"pandera": {"schema": "s.yaml", "severity": "warn"}},
    {"severity": "warn", "great_expectations": {"suite": "s.json", "severity": "block"}},
])
def test_the_plan_blocks_like_the_section(section: dict[str, object]) -> None:
    from gates.checks.data import _plan, declares_blocking
    from gates.checks import declares_blocking_default

    plan = _plan.parse_plan(section)
    expected = declares_blocking_default(section, _plan.CHECK_KEYS) or (
        section.get("severity", "block") == "block" and any(section.get(k) == {} for k in _plan.DEFAULTED_KEYS))
    assert declares_blocking(plan) is declares_blocking(section) is expected
    for key in ("pandera", "great_expectations"):
        body = section.get(key)
        if isinstance(body, dict):
            engine = getattr(plan, key)
            assert engine.is_blocking is (body.get("severity", section.get("severity", "block")) == "block")
