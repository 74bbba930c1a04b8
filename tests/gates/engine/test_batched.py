"""The embedded engine on Parquet: batched when every gate has partials, with the whole-frame run's report."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pandas as pd
import pytest

from gates.config import load_policy
from gates.context import EvalContext
from gates.datasets import partitions
from gates.engine.context import PARTITION_ROWS, BatchedContext
from gates.errors import UserError
from gates.policy import EngineSpec
from gates.reporters.json_report import check_to_dict
from gates.runner import RunOptions, make_context, run_policy, whole_frame_reason
from tests.conftest import whole_frame, write_parquet_parts
from tests.gates.checks.data.test_partitioned import messy
from tests.gates.checks.test_fairness_partitioned import fair_project
from tests.gates.checks.test_regression_partitioned import make_project

REPO = Path(__file__).resolve().parents[3]

DATA_POLICY = """\
version: 1
model: {name: demo, task: regression, candidate: {predictions: pred}, baseline: none}
data: {eval: eval, target: y, reference: ref}
gates:
  data:
    max_failure_cases: 4
    apply_to: [eval, reference]
    checks:
      row_count: {min: 10, max: 100}
      columns:
        age: {min: 18, max: 90, max_null_fraction: 0.01}
        city: {allowed: [Oslo, Bergen, Tromso], regex: "[A-Z][a-z]+"}
        code: {unique: true}
    drift:
      default: {method: psi, max: 0.05}
      columns: {city: {method: js, max: 0.01}, age: {method: ks, max: 0.1}}
    overlap: {}
  regression:
    bootstrap: 200
    slices: [city]
    metrics:
      mae: {max: 1.0}
      rmse: {max: 1.2}
