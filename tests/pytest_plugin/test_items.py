"""Collection and outcomes: one item per check, statuses mapped to pytest outcomes, -k, JUnit."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pandas as pd
import pytest
from gates.identity import CheckId, untyped
from pytest_model_gates.items import (
    HINT_ERROR,
    HINT_INCONCLUSIVE,
    MSG_SHADOW,
    declaring_line,
)
from sklearn.metrics import f1_score

from gates.config import load_policy
from gates.reporters._format import num
from gates.runner import run_policy
from tests.pytest_plugin.conftest import MIXED_POLICY, read_report, statuses

#: how each check status shows up in pytest
OUTCOME = {"pass": "passed", "warn": "passed", "waived": "passed", "fail": "failed",
           "inconclusive": "failed", "skipped": "skipped", "error": "error"}


def outcomes_by_nodeid(result: pytest.RunResult) -> dict[str, str]:
    """Return each item's outcome from the reports (an error is a failed setup)."""
    out: dict[str, str] = {}
    for rep in result.reprec.getreports("pytest_runtest_logreport"):
        if rep.when == "setup" and rep.failed:
            out[rep.nodeid] = "error"
        elif rep.when == "setup" and rep.skipped:
            out[rep.nodeid] = "skipped"
        elif rep.when == "call":
            out[rep.nodeid] = "skipped" if rep.skipped else rep.outcome
    return out


def test_collection_yields_one_item_per_check_of_the_engine(pytester, gate_project):
    path = gate_project("accuracy: {min: 0.5, max_drop: 0.05}\nroc_auc: {max_drop: 0.01}\nf1: {max: 0.99}")
    expected = [c.id for c in run_policy(load_policy(path)).verdict.checks]
    result = pytester.runpytest("--model-gates", "--collect-only", "-q")
    assert result.ret == pytest.ExitCode.OK
    collected = [ln for ln in result.stdout.lines if ln.startswith("gates.yaml::")]
    assert collected == [f"gates.yaml::{cid}" for cid in expected]
    assert len(expected) == 6 and expected[:2] == ["data.target.not_null", "data.target.labels"]
    assert not (pytester.path / "model-gates-report").exists()


def test_each_status_maps_to_its_pytest_outcome(pytester, gate_project):
    gate_project(text=MIXED_POLICY)
    result = pytester.runpytest("--model-gates", "-rA")
    result.assert_outcomes(passed=4, failed=1, skipped=1, errors=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    report = read_report(pytester.path / "model-gates-report")
    assert sorted(statuses(report).values()) == ["error", "fail", "pass", "pass", "pass", "skipped", "waived"]
    got = outcomes_by_nodeid(result)
    assert got == {f"gates.yaml::{cid}": OUTCOME[status] for cid, status in statuses(report).items()}


def test_a_failure_shows_observed_threshold_interval_and_hint(pytester, gate_project):
    frame = gate_project(text=MIXED_POLICY) and pd.read_csv(pytester.path / "eval.csv")
    observed = f1_score(frame["label"], frame["cand_pred"])
    result = pytester.runpytest("--model-gates", "-k", "f1")
    result.assert_outcomes(failed=1, deselected=6)
    result.stdout.fnmatch_lines([
        "*_ model-gates check regression.f1.min _*",
        f"FAIL: observed {num(observed)}; threshold min 0.99; interval [[]*, *[]] (*)",
        "f1 * is below the min 0.99*",
        "hint: *add a waiver for regression.f1.min*",
    ])


def test_an_inconclusive_check_fails_with_its_half_width(pytester, gate_project):
    gate_project("roc_auc: {max_drop: 0.01}")
    report = run_policy(load_policy(pytester.path / "gates.yaml"))
    (check,) = [c for c in report.verdict.checks if c.gate == "regression"]
    assert check.status.value == "inconclusive"
    result = pytester.runpytest("--model-gates")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines([
        f"INCONCLUSIVE: observed {num(check.observed)}; baseline *; delta *; threshold max_drop 0.01; interval *",
        "*straddles*",
        HINT_INCONCLUSIVE.format(half_width=f" (half-width now {check.half_width:.4g})"),
    ])


def test_skips_errors_and_waivers_say_why(pytester, gate_project):
    gate_project(text=MIXED_POLICY)
    result = pytester.runpytest("--model-gates", "-rs")
    result.stdout.fnmatch_lines([
        "*ERROR at setup of model-gates check regression.roc_auc.min*",
        "ERROR: observed *; threshold min 0.5",
        "*roc_auc needs scores*",
        HINT_ERROR.format(id="regression.roc_auc.min"),
    ])
    line = MIXED_POLICY.splitlines().index("      precision: {max_drop: 0.05}") + 1
    result.stdout.fnmatch_lines([f"SKIPPED [[]1[]] gates.yaml:{line}: no baseline*"])
    result.stdout.fnmatch_lines(["*model-gates*", "verdict: FAIL*", "  WAIVED regression.recall.min: known dip in recall"])


def test_k_and_deselect_select_checks_by_id(pytester, gate_project):
    gate_project(text=MIXED_POLICY)
    result = pytester.runpytest("--model-gates", "-k", "regression and (accuracy or recall)")
    result.assert_outcomes(passed=2, deselected=5)
    result = pytester.runpytest("--model-gates", "--deselect", "gates.yaml::regression.f1.min",
                                "--deselect", "gates.yaml::regression.roc_auc.min")
    result.assert_outcomes(passed=4, skipped=1, deselected=2)
    assert result.ret == pytest.ExitCode.OK


def test_deselected_checks_still_count_in_the_verdict(pytester, gate_project):
    gate_project(text=MIXED_POLICY)
    result = pytester.runpytest("--model-gates", "-k", "accuracy")
    result.assert_outcomes(passed=1, deselected=6)
    report = read_report(pytester.path / "model-gates-report")
    assert report["verdict"] == "fail" and len(report["checks"]) == 7


def test_junitxml_carries_every_check(pytester, gate_project):
    gate_project(text=MIXED_POLICY)
    pytester.makepyfile("def test_plain():\n    pass\n")
    pytester.runpytest("--model-gates", "--junitxml=junit.xml")
    root = ET.parse(pytester.path / "junit.xml").getroot()
    cases = {tc.get("name"): tc for tc in root.iter("testcase") if tc.get("classname") == "gates.yaml"}
    report = read_report(pytester.path / "model-gates-report")
    assert set(cases) == set(statuses(report)) and len(cases) == 7
    fail = cases["regression.f1.min"].find("failure")
    assert fail is not None and "threshold min 0.99" in fail.text and "interval" in fail.text
    assert cases["regression.roc_auc.min"].find("error") is not None
    assert "no baseline" in cases["regression.precision.max_drop"].find("skipped").get("message")
    props = {p.get("name"): p.get("value") for p in cases["regression.recall.min"].iter("property")}
    assert props["model_gates.status"] == "waived" and props["model_gates.note"].startswith("WAIVED (fail)")
    assert any(tc.get("name") == "test_plain" for tc in root.iter("testcase"))


def test_the_policy_file_as_an_argument_runs_only_its_checks(pytester, gate_project):
    gate_project()
    pytester.makepyfile("def test_plain():\n    pass\n")
    result = pytester.runpytest("--model-gates", "gates.yaml", "-v")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["gates.yaml::regression.accuracy.min PASSED*"])
    result = pytester.runpytest("--model-gates", "gates.yaml::regression.accuracy.max_drop")
    result.assert_outcomes(passed=1)


