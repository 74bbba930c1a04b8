"""The end of a gated session: reports as the CLI writes them, marked tests in the verdict, registration."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from pytest_model_gates.session import (
    MSG_INTERRUPTED,
    MSG_NOT_ASKED,
    MSG_REGISTRY_ERROR,
    MSG_STOPPED,
)
from pytest_model_gates.usertests import MSG_SKIPPED, MSG_XFAILED

from gates.cli import main as cli_main
from gates.registrar import REASON_FAILED
from gates.registry.local import LocalRegistry
from gates.reporters import html_available
from gates.reporters.json_report import load_report
from tests.pytest_plugin.conftest import read_report, statuses

#: plugins this project's venv loads that the gated sessions below do not need (faster xdist workers)
QUIET = ("-p", "no:hypothesispytest", "-p", "no:anyio", "-p", "no:typeguard")

MARKED_TESTS = """
import pytest

@pytest.mark.model_gate
def test_pass():
    pass

@pytest.mark.model_gate(blocking=False)
def test_soft():
    assert 1 == 2, "soft"

@pytest.mark.model_gate
@pytest.mark.skip(reason="not today")
def test_skipped():
    pass

@pytest.mark.model_gate
@pytest.mark.xfail(reason="known gap")
def test_xfail():
    assert False

@pytest.mark.model_gate
@pytest.mark.parametrize("name", ["a b", "a_b", "a\\nb", "a\\\\nb"])
def test_param(name):
    pass

def test_unmarked():
    assert False
"""

TEARDOWN_ERROR = """
import pytest

@pytest.fixture
def broken():
    yield
    raise RuntimeError("teardown boom")

@pytest.mark.model_gate
def test_teardown(broken):
    pass
