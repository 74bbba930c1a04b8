"""The data gate on partitions gives the embedded gate's checks: same ids, statuses, values, examples."""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from gates.checks.data import GATE
from gates.checks.data.partitioned import REASON_NOT_DISTRIBUTABLE
from gates.config import load_policy
from gates.context import EvalContext
from gates.engine.context import PartitionedContext
from gates.engine.local import LocalEngine
from gates.errors import UserError
from gates.reporters.json_report import check_to_dict
from gates.results import Status
from tests.conftest import write_parquet_parts

SECTION = """\
max_failure_cases: 4
pandera: schema.yaml
apply_to: [eval, reference]
checks:
  row_count: {min: 10, max: 100}
  required_columns: [zip]
  columns:
    age: {min: 18, max: 90, max_null_fraction: 0.01}
    income: {dtype: float, max_null_fraction: 0}
    city: {allowed: [Oslo, Bergen, Tromso], regex: "[A-Z][a-z]+"}
    code: {dtype: int, unique: true}
    seen: {min: 0}
drift:
  default: {method: psi, max: 0.05}
  columns:
    city: {method: js, max: 0.01}
    income: {method: chi2, min_p_value: 0.05}
    age: {method: ks, max: 0.1}
    seen: {method: wasserstein, max: 0.01}
  min_rows: 50
overlap: {}
"""

PANDERA = """\
schema_type: dataframe
columns:
  age: {dtype: float64, nullable: true, checks: {less_than_or_equal_to: 80}}
  city: {dtype: str, nullable: false, checks: {isin: [Oslo, Bergen]}}
  code: {dtype: int64, unique: true}
"""

POLICY = """\
version: 1
model: {{name: demo, task: regression, candidate: {{predictions: pred}}, baseline: none}}
data: {{eval: {eval}, target: y, reference: {reference}}}
gates:
  data:
{section}
"""


