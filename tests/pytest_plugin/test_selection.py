"""pytest keeps the verdict's rules: selection cannot let a candidate through, soft tests never fail a session."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pytest_model_gates.session import (
    MSG_COLLECT_ERROR,
    MSG_COLLECT_IGNORED,
    MSG_COLLECT_NOTHING,
    MSG_COLLECT_SKIP,
    MSG_DESELECTED,
    MSG_DROPPED,
    MSG_SHADOW_VERDICT,
    MSG_UNCOLLECTED,
)
from pytest_model_gates.usertests import MSG_SOFT

from gates.registry.local import LocalRegistry
from tests.pytest_plugin.conftest import MIXED_POLICY, read_report, statuses

#: the plugins this venv loads that these sessions do not need
QUIET = ("-p", "no:hypothesispytest", "-p", "no:anyio", "-p", "no:typeguard", "-p", "no:randomly")

FAILING_BLOCKER = """
import numpy as np
import pandas as pd
import pytest

@pytest.mark.model_gate
def test_latency_budget():
    assert 120 < 100, "p99 latency over budget"
"""

SOFT = """
import numpy as np
import pandas as pd
import pytest

@pytest.mark.model_gate(blocking=False)
def test_soft():
    assert 1 == 2, "soft"

@pytest.mark.model_gate(blocking=False)
def test_soft_setup(missing_fixture):
    pass