"""


def same(want: Any, got: Any, where: str = "") -> None:
    """``got`` is ``want``: the same keys, lists and texts, floats to 1e-9 relative (merged sums round differently)."""
    if isinstance(want, float) and isinstance(got, float):
        assert got == pytest.approx(want, rel=1e-9, abs=1e-12), where
    elif isinstance(want, dict):
        assert isinstance(got, dict) and list(got) == list(want), where
        for k in want:
            same(want[k], got[k], f"{where}.{k}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), where
        for i, (a, b) in enumerate(zip(want, got)):
            same(a, b, f"{where}[{i}]")
    else:
        assert got == want, where


def same_checks(whole: Any, batched: Any) -> int:
    want = [check_to_dict(c) for c in whole.verdict.checks]
    got = [check_to_dict(c) for c in batched.verdict.checks]
    assert [c["id"] for c in got] == [c["id"] for c in want]
    for w, g in zip(want, got):
        same(w, g, w["id"])
    assert batched.verdict.passed == whole.verdict.passed
    return len(want)


def data_project(folder: Path) -> Path:
    write_parquet_parts(folder / "eval", messy(3000, 1, shift=4.0), 3, 300)
    write_parquet_parts(folder / "ref", messy(2500, 2), 2, 400)
    (folder / "gates.yaml").write_text(DATA_POLICY)
    return folder / "gates.yaml"


@pytest.mark.parametrize("project", [make_project, fair_project, data_project])
def test_a_distributable_policy_on_parquet_runs_in_batches_with_the_whole_frame_report(
        tmp_path: Path, project: Any) -> None:
    policy = load_policy(project(tmp_path))
    batched = run_policy(policy, options=RunOptions())
    whole = whole_frame(policy)
    assert isinstance(batched.context, BatchedContext) and type(whole.context) is EvalContext
    assert "eval_frame" not in batched.context.__dict__ and "reference" not in batched.context.__dict__  # never whole
    parts = partitions(policy.data.eval, PARTITION_ROWS)
    assert len(parts) == 3  # one per file: each file is smaller than PARTITION_ROWS
    assert batched.engine == {"kind": "local", "address": None, "workers": 1, "partitions": 3}
    assert whole.engine == {"kind": "local", "address": None, "workers": 1, "partitions": 1}
    assert same_checks(whole, batched) > 10
    assert batched.context.data_info == whole.context.data_info
    statuses = {c.status.value for c in batched.verdict.checks}
    assert "pass" in statuses and statuses - {"pass"}  # both outcomes are compared


def test_batches_of_many_partitions_per_file_give_the_same_report(tmp_path: Path) -> None:
    policy = load_policy(data_project(tmp_path))
    ctx = BatchedContext(policy, partition_rows=300)  # one row group each: 300, 300, 300, 100 rows per file
    batched = run_policy(policy, context=ctx)
    assert batched.engine["partitions"] == 12 and len(ctx.eval_partitions) == 12
    assert same_checks(whole_frame(policy), batched) > 10


def partitioned_not_distributable(policy: Any) -> set[str]:
    """The gates whose partitioned run (LocalEngine) reports a not_distributable check."""
    from gates.engine.context import PartitionedContext
    from gates.engine.local import LocalEngine

    result = run_policy(policy, context=PartitionedContext(policy, engine=LocalEngine()))
    return {c.gate for c in result.verdict.checks if c.reason == "not_distributable"}


VARIANTS = {
    "plain": ("data", ""),
    "leakage": ("data", "    leakage: {}\n"),
    "pandera unique": ("data", "    pandera: unique.yaml\n"),
    "pandera": ("data", "    pandera: plain.yaml\n"),
    "gx mean": ("data", "    great_expectations: mean.json\n"),
    "gx row-wise": ("data", "    great_expectations: rows.json\n"),
    "group auc": ("fairness", "      roc_auc_difference: {max: 0.2}\n"),
    "fairness": ("fairness", ""),
    "regression": ("regression", ""),
    "cluster": ("data", "CLUSTER"),
    "cluster with missing keys": ("data", "CLUSTER_AGE"),
    "robustness": ("robustness", "  robustness:\n    perturbations: {gaussian_noise: {columns: [mean_radius], scale: 0.1}}\n"
                                 "    metrics: {flip_rate: {max: 0.01}, accuracy: {max_drop: 0.05}}\n"),
    "robustness nwb ap": ("robustness", "  robustness:\n    perturbations: {missing: {rate: 0.1, impute: median}}\n"
                                        "    metrics: {average_precision: {no_worse_than_baseline: true}}\n"),
    "robustness shuffle": ("robustness", "  robustness:\n    perturbations: {missing: {rate: 0.1, impute: median}}\n"
                                         "    invariance: {columns: [mean_texture], method: shuffle}\n"
                                         "    metrics: {flip_rate: {max: 0.2}}\n"),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_the_up_front_decision_is_the_partitioned_gates_own(tmp_path: Path, variant: str) -> None:
    """Batched exactly when the partitioned gates would report no not_distributable check, and then
    with the whole-frame report; whatever a gate's partitioned form learns flows through its hook."""
    from tests.gates.checks.data.test_gx_engine import expect, suite

    gate, extra = VARIANTS[variant]
    if gate == "data":
        path = data_project(tmp_path)
        text = path.read_text()
        (tmp_path / "unique.yaml").write_text("schema_type: dataframe\ncolumns:\n  code: {dtype: int64, unique: true}\n")
        (tmp_path / "plain.yaml").write_text("schema_type: dataframe\ncolumns:\n  age: {dtype: float64, nullable: true,"
                                             " checks: {less_than_or_equal_to: 80}}\n")
        (tmp_path / "mean.json").write_text(suite(expect("column_mean_to_be_between", column="age", min_value=0,
                                                         max_value=200)))
        (tmp_path / "rows.json").write_text(suite(expect("column_values_to_be_between", column="age", min_value=20,
                                                         max_value=80)))
        if extra.startswith("CLUSTER"):  # age has nulls: each of those rows is a cluster of its own
            column = "age" if extra == "CLUSTER_AGE" else "code"
            text = text.replace("reference: ref}", f"reference: ref, cluster: {column}}}")
        else:
            text = text.replace("  regression:", extra + "  regression:")
    else:
        path = (fair_project if gate == "fairness" else make_project)(tmp_path)
        text = path.read_text() + extra
    path.write_text(text)
    policy = load_policy(path)
    reason = whole_frame_reason(policy)
    refused = partitioned_not_distributable(policy)
    assert (reason is None) == (not refused), (reason, refused)
    if reason is not None:
        assert reason.split(":")[0] in refused
        result = run_policy(policy)
        assert type(result.context) is EvalContext and result.engine["partitions"] == 1
        assert not any(c.reason == "not_distributable" for c in result.verdict.checks)
    else:
        batched = run_policy(policy)
        assert isinstance(batched.context, BatchedContext) and batched.engine["partitions"] == 3
        whole = whole_frame(policy)
        assert same_checks(whole, batched) > 3
        assert batched.context.data_info == whole.context.data_info  # with data.cluster: its clusters too