"""


def registry(path: Path) -> LocalRegistry:
    return LocalRegistry(path / "registry")


def versions(path: Path) -> list[int]:
    with registry(path) as reg:
        return [v.version for v in reg.list_versions("demo")] if "demo" in reg.list_models() else []


def audit_kinds(path: Path) -> list[str]:
    with registry(path) as reg:
        return [e.kind for e in reg.audit_log("demo")]


def test_reports_are_written_as_the_cli_writes_them(pytester, gate_project):
    path = gate_project("accuracy: {min: 0.5, max_drop: 0.05}\nroc_auc: {max_drop: 0.05}")
    pytester.runpytest("--model-gates").assert_outcomes(passed=5)
    assert cli_main(["run", "-c", str(path), "--no-register", "--ci", "none", "--report-dir",
                     str(pytester.path / "cli")]) == 0
    ours, theirs = pytester.path / "model-gates-report", pytester.path / "cli"
    names = {"report.json", "report.xml", "report.md"} | ({"report.html"} if html_available() else set())
    assert {p.name for p in ours.iterdir()} == names
    a, b = read_report(ours), read_report(theirs)
    assert a["registration"] == {"registered": False, "reason": MSG_NOT_ASKED}
    assert {k: v for k, v in a.items() if k not in ("run", "registration")} == \
           {k: v for k, v in b.items() if k not in ("run", "registration")}
    assert (ours / "report.xml").read_text() == (theirs / "report.xml").read_text()
    with LocalRegistry(pytester.path / ".model-gates" / "registry") as reg:
        assert [e.kind for e in reg.audit_log("demo")] == ["run", "run"]


def test_marked_tests_become_checks_with_their_outcome(pytester, gate_project):
    gate_project()
    pytester.makepyfile(test_user=MARKED_TESTS)
    result = pytester.runpytest("--model-gates")
    result.assert_outcomes(passed=9, failed=1, skipped=1, xfailed=2)
    report = load_report(pytester.path / "model-gates-report" / "report.json")
    got = {k: v for k, v in statuses(report).items() if k.startswith("pytest.")}
    # four parameters, four ids: a space stays a space, pytest's own escapes (a\nb, a\\nb) keep their backslashes
    params = {rf"pytest.test_user.py::test_param[{p}]": "pass" for p in ("a b", "a_b", r"a\\nb", r"a\\\\nb")}
    assert got == {"pytest.test_user.py::test_pass": "pass", "pytest.test_user.py::test_soft": "warn",
                   "pytest.test_user.py::test_skipped": "skipped", "pytest.test_user.py::test_xfail": "skipped",
                   **params}
    assert {c["details"]["nodeid"] for c in report["checks"] if c["id"] in params} == {
        rf"test_user.py::test_param[{p}]" for p in ("a b", "a_b", r"a\nb", r"a\\nb")}
    checks = {c["id"]: c for c in report["checks"]}
    assert checks["pytest.test_user.py::test_soft"]["blocking"] is False
    assert "soft" in checks["pytest.test_user.py::test_soft"]["message"]
    assert checks["pytest.test_user.py::test_skipped"]["message"] == MSG_SKIPPED.format(reason="not today")
    assert checks["pytest.test_user.py::test_xfail"]["message"] == MSG_XFAILED.format(reason="known gap")
    assert checks["pytest.test_user.py::test_pass"]["gate"] == "pytest"
    assert report["verdict"] == "pass"


def test_a_marked_test_erroring_in_teardown_fails_the_verdict(pytester, gate_project):
    gate_project()
    pytester.makepyfile(test_user=TEARDOWN_ERROR)
    pytester.runpytest("--model-gates").assert_outcomes(passed=5, errors=1)
    report = read_report(pytester.path / "model-gates-report")
    check = {c["id"]: c for c in report["checks"]}["pytest.test_user.py::test_teardown"]
    assert check["status"] == "error" and "teardown boom" in check["message"]
    assert report["verdict"] == "fail"


def test_a_waiver_in_the_policy_applies_to_a_marked_test(pytester, gate_project):
    path = gate_project()
    path.write_text(path.read_text() + 'waivers:\n  - {check: "pytest.test_user.py::test_soft", '
                                       'reason: flaky upstream, expires: "2999-01-01"}\n')
    pytester.makepyfile(test_user="import pytest\n\n@pytest.mark.model_gate\ndef test_soft():\n    assert 0\n")
    pytester.runpytest("--model-gates").assert_outcomes(passed=4, failed=1)
    report = read_report(pytester.path / "model-gates-report")
    assert statuses(report)["pytest.test_user.py::test_soft"] == "waived"
    assert report["verdict"] == "pass"
    assert report["waivers"][0]["used"] is True


def test_an_all_pass_session_registers_exactly_once(pytester, model_project):
    result = pytester.runpytest("--model-gates", "--model-gates-register")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["registered: demo version 1"])
    report = read_report(pytester.path / "model-gates-report")
    assert report["registration"]["registered"] is True and report["registration"]["version"] == 1
    assert versions(pytester.path) == [1]
    assert audit_kinds(pytester.path).count("register") == 1


def test_without_the_register_option_nothing_is_registered(pytester, model_project):
    result = pytester.runpytest("--model-gates")
    result.stdout.fnmatch_lines([f"not registered: {MSG_NOT_ASKED}"])
    assert versions(pytester.path) == []
    assert audit_kinds(pytester.path) == ["run"]


def test_a_failing_marked_test_blocks_registration(pytester, model_project):
    pytester.makepyfile(test_user="""
        import pytest

        @pytest.mark.model_gate(blocking=True)
        def test_latency_budget():
            assert 120 < 100, "p99 latency over budget"
    """)
    result = pytester.runpytest("--model-gates", "--model-gates-register")
    result.assert_outcomes(passed=3, failed=1)
    report = read_report(pytester.path / "model-gates-report")
    assert statuses(report) == {"data.target.not_null": "pass", "data.target.labels": "pass", "regression.accuracy.min": "pass", "pytest.test_user.py::test_latency_budget": "fail"}
    assert report["verdict"] == "fail"
    assert report["registration"] == {"registered": False, "reason": REASON_FAILED}
    assert versions(pytester.path) == []
    assert audit_kinds(pytester.path) == ["run"]


def test_a_session_stopped_early_does_not_register(pytester, model_project):
    pytester.makepyfile(test_a="def test_first():\n    assert False\n",
                        test_b="import pytest\n\n@pytest.mark.model_gate\ndef test_never_runs():\n    pass\n")
    result = pytester.runpytest("--model-gates", "--model-gates-register", "-x", "-p", "no:randomly")
    result.assert_outcomes(passed=3, failed=1)
    report = read_report(pytester.path / "model-gates-report")
    assert report["verdict"] == "incomplete"
    assert report["registration"]["registered"] is False
    assert report["registration"]["reason"] == MSG_STOPPED.format(why="stopping after 1 failures")
    assert versions(pytester.path) == []


def test_an_interrupted_session_writes_and_registers_nothing(pytester, model_project):
    pytester.makepyfile(test_broken="import not_a_module\n")
    result = pytester.runpytest("--model-gates", "--model-gates-register")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines([MSG_INTERRUPTED])
    assert not (pytester.path / "model-gates-report").exists()
    assert not (pytester.path / "registry").exists()


def test_under_xdist_the_controller_alone_registers_once(pytester, model_project):
    pytester.makepyfile(test_user="""
        import pytest

        @pytest.mark.model_gate
        def test_on_a_worker(request, gate_context):
            shipped = request.config.workerinput["model_gates_checks"]
            assert [c["id"] for c in shipped] == ["data.target.not_null", "data.target.labels",
                                                  "regression.accuracy.min"]
            assert gate_context.predictions("candidate").scores.shape == (600,)
    """)
    result = pytester.runpytest("--model-gates", "--model-gates-register", "-n", "1", *QUIET)
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["registered: demo version 1"])
    report = read_report(pytester.path / "model-gates-report")
    assert statuses(report) == {"data.target.not_null": "pass", "data.target.labels": "pass", "regression.accuracy.min": "pass",
                                "pytest.test_user.py::test_on_a_worker": "pass"}
    assert versions(pytester.path) == [1]
    assert audit_kinds(pytester.path).count("run") == 1
    assert audit_kinds(pytester.path).count("register") == 1
    assert json.loads((pytester.path / "model-gates-report" / "report.json").read_text())["verdict"] == "pass"


def test_a_broken_registry_still_leaves_the_reports_and_fails_a_registering_session(pytester, model_project):
    (pytester.path / "registry").write_text("not a folder")
    result = pytester.runpytest("--model-gates", "--model-gates-register")
    assert result.ret == pytest.ExitCode.INTERNAL_ERROR
    report = read_report(pytester.path / "model-gates-report")
    assert report["registration"]["registered"] is False
    assert report["registration"]["reason"].startswith(MSG_REGISTRY_ERROR.format(problem=""))
    result.stdout.fnmatch_lines(["registry error: *"])
    assert pytester.runpytest("--model-gates").ret == pytest.ExitCode.OK