"""


def versions(folder: Path) -> list[int]:
    with LocalRegistry(folder / "registry") as reg:
        return [v.version for v in reg.list_versions("demo")] if "demo" in reg.list_models() else []


def test_k_that_deselects_a_blocking_check_makes_the_verdict_incomplete(pytester, model_project):
    result = pytester.runpytest("--model-gates", "--model-gates-register", "-k", "not accuracy", *QUIET)
    result.assert_outcomes(passed=2, deselected=1)
    why = MSG_DESELECTED.format(n=1, names="regression.accuracy.min")
    result.stdout.fnmatch_lines(["verdict: INCOMPLETE (*) for demo", f"  incomplete: {why}", f"not registered: {why}"])
    report = read_report(pytester.path / "model-gates-report")
    assert report["verdict"] == "incomplete"
    assert statuses(report)["regression.accuracy.min"] == "pass"
    assert report["registration"] == {"registered": False, "reason": why}
    assert versions(pytester.path) == []


def test_deselecting_a_failing_blocking_marked_test_registers_nothing(pytester, model_project):
    pytester.makepyfile(test_user=FAILING_BLOCKER)
    result = pytester.runpytest("--model-gates", "--model-gates-register",
                                "--deselect", "test_user.py::test_latency_budget", *QUIET)
    result.assert_outcomes(passed=3, deselected=1)
    assert result.ret == pytest.ExitCode.OK
    why = MSG_DESELECTED.format(n=1, names="pytest.test_user.py::test_latency_budget")
    result.stdout.fnmatch_lines([f"  incomplete: {why}"])
    assert read_report(pytester.path / "model-gates-report")["verdict"] == "incomplete"
    assert versions(pytester.path) == []


def test_m_that_deselects_every_check_is_incomplete_naming_them(pytester, model_project):
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    result = pytester.runpytest("--model-gates", "-m", "not model_gate", *QUIET)
    result.assert_outcomes(passed=1, deselected=3)
    names = "data.target.labels, data.target.not_null, regression.accuracy.min"
    result.stdout.fnmatch_lines([f"  incomplete: {MSG_DESELECTED.format(n=3, names=names)}"])


def test_deselecting_only_warn_checks_keeps_a_complete_verdict(pytester, model_project):
    path = model_project
    path.write_text(path.read_text().replace("accuracy: {min: 0.6}", "accuracy: {min: 0.6}\n      f1: {min: 0.99, severity: warn}"))
    result = pytester.runpytest("--model-gates", "--model-gates-register", "-k", "not f1", *QUIET)
    result.assert_outcomes(passed=3, deselected=1)
    result.stdout.fnmatch_lines(["verdict: PASS (*) for demo", "registered: demo version 1"])
    assert versions(pytester.path) == [1]


def test_a_failing_non_blocking_marked_test_is_a_warning_and_the_session_passes(pytester, model_project):
    pytester.makepyfile(test_user=SOFT)
    result = pytester.runpytest("--model-gates", "--model-gates-register", "-rx", *QUIET)
    result.assert_outcomes(passed=3, xfailed=2)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["XFAIL test_user.py::test_soft - " + MSG_SOFT.format(crash="AssertionError: soft")])
    result.stdout.fnmatch_lines([
        "verdict: PASS (*) for demo",
        "  WARN pytest.test_user.py::test_soft: the test failed: AssertionError: soft*",
        "  WARN pytest.test_user.py::test_soft_setup: the test errored in setup: *missing_fixture*",
        "registered: demo version 1",
    ])
    report = read_report(pytester.path / "model-gates-report")
    assert statuses(report)["pytest.test_user.py::test_soft"] == "warn"
    assert statuses(report)["pytest.test_user.py::test_soft_setup"] == "warn"
    assert report["verdict"] == "pass"


def test_a_soft_teardown_error_passes_in_pytest_and_warns_in_the_verdict(pytester, model_project):
    pytester.makepyfile(test_user="""
        import pytest

        @pytest.fixture
        def broken():
            yield
            raise RuntimeError("teardown boom")

        @pytest.mark.model_gate(blocking=False)
        def test_teardown(broken):
            pass
    """)
    result = pytester.runpytest("--model-gates", *QUIET)
    result.assert_outcomes(passed=4)
    check = {c["id"]: c for c in read_report(pytester.path / "model-gates-report")["checks"]}[
        "pytest.test_user.py::test_teardown"]
    assert check["status"] == "warn" and "teardown boom" in check["message"]


def test_shadow_mode_never_fails_the_session_and_the_verdict_says_shadow(pytester, gate_project):
    path = gate_project(text=MIXED_POLICY)
    path.write_text(path.read_text() + "mode: shadow\n")
    pytester.makepyfile(test_user=FAILING_BLOCKER)
    result = pytester.runpytest("--model-gates", "-rx", *QUIET)
    result.assert_outcomes(passed=4, skipped=1, xfailed=3)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines([f"verdict: FAIL{MSG_SHADOW_VERDICT} (*) for demo"])
    report = read_report(pytester.path / "model-gates-report")
    assert statuses(report)["pytest.test_user.py::test_latency_budget"] == "fail"
    assert report["verdict"] == "fail"


def test_under_xdist_the_controller_learns_what_workers_deselected(pytester, model_project):
    pytest.importorskip("xdist")
    result = pytester.runpytest("--model-gates", "--model-gates-register", "-n", "2", "-k", "not accuracy", *QUIET)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([f"  incomplete: {MSG_DESELECTED.format(n=1, names='regression.accuracy.min')}"])
    assert read_report(pytester.path / "model-gates-report")["verdict"] == "incomplete"
    assert versions(pytester.path) == []


ODD_REGIONS = ["engineering crew", "a=b & c", "[EU]", "Zürich", "🚀 launch"]


@pytest.fixture
def odd_slices(pytester, model_project):
    """The model project with its accuracy checked per region, regions named with any text."""
    frame = pd.read_csv(pytester.path / "eval.csv")
    frame["region"] = np.array(ODD_REGIONS)[np.arange(len(frame)) % len(ODD_REGIONS)]
    frame.to_csv(pytester.path / "eval.csv", index=False)
    model_project.write_text(model_project.read_text().replace(
        "    metrics:\n", "    slices: [region]\n    min_slice_size: 10\n    metrics:\n"), encoding="utf-8")
    return model_project


def slice_id(region: str) -> str:
    return f"regression.accuracy.min[region={region}]"


def passed_items(result) -> list[str]:
    """Return the check ids ``-v`` printed as PASSED, in order (ids hold [ ], so no glob patterns)."""
    return [line.removeprefix("gates.yaml::").rsplit(" PASSED", 1)[0] for line in result.stdout.lines
            if line.startswith("gates.yaml::") and " PASSED" in line]


def test_every_check_of_any_text_passes_and_registers(pytester, odd_slices):
    result = pytester.runpytest("--model-gates", "--model-gates-register", "-v", *QUIET)
    result.assert_outcomes(passed=3 + len(ODD_REGIONS))
    assert passed_items(result) == ["data.target.not_null", "data.target.labels", "regression.accuracy.min",
                                    *(slice_id(r) for r in sorted(ODD_REGIONS))]
    assert versions(pytester.path) == [1]


@pytest.mark.parametrize("expression, chosen", [("Zürich", "Zürich"), ("[EU]", "[EU]"), ("launch", "🚀 launch"),
                                                ("crew", "engineering crew")])
def test_k_selects_a_check_of_any_text_and_the_rest_make_it_incomplete(pytester, odd_slices, expression, chosen):
    result = pytester.runpytest("--model-gates", "--model-gates-register", "-k", expression, "-v", *QUIET)
    result.assert_outcomes(passed=1, deselected=2 + len(ODD_REGIONS))
    assert passed_items(result) == [slice_id(chosen)]
    report = read_report(pytester.path / "model-gates-report")
    assert report["verdict"] == "incomplete"
    assert versions(pytester.path) == []


def test_k_not_and_deselect_leave_out_exactly_the_named_checks(pytester, odd_slices):
    result = pytester.runpytest("--model-gates", "--model-gates-register", "-k", "not launch",
                                "--deselect", f"gates.yaml::{slice_id('a=b & c')}", *QUIET)
    result.assert_outcomes(passed=1 + len(ODD_REGIONS), deselected=2)
    why = MSG_DESELECTED.format(n=2, names=f"{slice_id('a=b & c')}, {slice_id('🚀 launch')}")
    assert f"  incomplete: {why}" in result.stdout.lines and f"not registered: {why}" in result.stdout.lines
    report = read_report(pytester.path / "model-gates-report")
    assert report["verdict"] == "incomplete"
    assert statuses(report)[slice_id("🚀 launch")] == "pass"  # computed and reported, only left out of the session
    assert versions(pytester.path) == []


PASSING_BLOCKER = """
import pytest