def messy(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    """Rows with nulls, values out of range, unknown cities, duplicated codes and a drifted column."""
    rng = np.random.default_rng(seed)
    age = rng.normal(45 + shift, 15, n).round()
    age[rng.random(n) < 0.03] = np.nan
    income = rng.lognormal(10 + shift / 20, 0.5, n)
    income[rng.random(n) < 0.01] = np.nan
    city = rng.choice(["Oslo", "Bergen", "Tromso", "oslo", "Paris"], n, p=[0.4, 0.3, 0.2, 0.05, 0.05])
    city = np.where(rng.random(n) < 0.02, None, city).astype(object)
    code = rng.integers(0, n * 5, n)
    return pd.DataFrame({"y": rng.normal(size=n), "pred": rng.normal(size=n), "age": age, "income": income,
                         "city": city, "code": code, "seen": rng.normal(size=n)})




@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A gates.yaml over an eval folder (3 files) and a reference folder (2 files) of messy rows."""
    write_parquet_parts(tmp_path / "eval", messy(3000, 1, shift=4.0), 3, 300)
    write_parquet_parts(tmp_path / "ref", messy(2500, 2), 2, 400)
    (tmp_path / "schema.yaml").write_text(PANDERA)
    section = "\n".join("    " + line for line in SECTION.splitlines())
    (tmp_path / "gates.yaml").write_text(POLICY.format(eval="eval", reference="ref", section=section))
    return tmp_path / "gates.yaml"


def by_id(results: list[Any]) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in (check_to_dict(c) for c in results)}


def compare(embedded: dict[str, dict[str, Any]], partitioned: dict[str, dict[str, Any]]) -> None:
    """Every check computed both ways agrees; the rest are not_distributable errors."""
    assert list(partitioned) == [i for i in embedded if i in partitioned]
    for cid, got in partitioned.items():
        want = embedded[cid]
        if got.get("reason") == REASON_NOT_DISTRIBUTABLE:
            assert got["status"] in ("error", "warn")
            continue
        assert got["status"] == want["status"], cid
        if want["observed"] is None:
            assert got["observed"] is None, cid
        else:
            assert got["observed"] == pytest.approx(want["observed"], rel=1e-9, abs=0), cid
        assert got["details"].get("examples") == want["details"].get("examples"), cid
        assert got["details"].get("unexpected_values") == want["details"].get("unexpected_values"), cid
        assert got["details"].get("bins") == want["details"].get("bins"), cid  # counts add exactly
        for key in ("p_value", "reference_null_fraction", "eval_null_fraction", "rows", "non_null"):
            if key in want["details"]:
                assert got["details"][key] == pytest.approx(want["details"][key], rel=1e-9), (cid, key)


def run_partitioned(config: Path, engine: Any, partition_rows: int) -> dict[str, dict[str, Any]]:
    ctx = PartitionedContext(load_policy(config), engine=engine, partition_rows=partition_rows)
    from gates.engine.runner import run_gate

    return by_id(run_gate(ctx, "data", ctx.policy.gates["data"]))


def test_partitions_reproduce_the_embedded_gate(project: Path) -> None:
    policy = load_policy(project)
    embedded = by_id(GATE.run(EvalContext(policy), policy.gates["data"]))
    partitioned = run_partitioned(project, LocalEngine(), 250)
    compare(embedded, partitioned)
    # the interesting checks really failed, so the comparison compared something
    failing = {i for i, c in partitioned.items() if c["status"] == "fail"}
    assert {"data.min[age]", "data.allowed[city]", "data.regex[city]", "data.not_null[income]",
            "data.drift.max[city]", "data.row_count.max",
            "data.required[zip]"} <= failing
    assert partitioned["data.allowed[city]"]["observed"] == embedded["data.allowed[city]"]["observed"] > 100
    assert len(partitioned["data.allowed[city]"]["details"]["examples"]) == 4
    assert any("pandera" in i and partitioned[i]["status"] == "fail" for i in partitioned)
    # ks and wasserstein from merged value counts: the embedded statistics
    for cid in ("data.drift.max[age]", "data.drift.max[seen]"):
        got, want = partitioned[cid], embedded[cid]
        assert got.get("reason") != REASON_NOT_DISTRIBUTABLE and got["observed"] > 0, cid
        for key in ("statistic", "p_value", "distance", "reference_std"):
            if key in want["details"]:
                assert got["details"][key] == pytest.approx(want["details"][key], rel=1e-9), (cid, key)
    from scipy.stats import ks_2samp, wasserstein_distance

    ev, ref = pd.read_parquet(project.parent / "eval"), pd.read_parquet(project.parent / "ref")
    want_ks = ks_2samp(ref["age"].dropna(), ev["age"].dropna()).statistic
    assert partitioned["data.drift.max[age]"]["observed"] == pytest.approx(want_ks, rel=1e-12)
    want_w = wasserstein_distance(ref["seen"], ev["seen"]) / ref["seen"].std(ddof=0)
    assert partitioned["data.drift.max[seen]"]["observed"] == pytest.approx(want_w, rel=1e-9)
    assert partitioned["data.drift.max[seen]"]["status"] == "fail"
    # unique: value counts merged over partitions, examples from a second pass, as embedded
    for cid in ("data.unique[code]", "data.reference.unique[code]"):
        assert partitioned[cid]["observed"] == embedded[cid]["observed"] > 0, cid
        assert partitioned[cid]["details"]["examples"] == embedded[cid]["details"]["examples"], cid
    codes = pd.read_parquet(project.parent / "eval")["code"]
    assert partitioned["data.unique[code]"]["observed"] == int(codes.duplicated(keep=False).sum())


def test_what_has_no_mergeable_form_is_an_error_not_a_guess(project: Path) -> None:
    got = run_partitioned(project, LocalEngine(), 250)
    nd = {i for i, c in got.items() if c.get("reason") == REASON_NOT_DISTRIBUTABLE}
    assert not {"data.drift.max[age]", "data.drift.max[seen]", "data.unique[code]",
                "data.reference.unique[code]", "data.overlap.max"} & nd
    assert all(got[i]["status"] == Status.ERROR.value for i in nd)
    # a pandera column's unique check counts the rows holding a value repeated in any partition
    policy = load_policy(project)
    embedded = by_id(GATE.run(EvalContext(policy), policy.gates["data"]))
    codes = pd.read_parquet(project.parent / "eval")["code"]
    for cid in ("data.pandera.field_uniqueness[code]", "data.reference.pandera.field_uniqueness[code]"):
        assert cid not in nd
        assert {k: got[cid][k] for k in ("status", "observed", "message", "details")} == {
            k: embedded[cid][k] for k in ("status", "observed", "message", "details")}, cid
    assert got["data.pandera.field_uniqueness[code]"]["observed"] == int(codes.duplicated(keep=False).sum()) > 0


def test_a_unique_over_several_pandera_columns_stays_not_distributable(project: Path) -> None:
    schema = project.parent / "schema.yaml"
    schema.write_text(PANDERA + "unique: [age, city]\n")
    got = run_partitioned(project, LocalEngine(), 250)
    nd = {i for i, c in got.items() if c.get("reason") == REASON_NOT_DISTRIBUTABLE}
    assert "data.pandera.multiple_fields_uniqueness[age&city]" in nd
    assert "data.pandera.field_uniqueness[code]" not in nd


def test_a_unique_reporting_some_duplicates_only_stays_not_distributable(project: Path) -> None:
    """Merged value counts give every row of a repeated value (report_duplicates: all); exclude_first
    counts one fewer per value, so it is not merged into a wrong count."""
    from gates.runner import whole_frame_reason

    schema = project.parent / "schema.yaml"
    schema.write_text(PANDERA.replace("code: {dtype: int64, unique: true}",
                                      "code: {dtype: int64, unique: true, report_duplicates: exclude_first}"))
    policy = load_policy(project)
    embedded = by_id(GATE.run(EvalContext(policy), policy.gates["data"]))["data.pandera.field_uniqueness[code]"]
    codes = pd.read_parquet(project.parent / "eval")["code"]
    assert embedded["observed"] == int(codes.duplicated(keep="first").sum()) > 0
    got = run_partitioned(project, LocalEngine(), 250)["data.pandera.field_uniqueness[code]"]
    assert (got["status"], got["reason"]) == ("error", REASON_NOT_DISTRIBUTABLE), got
    assert "report_duplicates" in (whole_frame_reason(policy) or "")


def test_one_partition_or_many_give_the_same_checks(project: Path) -> None:
    """Counts merge exactly; only a Wasserstein distance, a sum over value ranges, may round apart."""
    one = run_partitioned(project, LocalEngine(), 10**9)
    many = run_partitioned(project, LocalEngine(), 1)
    assert list(one) == list(many)
    differ = [cid for cid in one if one[cid] != many[cid]]
    assert all(one[cid]["details"]["method"] == "wasserstein" for cid in differ), differ
    compare(one, many)


@pytest.mark.parametrize("section, needle", [
    ("checks: {columns: {zip: {min: 0}}}", "gates.data.checks.columns.zip: column 'zip' is not in the eval data (eval)"),
    ("drift: {columns: {seen: {method: psi}}}",
     "gates.data.drift.columns.seen: column 'seen' is not in the reference data (ref)"),
])
def test_a_rule_on_a_missing_column_is_a_config_error_on_partitions_too(tmp_path: Path, section: str,
                                                                      needle: str) -> None:
    write_parquet_parts(tmp_path / "eval", messy(600, 1), 2, 100)
    write_parquet_parts(tmp_path / "ref", messy(500, 2).drop(columns=["seen"]), 1, 100)
    (tmp_path / "gates.yaml").write_text(POLICY.format(eval="eval", reference="ref", section="    " + section))
    ctx = PartitionedContext(load_policy(tmp_path / "gates.yaml"), engine=LocalEngine(), partition_rows=250)
    with pytest.raises(UserError, match=re.escape(needle)):
        ctx.schema  # noqa: B018


def test_overlap_from_the_reference_row_hashes(tmp_path: Path) -> None:
    ref = messy(1200, 2)
    ev = messy(900, 1)
    copied = ref.iloc[[5, 77, 300, 301, 999]].copy()
    ev = pd.concat([ev.iloc[:400], copied, ev.iloc[400:]], ignore_index=True)
    write_parquet_parts(tmp_path / "eval", ev, 3, 100)
    write_parquet_parts(tmp_path / "ref", ref, 2, 150)
    section = "    max_failure_cases: 3\n    overlap: {max_fraction: 0.001}\n"
    (tmp_path / "gates.yaml").write_text(POLICY.format(eval="eval", reference="ref", section=section))
    policy = load_policy(tmp_path / "gates.yaml")
    embedded = by_id(GATE.run(EvalContext(policy), policy.gates["data"]))
    got = run_partitioned(tmp_path / "gates.yaml", LocalEngine(), 120)
    compare(embedded, got)
    check = got["data.overlap.max"]
    assert check["details"]["rows"] == 5 and check["status"] == "fail"
    assert check["observed"] == pytest.approx(5 / len(ev), rel=1e-12)
    assert check["details"]["examples"] == embedded["data.overlap.max"]["details"]["examples"]
    assert len(check["details"]["examples"]) == 3


def test_per_example_score_columns_are_counted_on_partitions(tmp_path: Path) -> None:
    from gates.checks.data.scores import run_score_checks
    from gates.engine.runner import score_checks
    from tests.gates.test_per_example import evals, write

    df = evals()
    df["cand_correct"] = df["cand_correct"].astype(float)
    df.loc[[3, 700, 701, 1100], "cand_correct"] = [np.nan, np.inf, np.nan, -np.inf]
    df.loc[[9], "prod_ms"] = np.nan
    path = write(tmp_path, df, {"regression": {"metrics": {"correct": {"min": 0.1}}}})
    write_parquet_parts(tmp_path / "evals", df, 3, 100)
    path.write_text(path.read_text().replace("eval: evals.csv", "eval: evals"))
    policy = load_policy(path)
    embedded = by_id(run_score_checks(EvalContext(policy)))
    got = by_id(score_checks(PartitionedContext(policy, engine=LocalEngine(), partition_rows=150)))
    assert got == embedded
    assert got["data.scores.not_null[cand_correct]"]["observed"] == 4
    assert [e["index"] for e in got["data.scores.not_null[cand_correct]"]["details"]["examples"]] == [3, 700, 701, 1100]
    assert got["data.scores.not_null[prod_ms]"]["status"] == "fail"
    assert got["data.scores.not_null[cand_ms]"]["status"] == "pass"


def gx_project(tmp_path: Path) -> Path:
    """The messy eval folder with a Great Expectations suite: row-wise expectations (column,
    column-pair, multicolumn; with and without ``mostly``; a missing column) and two that are not."""
    from tests.gates.checks.data.test_gx_engine import expect, suite

    write_parquet_parts(tmp_path / "eval", messy(3000, 1, shift=4.0), 3, 300)
    (tmp_path / "suite.json").write_text(suite(
        expect("column_values_to_be_between", column="age", min_value=20, max_value=80),
        expect("column_values_to_be_in_set", "warning", column="city", value_set=["Oslo", "Bergen", "Tromso"],
               mostly=0.85),
        expect("column_values_to_be_in_set", column="city", value_set=["Oslo", "Bergen", "Tromso"], mostly=0.95),
        expect("column_values_to_not_be_null", column="income"),
        expect("column_values_to_match_regex", column="city", regex="^[A-Z]"),
        expect("column_pair_values_a_to_be_greater_than_b", column_A="income", column_B="seen"),
        expect("select_column_values_to_be_unique_within_record", column_list=["age", "code"]),
        expect("column_values_to_be_between", column="zip", min_value=0),
        expect("column_mean_to_be_between", column="age", min_value=0, max_value=200),
        expect("column_values_to_be_unique", "info", column="code"),
    ))
    write_parquet_parts(tmp_path / "ref", messy(500, 2), 1, 500)
    (tmp_path / "gates.yaml").write_text(POLICY.format(eval="eval", reference="ref", section=(
        "    max_failure_cases: 5\n    great_expectations: suite.json")))
    return tmp_path / "gates.yaml"


@pytest.mark.parametrize("partition_rows", [250, 3000])
def test_row_wise_expectations_run_per_partition_and_merge_into_the_embedded_checks(
        tmp_path: Path, partition_rows: int) -> None:
    pytest.importorskip("great_expectations")
    config = gx_project(tmp_path)
    policy = load_policy(config)
    embedded = by_id(GATE.run(EvalContext(policy), policy.gates["data"]))
    got = run_partitioned(config, LocalEngine(), partition_rows)
    assert list(got) == list(embedded) and len(got) == 10
    nd = {i for i, c in got.items() if c.get("reason") == REASON_NOT_DISTRIBUTABLE}
    assert nd == {"data.gx.expect_column_mean_to_be_between[age]", "data.gx.expect_column_values_to_be_unique[code]"}
    assert "expect_column_mean_to_be_between on 'age'" in got["data.gx.expect_column_mean_to_be_between[age]"]["message"]
    assert got["data.gx.expect_column_values_to_be_unique[code]"]["status"] == "warn"  # info: never blocks
    compare(embedded, got)
    for cid in set(got) - nd:
        assert (got[cid]["message"], got[cid]["details"]) == (embedded[cid]["message"], embedded[cid]["details"]), cid
    status = {i.split(".", 2)[2]: c["status"] for i, c in got.items()}
    assert status["expect_column_values_to_be_in_set#1[city]"] == "pass"   # about 10% unexpected, mostly 0.85
    assert status["expect_column_values_to_be_in_set#2[city]"] == "fail"   # mostly 0.95
    assert status["expect_column_values_to_not_be_null[income]"] == "fail"
    assert status["expect_column_values_to_be_between[zip]"] == "fail"
    # the counts are the data's own, and the examples the first rows of the whole source
    frame = pd.read_parquet(tmp_path / "eval")
    age = frame["age"].dropna()
    between = got["data.gx.expect_column_values_to_be_between[age]"]
    assert between["observed"] == int(((age < 20) | (age > 80)).sum()) > 0
    bad = frame.index[frame["age"].notna() & ((frame["age"] < 20) | (frame["age"] > 80))]
    assert [e["index"] for e in between["details"]["examples"]] == bad[:5].tolist()
    assert got["data.gx.expect_column_values_to_be_between[zip]"]["observed"] == 3000


SEVERITIES = """\
severity: warn
apply_to: [eval, reference]
checks:
  severity: block
  row_count: {min: 10, severity: warn}
  required_columns: [zip]
  columns:
    age: {max: 90, max_null_fraction: 0.01, severity: warn}
    city: {allowed: [Oslo, Bergen]}
drift:
  severity: block
  default: {severity: warn}
  columns:
    income: {severity: block}
    city: {}
overlap: {severity: block}
leakage: {columns: [income]}
"""


def test_each_rule_severity_is_resolved_at_load_most_specific_first(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import pickle

    from gates.checks.data import _plan

    write_parquet_parts(tmp_path / "eval", messy(900, 1, shift=4.0), 3, 100)
    write_parquet_parts(tmp_path / "ref", messy(800, 2), 2, 100)
    section = "\n".join("    " + line for line in SEVERITIES.splitlines())
    (tmp_path / "gates.yaml").write_text(POLICY.format(eval="eval", reference="ref", section=section))
    policy = load_policy(tmp_path / "gates.yaml")
    plan = policy.plan("data")
    assert isinstance(plan, _plan.DataPlan) and plan.checks is not None and plan.drift is not None
    assert plan.overlap is not None and plan.leakage is not None
    # the rule's own severity, else its column's or section's (drift: its default's), else the gate's
    assert plan.checks.row_count_blocking is False
    assert [(c.name, c.blocking) for c in plan.checks.required] == [("zip", True), ("age", False), ("city", True)]
    assert [(c.name, c.blocking) for c in plan.checks.columns] == [("age", False), ("city", True)]
    assert plan.drift.named == (("income", True), ("city", False)) and plan.drift.default_blocking is False
    assert plan.drift.blocking("income") and not plan.drift.blocking("seen")
    assert plan.overlap.blocking is True and plan.leakage.blocking is False
    assert pickle.loads(pickle.dumps(plan)) == plan  # it goes to the workers

    def expected(cid: str) -> bool:
        if ".drift." in cid:
            return cid.endswith("[income]")
        if ".leakage." in cid or ".row_count." in cid or cid.endswith("[age]"):
            return False
        return True  # overlap, zip and city

    def resolving(*severities: object) -> bool:
        raise AssertionError(f"a severity was resolved after load: {severities}")

    monkeypatch.setattr(_plan, "is_blocking", resolving)
    embedded = by_id(GATE.run(EvalContext(policy), plan))
    from gates.engine.runner import run_gate

    partitioned = by_id(run_gate(PartitionedContext(policy, engine=LocalEngine(), partition_rows=200), "data", plan))
    for got in (embedded, partitioned):
        blocking = {cid: c["blocking"] for cid, c in got.items() if not cid.startswith("data.target.")}
        assert blocking == {cid: expected(cid) for cid in blocking}
        for needle in (".row_count.", ".required[", ".max[age]", ".allowed[city]", ".drift.", "data.overlap.",
                       "data.leakage."):
            assert any(needle in cid for cid in blocking), needle
        assert {blocking[c] for c in blocking if ".drift." in c} == {True, False}
        assert "data.reference.required[zip]" in blocking


@pytest.mark.parametrize("column", ["city", "'^ci.*'"])
def test_a_pandera_check_on_the_whole_column_is_an_error_on_partitions(tmp_path: Path, column: str) -> None:
    """unique_values_eq judges the column's set of values: a partition holding only Oslo would fail
    it where the data passes, so on partitions it is not_distributable, named, never a guess."""
    frame = pd.DataFrame({"y": np.arange(300.0), "pred": np.arange(300.0),
                          "city": np.where(np.arange(300) < 200, "Oslo", "Bergen")})
    frame.to_parquet(tmp_path / "eval.parquet", row_group_size=100)
    regex = ", regex: true" if column.startswith("'") else ""
    (tmp_path / "schema.yaml").write_text(f"schema_type: dataframe\ncolumns:\n  {column}: {{dtype: str{regex}, "
                                          "checks: {unique_values_eq: [Oslo, Bergen], isin: [Oslo, Bergen]}}\n")
    (tmp_path / "gates.yaml").write_text("version: 1\nmodel: {name: demo, task: regression, candidate: "
                                         "{predictions: pred}, baseline: none}\ndata: {eval: eval.parquet, target: y}\n"
                                         "gates:\n  data:\n    pandera: schema.yaml\n")
    policy = load_policy(tmp_path / "gates.yaml")
    whole = by_id(GATE.run(EvalContext(policy), policy.gates["data"]))
    # the data passes (a passing check on regex-matched columns is not listed, as pandera names none)
    assert whole.get("data.pandera.unique_values_eq[city]", {"status": "pass"})["status"] == "pass"
    got = run_partitioned(tmp_path / "gates.yaml", LocalEngine(), 100)
    check = got["data.pandera.unique_values_eq[city]"]
    assert (check["status"], check["reason"]) == ("error", "not_distributable"), check
    assert "unique_values_eq" in check["message"]
    assert got.get("data.pandera.isin[city]", {"status": "pass"})["status"] == "pass"  # value by value: merged


def test_a_custom_check_named_like_a_row_wise_built_in_is_still_judged_whole(tmp_path: Path) -> None:
    """A check is row-wise by its function, not its name: a custom ``in_range`` on the column's spread
    would pass per partition (each spans less than 10) where the data fails (it spans 39)."""
    from gates.runner import whole_frame_reason

    pd.DataFrame({"y": np.arange(40.0), "pred": np.arange(40.0), "x": np.arange(40.0)}).to_parquet(
        tmp_path / "eval.parquet", row_group_size=8)
    (tmp_path / "myschema.py").write_text(
        "import pandera.pandas as pa\n"
        "schema = pa.DataFrameSchema({'x': pa.Column(float, pa.Check(lambda s: s.max() - s.min() < 10, "
        "name='in_range'))})\n")
    (tmp_path / "gates.yaml").write_text("version: 1\nmodel: {name: demo, task: regression, candidate: "
                                         "{predictions: pred}, baseline: none}\ndata: {eval: eval.parquet, target: y}\n"
                                         "gates:\n  data:\n    pandera: myschema:schema\n")
    policy = load_policy(tmp_path / "gates.yaml")
    assert by_id(GATE.run(EvalContext(policy), policy.gates["data"]))["data.pandera.in_range[x]"]["status"] == "fail"
    assert "the pandera check in_range" in (whole_frame_reason(policy) or "")  # the local engine reads whole
    check = run_partitioned(tmp_path / "gates.yaml", LocalEngine(), 8)["data.pandera.in_range[x]"]
    assert (check["status"], check["reason"]) == ("error", "not_distributable"), check


class TellingEngine(LocalEngine):
    """The in-process engine, telling a call made inside a partition task from one on the client."""

    def __init__(self) -> None:
        self.in_task = False

    def _task(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def task(*args: Any, **kwargs: Any) -> Any:
            self.in_task = True
            try:
                return fn(*args, **kwargs)
            finally:
                self.in_task = False
        return task

    def map(self, fn: Callable[..., Any], items: Sequence[Any], **shared: Any) -> list[Any]:
        return super().map(self._task(fn), items, **shared)

    def fold(self, fn: Callable[..., Any], items: Sequence[Any], merge: Callable[[Any, Any], Any], initial: Any,
             **shared: Any) -> Any:
        return super().fold(self._task(fn), items, merge, initial, **shared)

    def fold_keeping(self, fn: Callable[..., Any], items: Sequence[Any], split: Callable[[Any], tuple[Any, Any]],
                     merge: Callable[[Any, Any], Any], initial: Any, **shared: Any) -> tuple[Any, list[Any]]:
        return super().fold_keeping(self._task(fn), items, split, merge, initial, **shared)

    def then(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return super().then(self._task(fn), *args, **kwargs)


def record_calls(monkeypatch: pytest.MonkeyPatch, module: Any, name: str, engine: TellingEngine) -> list[bool]:
    """Wrap ``module.name`` so each call appends whether it ran inside a partition task."""
    calls: list[bool] = []
    original = getattr(module, name)

    def recording(*args: Any, **kwargs: Any) -> Any:
        calls.append(engine.in_task)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, recording)
    return calls


def test_the_pandera_schema_is_loaded_once_on_the_client(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its unique columns and its checks judged whole are read from one load, for eval and reference
    alike; each partition still loads it to validate its own rows."""
    from gates.checks.data import pandera_engine
    from gates.checks.data.partitioned import distributable
    from gates.engine.runner import run_gate

    want = run_partitioned(project, LocalEngine(), 250)
    engine = TellingEngine()
    loads = record_calls(monkeypatch, pandera_engine, "load_schema", engine)
    ctx = PartitionedContext(load_policy(project), engine=engine, partition_rows=250)
    got = by_id(run_gate(ctx, "data", ctx.policy.gates["data"]))
    assert got == want
    assert "data.reference.pandera.field_uniqueness[code]" in got
    assert loads.count(False) == 1
    assert loads.count(True) == len(ctx.eval_partitions) + len(ctx.reference_partitions) > 2
    loads.clear()
    assert distributable(ctx.policy.plan("data"), ctx.policy) is None
    assert loads == [False]


def test_the_expectation_suite_is_built_once_on_the_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its row-wise and other expectations are told apart from one build, which the merged checks
    read too; each partition builds its own to validate its rows."""
    pytest.importorskip("great_expectations")
    from gates.checks.data import gx_engine
    from gates.checks.data.partitioned import distributable
    from gates.engine.runner import run_gate

    config = gx_project(tmp_path)
    config.write_text(config.read_text() + "\n    apply_to: [eval, reference]\n")
    want = run_partitioned(config, LocalEngine(), 250)
    engine = TellingEngine()
    builds = record_calls(monkeypatch, gx_engine, "_build", engine)
    policy = load_policy(config)
    reason = distributable(policy.plan("data"), policy)
    assert reason is not None and "expect_column_mean_to_be_between" in reason
    assert builds == [False]
    builds.clear()
    ctx = PartitionedContext(policy, engine=engine, partition_rows=250)
    got = by_id(run_gate(ctx, "data", policy.gates["data"]))
    assert got == want
    assert "data.reference.gx.expect_column_values_to_be_between[age]" in got
    assert builds.count(False) == 1
    assert builds.count(True) == len(ctx.eval_partitions) + len(ctx.reference_partitions) > 2