def test_shadow_mode_reports_failures_as_xfail(pytester, gate_project):
    path = gate_project(text=MIXED_POLICY)
    path.write_text(path.read_text() + "mode: shadow\n")
    result = pytester.runpytest("--model-gates", "-rx")
    result.assert_outcomes(passed=4, skipped=1, xfailed=2)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*" + MSG_SHADOW.format(status="fail", text="observed*")])


def test_a_data_error_is_one_collection_error_and_writes_nothing(pytester, gate_project):
    path = gate_project()
    path.write_text(path.read_text().replace("target: label", "target: outcome"))
    result = pytester.runpytest("--model-gates")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*ERROR collecting gates.yaml*", "gates.yaml:*: data.target: column 'outcome'*"])
    assert "Traceback" not in result.stdout.str()
    assert not (pytester.path / "model-gates-report").exists()


@pytest.mark.parametrize("check_id, key", [
    ("regression.accuracy.min", ("gates", "regression", "metrics", "accuracy", "min")),
    ("regression.accuracy.max_drop[region]", ("gates", "regression", "metrics", "accuracy", "max_drop")),
    ("fairness.tpr_difference.max[sex&age]", ("gates", "fairness", "metrics", "tpr_difference")),
    ("data.not_null[job]", ("gates", "data", "checks", "columns", "job")),
    ("robustness.flip_rate.max[gaussian_noise=0.1]", ("gates", "robustness", "metrics", "flip_rate")),
])
def test_a_check_points_at_the_key_that_declared_it(check_id, key):
    paths = [("gates", "regression"), ("gates", "regression", "metrics", "accuracy"),
             ("gates", "regression", "metrics", "accuracy", "min"),
             ("gates", "regression", "metrics", "accuracy", "max_drop"),
             ("gates", "fairness"), ("gates", "fairness", "metrics", "tpr_difference"),
             ("gates", "data"), ("gates", "data", "checks", "columns", "job"),
             ("gates", "robustness"), ("gates", "robustness", "metrics", "flip_rate")]
    lines = {p: i + 1 for i, p in enumerate(paths)}
    assert declaring_line(lines, untyped(check_id.partition(".")[0], check_id)) == lines[key]
    assert declaring_line(lines, CheckId("pytest", "tests/x.py::t")) is None