@pytest.mark.model_gate
def test_latency_budget():
    assert 80 < 100
"""


def test_a_file_of_marked_tests_that_fails_to_collect_makes_the_verdict_incomplete(pytester, model_project):
    pytester.makepyfile(test_broken="import not_installed_anywhere\n" + PASSING_BLOCKER)
    result = pytester.runpytest("--model-gates", "--model-gates-register", "--continue-on-collection-errors", *QUIET)
    result.assert_outcomes(passed=3, errors=1)
    why = MSG_UNCOLLECTED.format(n=1, names=MSG_COLLECT_ERROR.format(path="test_broken.py"))
    assert f"  incomplete: {why}" in result.stdout.lines and f"not registered: {why}" in result.stdout.lines
    assert read_report(pytester.path / "model-gates-report")["verdict"] == "incomplete"
    assert versions(pytester.path) == []


def test_a_skipped_file_of_marked_tests_is_incomplete_and_a_skipped_plain_file_is_not(pytester, model_project):
    pytester.makepyfile(test_gpu="import pytest\npytest.skip('no gpu here', allow_module_level=True)\n" + PASSING_BLOCKER,
                        test_plain="import pytest\npytest.skip('no gpu here', allow_module_level=True)\n"
                                   "def test_plain():\n    pass\n")
    result = pytester.runpytest("--model-gates", "--model-gates-register", *QUIET)
    result.assert_outcomes(passed=3, skipped=2)
    why = MSG_UNCOLLECTED.format(n=1, names=MSG_COLLECT_SKIP.format(path="test_gpu.py", reason="no gpu here"))
    assert f"  incomplete: {why}" in result.stdout.lines
    assert versions(pytester.path) == []
    (pytester.path / "test_gpu.py").unlink()
    result = pytester.runpytest("--model-gates", "--model-gates-register", *QUIET)
    result.assert_outcomes(passed=3, skipped=1)
    result.stdout.fnmatch_lines(["verdict: PASS (*) for demo", "registered: demo version 1"])


DROPPING_CONFTEST = """
def pytest_collection_modifyitems(items):
    items[:] = [item for item in items if "{name}" not in item.nodeid]  # no pytest_deselected call