def test_a_gate_without_a_hook_reads_whole(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from gates.engine import runner

    policy = load_policy(data_project(tmp_path))
    assert whole_frame_reason(policy) is None
    monkeypatch.setattr(runner, "PARTITIONED", {k: v for k, v in runner.PARTITIONED.items() if k != "regression"})
    found = whole_frame_reason(policy)
    assert found is not None and found.startswith("regression: the regression gate does not run")
    assert whole_frame_reason(policy, RunOptions(only_gates=["data"])) is None  # only the gates that run count
    assert type(make_context(policy)) is EvalContext


def test_a_csv_eval_or_batches_false_reads_whole(tmp_path: Path) -> None:
    path = data_project(tmp_path)
    text = path.read_text()
    path.write_text(text + "engine: {kind: local, batches: false}\n")
    assert whole_frame_reason(load_policy(path)) == "engine.batches is false"
    pd.read_parquet(tmp_path / "eval").to_csv(tmp_path / "eval.csv", index=False)
    path.write_text(text.replace("eval: eval,", "eval: eval.csv,"))
    assert whole_frame_reason(load_policy(path)) == "eval.csv is not Parquet"
    assert type(make_context(load_policy(path))) is EvalContext


def test_batches_false_and_the_command_line(tmp_path: Path) -> None:
    path = make_project(tmp_path)
    path.write_text(path.read_text() + "engine: {kind: local, batches: false}\n")
    policy = load_policy(path)
    assert type(make_context(policy)) is EvalContext
    from gates.engine import resolve_spec

    assert resolve_spec(policy.engine, "local").batches is False  # --engine local keeps gates.yaml's batches
    assert resolve_spec(policy.engine, "dask").kind == "dask"
    path.write_text(path.read_text().replace("engine: {kind: local, batches: false}", "engine: {kind: dask, batches: true}"))
    with pytest.raises(UserError) as info:
        load_policy(path)
    assert "batches is a setting of engine kind local" in info.value.message
    assert str(info.value.location).startswith("gates.yaml:")


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gates", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "CI": "true"})


def test_the_cli_report_says_how_the_data_was_read(tmp_path: Path) -> None:
    path = make_project(tmp_path)
    batched = cli("run", "-c", str(path), "--no-register", "--ci", "none", "--report-dir", "b", cwd=tmp_path)
    path.write_text(path.read_text() + "engine: {kind: local, batches: false}\n")
    whole = cli("run", "-c", str(path), "--no-register", "--ci", "none", "--report-dir", "w", cwd=tmp_path)
    assert batched.returncode == whole.returncode, batched.stdout + batched.stderr
    got = json.loads((tmp_path / "b" / "report.json").read_text())
    want = json.loads((tmp_path / "w" / "report.json").read_text())
    jsonschema.validate(got, json.loads((REPO / "gates" / "schemas" / "report.schema.json").read_text()))
    assert got["run"]["engine"] == {"kind": "local", "address": None, "workers": 1, "partitions": 3}
    assert want["run"]["engine"]["partitions"] == 1
    assert got["data"] == want["data"]
    same(want["checks"], got["checks"], "checks")
    assert "curves" in want and got.get("curves") is None  # charts of rows: drawn only from the whole frame


def test_the_registry_signature_comes_from_one_partition(tmp_path: Path) -> None:
    policy = load_policy(make_project(tmp_path))
    ctx = BatchedContext(policy, partition_rows=64)
    sample = ctx.feature_sample()
    whole = pd.read_parquet(tmp_path / "eval")
    assert list(sample.columns) == list(policy.data.features)
    assert len(sample) == ctx.eval_partitions[0].rows < len(whole)
    pd.testing.assert_frame_equal(sample, whole[list(policy.data.features)].iloc[:len(sample)])
    assert sample.dtypes.tolist() == whole[list(policy.data.features)].dtypes.tolist()
    assert "eval_frame" not in ctx.__dict__


def test_a_batched_context_still_gives_the_whole_frame_on_first_use(tmp_path: Path) -> None:
    policy = load_policy(make_project(tmp_path))
    ctx = BatchedContext(policy)
    result = run_policy(policy, context=ctx)
    assert result.engine["partitions"] == 3 and "eval_frame" not in ctx.__dict__
    whole = EvalContext(policy)
    pd.testing.assert_frame_equal(ctx.frame, whole.frame)
    np.testing.assert_array_equal(ctx.y_true, whole.y_true)
    np.testing.assert_array_equal(ctx.predictions("candidate").scores, whole.predictions("candidate").scores)
    assert ctx.frame is ctx.frame  # read once


def test_a_pandera_check_on_the_whole_column_reads_whole(tmp_path: Path) -> None:
    """unique_values_eq judges the column's set of values: per partition it would fail where the data passes."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"y": rng.normal(size=3000), "pred": rng.normal(size=3000),
                          "city": np.where(np.arange(3000) < 2500, "Oslo", "Bergen")})
    write_parquet_parts(tmp_path / "eval", frame, 3, 1000)  # the last file alone holds Bergen
    (tmp_path / "schema.yaml").write_text("schema_type: dataframe\ncolumns:\n"
                                          "  city: {dtype: str, checks: {unique_values_eq: [Oslo, Bergen], "
                                          "isin: [Oslo, Bergen]}}\n")
    (tmp_path / "gates.yaml").write_text("version: 1\nmodel: {name: demo, task: regression, candidate: "
                                         "{predictions: pred}, baseline: none}\ndata: {eval: eval, target: y}\n"
                                         "gates:\n  data:\n    pandera: schema.yaml\n")
    policy = load_policy(tmp_path / "gates.yaml")
    found = whole_frame_reason(policy)
    assert found is not None and "the pandera check unique_values_eq" in found
    result = run_policy(policy)
    assert type(result.context) is EvalContext
    status = {c.id: c.status.value for c in result.verdict.checks}
    assert status["data.pandera.unique_values_eq[city]"] == "pass" and status["data.pandera.isin[city]"] == "pass"
    per_partition = {c.id: c for c in run_policy(policy, context=BatchedContext(policy)).verdict.checks}
    forced = per_partition["data.pandera.unique_values_eq[city]"]  # partitions forced: an error, never a guess
    assert (forced.status.value, forced.reason) == ("error", "not_distributable"), forced
    assert "the pandera check unique_values_eq" in forced.message
    assert per_partition["data.pandera.isin[city]"].status.value == "pass"
    (tmp_path / "schema.yaml").write_text("schema_type: dataframe\ncolumns:\n  city: {dtype: str, checks: "
                                          "{isin: [Oslo, Bergen], str_length: {min_value: 4}}}\n")
    assert whole_frame_reason(load_policy(tmp_path / "gates.yaml")) is None  # row-wise built-ins batch


def test_calibrate_on_a_batchable_policy_is_the_whole_frame_calibration(tmp_path: Path) -> None:
    """The calibration resamples rows: on a batched context it reads them whole on first use, and its
    numbers are those of the whole-frame context."""
    path = make_project(tmp_path)
    assert whole_frame_reason(load_policy(path)) is None
    batched = cli("calibrate", "-c", str(path), "--simulations", "100", "--json", cwd=tmp_path)
    path.write_text(path.read_text() + "engine: {kind: local, batches: false}\n")
    whole = cli("calibrate", "-c", str(path), "--simulations", "100", "--json", cwd=tmp_path)
    assert batched.returncode == whole.returncode == 0, batched.stdout + batched.stderr
    got, want = json.loads(batched.stdout), json.loads(whole.stdout)
    got["policy"].pop("sha256"), want["policy"].pop("sha256")  # the files differ by the engine line
    assert got == want and got["rows"] == len(pd.read_parquet(tmp_path / "eval")) and got["checks"]


def test_a_batched_run_loads_each_model_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The local engine hands its partitions the models the client loaded: no second load from bytes."""
    import gates.context
    import gates.engine.shipping
    import gates.models

    real = gates.models.load_model
    loads: list[str] = []

    def recorded(path: Path, *args: Any, **kwargs: Any) -> Any:
        loads.append(Path(path).name)
        return real(path, *args, **kwargs)

    for module in (gates.models, gates.engine.shipping, gates.context):
        monkeypatch.setattr(module, "load_model", recorded)
    monkeypatch.setattr(gates.engine.shipping, "_LOADED", {})  # no model kept from an earlier run in this process
    path = make_project(tmp_path)
    path.write_text(path.read_text() + VARIANTS["robustness"][1])  # two partitioned gates predict with both models
    result = run_policy(load_policy(path), options=RunOptions())
    assert isinstance(result.context, BatchedContext) and result.engine["partitions"] == 3
    assert {"regression", "robustness"} <= {c.gate for c in result.verdict.checks}
    assert not any(c.status.value == "error" for c in result.verdict.checks)
    assert sorted(loads) == ["baseline.skops", "candidate.skops"]  # loaded candidate first, once each