"""


@pytest.mark.parametrize("blocking", [True, False])
def test_a_marked_test_a_hook_drops_silently_makes_the_verdict_incomplete_if_it_blocks(pytester, model_project,
                                                                                     blocking):
    pytester.makepyfile(test_user=PASSING_BLOCKER.replace("model_gate\n", f"model_gate(blocking={blocking})\n"))
    pytester.makeconftest(DROPPING_CONFTEST.format(name="latency"))
    result = pytester.runpytest("--model-gates", "--model-gates-register", *QUIET)
    result.assert_outcomes(passed=3)
    if blocking:
        why = MSG_DROPPED.format(n=1, names="pytest.test_user.py::test_latency_budget")
        assert f"  incomplete: {why}" in result.stdout.lines and f"not registered: {why}" in result.stdout.lines
        assert versions(pytester.path) == []
    else:
        result.stdout.fnmatch_lines(["verdict: PASS (*) for demo", "registered: demo version 1"])


def test_lf_that_leaves_a_file_of_marked_tests_uncollected_is_incomplete(pytester, model_project):
    pytester.makepyfile(test_user=PASSING_BLOCKER, test_flaky="def test_flaky():\n    assert False\n")
    first = pytester.runpytest("--model-gates", *QUIET)
    first.assert_outcomes(passed=4, failed=1)
    again = pytester.runpytest("--model-gates", "--model-gates-register", "--lf", *QUIET)
    again.assert_outcomes(failed=1)
    why = MSG_UNCOLLECTED.format(n=1, names=MSG_COLLECT_NOTHING.format(path="test_user.py"))
    assert f"  incomplete: {why}" in again.stdout.lines
    assert versions(pytester.path) == []


# ------------------------------------------------------------------ what never reaches the session

SKIP_MODULE = "import pytest\npytest.skip('no gpu here', allow_module_level=True)\n"
ALIASED = """
from marks import gate

@gate
def test_latency_budget():
    assert 80 < 100
"""


def incomplete_because(result: pytest.RunResult, why: str, folder: Path, registered: tuple[int, ...] = ()) -> None:
    assert f"  incomplete: {why}" in result.stdout.lines and f"not registered: {why}" in result.stdout.lines
    assert read_report(folder / "model-gates-report")["verdict"] == "incomplete"
    assert versions(folder) == list(registered)


def test_a_skipped_file_whose_marker_is_imported_under_another_name_is_incomplete(pytester, model_project):
    # the file's text never says model_gate: its marker comes from the project's marks.py
    pytester.makepyfile(marks="import pytest\ngate = pytest.mark.model_gate\n", test_gpu=SKIP_MODULE + ALIASED,
                        test_b="from pytest import mark as m\n" + SKIP_MODULE.replace("gpu", "b")
                               + "@m.model_gate\ndef test_b():\n    pass\n")
    result = pytester.runpytest("--model-gates", "--model-gates-register", *QUIET)
    result.assert_outcomes(passed=3, skipped=2)
    names = ", ".join(MSG_COLLECT_SKIP.format(path=p, reason=r) for p, r in (("test_b.py", "no b here"),
                                                                             ("test_gpu.py", "no gpu here")))
    incomplete_because(result, MSG_UNCOLLECTED.format(n=2, names=names), pytester.path)


def test_a_skipped_file_a_conftest_hook_would_mark_is_incomplete_and_a_comment_is_not_a_marker(pytester,
                                                                                              model_project):
    pytester.makepyfile(test_plain=SKIP_MODULE + "# not a model_gate test\ndef test_plain():\n    pass\n")
    result = pytester.runpytest("--model-gates", "--model-gates-register", *QUIET)
    result.assert_outcomes(passed=3, skipped=1)
    result.stdout.fnmatch_lines(["verdict: PASS (*) for demo", "registered: demo version 1"])
    gpu = pytester.mkdir("gpu")
    (gpu / "conftest.py").write_text("import pytest\n\ndef pytest_collection_modifyitems(items):\n"
                                     "    for item in items:\n        item.add_marker(pytest.mark.model_gate)\n")
    (gpu / "test_gpu.py").write_text(SKIP_MODULE + "def test_kernel():\n    pass\n")
    result = pytester.runpytest("--model-gates", "--model-gates-register", *QUIET)
    result.assert_outcomes(passed=3, skipped=2)
    why = MSG_UNCOLLECTED.format(n=1, names=MSG_COLLECT_SKIP.format(path="gpu/test_gpu.py", reason="no gpu here"))
    incomplete_because(result, why, pytester.path, registered=(1,))  # version 1 is the first run's


@pytest.mark.parametrize("how", ["--ignore", "--ignore-glob", "collect_ignore", "collect_ignore_glob", "folder"])
def test_an_ignored_file_of_marked_tests_is_incomplete_and_an_ignored_plain_file_is_not(pytester, model_project,
                                                                                       how):
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    if how == "folder":
        pytester.mkdir("slow")
        (pytester.path / "slow" / "test_user.py").write_text(PASSING_BLOCKER)
        args, path = ["--ignore", "slow"], "slow/test_user.py"
    else:
        pytester.makepyfile(test_user=PASSING_BLOCKER)
        path = "test_user.py"
        args = {"--ignore": ["--ignore", path], "--ignore-glob": ["--ignore-glob", "*_user.py"]}.get(how, [])
        if how.startswith("collect_ignore"):
            pytester.makeconftest(f"{how} = [{'test_user.py' if how == 'collect_ignore' else '*_user*'!r}]\n")
    result = pytester.runpytest("--model-gates", "--model-gates-register", *args, *QUIET)
    result.assert_outcomes(passed=4)
    incomplete_because(result, MSG_UNCOLLECTED.format(n=1, names=MSG_COLLECT_IGNORED.format(path=path)),
                       pytester.path)
    # ignoring only files and folders without marked tests keeps the verdict complete
    (pytester.path / "conftest.py").unlink(missing_ok=True)
    pytester.mkdir("plain")
    (pytester.path / "plain" / "test_more.py").write_text("def test_more():\n    pass\n")
    result = pytester.runpytest("--model-gates", "--model-gates-register", "--ignore", "test_plain.py",
                                "--ignore", "plain", *QUIET)
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["verdict: PASS (*) for demo", "registered: demo version 1"])


EARLY_DROP = """
import pytest

@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(items):
    keep = lambda: [item for item in items if "{name}" not in item.nodeid]  # never deselected
    {before}items[:] = keep()
    result = yield
    {after}items[:] = keep()
    return result
"""


@pytest.mark.parametrize("name, dropped", [("latency", "pytest.test_user.py::test_latency_budget"),
                                           ("accuracy", "regression.accuracy.min")])
def test_an_item_a_hook_drops_before_or_after_ours_runs_is_still_seen(pytester, model_project, name, dropped):
    # a wrapper's code before its yield runs before every plain hook, ours too; the checks' items exist only after
    pytester.makepyfile(test_user=PASSING_BLOCKER)
    early = name == "latency"
    pytester.makeconftest(EARLY_DROP.format(name=name, before="" if early else "# ", after="# " if early else ""))
    result = pytester.runpytest("--model-gates", "--model-gates-register", *QUIET)
    result.assert_outcomes(passed=3)
    incomplete_because(result, MSG_DROPPED.format(n=1, names=dropped), pytester.path)


def test_dropped_and_deselected_are_told_apart_by_node_id(pytester, model_project):
    # test_p[a b] is deselected and test_p[a_b] dropped: their ids once met in one, hiding the drop
    from pytest_model_gates.plugin import SESSION_PLUGIN

    pytester.makepyfile(test_user="import pytest\n\n@pytest.mark.model_gate\n"
                                  "@pytest.mark.parametrize('v', ['a b', 'a_b'])\ndef test_p(v):\n    pass\n")
    pytester.makeconftest(DROPPING_CONFTEST.format(name="a_b"))
    calls = pytester.inline_run("--model-gates", "--deselect", "test_user.py::test_p[a b]", *QUIET)
    (finish,) = calls.getcalls("pytest_collection_finish")
    gate = finish.session.config.pluginmanager.get_plugin(SESSION_PLUGIN)
    assert gate.deselected == {"pytest.test_user.py::test_p[a b]"}
    assert gate.dropped == {"pytest.test_user.py::test_p[a_b]"}
